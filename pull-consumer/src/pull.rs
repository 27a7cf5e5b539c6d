//! [`PullConsumer`] (Java `DefaultMQPullConsumer`): the application pulls queues at offsets it
//! chooses; the client keeps routes, heartbeats and offsets.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rmq_client_core::header::ConsumerData;
use rmq_client_core::{
    ClientConfig, ClientInstance, ConsumerInner, ExpressionType, MessageExt, MessageQueue,
    PullKernel, PullResult, PullSpec, SendBack, ShutdownReport, SubscriptionData, Weakly,
};
use rmq_offset_store::{
    LocalFileOffsetStore, OffsetStore, ReadOffsetType, RemoteBrokerOffsetStore,
};
use rmq_rebalance::{
    AllocateMessageQueueAveragely, AllocateMessageQueueStrategy, MessageModel, RebalanceConfig,
    RebalanceImpl, RebalanceListener, RebalanceService,
};
use rmq_remoting::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::PullConsumerError;

/// Told which queues this client owns after each rebalance (Java `MessageQueueListener`).
/// Called from the rebalance task; must return quickly.
pub trait MessageQueueListener: Send + Sync + 'static {
    /// `all` readable queues of `topic`, and the ones this client owns now.
    fn message_queue_changed(&self, topic: &str, all: &[MessageQueue], owned: &[MessageQueue]);
}

/// Pull timeouts (Java `DefaultMQPullConsumer`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullConsumerConfig {
    /// Clustering (offsets at the broker) or broadcasting (local file). Default clustering.
    pub message_model: MessageModel,
    /// Timeout of a non-blocking pull. Default 10 s (Java `consumerPullTimeoutMillis`).
    pub consumer_pull_timeout: Duration,
    /// Long-poll hold of a blocking pull. Default 20 s (Java `brokerSuspendMaxTimeMillis`).
    pub broker_suspend_max_time: Duration,
    /// Timeout of a blocking pull; must exceed the hold. Default 30 s (Java
    /// `consumerTimeoutMillisWhenSuspend`).
    pub consumer_timeout_when_suspend: Duration,
    /// Retries before the DLQ for [`PullConsumer::send_message_back`]. Default 16.
    pub max_reconsume_times: i32,
    /// Longest wait at shutdown for the consumer's tasks, and again for its
    /// unregistration. Default 5 s (Java `awaitTerminationMillisWhenShutdown`).
    pub await_termination_when_shutdown: Duration,
}

impl Default for PullConsumerConfig {
    fn default() -> Self {
        PullConsumerConfig {
            message_model: MessageModel::Clustering,
            consumer_pull_timeout: Duration::from_millis(10_000),
            broker_suspend_max_time: Duration::from_millis(20_000),
            consumer_timeout_when_suspend: Duration::from_millis(30_000),
            max_reconsume_times: 16,
            await_termination_when_shutdown: Duration::from_secs(5),
        }
    }
}

/// Builds a [`PullConsumer`].
pub struct PullConsumerBuilder {
    group: String,
    client: ClientConfig,
    config: PullConsumerConfig,
    register_topics: Vec<String>,
    listener: Option<Arc<dyn MessageQueueListener>>,
    strategy: Arc<dyn AllocateMessageQueueStrategy>,
    offset_store: Option<Arc<dyn OffsetStore>>,
    instance: Option<ClientInstance>,
}

impl std::fmt::Debug for PullConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullConsumerBuilder")
            .field("group", &self.group)
            .field("config", &self.config)
            .field("register_topics", &self.register_topics)
            .finish_non_exhaustive()
    }
}

impl PullConsumerBuilder {
    /// Name servers `host:port;…`.
    pub fn namesrv_addr(mut self, addrs: &str) -> Self {
        self.client = self.client.namesrv_addr(addrs);
        self
    }
    /// Runs on this client instance (shared with other consumers and producers) instead of
    /// one looked up by client id; its configuration is the one used.
    pub fn instance(mut self, instance: &ClientInstance) -> Self {
        self.instance = Some(instance.clone());
        self
    }

