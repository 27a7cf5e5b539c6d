//! The pull kernel against an in-process scripted name server + broker on 127.0.0.1, for
//! the faults a real broker cannot be made to produce on demand: SYSTEM_BUSY, a slow
//! answer past the pull timeout, a connection dropped mid-pull, a pull cancelled in
//! flight. (The real-broker tests cover the ordinary paths.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rmq_client_core::testing::pull_body;
use rmq_client_core::{
    ClientConfig, ClientInstance, ErrorKind, ExpressionType, MessageQueue, PullKernel, PullSpec,
    PullStatus, SubscriptionData,
};
use rmq_remoting::protocol::ExtFields;
use rmq_remoting::{RemotingCodec, RemotingCommand, RequestCode, ResponseCode};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

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

struct Script {
    acts: Mutex<VecDeque<Act>>,
    pulls: Mutex<Vec<i64>>,
}

fn response(req: &RemotingCommand, code: ResponseCode, next: i64, body: Bytes) -> RemotingCommand {
    let mut r = RemotingCommand::response(code, None).with_body(body);
    r.opaque = req.opaque;
    let next = next.to_string();
    let ext: ExtFields = [
        ("suggestWhichBrokerId", "0"),
        ("nextBeginOffset", next.as_str()),
        ("minOffset", "0"),
        ("maxOffset", "1000"),
    ]
    .into_iter()
    .collect();
    r.ext_fields = Some(ext);
    r
}

/// Serves routes for `TOPIC` (one queue on `BROKER` at its own address) and scripted pulls.
async fn scripted_broker(acts: Vec<Act>) -> (String, Arc<Script>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let script = Arc::new(Script {
        acts: Mutex::new(acts.into()),
        pulls: Mutex::new(Vec::new()),
    });
    let (s, a) = (Arc::clone(&script), addr.clone());
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else {
                return;
            };
            let (script, addr) = (Arc::clone(&s), a.clone());
            tokio::spawn(serve(sock, script, addr));
        }
    });
    (addr, script)
}

/// One connection: requests are answered on their own tasks (a slow answer holds up no
/// other), through one writer; a hang-up closes the socket at once.
async fn serve(sock: tokio::net::TcpStream, script: Arc<Script>, addr: String) {
    let (mut sink, mut stream) = Framed::new(sock, RemotingCodec::default()).split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RemotingCommand>(16);
    let writer = tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            if sink.send(r).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(req)) = stream.next().await {
        let (reply, delay) = match req.request_code() {
            RequestCode::GET_ROUTEINFO_BY_TOPIC => {
                let route = format!(
                    r#"{{"brokerDatas":[{{"brokerAddrs":{{0:"{addr}"}},"brokerName":"{BROKER}","cluster":"c"}}],"queueDatas":[{{"brokerName":"{BROKER}","perm":6,"readQueueNums":1,"writeQueueNums":1,"topicSysFlag":0}}]}}"#
                );
                let mut r = RemotingCommand::response(ResponseCode::SUCCESS, None)
                    .with_body(Bytes::from(route));
                r.opaque = req.opaque;
                (r, Duration::ZERO)
            }
            RequestCode::PULL_MESSAGE => {
                let offset: i64 = req.ext("queueOffset").unwrap().parse().unwrap();
                script.pulls.lock().unwrap().push(offset);
                let act = script.acts.lock().unwrap().pop_front();
                match act {
                    Some(Act::Answer(code, next, body)) => {
                        (response(&req, code, next, body), Duration::ZERO)
                    }
                    Some(Act::Slow(d)) => {
                        let body = pull_body(TOPIC, offset, 1, 8);
                        (response(&req, ResponseCode::SUCCESS, offset + 1, body), d)
                    }
                    Some(Act::HangUp) | None => {
                        writer.abort();
                        return;
                    }
                }
            }
            _ => {
                let mut r = RemotingCommand::response(ResponseCode::SUCCESS, None);
                r.opaque = req.opaque;
                (r, Duration::ZERO)
            }
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(reply).await;
        });
    }
}

fn kernel(namesrv: &str, instance_name: &str) -> (ClientInstance, PullKernel) {
    let instance = ClientInstance::get_or_create(
        &ClientConfig::default()
            .namesrv_addr(namesrv)
            .client_ip("127.0.0.1")
            .instance_name(instance_name),
    )
    .unwrap();
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
        lite: false,
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
    assert_eq!(*script.pulls.lock().unwrap(), [0, 0, 3, 3, 3]);
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
    assert_eq!(*script.pulls.lock().unwrap(), [5, 7]);
}
