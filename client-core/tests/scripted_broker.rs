//! The pull kernel against an in-process scripted name server + broker on 127.0.0.1, for
//! the faults a real broker cannot be made to produce on demand: SYSTEM_BUSY, a slow
//! answer past the pull timeout, a connection dropped mid-pull, a pull cancelled in
//! flight. (The real-broker tests cover the ordinary paths.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rmq_client_core::testing::{Reply, ScriptedBroker, loopback_config, pull_body, reply_to};
use rmq_client_core::{
    ClientInstance, ErrorKind, ExpressionType, MessageQueue, PullKernel, PullSpec, PullStatus,
    SubscriptionData,
};
use rmq_remoting::{RemotingCommand, RequestCode, ResponseCode};

const TOPIC: &str = "TopicTest";
const BROKER: &str = "broker-a";

/// What the scripted broker does with the next PULL_MESSAGE.
enum Act {
    /// Answer with this code, next offset and body.
    Answer(ResponseCode, i64, Bytes),
    /// Answer FOUND after this delay.
    Slow(Duration),
    /// Close the connection without answering.
    HangUp,
}

/// The queue offsets pulled, in order.
type Pulls = Arc<Mutex<Vec<i64>>>;

fn pull_response(
    req: &RemotingCommand,
    code: ResponseCode,
    next: i64,
    body: Bytes,
) -> RemotingCommand {
    let next = next.to_string();
    reply_to(
        req,
        code,
        &[
            ("suggestWhichBrokerId", "0"),
            ("nextBeginOffset", next.as_str()),
            ("minOffset", "0"),
            ("maxOffset", "1000"),
        ],
        body,
    )
}

/// A scripted broker serving `TOPIC` on `BROKER` whose pulls follow `acts`.
async fn scripted_broker(acts: Vec<Act>) -> (String, Pulls) {
    let acts = Mutex::new(VecDeque::from(acts));
    let pulls: Pulls = Arc::default();
    let seen = Arc::clone(&pulls);
    let broker = ScriptedBroker::start(BROKER, 1, move |req| {
        if req.request_code() != RequestCode::PULL_MESSAGE {
            return None;
        }
        let offset: i64 = req.ext("queueOffset").unwrap().parse().unwrap();
        seen.lock().unwrap().push(offset);
        Some(match acts.lock().unwrap().pop_front() {
            Some(Act::Answer(code, next, body)) => {
                Reply::Answer(pull_response(req, code, next, body))
            }
            Some(Act::Slow(d)) => Reply::Later(
                d,
                pull_response(
                    req,
                    ResponseCode::SUCCESS,
                    offset + 1,
                    pull_body(TOPIC, offset, 1, 8),
                ),
            ),
            Some(Act::HangUp) | None => Reply::HangUp,
        })
    })
    .await;
    (broker.addr, pulls)
}

fn kernel(namesrv: &str, instance_name: &str) -> (ClientInstance, PullKernel) {
    let instance = ClientInstance::get_or_create(&loopback_config(namesrv, instance_name)).unwrap();
    let kernel = PullKernel::new(&instance, "scripted_group");
    (instance, kernel)
}

fn spec<'a>(
    mq: &'a MessageQueue,
    sub: &'a SubscriptionData,
    offset: i64,
    timeout: Duration,
) -> PullSpec<'a> {
    PullSpec {
        mq,
        subscription: sub,
        offset,
        max_msg_nums: 32,
        commit_offset: None,
        suspend: None,
        post_subscription: true,
        timeout,
    }
}

