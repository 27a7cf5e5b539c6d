//! TLS on every connection of a [`RemotingClient`](crate::RemotingClient): [`TlsConfig`]
//! (built once from PEM files), the handshake, and what a failed handshake is called.
//!
//! RocketMQ has no STARTTLS: a server peeks at the first byte of a connection and treats
//! `0x16` (a TLS record) as TLS, anything else as plaintext (REMOTING-5X §7). So with TLS
//! on, the client starts the handshake as its first bytes, on name-server and broker
//! connections alike (Java `ClientConfig.useTLS` / `-Dtls.enable=true`).
//!
//! **Where rmq differs from Java on purpose.** The Java client trusts any server certificate
//! unless `tls.client.authServer=true` and test mode is off, and never checks the host name
//! (`TlsHelper`, `TlsSystemConfig`; REMOTING-5X §7 advises the same for a Rust client). That
//! default lets anyone on the path read and change every message, so rmq verifies by
//! default: the certificate must chain to the system roots (or to [`TlsConfigBuilder::ca_file`])
//! and name the server. A self-signed test cluster (the brokers' `tls.test.mode.enable`)
//! needs either its certificate as the CA file or the loudly named
//! [`TlsConfigBuilder::insecure_skip_verify`], which is Java's default behaviour.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// TLS settings of a [`RemotingClient`](crate::RemotingClient), validated and ready to use
/// (PEM files read, keys checked). Cheap to clone. Build with [`TlsConfig::builder`].
#[derive(Clone)]
pub struct TlsConfig {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
    insecure: bool,
    summary: Arc<str>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

/// Equal when built from the same settings (files, server name, verification).
impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.summary == other.summary
    }
}

impl Eq for TlsConfig {}

impl TlsConfig {
    /// Starts a builder: verify against the system roots, no client certificate, the host
    /// name of each address checked.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// `true` when server certificates are not verified
    /// ([`TlsConfigBuilder::insecure_skip_verify`]).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// Runs the handshake on a connected `stream` to `addr` (`host:port`).
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        addr: &str,
    ) -> Result<TlsStream<TcpStream>, TlsHandshakeError> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => server_name_of(addr).ok_or_else(|| TlsHandshakeError {
                kind: TlsFailure::Handshake,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{addr:?} has no host name or IP address to verify"),
                ),
            })?,
        };
        self.connector
            .connect(name, stream)
            .await
            .map_err(|source| TlsHandshakeError {
                kind: classify(&source),
                source,
            })
    }
}

/// The host of `host:port` as the name its certificate must carry: an IP address (checked
/// against the certificate's IP SANs) or a DNS name.
fn server_name_of(addr: &str) -> Option<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

/// What kind of failure ended a TLS handshake (see [`RemotingError::Tls`](crate::RemotingError::Tls)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate was refused: unknown issuer, expired, or not valid for the
    /// server's name. Fix the CA file or the server name; not retryable.
    Certificate,
    /// The server closed the connection on the client hello, or answered with something
    /// that is not TLS: it most likely does not have TLS enabled (a plaintext-only server,
    /// Java `tls.server.mode=disabled`, or a rocketmq-rust broker built without TLS).
    NotTls,
    /// Any other handshake failure: an alert from the server (for example a client
    /// certificate it refused), no protocol version or cipher in common.
    Handshake,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::Certificate => {
                "the server's certificate was not accepted (use the CA that signed it with \
                 --tls-ca / TlsConfigBuilder::ca_file, fix the server name, or for a \
                 self-signed test cluster only, --tls-insecure)"
            }
            TlsFailure::NotTls => {
                "the server did not answer the TLS handshake; it does not seem to have TLS \
                 enabled (plaintext-only server?)"
            }
            TlsFailure::Handshake => "the TLS handshake failed",
        })
    }
}

pub(crate) struct TlsHandshakeError {
    pub(crate) kind: TlsFailure,
    pub(crate) source: std::io::Error,
}

fn classify(e: &std::io::Error) -> TlsFailure {
    use std::io::ErrorKind;
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match inner {
            rustls::Error::InvalidCertificate(_) => TlsFailure::Certificate,
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => TlsFailure::NotTls,
            _ => TlsFailure::Handshake,
        };
    }
    match e.kind() {
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => TlsFailure::NotTls,
        _ => TlsFailure::Handshake,
    }
}

/// Builds a [`TlsConfig`]. Every file is PEM.
#[derive(Debug, Clone, Default)]
pub struct TlsConfigBuilder {
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
    insecure_skip_verify: bool,
}

