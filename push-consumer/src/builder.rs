//! [`PushConsumerBuilder`]: every Java `DefaultMQPushConsumer` knob under its Java name.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rmq_client_core::{ClientConfig, ClientInstance, ExpressionType};
use rmq_consume_service::{
    ConsumeMessageHook, FilterMessageHook, MessageListenerConcurrently, MessageListenerOrderly,
    MessageStream, StreamListener,
};
use rmq_offset_store::OffsetStore;
use rmq_rebalance::{
    AllocateMessageQueueAveragely, AllocateMessageQueueStrategy, ConsumeFromWhere, MessageModel,
};
use tokio_util::sync::CancellationToken;

use crate::consumer::PushConsumer;
use crate::error::PushConsumerError;
use crate::listener_factory::ListenerFactory;

/// One subscription: topic, expression and its type.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) topic: String,
    pub(crate) expression: String,
    pub(crate) expression_type: ExpressionType,
}

/// The push consumer's settings, Java defaults in [`Default`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushConsumerConfig {
    /// Clustering (default) or broadcasting (Java `messageModel`).
    pub message_model: MessageModel,
    /// Where a queue without a stored offset starts. Default `LastOffset` (Java `consumeFromWhere`).
    pub consume_from_where: ConsumeFromWhere,
    /// For `ConsumeFromWhere::Timestamp`, ms since the epoch. Default now − 30 min (Java
    /// `consumeTimestamp`).
    pub consume_timestamp_ms: i64,
    /// Messages asked per pull. Default 32 (Java `pullBatchSize`).
    pub pull_batch_size: i32,
    /// Pause after each successful pull. Default 0 (Java `pullInterval`).
    pub pull_interval: Duration,
    /// Cached messages per queue before pulling pauses. Default 1000 (Java `pullThresholdForQueue`).
    pub pull_threshold_for_queue: usize,
    /// Cached body bytes per queue before pulling pauses. Default 100 MiB (Java
    /// `pullThresholdSizeForQueue`, in MiB there).
    pub pull_threshold_size_for_queue: usize,
    /// Cached messages per topic; `None` = unlimited (Java `pullThresholdForTopic` −1).
    /// When set, each queue's share is the topic limit divided by its queue count.
    pub pull_threshold_for_topic: Option<usize>,
    /// Cached body bytes per topic; `None` = unlimited (Java `pullThresholdSizeForTopic` −1).
    pub pull_threshold_size_for_topic: Option<usize>,
    /// Largest offset span cached in one queue (concurrent only). Default 2000 (Java
    /// `consumeConcurrentlyMaxSpan`).
    pub consume_concurrently_max_span: i64,
    /// Listener calls in flight at least. Kept for the Java name; rmq needs no pool floor.
    /// Default 20 (Java `consumeThreadMin`).
    pub consume_thread_min: usize,
    /// Listener calls in flight at most. Default 20 (Java `consumeThreadMax`).
    pub consume_thread_max: usize,
    /// Messages per listener call. Default 1 (Java `consumeMessageBatchMaxSize`).
    pub consume_message_batch_max_size: usize,
    /// Retries before the DLQ; `None` = Java's −1 (16 concurrent, unlimited orderly)
    /// (Java `maxReconsumeTimes`).
    pub max_reconsume_times: Option<i32>,
    /// A listener call running longer counts as failed. Default 15 min (Java `consumeTimeout`).
    pub consume_timeout: Duration,
    /// Orderly pause after `SuspendCurrentQueueAMoment`. Default 1 s (Java
    /// `suspendCurrentQueueTimeMillis`).
    pub suspend_current_queue_time: Duration,
    /// Body bytes cached across all queues before every queue's pulling pauses. Default
    /// 64 MiB. No Java client has this: Java's per-queue limits multiply with the queue
    /// count (1000 queues × 100 MiB), rmq's memory stays bounded whatever the assignment.
    pub memory_budget: usize,
    /// Longest wait, on rebalance or shutdown, for a released queue's cached messages to be
    /// consumed before it is given up. Default 10 s. Java does not wait (it redelivers).
    pub drain_timeout: Duration,
    /// Longest wait, at shutdown or an offset reset, for listener calls still running, and
    /// for the consumer's tasks and its unregistration. Default 5 s (Java
    /// `awaitTerminationMillisWhenShutdown`, whose default 0 does not wait).
    pub await_termination_when_shutdown: Duration,
    /// Clean hand-off of queues between members (concurrent clustering): queues are locked
    /// at the broker while owned; a released queue is drained and committed before its
    /// lock is freed, and the next owner waits for the lock (at most `handoff_timeout`)
    /// before reading the offset, so a clean hand-off delivers nothing twice. Java has no
    /// such step. Default true.
    pub clean_handoff: bool,
    /// Longest wait for a previous owner's release (a crashed owner never releases).
    /// Default 15 s.
    pub handoff_timeout: Duration,
    /// How often, between rebalances, the group's members are checked (a rebalance at once
    /// when they changed); `None`: only on the broker's notification or every 20 s, as
    /// Java. Default 2 s. See `rmq_rebalance::RebalanceConfig::membership_check_interval`.
    pub membership_check_interval: Option<Duration>,
    /// Start new consumer groups on young queues at the real end (REMOTING.md §3.7; brokers
    /// ≥ 5.0). Default false, like Java.
    pub strict_last_offset: bool,
    /// Local offset store directory for broadcasting. Default `~/.rocketmq_offsets`.
    pub local_offset_store_dir: Option<PathBuf>,
    /// Server-side assignment (Java 5.x `setClientRebalance(false)`): a broker of each
    /// topic decides which queues this consumer gets (QUERY_ASSIGNMENT, brokers ≥ 5.0)
    /// with the allocation strategy's name, which must be `AVG` (the default strategy) or
    /// `AVG_BY_CIRCLE`, the only ones brokers run. Concurrent clustering consumers only:
    /// orderly and broadcasting consumers allocate on the client, as in Java. See
    /// `rmq_rebalance::RebalanceConfig::server_side_assignment`. Default false.
    pub server_side_assignment: bool,
    /// Messages per call of a concurrent message stream (`message_stream()`), in place of
    /// `consume_message_batch_max_size` (1..=1024). Each message is still answered on its
    /// own; a batch's acked messages are committed when the whole batch is answered, so 1
    /// commits each message as soon as it is acked. Default 32: the stream then costs
    /// the listener's CPU per message (0.90–1.02x measured; with 1, 1.33x).
    pub stream_batch_size: usize,
    /// Pop consumption (RocketMQ 5.x; Java `setClientRebalance(false)` with the group's
    /// consume mode set to POP by `mqadmin setConsumeMode`). At start rmq sets POP (with
    /// `popShareQueueNum` 0: every member pops every queue) for each subscribed topic on
    /// each of its masters (SET_MESSAGE_REQUEST_MODE, persisted by the broker for the
    /// topic and group; Java consumers of the group that also use server-side assignment
    /// pop too), then lets the brokers assign queues (server-side assignment, so the
    /// strategy must be AVG or AVG_BY_CIRCLE). Each assigned POP queue is long-polled with
    /// POP_MESSAGE; the broker keeps the offsets and hides popped messages for
    /// `pop_invisible_time`; consumed messages are acknowledged (ACK_MESSAGE, or one
    /// BATCH_ACK_MESSAGE per call), failed ones made invisible for Java's pop delay (10 s,
    /// 30 s, 1 min…, CHANGE_MESSAGE_INVISIBLETIME; sent to `%RETRY%<group>` when the broker
    /// refuses that). A message not acknowledged in time (a crashed consumer) comes back
    /// after its invisible time. Concurrent clustering consumers only (listener or
    /// `message_stream()`). Default false.
    ///
    /// The rocketmq-rust 1.0 broker pops and acknowledges, but cannot store check points:
    /// it refuses CHANGE_MESSAGE_INVISIBLETIME and never brings an unacknowledged message
    /// back (see README).
    pub pop_mode: bool,
    /// How long popped messages stay invisible to other consumers, 5..=300 s. Default 60 s
    /// (Java `popInvisibleTime`, which silently replaces values outside that range).
    pub pop_invisible_time: Duration,
    /// Messages per pop, 1..=32. Default 32 (Java `popBatchNums`).
    pub pop_batch_nums: i32,
    /// Popped messages not yet settled per queue before popping pauses. Default 96 (Java
    /// `popThresholdForQueue`).
    pub pop_threshold_for_queue: usize,
}

