//! Restoring consumed messages' topics (Java `resetRetryAndNamespace`), without a broker.

use std::sync::Arc;

use rmq_client_core::testing::{closed_port, loopback_config};
use rmq_client_core::{ClientInstance, MessageExt, Properties, SendBack};

#[tokio::test]
async fn a_pulls_namespaced_topic_is_restored_once_and_shared() {
    let instance = ClientInstance::get_or_create(
        &loopback_config(&closed_port(), "send_back_ns").namespace("ns"),
    )
    .unwrap();
    let send_back = SendBack::new(&instance, "ns%G", 16);
    let wrapped: Arc<str> = Arc::from("ns%T");
    let mut msgs: Vec<MessageExt> = (0..4)
        .map(|_| MessageExt {
            topic: Arc::clone(&wrapped),
            ..MessageExt::default()
        })
        .collect();
    // A retried message: its real topic comes from RETRY_TOPIC.
    msgs[2].topic = Arc::from("%RETRY%ns%G");
    msgs[2].properties = Properties::parse("RETRY_TOPIC\u{1}ns%R\u{2}");
    send_back.reset_retry_and_namespace_all(&mut msgs);
    let topics: Vec<&str> = msgs.iter().map(|m| &*m.topic).collect();
    assert_eq!(topics, ["T", "T", "R", "T"]);
    assert!(
        Arc::ptr_eq(&msgs[0].topic, &msgs[3].topic),
        "one restored topic string for the pull"
    );
    let mut one = MessageExt {
        topic: Arc::clone(&wrapped),
        ..MessageExt::default()
    };
    send_back.reset_retry_and_namespace(&mut one);
    assert_eq!(&*one.topic, "T");
}
