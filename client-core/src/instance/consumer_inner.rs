//! [`ConsumerInner`]: what a consumer registered with a client instance provides to it.

use super::*;

/// What a consumer registered with a [`ClientInstance`] provides to it and receives from it
/// (Java `MQConsumerInner` plus the consumer side of `ClientRemotingProcessor`).
///
/// Called from the instance's scheduled jobs and from its broker-request dispatch task,
/// possibly concurrently; every method must return quickly (spawn longer work).
pub trait ConsumerInner: Send + Sync + 'static {
    /// The (namespaced) consumer group.
    fn group_name(&self) -> String;

    /// This consumer's entry in heartbeats.
    fn consumer_data(&self) -> ConsumerData;

    /// Topics whose routes the instance keeps fresh for this consumer.
    fn subscribed_topics(&self) -> Vec<String>;

    /// A topic's readable queues changed (or were seen for the first time).
    fn update_topic_subscribe_info(&self, _topic: &str, _queues: &[MessageQueue]) {}

    /// NOTIFY_CONSUMER_IDS_CHANGED (40) arrived, or the instance asks for a rebalance.
    fn trigger_rebalance(&self) {}

    /// Persist offsets now (every `persistConsumerOffsetInterval` and at shutdown).
    fn persist_consumer_offset(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// RESET_CONSUMER_CLIENT_OFFSET (220): move these queues to these offsets.
    fn reset_offset(
        &self,
        topic: &str,
        _offsets: HashMap<MessageQueue, i64>,
    ) -> BoxFuture<'static, ()> {
        tracing::warn!(group = %self.group_name(), topic, "reset offset requested, but this consumer does not support it");
        Box::pin(async {})
    }

    /// GET_CONSUMER_STATUS_FROM_CLIENT (221): the consume offset of each queue of `topic`.
    fn consumer_status(&self, _topic: &str) -> HashMap<MessageQueue, i64> {
        HashMap::new()
    }

    /// GET_CONSUMER_RUNNING_INFO (307): the `ConsumerRunningInfo` JSON body, or `None`
    /// when not supported (answered as SYSTEM_ERROR).
    fn running_info(&self) -> Option<Bytes> {
        None
    }

    /// CONSUME_MESSAGE_DIRECTLY (309): run the listener on `msg` and return the
    /// `ConsumeMessageDirectlyResult` JSON body, or `None` when not supported.
    fn consume_message_directly(
        &self,
        _msg: MessageExt,
        _broker_name: Option<String>,
    ) -> BoxFuture<'static, Option<Bytes>> {
        Box::pin(async { None })
    }
}

/// Registers a consumer with its [`ClientInstance`] without keeping it alive: every call
/// upgrades the weak reference and is a no-op (or answers "nothing") once the consumer is
/// gone, so the instance never holds a dropped consumer's tasks. The consumers implement
/// [`ConsumerInner`] on their core and register `Weakly(Arc::downgrade(&core))`.
#[derive(Debug)]
pub struct Weakly<C>(pub Weak<C>);

impl<C: ConsumerInner> ConsumerInner for Weakly<C> {
    fn group_name(&self) -> String {
        self.0.upgrade().map(|c| c.group_name()).unwrap_or_default()
    }

    fn consumer_data(&self) -> ConsumerData {
        match self.0.upgrade() {
            Some(c) => c.consumer_data(),
            // Left out of heartbeats (see `heartbeat_data`).
            None => ConsumerData::new(
                "",
                crate::ConsumeType::ConsumePassively,
                crate::MessageModel::Clustering,
                crate::ConsumeFromWhere::LastOffset,
                Vec::new(),
            ),
        }
    }

    fn subscribed_topics(&self) -> Vec<String> {
        self.0
            .upgrade()
            .map(|c| c.subscribed_topics())
            .unwrap_or_default()
    }

    fn update_topic_subscribe_info(&self, topic: &str, queues: &[MessageQueue]) {
        if let Some(c) = self.0.upgrade() {
            c.update_topic_subscribe_info(topic, queues);
        }
    }

    fn trigger_rebalance(&self) {
        if let Some(c) = self.0.upgrade() {
            c.trigger_rebalance();
        }
    }

    fn persist_consumer_offset(&self) -> BoxFuture<'static, ()> {
        match self.0.upgrade() {
            Some(c) => c.persist_consumer_offset(),
            None => Box::pin(async {}),
        }
    }

    fn reset_offset(
        &self,
        topic: &str,
        offsets: HashMap<MessageQueue, i64>,
    ) -> BoxFuture<'static, ()> {
        match self.0.upgrade() {
            Some(c) => c.reset_offset(topic, offsets),
            None => Box::pin(async {}),
        }
    }

    fn consumer_status(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        self.0
            .upgrade()
            .map(|c| c.consumer_status(topic))
            .unwrap_or_default()
    }

    fn running_info(&self) -> Option<Bytes> {
        self.0.upgrade().and_then(|c| c.running_info())
    }

    fn consume_message_directly(
        &self,
        msg: MessageExt,
        broker_name: Option<String>,
    ) -> BoxFuture<'static, Option<Bytes>> {
        match self.0.upgrade() {
            Some(c) => c.consume_message_directly(msg, broker_name),
            None => Box::pin(async { None }),
        }
    }
}
