//! [`LitePullConsumer`] (Java `DefaultLitePullConsumer`): background pull tasks fill a
//! bounded buffer; the application polls batches, seeks and commits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::Stream;
use rmq_client_core::header::ConsumerData;
use rmq_client_core::trace_dispatcher::TraceDispatcher;
use rmq_client_core::{
    ClientConfig, ClientInstance, ConsumerInner, ExpressionType, MessageExt, MessageQueue,
    PullKernel, PullSpec, PullStatus, ShutdownReport, SubscriptionData, Weakly,
};
use rmq_consume_service::{
    ConsumeMessageContext, ConsumeMessageHook, ConsumeMessageTraceHook, ProcessQueue,
};
use rmq_offset_store::{LocalFileOffsetStore, OffsetStore, RemoteBrokerOffsetStore};
use rmq_rebalance::{
    AllocateMessageQueueAveragely, AllocateMessageQueueStrategy, ConsumeFromWhere, MessageModel,
    RebalanceConfig, RebalanceImpl, RebalanceListener, RebalanceService,
};
use rmq_remoting::BoxFuture;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::PullConsumerError;

mod builder;
mod config;
mod core;
mod hooks;

pub use builder::LitePullConsumerBuilder;
pub use config::LitePullConsumerConfig;
use hooks::Hook;

struct Batch {
    mq: MessageQueue,
    epoch: u64,
    msgs: Vec<MessageExt>,
}

/// One assigned queue (cheap to clone: shared handles).
#[derive(Clone)]
struct QueueState {
    pq: Arc<ProcessQueue>,
    token: CancellationToken,
    paused: Arc<AtomicBool>,
    /// Bumped by every seek; batches of an older epoch are discarded.
    epoch: Arc<AtomicU64>,
    /// A pending seek target, −1 when none.
    seek_to: Arc<AtomicI64>,
    /// Woken by a seek: the queue's pull in flight is abandoned.
    seeked: Arc<Notify>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unset,
    Subscribe,
    Assign,
}

struct Core {
    /// This core, weakly (to run work on it from `&self` callbacks).
    me: Weak<Core>,
    group: String,
    client: ClientConfig,
    config: LitePullConsumerConfig,
    instance: ClientInstance,
    offset_store: Arc<dyn OffsetStore>,
    rebalance: Arc<RebalanceImpl>,
    rebalance_service: RebalanceService,
    queues: Mutex<HashMap<MessageQueue, QueueState>>,
    /// Offsets of what `poll` handed out, per queue: what a commit writes.
    consumed: Mutex<HashMap<MessageQueue, i64>>,
    subscriptions: Mutex<HashMap<String, SubscriptionData>>,
    kernel: PullKernel,
    tx: mpsc::Sender<Batch>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Batch>>,
    cached_bytes: Arc<AtomicUsize>,
    /// Message trace, when on: the sender and the hook that writes each polled batch.
    trace: Option<(TraceDispatcher, ConsumeMessageTraceHook)>,
    token: CancellationToken,
    tracker: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the builder validated, before start.
pub(crate) struct Pending {
    group: String,
    /// A client instance handed over by the builder.
    instance: Option<ClientInstance>,
    client: ClientConfig,
    config: LitePullConsumerConfig,
    strategy: Arc<dyn AllocateMessageQueueStrategy>,
    pub(crate) offset_store: Option<Arc<dyn OffsetStore>>,
    mode: Mode,
    subscriptions: Vec<(String, String)>,
}

/// A running consumer.
struct Shared {
    /// Subscribe (set by the builder) or assign (set by the first `assign`).
    mode: Mutex<Mode>,
    core: Arc<Core>,
}

/// The lite pull consumer (Java `DefaultLitePullConsumer`), made running by
/// [`LitePullConsumerBuilder::start`]. Cheap to clone.
///
/// Subscribe mode: topics subscribed on the builder; queues come from rebalance.
/// Assign mode: no subscription; [`LitePullConsumer::assign`] queues; no rebalance.
///
/// # Drop behavior
/// Dropping the last clone without [`LitePullConsumer::shutdown`] stops every task at once
/// and unregisters in the background; polled offsets not yet committed are not committed.
#[derive(Clone)]
pub struct LitePullConsumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LitePullConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LitePullConsumer")
            .field("group", &self.shared.core.group)
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    /// The last handle is gone without `shutdown`: stop every task at once.
    fn drop(&mut self) {
        let core = &self.core;
        if core.token.is_cancelled() {
            return;
        }
        core.token.cancel();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (instance, group) = (core.instance.clone(), core.group.clone());
            rt.spawn(async move {
                instance
                    .release_consumer(&group, Duration::from_secs(1))
                    .await
            });
        }
    }
}

