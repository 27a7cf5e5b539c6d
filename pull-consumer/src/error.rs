//! Errors of the pull consumers.

/// An error of [`PullConsumer`](crate::PullConsumer) or [`LitePullConsumer`](crate::LitePullConsumer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullConsumerError {
    /// A setting or argument is missing or out of range; the message names it.
    #[error("invalid argument: {0}")]
    InvalidConfig(String),
    /// Talking to the cluster failed.
    #[error("client error")]
    Client(#[from] rmq_client_core::ClientError),
    /// The offset store failed.
    #[error("offset store error")]
    OffsetStore(#[from] rmq_offset_store::OffsetStoreError),
    /// The consumer was not started.
    #[error("consumer not started")]
    NotStarted,
    /// `start` was called twice.
    #[error("consumer already started")]
    AlreadyStarted,
}
