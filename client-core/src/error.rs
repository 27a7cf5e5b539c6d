//! Errors of the client core.

use rmq_remoting::{HeaderError, RemotingError, RequestCode, ResponseCode, TlsFailure};

use crate::error_kind::ErrorKind;
use crate::message::MessageDecodeError;

/// The source of an error whose cause is another library's type (kept out of rmq's
/// public variants so that a dependency's upgrade does not change rmq's API).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
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
        source: BoxError,
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
    /// A client instance with this client id is alive with another configuration.
    #[error(
        "client instance {client_id} is alive with a different {setting}; use another instance name"
    )]
    InstanceConfigMismatch {
        /// The client id.
        client_id: String,
        /// The setting that differs (Java name).
        setting: &'static str,
    },
    /// A broker refused a subscription in CHECK_CLIENT_CONFIG (46) before the consumer
    /// started: it cannot filter by that expression type (a SQL92 subscription on a broker
    /// with `enablePropertyFilter=false`, its default, answers SYSTEM_ERROR) or cannot
    /// parse the expression (SUBSCRIPTION_PARSE_FAILED). Java throws `MQClientException`
    /// from `start()` in the same place.
    #[error(
        "broker {addr} refused the {} subscription {:?} of topic {} ({code}: {}){}",
        subscription.expression_type,
        subscription.expression,
        subscription.topic,
        subscription.remark.as_deref().unwrap_or(""),
        if *code == ResponseCode::SYSTEM_ERROR { "; SQL92 filtering needs enablePropertyFilter=true in the broker's config" } else { "" }
    )]
    SubscriptionRefused {
        /// The broker that refused it.
        addr: String,
        /// Its answer.
        code: ResponseCode,
        /// What was refused, and the broker's remark.
        subscription: Box<RefusedSubscription>,
    },
    /// The client instance was shut down.
    #[error("client instance is shut down")]
    Shutdown,
}

/// The subscription of [`ClientError::SubscriptionRefused`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusedSubscription {
    /// The topic.
    pub topic: String,
    /// `SQL92` (or another non-TAG type).
    pub expression_type: String,
    /// The expression as subscribed.
    pub expression: String,
    /// The broker's remark.
    pub remark: Option<String>,
}

impl ClientError {
    /// The response code when the broker answered with an error.
    pub fn response_code(&self) -> Option<ResponseCode> {
        match self {
            ClientError::Broker { code, .. } | ClientError::SubscriptionRefused { code, .. } => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// `true` for a transport timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Remoting(e) if e.is_timeout())
    }

    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Remoting(e) if e.is_timeout() => ErrorKind::Timeout,
            ClientError::Remoting(RemotingError::Shutdown) | ClientError::Shutdown => {
                ErrorKind::ShutDown
            }
            ClientError::Remoting(RemotingError::Encode(_)) => ErrorKind::Config,
            // A refused certificate or a server without TLS needs a configuration change.
            ClientError::Remoting(RemotingError::Tls {
                kind: TlsFailure::Certificate | TlsFailure::NotTls,
                ..
            }) => ErrorKind::Config,
            ClientError::Remoting(_) => ErrorKind::Network,
            ClientError::Broker { code, .. } => ErrorKind::BrokerRefused(*code),
            ClientError::Header { .. }
            | ClientError::Body { .. }
            | ClientError::Route { .. }
            | ClientError::Decode(_) => ErrorKind::Decode,
            ClientError::TopicRouteNotFound { .. } | ClientError::BrokerNotFound { .. } => {
                ErrorKind::NotFound
            }
            // Neither a retry nor another broker helps: the subscription or the broker's
            // configuration has to change.
            ClientError::InvalidConfig(_)
            | ClientError::SubscriptionRefused { .. }
            | ClientError::GroupAlreadyRegistered { .. }
            | ClientError::InstanceConfigMismatch { .. } => ErrorKind::Config,
        }
    }

    /// Whether the same call may succeed if tried again later ([`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_what_to_do() {
        let busy = ClientError::Broker {
            request: RequestCode::PULL_MESSAGE,
            code: ResponseCode::SYSTEM_BUSY,
            remark: None,
            addr: "127.0.0.1:10911".into(),
        };
        assert_eq!(
            busy.kind(),
            ErrorKind::BrokerRefused(ResponseCode::SYSTEM_BUSY)
        );
        assert!(busy.is_retryable());
        let missing = ClientError::TopicRouteNotFound { topic: "T".into() };
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert!(missing.is_retryable());
        let taken = ClientError::GroupAlreadyRegistered {
            group: "g".into(),
            client_id: "c".into(),
        };
        assert_eq!(taken.kind(), ErrorKind::Config);
        assert!(!taken.is_retryable());
        assert_eq!(ClientError::Shutdown.kind(), ErrorKind::ShutDown);
    }
}
