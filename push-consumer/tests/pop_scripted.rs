//! Pop mode against a scripted broker, for what the rocketmq-rust 1.0 broker cannot show
//! (it never brings back a popped message that was not acknowledged): a consumer killed
//! with messages in flight has acknowledged exactly the messages its listener consumed,
//! so a broker that revives the rest delivers them again and nothing is lost.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_client_core::ClientConfig;
use rmq_client_core::testing::{Reply, ScriptedBroker, pull_body, reply_to, tasks_back_to};
use rmq_push_consumer::{ConsumeConcurrentlyStatus, PushConsumer, listener_fn};
use rmq_remoting::{RequestCode, ResponseCode};

const BROKER: &str = "broker-a";
const TOPIC: &str = "PopT";

/// What both scripted brokers answer alike: the group's members, the assignment (TOPIC in
/// POP mode, queue −1; nothing of the retry topic), and the pops: the first with `body`
/// (queue 1, `offsets`), later ones empty after 300 ms. `None` for any other request.
fn pop_group_reply(
    req: &rmq_remoting::RemotingCommand,
    pops: &std::sync::atomic::AtomicUsize,
    body: &bytes::Bytes,
    offsets: &str,
) -> Option<Reply> {
    let answer = |code, ext: &[(&str, &str)], body: bytes::Bytes| {
        Some(Reply::Answer(reply_to(req, code, ext, body)))
    };
    let text = |t: String| bytes::Bytes::from(t);
    match req.request_code() {
        RequestCode::GET_CONSUMER_LIST_BY_GROUP => answer(
            ResponseCode::SUCCESS,
            &[],
            text(r#"{"consumerIdList":["someone"]}"#.into()),
        ),
        RequestCode::QUERY_ASSIGNMENT => {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let assigned = if v["topic"] == TOPIC {
                format!(
                    r#"{{"messageQueueAssignments":[{{"messageQueue":{{"topic":"{TOPIC}","brokerName":"{BROKER}","queueId":-1}},"mode":"POP"}}]}}"#
                )
            } else {
                r#"{"messageQueueAssignments":[]}"#.to_owned()
            };
            answer(ResponseCode::SUCCESS, &[], text(assigned))
        }
        RequestCode::POP_MESSAGE => {
            if pops.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                answer(
                    ResponseCode::SUCCESS,
                    &[
                        ("popTime", &rmq_client_core::now_millis().to_string()),
                        ("invisibleTime", "60000"),
                        ("reviveQid", "0"),
                        ("restNum", "0"),
                        ("startOffsetInfo", "0 1 100"),
                        ("msgOffsetInfo", &format!("0 1 {offsets}")),
                    ],
                    body.clone(),
                )
            } else {
                Some(Reply::Later(
                    Duration::from_millis(300),
                    reply_to(req, ResponseCode::POLLING_TIMEOUT, &[], bytes::Bytes::new()),
                ))
            }
        }
        _ => None,
    }
}

