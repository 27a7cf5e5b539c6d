//! The CLI's small producer against a scripted name server + broker: what it says when no
//! route exists, and where new producers start.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rmq_client_core::testing::{Reply, ScriptedBroker, loopback_config, reply_to};
use rmq_client_core::{ClientError, ClientInstance, Message, Producer};
use rmq_remoting::{RequestCode, ResponseCode};

fn instance(addr: &str, name: &str) -> ClientInstance {
    ClientInstance::get_or_create(&loopback_config(addr, name)).unwrap()
}

#[tokio::test]
async fn no_route_for_the_topic_nor_the_template_names_the_users_topic() {
    // A name server that knows no topic at all (what it says once every broker is down).
    let ns = ScriptedBroker::start("broker-a", 4, |req| {
        (req.request_code() == RequestCode::GET_ROUTEINFO_BY_TOPIC).then(|| {
            Reply::Answer(reply_to(
                req,
                ResponseCode::TOPIC_NOT_EXIST,
                &[],
                Bytes::new(),
            ))
        })
    })
    .await;
    let inst = instance(&ns.addr, "producer_no_route");
    let p = Producer::new(&inst, "pg_no_route").unwrap();
    let err = p
        .send(Message::new("UserTopic", "x"))
        .await
        .expect_err("no route anywhere");
    assert!(
        matches!(&err, ClientError::TopicRouteNotFound { topic } if topic == "UserTopic"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "no route for topic UserTopic");
}

#[tokio::test]
async fn new_producers_start_on_different_queues() {
    let first_queue: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&first_queue);
    let broker = ScriptedBroker::start("broker-a", 8, move |req| {
        (req.request_code() == RequestCode::SEND_MESSAGE_V2).then(|| {
            // SEND_MESSAGE_V2 abbreviates its header fields: `e` is the queue id.
            seen.lock()
                .unwrap()
                .push(req.ext("e").unwrap_or_default().to_owned());
            Reply::Answer(reply_to(
                req,
                ResponseCode::SUCCESS,
                &[("msgId", "00"), ("queueId", "0"), ("queueOffset", "0")],
                Bytes::new(),
            ))
        })
    })
    .await;
    for i in 0..8 {
        let inst = instance(&broker.addr, &format!("producer_start_{i}"));
        let p = Producer::new(&inst, "pg_start").unwrap();
        p.send(Message::new("TopicTest", "x")).await.unwrap();
        inst.shutdown(std::time::Duration::from_secs(1)).await;
    }
    let queues: BTreeSet<String> = first_queue.lock().unwrap().iter().cloned().collect();
    // Eight producers starting at 0 all land on queue 0; from a random start they land on
    // one queue of eight each with chance 8!/8^8 per run, and on a single queue with
    // chance 8^-7: more than one queue is seen in all but ~2 runs in a million.
    assert!(queues.len() > 1, "every producer started on {queues:?}");
}
