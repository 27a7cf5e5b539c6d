//! Start and drop without a broker (the name server address is a closed loopback port):
//! `start()` gives a running consumer, and dropping the last handle ends its tasks.

use std::time::Duration;

use rmq_client_core::ClientConfig;
use rmq_client_core::testing::{closed_port, tasks_back_to};
use rmq_pull_consumer::{
    LitePullConsumer, LitePullConsumerConfig, PullConsumer, PullConsumerError,
};

fn client() -> ClientConfig {
    ClientConfig::default()
        .namesrv_addr(&closed_port())
        .client_ip("127.0.0.1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_pull_consumers_end_their_tasks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let lite = LitePullConsumer::builder("lifecycle_lite")
        .client_config(client())
        .subscribe("TopicTest", "*")
        .start()
        .await
        .unwrap();
    let pull = PullConsumer::builder("lifecycle_pull")
        .client_config(client())
        .start()
        .await
        .unwrap();
    let running = metrics.num_alive_tasks();
    assert!(
        running > baseline,
        "client jobs and rebalance run: {running}"
    );
    drop(lite);
    drop(pull);
    let alive = tasks_back_to(baseline, Duration::from_secs(1)).await;
    assert!(alive <= baseline, "{alive} tasks alive 1 s after the drops");
}

#[tokio::test]
async fn a_bad_setting_is_refused_before_anything_starts() {
    let mut config = LitePullConsumerConfig::default();
    config.consumer_timeout_when_suspend = config.broker_suspend_max_time;
    let err = LitePullConsumer::builder("g")
        .client_config(client())
        .config(config)
        .subscribe("TopicTest", "*")
        .start()
        .await
        .expect_err("the pull timeout must exceed the long-poll hold");
    assert!(
        matches!(err, PullConsumerError::InvalidConfig(_)),
        "{err:?}"
    );
    let err = PullConsumer::builder(" ")
        .client_config(client())
        .start()
        .await
        .expect_err("an empty group");
    assert!(
        matches!(err, PullConsumerError::InvalidConfig(_)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_can_share_a_client_instance_handed_to_them() {
    let instance = rmq_client_core::ClientInstance::get_or_create(
        &client().instance_name("lifecycle_shared_pull"),
    )
    .unwrap();
    let lite = LitePullConsumer::builder("shared_lite")
        .instance(&instance)
        .subscribe("TopicTest", "*")
        .start()
        .await
        .unwrap();
    let pull = PullConsumer::builder("shared_pull")
        .instance(&instance)
        .start()
        .await
        .unwrap();
    assert_eq!(
        instance.consumer_count(),
        2,
        "both registered on the one instance"
    );
    let taken = PullConsumer::builder("shared_pull")
        .instance(&instance)
        .start()
        .await
        .expect_err("the group is taken in this instance");
    assert_eq!(taken.kind(), rmq_client_core::ErrorKind::Config);
    assert!(lite.shutdown().await.performed);
    assert!(pull.shutdown().await.performed);
}
