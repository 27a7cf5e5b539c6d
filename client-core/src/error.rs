//! Errors of the client core.

use rmq_remoting::{HeaderError, RemotingError, RequestCode, ResponseCode};

use crate::message::MessageDecodeError;
use crate::route::RouteParseError;

/// An error of a client-core call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The transport failed (connect, timeout, connection closed).
    #[error("request failed")]
    Remoting(#[from] RemotingError),
    /// The broker or name server answered with an error code.
    #[error("{request} to {addr} answered {code}: {}", remark.as_deref().unwrap_or(""))]
    Broker {
        /// The request.
        request: RequestCode,
        /// The response code.
        code: ResponseCode,
        /// The response remark.
        remark: Option<String>,
        /// The address asked.
        addr: String,
    },
    /// A header could not be built or a response header could not be read.
    #[error("{request}: bad header")]
    Header {
        /// The request.
        request: RequestCode,
        /// What was wrong.
        #[source]
        source: HeaderError,
    },
    /// A response body was not the JSON expected.
    #[error("{request}: response body is not valid JSON")]
    Body {
        /// The request.
        request: RequestCode,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A route body could not be parsed.
    #[error("route of topic {topic} could not be parsed")]
    Route {
        /// The topic.
        topic: String,
        /// The parser's error.
        #[source]
        source: RouteParseError,
    },
    /// Messages in a pull body could not be decoded.
    #[error("pull body could not be decoded")]
    Decode(#[from] MessageDecodeError),
    /// No name server answered with a route for the topic.
    #[error("no route for topic {topic}")]
    TopicRouteNotFound {
        /// The topic.
        topic: String,
    },
    /// The route has no address for the broker (or no master where one is needed).
    #[error("no address for broker {broker_name}")]
    BrokerNotFound {
        /// The broker name.
        broker_name: String,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A consumer or producer group is already registered in this client instance.
    #[error("group {group} is already registered in client {client_id}")]
    GroupAlreadyRegistered {
        /// The group.
        group: String,
        /// The client id.
        client_id: String,
    },
    /// The client instance was shut down.
    #[error("client instance is shut down")]
    Shutdown,
}

impl ClientError {
    /// The response code when the broker answered with an error.
    pub fn response_code(&self) -> Option<ResponseCode> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// `true` for a transport timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Remoting(e) if e.is_timeout())
    }
}
