//! [`LitePullConsumerConfig`]: the lite pull consumer's settings, Java defaults.

use super::*;

/// Settings of a [`LitePullConsumer`], Java defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LitePullConsumerConfig {
    /// Clustering or broadcasting. Default clustering.
    pub message_model: MessageModel,
    /// Where a queue without a stored offset starts. Default `LastOffset`.
    pub consume_from_where: ConsumeFromWhere,
    /// For `Timestamp`, ms since the epoch. Default now − 30 min.
    pub consume_timestamp_ms: i64,
    /// Messages per pull. Default 10 (Java `pullBatchSize`).
    pub pull_batch_size: i32,
    /// Cached messages per queue before its pulling pauses. Default 1000.
    pub pull_threshold_for_queue: usize,
    /// Cached body bytes per queue before its pulling pauses. Default 100 MiB.
    pub pull_threshold_size_for_queue: usize,
    /// Largest offset span cached per queue. Default 2000 (Java `consumeMaxSpan`).
    pub consume_max_span: i64,
    /// Batches buffered for `poll` across all queues; pull tasks wait when it is full.
    /// Default 64 (Java's request cache is unbounded).
    pub buffer_batches: usize,
    /// Longest a `poll` without explicit timeout waits. Default 5 s (Java `pollTimeMillis`).
    pub poll_timeout: Duration,
    /// Commit polled offsets automatically. Default true (Java `autoCommit`).
    pub auto_commit: bool,
    /// Auto-commit period. Default 5 s (Java `autoCommitIntervalMillis`).
    pub auto_commit_interval: Duration,
    /// Long-poll hold. Default 20 s (Java `brokerSuspendMaxTimeMillis`).
    pub broker_suspend_max_time: Duration,
    /// Pull timeout; must exceed the hold. Default 30 s.
    pub consumer_timeout_when_suspend: Duration,
    /// Longest wait at shutdown for the consumer's tasks, for the trace records still
    /// queued, and for its unregistration. Default 5 s (Java
    /// `awaitTerminationMillisWhenShutdown`).
    pub await_termination_when_shutdown: Duration,
    /// Message trace topic, `None` (the default) for no trace (Java `enableMsgTrace` /
    /// `customizedTraceTopic`); see [`LitePullConsumerBuilder::enable_trace`].
    pub trace_topic: Option<String>,
}

impl Default for LitePullConsumerConfig {
    fn default() -> Self {
        LitePullConsumerConfig {
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::LastOffset,
            consume_timestamp_ms: rmq_client_core::now_millis() - 30 * 60 * 1000,
            pull_batch_size: 10,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue: 100 * 1024 * 1024,
            consume_max_span: 2000,
            buffer_batches: 64,
            poll_timeout: Duration::from_secs(5),
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            broker_suspend_max_time: Duration::from_millis(20_000),
            consumer_timeout_when_suspend: Duration::from_millis(30_000),
            await_termination_when_shutdown: Duration::from_secs(5),
            trace_topic: None,
        }
    }
}
