//! The orderly consume service (Java `ConsumeMessageOrderlyService`).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use rmq_client_core::MessageModel;
use rmq_client_core::{MessageExt, MessageQueue};
use rmq_offset_store::OffsetStore;
use rmq_remoting::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::call::{CallOutcome, guarded};
use crate::listener::{
    ConsumeMessageContext, ConsumeMessageHook, ConsumeOrderlyContext, ConsumeOrderlyStatus,
    DynOrderly, MessageListenerOrderly,
};
use crate::metrics::ConsumeMetrics;
use crate::process_queue::ProcessQueue;
use rmq_client_core::SendBack;

/// Longest a queue's task consumes before yielding (Java `MAX_TIME_CONSUME_CONTINUOUSLY`, 60 s).
pub const MAX_TIME_CONSUME_CONTINUOUSLY: Duration = Duration::from_millis(60_000);
/// Retry delay when the broker lock could not be had (Java 3000 ms).
const RELOCK_DELAY: Duration = Duration::from_millis(3000);

/// How the orderly service takes a queue's broker lock before consuming it in clustering
/// mode (Java `RebalanceImpl.lock`); the push consumer implements it over its rebalance.
pub trait QueueLocker: Send + Sync + 'static {
    /// Locks `mq` at its broker for this client; `true` when held.
    fn lock<'a>(&'a self, mq: &'a MessageQueue) -> BoxFuture<'a, bool>;
}

/// Settings of the orderly service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OrderlyConfig {
    /// The (namespaced) consumer group.
    pub group: String,
    /// Clustering (queues locked at the broker) or broadcasting.
    pub message_model: MessageModel,
    /// Messages per listener call. Default 1.
    pub consume_message_batch_max_size: usize,
    /// Pause after `SuspendCurrentQueueAMoment`. Default 1 s, clamped to 10 ms..30 s (Java
    /// `suspendCurrentQueueTimeMillis`).
    pub suspend_current_queue_time: Duration,
    /// Deliveries before a message goes to the DLQ. Default `i32::MAX` (Java: −1 ⇒ unlimited
    /// for orderly).
    pub max_reconsume_times: i32,
    /// A call running longer counts as a suspend. Default 15 min.
    pub consume_timeout: Duration,
    /// Where the service counts its pulls' listener calls per topic (the `statusTable` of
    /// the consumer's running info); shared with the consumer. Default: a new set.
    pub stats: std::sync::Arc<crate::ConsumeStats>,
}

impl OrderlyConfig {
    /// Java's defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        OrderlyConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_message_batch_max_size: 1,
            suspend_current_queue_time: Duration::from_millis(1000),
            max_reconsume_times: i32::MAX,
            consume_timeout: Duration::from_secs(15 * 60),
            stats: std::sync::Arc::new(crate::ConsumeStats::new()),
        }
    }
}

struct Inner {
    listener: Box<dyn DynOrderly>,
    config: OrderlyConfig,
    offset_store: Arc<dyn OffsetStore>,
    send_back: SendBack,
    hooks: Vec<Arc<dyn ConsumeMessageHook>>,
    metrics: ConsumeMetrics,
    locker: Arc<dyn QueueLocker>,
    /// Held during each listener call of a queue (Java `ProcessQueue.consumeLock`), so a
    /// release waits for the call to finish.
    consume_locks: Mutex<HashMap<MessageQueue, Arc<tokio::sync::Mutex<()>>>>,
    tracker: TaskTracker,
    token: CancellationToken,
}

/// Consumes each queue one listener call at a time, in offset order, holding the queue's
/// broker lock in clustering mode; commits only after success.
#[derive(Clone)]
pub struct ConsumeMessageOrderlyService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConsumeMessageOrderlyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumeMessageOrderlyService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ConsumeMessageOrderlyService {
    /// A service running `listener`.
    pub fn new<L: MessageListenerOrderly>(
        listener: L,
        mut config: OrderlyConfig,
        offset_store: Arc<dyn OffsetStore>,
        send_back: SendBack,
        hooks: Vec<Arc<dyn ConsumeMessageHook>>,
        locker: Arc<dyn QueueLocker>,
    ) -> Self {
        config.suspend_current_queue_time = config
            .suspend_current_queue_time
            .clamp(Duration::from_millis(10), Duration::from_millis(30_000));
        ConsumeMessageOrderlyService {
            inner: Arc::new(Inner {
                listener: Box::new(listener),
                metrics: ConsumeMetrics::new(&config.group),
                config,
                offset_store,
                send_back,
                hooks,
                locker,
                consume_locks: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                token: CancellationToken::new(),
            }),
        }
    }