impl Pending {
    pub(crate) fn new(
        consumer_group: &str,
        client: ClientConfig,
        config: LitePullConsumerConfig,
        strategy: Arc<dyn AllocateMessageQueueStrategy>,
        instance: Option<ClientInstance>,
    ) -> Result<Self, PullConsumerError> {
        if consumer_group.trim().is_empty()
            || (client.namesrv_addrs.is_empty() && instance.is_none())
        {
            return Err(PullConsumerError::InvalidConfig(
                "consumer group and name server address are required".into(),
            ));
        }
        if config.consumer_timeout_when_suspend <= config.broker_suspend_max_time {
            return Err(PullConsumerError::InvalidConfig(
                "consumerTimeoutMillisWhenSuspend must exceed brokerSuspendMaxTimeMillis".into(),
            ));
        }
        let mut client = client;
        if config.message_model == MessageModel::Clustering {
            client.change_instance_name_to_unique();
        }
        Ok(Pending {
            group: client.with_namespace(consumer_group),
            client,
            config,
            strategy,
            instance,
            offset_store: None,
            mode: Mode::Unset,
            subscriptions: Vec::new(),
        })
    }

    /// Adds a subscription (subscribe mode).
    pub(crate) fn subscribe(
        &mut self,
        topic: &str,
        expression: &str,
    ) -> Result<(), PullConsumerError> {
        SubscriptionData::build(topic, Some(expression), ExpressionType::Tag)
            .map_err(|e| PullConsumerError::InvalidConfig(e.to_string()))?;
        self.mode = Mode::Subscribe;
        self.subscriptions
            .push((topic.to_owned(), expression.to_owned()));
        Ok(())
    }

    /// Starts (Java `start`): a running consumer, or an error with nothing left running.
    pub(crate) async fn start(self) -> Result<LitePullConsumer, PullConsumerError> {
        let mode = self.mode;
        let core = self.start_core().await?;
        Ok(LitePullConsumer {
            shared: Arc::new(Shared {
                mode: Mutex::new(mode),
                core,
            }),
        })
    }

