//! [`ErrorKind`]: what a caller can do about an error, whatever crate raised it.

use rmq_remoting::ResponseCode;

/// The kind of an rmq error, for deciding what to do about it: every consumer-facing error
/// (`ClientError`, `OffsetStoreError`, `PushConsumerError`, `PullConsumerError`) has a
/// `kind()`. Java clients throw `MQClientException` / `MQBrokerException` with a response
/// code and leave the rest to the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A setting is missing or out of range, or a name is taken: fix the configuration.
    Config,
    /// An argument of a call is out of range (a seek past the queue's end, say).
    InvalidArgument,
    /// A name server or broker could not be reached, or the connection broke.
    Network,
    /// A request got no answer in time.
    Timeout,
    /// A broker or name server answered with this error code.
    BrokerRefused(ResponseCode),
    /// A topic's route, a broker's address or an assigned queue is not known (yet).
    NotFound,
    /// Bytes from the wire (a header, a body, a message record, an offsets file) could not
    /// be read.
    Decode,
    /// A local file could not be read or written.
    Io,
    /// The client or consumer is shut down.
    ShutDown,
}

impl ErrorKind {
    /// Whether the same call may succeed if tried again later (transport faults, time-outs,
    /// broker back-pressure or fail-over, routes not yet known).
    pub fn is_retryable(self) -> bool {
        match self {
            ErrorKind::Network | ErrorKind::Timeout | ErrorKind::NotFound => true,
            ErrorKind::BrokerRefused(code) => matches!(
                code,
                ResponseCode::SYSTEM_ERROR
                    | ResponseCode::SYSTEM_BUSY
                    | ResponseCode::FLOW_CONTROL
                    | ResponseCode::SERVICE_NOT_AVAILABLE
                    | ResponseCode::SLAVE_NOT_AVAILABLE
                    | ResponseCode::FLUSH_DISK_TIMEOUT
                    | ResponseCode::FLUSH_SLAVE_TIMEOUT
                    | ResponseCode::SUBSCRIPTION_NOT_EXIST
                    | ResponseCode::SUBSCRIPTION_NOT_LATEST
                    | ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST
                    | ResponseCode::TOPIC_NOT_EXIST
                    | ResponseCode::NOT_LEADER_FOR_QUEUE
                    | ResponseCode::GO_AWAY
            ),
            ErrorKind::Config
            | ErrorKind::InvalidArgument
            | ErrorKind::Decode
            | ErrorKind::Io
            | ErrorKind::ShutDown => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_pressure_is_retryable_and_permission_is_not() {
        assert!(ErrorKind::BrokerRefused(ResponseCode::SYSTEM_BUSY).is_retryable());
        assert!(ErrorKind::BrokerRefused(ResponseCode::FLOW_CONTROL).is_retryable());
        assert!(!ErrorKind::BrokerRefused(ResponseCode::NO_PERMISSION).is_retryable());
        assert!(ErrorKind::Timeout.is_retryable());
        assert!(!ErrorKind::Config.is_retryable());
        assert!(!ErrorKind::ShutDown.is_retryable());
    }
}
