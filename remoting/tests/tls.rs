//! `RemotingClient` with TLS against an in-process rustls peer on 127.0.0.1, with a CA and
//! certificates made here (rcgen): a verified round trip, each refusal with its own error
//! kind, mutual TLS, the explicit opt-out, and the configuration errors. The same client
//! against the real broker with TLS on is tested in `cli/tests/real_broker.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rmq_remoting::{
    CloseReason, RemotingClient, RemotingCodec, RemotingCommand, RemotingConfig, RemotingError,
    RequestCode, ResponseCode, TlsConfig, TlsConfigError, TlsFailure,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::codec::Framed;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A CA and what it signed, as PEM files in a temporary folder.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA ("rmq test CA"), a server certificate for `localhost` and 127.0.0.1, and a
    /// client certificate, all written as PEM.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let root = ca("rmq test CA");
        write(dir.path(), "ca.pem", &root.pem());
        let (cert, key) = leaf(&root, &["localhost", "127.0.0.1"], false);
        write(dir.path(), "server.pem", &cert);
        write(dir.path(), "server.key", &key);
        let (cert, key) = leaf(&root, &["rmq-client"], true);
        write(dir.path(), "client.pem", &cert);
        write(dir.path(), "client.key", &key);
        // Another CA and a client certificate it signed: trusted by nobody here.
        let other = ca("some other CA");
        write(dir.path(), "other-ca.pem", &other.pem());
        let (cert, key) = leaf(&other, &["rmq-client"], true);
        write(dir.path(), "other-client.pem", &cert);
        write(dir.path(), "other-client.key", &key);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A server config presenting the server certificate; with `client_auth`, client
    /// certificates signed by the CA are required.
    fn server(&self, client_auth: bool) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(self.path("ca.pem")).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let certs = CertificateDer::pem_file_iter(self.path("server.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(self.path("server.key")).unwrap();
        TlsAcceptor::from(Arc::new(builder.with_single_cert(certs, key).unwrap()))
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    client: bool,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Answers every request on `io` with SUCCESS and the body "pong" until the client leaves.
async fn pong<S: AsyncRead + AsyncWrite + Unpin>(io: S) {
    let mut frames = Framed::new(io, RemotingCodec::default());
    while let Some(Ok(req)) = frames.next().await {
        let mut r = RemotingCommand::response(ResponseCode::SUCCESS, None).with_body("pong");
        r.opaque = req.opaque;
        if frames.send(r).await.is_err() {
            break;
        }
    }
}

/// A TLS server on 127.0.0.1 answering `pong`; returns its address and a handle whose
/// result is the server's view of each handshake (Ok, or the rustls error text).
async fn tls_server(acceptor: TlsAcceptor) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        // One connection per test is all a client opens.
        let (s, _) = l.accept().await.unwrap();
        match acceptor.accept(s).await {
            Ok(tls) => {
                seen.push("ok".to_owned());
                pong(tls).await;
            }
            Err(e) => seen.push(e.to_string()),
        }
        seen
    });
    (addr, task)
}

fn ping() -> RemotingCommand {
    RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO)
}

fn client(tls: TlsConfig) -> RemotingClient {
    RemotingClient::new(RemotingConfig::default().tls(tls))
}

/// A builder trusting the PKI file `ca` (PEM).
fn trusting(pki: &Pki, ca: &str) -> rmq_remoting::TlsConfigBuilder {
    TlsConfig::builder().ca_file(pki.path(ca))
}

/// One request with `tls` to `addr`, which must fail; its error.
async fn refused(tls: TlsConfig, addr: &str) -> RemotingError {
    client(tls).invoke(addr, ping(), TIMEOUT).await.unwrap_err()
}

/// One request with `tls` to `addr`, answered `pong`; then the server saw one good
/// handshake.
async fn answered(tls: TlsConfig, addr: &str, server: tokio::task::JoinHandle<Vec<String>>) {
    let c = client(tls);
    let r = c.invoke(addr, ping(), TIMEOUT).await.unwrap();
    assert_eq!(&r.body[..], b"pong");
    c.shutdown(Duration::from_secs(1)).await;
    assert_eq!(server.await.unwrap(), ["ok"]);
}

