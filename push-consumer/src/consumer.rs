//! [`PushConsumer`] (Java `DefaultMQPushConsumer` / `DefaultMQPushConsumerImpl`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use rmq_client_core::header::ConsumerData;
use rmq_client_core::namespace::retry_topic;
use rmq_client_core::{
    ClientConfig, ClientInstance, ConsumerInner, ExpressionType, MessageExt, MessageQueue,
    PullKernel, PullSpec, PullStatus, SubscriptionData,
};
use rmq_consume_service::{
    ConcurrentConfig, ConsumeMessageConcurrentlyService, ConsumeMessageHook,
    ConsumeMessageOrderlyService, FilterMessageHook, MessageListenerConcurrently,
    MessageListenerOrderly, OrderlyConfig, ProcessQueue, SendBack,
};
use rmq_offset_store::{
    LocalFileOffsetStore, OffsetStore, ReadOffsetType, RemoteBrokerOffsetStore,
};
use rmq_rebalance::{
    AllocateMessageQueueStrategy, MessageModel, RebalanceConfig, RebalanceImpl, RebalanceListener,
    RebalanceService,
};
use rmq_remoting::{BoxFuture, ResponseCode};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::builder::{PushConsumerBuilder, PushConsumerConfig, Subscription};
use crate::error::PushConsumerError;

/// Long-poll hold of a push pull (Java `BROKER_SUSPEND_MAX_TIME_MILLIS`, 15 s).
const BROKER_SUSPEND_MAX_TIME: Duration = Duration::from_millis(15_000);
/// RPC timeout of a push pull (Java `CONSUMER_TIMEOUT_MILLIS_WHEN_SUSPEND`, 30 s).
const PULL_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Delay when the cache is over a threshold (Java `PULL_TIME_DELAY_MILLS_WHEN_CACHE_FLOW_CONTROL`).
const FLOW_CONTROL_DELAY: Duration = Duration::from_millis(50);
/// Delay after a FLOW_CONTROL answer (Java `PULL_TIME_DELAY_MILLS_WHEN_BROKER_FLOW_CONTROL`).
const BROKER_FLOW_CONTROL_DELAY: Duration = Duration::from_millis(20);
/// Delay while suspended (Java `PULL_TIME_DELAY_MILLS_WHEN_SUSPEND`).
const SUSPEND_DELAY: Duration = Duration::from_millis(1000);
/// Orderly lock renewal period (Java `REBALANCE_LOCK_INTERVAL`, 20 s).
const LOCK_INTERVAL: Duration = Duration::from_millis(20_000);

type ConcurrentFactory = Box<
    dyn FnOnce(
            ConcurrentConfig,
            Arc<dyn OffsetStore>,
            SendBack,
            Vec<Arc<dyn ConsumeMessageHook>>,
        ) -> ConsumeMessageConcurrentlyService
        + Send,
>;
type OrderlyFactory = Box<
    dyn FnOnce(
            OrderlyConfig,
            Arc<dyn OffsetStore>,
            SendBack,
            Vec<Arc<dyn ConsumeMessageHook>>,
            Arc<RebalanceImpl>,
        ) -> ConsumeMessageOrderlyService
        + Send,
>;

/// The listener, kept until start builds the consume service around it.
pub(crate) enum ListenerFactory {
    Concurrent(ConcurrentFactory),
    Orderly(OrderlyFactory),
}

impl ListenerFactory {
    pub(crate) fn concurrent<L: MessageListenerConcurrently>(l: L) -> Self {
        ListenerFactory::Concurrent(Box::new(move |c, s, b, h| {
            ConsumeMessageConcurrentlyService::new(l, c, s, b, h)
        }))
    }
    pub(crate) fn orderly<L: MessageListenerOrderly>(l: L) -> Self {
        ListenerFactory::Orderly(Box::new(move |c, s, b, h, r| {
            ConsumeMessageOrderlyService::new(l, c, s, b, h, r)
        }))
    }
}

enum Service {
    Concurrent(ConsumeMessageConcurrentlyService),
    Orderly(ConsumeMessageOrderlyService),
}

struct QueueEntry {
    pq: Arc<ProcessQueue>,
    token: CancellationToken,
}