impl Default for PushConsumerConfig {
    fn default() -> Self {
        PushConsumerConfig {
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::LastOffset,
            consume_timestamp_ms: rmq_client_core::now_millis() - 30 * 60 * 1000,
            pull_batch_size: 32,
            pull_interval: Duration::ZERO,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue: 100 * 1024 * 1024,
            pull_threshold_for_topic: None,
            pull_threshold_size_for_topic: None,
            consume_concurrently_max_span: 2000,
            consume_thread_min: 20,
            consume_thread_max: 20,
            consume_message_batch_max_size: 1,
            max_reconsume_times: None,
            consume_timeout: Duration::from_secs(15 * 60),
            suspend_current_queue_time: Duration::from_millis(1000),
            memory_budget: 64 * 1024 * 1024,
            drain_timeout: Duration::from_secs(10),
            await_termination_when_shutdown: Duration::from_secs(5),
            clean_handoff: true,
            handoff_timeout: Duration::from_secs(15),
            membership_check_interval: Some(rmq_rebalance::MEMBERSHIP_CHECK_INTERVAL),
            strict_last_offset: false,
            local_offset_store_dir: None,
            server_side_assignment: false,
            stream_batch_size: 32,
            pop_mode: false,
            pop_invisible_time: Duration::from_secs(60),
            pop_batch_nums: 32,
            pop_threshold_for_queue: 96,
        }
    }
}

