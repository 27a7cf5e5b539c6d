//! Errors of the transport layer.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::CodecError;
use crate::protocol::RequestCode;
use crate::tls::TlsFailure;

/// Why a connection was closed. Every request that was in flight on it fails with
/// [`RemotingError::ConnectionClosed`] carrying this reason as its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the socket.
    #[error("peer closed the connection")]
    Eof,
    /// The peer sent a frame that could not be decoded; the stream cannot be trusted.
    #[error("malformed frame from peer")]
    Codec(#[source] CodecError),
    /// Reading or writing the socket failed.
    #[error("socket error")]
    Io(#[source] std::io::Error),
    /// The TLS layer failed after the handshake, usually an alert from the server: with
    /// TLS 1.3 a client certificate the server refuses is only reported on the first read.
    #[error("TLS error from the server (a refused or missing client certificate?)")]
    Tls(#[source] std::io::Error),
    /// The client was shut down or dropped.
    #[error("client shut down")]
    Shutdown,
}

impl CloseReason {
    /// [`CloseReason::Tls`] when `e` carries a rustls error, else [`CloseReason::Io`].
    pub(crate) fn from_io(e: std::io::Error) -> CloseReason {
        let tls = e
            .get_ref()
            .is_some_and(|i| i.is::<tokio_rustls::rustls::Error>());
        if tls {
            CloseReason::Tls(e)
        } else {
            CloseReason::Io(e)
        }
    }
}

/// An error of [`RemotingClient`](crate::RemotingClient).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemotingError {
    /// TCP connect failed.
    #[error("connect to {addr} failed")]
    Connect {
        /// The address, `host:port`.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// TCP connect did not finish in time (default 3 s, Java `connectTimeoutMillis`).
    #[error("connect to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The address.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
    /// The TLS handshake failed ([`RemotingConfig::tls`](crate::RemotingConfig::tls)); `kind`
    /// says whether the certificate, a plaintext server or the handshake itself was at
    /// fault. Not retryable without a configuration change.
    #[error("TLS connection to {addr} failed: {kind}")]
    Tls {
        /// The address.
        addr: String,
        /// What went wrong.
        kind: TlsFailure,
        /// The rustls or socket error.
        #[source]
        source: std::io::Error,
    },
    /// No response arrived in time (Java `RemotingTimeoutException`).
    #[error("{code} to {addr} timed out after {timeout:?}")]
    Timeout {
        /// The address.
        addr: String,
        /// The request code.
        code: RequestCode,
        /// The limit.
        timeout: Duration,
    },
    /// The connection closed before the response arrived, or was already closed.
    #[error("connection to {addr} closed")]
    ConnectionClosed {
        /// The address.
        addr: String,
        /// Why it closed.
        #[source]
        reason: Arc<CloseReason>,
    },
    /// The server answered GO_AWAY (1500) on the old connection and again on a new one: it
    /// is shutting down and processed neither (Java "Receive GO_AWAY twice"). Retryable
    /// later, or on another server; the route drops a broker that is gone.
    #[error("{code} to {addr}: the server is shutting down (GO_AWAY on a new connection too)")]
    GoAway {
        /// The address.
        addr: String,
        /// The request code.
        code: RequestCode,
    },
    /// The request could not be encoded (too large, header over 2^24 bytes).
    #[error("request could not be encoded")]
    Encode(#[source] CodecError),
    /// The client was shut down.
    #[error("remoting client is shut down")]
    Shutdown,
}

impl RemotingError {
    /// `true` for [`RemotingError::Timeout`] and [`RemotingError::ConnectTimeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            RemotingError::Timeout { .. } | RemotingError::ConnectTimeout { .. }
        )
    }
}