/// Everything that exists once started.
struct Core {
    group: String,
    config: PushConsumerConfig,
    client: ClientConfig,
    instance: ClientInstance,
    kernel: PullKernel,
    subscriptions: HashMap<String, SubscriptionData>,
    offset_store: Arc<dyn OffsetStore>,
    rebalance: Arc<RebalanceImpl>,
    rebalance_service: RebalanceService,
    service: Service,
    filter_hooks: Vec<Arc<dyn FilterMessageHook>>,
    queues: Mutex<HashMap<MessageQueue, QueueEntry>>,
    cached_bytes: Arc<AtomicUsize>,
    paused: AtomicBool,
    token: CancellationToken,
    tracker: TaskTracker,
    start_ms: i64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const NEW: u8 = 0;
const STARTED: u8 = 1;
const STOPPED: u8 = 2;

struct Shared {
    group: String,
    client: ClientConfig,
    config: PushConsumerConfig,
    subscriptions: Vec<Subscription>,
    strategy: Arc<dyn AllocateMessageQueueStrategy>,
    offset_store: Mutex<Option<Arc<dyn OffsetStore>>>,
    listener: Mutex<Option<ListenerFactory>>,
    consume_hooks: Vec<Arc<dyn ConsumeMessageHook>>,
    filter_hooks: Vec<Arc<dyn FilterMessageHook>>,
    core: OnceLock<Arc<Core>>,
    state: AtomicU8,
}

/// The push consumer (Java `DefaultMQPushConsumer`): rebalance, a long-polling pull task
/// per owned queue with flow control, the concurrent or orderly consume service, retries,
/// offsets committed only past consumed messages, graceful hand-off and shutdown.
///
/// Cheap to clone.
///
/// # Drop behavior
/// Dropping every clone without [`PushConsumer::shutdown`] stops nothing gracefully: the
/// tasks end when the runtime does and offsets committed since the last persist (5 s) are
/// lost, so messages may be delivered again. Call `shutdown`.
#[derive(Clone)]
pub struct PushConsumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumer")
            .field("group", &self.shared.group)
            .finish_non_exhaustive()
    }
}

impl PushConsumer {
    /// A builder for `consumer_group`.
    pub fn builder(consumer_group: &str) -> PushConsumerBuilder {
        PushConsumerBuilder::new(consumer_group)
    }

    pub(crate) fn from_builder(b: PushConsumerBuilder) -> Self {
        let mut client = b.client;
        if b.config.message_model == MessageModel::Clustering {
            client.change_instance_name_to_unique();
        }
        PushConsumer {
            shared: Arc::new(Shared {
                group: client.with_namespace(&b.group),
                client,
                config: b.config,
                subscriptions: b.subscriptions,
                strategy: b.strategy,
                offset_store: Mutex::new(b.offset_store),
                listener: Mutex::new(b.listener),
                consume_hooks: b.consume_hooks,
                filter_hooks: b.filter_hooks,
                core: OnceLock::new(),
                state: AtomicU8::new(NEW),
            }),
        }
    }

    /// The (namespaced) consumer group.
    pub fn group(&self) -> &str {
        &self.shared.group
    }

    /// The client id, once started.
    pub fn client_id(&self) -> Option<String> {
        self.shared
            .core
            .get()
            .map(|c| c.instance.client_id().to_owned())
    }