    async fn start_core(self) -> Result<Arc<Core>, PullConsumerError> {
        let s = &self;
        let instance = match &s.instance {
            Some(inst) => inst.clone(),
            None => ClientInstance::get_or_create(&s.client)?,
        };
        let offset_store: Arc<dyn OffsetStore> = match s.offset_store.clone() {
            Some(st) => st,
            None => match s.config.message_model {
                MessageModel::Clustering => {
                    Arc::new(RemoteBrokerOffsetStore::new(&instance, &s.group))
                }
                MessageModel::Broadcasting => Arc::new(LocalFileOffsetStore::new(
                    None,
                    instance.client_id(),
                    &s.group,
                )),
            },
        };
        offset_store.load().await?;
        let mut rb = RebalanceConfig::new(&s.group);
        rb.message_model = s.config.message_model;
        rb.consume_from_where = s.config.consume_from_where;
        rb.consume_timestamp_ms = s.config.consume_timestamp_ms;
        let (tx, rx) = mpsc::channel(s.config.buffer_batches.max(1));
        let trace = s.config.trace_topic.as_deref().map(|t| {
            let dispatcher = TraceDispatcher::start(&instance, &s.group, t);
            let hook = ConsumeMessageTraceHook::new(
                dispatcher.clone(),
                &s.group,
                s.client.namespace_str(),
            );
            (dispatcher, hook)
        });
        let core = Arc::new_cyclic(|weak: &Weak<Core>| Core {
            me: Weak::clone(weak),
            group: s.group.clone(),
            client: s.client.clone(),
            config: s.config.clone(),
            instance: instance.clone(),
            offset_store: Arc::clone(&offset_store),
            rebalance: Arc::new(RebalanceImpl::new(
                rb,
                instance.clone(),
                Arc::clone(&s.strategy),
                Arc::clone(&offset_store),
                Arc::new(Hook(Weak::clone(weak))) as Arc<dyn RebalanceListener>,
            )),
            rebalance_service: RebalanceService::new(),
            queues: Mutex::new(HashMap::new()),
            consumed: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashMap::new()),
            kernel: PullKernel::new(&instance, &s.group),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            cached_bytes: Arc::new(AtomicUsize::new(0)),
            trace,
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let subscribe = s.mode == Mode::Subscribe;
        let version = rmq_client_core::now_millis();
        for (topic, expr) in &s.subscriptions {
            let topic = s.client.with_namespace(topic);
            let sub = SubscriptionData::build_with_version(
                &topic,
                Some(expr),
                ExpressionType::Tag,
                version,
            )
            .map_err(|e| PullConsumerError::InvalidConfig(e.to_string()))?;
            core.rebalance.subscribe(sub.clone());
            lock(&core.subscriptions).insert(topic, sub);
        }
        instance
            .register_consumer(Arc::new(Weakly(Arc::downgrade(&core))) as Arc<dyn ConsumerInner>)?;
        instance.start();
        let topics: Vec<String> = lock(&core.subscriptions).keys().cloned().collect();
        for topic in &topics {
            if let Err(e) = instance.update_topic_route(topic).await {
                tracing::warn!(topic, error = %e, "no route for subscribed topic yet");
            }
        }
        instance.send_heartbeat_to_all_brokers().await;
        if subscribe {
            let rbi = Arc::clone(&core.rebalance);
            let svc = core.rebalance_service.clone();
            let token = core.token.clone();
            core.tracker.spawn(async move { svc.run(rbi, token).await });
            core.rebalance_service.wakeup();
        }
        if s.config.auto_commit {
            let weak = Arc::downgrade(&core);
            let token = core.token.clone();
            let every = s.config.auto_commit_interval;
            core.tracker.spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    let Some(c) = weak.upgrade() else { return };
                    let _ = c.commit(false).await; // logged by commit
                }
            });
        }
        Ok(core)
    }
}

impl LitePullConsumer {
    fn set_mode(&self, want: Mode) -> Result<(), PullConsumerError> {
        let mut m = lock(&self.shared.mode);
        if *m != Mode::Unset && *m != want {
            return Err(PullConsumerError::InvalidConfig(
                "subscribe and assign cannot be mixed".into(),
            ));
        }
        *m = want;
        Ok(())
    }

    fn core(&self) -> &Arc<Core> {
        &self.shared.core
    }

    /// Assigns queues (assign mode), replacing the previous assignment. New queues start at
    /// their committed offset, or per `consume_from_where`.
    ///
    /// # Errors
    /// [`PullConsumerError::InvalidConfig`] in subscribe mode; the offset store's or
    /// broker's error when a new queue's start offset cannot be read.
    pub async fn assign(&self, queues: &[MessageQueue]) -> Result<(), PullConsumerError> {
        self.set_mode(Mode::Assign)?;
        let core = Arc::clone(self.core());
        for mq in queues {
            let topic = mq.topic.clone();
            let known = lock(&core.subscriptions).contains_key(&topic);
            if !known {
                let sub = SubscriptionData::build(&topic, Some("*"), ExpressionType::Tag)
                    .map_err(|e| PullConsumerError::InvalidConfig(e.to_string()))?;
                lock(&core.subscriptions).insert(topic, sub);
            }
        }
        let current: Vec<MessageQueue> = lock(&core.queues).keys().cloned().collect();
        for mq in current.iter().filter(|q| !queues.contains(q)) {
            core.remove_queue(mq).await;
        }
        for mq in queues.iter().filter(|q| !current.contains(q)) {
            let offset = core.rebalance.compute_pull_from_where(mq).await?;
            core.add_queue(mq, offset);
        }
        Ok(())
    }