/// Configures and starts a [`PushConsumer`] (Java `DefaultMQPushConsumer` setters, then
/// `start()`): [`PushConsumerBuilder::start`] returns a running consumer or an error with
/// nothing left running.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rmq_push_consumer::{ConsumeConcurrentlyStatus, PushConsumer, listener_fn};
/// let consumer = PushConsumer::builder("my_group")
///     .namesrv_addr("127.0.0.1:9876")
///     .subscribe("TopicTest", "TagA || TagB")
///     .listener(listener_fn(|msgs, _ctx| async move {
///         println!("got {} messages", msgs.len());
///         ConsumeConcurrentlyStatus::ConsumeSuccess
///     }))
///     .start()
///     .await?;
/// # consumer.shutdown().await; Ok(()) }
/// ```
pub struct PushConsumerBuilder {
    pub(crate) group: String,
    pub(crate) client: ClientConfig,
    pub(crate) config: PushConsumerConfig,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) strategy: Arc<dyn AllocateMessageQueueStrategy>,
    pub(crate) offset_store: Option<Arc<dyn OffsetStore>>,
    pub(crate) instance: Option<ClientInstance>,
    pub(crate) listener: Option<ListenerFactory>,
    pub(crate) consume_hooks: Vec<Arc<dyn ConsumeMessageHook>>,
    pub(crate) filter_hooks: Vec<Arc<dyn FilterMessageHook>>,
    pub(crate) trace_topic: Option<String>,
    /// With `message_stream()`: the stream, and the token that ends it at shutdown (the
    /// consumer's own).
    pub(crate) stream: Option<(MessageStream, CancellationToken)>,
}

/// Messages a [`MessageStream`] holds before the consume calls wait for the application.
const STREAM_CAPACITY: usize = 64;

impl std::fmt::Debug for PushConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumerBuilder")
            .field("group", &self.group)
            .field("client", &self.client)
            .field("config", &self.config)
            .field("subscriptions", &self.subscriptions)
            .field("strategy", &self.strategy.name())
            .finish_non_exhaustive()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident : $ty:ty),* $(,)?) => {
        $($(#[$doc])* pub fn $name(mut self, v: $ty) -> Self {
            self.config.$name = v;
            self
        })*
    };
}

impl PushConsumer {
    /// A builder for `consumer_group`.
    pub fn builder(consumer_group: &str) -> PushConsumerBuilder {
        PushConsumerBuilder::new(consumer_group)
    }
}

impl PushConsumerBuilder {
    fn new(group: &str) -> Self {
        PushConsumerBuilder {
            group: group.to_owned(),
            client: ClientConfig::default(),
            config: PushConsumerConfig::default(),
            subscriptions: Vec::new(),
            strategy: Arc::new(AllocateMessageQueueAveragely),
            offset_store: None,
            instance: None,
            listener: None,
            consume_hooks: Vec::new(),
            filter_hooks: Vec::new(),
            trace_topic: None,
            stream: None,
        }
    }

    /// Name servers, `host:port;host:port` (Java `namesrvAddr`; default env `NAMESRV_ADDR`).
    pub fn namesrv_addr(mut self, addrs: &str) -> Self {
        self.client = self.client.namesrv_addr(addrs);
        self
    }

