//! Helpers for tests against a real broker (feature `testing`; not part of the API).
//!
//! `cargo xtask ci` starts a name server and a broker and exports their addresses in
//! `RMQ_NAMESRV_ADDR` and `RMQ_BROKER_ADDR`; the golden vectors live in
//! `../shared/protocol/vectors` beside the clone (or `RMQ_VECTORS_DIR`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::header::ConsumerData;
use crate::{
    ClientConfig, ClientError, ClientInstance, ConsumerInner, ExpressionType, SubscriptionData,
};

/// The value of `name`, or a panic that says how to run the real-broker tests.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need a real broker; run them with `cargo xtask ci` or `cargo xtask test-integration`")
    })
}

/// `prefix_<nanos>`: a topic or group name no other test uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{nanos}")
}

/// The golden vectors directory; panics with a clear message when it is missing.
pub fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os("RMQ_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/protocol/vectors")
        });
    assert!(
        dir.join("frames.json").exists(),
        "protocol vectors not found at {} (set RMQ_VECTORS_DIR)",
        dir.display()
    );
    dir
}

/// A client config for the test broker: loopback client IP, a unique instance name.
pub fn config(instance: &str) -> ClientConfig {
    loopback_config(&env("RMQ_NAMESRV_ADDR"), unique(instance))
}

/// A client config for a name server at `namesrv` (`host:port`, a scripted broker's or a
/// real one's) with the loopback client IP and the instance name `instance`.
pub fn loopback_config(namesrv: &str, instance: impl Into<String>) -> ClientConfig {
    ClientConfig::default()
        .namesrv_addr(namesrv)
        .client_ip("127.0.0.1")
        .instance_name(instance)
}

/// Creates (or resizes) `topic` with `queues` read and write queues on the test broker.
///
/// # Panics
/// When the broker refuses.
pub async fn create_topic(instance: &ClientInstance, topic: &str, queues: i32) {
    instance
        .create_topic(topic, queues)
        .await
        .expect("create topic");
}

/// The offset every logical queue of [`create_static_topic`] starts at (`logicOffset` =
/// `startOffset`). The rocketmq-rust 1.0 broker converts physical offsets back to logical
/// ones with the comparison inverted (`LogicQueueMappingItem::compute_static_queue_offset`
/// returns `logicOffset` when the physical offset is *past* `startOffset`), so with the
/// natural 0 every next, max and committed offset comes back as 0 and a consumer re-reads
/// from 0 forever. With both at 10^9 the conversion is the identity for every offset a
/// test reaches; only the send result's offset and a pull's min / max offset headers then
/// read 10^9.
pub const STATIC_TOPIC_ITEM_OFFSET: i64 = 1_000_000_000;

/// Creates `topic` as a static (logical-queue) topic with `queues` logical queues, logical
/// queue `i` on physical queue `i` of the test broker `broker-a` (UPDATE_AND_CREATE_STATIC_TOPIC,
/// 513, Java `MQAdminExt.createStaticTopic` for one broker), then waits (60 s at most)
/// until the name server's route carries the mapping.
///
/// # Panics
/// When the broker refuses or the route never shows the mapping.
pub async fn create_static_topic(instance: &ClientInstance, topic: &str, queues: i32) {
    use rmq_remoting::{RemotingCommand, RequestCode};
    let broker = env("RMQ_BROKER_ADDR");
    let header = crate::header::CreateTopicRequestHeader::new(topic, queues);
    let mut req = RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_STATIC_TOPIC);
    req.ext_fields = Some(rmq_remoting::protocol::ExtFields::from_header(&header).expect("header"));
    let k = STATIC_TOPIC_ITEM_OFFSET;
    let hosted: Vec<String> = (0..queues)
        .map(|q| {
            format!(
                r#""{q}":[{{"gen":0,"queueId":{q},"bname":"broker-a","logicOffset":{k},"startOffset":{k},"endOffset":-1,"timeOfStart":-1,"timeOfEnd":-1}}]"#
            )
        })
        .collect();
    req.body = bytes::Bytes::from(format!(
        r#"{{"topic":"{topic}","scope":"__global__","totalQueues":{queues},"bname":"broker-a","epoch":1,"dirty":false,"hostedQueues":{{{}}}}}"#,
        hosted.join(",")
    ));
    let client = rmq_remoting::RemotingClient::new(rmq_remoting::RemotingConfig::default());
    let resp = client
        .invoke(&broker, req, Duration::from_secs(10))
        .await
        .expect("UPDATE_AND_CREATE_STATIC_TOPIC");
    client.shutdown(Duration::from_secs(1)).await;
    assert!(
        resp.response_code().is_success(),
        "static topic refused: {:?}",
        resp.remark
    );
    for _ in 0..120 {
        if instance.update_topic_route(topic).await.is_ok()
            && instance
                .topic_route(topic)
                .is_some_and(|r| r.static_queue_brokers(topic).is_some())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the route of {topic} never showed its static mapping");
}