fn tls_kind(e: &RemotingError) -> TlsFailure {
    match e {
        RemotingError::Tls { kind, .. } => *kind,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn verified_round_trip_by_ip_address() {
    let pki = Pki::new();
    let (addr, server) = tls_server(pki.server(false)).await;
    let tls = TlsConfig::builder()
        .ca_file(pki.path("ca.pem"))
        .build()
        .unwrap();
    assert!(!tls.is_insecure());
    let c = client(tls);
    let r = c.invoke(&addr, ping(), TIMEOUT).await.unwrap();
    assert_eq!(r.response_code(), ResponseCode::SUCCESS);
    assert_eq!(&r.body[..], b"pong");
    // Many requests on the one TLS connection.
    for _ in 0..50 {
        let r = c.invoke(&addr, ping(), TIMEOUT).await.unwrap();
        assert_eq!(&r.body[..], b"pong");
    }
    c.shutdown(Duration::from_secs(1)).await;
    assert_eq!(server.await.unwrap(), ["ok"]);
}

#[tokio::test]
async fn unknown_issuer_is_a_certificate_error() {
    let pki = Pki::new();
    let (addr, _server) = tls_server(pki.server(false)).await;
    let e = refused(trusting(&pki, "other-ca.pem").build().unwrap(), &addr).await;
    assert_eq!(tls_kind(&e), TlsFailure::Certificate, "{e:?}");
    let text = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(text.contains("certificate was not accepted"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn wrong_server_name_is_a_certificate_error() {
    let pki = Pki::new();
    let (addr, _server) = tls_server(pki.server(false)).await;
    let tls = trusting(&pki, "ca.pem")
        .server_name("broker.example.com")
        .build()
        .unwrap();
    let e = refused(tls, &addr).await;
    assert_eq!(tls_kind(&e), TlsFailure::Certificate, "{e:?}");
    let source = std::error::Error::source(&e).unwrap().to_string();
    assert!(source.contains("not valid for name"), "{source}");
}

#[tokio::test]
async fn server_name_override_is_checked_instead_of_the_address() {
    let pki = Pki::new();
    let (addr, server) = tls_server(pki.server(false)).await;
    // Dialled by IP, verified as "localhost" (a SAN of the server certificate).
    let tls = trusting(&pki, "ca.pem")
        .server_name("localhost")
        .build()
        .unwrap();
    answered(tls, &addr, server).await;
}

#[tokio::test]
async fn system_roots_do_not_trust_a_private_ca() {
    let pki = Pki::new();
    let (addr, _server) = tls_server(pki.server(false)).await;
    // The default: system roots. Where the machine has none, building says so.
    match TlsConfig::builder().build() {
        Ok(tls) => {
            let e = refused(tls, &addr).await;
            assert_eq!(tls_kind(&e), TlsFailure::Certificate, "{e:?}");
        }
        Err(e) => assert!(matches!(e, TlsConfigError::NoSystemRoots { .. }), "{e:?}"),
    }
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_untrusted_certificate() {
    let pki = Pki::new();
    let (addr, server) = tls_server(pki.server(false)).await;
    let tls = trusting(&pki, "other-ca.pem")
        .server_name("wrong.example.com")
        .insecure_skip_verify(true)
        .build()
        .unwrap();
    assert!(tls.is_insecure());
    assert!(format!("{tls:?}").contains("NOT verified"));
    answered(tls, &addr, server).await;
}

#[tokio::test]
async fn plaintext_server_is_named_as_such() {
    // A Remoting server without TLS reads the client hello as a frame header (length
    // 0x16030100… is far over its limit) and hangs up, as the rocketmq-rust broker built
    // without TLS and Java's `tls.server.mode=disabled` do.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut frames = Framed::new(s, RemotingCodec::default());
        let first = frames.next().await;
        assert!(matches!(first, Some(Err(_))), "{first:?}");
    });
    let pki = Pki::new();
    let e = refused(trusting(&pki, "ca.pem").build().unwrap(), &addr).await;
    assert_eq!(tls_kind(&e), TlsFailure::NotTls, "{e:?}");
    assert!(e.to_string().contains("plaintext"), "{e}");
}

#[tokio::test]
async fn plaintext_answer_to_the_hello_is_named_as_such() {
    // A peer that answers the hello with a Remoting frame (a plaintext server that replies
    // before it hangs up) is also "not TLS", not a certificate problem.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut frame = bytes::BytesMut::new();
        rmq_remoting::codec::encode_frame(
            &RemotingCommand::response(ResponseCode::SYSTEM_ERROR, Some("what?".into())),
            &mut frame,
            rmq_remoting::DEFAULT_MAX_FRAME_LEN,
        )
        .unwrap();
        s.write_all(&frame).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let pki = Pki::new();
    let e = refused(trusting(&pki, "ca.pem").build().unwrap(), &addr).await;
    assert_eq!(tls_kind(&e), TlsFailure::NotTls, "{e:?}");
}

#[tokio::test]
async fn mutual_tls_with_the_client_certificate() {
    let pki = Pki::new();
    let (addr, server) = tls_server(pki.server(true)).await;
    let tls = trusting(&pki, "ca.pem")
        .client_cert(pki.path("client.pem"), pki.path("client.key"))
        .build()
        .unwrap();
    answered(tls, &addr, server).await;
}

#[tokio::test]
async fn server_requiring_a_client_certificate_refuses_none_or_a_foreign_one() {
    for client_cert in [None, Some(("other-client.pem", "other-client.key"))] {
        let pki = Pki::new();
        let (addr, server) = tls_server(pki.server(true)).await;
        let mut builder = trusting(&pki, "ca.pem");
        if let Some((cert, key)) = client_cert {
            builder = builder.client_cert(pki.path(cert), pki.path(key));
        }
        let e = refused(builder.build().unwrap(), &addr).await;
        // With TLS 1.3 the client learns of the refusal only on its first read: the
        // connection closes with the server's alert as the reason.
        let tls_close = match &e {
            RemotingError::ConnectionClosed { reason, .. } => {
                matches!(**reason, CloseReason::Tls(_))
            }
            RemotingError::Tls { kind, .. } => *kind == TlsFailure::Handshake,
            _ => false,
        };
        assert!(tls_close, "{client_cert:?}: {e:?}");
        let seen = server.await.unwrap();
        assert_ne!(seen, ["ok"], "the server accepted {client_cert:?}");
    }
}

#[test]
fn configuration_errors_name_the_file() {
    let pki = Pki::new();
    let ca = || trusting(&pki, "ca.pem");
    type Case = (rmq_remoting::TlsConfigBuilder, fn(&TlsConfigError) -> bool);
    let cases: [Case; 5] = [
        (trusting(&pki, "nope.pem"), |e| {
            matches!(
                e,
                TlsConfigError::Read {
                    what: "CA file",
                    ..
                }
            ) && e.to_string().contains("nope.pem")
        }),
        (trusting(&pki, "server.key"), |e| {
            matches!(
                e,
                TlsConfigError::NoPem {
                    expected: "certificate",
                    ..
                }
            )
        }),
        (
            ca().client_cert(pki.path("client.pem"), pki.path("client.pem")),
            |e| {
                matches!(
                    e,
                    TlsConfigError::NoPem {
                        what: "client key",
                        ..
                    }
                )
            },
        ),
        (
            ca().client_cert(pki.path("client.pem"), pki.path("server.key")),
            |e| matches!(e, TlsConfigError::KeyMismatch { .. }),
        ),
        (ca().server_name("not a name"), |e| {
            matches!(e, TlsConfigError::InvalidServerName { .. })
        }),
    ];
    for (i, (builder, expected)) in cases.into_iter().enumerate() {
        let e = builder.build().unwrap_err();
        assert!(expected(&e), "case {i}: {e:?} ({e})");
    }
}

#[test]
fn configs_from_the_same_settings_are_equal() {
    let pki = Pki::new();
    let a = TlsConfig::builder().ca_file(pki.path("ca.pem")).build();
    let b = TlsConfig::builder().ca_file(pki.path("ca.pem")).build();
    let c = TlsConfig::builder()
        .ca_file(pki.path("ca.pem"))
        .insecure_skip_verify(true)
        .build();
    assert_eq!(a.as_ref().unwrap(), b.as_ref().unwrap());
    assert_ne!(a.unwrap(), c.unwrap());
}