#[tokio::test]
async fn busy_found_slow_and_hang_up_each_come_back_as_what_they_are() {
    let (addr, script) = scripted_broker(vec![
        Act::Answer(ResponseCode::SYSTEM_BUSY, 0, Bytes::new()),
        Act::Answer(ResponseCode::SUCCESS, 3, pull_body(TOPIC, 0, 3, 16)),
        Act::Slow(Duration::from_secs(5)),
        Act::HangUp,
        Act::Answer(ResponseCode::PULL_NOT_FOUND, 3, Bytes::new()),
    ])
    .await;
    let (_instance, kernel) = kernel(&addr, "scripted_faults");
    let mq = MessageQueue::new(TOPIC, BROKER, 0);
    let sub = SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap();
    let quick = Duration::from_secs(3);

    // SYSTEM_BUSY: broker back-pressure, a retryable refusal carrying its code.
    let busy = kernel.pull(spec(&mq, &sub, 0, quick)).await.unwrap_err();
    assert_eq!(
        busy.kind(),
        ErrorKind::BrokerRefused(ResponseCode::SYSTEM_BUSY)
    );
    assert!(busy.is_retryable());

    // FOUND: decoded, broker name and queue offsets set from the queue and the header.
    let found = kernel.pull(spec(&mq, &sub, 0, quick)).await.unwrap();
    assert_eq!(found.status, PullStatus::Found);
    assert_eq!(found.next_begin_offset, 3);
    assert_eq!(found.messages.len(), 3);
    for (i, m) in found.messages.iter().enumerate() {
        assert_eq!(m.queue_offset, i as i64);
        assert_eq!(&*m.broker_name, BROKER);
        assert_eq!(m.queue_max_offset, Some(1000));
    }

    // An answer slower than the pull's timeout: a retryable time-out, at the timeout.
    let started = Instant::now();
    let slow = kernel
        .pull(spec(&mq, &sub, 3, Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert_eq!(slow.kind(), ErrorKind::Timeout, "{slow:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // The broker hangs up mid-pull: a network error at once, not at the timeout.
    let started = Instant::now();
    let dropped = kernel
        .pull(spec(&mq, &sub, 3, Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(dropped.kind(), ErrorKind::Network, "{dropped:?}");
    assert!(dropped.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        started.elapsed()
    );

    // The next pull reconnects and goes on.
    let none = kernel.pull(spec(&mq, &sub, 3, quick)).await.unwrap();
    assert_eq!(none.status, PullStatus::NoNewMsg);
    assert_eq!(*script.lock().unwrap(), [0, 0, 3, 3, 3]);
}

#[tokio::test]
async fn a_pull_cancelled_in_flight_leaves_the_kernel_usable() {
    let (addr, script) = scripted_broker(vec![
        Act::Slow(Duration::from_secs(10)),
        Act::Answer(ResponseCode::SUCCESS, 8, pull_body(TOPIC, 7, 1, 16)),
    ])
    .await;
    let (_instance, kernel) = kernel(&addr, "scripted_cancel");
    let mq = MessageQueue::new(TOPIC, BROKER, 0);
    let sub = SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap();
    // What a seek or a shutdown does to a long poll: drop the future mid-flight.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        kernel.pull(spec(&mq, &sub, 5, Duration::from_secs(30))),
    )
    .await;
    assert!(cancelled.is_err(), "the slow pull was still waiting");
    let r = kernel
        .pull(spec(&mq, &sub, 7, Duration::from_secs(3)))
        .await
        .unwrap();
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].queue_offset, 7);
    assert_eq!(*script.lock().unwrap(), [5, 7]);
}

#[tokio::test]
async fn advertised_broker_addresses_are_dialed_as_mapped() {
    // A name server that advertises the broker at an internal address nobody can dial
    // (a broker in Docker, say); the client maps it to where the broker really listens.
    let advertised = "10.255.255.1:10911";
    let broker = ScriptedBroker::start(BROKER, 1, move |req| match req.request_code() {
        RequestCode::GET_ROUTEINFO_BY_TOPIC => {
            let route = format!(
                r#"{{"brokerDatas":[{{"brokerAddrs":{{"0":"{advertised}"}},"brokerName":"{BROKER}","cluster":"c"}}],"queueDatas":[{{"brokerName":"{BROKER}","perm":6,"readQueueNums":1,"writeQueueNums":1,"topicSysFlag":0}}]}}"#
            );
            Some(Reply::Answer(reply_to(
                req,
                ResponseCode::SUCCESS,
                &[],
                Bytes::from(route),
            )))
        }
        RequestCode::PULL_MESSAGE => Some(Reply::Answer(pull_response(
            req,
            ResponseCode::PULL_NOT_FOUND,
            0,
            Bytes::new(),
        ))),
        _ => None,
    })
    .await;
    let instance = ClientInstance::get_or_create(
        &loopback_config(&broker.addr, "scripted_addr_map")
            .map_broker_addr(advertised, &broker.addr),
    )
    .unwrap();
    instance.update_topic_route(TOPIC).await.unwrap();
    let mq = MessageQueue::new(TOPIC, BROKER, 0);
    assert_eq!(instance.master_addr_of(&mq).await.unwrap(), broker.addr);
    let kernel = PullKernel::new(&instance, "scripted_group");
    let sub = SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap();
    // The pull reaches the broker through the mapped address, where the advertised one
    // would time out.
    let r = kernel
        .pull(spec(&mq, &sub, 0, Duration::from_secs(3)))
        .await
        .unwrap();
    assert_eq!(r.status, PullStatus::NoNewMsg);
    // Any other setting of the same instance must agree on the mapping.
    let err = ClientInstance::get_or_create(&loopback_config(&broker.addr, "scripted_addr_map"))
        .unwrap_err();
    assert!(err.to_string().contains("brokerAddrMap"), "{err}");
}

#[tokio::test]
async fn a_broker_without_the_property_filter_refuses_sql92_at_check_time_with_a_clear_error() {
    // The rocketmq-rust and Java brokers' answer with enablePropertyFilter=false (the test
    // broker of the real-broker tests has it on).
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = Arc::clone(&bodies);
    let broker = ScriptedBroker::start(BROKER, 1, move |req| {
        if req.request_code() != RequestCode::CHECK_CLIENT_CONFIG {
            return None;
        }
        seen.lock()
            .unwrap()
            .push(serde_json::from_slice(&req.body).unwrap());
        let mut r = reply_to(req, ResponseCode::SYSTEM_ERROR, &[], Bytes::new());
        r.remark = Some("The broker does not support consumer to filter message by SQL92".into());
        Some(Reply::Answer(r))
    })
    .await;
    let (instance, _) = kernel(&broker.addr, "scripted_check_client");
    instance.update_topic_route(TOPIC).await.unwrap();
    let tags = SubscriptionData::build(TOPIC, Some("TagA"), ExpressionType::Tag).unwrap();
    // TAG subscriptions are never checked.
    instance
        .check_client_in_broker("cg_sql", std::slice::from_ref(&tags))
        .await
        .unwrap();
    assert!(bodies.lock().unwrap().is_empty());
    let sql = SubscriptionData::build(TOPIC, Some("a > 5"), ExpressionType::Sql92).unwrap();
    let err = instance
        .check_client_in_broker("cg_sql", &[tags, sql])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.response_code(), Some(ResponseCode::SYSTEM_ERROR));
    let text = err.to_string();
    for part in [
        broker.addr.as_str(),
        "SQL92",
        "\"a > 5\"",
        TOPIC,
        "enablePropertyFilter=true",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["group"], "cg_sql");
    assert_eq!(bodies[0]["clientId"], instance.client_id());
    assert_eq!(bodies[0]["subscriptionData"]["expressionType"], "SQL92");
    assert_eq!(bodies[0]["subscriptionData"]["subString"], "a > 5");
}

#[tokio::test]
async fn a_static_topic_is_consumed_through_its_logical_queues_on_the_bound_broker() {
    // A route as the rocketmq-rust 1.0 name server writes it for a static topic: the
    // mapping under `topicQueueMappingInfo`, quoted integer keys; logical queues 0 and 1
    // on physical queues 5 and 6 of broker-a; queueDatas list the physical queues, which a
    // 5.x client ignores.
    let pulls: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let seen = Arc::clone(&pulls);
    // Known once the broker listens.
    let route_body: Arc<Mutex<String>> = Arc::default();
    let served = Arc::clone(&route_body);
    let broker = ScriptedBroker::start(BROKER, 1, move |req| match req.request_code() {
        RequestCode::GET_ROUTEINFO_BY_TOPIC => Some(Reply::Answer(reply_to(
            req,
            ResponseCode::SUCCESS,
            &[],
            Bytes::from(served.lock().unwrap().clone()),
        ))),
        RequestCode::PULL_MESSAGE => {
            seen.lock().unwrap().push((
                req.ext("queueId").unwrap().to_owned(),
                req.ext("queueOffset").unwrap().to_owned(),
                req.ext("bname").unwrap_or_default().to_owned(),
            ));
            // The broker answers with physical offsets in the records and the delta to the
            // logical ones in the header.
            let mut r = pull_response(req, ResponseCode::SUCCESS, 12, pull_body(TOPIC, 100, 2, 4));
            r.ext_fields
                .get_or_insert_with(Default::default)
                .insert("offsetDelta", "-90");
            Some(Reply::Answer(r))
        }
        _ => None,
    })
    .await;
    let route = format!(
        r#"{{"brokerDatas":[{{"brokerAddrs":{{"0":"{addr}"}},"brokerName":"{BROKER}","cluster":"c"}}],"queueDatas":[{{"brokerName":"{BROKER}","perm":6,"readQueueNums":8,"writeQueueNums":8,"topicSysFlag":0}}],"topicQueueMappingInfo":{{"{BROKER}":{{"topic":"{TOPIC}","scope":"__global__","totalQueues":2,"bname":"{BROKER}","epoch":1,"dirty":false,"currIdMap":{{"0":5,"1":6}}}}}}}}"#,
        addr = broker.addr
    );
    let parsed = rmq_client_core::TopicRouteData::parse(route.as_bytes()).unwrap();
    let logical = parsed.subscribe_queues(TOPIC);
    assert_eq!(
        logical,
        [
            MessageQueue::new(TOPIC, "__syslo__global__", 0),
            MessageQueue::new(TOPIC, "__syslo__global__", 1)
        ]
    );
    assert_eq!(parsed.publish_queues(TOPIC), logical);
    *route_body.lock().unwrap() = route;
    let (instance, kernel) = kernel(&broker.addr, "scripted_static_topic");
    instance.update_topic_route(TOPIC).await.unwrap();
    assert_eq!(instance.subscribe_queues(TOPIC), logical);
    let mq = &logical[1];
    assert_eq!(instance.broker_name_of(mq), BROKER);
    assert_eq!(instance.master_addr_of(mq).await.unwrap(), broker.addr);
    let sub = SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap();
    let r = kernel
        .pull(spec(mq, &sub, 10, Duration::from_secs(3)))
        .await
        .unwrap();
    // Sent with the logical queue id and offset; the messages come back logical.
    assert_eq!(
        *pulls.lock().unwrap(),
        [(
            "1".to_owned(),
            "10".to_owned(),
            "__syslo__global__".to_owned()
        )]
    );
    let got: Vec<(i32, i64, &str)> = r
        .messages
        .iter()
        .map(|m| (m.queue_id, m.queue_offset, &*m.broker_name))
        .collect();
    assert_eq!(
        got,
        [(1, 10, "__syslo__global__"), (1, 11, "__syslo__global__")]
    );
}
