//! GO_AWAY (1500, REMOTING-5X §3) from a scripted peer on 127.0.0.1 acting as a 5.3.2+
//! server that shuts down gracefully: the refused request is sent again on a new
//! connection, a request already in flight on the old one still gets its answer there, a
//! second GO_AWAY is a typed error, and the opt-out returns the 1500 answer as it came.
//! (The rocketmq-rust 1.0 broker never sends GO_AWAY, so there is no real-broker test.)

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rmq_remoting::{
    RemotingClient, RemotingCodec, RemotingCommand, RemotingConfig, RemotingError, RequestCode,
    ResponseCode,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

const LIMIT: Duration = Duration::from_secs(20);
const CALL: Duration = Duration::from_secs(10);

type Io = Framed<TcpStream, RemotingCodec>;

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

async fn accept(l: &TcpListener) -> Io {
    Framed::new(l.accept().await.unwrap().0, RemotingCodec::default())
}

fn tagged(n: usize) -> RemotingCommand {
    let mut c = RemotingCommand::request(RequestCode::QUERY_CONSUMER_OFFSET);
    c.ext_fields = Some([("n", n.to_string())].into_iter().collect());
    c.body = bytes::Bytes::from(format!("body {n}"));
    c
}

fn reply(req: &RemotingCommand, code: ResponseCode) -> RemotingCommand {
    let mut r = RemotingCommand::response(code, Some("please go away".to_owned()))
        .with_body(req.ext("n").unwrap().to_owned().into_bytes());
    r.opaque = req.opaque;
    r
}

async fn next(io: &mut Io) -> RemotingCommand {
    io.next().await.unwrap().unwrap()
}

#[tokio::test]
async fn a_refused_request_is_sent_again_on_a_new_connection_and_the_old_one_drains() {
    tokio::time::timeout(LIMIT, async {
        let (l, addr) = listener().await;
        let client = RemotingClient::new(RemotingConfig::default());
        // Request 1 is in flight on the first connection when the server starts going away.
        let first = tokio::spawn({
            let (client, addr) = (client.clone(), addr.clone());
            async move { client.invoke(&addr, tagged(1), CALL).await }
        });
        let mut old = accept(&l).await;
        let one = next(&mut old).await;
        assert_eq!(one.ext("n"), Some("1"));
        // The GO_AWAY opt-in: 5.3.2+ servers send 1500 only to versions above 475.
        assert_eq!(one.version, rmq_remoting::protocol::VERSION_V5_3_2);
        let second = tokio::spawn({
            let (client, addr) = (client.clone(), addr.clone());
            async move { client.invoke(&addr, tagged(2), CALL).await }
        });
        let two = next(&mut old).await;
        old.send(reply(&two, ResponseCode::GO_AWAY)).await.unwrap();
        // Request 2 again, same code, header and body, on a new connection.
        let mut new = accept(&l).await;
        let again = next(&mut new).await;
        assert_eq!(again.code, two.code);
        assert_eq!(again.ext_fields, two.ext_fields);
        assert_eq!(again.body, two.body);
        new.send(reply(&again, ResponseCode::SUCCESS))
            .await
            .unwrap();
        let r2 = second.await.unwrap().unwrap();
        assert_eq!(
            (r2.code, &r2.body[..]),
            (ResponseCode::SUCCESS.0, &b"2"[..])
        );
        // New requests use the new connection.
        let third = tokio::spawn({
            let (client, addr) = (client.clone(), addr.clone());
            async move { client.invoke(&addr, tagged(3), CALL).await }
        });
        let three = next(&mut new).await;
        new.send(reply(&three, ResponseCode::SUCCESS))
            .await
            .unwrap();
        assert_eq!(&third.await.unwrap().unwrap().body[..], b"3");
        // The old connection still delivers the answer to request 1, then is closed by
        // the client: nothing holds it any more.
        old.send(reply(&one, ResponseCode::SUCCESS)).await.unwrap();
        assert_eq!(&first.await.unwrap().unwrap().body[..], b"1");
        assert!(old.next().await.is_none(), "the retired connection closes");
        client.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn go_away_twice_is_a_typed_error_and_the_opt_out_returns_the_answer() {
    tokio::time::timeout(LIMIT, async {
        let (l, addr) = listener().await;
        let peer = tokio::spawn(async move {
            // Every connection answers every request GO_AWAY, as a 5.3.2+ broker does
            // during its graceful shutdown.
            let mut conns = 0;
            while let Ok((s, _)) = l.accept().await {
                conns += 1;
                tokio::spawn(async move {
                    let mut io = Framed::new(s, RemotingCodec::default());
                    while let Some(Ok(req)) = io.next().await {
                        if io.send(reply(&req, ResponseCode::GO_AWAY)).await.is_err() {
                            break;
                        }
                    }
                });
                if conns == 3 {
                    break;
                }
            }
        });
        let client = RemotingClient::new(RemotingConfig::default());
        let err = client.invoke(&addr, tagged(1), CALL).await.unwrap_err();
        assert!(
            matches!(
                &err,
                RemotingError::GoAway { addr: a, code } if *a == addr && *code == RequestCode::QUERY_CONSUMER_OFFSET
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("shutting down"), "{err}");
        client.shutdown(Duration::from_secs(2)).await;
        let off = RemotingClient::new(RemotingConfig::default().reconnect_on_go_away(false));
        let r = off.invoke(&addr, tagged(2), CALL).await.unwrap();
        assert_eq!(r.response_code(), ResponseCode::GO_AWAY);
        off.shutdown(Duration::from_secs(2)).await;
        peer.await.unwrap();
    })
    .await
    .expect("test timed out");
}
