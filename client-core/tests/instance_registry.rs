//! The process-wide client-instance registry shares an instance only with a configuration
//! that agrees with it (Java silently lets the first one win).

use std::time::Duration;

use rmq_client_core::{ClientConfig, ClientError, ClientInstance, ErrorKind};

fn config(namesrv: &str) -> ClientConfig {
    rmq_client_core::testing::loopback_config(namesrv, "registry_test")
}

#[tokio::test]
async fn a_second_user_with_other_settings_is_refused() {
    let first = ClientInstance::get_or_create(&config("127.0.0.1:1")).unwrap();
    let same = ClientInstance::get_or_create(&config("127.0.0.1:1")).unwrap();
    assert_eq!(first.client_id(), same.client_id());
    let err = ClientInstance::get_or_create(&config("127.0.0.1:2")).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::InstanceConfigMismatch {
                setting: "namesrvAddr",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Config);
    let slower = config("127.0.0.1:1").mq_client_api_timeout(Duration::from_secs(9));
    assert!(matches!(
        ClientInstance::get_or_create(&slower),
        Err(ClientError::InstanceConfigMismatch {
            setting: "mqClientApiTimeout",
            ..
        })
    ));
    drop((first, same));
    // Once the instance is gone, the name is free for any configuration.
    ClientInstance::get_or_create(&config("127.0.0.1:2")).unwrap();
}