    /// Runs on this client instance (shared with other consumers and producers, one
    /// connection per broker) instead of one looked up by client id. Its configuration is
    /// the one used; [`PushConsumerBuilder::client_config`] then only names the group's
    /// namespace.
    pub fn instance(mut self, instance: &ClientInstance) -> Self {
        self.instance = Some(instance.clone());
        self
    }

    /// The whole client configuration (client IP, instance name, namespace, intervals,
    /// credentials, transport).
    pub fn client_config(mut self, client: ClientConfig) -> Self {
        self.client = client;
        self
    }

    /// Subscribes a topic with a tag expression (`*`, `TagA || TagB`) (Java `subscribe`).
    pub fn subscribe(mut self, topic: &str, expression: &str) -> Self {
        self.subscriptions.push(Subscription {
            topic: topic.to_owned(),
            expression: expression.to_owned(),
            expression_type: ExpressionType::Tag,
        });
        self
    }

    /// Subscribes a topic with an SQL92 expression (broker `enablePropertyFilter=true`).
    pub fn subscribe_sql92(mut self, topic: &str, expression: &str) -> Self {
        self.subscriptions.push(Subscription {
            topic: topic.to_owned(),
            expression: expression.to_owned(),
            expression_type: ExpressionType::Sql92,
        });
        self
    }

    /// The concurrent listener (Java `registerMessageListener(MessageListenerConcurrently)`).
    pub fn listener<L: MessageListenerConcurrently>(mut self, listener: L) -> Self {
        self.listener = Some(ListenerFactory::concurrent(listener));
        self
    }

    /// The orderly listener (Java `registerMessageListener(MessageListenerOrderly)`).
    pub fn orderly_listener<L: MessageListenerOrderly>(mut self, listener: L) -> Self {
        self.listener = Some(ListenerFactory::orderly(listener));
        self
    }

    /// Instead of a listener: messages as a `futures::Stream`, taken once with
    /// [`PushConsumer::messages`] after start. Each item is an [`AckMessage`](crate::AckMessage) to `ack()`,
    /// `nack(delay_level)` (redelivery through the retry topic, as `RECONSUME_LATER`), or
    /// drop (counts as `nack(0)`). Concurrent mode: up to `consume_thread_max` calls of up
    /// to [`PushConsumerConfig::stream_batch_size`] messages (32 by default; each message is
    /// still answered on its own, and only the nacked ones are retried) are out at once, in
    /// any order; the memory budget covers them; offsets move only past acked messages;
    /// shutdown and rebalance hand-off wait for them as for listener calls. Java has no
    /// counterpart (every RocketMQ client takes a callback); this is async-nats's
    /// `messages()` / rdkafka's `stream()`.
    pub fn message_stream(self) -> Self {
        self.with_stream(ListenerFactory::concurrent)
    }

    /// [`PushConsumerBuilder::message_stream`] in orderly mode: one stream for all queues
    /// that hands out, per queue, one batch at a time in offset order — the next message of
    /// a queue comes only after the previous one was acked (queues interleave). A nack (or
    /// a dropped handle) suspends that queue for `suspend_current_queue_time` and hands the
    /// same message out again, as `SUSPEND_CURRENT_QUEUE_A_MOMENT` does. (A stream per
    /// queue, rdkafka's `split_partition_queue`, was not chosen: queues come and go with
    /// rebalance, and one stream keeps the application's loop the same in both modes.)
    pub fn orderly_message_stream(self) -> Self {
        self.with_stream(ListenerFactory::orderly)
    }

    fn with_stream(mut self, factory: fn(StreamListener) -> ListenerFactory) -> Self {
        let stop = CancellationToken::new();
        let (listener, stream) = rmq_consume_service::message_stream(STREAM_CAPACITY, stop.clone());
        self.listener = Some(factory(listener));
        self.stream = Some((stream, stop));
        self
    }

    /// The allocation strategy. Default AVG (Java `allocateMessageQueueStrategy`).
    pub fn allocate_strategy(mut self, strategy: Arc<dyn AllocateMessageQueueStrategy>) -> Self {
        self.strategy = strategy;
        self
    }

    /// A custom offset store. Default: the broker store in clustering, the local file in
    /// broadcasting (Java `offsetStore`).
    pub fn offset_store(mut self, store: Arc<dyn OffsetStore>) -> Self {
        self.offset_store = Some(store);
        self
    }

    /// Adds a consume hook (Java `registerConsumeMessageHook`).
    pub fn consume_message_hook(mut self, hook: Arc<dyn ConsumeMessageHook>) -> Self {
        self.consume_hooks.push(hook);
        self
    }

