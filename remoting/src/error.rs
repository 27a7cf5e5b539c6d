//! Errors of the transport layer.

use std::sync::Arc;
use std::time::Duration;

use crate::codec::CodecError;
use crate::protocol::RequestCode;

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
    /// The client was shut down or dropped.
    #[error("client shut down")]
    Shutdown,
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
