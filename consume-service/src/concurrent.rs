//! The concurrent consume service (Java `ConsumeMessageConcurrentlyService`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rmq_client_core::message::property;
use rmq_client_core::{MessageExt, MessageQueue};
use rmq_offset_store::OffsetStore;
use rmq_rebalance::MessageModel;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::listener::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeMessageContext,
    ConsumeMessageHook, DynConcurrent, MessageListenerConcurrently,
};
use crate::process_queue::ProcessQueue;
use crate::send_back::SendBack;

/// Delay before messages whose send-back failed are consumed again locally (Java 5000 ms).
pub const LOCAL_RETRY_DELAY: Duration = Duration::from_millis(5000);

/// Settings of the concurrent service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConcurrentConfig {
    /// The (namespaced) consumer group.
    pub group: String,
    /// Clustering (failures retried via the broker) or broadcasting (failures dropped).
    pub message_model: MessageModel,
    /// Messages per listener call. Default 1 (Java `consumeMessageBatchMaxSize`).
    pub consume_message_batch_max_size: usize,
    /// Listener calls in flight at most. Default 20 (Java `consumeThreadMax`). A real
    /// bound: Java's pool grows its queue without limit instead (apache/rocketmq#3312).
    pub consume_thread_max: usize,
    /// A call running longer counts as `ReconsumeLater`. Default 15 min (Java `consumeTimeout`).
    pub consume_timeout: Duration,
}

impl ConcurrentConfig {
    /// Java's defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        ConcurrentConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_message_batch_max_size: 1,
            consume_thread_max: 20,
            consume_timeout: Duration::from_secs(15 * 60),
        }
    }
}

struct Inner {
    listener: Box<dyn DynConcurrent>,
    config: ConcurrentConfig,
    offset_store: Arc<dyn OffsetStore>,
    send_back: SendBack,
    hooks: Vec<Arc<dyn ConsumeMessageHook>>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    token: CancellationToken,
}

/// Runs the listener on pulled messages with a bounded number of calls in flight, sends
/// failures back for retry, and advances offsets only past consumed messages.
///
/// # Drop behavior
/// Dropping the last clone does not stop calls in flight; use [`ConsumeMessageConcurrentlyService::shutdown`].
#[derive(Clone)]
pub struct ConsumeMessageConcurrentlyService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConsumeMessageConcurrentlyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumeMessageConcurrentlyService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn status_name(s: ConsumeConcurrentlyStatus) -> &'static str {
    match s {
        ConsumeConcurrentlyStatus::ConsumeSuccess => "CONSUME_SUCCESS",
        ConsumeConcurrentlyStatus::ReconsumeLater => "RECONSUME_LATER",
    }
}