    /// The queues owned now.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        self.shared
            .core
            .get()
            .map(|c| c.rebalance.owned_queues())
            .unwrap_or_default()
    }

    /// Starts consuming: registers with the client instance, refreshes routes, sends a
    /// heartbeat, and rebalances (Java `start`).
    ///
    /// # Errors
    /// [`PushConsumerError::AlreadyStarted`] on a second call; [`PushConsumerError::Client`]
    /// when the group is already used in this client; [`PushConsumerError::OffsetStore`]
    /// when the local offsets cannot be loaded.
    pub async fn start(&self) -> Result<(), PushConsumerError> {
        let s = &self.shared;
        if s.state
            .compare_exchange(NEW, STARTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(PushConsumerError::AlreadyStarted);
        }
        let instance = ClientInstance::get_or_create(&s.client)?;
        let model = s.config.message_model;
        let offset_store: Arc<dyn OffsetStore> = match lock(&s.offset_store).take() {
            Some(st) => st,
            None => match model {
                MessageModel::Clustering => {
                    Arc::new(RemoteBrokerOffsetStore::new(&instance, &s.group))
                }
                MessageModel::Broadcasting => Arc::new(LocalFileOffsetStore::new(
                    s.config.local_offset_store_dir.as_deref(),
                    instance.client_id(),
                    &s.group,
                )),
            },
        };
        offset_store.load().await?;

        let mut subscriptions = HashMap::new();
        let version = rmq_client_core::now_millis();
        for sub in &s.subscriptions {
            let topic = s.client.with_namespace(&sub.topic);
            let data = SubscriptionData::build_with_version(
                &topic,
                Some(&sub.expression),
                sub.expression_type,
                version,
            )
            .map_err(|e| PushConsumerError::InvalidConfig(e.to_string()))?;
            subscriptions.insert(topic, data);
        }
        if model == MessageModel::Clustering {
            let retry = retry_topic(&s.group);
            let data = SubscriptionData::build_with_version(
                &retry,
                Some("*"),
                ExpressionType::Tag,
                version,
            )
            .map_err(|e| PushConsumerError::InvalidConfig(e.to_string()))?;
            subscriptions.insert(retry, data);
        }

        let listener = lock(&s.listener)
            .take()
            .ok_or_else(|| PushConsumerError::InvalidConfig("no listener".into()))?;
        let orderly = matches!(listener, ListenerFactory::Orderly(_));
        let mut rb_config = RebalanceConfig::new(&s.group);
        rb_config.message_model = model;
        rb_config.consume_from_where = s.config.consume_from_where;
        rb_config.consume_timestamp_ms = s.config.consume_timestamp_ms;
        rb_config.orderly = orderly;
        rb_config.strict_last_offset = s.config.strict_last_offset;
        let handoff = !orderly && model == MessageModel::Clustering && s.config.clean_handoff;
        rb_config.handoff_lock = handoff;
        rb_config.handoff_timeout = s.config.handoff_timeout;
        let max_reconsume =
            s.config
                .max_reconsume_times
                .unwrap_or(if orderly { i32::MAX } else { 16 });
        let send_back =
            SendBack::new(&instance, &s.group, max_reconsume).with_producer_fallback(!handoff);

        let core = Arc::new_cyclic(|weak: &Weak<Core>| {
            let rebalance = Arc::new(RebalanceImpl::new(
                rb_config,
                instance.clone(),
                Arc::clone(&s.strategy),
                Arc::clone(&offset_store),
                Arc::new(RebalanceHook(Weak::clone(weak))) as Arc<dyn RebalanceListener>,
            ));
            let service = match listener {
                ListenerFactory::Concurrent(f) => {
                    let mut c = ConcurrentConfig::new(&s.group);
                    c.message_model = model;
                    c.consume_message_batch_max_size = s.config.consume_message_batch_max_size;
                    c.consume_thread_max = s.config.consume_thread_max;
                    c.consume_timeout = s.config.consume_timeout;
                    Service::Concurrent(f(
                        c,
                        Arc::clone(&offset_store),
                        send_back,
                        s.consume_hooks.clone(),
                    ))
                }
                ListenerFactory::Orderly(f) => {
                    let mut c = OrderlyConfig::new(&s.group);
                    c.message_model = model;
                    c.consume_message_batch_max_size = s.config.consume_message_batch_max_size;
                    c.suspend_current_queue_time = s.config.suspend_current_queue_time;
                    c.max_reconsume_times = max_reconsume;
                    c.consume_timeout = s.config.consume_timeout;
                    Service::Orderly(f(
                        c,
                        Arc::clone(&offset_store),
                        send_back,
                        s.consume_hooks.clone(),
                        Arc::clone(&rebalance),
                    ))
                }
            };
            Core {
                group: s.group.clone(),
                config: s.config.clone(),
                client: s.client.clone(),
                instance: instance.clone(),
                kernel: PullKernel::new(&instance, &s.group),
                subscriptions: subscriptions.clone(),
                offset_store: Arc::clone(&offset_store),
                rebalance,
                rebalance_service: RebalanceService::new(),
                service,
                filter_hooks: s.filter_hooks.clone(),
                queues: Mutex::new(HashMap::new()),
                cached_bytes: Arc::new(AtomicUsize::new(0)),
                paused: AtomicBool::new(false),
                token: CancellationToken::new(),
                tracker: TaskTracker::new(),
                start_ms: rmq_client_core::now_millis(),
            }
        });
        for sub in subscriptions.values() {
            core.rebalance.subscribe(sub.clone());
        }
        instance.register_consumer(
            Arc::new(InstanceHook(Arc::downgrade(&core))) as Arc<dyn ConsumerInner>
        )?;
        let _ = s.core.set(Arc::clone(&core));
        instance.start();
        for topic in subscriptions.keys() {
            if let Err(e) = instance.update_topic_route(topic).await {
                tracing::warn!(topic, error = %e, "no route for subscribed topic yet; will retry");
            }
        }
        instance.send_heartbeat_to_all_brokers().await;

        let rb = Arc::clone(&core.rebalance);
        let svc = core.rebalance_service.clone();
        let token = core.token.clone();
        core.tracker.spawn(async move { svc.run(rb, token).await });
        core.rebalance_service.wakeup();
        if (orderly || handoff) && model == MessageModel::Clustering {
            let rb = Arc::clone(&core.rebalance);
            let token = core.token.clone();
            core.tracker.spawn(async move {
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + Duration::from_secs(1),
                    LOCK_INTERVAL,
                );
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tick.tick() => rb.lock_all().await,
                    }
                }
            });
        }
        tracing::info!(group = %s.group, client_id = instance.client_id(), "push consumer started");
        Ok(())
    }

    /// Stops pulling for every queue; cached messages are still consumed (Java `suspend`).
    pub fn suspend(&self) {
        if let Some(c) = self.shared.core.get() {
            c.paused.store(true, Ordering::SeqCst);
        }
    }

    /// Resumes pulling (Java `resume`).
    pub fn resume(&self) {
        if let Some(c) = self.shared.core.get() {
            c.paused.store(false, Ordering::SeqCst);
        }
    }

    /// Stops gracefully (Java `shutdown`), idempotent: stops pulling, lets the cached
    /// messages be consumed (at most `drain_timeout`), waits for listener calls, persists
    /// the offsets, unlocks orderly queues and unregisters from the brokers. After a clean
    /// shutdown a restart redelivers nothing that was consumed.
    pub async fn shutdown(&self) {
        if self.shared.state.swap(STOPPED, Ordering::SeqCst) != STARTED {
            return;
        }
        let Some(core) = self.shared.core.get() else {
            return;
        };
        core.token.cancel();
        core.drain_all(core.config.drain_timeout).await;
        match &core.service {
            Service::Concurrent(s) => s.shutdown(Duration::from_secs(5)).await,
            Service::Orderly(s) => s.shutdown(Duration::from_secs(5)).await,
        };
        let owned = core.rebalance.owned_queues();
        if let Err(e) = core.offset_store.persist_all(&owned).await {
            tracing::warn!(error = %e, "persisting offsets at shutdown failed");
        }
        core.rebalance.release_all().await;
        rmq_remoting::task::stop_and_wait(&core.token, &core.tracker, Duration::from_secs(5)).await;
        core.instance
            .release_consumer(&core.group, Duration::from_secs(3))
            .await;
        tracing::info!(group = %core.group, "push consumer shut down");
    }
}

