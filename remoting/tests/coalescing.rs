//! Receive coalescing against a scripted TCP peer on 127.0.0.1: a connection's reader that
//! expects more bytes than come waits at most `coalesce_wait`, a client with it off does
//! not wait, and a hang-up wakes a waiting reader at once.
//!
//! The scripts: the client sends A (expecting 100 KB back) and B (expecting nothing); the
//! peer answers B at once, so the reader wakes, reads B and then waits for three quarters
//! of the 100 KB it still expects (capped at an eighth of the socket's receive buffer).
//! Only after B's caller sent C does the peer answer A, with a few bytes, and then C.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rmq_remoting::{
    RemotingClient, RemotingCodec, RemotingCommand, RemotingConfig, RemotingError, RequestCode,
    ResponseCode,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

const EXPECTED: usize = 100_000;

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

fn tagged(tag: &str) -> RemotingCommand {
    let mut c = RemotingCommand::request(RequestCode::QUERY_CONSUMER_OFFSET);
    c.ext_fields = Some([("tag", tag.to_owned())].into_iter().collect());
    c
}

fn answer(req: &RemotingCommand) -> RemotingCommand {
    answer_with(req, Bytes::from(req.ext("tag").unwrap().to_owned()))
}

fn answer_with(req: &RemotingCommand, body: Bytes) -> RemotingCommand {
    let mut r = RemotingCommand::response(ResponseCode::SUCCESS, None).with_body(body);
    r.opaque = req.opaque;
    r
}

/// `cmd`'s frame, appended to `out`.
fn encode_into(cmd: RemotingCommand, out: &mut bytes::BytesMut) {
    tokio_util::codec::Encoder::encode(&mut RemotingCodec::default(), cmd, out).unwrap();
}

async fn accept(l: &TcpListener) -> Framed<TcpStream, RemotingCodec> {
    let (s, _) = l.accept().await.unwrap();
    Framed::new(s, RemotingCodec::default())
}

/// The peer of the script above; `hang_up` closes the connection instead of answering A.
async fn peer(l: TcpListener, hang_up: bool) {
    let mut io = accept(&l).await;
    let (x, y) = (io_next(&mut io).await, io_next(&mut io).await);
    let (a, b) = if x.ext("tag") == Some("a") {
        (x, y)
    } else {
        (y, x)
    };
    assert_eq!((a.ext("tag"), b.ext("tag")), (Some("a"), Some("b")));
    io.send(answer(&b)).await.unwrap();
    let c = io_next(&mut io).await;
    assert_eq!(c.ext("tag"), Some("c"));
    if hang_up {
        return;
    }
    io.send(answer(&a)).await.unwrap();
    io.send(answer(&c)).await.unwrap();
    // Hold the connection until the client is done with it.
    let _ = io.next().await;
}

async fn io_next(io: &mut Framed<TcpStream, RemotingCodec>) -> RemotingCommand {
    io.next().await.unwrap().unwrap()
}

