//! `RebalanceImpl` against an in-process scripted name server and broker on 127.0.0.1:
//! members joining and leaving, and a broker that answers the member list with SYSTEM_BUSY
//! (a real broker cannot be made to).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rmq_client_core::testing::{Reply, ScriptedBroker, reply_to};
use rmq_client_core::{
    ClientConfig, ClientInstance, ExpressionType, MessageQueue, SubscriptionData,
};
use rmq_offset_store::{LocalFileOffsetStore, OffsetStore};
use rmq_rebalance::{
    AllocateMessageQueueAveragely, AllocateMessageQueueStrategy, RebalanceConfig, RebalanceImpl,
    RebalanceListener,
};
use rmq_remoting::{BoxFuture, RequestCode, ResponseCode};

const TOPIC: &str = "TopicTest";
const BROKER: &str = "broker-a";
const GROUP: &str = "rebalance_scripted";

/// What the broker answers GET_CONSUMER_LIST_BY_GROUP with.
type Members = Arc<Mutex<Result<Vec<String>, ResponseCode>>>;

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

async fn broker(members: Members) -> ScriptedBroker {
    ScriptedBroker::start(BROKER, 4, move |req| match req.request_code() {
        RequestCode::GET_CONSUMER_LIST_BY_GROUP => {
            Some(Reply::Answer(match &*members.lock().unwrap() {
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
    let members: Members = Arc::new(Mutex::new(Ok(Vec::new())));
    let b = broker(Arc::clone(&members)).await;
    let instance = ClientInstance::get_or_create(
        &ClientConfig::default()
            .namesrv_addr(&b.addr)
            .client_ip("127.0.0.1")
            .instance_name("rebalance_scripted"),
    )
    .unwrap();
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
    *members.lock().unwrap() = Ok(vec![me.clone(), other.clone()]);
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
    *members.lock().unwrap() = Ok(vec![me.clone()]);
    assert!(rb.do_rebalance().await);
    assert_eq!(sorted(rb.owned_queues()), sorted(all.clone()));
    assert_eq!(seen.added.lock().unwrap().len(), 4);

    // SYSTEM_BUSY on the member list: nothing changes (Java keeps its queues too).
    *members.lock().unwrap() = Err(ResponseCode::SYSTEM_BUSY);
    rb.do_rebalance().await;
    assert_eq!(sorted(rb.owned_queues()), sorted(all.clone()));
    assert!(seen.removed.lock().unwrap().is_empty());

    // It comes back: the queues AVG now gives the other member are released.
    *members.lock().unwrap() = Ok(vec![other.clone(), me.clone()]);
    assert!(rb.do_rebalance().await);
    assert_eq!(sorted(rb.owned_queues()), sorted(half.clone()));
    let removed = sorted(seen.removed.lock().unwrap().clone());
    let expect: Vec<MessageQueue> = sorted(all.into_iter().filter(|q| !half.contains(q)).collect());
    assert_eq!(removed, expect);
    let _ = std::fs::remove_dir_all(&dir);
}