    /// The whole client configuration.
    pub fn client_config(mut self, client: ClientConfig) -> Self {
        self.client = client;
        self
    }
    /// The settings.
    pub fn config(mut self, config: PullConsumerConfig) -> Self {
        self.config = config;
        self
    }
    /// Clustering or broadcasting.
    pub fn message_model(mut self, m: MessageModel) -> Self {
        self.config.message_model = m;
        self
    }
    /// Topics to rebalance for the [`MessageQueueListener`] (Java `registerTopics`).
    pub fn register_topic(mut self, topic: &str) -> Self {
        self.register_topics.push(topic.to_owned());
        self
    }
    /// The rebalance listener (Java `setMessageQueueListener`).
    pub fn message_queue_listener(mut self, l: Arc<dyn MessageQueueListener>) -> Self {
        self.listener = Some(l);
        self
    }
    /// The allocation strategy for registered topics. Default AVG.
    pub fn allocate_strategy(mut self, s: Arc<dyn AllocateMessageQueueStrategy>) -> Self {
        self.strategy = s;
        self
    }
    /// A custom offset store.
    pub fn offset_store(mut self, s: Arc<dyn OffsetStore>) -> Self {
        self.offset_store = Some(s);
        self
    }
    /// Validates the settings and starts (Java `start`): registers with the client instance
    /// (heartbeats as `CONSUME_ACTIVELY`), loads offsets, and rebalances registered topics
    /// when a listener is set. Returns a running consumer or an error with nothing left
    /// running.
    ///
    /// # Errors
    /// [`PullConsumerError::InvalidConfig`] naming what is missing or wrong;
    /// [`PullConsumerError::Client`] (group already registered),
    /// [`PullConsumerError::OffsetStore`].
    pub async fn start(self) -> Result<PullConsumer, PullConsumerError> {
        let settings = self.build()?;
        let started = settings.start().await?;
        Ok(PullConsumer {
            inner: Arc::new(Inner { settings, started }),
        })
    }

    fn build(self) -> Result<Settings, PullConsumerError> {
        if self.group.trim().is_empty() {
            return Err(PullConsumerError::InvalidConfig(
                "consumer group is empty".into(),
            ));
        }
        if self.client.namesrv_addrs.is_empty() && self.instance.is_none() {
            return Err(PullConsumerError::InvalidConfig(
                "no name server address".into(),
            ));
        }
        if self.config.consumer_timeout_when_suspend <= self.config.broker_suspend_max_time {
            return Err(PullConsumerError::InvalidConfig(
                "consumerTimeoutMillisWhenSuspend must exceed brokerSuspendMaxTimeMillis".into(),
            ));
        }
        let mut client = self.client;
        if self.config.message_model == MessageModel::Clustering {
            client.change_instance_name_to_unique();
        }
        Ok(Settings {
            group: client.with_namespace(&self.group),
            client,
            config: self.config,
            register_topics: self.register_topics,
            listener: self.listener,
            strategy: self.strategy,
            offset_store: self.offset_store,
            instance: self.instance,
        })
    }
}

struct Started {
    group: String,
    model: MessageModel,
    instance: ClientInstance,
    offset_store: Arc<dyn OffsetStore>,
    rebalance: Arc<RebalanceImpl>,
    rebalance_service: RebalanceService,
    send_back: SendBack,
    kernel: PullKernel,
    token: CancellationToken,
    tracker: TaskTracker,
}

/// What the builder validated.
struct Settings {
    group: String,
    client: ClientConfig,
    config: PullConsumerConfig,
    register_topics: Vec<String>,
    listener: Option<Arc<dyn MessageQueueListener>>,
    strategy: Arc<dyn AllocateMessageQueueStrategy>,
    offset_store: Option<Arc<dyn OffsetStore>>,
    instance: Option<ClientInstance>,
}

/// A running consumer: its settings and what `start` made.
struct Inner {
    settings: Settings,
    started: Arc<Started>,
}

impl Drop for Inner {
    /// The last handle is gone without `shutdown`: stop every task at once.
    fn drop(&mut self) {
        let s = &self.started;
        if s.token.is_cancelled() {
            return;
        }
        s.token.cancel();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (instance, group) = (s.instance.clone(), s.group.clone());
            rt.spawn(async move {
                instance
                    .release_consumer(&group, Duration::from_secs(1))
                    .await
            });
        }
    }
}