#[derive(Default)]
struct Seen {
    /// Offsets acknowledged (ACK_MESSAGE and BATCH_ACK_MESSAGE bits).
    acked: BTreeSet<i64>,
    /// Topics set to POP with SET_MESSAGE_REQUEST_MODE.
    pop_mode: Vec<String>,
    changes: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pop_consumer_has_acknowledged_exactly_what_it_consumed() {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = Arc::clone(&seen);
    let body = pull_body(TOPIC, 100, 10, 16);
    let pops = std::sync::atomic::AtomicUsize::new(0);
    let broker = ScriptedBroker::start(BROKER, 1, move |req| {
        let mut s = s.lock().unwrap();
        let answer = |code, ext: &[(&str, &str)], body: &str| {
            Some(Reply::Answer(reply_to(
                req,
                code,
                ext,
                bytes::Bytes::from(body.to_owned()),
            )))
        };
        match req.request_code() {
            RequestCode::SET_MESSAGE_REQUEST_MODE => {
                let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                assert_eq!(v["mode"], "POP");
                s.pop_mode.push(v["topic"].as_str().unwrap().to_owned());
                answer(ResponseCode::SUCCESS, &[], "")
            }
            RequestCode::ACK_MESSAGE => {
                s.acked.insert(req.ext("offset").unwrap().parse().unwrap());
                answer(ResponseCode::SUCCESS, &[], "")
            }
            RequestCode::BATCH_ACK_MESSAGE => {
                let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                for a in v["acks"].as_array().unwrap() {
                    let so = a["so"].as_i64().unwrap();
                    for (i, byte) in a["b"].as_array().unwrap().iter().enumerate() {
                        let byte = byte.as_u64().unwrap();
                        for bit in 0..8 {
                            if byte & (1 << bit) != 0 {
                                s.acked.insert(so + (i * 8 + bit) as i64);
                            }
                        }
                    }
                }
                answer(ResponseCode::SUCCESS, &[], "")
            }
            RequestCode::CHANGE_MESSAGE_INVISIBLETIME => {
                s.changes += 1;
                answer(ResponseCode::SYSTEM_ERROR, &[], "")
            }
            _ => pop_group_reply(req, &pops, &body, "100,101,102,103,104,105,106,107,108,109"),
        }
    })
    .await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let consumed: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let c = Arc::clone(&consumed);
    let consumer = PushConsumer::builder("cg_pop_killed")
        .client_config(
            ClientConfig::default()
                .namesrv_addr(&broker.addr)
                .client_ip("127.0.0.1"),
        )
        .subscribe(TOPIC, "*")
        .pop_mode(true)
        .listener(listener_fn(move |msgs, _ctx| {
            let c = Arc::clone(&c);
            async move {
                // Offsets 105.. are still being worked on when the process dies.
                if msgs.iter().any(|m| m.queue_offset >= 105) {
                    std::future::pending::<()>().await;
                }
                c.lock()
                    .unwrap()
                    .extend(msgs.iter().map(|m| m.queue_offset));
                ConsumeConcurrentlyStatus::ConsumeSuccess
            }
        }))
        .start()
        .await
        .unwrap();
    let want: BTreeSet<i64> = (100..105).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().acked != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acked {:?}",
            seen.lock().unwrap().acked
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        consumer
            .assigned_queues()
            .iter()
            .any(|q| q.topic == TOPIC && q.queue_id == -1)
    );
    // Killed: dropped without shutdown, with five calls in flight.
    drop(consumer);
    let alive = tasks_back_to(baseline, Duration::from_secs(2)).await;
    let s = seen.lock().unwrap();
    assert_eq!(*consumed.lock().unwrap(), want);
    assert_eq!(s.acked, want, "acknowledged exactly what was consumed");
    assert_eq!(s.changes, 0);
    assert_eq!(
        s.pop_mode,
        [TOPIC],
        "POP set for the topic, not its retry topic"
    );
    // Only the five stuck listener calls may outlive the consumer (user code is never
    // cancelled mid-call); everything rmq started has ended.
    assert!(
        alive <= baseline + 5,
        "{alive} tasks alive, {baseline} before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_popped_messages_go_to_the_dlq_then_are_acknowledged() {
    // Offsets 100 and 101; 101 was already delivered 17 times (over the default 16).
    let mut body = pull_body(TOPIC, 100, 2, 16).to_vec();
    let second = body.len() / 2;
    body[second + 72..second + 76].copy_from_slice(&17i32.to_be_bytes());
    let body = bytes::Bytes::from(body);
    // (offset of each CONSUMER_SEND_MSG_BACK's message, its delay level), and acks.
    let sent_back: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let acked: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let (sb, ak) = (Arc::clone(&sent_back), Arc::clone(&acked));
    let pops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let broker = ScriptedBroker::start(BROKER, 1, move |req| {
        let answer = |code, ext: &[(&str, &str)], body: &str| {
            Some(Reply::Answer(reply_to(
                req,
                code,
                ext,
                bytes::Bytes::from(body.to_owned()),
            )))
        };
        match req.request_code() {
            RequestCode::CONSUMER_SEND_MSG_BACK => {
                sb.lock().unwrap().push((
                    req.ext("offset").unwrap_or_default().to_owned(),
                    req.ext("delayLevel").unwrap_or_default().to_owned(),
                ));
                answer(ResponseCode::SUCCESS, &[], "")
            }
            RequestCode::ACK_MESSAGE => {
                ak.lock()
                    .unwrap()
                    .insert(req.ext("offset").unwrap().parse().unwrap());
                answer(ResponseCode::SUCCESS, &[], "")
            }
            RequestCode::CHANGE_MESSAGE_INVISIBLETIME => {
                panic!("a given-up message is not delayed")
            }
            _ => pop_group_reply(req, &pops, &body, "100,101"),
        }
    })
    .await;
    let delivered: Arc<Mutex<Vec<i64>>> = Arc::default();
    let d = Arc::clone(&delivered);
    let consumer = PushConsumer::builder("cg_pop_dlq")
        .client_config(
            ClientConfig::default()
                .namesrv_addr(&broker.addr)
                .client_ip("127.0.0.1"),
        )
        .subscribe(TOPIC, "*")
        .pop_mode(true)
        .listener(listener_fn(move |msgs, mut ctx| {
            let d = Arc::clone(&d);
            async move {
                d.lock()
                    .unwrap()
                    .extend(msgs.iter().map(|m| m.queue_offset));
                // nack(-1): straight to the DLQ.
                ctx.delay_level_when_next_consume = -1;
                (ConsumeConcurrentlyStatus::ReconsumeLater, ctx)
            }
        }))
        .start()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "acked {:?}",
            acked.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = consumer.shutdown().await;
    assert_eq!(report.messages_left, 0);
    // The over-delivered message never reached the listener; both went to the DLQ (delay
    // level -1, by their commit-log offsets) before their pops were acknowledged.
    assert_eq!(*delivered.lock().unwrap(), [100]);
    let mut back = sent_back.lock().unwrap().clone();
    back.sort();
    let phys = |o: i64| (123_456 + o * 1_200).to_string();
    assert_eq!(
        back,
        [(phys(100), "-1".to_owned()), (phys(101), "-1".to_owned())]
    );
    assert_eq!(*acked.lock().unwrap(), BTreeSet::from([100, 101]));
}