    /// Records message trace (Java `enableMsgTrace` / 5.x `setEnableTrace(true)` and
    /// `setTraceTopic`): a SubBefore and a SubAfter record for every listener call — msgId,
    /// keys, deliveries, cost in ms per message, success — sent in the background, in
    /// batches of 10 or after 5 s, to `trace_topic` (default `RMQ_SYS_TRACE_TOPIC`, which a
    /// broker creates only with `traceTopicEnable=true`; a custom topic must exist). The
    /// trace message's keys hold the message ids, so the dashboard and
    /// `mqadmin QueryMsgTraceById` find them. Tracing never makes consumption wait: when
    /// 2048 records are queued, new ones are dropped and counted
    /// (`rmq_trace_dropped_total`). Shutdown sends what is queued.
    pub fn enable_trace(mut self, trace_topic: Option<&str>) -> Self {
        self.trace_topic = Some(
            trace_topic
                .unwrap_or(rmq_client_core::trace::RMQ_SYS_TRACE_TOPIC)
                .to_owned(),
        );
        self
    }

    /// Adds a filter hook (Java `registerFilterMessageHook`).
    pub fn filter_message_hook(mut self, hook: Arc<dyn FilterMessageHook>) -> Self {
        self.filter_hooks.push(hook);
        self
    }

    setters! {
        /// Sets [`PushConsumerConfig::message_model`].
        message_model: MessageModel,
        /// Sets [`PushConsumerConfig::consume_from_where`].
        consume_from_where: ConsumeFromWhere,
        /// Sets [`PushConsumerConfig::consume_timestamp_ms`] (ms since the epoch).
        consume_timestamp_ms: i64,
        /// Sets [`PushConsumerConfig::pull_batch_size`] (1..=1024).
        pull_batch_size: i32,
        /// Sets [`PushConsumerConfig::pull_interval`].
        pull_interval: Duration,
        /// Sets [`PushConsumerConfig::pull_threshold_for_queue`] (messages).
        pull_threshold_for_queue: usize,
        /// Sets [`PushConsumerConfig::pull_threshold_size_for_queue`] (bytes).
        pull_threshold_size_for_queue: usize,
        /// Sets [`PushConsumerConfig::pull_threshold_for_topic`] (messages).
        pull_threshold_for_topic: Option<usize>,
        /// Sets [`PushConsumerConfig::pull_threshold_size_for_topic`] (bytes).
        pull_threshold_size_for_topic: Option<usize>,
        /// Sets [`PushConsumerConfig::consume_concurrently_max_span`] (offsets).
        consume_concurrently_max_span: i64,
        /// Sets [`PushConsumerConfig::consume_thread_min`].
        consume_thread_min: usize,
        /// Sets [`PushConsumerConfig::consume_thread_max`].
        consume_thread_max: usize,
        /// Sets [`PushConsumerConfig::consume_message_batch_max_size`] (1..=1024).
        consume_message_batch_max_size: usize,
        /// Sets [`PushConsumerConfig::max_reconsume_times`].
        max_reconsume_times: Option<i32>,
        /// Sets [`PushConsumerConfig::consume_timeout`].
        consume_timeout: Duration,
        /// Sets [`PushConsumerConfig::suspend_current_queue_time`].
        suspend_current_queue_time: Duration,
        /// Sets [`PushConsumerConfig::memory_budget`] (bytes).
        memory_budget: usize,
        /// Sets [`PushConsumerConfig::drain_timeout`].
        drain_timeout: Duration,
        /// Sets [`PushConsumerConfig::await_termination_when_shutdown`].
        await_termination_when_shutdown: Duration,
        /// Sets [`PushConsumerConfig::clean_handoff`].
        clean_handoff: bool,
        /// Sets [`PushConsumerConfig::handoff_timeout`].
        handoff_timeout: Duration,
        /// Sets [`PushConsumerConfig::membership_check_interval`].
        membership_check_interval: Option<Duration>,
        /// Sets [`PushConsumerConfig::strict_last_offset`].
        strict_last_offset: bool,
        /// Sets [`PushConsumerConfig::local_offset_store_dir`].
        local_offset_store_dir: Option<PathBuf>,
        /// Sets [`PushConsumerConfig::server_side_assignment`].
        server_side_assignment: bool,
        /// Sets [`PushConsumerConfig::stream_batch_size`] (1..=1024).
        stream_batch_size: usize,
        /// Sets [`PushConsumerConfig::pop_mode`].
        pop_mode: bool,
        /// Sets [`PushConsumerConfig::pop_invisible_time`] (5..=300 s).
        pop_invisible_time: Duration,
        /// Sets [`PushConsumerConfig::pop_batch_nums`] (1..=32).
        pop_batch_nums: i32,
        /// Sets [`PushConsumerConfig::pop_threshold_for_queue`] (messages).
        pop_threshold_for_queue: usize,
    }

