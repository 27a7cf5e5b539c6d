//! `RebalanceImpl` against an in-process scripted name server and broker on 127.0.0.1:
//! members joining and leaving, and a broker that answers the member list with SYSTEM_BUSY
//! (a real broker cannot be made to).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rmq_client_core::testing::{Reply, ScriptedBroker, loopback_config, reply_to};
use rmq_client_core::{ClientInstance, ExpressionType, MessageQueue, SubscriptionData};
use rmq_offset_store::{LocalFileOffsetStore, OffsetStore};
use rmq_rebalance::{
    AllocateMessageQueueAveragely, AllocateMessageQueueStrategy, RebalanceConfig, RebalanceImpl,
    RebalanceListener,
};
use rmq_remoting::{BoxFuture, RequestCode, ResponseCode};

const TOPIC: &str = "TopicTest";
const BROKER: &str = "broker-a";
const GROUP: &str = "rebalance_scripted";

/// What the broker answers GET_CONSUMER_LIST_BY_GROUP with, in order; the last answer
/// repeats.
type Members = Arc<Mutex<Vec<Result<Vec<String>, ResponseCode>>>>;

/// From now on the broker answers the member list with `answer`.
fn answer(members: &Members, answer: Result<Vec<String>, ResponseCode>) {
    *members.lock().unwrap() = vec![answer];
}

#[derive(Default)]
struct Seen {
    added: Mutex<Vec<(MessageQueue, i64)>>,
    removed: Mutex<Vec<MessageQueue>>,
}

impl RebalanceListener for Seen {
    fn queue_added(&self, mq: &MessageQueue, next_offset: i64) {
        self.added.lock().unwrap().push((mq.clone(), next_offset));
    }
    fn queue_removed(&self, mq: &MessageQueue) -> BoxFuture<'_, bool> {
        self.removed.lock().unwrap().push(mq.clone());
        Box::pin(async { true })
    }
}

/// What the broker answers GET_CONSUMER_RUNNING_INFO with (the forwarded member's
/// `ConsumerRunningInfo`); empty: an unreadable answer.
type RunningInfo = Arc<Mutex<String>>;

async fn broker(members: Members) -> ScriptedBroker {
    broker_with_running_info(members, RunningInfo::default()).await
}

async fn broker_with_running_info(members: Members, info: RunningInfo) -> ScriptedBroker {
    ScriptedBroker::start(BROKER, 4, move |req| match req.request_code() {
        RequestCode::GET_CONSUMER_RUNNING_INFO => Some(Reply::Answer(reply_to(
            req,
            ResponseCode::SUCCESS,
            &[],
            Bytes::from(info.lock().unwrap().clone()),
        ))),
        RequestCode::GET_CONSUMER_LIST_BY_GROUP => {
            let next = {
                let mut m = members.lock().unwrap();
                if m.len() > 1 {
                    m.remove(0)
                } else {
                    m[0].clone()
                }
            };
            Some(Reply::Answer(match &next {
                Ok(ids) => reply_to(
                    req,
                    ResponseCode::SUCCESS,
                    &[],
                    Bytes::from(serde_json::json!({ "consumerIdList": ids }).to_string()),
                ),
                Err(code) => reply_to(req, *code, &[], Bytes::new()),
            }))
        }
        // Where a queue without a stored offset starts (CONSUME_FROM_LAST_OFFSET).
        RequestCode::GET_MAX_OFFSET => Some(Reply::Answer(reply_to(
            req,
            ResponseCode::SUCCESS,
            &[("offset", "100")],
            Bytes::new(),
        ))),
        _ => None,
    })
    .await
}

fn sorted(mut v: Vec<MessageQueue>) -> Vec<MessageQueue> {
    v.sort();
    v
}