impl Settings {
    /// Starts (Java `start`); on an error nothing is left running.
    async fn start(&self) -> Result<Arc<Started>, PullConsumerError> {
        let i = self;
        let instance = match &i.instance {
            Some(inst) => inst.clone(),
            None => ClientInstance::get_or_create(&i.client)?,
        };
        let offset_store: Arc<dyn OffsetStore> = match i.offset_store.clone() {
            Some(s) => s,
            None => match i.config.message_model {
                MessageModel::Clustering => {
                    Arc::new(RemoteBrokerOffsetStore::new(&instance, &i.group))
                }
                MessageModel::Broadcasting => Arc::new(LocalFileOffsetStore::new(
                    None,
                    instance.client_id(),
                    &i.group,
                )),
            },
        };
        offset_store.load().await?;
        let mut rb_config = RebalanceConfig::new(&i.group);
        rb_config.message_model = i.config.message_model;
        let started = Arc::new_cyclic(|weak: &Weak<Started>| {
            let rebalance = Arc::new(RebalanceImpl::new(
                rb_config,
                instance.clone(),
                Arc::clone(&i.strategy),
                Arc::clone(&offset_store),
                Arc::new(QueueListenerHook {
                    listener: i.listener.clone(),
                    _owner: Weak::clone(weak),
                }) as Arc<dyn RebalanceListener>,
            ));
            Started {
                group: i.group.clone(),
                model: i.config.message_model,
                instance: instance.clone(),
                offset_store: Arc::clone(&offset_store),
                rebalance,
                rebalance_service: RebalanceService::new(),
                send_back: SendBack::new(&instance, &i.group, i.config.max_reconsume_times),
                kernel: PullKernel::new(&instance, &i.group),
                token: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }
        });
        for topic in &i.register_topics {
            let topic = i.client.with_namespace(topic);
            let sub = SubscriptionData::build(&topic, Some("*"), ExpressionType::Tag)
                .map_err(|e| PullConsumerError::InvalidConfig(e.to_string()))?;
            started.rebalance.subscribe(sub);
        }
        instance.register_consumer(
            Arc::new(Weakly(Arc::downgrade(&started))) as Arc<dyn ConsumerInner>
        )?;
        instance.start();
        for topic in started.rebalance.subscriptions().keys() {
            if let Err(e) = instance.update_topic_route(topic).await {
                tracing::warn!(topic, error = %e, "no route for registered topic yet");
            }
        }
        instance.send_heartbeat_to_all_brokers().await;
        if i.listener.is_some() && !i.register_topics.is_empty() {
            let rb = Arc::clone(&started.rebalance);
            let svc = started.rebalance_service.clone();
            let token = started.token.clone();
            started
                .tracker
                .spawn(async move { svc.run(rb, token).await });
            started.rebalance_service.wakeup();
        }
        Ok(started)
    }
}

/// The pull consumer (Java `DefaultMQPullConsumer`), made running by
/// [`PullConsumerBuilder::start`]. Cheap to clone.
///
/// # Drop behavior
/// Dropping the last clone without [`PullConsumer::shutdown`] stops every task at once and
/// unregisters in the background; offsets updated since the last persist are lost.
#[derive(Clone)]
pub struct PullConsumer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PullConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullConsumer")
            .field("group", &self.inner.started.group)
            .finish_non_exhaustive()
    }
}

impl PullConsumer {
    /// A builder for `consumer_group`.
    pub fn builder(consumer_group: &str) -> PullConsumerBuilder {
        PullConsumerBuilder {
            group: consumer_group.to_owned(),
            client: ClientConfig::default(),
            config: PullConsumerConfig::default(),
            register_topics: Vec::new(),
            listener: None,
            strategy: Arc::new(AllocateMessageQueueAveragely),
            offset_store: None,
            instance: None,
        }
    }

