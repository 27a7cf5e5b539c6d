//! Against the real name server and broker that `cargo xtask ci` (or `cargo xtask broker
//! start`) runs on 127.0.0.1. Marked `#[ignore]` so plain `cargo test` skips them; the xtask
//! runs them with `--ignored` and the addresses in `RMQ_NAMESRV_ADDR` / `RMQ_BROKER_ADDR`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmq_remoting::{
    RemotingClient, RemotingCommand, RemotingConfig, RequestCode, ResponseCode, SerializeType,
};
use serde::Serialize;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need a real broker; run them with `cargo xtask ci` or `cargo xtask test-integration`")
    })
}

/// Java `CreateTopicRequestHeader` (UPDATE_AND_CREATE_TOPIC, code 17).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateTopicRequestHeader {
    topic: String,
    default_topic: String,
    read_queue_nums: i32,
    write_queue_nums: i32,
    perm: i32,
    topic_filter_type: String,
    topic_sys_flag: i32,
    order: bool,
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{nanos}")
}

async fn create_topic(client: &RemotingClient, broker: &str, topic: &str, queues: i32) {
    let mut req = RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC);
    req.set_header(&CreateTopicRequestHeader {
        topic: topic.into(),
        default_topic: "TBW102".into(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm: 6,
        topic_filter_type: "SINGLE_TAG".into(),
        topic_sys_flag: 0,
        order: false,
    })
    .unwrap();
    let resp = client
        .invoke(broker, req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "create topic: {:?}",
        resp.remark
    );
}

async fn route(client: &RemotingClient, namesrv: &str, topic: &str) -> RemotingCommand {
    let mut req = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC);
    req.ext_fields = Some(
        [("topic", topic), ("acceptStandardJsonOnly", "true")]
            .into_iter()
            .collect(),
    );
    client
        .invoke(namesrv, req, Duration::from_secs(5))
        .await
        .unwrap()
}

async fn create_then_route(serialize_type: SerializeType) {
    let namesrv = env("RMQ_NAMESRV_ADDR");
    let broker = env("RMQ_BROKER_ADDR");
    let client = RemotingClient::new(RemotingConfig::default().serialize_type(serialize_type));
    let topic = unique(&format!("rmq_remoting_{serialize_type:?}"));

    let missing = route(&client, &namesrv, &topic).await;
    assert_eq!(missing.response_code(), ResponseCode::TOPIC_NOT_EXIST);

    create_topic(&client, &broker, &topic, 5).await;
    // The broker registers the new topic with the name server right away; allow a moment.
    let mut resp = route(&client, &namesrv, &topic).await;
    for _ in 0..50 {
        if resp.response_code().is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        resp = route(&client, &namesrv, &topic).await;
    }
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "route: {:?}",
        resp.remark
    );
    let body: serde_json::Value =
        serde_json::from_slice(&resp.body).expect("standard JSON route body");
    let brokers = body["brokerDatas"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{body}");
    assert_eq!(brokers[0]["brokerAddrs"]["0"], broker.as_str(), "{body}");
    let broker_name = brokers[0]["brokerName"].as_str().unwrap();
    let queues = body["queueDatas"].as_array().unwrap();
    assert_eq!(queues.len(), 1, "{body}");
    assert_eq!(queues[0]["brokerName"], broker_name);
    assert_eq!(queues[0]["readQueueNums"], 5, "{body}");
    assert_eq!(queues[0]["writeQueueNums"], 5, "{body}");
    assert_eq!(queues[0]["perm"], 6, "{body}");
    client.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn create_topic_and_read_route_json_headers() {
    tokio::time::timeout(
        Duration::from_secs(60),
        create_then_route(SerializeType::Json),
    )
    .await
    .expect("timed out");
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn create_topic_and_read_route_rocketmq_headers() {
    tokio::time::timeout(
        Duration::from_secs(60),
        create_then_route(SerializeType::RocketMq),
    )
    .await
    .expect("timed out");
}
