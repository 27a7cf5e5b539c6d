//! [`LitePullConsumerBuilder`]: configure, subscribe, start.

use super::*;

/// Configures and starts a [`LitePullConsumer`] (Java `DefaultLitePullConsumer` setters,
/// `subscribe`, then `start()`).
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rmq_pull_consumer::LitePullConsumer;
/// let consumer = LitePullConsumer::builder("my_group")
///     .namesrv_addr("127.0.0.1:9876")
///     .subscribe("TopicTest", "*")
///     .start()
///     .await?;
/// let msgs = consumer.poll().await;
/// # consumer.shutdown().await; Ok(()) }
/// ```
pub struct LitePullConsumerBuilder {
    group: String,
    client: ClientConfig,
    config: LitePullConsumerConfig,
    strategy: Arc<dyn AllocateMessageQueueStrategy>,
    offset_store: Option<Arc<dyn OffsetStore>>,
    instance: Option<ClientInstance>,
    subscriptions: Vec<(String, String)>,
}

impl std::fmt::Debug for LitePullConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LitePullConsumerBuilder")
            .field("group", &self.group)
            .field("config", &self.config)
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl LitePullConsumer {
    /// A builder for `consumer_group`.
    pub fn builder(consumer_group: &str) -> LitePullConsumerBuilder {
        LitePullConsumerBuilder {
            group: consumer_group.to_owned(),
            client: ClientConfig::default(),
            config: LitePullConsumerConfig::default(),
            strategy: Arc::new(AllocateMessageQueueAveragely),
            offset_store: None,
            instance: None,
            subscriptions: Vec::new(),
        }
    }
}

impl LitePullConsumerBuilder {
    /// Name servers, `host:port;host:port` (Java `namesrvAddr`; default env `NAMESRV_ADDR`).
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

    /// The consumer's settings.
    pub fn config(mut self, config: LitePullConsumerConfig) -> Self {
        self.config = config;
        self
    }

    /// The allocation strategy of subscribe mode. Default AVG.
    pub fn allocate_strategy(mut self, strategy: Arc<dyn AllocateMessageQueueStrategy>) -> Self {
        self.strategy = strategy;
        self
    }

    /// A custom offset store. Default: the broker store in clustering, the local file in
    /// broadcasting.
    pub fn offset_store(mut self, store: Arc<dyn OffsetStore>) -> Self {
        self.offset_store = Some(store);
        self
    }

    /// Subscribes a topic with a tag expression (subscribe mode: queues come from
    /// rebalance). Without any, the consumer is in assign mode: call
    /// [`LitePullConsumer::assign`] after start.
    pub fn subscribe(mut self, topic: &str, expression: &str) -> Self {
        self.subscriptions
            .push((topic.to_owned(), expression.to_owned()));
        self
    }

    /// Records message trace for every batch `poll` hands out (Java
    /// `DefaultLitePullConsumer(…, enableMsgTrace, customizedTraceTopic)`): as in Java, a
    /// SubBefore and a SubAfter per polled batch, written when `poll` returns it, with
    /// success true and a cost of 0 ms (what the application does with the batch is not
    /// seen). Sent as the push consumer's trace is (see
    /// `PushConsumerBuilder::enable_trace`): batched, through a bounded queue, dropped and
    /// counted when it is full, to `trace_topic` (default `RMQ_SYS_TRACE_TOPIC`).
    pub fn enable_trace(mut self, trace_topic: Option<&str>) -> Self {
        self.config.trace_topic = Some(
            trace_topic
                .unwrap_or(rmq_client_core::trace::RMQ_SYS_TRACE_TOPIC)
                .to_owned(),
        );
        self
    }

    /// Validates the settings and starts (Java `start`): the client, the auto-commit job
    /// and, in subscribe mode, rebalancing. Returns a running consumer or an error with
    /// nothing left running.
    ///
    /// # Errors
    /// [`PullConsumerError::InvalidConfig`] without a group or name server, with a pull
    /// timeout not above the long-poll hold, or a bad expression;
    /// [`PullConsumerError::Client`], [`PullConsumerError::OffsetStore`].
    pub async fn start(self) -> Result<LitePullConsumer, PullConsumerError> {
        let mut pending = Pending::new(
            &self.group,
            self.client,
            self.config,
            self.strategy,
            self.instance,
        )?;
        pending.offset_store = self.offset_store;
        for (topic, expression) in &self.subscriptions {
            pending.subscribe(topic, expression)?;
        }
        pending.start().await
    }
}