    /// The queues assigned now.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        let mut v: Vec<MessageQueue> = lock(&self.core().queues).keys().cloned().collect();
        v.sort();
        v
    }

    /// The readable queues of `topic` (Java `fetchMessageQueues`).
    ///
    /// # Errors
    /// [`PullConsumerError::Client`] when the topic has no route.
    pub async fn fetch_message_queues(
        &self,
        topic: &str,
    ) -> Result<Vec<MessageQueue>, PullConsumerError> {
        let core = self.core();
        let topic = core.client.with_namespace(topic);
        core.instance.update_topic_route(&topic).await?;
        Ok(core.instance.subscribe_queues(&topic))
    }

    /// Waits up to `poll_timeout` for messages (Java `poll()`); empty when none came.
    pub async fn poll(&self) -> Vec<MessageExt> {
        let t = self.core().config.poll_timeout;
        self.poll_timeout(t).await
    }

    /// Waits up to `timeout` for a batch; empty when none came (Java `poll(timeout)`).
    /// Polled messages count as consumed: their offsets are committed by the next commit.
    ///
    /// Cancel safe: a batch is taken from the buffer only when it is returned.
    pub async fn poll_timeout(&self, timeout: Duration) -> Vec<MessageExt> {
        let core = Arc::clone(self.core());
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = core.rx.lock().await;
        loop {
            let batch = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(b)) => b,
                Ok(None) | Err(_) => return Vec::new(),
            };
            let (pq, current) = {
                let q = lock(&core.queues);
                match q.get(&batch.mq) {
                    Some(st) => (Arc::clone(&st.pq), st.epoch.load(Ordering::Acquire)),
                    None => continue,
                }
            };
            if batch.epoch != current || pq.is_dropped() {
                continue; // pulled before a seek or a release
            }
            if let Some(next) = pq.remove_messages(batch.msgs.iter().map(|m| m.queue_offset)) {
                let mut c = lock(&core.consumed);
                let e = c.entry(batch.mq.clone()).or_insert(next);
                *e = (*e).max(next);
            }
            if let Some((_, hook)) = &core.trace {
                // Java's lite consumer runs its hooks in `poll`, "before" and "after" back
                // to back, as a successful consumption.
                let mut ctx = ConsumeMessageContext::new(&core.group, &batch.mq, batch.msgs.len());
                hook.consume_message_before(&ctx, &batch.msgs);
                ctx.success = true;
                ctx.status = "CONSUME_SUCCESS";
                hook.consume_message_after(&ctx, &batch.msgs);
            }
            return batch.msgs;
        }
    }

    /// Messages as a `futures::Stream` (polling with `poll_timeout`, skipping empty polls).
    /// The stream ends when the consumer shuts down.
    pub fn stream(&self) -> impl Stream<Item = MessageExt> + Send + 'static {
        let this = self.clone();
        futures::stream::unfold(
            (this, std::collections::VecDeque::new()),
            |(this, mut buf)| async move {
                loop {
                    if let Some(m) = buf.pop_front() {
                        return Some((m, (this, buf)));
                    }
                    let core = this.core();
                    if core.token.is_cancelled() {
                        return None;
                    }
                    let t = core.config.poll_timeout;
                    buf.extend(this.poll_timeout(t).await);
                }
            },
        )
    }

    fn queue(&self, mq: &MessageQueue) -> Result<QueueState, PullConsumerError> {
        let core = self.core();
        let q = lock(&core.queues);
        q.get(mq)
            .cloned()
            .ok_or_else(|| PullConsumerError::QueueNotAssigned { mq: mq.clone() })
    }

    /// Moves the next pull of `mq` to `offset` (Java `seek`). Batches pulled before are
    /// discarded. The offset must lie within the queue's min and max offsets.
    ///
    /// # Errors
    /// [`PullConsumerError::QueueNotAssigned`], [`PullConsumerError::OffsetOutOfRange`].
    pub async fn seek(&self, mq: &MessageQueue, offset: i64) -> Result<(), PullConsumerError> {
        let (min, max) = (self.min_offset(mq).await?, self.max_offset(mq).await?);
        if offset < min || offset > max {
            return Err(PullConsumerError::OffsetOutOfRange {
                mq: mq.clone(),
                offset,
                min,
                max,
            });
        }
        let st = self.queue(mq)?;
        st.seek_to.store(offset, Ordering::Release);
        st.epoch.fetch_add(1, Ordering::AcqRel);
        st.pq.clear();
        // The long poll in flight (up to brokerSuspendMaxTime) is abandoned, so the next
        // pull starts at `offset` within one round trip. Java waits for it to return.
        st.seeked.notify_waiters();
        Ok(())
    }

    /// Seeks to the queue's min offset (Java `seekToBegin`).
    ///
    /// # Errors
    /// As [`LitePullConsumer::seek`].
    pub async fn seek_to_begin(&self, mq: &MessageQueue) -> Result<(), PullConsumerError> {
        let min = self.min_offset(mq).await?;
        self.seek(mq, min).await
    }

    /// Seeks to the queue's max offset (Java `seekToEnd`).
    ///
    /// # Errors
    /// As [`LitePullConsumer::seek`].
    pub async fn seek_to_end(&self, mq: &MessageQueue) -> Result<(), PullConsumerError> {
        let max = self.max_offset(mq).await?;
        self.seek(mq, max).await
    }

    async fn master(
        &self,
        mq: &MessageQueue,
    ) -> Result<(ClientInstance, String), PullConsumerError> {
        let instance = &self.core().instance;
        Ok((instance.clone(), instance.master_addr_of(mq).await?))
    }

    async fn min_offset(&self, mq: &MessageQueue) -> Result<i64, PullConsumerError> {
        let (i, a) = self.master(mq).await?;
        Ok(i.api()
            .get_min_offset(&a, mq, i.config().mq_client_api_timeout)
            .await?)
    }

    async fn max_offset(&self, mq: &MessageQueue) -> Result<i64, PullConsumerError> {
        let (i, a) = self.master(mq).await?;
        Ok(i.api()
            .get_max_offset(&a, mq, i.config().mq_client_api_timeout)
            .await?)
    }

    /// The offset of the first message stored at or after `timestamp_ms` (Java
    /// `offsetForTimestamp`).
    ///
    /// # Errors
    /// Broker or transport errors.
    pub async fn offset_for_timestamp(
        &self,
        mq: &MessageQueue,
        timestamp_ms: i64,
    ) -> Result<i64, PullConsumerError> {
        let (i, a) = self.master(mq).await?;
        Ok(i.api()
            .search_offset(&a, mq, timestamp_ms, i.config().mq_client_api_timeout)
            .await?)
    }

    /// Commits the offsets of everything polled so far and waits for the store (Java
    /// `commitSync`).
    ///
    /// # Errors
    /// [`PullConsumerError::OffsetStore`]: the first queue whose offset could not be
    /// stored (every queue is tried).
    pub async fn commit_sync(&self) -> Result<(), PullConsumerError> {
        Ok(self.core().commit(true).await?)
    }

    /// The committed offset of `mq` (Java `committed`).
    ///
    /// # Errors
    /// [`PullConsumerError::OffsetStore`].
    pub async fn committed(&self, mq: &MessageQueue) -> Result<Option<i64>, PullConsumerError> {
        let core = self.core();
        Ok(core
            .offset_store
            .read_offset(mq, rmq_offset_store::ReadOffsetType::ReadFromStore)
            .await?)
    }

    /// Stops pulling the given queues; what is buffered can still be polled (Java `pause`).
    pub fn pause(&self, queues: &[MessageQueue]) {
        self.set_paused(queues, true);
    }

    /// Resumes pulling the given queues (Java `resume`).
    pub fn resume(&self, queues: &[MessageQueue]) {
        self.set_paused(queues, false);
    }

    fn set_paused(&self, queues: &[MessageQueue], paused: bool) {
        let q = lock(&self.core().queues);
        for mq in queues {
            if let Some(st) = q.get(mq) {
                st.paused.store(paused, Ordering::Release);
            }
        }
    }

    /// Commits (with auto-commit), stops the pull tasks, unregisters (Java `shutdown`).
    /// Idempotent.
    pub async fn shutdown(&self) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let core = self.core();
        if core.token.is_cancelled() {
            return report;
        }
        report.performed = true;
        {
            let queues = lock(&core.queues);
            report.queues = queues.len();
            report.messages_left = queues.values().map(|q| q.pq.msg_count()).sum();
        }
        if core.config.auto_commit {
            report.offsets_persisted = core.commit(true).await.is_ok();
        }
        let grace = core.config.await_termination_when_shutdown;
        report.tasks_stopped =
            rmq_remoting::task::stop_and_wait(&core.token, &core.tracker, grace).await;
        if let Some((dispatcher, _)) = &core.trace {
            dispatcher.shutdown(grace).await;
        }
        core.instance.release_consumer(&core.group, grace).await;
        report
    }
}
