//! Errors of the push consumer.

/// An error of [`PushConsumer`](crate::PushConsumer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushConsumerError {
    /// A setting is missing or out of range; the message names it.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Talking to the cluster failed during start.
    #[error("client error")]
    Client(#[from] rmq_client_core::ClientError),
    /// The offset store could not be loaded.
    #[error("offset store error")]
    OffsetStore(#[from] rmq_offset_store::OffsetStoreError),
}

impl PushConsumerError {
    /// What kind of failure this is (config, network, broker refusal with its code,
    /// timeout, decode, shut down…).
    pub fn kind(&self) -> rmq_client_core::ErrorKind {
        match self {
            PushConsumerError::InvalidConfig(_) => rmq_client_core::ErrorKind::Config,
            PushConsumerError::Client(e) => e.kind(),
            PushConsumerError::OffsetStore(e) => e.kind(),
        }
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}
