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

#[derive(Default)]
struct Seen {
    /// Offsets acknowledged (ACK_MESSAGE and BATCH_ACK_MESSAGE bits).
    acked: BTreeSet<i64>,
    /// Topics set to POP with SET_MESSAGE_REQUEST_MODE.
    pop_mode: Vec<String>,
    pops: usize,
    changes: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pop_consumer_has_acknowledged_exactly_what_it_consumed() {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = Arc::clone(&seen);
    let body = pull_body(TOPIC, 100, 10, 16);
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
            RequestCode::GET_CONSUMER_LIST_BY_GROUP => {
                answer(ResponseCode::SUCCESS, &[], r#"{"consumerIdList":["someone"]}"#)
            }
            RequestCode::SET_MESSAGE_REQUEST_MODE => {
                let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                assert_eq!(v["mode"], "POP");
                s.pop_mode.push(v["topic"].as_str().unwrap().to_owned());
                answer(ResponseCode::SUCCESS, &[], "")
            }
            RequestCode::QUERY_ASSIGNMENT => {
                let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                if v["topic"] == TOPIC {
                    answer(
                        ResponseCode::SUCCESS,
                        &[],
                        &format!(
                            r#"{{"messageQueueAssignments":[{{"messageQueue":{{"topic":"{TOPIC}","brokerName":"{BROKER}","queueId":-1}},"mode":"POP"}}]}}"#
                        ),
                    )
                } else {
                    // The retry topic: nothing for this client.
                    answer(ResponseCode::SUCCESS, &[], r#"{"messageQueueAssignments":[]}"#)
                }
            }
            RequestCode::POP_MESSAGE => {
                s.pops += 1;
                if s.pops == 1 {
                    let mut r = reply_to(
                        req,
                        ResponseCode::SUCCESS,
                        &[
                            ("popTime", &rmq_client_core::now_millis().to_string()),
                            ("invisibleTime", "60000"),
                            ("reviveQid", "0"),
                            ("restNum", "0"),
                            ("startOffsetInfo", "0 1 100"),
                            ("msgOffsetInfo", "0 1 100,101,102,103,104,105,106,107,108,109"),
                        ],
                        body.clone(),
                    );
                    r.opaque = req.opaque;
                    Some(Reply::Answer(r))
                } else {
                    Some(Reply::Later(
                        Duration::from_millis(300),
                        reply_to(req, ResponseCode::POLLING_TIMEOUT, &[], bytes::Bytes::new()),
                    ))
                }
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
            _ => None,
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
