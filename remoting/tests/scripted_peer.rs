//! `RemotingClient` against a scripted TCP peer on 127.0.0.1: out-of-order answers, a peer
//! that hangs up mid-request, broker→client requests whose opaque collides with ours,
//! malformed frames and timeouts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rmq_remoting::{
    BoxFuture, CloseReason, InboundContext, RemotingClient, RemotingCodec, RemotingCommand,
    RemotingConfig, RemotingError, RequestCode, RequestHandler, ResponseCode,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

async fn accept(l: &TcpListener) -> Framed<TcpStream, RemotingCodec> {
    let (s, _) = l.accept().await.unwrap();
    Framed::new(s, RemotingCodec::default())
}

fn tagged(n: usize) -> RemotingCommand {
    let mut c = RemotingCommand::request(RequestCode::QUERY_CONSUMER_OFFSET);
    c.ext_fields = Some([("n", n.to_string())].into_iter().collect());
    c
}

fn answer(req: &RemotingCommand, body: impl Into<Bytes>) -> RemotingCommand {
    let mut r = RemotingCommand::response(ResponseCode::SUCCESS, None).with_body(body);
    r.opaque = req.opaque;
    r
}

async fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn responses_out_of_order_reach_their_callers() {
    run(async {
        let (l, addr) = listener().await;
        let peer = tokio::spawn(async move {
            let mut io = accept(&l).await;
            let mut reqs = Vec::new();
            for _ in 0..5 {
                reqs.push(io.next().await.unwrap().unwrap());
            }
            // Distinct opaques, then answers in reverse order, echoing the caller's tag.
            let mut opaques: Vec<_> = reqs.iter().map(|r| r.opaque).collect();
            opaques.dedup();
            assert_eq!(opaques.len(), 5);
            for r in reqs.iter().rev() {
                let n = r.ext("n").unwrap().to_owned();
                io.send(answer(r, n.into_bytes())).await.unwrap();
            }
            io
        });
        let client = RemotingClient::new(RemotingConfig::default());
        let calls = (0..5).map(|n| {
            let client = client.clone();
            let addr = addr.clone();
            async move {
                let r = client
                    .invoke(&addr, tagged(n), Duration::from_secs(10))
                    .await
                    .unwrap();
                assert_eq!(
                    r.body,
                    Bytes::from(n.to_string()),
                    "caller {n} got another's response"
                );
            }
        });
        futures::future::join_all(calls).await;
        peer.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn hang_up_fails_requests_in_flight_at_once_and_next_use_reconnects() {
    run(async {
        let (l, addr) = listener().await;
        let peer = tokio::spawn(async move {
            let mut io = accept(&l).await;
            let _first = io.next().await.unwrap().unwrap();
            let _second = io.next().await.unwrap().unwrap();
            drop(io); // hang up with two requests unanswered
            let mut io = accept(&l).await;
            let req = io.next().await.unwrap().unwrap();
            io.send(answer(&req, "again")).await.unwrap();
            let _ = io.next().await; // wait for the client to go away
        });
        let client = RemotingClient::new(RemotingConfig::default());
        let connects: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&connects);
        client.set_connect_hook(Arc::new(move |a: &str| {
            seen.lock().unwrap().push(a.to_owned())
        }));
        let started = Instant::now();
        let (a, b) = tokio::join!(
            client.invoke(&addr, tagged(1), Duration::from_secs(30)),
            client.invoke(&addr, tagged(2), Duration::from_secs(30)),
        );
        for r in [a, b] {
            match r {
                Err(RemotingError::ConnectionClosed { reason, .. }) => {
                    assert!(
                        matches!(*reason, CloseReason::Eof | CloseReason::Io(_)),
                        "{reason:?}"
                    );
                }
                other => panic!("expected ConnectionClosed, got {other:?}"),
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for the timeout instead of failing at once"
        );
        let r = client
            .invoke(&addr, tagged(3), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"again");
        assert_eq!(
            *connects.lock().unwrap(),
            [addr.clone(), addr.clone()],
            "the connect hook saw the first connection and the reconnect"
        );
        client.shutdown(Duration::from_secs(2)).await;
        peer.await.unwrap();
    })
    .await;
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(i32, i32)>>,
}

impl RequestHandler for Recorder {
    fn handle(
        &self,
        _ctx: InboundContext,
        req: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>> {
        self.seen.lock().unwrap().push((req.code, req.opaque));
        let resp = (req.request_code() == RequestCode::GET_CONSUMER_RUNNING_INFO
            || req.request_code() == RequestCode::NOTIFY_CONSUMER_IDS_CHANGED)
            .then(|| {
                RemotingCommand::response(ResponseCode::SUCCESS, None).with_body("running-info")
            });
        Box::pin(async move { resp })
    }
}

#[tokio::test]
async fn broker_requests_with_colliding_opaque_are_dispatched_by_the_response_bit() {
    run(async {
        let (l, addr) = listener().await;
        let peer = tokio::spawn(async move {
            let mut io = accept(&l).await;
            let ours = io.next().await.unwrap().unwrap();
            let op = ours.opaque;
            // A two-way broker request whose opaque equals the client's request in flight.
            let mut info = RemotingCommand::request(RequestCode::GET_CONSUMER_RUNNING_INFO);
            info.opaque = op;
            io.send(info).await.unwrap();
            let reply = io.next().await.unwrap().unwrap();
            assert!(reply.is_response());
            assert_eq!(reply.opaque, op);
            assert_eq!(reply.response_code(), ResponseCode::SUCCESS);
            assert_eq!(&reply.body[..], b"running-info");
            // A one-way request the handler would answer: it must get no answer. Then an
            // unknown two-way code: NOT_SUPPORTED. The next frame must be that reply.
            let mut notify = RemotingCommand::request(RequestCode::NOTIFY_CONSUMER_IDS_CHANGED);
            notify.opaque = op + 1;
            notify.mark_oneway();
            io.send(notify).await.unwrap();
            let mut unknown = RemotingCommand::request(RequestCode(9999));
            unknown.opaque = op + 2;
            io.send(unknown).await.unwrap();
            let reply = io.next().await.unwrap().unwrap();
            assert_eq!(reply.opaque, op + 2, "the one-way request was answered");
            assert_eq!(
                reply.response_code(),
                ResponseCode::REQUEST_CODE_NOT_SUPPORTED
            );
            assert_eq!(
                reply.remark.as_deref(),
                Some(" request type 9999 not supported")
            );
            // Only now answer the client's own request.
            io.send(answer(&ours, "yours")).await.unwrap();
            let _ = io.next().await;
        });
        let client = RemotingClient::new(RemotingConfig::default());
        let recorder = Arc::new(Recorder::default());
        client.set_request_handler(Arc::clone(&recorder) as Arc<dyn RequestHandler>);
        let r = client
            .invoke(&addr, tagged(0), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"yours");
        // Handlers run on their own tasks: the one-way one may finish after our answer.
        let seen = loop {
            let seen = recorder.seen.lock().unwrap().clone();
            if seen.len() >= 3 {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.contains(&(RequestCode::NOTIFY_CONSUMER_IDS_CHANGED.0, r.opaque + 1)));
        client.shutdown(Duration::from_secs(2)).await;
        peer.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn malformed_frame_closes_the_connection_after_delivering_what_came_before() {
    run(async {
        let (l, addr) = listener().await;
        let peer = tokio::spawn(async move {
            let mut io = accept(&l).await;
            let a = io.next().await.unwrap().unwrap();
            let _b = io.next().await.unwrap().unwrap();
            // The answer to A and a broken frame in one write.
            let mut bytes = bytes::BytesMut::new();
            tokio_util::codec::Encoder::encode(
                &mut RemotingCodec::default(),
                answer(&a, "ok"),
                &mut bytes,
            )
            .unwrap();
            bytes.extend_from_slice(&[0, 0, 0, 2, 0xde, 0xad]);
            let mut s = io.into_inner();
            s.write_all(&bytes).await.unwrap();
            let mut sink = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read_exact(&mut s, &mut sink).await;
        });
        let client = RemotingClient::new(RemotingConfig::default());
        let c1 = client.clone();
        let a2 = addr.clone();
        let a =
            tokio::spawn(async move { c1.invoke(&a2, tagged(1), Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b = client
            .invoke(&addr, tagged(2), Duration::from_secs(10))
            .await;
        let a = a.await.unwrap();
        assert_eq!(
            &a.unwrap().body[..],
            b"ok",
            "a response received before the bad frame was lost"
        );
        match b {
            Err(RemotingError::ConnectionClosed { reason, .. }) => {
                assert!(
                    matches!(
                        *reason,
                        CloseReason::Codec(rmq_remoting::CodecError::FrameTooShort {
                            total_len: 2
                        })
                    ),
                    "{reason:?}"
                );
            }
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }
        client.shutdown(Duration::from_secs(2)).await;
        peer.abort();
    })
    .await;
}

#[tokio::test]
async fn silent_peer_times_out_and_a_late_answer_is_dropped() {
    run(async {
        let (l, addr) = listener().await;
        let peer = tokio::spawn(async move {
            let mut io = accept(&l).await;
            let first = io.next().await.unwrap().unwrap();
            let second = io.next().await.unwrap().unwrap();
            // Answer the timed-out request late, then the second one.
            io.send(answer(&first, "late")).await.unwrap();
            io.send(answer(&second, "second")).await.unwrap();
            let _ = io.next().await;
        });
        let client = RemotingClient::new(RemotingConfig::default());
        let err = client
            .invoke(&addr, tagged(1), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(matches!(
            err,
            RemotingError::Timeout {
                code: RequestCode::QUERY_CONSUMER_OFFSET,
                ..
            }
        ));
        let r = client
            .invoke(&addr, tagged(2), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"second");
        client.shutdown(Duration::from_secs(2)).await;
        peer.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn connect_refused_is_a_typed_error() {
    run(async {
        let (l, addr) = listener().await;
        drop(l);
        let client = RemotingClient::new(RemotingConfig::default());
        let err = client
            .invoke(&addr, tagged(1), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, RemotingError::Connect { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn oneway_reaches_the_peer_with_the_oneway_flag() {
    run(async {
        let (l, addr) = listener().await;
        let peer = tokio::spawn(async move {
            let mut io = accept(&l).await;
            io.next().await.unwrap().unwrap()
        });
        let client = RemotingClient::new(RemotingConfig::default());
        client
            .invoke_oneway(&addr, tagged(7), Duration::from_secs(5))
            .await
            .unwrap();
        let got = peer.await.unwrap();
        assert!(got.is_oneway() && !got.is_response());
        assert_eq!(got.ext("n"), Some("7"));
        assert_eq!(got.version, rmq_remoting::protocol::VERSION_V5_3_2);
    })
    .await;
}