impl Core {
    fn queues(&self) -> MutexGuard<'_, HashMap<MessageQueue, QueueEntry>> {
        lock(&self.queues)
    }

    fn is_orderly(&self) -> bool {
        matches!(self.service, Service::Orderly(_))
    }

    /// Waits until every cached message was consumed, at most `timeout`.
    async fn drain_all(&self, timeout: Duration) {
        let pqs: Vec<Arc<ProcessQueue>> =
            self.queues().values().map(|e| Arc::clone(&e.pq)).collect();
        let deadline = tokio::time::Instant::now() + timeout;
        while pqs.iter().any(|pq| pq.msg_count() > 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn queue_added(self: &Arc<Self>, mq: &MessageQueue, next_offset: i64) {
        let pq = Arc::new(ProcessQueue::new(Arc::clone(&self.cached_bytes)));
        let token = self.token.child_token();
        self.queues().insert(
            mq.clone(),
            QueueEntry {
                pq: Arc::clone(&pq),
                token: token.clone(),
            },
        );
        let core = Arc::clone(self);
        let mq = mq.clone();
        let span = tracing::debug_span!("pull", queue = ?mq);
        self.tracker.spawn(
            async move { core.pull_loop(mq, pq, next_offset, token).await }.instrument(span),
        );
    }

    /// Drains and gives up a queue (bounded wait); `true` once nothing more will be
    /// consumed from it.
    async fn queue_removed(self: &Arc<Self>, mq: &MessageQueue) -> bool {
        let Some(entry) = self.queues().remove(mq) else {
            return true;
        };
        entry.token.cancel();
        // A queue already dropped (offset reset, OFFSET_ILLEGAL) consumes nothing more:
        // there is nothing to wait for.
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        while entry.pq.msg_count() > 0
            && !entry.pq.is_dropped()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = entry.pq.msg_count();
        entry.pq.set_dropped(true);
        if let Service::Orderly(s) = &self.service
            && !s.wait_idle(mq, Duration::from_millis(1000)).await
        {
            // A listener call is still running: keep the queue and try next round (Java).
            entry.pq.set_dropped(false);
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
    fn queue_readd(self: &Arc<Self>, mq: &MessageQueue, pq: Arc<ProcessQueue>) {
        let next = pq.offset_range().map(|(_, hi)| hi + 1);
        let token = self.token.child_token();
        self.queues().insert(
            mq.clone(),
            QueueEntry {
                pq: Arc::clone(&pq),
                token: token.clone(),
            },
        );
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

    fn subscription_of(&self, topic: &str) -> Option<&SubscriptionData> {
        self.subscriptions.get(topic)
    }

    /// Java's flow-control checks; `true` when this queue must wait.
    fn flow_controlled(&self, mq: &MessageQueue, pq: &ProcessQueue) -> bool {
        let c = &self.config;
        let mut per_queue_count = c.pull_threshold_for_queue;
        let mut per_queue_size = c.pull_threshold_size_for_queue;
        if c.pull_threshold_for_topic.is_some() || c.pull_threshold_size_for_topic.is_some() {
            let n = self
                .queues()
                .keys()
                .filter(|q| q.topic == mq.topic)
                .count()
                .max(1);
            if let Some(t) = c.pull_threshold_for_topic {
                per_queue_count = per_queue_count.min((t / n).max(1));
            }
            if let Some(t) = c.pull_threshold_size_for_topic {
                per_queue_size = per_queue_size.min((t / n).max(1));
            }
        }
        if pq.msg_count() > per_queue_count || pq.msg_bytes() > per_queue_size {
            return true;
        }
        if self.cached_bytes.load(Ordering::Relaxed) > c.memory_budget {
            return true;
        }
        !self.is_orderly() && pq.max_span() > c.consume_concurrently_max_span
    }

    async fn pause(token: &CancellationToken, d: Duration) -> bool {
        tokio::select! {
            _ = token.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// The pull loop of one queue (Java `pullMessage` + `PullCallback`).
    async fn pull_loop(
        self: Arc<Self>,
        mq: MessageQueue,
        mut pq: Arc<ProcessQueue>,
        mut next_offset: i64,
        token: CancellationToken,
    ) {
        let Some(sub) = self.subscription_of(&mq.topic).cloned() else {
            tracing::warn!(?mq, "no subscription for the queue's topic");
            return;
        };
        let clustering = self.config.message_model == MessageModel::Clustering;
        let exception_delay = self.client.pull_time_delay_when_exception;
        let labels = [
            ("topic", mq.topic.clone()),
            ("queue", mq.queue_id.to_string()),
        ];
        loop {
            if token.is_cancelled() || pq.is_dropped() {
                return;
            }
            pq.touch_pull();
            if self.paused.load(Ordering::Relaxed) {
                if !Self::pause(&token, SUSPEND_DELAY).await {
                    return;
                }
                continue;
            }
            if self.flow_controlled(&mq, &pq) {
                metrics::counter!("rmq_flow_control_total", "group" => self.group.clone())
                    .increment(1);
                if !Self::pause(&token, FLOW_CONTROL_DELAY).await {
                    return;
                }
                continue;
            }
            if self.is_orderly() && clustering && !pq.is_locked() {
                // Locked by the rebalance (or the consume task) before pulling (Java).
                if self.rebalance.lock(&mq).await {
                    pq.set_locked(true);
                } else if !Self::pause(&token, exception_delay).await {
                    return;
                } else {
                    continue;
                }
            }
            let commit = if clustering {
                self.offset_store
                    .read_offset(&mq, ReadOffsetType::ReadFromMemory)
                    .await
                    .ok()
                    .flatten()
                    .filter(|o| *o > 0)
            } else {
                None
            };
            let started = std::time::Instant::now();
            let pull = self
                .kernel
                .pull(PullSpec {
                    mq: &mq,
                    subscription: &sub,
                    offset: next_offset,
                    max_msg_nums: self.config.pull_batch_size,
                    commit_offset: commit,
                    suspend: Some(BROKER_SUSPEND_MAX_TIME),
                    post_subscription: false,
                    lite: false,
                    timeout: PULL_TIMEOUT,
                })
                .instrument(tracing::trace_span!("pull_request", offset = next_offset));
            let result = tokio::select! {
                _ = token.cancelled() => return,
                r = pull => r,
            };
            metrics::histogram!("rmq_pull_latency_seconds", "group" => self.group.clone())
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(mut r) => {
                    let lag = (r.max_offset - r.next_begin_offset).max(0) as f64;
                    metrics::gauge!("rmq_queue_lag", &labels).set(lag + pq.msg_count() as f64);
                    match r.status {
                        PullStatus::Found => {
                            next_offset = r.next_begin_offset;
                            let mut msgs: Vec<MessageExt> = std::mem::take(&mut r.messages);
                            for h in &self.filter_hooks {
                                h.filter_message(&mq, &mut msgs);
                            }
                            if msgs.is_empty() {
                                self.correct_tags_offset(&mq, &pq, next_offset);
                                continue;
                            }
                            metrics::counter!("rmq_pulled_total", "group" => self.group.clone())
                                .increment(msgs.len() as u64);
                            match &self.service {
                                Service::Concurrent(s) => {
                                    pq.put_messages(&msgs);
                                    if !s.submit(msgs, &pq, &mq).await {
                                        return;
                                    }
                                }
                                Service::Orderly(s) => {
                                    let dispatch = pq.put_messages_orderly(msgs);
                                    s.submit(&pq, &mq, dispatch);
                                }
                            }
                            metrics::gauge!("rmq_cached_bytes", "group" => self.group.clone())
                                .set(self.cached_bytes.load(Ordering::Relaxed) as f64);
                            if !self.config.pull_interval.is_zero()
                                && !Self::pause(&token, self.config.pull_interval).await
                            {
                                return;
                            }
                        }
                        PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                            next_offset = r.next_begin_offset;
                            self.correct_tags_offset(&mq, &pq, next_offset);
                        }
                        PullStatus::OffsetIllegal => {
                            // The broker says where this queue continues (a too-small or
                            // too-large offset, or an admin reset). Continue there in place,
                            // with a fresh cache: the old one is dropped so its calls still
                            // running commit nothing. Java instead releases the queue and
                            // re-reads the offset from the broker, which loses a server-side
                            // reset on brokers that keep committed offsets increase-only
                            // (rocketmq-rust 1.0.0 does).
                            tracing::warn!(
                                ?mq,
                                requested = next_offset,
                                next = r.next_begin_offset,
                                "pull offset illegal; continuing at the broker's offset"
                            );
                            pq.set_dropped(true);
                            pq.clear();
                            pq = Arc::new(ProcessQueue::new(Arc::clone(&self.cached_bytes)));
                            if let Some(e) = self.queues().get_mut(&mq)
                                && e.token == token
                            {
                                e.pq = Arc::clone(&pq);
                            } else {
                                return; // released meanwhile
                            }
                            next_offset = r.next_begin_offset;
                            self.offset_store.update_offset(&mq, next_offset, false);
                            if let Err(e) = self.offset_store.persist(&mq).await {
                                tracing::warn!(?mq, error = %e, "persisting corrected offset failed");
                            }
                        }
                    }
                }
                Err(e) => {
                    let delay = if e.response_code() == Some(ResponseCode::FLOW_CONTROL) {
                        BROKER_FLOW_CONTROL_DELAY
                    } else {
                        tracing::warn!(?mq, error = %e, "pull failed");
                        exception_delay
                    };
                    if !Self::pause(&token, delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// Nothing cached: the pulled-past offset is safe to commit (Java `correctTagsOffset`).
    fn correct_tags_offset(&self, mq: &MessageQueue, pq: &ProcessQueue, next_offset: i64) {
        if pq.msg_count() == 0 && !pq.is_dropped() {
            self.offset_store.update_offset(mq, next_offset, true);
        }
    }

    fn consumer_data(&self) -> ConsumerData {
        ConsumerData::new(
            &self.group,
            "CONSUME_PASSIVELY",
            self.config.message_model.as_str(),
            self.config.consume_from_where.as_str(),
            self.subscriptions.values().cloned().collect(),
        )
    }

    async fn reset_offset(self: Arc<Self>, topic: String, offsets: HashMap<MessageQueue, i64>) {
        tracing::info!(group = %self.group, topic, queues = offsets.len(), "resetting offsets");
        self.paused.store(true, Ordering::SeqCst);
        let entries: Vec<(MessageQueue, QueueEntry)> = {
            let mut q = self.queues();
            let keys: Vec<MessageQueue> = q
                .keys()
                .filter(|k| k.topic == topic && offsets.contains_key(*k))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| q.remove(&k).map(|e| (k, e)))
                .collect()
        };
        for (_, e) in &entries {
            e.token.cancel();
            e.pq.set_dropped(true);
            e.pq.clear();
        }
        // Let listener calls on the dropped queues finish; they commit nothing.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for (mq, offset) in &offsets {
            if mq.topic != topic {
                continue;
            }
            self.offset_store.update_offset(mq, *offset, false);
            if let Err(e) = self.offset_store.persist(mq).await {
                tracing::warn!(?mq, error = %e, "persisting reset offset failed");
            }
        }
        for (mq, _) in &entries {
            self.rebalance.release(mq).await;
        }
        self.paused.store(false, Ordering::SeqCst);
        self.rebalance_service.wakeup();
    }

    fn running_info(&self) -> Bytes {
        use std::fmt::Write as _;
        let offsets = self.offset_store.clone_offset_table(None);
        let queues: Vec<(MessageQueue, (Arc<ProcessQueue>, i64))> = self
            .queues()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    (Arc::clone(&v.pq), offsets.get(k).copied().unwrap_or(-1)),
                )
            })
            .collect();
        let mut s = String::from("{\"jstack\":\"\",\"mqTable\":");
        rmq_client_core::fastjson::write_mq_map(&mut s, queues, |o, (pq, commit)| {
            let (lo, hi) = pq.offset_range().unwrap_or((0, 0));
            let _ = write!(
                o,
                "{{\"cachedMsgCount\":{},\"cachedMsgMaxOffset\":{},\"cachedMsgMinOffset\":{},\"cachedMsgSizeInMiB\":{},\"commitOffset\":{},\"droped\":{},\"lastConsumeTimestamp\":{},\"lastLockTimestamp\":{},\"lastPullTimestamp\":{},\"locked\":{},\"transactionMsgCount\":0,\"transactionMsgMaxOffset\":0,\"transactionMsgMinOffset\":0,\"tryUnlockTimes\":{}}}",
                pq.msg_count(),
                hi,
                lo,
                pq.msg_bytes() / (1024 * 1024),
                commit,
                pq.is_dropped(),
                pq.last_consume_ms(),
                pq.last_lock_ms(),
                pq.last_pull_ms(),
                pq.is_locked(),
                pq.try_unlock_times()
            );
        });
        let props = serde_json::json!({
            "PROP_CLIENT_VERSION": "rmq-0.1.0",
            "PROP_CONSUMEORDERLY": self.is_orderly().to_string(),
            "PROP_CONSUMER_START_TIMESTAMP": self.start_ms.to_string(),
            "PROP_CONSUME_TYPE": "CONSUME_PASSIVELY",
            "PROP_NAMESERVER_ADDR": self.client.namesrv_addrs.join(";"),
            "PROP_THREADPOOL_CORE_SIZE": self.config.consume_thread_max.to_string(),
            "consumeFromWhere": self.config.consume_from_where.as_str(),
            "consumerGroup": self.group,
            "messageModel": self.config.message_model.as_str(),
            "pullBatchSize": self.config.pull_batch_size.to_string(),
            "pullThresholdForQueue": self.config.pull_threshold_for_queue.to_string(),
            "consumeMessageBatchMaxSize": self.config.consume_message_batch_max_size.to_string(),
        });
        let subs: Vec<&SubscriptionData> = self.subscriptions.values().collect();
        let _ = write!(
            s,
            ",\"properties\":{},\"statusTable\":{{}},\"subscriptionSet\":{},\"userConsumerInfo\":{{}}}}",
            props,
            serde_json::to_string(&subs).unwrap_or_else(|_| "[]".into())
        );
        Bytes::from(s)
    }
}

/// The rebalance hooks, holding the consumer weakly.
struct RebalanceHook(Weak<Core>);

impl RebalanceListener for RebalanceHook {
    fn queue_added(&self, mq: &MessageQueue, next_offset: i64) {
        if let Some(core) = self.0.upgrade() {
            core.queue_added(mq, next_offset);
        }
    }

    fn queue_removed(&self, mq: &MessageQueue) -> BoxFuture<'_, bool> {
        let core = self.0.upgrade();
        let mq = mq.clone();
        Box::pin(async move {
            match core {
                Some(c) => c.queue_removed(&mq).await,
                None => true,
            }
        })
    }

    fn lock_state(&self, mq: &MessageQueue, locked: bool) {
        if let Some(core) = self.0.upgrade()
            && let Some(e) = core.queues().get(mq)
        {
            e.pq.set_locked(locked);
        }
    }
}

/// What the client instance sees of the consumer.
struct InstanceHook(Weak<Core>);

impl ConsumerInner for InstanceHook {
    fn group_name(&self) -> String {
        self.0
            .upgrade()
            .map(|c| c.group.clone())
            .unwrap_or_default()
    }

    fn consumer_data(&self) -> ConsumerData {
        match self.0.upgrade() {
            Some(c) => c.consumer_data(),
            None => ConsumerData::new(
                "",
                "CONSUME_PASSIVELY",
                "CLUSTERING",
                "CONSUME_FROM_LAST_OFFSET",
                vec![],
            ),
        }
    }

    fn subscribed_topics(&self) -> Vec<String> {
        self.0
            .upgrade()
            .map(|c| c.subscriptions.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn update_topic_subscribe_info(&self, topic: &str, queues: &[MessageQueue]) {
        if let Some(c) = self.0.upgrade() {
            c.rebalance.set_topic_queues(topic, queues);
            c.rebalance_service.wakeup();
        }
    }

    fn trigger_rebalance(&self) {
        if let Some(c) = self.0.upgrade() {
            c.rebalance_service.wakeup();
        }
    }

    fn persist_consumer_offset(&self) -> BoxFuture<'static, ()> {
        let core = self.0.upgrade();
        Box::pin(async move {
            if let Some(c) = core {
                let owned = c.rebalance.owned_queues();
                if let Err(e) = c.offset_store.persist_all(&owned).await {
                    tracing::warn!(error = %e, "persisting offsets failed");
                }
            }
        })
    }

    fn reset_offset(
        &self,
        topic: &str,
        offsets: HashMap<MessageQueue, i64>,
    ) -> BoxFuture<'static, ()> {
        let core = self.0.upgrade();
        let topic = topic.to_owned();
        Box::pin(async move {
            if let Some(c) = core {
                c.reset_offset(topic, offsets).await;
            }
        })
    }

    fn consumer_status(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        self.0
            .upgrade()
            .map(|c| c.offset_store.clone_offset_table(Some(topic)))
            .unwrap_or_default()
    }

    fn running_info(&self) -> Option<Bytes> {
        self.0.upgrade().map(|c| c.running_info())
    }

    fn consume_message_directly(
        &self,
        msg: MessageExt,
        broker_name: Option<String>,
    ) -> BoxFuture<'static, Option<Bytes>> {
        let core = self.0.upgrade();
        Box::pin(async move {
            let c = core?;
            Some(match &c.service {
                Service::Concurrent(s) => s.consume_message_directly(msg, broker_name).await,
                Service::Orderly(s) => s.consume_message_directly(msg, broker_name).await,
            })
        })
    }
}
