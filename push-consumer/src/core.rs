//! [`Core`]: everything a started push consumer owns, and its queue table (a pull task and
//! a process queue per owned queue).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmq_client_core::header::ConsumerData;
use rmq_client_core::pop::PopKernel;
use rmq_client_core::{ClientConfig, ClientInstance, MessageQueue, PullKernel, SubscriptionData};
use rmq_consume_service::{ConsumeStats, FilterMessageHook, PopProcessQueue, ProcessQueue};
use rmq_offset_store::{OffsetStore, ReadOffsetType};
use rmq_rebalance::{RebalanceImpl, RebalanceService};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::builder::PushConsumerConfig;
use crate::listener_factory::Service;

pub(crate) struct QueueEntry {
    pub(crate) pq: Arc<ProcessQueue>,
    pub(crate) token: CancellationToken,
}

/// A queue popped in pop mode: what it has not settled yet, and its pop task's token.
pub(crate) struct PopEntry {
    pub(crate) ppq: Arc<PopProcessQueue>,
    pub(crate) token: CancellationToken,
}

/// Everything that exists once started.
pub(crate) struct Core {
    /// This core, weakly (to spawn work on it from `&self` callbacks).
    pub(crate) me: std::sync::Weak<Core>,
    pub(crate) group: String,
    pub(crate) config: PushConsumerConfig,
    pub(crate) client: ClientConfig,
    pub(crate) instance: ClientInstance,
    pub(crate) kernel: PullKernel,
    pub(crate) subscriptions: HashMap<String, SubscriptionData>,
    pub(crate) offset_store: Arc<dyn OffsetStore>,
    pub(crate) rebalance: Arc<RebalanceImpl>,
    pub(crate) rebalance_service: RebalanceService,
    pub(crate) service: Service,
    pub(crate) filter_hooks: Vec<Arc<dyn FilterMessageHook>>,
    pub(crate) queues: Mutex<HashMap<MessageQueue, QueueEntry>>,
    /// Pop mode: the kernel that pops and settles, and the queues popped.
    pub(crate) pop_kernel: Option<Arc<PopKernel>>,
    pub(crate) pop_queues: Mutex<HashMap<MessageQueue, PopEntry>>,
    pub(crate) cached_bytes: Arc<AtomicUsize>,
    /// The user's `suspend()`.
    pub(crate) paused: AtomicBool,
    /// Offset resets in progress (they pause pulling without touching `paused`).
    pub(crate) resetting: AtomicUsize,
    pub(crate) token: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) start_ms: i64,
    /// Per-topic pull and consume rates (the running info's `statusTable`).
    pub(crate) stats: Arc<ConsumeStats>,
    /// The message trace sender, when tracing is on.
    pub(crate) trace: Option<rmq_client_core::trace_dispatcher::TraceDispatcher>,
    /// The stream of a consumer started with `message_stream()`, until
    /// `PushConsumer::messages` takes it.
    pub(crate) message_stream: Mutex<Option<rmq_consume_service::MessageStream>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Core {
    pub(crate) fn queues(&self) -> MutexGuard<'_, HashMap<MessageQueue, QueueEntry>> {
        lock(&self.queues)
    }

    pub(crate) fn is_orderly(&self) -> bool {
        matches!(self.service, Service::Orderly(_))
    }

    /// Whether pulling waits: the user suspended it or an offset reset is under way.
    pub(crate) fn pulling_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed) || self.resetting.load(Ordering::Relaxed) > 0
    }

    /// Seals every queue (no pulled batch enters one after this) and waits until every
    /// cached message was consumed, at most `timeout` in all (woken by the consume side,
    /// never polled); returns how many are still cached.
    pub(crate) async fn drain_all(&self, timeout: Duration) -> usize {
        let pqs: Vec<Arc<ProcessQueue>> =
            self.queues().values().map(|e| Arc::clone(&e.pq)).collect();
        let ppqs: Vec<Arc<PopProcessQueue>> = lock(&self.pop_queues)
            .values()
            .map(|e| Arc::clone(&e.ppq))
            .collect();
        for pq in &pqs {
            pq.seal();
        }
        for ppq in &ppqs {
            ppq.seal();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        for pq in &pqs {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            pq.wait_empty(left).await;
        }
        for ppq in &ppqs {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            ppq.wait_empty(left).await;
        }
        pqs.iter().map(|pq| pq.msg_count()).sum::<usize>()
            + ppqs.iter().map(|p| p.wait_ack_count()).sum::<usize>()
    }

    /// Pop mode: starts popping `mq`; `false` when this consumer does not pop.
    pub(crate) fn pop_queue_added(self: &Arc<Self>, mq: &MessageQueue) -> bool {
        let Some(kernel) = &self.pop_kernel else {
            return false;
        };
        let ppq = Arc::new(PopProcessQueue::new(
            Arc::clone(kernel),
            Arc::clone(&self.cached_bytes),
        ));
        let token = self.token.child_token();
        lock(&self.pop_queues).insert(
            mq.clone(),
            PopEntry {
                ppq: Arc::clone(&ppq),
                token: token.clone(),
            },
        );
        let core = Arc::clone(self);
        let mq = mq.clone();
        let span = tracing::debug_span!("pop", queue = ?mq);
        self.tracker
            .spawn(async move { core.pop_loop(mq, ppq, token).await }.instrument(span));
        true
    }

    /// Pop mode: stops popping `mq`. What it popped is still consumed and acknowledged.
    pub(crate) fn pop_queue_removed(&self, mq: &MessageQueue) {
        if let Some(e) = lock(&self.pop_queues).remove(mq) {
            e.token.cancel();
            e.ppq.set_dropped(true);
        }
    }

    /// What dropping the last handle does: cancels every task of the consumer at once
    /// (no drain, no persist).
    pub(crate) fn stop_now(&self) {
        self.token.cancel();
        match &self.service {
            Service::Concurrent(s) => s.cancel(),
            Service::Orderly(s) => s.cancel(),
        }
    }

    /// Enters `mq` in the queue table with `pq`; returns the token that stops its pull task.
    fn enter_queue(&self, mq: &MessageQueue, pq: &Arc<ProcessQueue>) -> CancellationToken {
        let token = self.token.child_token();
        self.queues().insert(
            mq.clone(),
            QueueEntry {
                pq: Arc::clone(pq),
                token: token.clone(),
            },
        );
        token
    }

    pub(crate) fn queue_added(self: &Arc<Self>, mq: &MessageQueue, next_offset: i64) {
        let pq = Arc::new(ProcessQueue::new(Arc::clone(&self.cached_bytes)));
        let token = self.enter_queue(mq, &pq);
        let core = Arc::clone(self);
        let mq = mq.clone();
        let span = tracing::debug_span!("pull", queue = ?mq);
        self.tracker.spawn(
            async move { core.pull_loop(mq, pq, next_offset, token).await }.instrument(span),
        );
    }

    /// Drains and gives up a queue (bounded wait); `true` once nothing more will be
    /// consumed from it.
    pub(crate) async fn queue_removed(self: &Arc<Self>, mq: &MessageQueue) -> bool {
        let Some(entry) = self.queues().remove(mq) else {
            return true;
        };
        entry.token.cancel();
        entry.pq.seal();
        // A queue already dropped (offset reset, OFFSET_ILLEGAL) consumes nothing more, and
        // during shutdown the drain already happened and the consume service has stopped:
        // there is nothing to wait for.
        if !entry.pq.is_dropped() && !self.token.is_cancelled() {
            entry.pq.wait_empty(self.config.drain_timeout).await;
        }
        let left = entry.pq.msg_count();
        entry.pq.set_dropped(true);
        if let Service::Orderly(s) = &self.service
            && !s.wait_idle(mq, Duration::from_millis(1000)).await
        {
            // A listener call is still running: keep the queue and try next round (Java).
            entry.pq.set_dropped(false);
            entry.pq.unseal();
            entry.pq.inc_try_unlock_times();
            self.queue_readd(mq, entry.pq);
            return false;
        }
        if left > 0 {
            tracing::info!(
                ?mq,
                left,
                "released queue still had cached messages; the next owner gets them again"
            );
        }
        entry.pq.clear();
        true
    }

    /// Restarts pulling an orderly queue whose release was refused.
    pub(crate) fn queue_readd(self: &Arc<Self>, mq: &MessageQueue, pq: Arc<ProcessQueue>) {
        let next = pq.offset_range().map(|(_, hi)| hi + 1);
        let token = self.enter_queue(mq, &pq);
        let core = Arc::clone(self);
        let mq = mq.clone();
        self.tracker.spawn(async move {
            let start = match next {
                Some(n) => n,
                None => match core
                    .offset_store
                    .read_offset(&mq, ReadOffsetType::MemoryFirstThenStore)
                    .await
                {
                    Ok(Some(o)) => o,
                    _ => return,
                },
            };
            core.pull_loop(mq, pq, start, token).await
        });
    }

    pub(crate) fn subscription_of(&self, topic: &str) -> Option<&SubscriptionData> {
        self.subscriptions.get(topic)
    }

    pub(crate) fn consumer_data(&self) -> ConsumerData {
        ConsumerData::new(
            &self.group,
            rmq_client_core::ConsumeType::ConsumePassively,
            self.config.message_model,
            self.config.consume_from_where,
            self.subscriptions.values().cloned().collect(),
        )
    }
}