/// Waits (10 s at most) until the name server serves `topic` with `queues` readable queues.
///
/// # Panics
/// When it never does, or the route cannot be read.
pub async fn wait_route(instance: &ClientInstance, topic: &str, queues: usize) {
    for _ in 0..100 {
        match instance.update_topic_route(topic).await {
            Ok(_) if instance.subscribe_queues(topic).len() == queues => return,
            Ok(_) | Err(ClientError::TopicRouteNotFound { .. }) => {}
            Err(e) => panic!("route of {topic}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("route of {topic} never showed {queues} queues");
}

/// A consumer that only makes its group known to the broker through heartbeats
/// (subscribing `topic` with `*`).
#[derive(Debug, Clone)]
pub struct GroupMember {
    /// The group.
    pub group: String,
    /// The subscribed topic.
    pub topic: String,
}

impl ConsumerInner for GroupMember {
    fn group_name(&self) -> String {
        self.group.clone()
    }
    fn consumer_data(&self) -> ConsumerData {
        let sub =
            SubscriptionData::build_with_version(&self.topic, Some("*"), ExpressionType::Tag, 1)
                .expect("* is a valid expression");
        ConsumerData::new(
            &self.group,
            crate::ConsumeType::ConsumePassively,
            crate::MessageModel::Clustering,
            crate::ConsumeFromWhere::FirstOffset,
            vec![sub],
        )
    }
    fn subscribed_topics(&self) -> Vec<String> {
        vec![self.topic.clone()]
    }
}

/// A FOUND pull body: `count` V1 message records (REMOTING.md §5) of topic `topic`, queue 1,
/// offsets `first_offset..`, with `body_size`-byte bodies and TAGS / KEYS / UNIQ_KEY
/// properties (the UNIQ_KEY differs per record).
pub fn pull_body(topic: &str, first_offset: i64, count: usize, body_size: usize) -> bytes::Bytes {
    use bytes::BufMut;
    let mut b = bytes::BytesMut::new();
    let body = vec![b'x'; body_size];
    for i in 0..count as i64 {
        let offset = first_offset + i;
        let props = format!(
            "TAGS\u{1}TagA\u{2}KEYS\u{1}k{offset}\u{2}UNIQ_KEY\u{1}0A00000100002A9F{offset:016X}\u{2}"
        );
        // Fixed fields (4+4+4+4+4+8+8+4+8+(4+4)+8+(4+4)+4+8), body, topic, properties.
        let total = 84 + 4 + body.len() + 1 + topic.len() + 2 + props.len();
        b.put_i32(total as i32);
        b.put_i32(crate::message::MESSAGE_MAGIC_CODE_V1);
        b.put_i32(0); // body CRC
        b.put_i32(1); // queue id
        b.put_i32(0); // flag
        b.put_i64(offset);
        b.put_i64(123_456 + offset * 1_200); // physical offset
        b.put_i32(0); // sys flag
        b.put_i64(1_700_000_000_000); // born timestamp
        b.put_slice(&[10, 0, 0, 1]);
        b.put_i32(5555);
        b.put_i64(1_700_000_000_123); // store timestamp
        b.put_slice(&[192, 168, 1, 2]);
        b.put_i32(10911);
        b.put_i32(0); // reconsume times
        b.put_i64(0); // prepared transaction offset
        b.put_i32(body.len() as i32);
        b.put_slice(&body);
        b.put_u8(topic.len() as u8);
        b.put_slice(topic.as_bytes());
        b.put_i16(props.len() as i16);
        b.put_slice(props.as_bytes());
    }
    b.freeze()
}

/// Waits up to `limit` for the current runtime's live tasks to fall to `baseline`; returns
/// the count last seen (a test then asserts it is `<= baseline`).
pub async fn tasks_back_to(baseline: usize, limit: Duration) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let started = std::time::Instant::now();
    loop {
        let alive = metrics.num_alive_tasks();
        if alive <= baseline || started.elapsed() >= limit {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A loopback address where nothing listens (a name server that refuses connections).
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = l.local_addr().expect("local address").to_string();
    drop(l);
    addr
}

/// What a [`ScriptedBroker`] does with one request.
#[derive(Debug)]
pub enum Reply {
    /// Send this response.
    Answer(rmq_remoting::RemotingCommand),
    /// Send this response after the delay (other requests are answered meanwhile).
    Later(Duration, rmq_remoting::RemotingCommand),
    /// Close the connection without answering.
    HangUp,
}

/// A response to `req` with `code`, these ext fields and `body`.
pub fn reply_to(
    req: &rmq_remoting::RemotingCommand,
    code: rmq_remoting::ResponseCode,
    ext: &[(&str, &str)],
    body: bytes::Bytes,
) -> rmq_remoting::RemotingCommand {
    let mut r = rmq_remoting::RemotingCommand::response(code, None).with_body(body);
    r.opaque = req.opaque;
    if !ext.is_empty() {
        r.ext_fields = Some(ext.iter().copied().collect());
    }
    r
}

/// An in-process name server and broker on 127.0.0.1, for the faults a real broker cannot
/// be made to produce on demand. Every request goes to the handler first; when it
/// returns `None`, a route request is answered with `queues` queues on broker
/// `broker_name` at this address and any other request with SUCCESS and nothing. Each request is answered on its own task (a slow answer holds up
/// no other). Stops with the test's runtime.
#[derive(Debug, Clone)]
pub struct ScriptedBroker {
    /// `127.0.0.1:port`, name server and broker alike.
    pub addr: String,
}

type Handler = dyn Fn(&rmq_remoting::RemotingCommand) -> Option<Reply> + Send + Sync;

impl ScriptedBroker {
    /// Listens on a free loopback port.
    pub async fn start(
        broker_name: &str,
        queues: i32,
        handler: impl Fn(&rmq_remoting::RemotingCommand) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address").to_string();
        let handler: std::sync::Arc<Handler> = std::sync::Arc::new(handler);
        let route = format!(
            r#"{{"brokerDatas":[{{"brokerAddrs":{{0:"{addr}"}},"brokerName":"{broker_name}","cluster":"c"}}],"queueDatas":[{{"brokerName":"{broker_name}","perm":6,"readQueueNums":{queues},"writeQueueNums":{queues},"topicSysFlag":0}}]}}"#
        );
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, std::sync::Arc::clone(&handler), route.clone()));
            }
        });
        ScriptedBroker { addr }
    }
}

async fn serve(sock: tokio::net::TcpStream, handler: std::sync::Arc<Handler>, route: String) {
    use futures::{SinkExt, StreamExt};
    use rmq_remoting::{RemotingCodec, RemotingCommand, RequestCode, ResponseCode};
    let framed = tokio_util::codec::Framed::new(sock, RemotingCodec::default());
    let (mut sink, mut stream) = framed.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RemotingCommand>(16);
    let writer = tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            if sink.send(r).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(req)) = stream.next().await {
        let reply = handler(&req).unwrap_or_else(|| {
            let body = if req.request_code() == RequestCode::GET_ROUTEINFO_BY_TOPIC {
                bytes::Bytes::from(route.clone())
            } else {
                bytes::Bytes::new()
            };
            Reply::Answer(reply_to(&req, ResponseCode::SUCCESS, &[], body))
        });
        let (resp, delay) = match reply {
            Reply::Answer(r) => (r, Duration::ZERO),
            Reply::Later(d, r) => (r, d),
            Reply::HangUp => {
                writer.abort();
                return;
            }
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            // (A zero sleep would still wait for the timer's next millisecond tick.)
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let _ = tx.send(resp).await;
        });
    }
}
