//! RebalanceImpl against the real broker (run by `cargo xtask ci`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_client_core::testing::{GroupMember, config, create_topic, unique, wait_route};
use rmq_client_core::{
    ClientInstance, ConsumerInner, ExpressionType, MessageQueue, SubscriptionData,
};
use rmq_offset_store::{OffsetStore, RemoteBrokerOffsetStore};
use rmq_rebalance::{
    AllocateMessageQueueAveragely, ConsumeFromWhere, RebalanceConfig, RebalanceImpl,
    RebalanceListener,
};
use rmq_remoting::BoxFuture;

#[derive(Default)]
struct Recorder {
    owned: Mutex<BTreeMap<MessageQueue, i64>>,
}

impl RebalanceListener for Recorder {
    fn queue_added(&self, mq: &MessageQueue, next_offset: i64) {
        self.owned.lock().unwrap().insert(mq.clone(), next_offset);
    }
    fn queue_removed(&self, mq: &MessageQueue) -> BoxFuture<'_, bool> {
        self.owned.lock().unwrap().remove(mq);
        Box::pin(async { true })
    }
}

struct Node {
    instance: ClientInstance,
    rebalance: RebalanceImpl,
    recorder: Arc<Recorder>,
}

async fn node(topic: &str, group: &str, name: &str, store_offset: Option<(usize, i64)>) -> Node {
    let instance = ClientInstance::get_or_create(&config(name)).unwrap();
    instance
        .register_consumer(Arc::new(GroupMember {
            group: group.into(),
            topic: topic.into(),
        }) as Arc<dyn ConsumerInner>)
        .unwrap();
    instance.update_topic_route(topic).await.unwrap();
    instance.send_heartbeat_to_all_brokers().await;
    let store = Arc::new(RemoteBrokerOffsetStore::new(&instance, group));
    if let Some((i, offset)) = store_offset {
        let mq = instance.subscribe_queues(topic)[i].clone();
        store
            .update_consume_offset_to_broker(&mq, offset, false)
            .await
            .unwrap();
    }
    let recorder = Arc::new(Recorder::default());
    let mut config = RebalanceConfig::new(group);
    config.consume_from_where = ConsumeFromWhere::FirstOffset;
    let rebalance = RebalanceImpl::new(
        config,
        instance.clone(),
        Arc::new(AllocateMessageQueueAveragely),
        store as Arc<dyn OffsetStore>,
        Arc::clone(&recorder) as Arc<dyn RebalanceListener>,
    );
    rebalance.subscribe(
        SubscriptionData::build_with_version(topic, Some("*"), ExpressionType::Tag, 1).unwrap(),
    );
    rebalance.set_topic_queues(topic, &instance.subscribe_queues(topic));
    Node {
        instance,
        rebalance,
        recorder,
    }
}

async fn members(n: &Node, topic: &str, group: &str, count: usize) {
    for _ in 0..50 {
        if n.instance
            .find_consumer_id_list(topic, group)
            .await
            .map(|v| v.len())
            .unwrap_or(0)
            == count
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("group never had {count} members");
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn two_members_split_the_queues_and_one_takes_all_when_the_other_leaves() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let topic = unique("rmq_rebalance");
        let group = unique("cg_rebalance");
        let boot = ClientInstance::get_or_create(&config("boot")).unwrap();
        create_topic(&boot, &topic, 6).await;
        wait_route(&boot, &topic, 6).await;
        // Queue 1 has a committed offset of 5: whoever takes it must start there.
        let a = node(&topic, &group, "a", Some((1, 5))).await;
        let b = node(&topic, &group, "b", None).await;
        members(&a, &topic, &group, 2).await;
        assert!(a.rebalance.do_rebalance().await);
        assert!(b.rebalance.do_rebalance().await);
        let owned_a = a.recorder.owned.lock().unwrap().clone();
        let owned_b = b.recorder.owned.lock().unwrap().clone();
        assert_eq!(owned_a.len(), 3, "{owned_a:?}");
        assert_eq!(owned_b.len(), 3, "{owned_b:?}");
        let all = boot.subscribe_queues(&topic);
        for mq in &all {
            assert!(
                owned_a.contains_key(mq) ^ owned_b.contains_key(mq),
                "{mq:?} owned by both or none"
            );
            let start = owned_a.get(mq).or(owned_b.get(mq)).copied().unwrap();
            assert_eq!(start, if mq.queue_id == 1 { 5 } else { 0 }, "{mq:?}");
        }
        // AVG with sorted client ids: the smaller id takes queues 0..3.
        let first = if a.instance.client_id() < b.instance.client_id() {
            &owned_a
        } else {
            &owned_b
        };
        assert_eq!(
            first.keys().map(|q| q.queue_id).collect::<Vec<_>>(),
            [0, 1, 2]
        );

        // b leaves; a takes everything on its next round.
        b.rebalance.release_all().await;
        b.instance.shutdown(Duration::from_secs(2)).await;
        members(&a, &topic, &group, 1).await;
        assert!(a.rebalance.do_rebalance().await);
        assert_eq!(a.rebalance.owned_queues(), all);
        a.instance.shutdown(Duration::from_secs(2)).await;
        boot.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}