impl TlsConfigBuilder {
    /// Trust only the CA certificates in `path` (PEM, one or more) instead of the system
    /// roots. Java `tls.client.trustCertPath` (which Java only uses with
    /// `tls.client.authServer=true`). For a self-signed server, its own certificate.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents `cert_chain` (PEM, leaf first) with its private key `key` (PEM: PKCS#8,
    /// PKCS#1 or SEC1, unencrypted) to servers that ask for one: mutual TLS. Java
    /// `tls.client.certPath` / `tls.client.keyPath`. Encrypted keys
    /// (`tls.client.keyPassword`) are not supported: decrypt them first.
    pub fn client_cert(mut self, cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert_chain.into(), key.into()));
        self
    }

    /// The name every server's certificate must carry, instead of the host of each address.
    /// For clusters whose brokers advertise IP addresses their certificates do not list
    /// (the name is also sent as SNI). Default: the host (IP or DNS name) of each address.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Turns certificate verification off**: any certificate is accepted and the server
    /// name is not checked, so the connection is encrypted but not authenticated and anyone
    /// on the path can read and change it. This is the Java client's default; use it only for
    /// test clusters with self-signed certificates. A warning is logged on every client built
    /// with it. Default `false`.
    pub fn insecure_skip_verify(mut self, yes: bool) -> Self {
        self.insecure_skip_verify = yes;
        self
    }

    /// Reads the files and builds the configuration.
    ///
    /// # Errors
    /// [`TlsConfigError`] naming the file or setting that was wrong: a file that cannot be
    /// read or holds no certificate / key, a key that does not match its certificate, a
    /// server name that is not a valid name, no system roots found.
    pub fn build(self) -> Result<TlsConfig, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Rustls)?;
        let trust = if self.insecure_skip_verify {
            "certificates NOT verified (insecure_skip_verify)".to_owned()
        } else if let Some(ca) = &self.ca_file {
            format!("CA file {}", ca.display())
        } else {
            "system roots".to_owned()
        };
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert { provider }))
        } else {
            let roots = match &self.ca_file {
                Some(path) => {
                    let mut roots = RootCertStore::empty();
                    for cert in read_certs(path, "CA file")? {
                        roots
                            .add(cert)
                            .map_err(|e| TlsConfigError::BadCertificate {
                                what: "CA file",
                                path: path.clone(),
                                source: e,
                            })?;
                    }
                    roots
                }
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_cert {
            Some((cert_path, key_path)) => {
                let certs = read_certs(cert_path, "client certificate")?;
                let key = read_key(key_path)?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    TlsConfigError::KeyMismatch {
                        cert: cert_path.clone(),
                        key: key_path.clone(),
                        source: e,
                    }
                })?
            }
            None => builder.with_no_client_auth(),
        };
        let server_name = match self.server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| TlsConfigError::InvalidServerName { name })?,
            ),
            None => None,
        };
        let summary = format!(
            "TlsConfig({trust}{}{})",
            match &self.client_cert {
                Some((c, _)) => format!(", client certificate {}", c.display()),
                None => String::new(),
            },
            match &server_name {
                Some(n) => format!(", server name {}", n.to_str()),
                None => String::new(),
            }
        );
        Ok(TlsConfig {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            insecure: self.insecure_skip_verify,
            summary: summary.into(),
        })
    }
}

/// Why a [`TlsConfig`] could not be built. Every variant is a configuration mistake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} {path}")]
    Read {
        /// Which file: "CA file", "client certificate", "client key".
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not PEM or holds no item of the expected type.
    #[error("the TLS {what} {path} holds no PEM {expected}")]
    NoPem {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What was looked for: "certificate" or "private key".
        expected: &'static str,
        /// The PEM parser's error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A CA certificate could not be used as a trust anchor.
    #[error("the TLS {what} {path} holds a certificate that cannot be used")]
    BadCertificate {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The reason.
        #[source]
        source: rustls::Error,
    },
    /// The client key does not belong to the client certificate, or cannot be used.
    #[error("the TLS client key {key} cannot be used with the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The reason.
        #[source]
        source: rustls::Error,
    },
    /// `server_name` is neither a DNS name nor an IP address.
    #[error("{name:?} is not a valid TLS server name")]
    InvalidServerName {
        /// The name given.
        name: String,
    },
    /// No CA certificate could be loaded from the system store.
    #[error("no system CA certificates found ({detail}); pass a CA file")]
    NoSystemRoots {
        /// What the loader reported.
        detail: String,
    },
    /// rustls refused the settings.
    #[error("TLS settings refused")]
    Rustls(#[source] rustls::Error),
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = read_file(path, what)?;
    let no_pem = |source| TlsConfigError::NoPem {
        what,
        path: path.to_path_buf(),
        expected: "certificate",
        source,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(no_pem)?;
    if certs.is_empty() {
        return Err(no_pem(rustls_pki_types::pem::Error::NoItemsFound));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let pem = read_file(path, "client key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| TlsConfigError::NoPem {
        what: "client key",
        path: path.to_path_buf(),
        expected: "private key",
        source,
    })
}

fn system_roots() -> Result<RootCertStore, TlsConfigError> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let detail = if loaded.errors.is_empty() {
            "the store is empty".to_owned()
        } else {
            loaded
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(TlsConfigError::NoSystemRoots { detail });
    }
    Ok(roots)
}

/// The verifier behind [`TlsConfigBuilder::insecure_skip_verify`]: any certificate and name
/// are accepted; the handshake signatures are still checked, so the session is encrypted
/// with the key of whoever answered.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