#[tokio::test]
async fn members_joining_leaving_and_a_busy_broker() {
    let members: Members = Arc::new(Mutex::new(vec![Ok(Vec::new())]));
    let b = broker(Arc::clone(&members)).await;
    let instance =
        ClientInstance::get_or_create(&loopback_config(&b.addr, "rebalance_scripted")).unwrap();
    instance.update_topic_route(TOPIC).await.unwrap();
    let all = instance.subscribe_queues(TOPIC);
    assert_eq!(all.len(), 4);
    let me = instance.client_id().to_owned();
    let other = format!("{me}-other");

    let dir = std::env::temp_dir().join(format!("rmq-rebalance-{}", std::process::id()));
    let store: Arc<dyn OffsetStore> = Arc::new(LocalFileOffsetStore::new(Some(&dir), &me, GROUP));
    let seen = Arc::new(Seen::default());
    let rb = RebalanceImpl::new(
        RebalanceConfig::new(GROUP),
        instance.clone(),
        Arc::new(AllocateMessageQueueAveragely),
        store,
        Arc::clone(&seen) as Arc<dyn RebalanceListener>,
    );
    rb.subscribe(SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap());
    rb.set_topic_queues(TOPIC, &all);

    // Two members: this client owns what AVG gives it, each starting at the max offset.
    answer(&members, Ok(vec![me.clone(), other.clone()]));
    assert!(rb.do_rebalance().await);
    let half = AllocateMessageQueueAveragely
        .allocate(
            GROUP,
            &me,
            &sorted(all.clone()),
            &[me.clone(), other.clone()],
        )
        .unwrap();
    assert_eq!(half.len(), 2);
    assert_eq!(sorted(rb.owned_queues()), sorted(half.clone()));
    assert!(
        seen.added.lock().unwrap().iter().all(|(_, o)| *o == 100),
        "new queues start at the broker's max offset"
    );

    // The other member leaves: this one takes every queue.
    answer(&members, Ok(vec![me.clone()]));
    assert!(rb.do_rebalance().await);
    assert_eq!(sorted(rb.owned_queues()), sorted(all.clone()));
    assert_eq!(seen.added.lock().unwrap().len(), 4);

    // SYSTEM_BUSY on the member list: nothing changes (Java keeps its queues too).
    answer(&members, Err(ResponseCode::SYSTEM_BUSY));
    rb.do_rebalance().await;
    assert_eq!(sorted(rb.owned_queues()), sorted(all.clone()));
    assert!(seen.removed.lock().unwrap().is_empty());

    // It comes back: the queues AVG now gives the other member are released.
    answer(&members, Ok(vec![other.clone(), me.clone()]));
    assert!(rb.do_rebalance().await);
    assert_eq!(sorted(rb.owned_queues()), sorted(half.clone()));
    let removed = sorted(seen.removed.lock().unwrap().clone());
    let expect: Vec<MessageQueue> = sorted(all.into_iter().filter(|q| !half.contains(q)).collect());
    assert_eq!(removed, expect);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Clean hand-off and a crashed holder: a refused lock is waited for while the group has
/// other members — also when the member list fetched before the lock showed this client
/// alone (members starting together) — and taken at once when a list fetched after the
/// refusal shows this client alone (the holder crashed and the broker dropped it).
#[tokio::test]
async fn a_lock_held_by_a_crashed_member_is_taken_once_this_client_is_alone() {
    let members: Members = Arc::new(Mutex::new(vec![Ok(Vec::new())]));
    // `broker` answers LOCK_BATCH_MQ with an empty SUCCESS: every lock is refused, as when
    // another client holds them all.
    let info = RunningInfo::default();
    let b = broker_with_running_info(Arc::clone(&members), Arc::clone(&info)).await;
    let instance =
        ClientInstance::get_or_create(&loopback_config(&b.addr, "rebalance_handoff")).unwrap();
    instance.update_topic_route(TOPIC).await.unwrap();
    let all = instance.subscribe_queues(TOPIC);
    let me = instance.client_id().to_owned();
    let other = format!("{me}-other");
    let dir = std::env::temp_dir().join(format!("rmq-rebalance-handoff-{}", std::process::id()));
    let store: Arc<dyn OffsetStore> = Arc::new(LocalFileOffsetStore::new(Some(&dir), &me, GROUP));
    let mut config = RebalanceConfig::new(GROUP);
    config.handoff_lock = true;
    let rb = RebalanceImpl::new(
        config,
        instance.clone(),
        Arc::new(AllocateMessageQueueAveragely),
        store,
        Arc::new(Seen::default()) as Arc<dyn RebalanceListener>,
    );
    rb.subscribe(SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap());
    rb.set_topic_queues(TOPIC, &all);

    // Another member holds every lock: nothing is taken, round after round.
    answer(&members, Ok(vec![me.clone(), other.clone()]));
    for _ in 0..3 {
        assert!(!rb.do_rebalance().await, "a live member's queue was taken");
        assert!(rb.owned_queues().is_empty());
    }
    // The list fetched before the locks shows this client alone, the one fetched after the
    // refusal shows the other member (it registered and locked meanwhile): still waited for.
    *members.lock().unwrap() = vec![Ok(vec![me.clone()]), Ok(vec![me.clone(), other.clone()])];
    assert!(
        !rb.do_rebalance().await,
        "taken on a member list older than the lock"
    );
    assert!(rb.owned_queues().is_empty());

    // The other member answers that it has every queue in its table (it owns them, or
    // drains them): waited for, however long.
    answer(&members, Ok(vec![me.clone(), other.clone()]));
    let table: Vec<String> = all
        .iter()
        .map(|q| {
            format!(
                r#"{{"brokerName":"{}","queueId":{},"topic":"{}"}}:{{"locked":true}}"#,
                q.broker_name, q.queue_id, q.topic
            )
        })
        .collect();
    *info.lock().unwrap() = format!(r#"{{"jstack":"","mqTable":{{{}}}}}"#, table.join(","));
    for _ in 0..2 {
        assert!(
            !rb.do_rebalance().await,
            "a queue in a live member's table was taken"
        );
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    }
    assert!(rb.owned_queues().is_empty());

    // A third member crashed holding them: the live one's table no longer has them. Not
    // taken on the first sight (the live member may have just locked them), taken on a
    // round at least 1 s later.
    *info.lock().unwrap() = r#"{"jstack":"","mqTable":{}}"#.to_owned();
    assert!(!rb.do_rebalance().await, "taken on the first sight");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(rb.do_rebalance().await);
    let mine = AllocateMessageQueueAveragely
        .allocate(GROUP, &me, &sorted(all.clone()), &{
            let mut ids = vec![me.clone(), other.clone()];
            ids.sort();
            ids
        })
        .unwrap();
    assert_eq!(sorted(rb.owned_queues()), sorted(mine));

    // The other member crashes too and the broker drops it; its locks stay until they
    // expire. This client, alone, takes the rest in this very round, not after
    // handoff_timeout (15 s).
    answer(&members, Ok(vec![me.clone()]));
    let started = std::time::Instant::now();
    assert!(rb.do_rebalance().await);
    assert_eq!(sorted(rb.owned_queues()), sorted(all.clone()));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}