impl ConsumeMessageConcurrentlyService {
    /// A service running `listener`.
    pub fn new<L: MessageListenerConcurrently>(
        listener: L,
        config: ConcurrentConfig,
        offset_store: Arc<dyn OffsetStore>,
        send_back: SendBack,
        hooks: Vec<Arc<dyn ConsumeMessageHook>>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(config.consume_thread_max.max(1)));
        ConsumeMessageConcurrentlyService {
            inner: Arc::new(Inner {
                listener: Box::new(listener),
                config,
                offset_store,
                send_back,
                hooks,
                permits,
                tracker: TaskTracker::new(),
                token: CancellationToken::new(),
            }),
        }
    }

    /// Hands pulled messages (already cached in `pq`) to the listener in batches of
    /// `consumeMessageBatchMaxSize`. Returns at once; each batch waits for a free slot.
    /// The number of waiting batches is bounded by the pull flow control (what `pq` may
    /// cache), not by this service.
    pub fn submit(&self, msgs: Vec<MessageExt>, pq: &Arc<ProcessQueue>, mq: &MessageQueue) {
        let size = self.inner.config.consume_message_batch_max_size.max(1);
        let mut msgs = msgs;
        while !msgs.is_empty() {
            let rest = msgs.split_off(size.min(msgs.len()));
            self.spawn_batch(msgs, Arc::clone(pq), mq.clone(), Duration::ZERO);
            msgs = rest;
        }
    }

    fn spawn_batch(
        &self,
        batch: Vec<MessageExt>,
        pq: Arc<ProcessQueue>,
        mq: MessageQueue,
        delay: Duration,
    ) {
        let this = self.clone();
        let span = tracing::debug_span!("consume", queue = ?mq, count = batch.len());
        self.inner.tracker.spawn(
            async move {
                if !delay.is_zero() {
                    tokio::select! {
                        _ = this.inner.token.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                let permit = tokio::select! {
                    _ = this.inner.token.cancelled() => return,
                    p = Arc::clone(&this.inner.permits).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                if pq.is_dropped() {
                    // Released queue: these messages stay unconsumed and uncommitted.
                    return;
                }
                this.run_batch(batch, &pq, &mq).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    async fn run_batch(
        &self,
        mut batch: Vec<MessageExt>,
        pq: &Arc<ProcessQueue>,
        mq: &MessageQueue,
    ) {
        let inner = &self.inner;
        let now = rmq_client_core::now_millis().to_string();
        for m in &mut batch {
            inner.send_back.reset_retry_and_namespace(m);
            m.properties
                .insert(property::CONSUME_START_TIME, now.as_str());
        }
        let mut ctx = ConsumeConcurrentlyContext::new(mq.clone());
        let mut hook_ctx = ConsumeMessageContext {
            consumer_group: inner.config.group.clone(),
            message_queue: mq.clone(),
            message_count: batch.len(),
            success: false,
            status: "",
        };
        for h in &inner.hooks {
            h.consume_message_before(&hook_ctx, &batch);
        }
        let started = Instant::now();
        let call = AssertUnwindSafe(inner.listener.consume(&batch, &mut ctx)).catch_unwind();
        let (status, outcome) = match tokio::time::timeout(inner.config.consume_timeout, call).await
        {
            Ok(Ok(s)) => (s, status_name(s)),
            Ok(Err(_)) => {
                tracing::warn!(queue = ?mq, "listener panicked; the batch will be retried");
                (ConsumeConcurrentlyStatus::ReconsumeLater, "EXCEPTION")
            }
            Err(_) => {
                tracing::warn!(queue = ?mq, timeout = ?inner.config.consume_timeout, "listener timed out; the batch will be retried");
                (ConsumeConcurrentlyStatus::ReconsumeLater, "TIME_OUT")
            }
        };
        let elapsed = started.elapsed();
        metrics::histogram!("rmq_consume_latency_seconds", "group" => inner.config.group.clone())
            .record(elapsed.as_secs_f64());
        hook_ctx.success = status == ConsumeConcurrentlyStatus::ConsumeSuccess;
        hook_ctx.status = outcome;
        for h in &inner.hooks {
            h.consume_message_after(&hook_ctx, &batch);
        }
        self.process_result(status, &ctx, batch, pq, mq).await;
    }

    /// Java `processConsumeResult`.
    async fn process_result(
        &self,
        status: ConsumeConcurrentlyStatus,
        ctx: &ConsumeConcurrentlyContext,
        batch: Vec<MessageExt>,
        pq: &Arc<ProcessQueue>,
        mq: &MessageQueue,
    ) {
        let inner = &self.inner;
        let len = batch.len() as i64;
        let ack_index: i64 = match status {
            ConsumeConcurrentlyStatus::ConsumeSuccess => i64::from(ctx.ack_index).min(len - 1),
            ConsumeConcurrentlyStatus::ReconsumeLater => -1,
        };
        let ok = (ack_index + 1) as u64;
        let failed_count = (len - ack_index - 1) as u64;
        let group = inner.config.group.clone();
        metrics::counter!("rmq_consumed_total", "group" => group.clone(), "result" => "ok")
            .increment(ok);
        metrics::counter!("rmq_consumed_total", "group" => group, "result" => "failed")
            .increment(failed_count);
        let mut local_retry = Vec::new();
        for (i, m) in batch.iter().enumerate() {
            if i as i64 <= ack_index {
                continue;
            }
            match inner.config.message_model {
                MessageModel::Broadcasting => {
                    tracing::warn!(msg_id = m.msg_id(), queue = ?mq, "broadcasting: consume failed, message dropped (no retry in broadcasting mode)");
                }
                MessageModel::Clustering => {
                    if let Err(e) = inner
                        .send_back
                        .send_message_back(m, ctx.delay_level_when_next_consume)
                        .await
                    {
                        tracing::warn!(msg_id = m.msg_id(), error = %e, "send-back failed; consuming again locally in 5 s");
                        let mut again = m.clone();
                        again.reconsume_times += 1;
                        local_retry.push(again);
                    }
                }
            }
        }
        // Messages kept for a local retry stay in the cache, so the offset cannot pass them.
        let done: Vec<i64> = batch
            .iter()
            .map(|m| m.queue_offset)
            .filter(|o| !local_retry.iter().any(|r| r.queue_offset == *o))
            .collect();
        if let Some(offset) = pq.remove_messages(&done)
            && !pq.is_dropped()
        {
            inner.offset_store.update_offset(mq, offset, true);
        }
        if !local_retry.is_empty() {
            self.spawn_batch(local_retry, Arc::clone(pq), mq.clone(), LOCAL_RETRY_DELAY);
        }
    }

    /// Listener calls running now.
    pub fn in_flight(&self) -> usize {
        self.inner.config.consume_thread_max.max(1) - self.inner.permits.available_permits()
    }

    /// Runs the listener on one message outside any queue (CONSUME_MESSAGE_DIRECTLY) and
    /// returns the `ConsumeMessageDirectlyResult` JSON.
    pub async fn consume_message_directly(
        &self,
        msg: MessageExt,
        broker_name: Option<String>,
    ) -> bytes::Bytes {
        let (msg, mq) = crate::prepare_direct(&self.inner.send_back, msg, broker_name);
        let mut ctx = ConsumeConcurrentlyContext::new(mq);
        let started = Instant::now();
        let batch = [msg];
        let outcome = AssertUnwindSafe(self.inner.listener.consume(&batch, &mut ctx))
            .catch_unwind()
            .await
            .map(|s| s == ConsumeConcurrentlyStatus::ConsumeSuccess);
        crate::direct_result(false, outcome, started.elapsed())
    }

    /// Stops starting listener calls and waits up to `grace` for the ones running. Batches
    /// not started stay uncommitted. Idempotent.
    pub async fn shutdown(&self, grace: Duration) {
        if !rmq_remoting::task::stop_and_wait(&self.inner.token, &self.inner.tracker, grace).await {
            tracing::warn!(
                ?grace,
                "listener calls still running after the grace period"
            );
        }
    }
}