    /// Persists offsets, unregisters, and stops the client instance if no other consumer
    /// uses it (Java `shutdown`). Idempotent.
    pub async fn shutdown(&self) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let s = &self.inner.started;
        if s.token.is_cancelled() {
            return report;
        }
        report.performed = true;
        let grace = self.inner.settings.config.await_termination_when_shutdown;
        report.tasks_stopped = rmq_remoting::task::stop_and_wait(&s.token, &s.tracker, grace).await;
        let queues: Vec<MessageQueue> = s
            .offset_store
            .clone_offset_table(None)
            .into_keys()
            .collect();
        report.queues = queues.len();
        report.offsets_persisted = true;
        for mq in &queues {
            if let Err(e) = s.offset_store.persist(mq).await {
                tracing::warn!(?mq, error = %e, "persisting offset at shutdown failed");
                report.offsets_persisted = false;
            }
        }
        s.instance.release_consumer(&s.group, grace).await;
        report
    }

    /// The readable queues of `topic` (Java `fetchSubscribeMessageQueues`).
    ///
    /// # Errors
    /// [`PullConsumerError::Client`] when the topic has no route.
    pub async fn fetch_subscribe_message_queues(
        &self,
        topic: &str,
    ) -> Result<Vec<MessageQueue>, PullConsumerError> {
        let s = &self.inner.started;
        let topic = self.inner.settings.client.with_namespace(topic);
        s.instance.update_topic_route(&topic).await?;
        Ok(s.instance.subscribe_queues(&topic))
    }

    /// Pulls up to `max_nums` messages of `mq` from `offset` that match `expression`
    /// (`*`, `TagA || TagB`) without waiting (Java `pull`).
    ///
    /// # Errors
    /// Broker or transport errors ([`PullConsumerError::Client`]), a bad expression.
    pub async fn pull(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
    ) -> Result<PullResult, PullConsumerError> {
        self.pull_impl(mq, expression, offset, max_nums, None).await
    }

    /// As [`PullConsumer::pull`], but the broker holds the request up to
    /// `brokerSuspendMaxTimeMillis` (20 s) when nothing is there yet (Java
    /// `pullBlockIfNotFound`).
    ///
    /// # Errors
    /// As [`PullConsumer::pull`].
    pub async fn pull_block_if_not_found(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
    ) -> Result<PullResult, PullConsumerError> {
        self.pull_impl(
            mq,
            expression,
            offset,
            max_nums,
            Some(self.inner.settings.config.broker_suspend_max_time),
        )
        .await
    }

    async fn pull_impl(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max_nums: i32,
        block: Option<Duration>,
    ) -> Result<PullResult, PullConsumerError> {
        let s = &self.inner.started;
        if offset < 0 || max_nums <= 0 {
            return Err(PullConsumerError::InvalidArgument(format!(
                "offset {offset} and maxNums {max_nums} must be ≥ 0 and > 0"
            )));
        }
        let sub = SubscriptionData::build(&mq.topic, Some(expression), ExpressionType::Tag)
            .map_err(|e| PullConsumerError::InvalidConfig(e.to_string()))?;
        let timeout = if block.is_some() {
            self.inner.settings.config.consumer_timeout_when_suspend
        } else {
            self.inner.settings.config.consumer_pull_timeout
        };
        Ok(s.kernel
            .pull(PullSpec {
                mq,
                subscription: &sub,
                offset,
                max_msg_nums: max_nums,
                commit_offset: None,
                suspend: block,
                post_subscription: true,
                timeout,
            })
            .await?)
    }

    /// The consume offset of `mq` (Java `fetchConsumeOffset`): from memory, or from the store
    /// (broker / file) when `from_store`. `None` when none is stored.
    ///
    /// # Errors
    /// [`PullConsumerError::OffsetStore`].
    pub async fn fetch_consume_offset(
        &self,
        mq: &MessageQueue,
        from_store: bool,
    ) -> Result<Option<i64>, PullConsumerError> {
        let s = &self.inner.started;
        let t = if from_store {
            ReadOffsetType::ReadFromStore
        } else {
            ReadOffsetType::MemoryFirstThenStore
        };
        Ok(s.offset_store.read_offset(mq, t).await?)
    }

    /// Sets the consume offset of `mq` in memory (Java `updateConsumeOffset`); it is
    /// persisted every 5 s and at shutdown. Unlike Java, every queue updated this way is
    /// persisted, not only those of registered topics.
    pub fn update_consume_offset(&self, mq: &MessageQueue, offset: i64) {
        self.inner
            .started
            .offset_store
            .update_offset(mq, offset, false);
    }

    /// Persists the offset of `mq` now, waiting for the store (a synchronous commit).
    ///
    /// # Errors
    /// [`PullConsumerError::OffsetStore`].
    pub async fn commit_consume_offset(&self, mq: &MessageQueue) -> Result<(), PullConsumerError> {
        Ok(self.inner.started.offset_store.persist(mq).await?)
    }

    async fn master(
        &self,
        mq: &MessageQueue,
    ) -> Result<(ClientInstance, String), PullConsumerError> {
        let instance = &self.inner.started.instance;
        Ok((instance.clone(), instance.master_addr_of(mq).await?))
    }

    /// The queue's min offset (Java `minOffset`).
    ///
    /// # Errors
    /// Broker or transport errors.
    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64, PullConsumerError> {
        let (i, addr) = self.master(mq).await?;
        Ok(i.api()
            .get_min_offset(&addr, mq, i.config().mq_client_api_timeout)
            .await?)
    }

    /// The queue's max offset, exclusive (Java `maxOffset`).
    ///
    /// # Errors
    /// Broker or transport errors.
    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64, PullConsumerError> {
        let (i, addr) = self.master(mq).await?;
        Ok(i.api()
            .get_max_offset(&addr, mq, i.config().mq_client_api_timeout)
            .await?)
    }

    /// The offset of the first message stored at or after `timestamp_ms` (Java `searchOffset`).
    ///
    /// # Errors
    /// Broker or transport errors.
    pub async fn search_offset(
        &self,
        mq: &MessageQueue,
        timestamp_ms: i64,
    ) -> Result<i64, PullConsumerError> {
        let (i, addr) = self.master(mq).await?;
        Ok(i.api()
            .search_offset(&addr, mq, timestamp_ms, i.config().mq_client_api_timeout)
            .await?)
    }

    /// Sends a message back for a retry through `%RETRY%<group>` (Java `sendMessageBack`);
    /// `delay_level` 0 lets the broker choose, −1 sends it to the DLQ.
    ///
    /// # Errors
    /// When neither the send-back nor the fallback send succeeded.
    pub async fn send_message_back(
        &self,
        msg: &MessageExt,
        delay_level: i32,
    ) -> Result<(), PullConsumerError> {
        Ok(self
            .inner
            .started
            .send_back
            .send_message_back(msg, delay_level)
            .await?)
    }

    /// The queues of registered topics this client owns now (with a listener set).
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        self.inner.started.rebalance.owned_queues()
    }
}

