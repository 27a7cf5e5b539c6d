//! Start and drop without a broker: `start()` gives a running consumer or an error with
//! nothing left running, and dropping the last handle ends every task it started.
//! (The name server address points at a closed loopback port.)

use std::time::Duration;

use rmq_client_core::testing::{closed_port, loopback_config, tasks_back_to};
use rmq_client_core::{ClientConfig, ClientError, ClientInstance};
use rmq_push_consumer::{ConsumeConcurrentlyStatus, PushConsumer, PushConsumerError, listener_fn};

fn builder(group: &str, namesrv: &str) -> rmq_push_consumer::PushConsumerBuilder {
    PushConsumer::builder(group)
        .client_config(
            ClientConfig::default()
                .namesrv_addr(namesrv)
                .client_ip("127.0.0.1"),
        )
        .subscribe("TopicTest", "*")
        .listener(listener_fn(|_msgs, _ctx| async {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_consumer_ends_every_task_it_started() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let consumer = builder("lifecycle_drop", &closed_port())
        .consume_thread_max(8)
        .consume_thread_min(8)
        .start()
        .await
        .unwrap();
    assert!(
        metrics.num_alive_tasks() >= baseline + 8,
        "consume tasks, rebalance and client jobs run"
    );
    let clone = consumer.clone();
    drop(consumer);
    tokio::task::yield_now().await;
    assert!(
        metrics.num_alive_tasks() >= baseline + 8,
        "a clone keeps the consumer running"
    );
    drop(clone);
    let alive = tasks_back_to(baseline, Duration::from_secs(1)).await;
    assert!(alive <= baseline, "{alive} tasks alive 1 s after the drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_leaves_nothing_running() {
    let namesrv = closed_port();
    let instance =
        ClientInstance::get_or_create(&loopback_config(&namesrv, "lifecycle_shared")).unwrap();
    let first = builder("lifecycle_group", &namesrv)
        .instance(&instance)
        .start()
        .await
        .unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let err = builder("lifecycle_group", &namesrv)
        .instance(&instance)
        .start()
        .await
        .expect_err("the group is taken in this instance");
    assert!(
        matches!(
            err,
            PushConsumerError::Client(ClientError::GroupAlreadyRegistered { .. })
        ),
        "{err:?}"
    );
    let alive = tasks_back_to(baseline, Duration::from_secs(1)).await;
    assert!(
        alive <= baseline,
        "{alive} tasks alive after the failed start, {baseline} before"
    );
    let report = first.shutdown().await;
    assert!(report.performed && report.offsets_persisted, "{report}");
    assert!(!first.shutdown().await.performed, "idempotent");

    let invalid = PushConsumer::builder("g")
        .namesrv_addr(&namesrv)
        .start()
        .await
        .expect_err("no subscription");
    assert!(
        matches!(invalid, PushConsumerError::InvalidConfig(ref m) if m.contains("subscription")),
        "{invalid:?}"
    );
}
