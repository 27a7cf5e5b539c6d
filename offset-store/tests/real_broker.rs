//! Offsets survive a client restart with the broker store. Real broker, run by `cargo xtask ci`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use rmq_client_core::header::{ConsumerData, CreateTopicRequestHeader};
use rmq_client_core::{
    ClientConfig, ClientInstance, ConsumerInner, ExpressionType, SubscriptionData,
};
use rmq_offset_store::{OffsetStore, ReadOffsetType, RemoteBrokerOffsetStore};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need a real broker; run them with `cargo xtask ci` or `cargo xtask test-integration`")
    })
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

struct Member {
    group: String,
    topic: String,
}

impl ConsumerInner for Member {
    fn group_name(&self) -> String {
        self.group.clone()
    }
    fn consumer_data(&self) -> ConsumerData {
        let sub =
            SubscriptionData::build_with_version(&self.topic, Some("*"), ExpressionType::Tag, 1)
                .unwrap();
        ConsumerData::new(
            &self.group,
            "CONSUME_PASSIVELY",
            "CLUSTERING",
            "CONSUME_FROM_LAST_OFFSET",
            vec![sub],
        )
    }
    fn subscribed_topics(&self) -> Vec<String> {
        vec![self.topic.clone()]
    }
}

async fn instance(name: &str) -> ClientInstance {
    let cfg = ClientConfig::default()
        .namesrv_addr(&env("RMQ_NAMESRV_ADDR"))
        .client_ip("127.0.0.1")
        .instance_name(unique(name));
    ClientInstance::get_or_create(&cfg).unwrap()
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn remote_offsets_survive_a_client_restart_and_never_move_back() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let topic = unique("rmq_offsets_remote");
        let group = unique("cg_offsets");
        let first = instance("first").await;
        first
            .api()
            .create_topic(
                &env("RMQ_BROKER_ADDR"),
                &CreateTopicRequestHeader {
                    topic: topic.clone(),
                    default_topic: "TBW102".into(),
                    read_queue_nums: 3,
                    write_queue_nums: 3,
                    perm: 6,
                    topic_filter_type: "SINGLE_TAG".into(),
                    topic_sys_flag: 0,
                    order: false,
                },
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        let mut mqs = Vec::new();
        for _ in 0..100 {
            let _ = first.update_topic_route(&topic).await;
            mqs = first.subscribe_queues(&topic);
            if mqs.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(mqs.len(), 3);
        // The group must exist at the broker: a consumer's heartbeat creates it.
        first
            .register_consumer(Arc::new(Member {
                group: group.clone(),
                topic: topic.clone(),
            }) as Arc<dyn ConsumerInner>)
            .unwrap();
        first.send_heartbeat_to_all_brokers().await;
        let store = RemoteBrokerOffsetStore::new(&first, &group);
        for (i, mq) in mqs.iter().enumerate() {
            store.update_offset(mq, 10 * (i as i64 + 1), true);
            store.update_offset(mq, 1, true); // a late smaller commit is ignored
        }
        assert_eq!(
            store
                .read_offset(&mqs[2], ReadOffsetType::ReadFromMemory)
                .await
                .unwrap(),
            Some(30)
        );
        store.persist_all(&mqs).await.unwrap();
        first.shutdown(Duration::from_secs(2)).await;

        // A new client instance (a restarted process) reads them back from the broker.
        let second = instance("second").await;
        let restarted = RemoteBrokerOffsetStore::new(&second, &group);
        for (i, mq) in mqs.iter().enumerate() {
            let mut got = None;
            for _ in 0..50 {
                // UPDATE_CONSUMER_OFFSET went one-way: allow the broker a moment.
                got = restarted
                    .read_offset(mq, ReadOffsetType::ReadFromStore)
                    .await
                    .unwrap();
                if got == Some(10 * (i as i64 + 1)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(got, Some(10 * (i as i64 + 1)), "{mq:?}");
        }
        // The stored offset is now in memory too.
        assert_eq!(restarted.clone_offset_table(Some(&topic)).len(), 3);
        second.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}
