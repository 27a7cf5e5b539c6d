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
    /// The queue is not assigned to this consumer (a runtime condition, not a setting).
    #[error("queue {mq:?} is not assigned to this consumer")]
    QueueNotAssigned {
        /// The queue.
        mq: rmq_client_core::MessageQueue,
    },
    /// A seek target lies outside the queue's offsets.
    #[error("offset {offset} is outside {min}..={max} of {mq:?}")]
    OffsetOutOfRange {
        /// The queue.
        mq: rmq_client_core::MessageQueue,
        /// The offset asked for.
        offset: i64,
        /// The queue's min offset.
        min: i64,
        /// The queue's max offset.
        max: i64,
    },
    /// An argument of a call is out of range; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl PullConsumerError {
    /// What kind of failure this is.
    pub fn kind(&self) -> rmq_client_core::ErrorKind {
        use rmq_client_core::ErrorKind;
        match self {
            PullConsumerError::InvalidConfig(_) => ErrorKind::Config,
            PullConsumerError::Client(e) => e.kind(),
            PullConsumerError::OffsetStore(e) => e.kind(),
            PullConsumerError::QueueNotAssigned { .. } => ErrorKind::NotFound,
            PullConsumerError::OffsetOutOfRange { .. } | PullConsumerError::InvalidArgument(_) => {
                ErrorKind::InvalidArgument
            }
        }
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}
