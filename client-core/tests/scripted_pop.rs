//! The pop kernel against a scripted broker answering as the Java 5.3.3 broker does:
//! receipt handles built from the offset-info strings (normal and pop-retry messages),
//! CHANGE_MESSAGE_INVISIBLETIME answered with a new check point (which rocketmq-rust 1.0
//! cannot store, so the real-broker test cannot show it), and the acknowledgements that
//! follow, with the new handle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_client_core::pop::{ConsumeInitMode, PopKernel, PopSpec, PopStatus};
use rmq_client_core::testing::{Reply, ScriptedBroker, pull_body, reply_to};
use rmq_client_core::{
    ClientConfig, ClientInstance, ExpressionType, MessageQueue, SubscriptionData,
};
use rmq_remoting::{RemotingCommand, RequestCode, ResponseCode};

const BROKER: &str = "broker-a";
const TOPIC: &str = "T";
const GROUP: &str = "cg";
const POP_TIME: &str = "1700000000000";

#[tokio::test]
async fn receipts_are_built_swapped_by_change_invisible_time_and_acked_with_the_new_handle() {
    let requests: Arc<Mutex<Vec<RemotingCommand>>> = Arc::default();
    let seen = Arc::clone(&requests);
    // Two messages of T (queue 1, offsets 100 and 101), one of the V1 pop-retry topic
    // (queue 1, offset 7): what a Java broker's pop answers, the retry one with its real
    // topic (popResponseReturnActualRetryTopic) and no POP_CK.
    let mut body = pull_body(TOPIC, 100, 2, 8).to_vec();
    body.extend_from_slice(&pull_body("%RETRY%cg_T", 7, 1, 8));
    let body = bytes::Bytes::from(body);
    let broker = ScriptedBroker::start(BROKER, 1, move |req| {
        seen.lock().unwrap().push(req.clone());
        match req.request_code() {
            RequestCode::POP_MESSAGE => Some(Reply::Answer(reply_to(
                req,
                ResponseCode::SUCCESS,
                &[
                    ("popTime", POP_TIME),
                    ("invisibleTime", "60000"),
                    ("reviveQid", "3"),
                    ("restNum", "0"),
                    ("startOffsetInfo", "0 1 100;1 1 7"),
                    ("msgOffsetInfo", "0 1 100,101;1 1 7"),
                ],
                body.clone(),
            ))),
            RequestCode::CHANGE_MESSAGE_INVISIBLETIME => Some(Reply::Answer(reply_to(
                req,
                ResponseCode::SUCCESS,
                &[
                    ("popTime", "1700000030000"),
                    ("invisibleTime", "10000"),
                    ("reviveQid", "5"),
                ],
                bytes::Bytes::new(),
            ))),
            _ => None,
        }
    })
    .await;
    let config = ClientConfig::default()
        .namesrv_addr(&broker.addr)
        .instance_name("scripted_pop");
    let instance = ClientInstance::get_or_create(&config).unwrap();
    instance.update_topic_route(TOPIC).await.unwrap();
    let kernel = PopKernel::new(&instance, GROUP);
    let mq = MessageQueue::new(TOPIC, BROKER, -1);
    let sub = SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap();
    let r = kernel
        .pop(PopSpec {
            mq: &mq,
            subscription: &sub,
            max_msg_nums: 32,
            invisible_time: Duration::from_secs(60),
            poll_time: Duration::from_secs(1),
            init_mode: ConsumeInitMode::Min,
        })
        .await
        .unwrap();
    assert_eq!(r.status, PopStatus::Found);
    let handles: Vec<String> = r
        .messages
        .iter()
        .map(|m| m.receipt.as_ref().unwrap().handle().as_str().to_owned())
        .collect();
    assert_eq!(
        handles,
        [
            "100 1700000000000 60000 3 0 broker-a 1 100",
            "100 1700000000000 60000 3 0 broker-a 1 101",
            "7 1700000000000 60000 3 1 broker-a 1 7",
        ]
    );
    // Every message reads the popped topic and broker, the retried one included.
    assert!(
        r.messages
            .iter()
            .all(|m| &*m.topic == TOPIC && &*m.broker_name == BROKER)
    );
    {
        let reqs = requests.lock().unwrap();
        let pop = reqs
            .iter()
            .find(|q| q.request_code() == RequestCode::POP_MESSAGE)
            .unwrap();
        for (k, v) in [
            ("consumerGroup", GROUP),
            ("topic", TOPIC),
            ("queueId", "-1"),
            ("maxMsgNums", "32"),
            ("invisibleTime", "60000"),
            ("pollTime", "1000"),
            ("initMode", "0"),
            ("expType", "TAG"),
            ("exp", "*"),
            ("order", "false"),
            ("bname", BROKER),
        ] {
            assert_eq!(pop.ext(k), Some(v), "{k}");
        }
    }

    // The second message is kept invisible for 10 s more: a new handle, Java's form.
    let m101 = &r.messages[1];
    let clone = m101.clone();
    m101.receipt
        .as_ref()
        .unwrap()
        .change_invisible_time(Duration::from_secs(10))
        .await
        .unwrap();
    let new = "101 1700000030000 10000 5 0 broker-a 1 101";
    // Clones share the receipt: the copy the consume service holds sees it too.
    assert_eq!(clone.receipt.as_ref().unwrap().handle().as_str(), new);
    {
        let reqs = requests.lock().unwrap();
        let change = reqs.last().unwrap();
        assert_eq!(
            change.request_code(),
            RequestCode::CHANGE_MESSAGE_INVISIBLETIME
        );
        assert_eq!(change.ext("extraInfo"), Some(handles[1].as_str()));
        assert_eq!(change.ext("invisibleTime"), Some("10000"));
        assert_eq!(change.ext("topic"), Some(TOPIC));
        assert_eq!(change.ext("offset"), Some("101"));
    }

    // All three acknowledged in one BATCH_ACK_MESSAGE: one entry per check point.
    let refs: Vec<_> = r.messages.iter().collect();
    assert_eq!(kernel.ack(&refs).await, 3);
    let batch = requests.lock().unwrap().last().unwrap().clone();
    assert_eq!(batch.request_code(), RequestCode::BATCH_ACK_MESSAGE);
    let v: serde_json::Value = serde_json::from_slice(&batch.body).unwrap();
    assert_eq!(v["brokerName"], BROKER);
    let acks = v["acks"].as_array().unwrap();
    let entry = |so: i64, r: &str| {
        acks.iter()
            .find(|a| a["so"] == so && a["r"] == r)
            .unwrap_or_else(|| panic!("no ack of ck {so} retry {r}: {v}"))
    };
    assert_eq!(acks.len(), 3, "{v}");
    assert_eq!(
        entry(100, "0")["b"],
        serde_json::json!([1, 0, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(entry(100, "0")["pt"], 1_700_000_000_000i64);
    assert_eq!(entry(101, "0")["pt"], 1_700_000_030_000i64);
    assert_eq!(entry(101, "0")["rq"], 5);
    assert_eq!(entry(7, "1")["t"], TOPIC);
    assert!(acks.iter().all(|a| a["c"] == GROUP && a["q"] == 1));

    // One message alone: ACK_MESSAGE on the real (pop-retry) topic.
    assert!(r.messages[2].receipt.as_ref().unwrap().ack().await.unwrap());
    let ack = requests.lock().unwrap().last().unwrap().clone();
    assert_eq!(ack.request_code(), RequestCode::ACK_MESSAGE);
    assert_eq!(ack.ext("topic"), Some("%RETRY%cg_T"));
    assert_eq!(ack.ext("extraInfo"), Some(handles[2].as_str()));
    assert_eq!(
        (ack.ext("queueId"), ack.ext("offset")),
        (Some("1"), Some("7"))
    );
    instance.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_empty_pop_and_a_full_broker_are_answers_and_a_refusal_is_an_error() {
    let codes = Arc::new(Mutex::new(vec![
        ResponseCode::NO_PERMISSION,
        ResponseCode::POLLING_FULL,
        ResponseCode::POLLING_TIMEOUT,
    ]));
    let next = Arc::clone(&codes);
    let broker = ScriptedBroker::start(BROKER, 1, move |req| {
        (req.request_code() == RequestCode::POP_MESSAGE).then(|| {
            let code = next.lock().unwrap().pop().unwrap();
            Reply::Answer(reply_to(req, code, &[], bytes::Bytes::new()))
        })
    })
    .await;
    let config = ClientConfig::default()
        .namesrv_addr(&broker.addr)
        .instance_name("scripted_pop_codes");
    let instance = ClientInstance::get_or_create(&config).unwrap();
    let kernel = PopKernel::new(&instance, GROUP);
    let mq = MessageQueue::new(TOPIC, BROKER, -1);
    let sub = SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap();
    let spec = PopSpec {
        mq: &mq,
        subscription: &sub,
        max_msg_nums: 32,
        invisible_time: Duration::from_secs(60),
        poll_time: Duration::from_millis(100),
        init_mode: ConsumeInitMode::Max,
    };
    assert_eq!(kernel.pop(spec).await.unwrap().status, PopStatus::NoNewMsg);
    assert_eq!(
        kernel.pop(spec).await.unwrap().status,
        PopStatus::PollingFull
    );
    let e = kernel.pop(spec).await.unwrap_err();
    assert_eq!(e.response_code(), Some(ResponseCode::NO_PERMISSION), "{e}");
    instance.shutdown(Duration::from_secs(1)).await;
}