/// Runs the script on a client with `wait`; returns A's result and how long after C was
/// sent it came.
async fn script(
    wait: Duration,
    hang_up: bool,
) -> (Result<RemotingCommand, RemotingError>, Duration) {
    let (l, addr) = listener().await;
    let peer = tokio::spawn(peer(l, hang_up));
    let client = RemotingClient::new(RemotingConfig::default().coalesce_wait(wait));
    let timeout = Duration::from_secs(30);
    let a = {
        let (client, addr) = (client.clone(), addr.clone());
        tokio::spawn(async move {
            let r = client
                .invoke_expecting(&addr, tagged("a"), timeout, EXPECTED)
                .await;
            (r, Instant::now())
        })
    };
    let b = client.invoke(&addr, tagged("b"), timeout).await.unwrap();
    assert_eq!(b.body, Bytes::from("b"));
    let c_sent = Instant::now();
    let c = client.invoke(&addr, tagged("c"), timeout).await;
    let (a, a_done) = a.await.unwrap();
    if !hang_up {
        assert_eq!(c.unwrap().body, Bytes::from("c"));
    }
    drop(client);
    peer.await.unwrap();
    (a, a_done.saturating_duration_since(c_sent))
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_reader_expecting_more_than_comes_waits_at_most_coalesce_wait() {
    let (a, after) = script(Duration::from_millis(300), false).await;
    assert_eq!(a.unwrap().body, Bytes::from("a"));
    // Held by the guess, then read when the wait ran out (not at a request timeout).
    assert!(
        after >= Duration::from_millis(250),
        "A came {after:?} after C was sent"
    );
    assert!(
        after < Duration::from_secs(5),
        "A came {after:?} after C was sent"
    );
}

#[tokio::test]
async fn with_coalescing_off_the_reader_wakes_for_every_response() {
    let (a, after) = script(Duration::ZERO, false).await;
    assert_eq!(a.unwrap().body, Bytes::from("a"));
    assert!(
        after < Duration::from_millis(250),
        "A came {after:?} after C was sent"
    );
}

#[tokio::test]
async fn a_hang_up_wakes_a_reader_that_expects_more() {
    let (a, after) = script(Duration::from_secs(10), true).await;
    assert!(
        matches!(a, Err(RemotingError::ConnectionClosed { .. })),
        "{a:?}"
    );
    assert!(
        after < Duration::from_secs(5),
        "A failed {after:?} after C was sent"
    );
}

#[tokio::test]
async fn a_frame_written_in_small_pieces_arrives_whole() {
    use tokio::io::AsyncWriteExt;
    let (l, addr) = listener().await;
    let body = Bytes::from(vec![b'x'; 300_000]);
    let peer = {
        let body = body.clone();
        tokio::spawn(async move {
            let mut io = accept(&l).await;
            let req = io_next(&mut io).await;
            let mut frame = bytes::BytesMut::new();
            encode_into(answer_with(&req, body), &mut frame);
            // One piece at a time, each sent on its own (no Nagle), so that the reader sees
            // the frame begin, plans for its rest, and reads parts of it many times over.
            let mut s = io.into_inner();
            s.set_nodelay(true).unwrap();
            for piece in frame.chunks(997) {
                s.write_all(piece).await.unwrap();
            }
            // Hold the connection until the client is done with it.
            let _ = tokio::io::AsyncReadExt::read_exact(&mut s, &mut [0u8; 1]).await;
        })
    };
    let client = RemotingClient::new(RemotingConfig::default());
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        client.invoke_expecting(&addr, tagged("a"), Duration::from_secs(30), 300_000),
    )
    .await
    .expect("the frame's last piece did not wake the reader")
    .unwrap();
    assert_eq!(r.body, body);
    drop(client);
    peer.await.unwrap();
}

/// The peer answers X with a small frame written together with the first 90 KB of a
/// 100 KB answer to Z; the reader reads part of that, returns X's answer, sets its mark
/// for the rest of Z's, then reads more before it waits. Only once X's caller has sent Y
/// does the peer write Z's last 10 KB — less than the rest measured before that read. A
/// mark planned then and not planned again would never be reached.
#[tokio::test]
async fn a_mark_is_planned_again_after_every_read() {
    use tokio::io::AsyncWriteExt;
    let (l, addr) = listener().await;
    let body = Bytes::from(vec![b'z'; 100_000]);
    let peer = {
        let body = body.clone();
        tokio::spawn(async move {
            let mut io = accept(&l).await;
            let (p, q) = (io_next(&mut io).await, io_next(&mut io).await);
            let (x, z) = if p.ext("tag") == Some("x") {
                (p, q)
            } else {
                (q, p)
            };
            let mut bytes = bytes::BytesMut::new();
            encode_into(answer(&x), &mut bytes);
            let small = bytes.len();
            encode_into(answer_with(&z, body), &mut bytes);
            let last = bytes.split_off(bytes.len() - 10_000);
            assert!(bytes.len() > small + 80_000);
            io.get_mut().write_all(&bytes).await.unwrap();
            let y = io_next(&mut io).await;
            assert_eq!(y.ext("tag"), Some("y"));
            io.get_mut().write_all(&last).await.unwrap();
            io.send(answer(&y)).await.unwrap();
            let _ = io.next().await;
        })
    };
    let client = RemotingClient::new(RemotingConfig::default());
    let timeout = Duration::from_secs(30);
    let z = {
        let (client, addr) = (client.clone(), addr.clone());
        tokio::spawn(async move { client.invoke(&addr, tagged("z"), timeout).await })
    };
    let x = client.invoke(&addr, tagged("x"), timeout).await.unwrap();
    assert_eq!(x.body, Bytes::from("x"));
    let (y, z) = tokio::join!(
        client.invoke(&addr, tagged("y"), timeout),
        tokio::time::timeout(Duration::from_secs(10), z)
    );
    let z = z
        .expect("Z's last 10 KB did not wake the reader")
        .unwrap()
        .unwrap();
    assert_eq!(z.body, body);
    assert_eq!(y.unwrap().body, Bytes::from("y"));
    drop(client);
    peer.await.unwrap();
}
