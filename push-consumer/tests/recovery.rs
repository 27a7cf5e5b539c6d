//! Recovery against a scripted broker, for what a real broker only does by accident: a
//! broker that forgot the group ("the consumer's group info not exist") gets a heartbeat at
//! once and the queue is pulled again without waiting for the next scheduled heartbeat.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_client_core::testing::{Reply, ScriptedBroker, loopback_config, reply_to};
use rmq_push_consumer::{ConsumeConcurrentlyStatus, PushConsumer, listener_fn};
use rmq_remoting::{RequestCode, ResponseCode};

/// What the broker saw, with when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Heartbeat,
    PullRefused,
    Pull,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_not_exist_is_answered_with_a_heartbeat_and_an_immediate_pull() {
    let client_id = "127.0.0.1@recovery_hb";
    let log: Arc<Mutex<Vec<(Seen, Instant)>>> = Arc::default();
    let seen = Arc::clone(&log);
    let broker = ScriptedBroker::start("broker-a", 1, move |req| {
        let now = Instant::now();
        let answer = |code, ext: &[(&str, &str)], body: &str| {
            Some(Reply::Answer(reply_to(
                req,
                code,
                ext,
                bytes::Bytes::from(body.to_owned()),
            )))
        };
        match req.request_code() {
            RequestCode::GET_CONSUMER_LIST_BY_GROUP => answer(
                ResponseCode::SUCCESS,
                &[],
                &format!(r#"{{"consumerIdList":["{client_id}"]}}"#),
            ),
            RequestCode::QUERY_CONSUMER_OFFSET => {
                answer(ResponseCode::SUCCESS, &[("offset", "0")], "")
            }
            RequestCode::HEART_BEAT => {
                seen.lock().unwrap().push((Seen::Heartbeat, now));
                None
            }
            RequestCode::PULL_MESSAGE => {
                // Only the subscribed topic's queue is refused and watched: the retry
                // topic's queue is pulled by its own loop, which was never refused.
                let empty = || {
                    reply_to(
                        req,
                        ResponseCode::PULL_NOT_FOUND,
                        &[
                            ("suggestWhichBrokerId", "0"),
                            ("nextBeginOffset", "0"),
                            ("minOffset", "0"),
                            ("maxOffset", "0"),
                        ],
                        bytes::Bytes::new(),
                    )
                };
                if req.ext("topic") != Some("TopicTest") {
                    return Some(Reply::Later(Duration::from_millis(500), empty()));
                }
                let mut log = seen.lock().unwrap();
                if log.iter().any(|(s, _)| *s == Seen::PullRefused) {
                    log.push((Seen::Pull, now));
                    // A long poll that finds nothing.
                    Some(Reply::Later(Duration::from_millis(500), empty()))
                } else {
                    log.push((Seen::PullRefused, now));
                    Some(Reply::Answer(reply_to(
                        req,
                        ResponseCode::SUBSCRIPTION_NOT_EXIST,
                        &[],
                        bytes::Bytes::new(),
                    )))
                }
            }
            _ => None,
        }
    })
    .await;
    let consumer = PushConsumer::builder("cg_recovery_hb")
        .client_config(loopback_config(&broker.addr, "recovery_hb"))
        .clean_handoff(false)
        .subscribe("TopicTest", "*")
        .listener(listener_fn(|_msgs, _ctx| async {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        }))
        .start()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (refused, heartbeat, pulled) = loop {
        let log = log.lock().unwrap().clone();
        let at = |what: Seen| log.iter().find(|(s, _)| *s == what).map(|(_, t)| *t);
        if let (Some(r), Some(p)) = (at(Seen::PullRefused), at(Seen::Pull)) {
            let hb = log
                .iter()
                .find(|(s, t)| *s == Seen::Heartbeat && *t >= r)
                .map(|(_, t)| *t);
            break (r, hb, p);
        }
        assert!(Instant::now() < deadline, "no second pull: {log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let heartbeat = heartbeat.expect("a heartbeat after the refused pull");
    assert!(
        heartbeat <= pulled,
        "the heartbeat came before the next pull"
    );
    // Java waits pullTimeDelayMillsWhenException (3 s), then fails again until the next
    // scheduled heartbeat (up to 30 s).
    assert!(
        pulled - refused < Duration::from_secs(1),
        "next pull {:?} after the refusal",
        pulled - refused
    );
    consumer.shutdown().await;
}