struct QueueListenerHook {
    listener: Option<Arc<dyn MessageQueueListener>>,
    _owner: Weak<Started>,
}

impl RebalanceListener for QueueListenerHook {
    fn queue_added(&self, _mq: &MessageQueue, _next_offset: i64) {}
    fn queue_removed(&self, _mq: &MessageQueue) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
    fn queues_changed(&self, topic: &str, all: &[MessageQueue], owned: &[MessageQueue]) {
        if let Some(l) = &self.listener {
            l.message_queue_changed(topic, all, owned);
        }
    }
}

/// What the client instance sees of the consumer (registered through `Weakly`).
impl ConsumerInner for Started {
    fn group_name(&self) -> String {
        self.group.clone()
    }
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData::new(
            &self.group,
            rmq_client_core::ConsumeType::ConsumeActively,
            self.model,
            rmq_client_core::ConsumeFromWhere::LastOffset,
            self.rebalance.subscriptions().into_values().collect(),
        )
    }
    fn subscribed_topics(&self) -> Vec<String> {
        self.rebalance.subscriptions().into_keys().collect()
    }
    fn update_topic_subscribe_info(&self, topic: &str, queues: &[MessageQueue]) {
        self.rebalance_service
            .topic_queues_changed(&self.rebalance, topic, queues);
    }
    fn trigger_rebalance(&self) {
        self.rebalance_service.wakeup();
    }
    fn persist_consumer_offset(&self) -> BoxFuture<'static, ()> {
        let store = Arc::clone(&self.offset_store);
        Box::pin(async move {
            let queues: Vec<MessageQueue> = store.clone_offset_table(None).into_keys().collect();
            if let Err(e) = store.persist_all(&queues).await {
                tracing::warn!(error = %e, "persisting offsets failed");
            }
        })
    }
    fn consumer_status(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        self.offset_store.clone_offset_table(Some(topic))
    }
}
