//! Offsets survive a client restart with the broker store. Real broker, run by `cargo xtask ci`.

use std::time::Duration;

use std::sync::Arc;

use rmq_client_core::testing::{GroupMember, config, create_topic, unique, wait_route};
use rmq_client_core::{ClientInstance, ConsumerInner};
use rmq_offset_store::{OffsetStore, ReadOffsetType, RemoteBrokerOffsetStore};

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn remote_offsets_survive_a_client_restart_and_never_move_back() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let topic = unique("rmq_offsets_remote");
        let group = unique("cg_offsets");
        let first = ClientInstance::get_or_create(&config("first")).unwrap();
        create_topic(&first, &topic, 3).await;
        wait_route(&first, &topic, 3).await;
        let mqs = first.subscribe_queues(&topic);
        assert_eq!(mqs.len(), 3);
        // The group must exist at the broker: a consumer's heartbeat creates it.
        first
            .register_consumer(Arc::new(GroupMember {
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
        let second = ClientInstance::get_or_create(&config("second")).unwrap();
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