    /// Validates the settings and starts consuming: registers with the client instance,
    /// refreshes routes, sends a heartbeat and rebalances (Java `start`). Returns a running
    /// consumer, or an error with nothing left running.
    ///
    /// # Errors
    /// [`PushConsumerError::InvalidConfig`] naming the setting (a group or topic name Java refuses, no name server,
    /// no subscription, no listener, a bad expression, or a value out of Java's range);
    /// [`PushConsumerError::Client`] when the group is already used in the client instance
    /// or a shared instance's configuration differs; [`PushConsumerError::OffsetStore`]
    /// when the local offsets cannot be loaded.
    pub async fn start(self) -> Result<PushConsumer, PushConsumerError> {
        self.validate()?;
        crate::start::start(self).await
    }

    fn validate(&self) -> Result<(), PushConsumerError> {
        let bad = |m: String| Err(PushConsumerError::InvalidConfig(m));
        rmq_client_core::check_group(&self.group)
            .map_err(|e| PushConsumerError::InvalidConfig(e.to_string()))?;
        if self.client.namesrv_addrs.is_empty() && self.instance.is_none() {
            return bad("no name server address (namesrv_addr, or NAMESRV_ADDR)".into());
        }
        if self.subscriptions.is_empty() {
            return bad("no subscription (subscribe)".into());
        }
        if self.listener.is_none() {
            return bad("no message listener (listener or orderly_listener)".into());
        }
        if !(1..=1024).contains(&self.config.pull_batch_size) {
            return bad(format!(
                "pullBatchSize {} is outside 1..=1024",
                self.config.pull_batch_size
            ));
        }
        if !(1..=1024).contains(&self.config.stream_batch_size) {
            return bad(format!(
                "streamBatchSize {} is outside 1..=1024",
                self.config.stream_batch_size
            ));
        }
        if !(1..=1024).contains(&self.config.consume_message_batch_max_size) {
            return bad(format!(
                "consumeMessageBatchMaxSize {} is outside 1..=1024",
                self.config.consume_message_batch_max_size
            ));
        }
        if self.config.consume_thread_max == 0
            || self.config.consume_thread_min > self.config.consume_thread_max
        {
            return bad(format!(
                "consumeThreadMin {} / consumeThreadMax {} are not 1 ≤ min ≤ max",
                self.config.consume_thread_min, self.config.consume_thread_max
            ));
        }
        if self.config.pop_mode {
            if self.config.message_model != MessageModel::Clustering
                || matches!(self.listener, Some(ListenerFactory::Orderly(_)))
            {
                return bad("pop mode needs a concurrent listener (or message_stream()) and clustering (Java also keeps orderly and broadcasting consumers on pull)".into());
            }
            let t = self.config.pop_invisible_time;
            if !(Duration::from_secs(5)..=Duration::from_secs(300)).contains(&t) {
                return bad(format!(
                    "popInvisibleTime {} ms is outside 5000..=300000",
                    t.as_millis()
                ));
            }
            if !(1..=32).contains(&self.config.pop_batch_nums) {
                return bad(format!(
                    "popBatchNums {} is outside 1..=32",
                    self.config.pop_batch_nums
                ));
            }
            if self.config.pop_threshold_for_queue == 0 {
                return bad("popThresholdForQueue must be above 0".into());
            }
        }
        if self.config.pull_threshold_for_queue == 0 || self.config.memory_budget == 0 {
            return bad("pullThresholdForQueue and memory_budget must be above 0".into());
        }
        for s in &self.subscriptions {
            rmq_client_core::check_topic(&s.topic)
                .map_err(|e| PushConsumerError::InvalidConfig(e.to_string()))?;
            rmq_client_core::SubscriptionData::build(
                &s.topic,
                Some(&s.expression),
                s.expression_type,
            )
            .map_err(|e| {
                PushConsumerError::InvalidConfig(format!("subscription of {}: {e}", s.topic))
            })?;
        }
        Ok(())
    }
}