    fn consume_lock(&self, mq: &MessageQueue) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .consume_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(mq.clone()).or_default())
    }

    /// Starts the queue's consume task when `dispatch` is true (the return value of
    /// [`ProcessQueue::put_messages_orderly`]); otherwise the running task will see the messages.
    pub fn submit(&self, pq: &Arc<ProcessQueue>, mq: &MessageQueue, dispatch: bool) {
        if dispatch {
            self.spawn_queue_task(Arc::clone(pq), mq.clone(), Duration::ZERO);
        }
    }

    fn spawn_queue_task(&self, pq: Arc<ProcessQueue>, mq: MessageQueue, delay: Duration) {
        let this = self.clone();
        let span = tracing::debug_span!("consume_orderly", queue = ?mq);
        self.inner.tracker.spawn(
            async move {
                if !delay.is_zero() {
                    tokio::select! {
                        _ = this.inner.token.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                this.consume_queue(pq, mq).await;
            }
            .instrument(span),
        );
    }

    /// The loop of one queue (Java `ConsumeRequest.run`). Exactly one runs per queue: the
    /// process queue's consuming flag is set by whoever dispatched it.
    async fn consume_queue(&self, pq: Arc<ProcessQueue>, mq: MessageQueue) {
        let inner = &self.inner;
        let started = Instant::now();
        let clustering = inner.config.message_model == MessageModel::Clustering;
        loop {
            if inner.token.is_cancelled() || pq.is_dropped() {
                pq.finish_consuming_if_idle();
                return;
            }
            if clustering && (!pq.is_locked() || pq.is_lock_expired()) {
                if inner.locker.lock(&mq).await {
                    pq.set_locked(true);
                } else {
                    tracing::debug!(queue = ?mq, "orderly queue not locked; retrying in 3 s");
                    self.spawn_queue_task(pq, mq, RELOCK_DELAY);
                    return;
                }
            }
            if started.elapsed() > MAX_TIME_CONSUME_CONTINUOUSLY {
                self.spawn_queue_task(pq, mq, Duration::from_millis(10));
                return;
            }
            let mut batch = pq.take_messages(inner.config.consume_message_batch_max_size.max(1));
            if batch.is_empty() {
                // take_messages cleared the flag; a put racing with it may have seen the
                // flag still set and not dispatched: take that work here.
                if pq.msg_count() > 0 && pq.try_start_consuming() {
                    continue;
                }
                return;
            }
            inner.send_back.reset_retry_and_namespace_all(&mut batch);
            let lock = self.consume_lock(&mq);
            let guard = lock.lock().await;
            let _call = pq.begin_call();
            if pq.is_dropped() {
                pq.make_messages_to_consume_again(batch);
                drop(guard);
                continue;
            }
            let mut ctx = ConsumeOrderlyContext::new(mq.clone());
            let mut hook_ctx = ConsumeMessageContext::new(&inner.config.group, &mq, batch.len());
            for h in &inner.hooks {
                h.consume_message_before(&hook_ctx, &batch);
            }
            let call = inner.listener.consume(&batch, &mut ctx);
            let (returned, rt, _) =
                guarded(inner.config.consume_timeout, &inner.metrics.latency, call).await;
            let (status, name) = match returned {
                CallOutcome::Returned(ConsumeOrderlyStatus::Success) => {
                    (ConsumeOrderlyStatus::Success, "SUCCESS")
                }
                CallOutcome::Returned(s) => (s, "SUSPEND_CURRENT_QUEUE_A_MOMENT"),
                CallOutcome::Panicked => (
                    ConsumeOrderlyStatus::SuspendCurrentQueueAMoment,
                    "EXCEPTION",
                ),
                CallOutcome::TimedOut => {
                    (ConsumeOrderlyStatus::SuspendCurrentQueueAMoment, "TIME_OUT")
                }
            };
            hook_ctx.success = status == ConsumeOrderlyStatus::Success;
            hook_ctx.status = name;
            for h in &inner.hooks {
                h.consume_message_after(&hook_ctx, &batch);
            }
            let suspend = match status {
                ConsumeOrderlyStatus::Success => false,
                ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => {
                    self.check_reconsume_times(&mut batch).await
                }
            };
            let n = batch.len() as u64;
            let rt_ms = rt.as_secs_f64() * 1000.0;
            if suspend {
                inner.metrics.failed.increment(n);
                inner.config.stats.record_consume(&mq.topic, 0, n, rt_ms);
                pq.make_messages_to_consume_again(batch);
                drop(guard);
                let pause = if ctx.suspend_current_queue_time_millis > 0 {
                    Duration::from_millis(ctx.suspend_current_queue_time_millis as u64)
                } else {
                    inner.config.suspend_current_queue_time
                };
                tokio::select! {
                    _ = inner.token.cancelled() => { pq.finish_consuming_if_idle(); return; }
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
            inner.metrics.ok.increment(n);
            inner.config.stats.record_consume(&mq.topic, n, 0, rt_ms);
            if let Some(offset) = pq.commit()
                && !pq.is_dropped()
            {
                inner.offset_store.update_offset(&mq, offset, false);
            }
            drop(guard);
        }
    }

    /// Java `checkReconsumeTimes`: messages at or past `maxReconsumeTimes` go to the DLQ by
    /// send-back and count as consumed; the others get `reconsume_times + 1` and are
    /// retried. Returns whether the queue must be suspended (something is retried).
    async fn check_reconsume_times(&self, batch: &mut [MessageExt]) -> bool {
        let max = self.inner.config.max_reconsume_times;
        let mut suspend = false;
        for m in batch.iter_mut() {
            if m.reconsume_times >= max {
                match self.inner.send_back.send_message_back(m, -1).await {
                    Ok(()) => tracing::warn!(
                        msg_id = %m.msg_id(),
                        reconsume_times = m.reconsume_times,
                        "orderly message sent to the DLQ"
                    ),
                    Err(e) => {
                        tracing::warn!(msg_id = %m.msg_id(), error = %e, "sending to the DLQ failed; retrying the message");
                        suspend = true;
                        m.reconsume_times += 1;
                    }
                }
            } else {
                suspend = true;
                m.reconsume_times += 1;
            }
        }
        suspend
    }

    /// Waits up to `timeout` for the queue's running listener call to end and returns
    /// whether it did (Java `consumeLock.tryLock`); the caller has marked the queue dropped.
    pub async fn wait_idle(&self, mq: &MessageQueue, timeout: Duration) -> bool {
        let lock = self.consume_lock(mq);
        let idle = tokio::time::timeout(timeout, lock.lock()).await.is_ok();
        if idle {
            self.inner
                .consume_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(mq);
        }
        idle
    }

    /// Runs the listener on one message outside any queue (CONSUME_MESSAGE_DIRECTLY).
    pub async fn consume_message_directly(
        &self,
        msg: MessageExt,
        broker_name: Option<String>,
    ) -> bytes::Bytes {
        let (msg, mq) = crate::prepare_direct(&self.inner.send_back, msg, broker_name);
        let mut ctx = ConsumeOrderlyContext::new(mq);
        let started = Instant::now();
        let batch = [msg];
        let outcome = AssertUnwindSafe(self.inner.listener.consume(&batch, &mut ctx))
            .catch_unwind()
            .await
            .map(|s| s == ConsumeOrderlyStatus::Success);
        crate::direct_result(true, outcome, started.elapsed())
    }

    /// Stops starting listener calls at once, without waiting (what dropping a consumer
    /// does); a call running finishes, its queue's task then ends.
    pub fn cancel(&self) {
        self.inner.token.cancel();
    }

    /// Stops starting listener calls and waits up to `grace` for the running ones.
    /// Returns `true` when every call ended in time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let done =
            rmq_remoting::task::stop_and_wait(&self.inner.token, &self.inner.tracker, grace).await;
        if !done {
            tracing::warn!(
                ?grace,
                "orderly listener calls still running after the grace period"
            );
        }
        done
    }
}
