//! The rebalance's and the client instance's callbacks into the lite pull consumer.

use super::*;

pub(super) struct Hook(pub(super) Weak<Core>);

impl RebalanceListener for Hook {
    fn queue_added(&self, mq: &MessageQueue, next_offset: i64) {
        if let Some(c) = self.0.upgrade() {
            c.add_queue(mq, next_offset);
        }
    }
    fn queue_removed(&self, mq: &MessageQueue) -> BoxFuture<'_, bool> {
        let core = self.0.upgrade();
        let mq = mq.clone();
        Box::pin(async move {
            if let Some(c) = core {
                c.remove_queue(&mq).await;
            }
            true
        })
    }
}

/// What the client instance sees of the consumer (registered through `Weakly`).
impl ConsumerInner for Core {
    fn group_name(&self) -> String {
        self.group.clone()
    }
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData::new(
            &self.group,
            rmq_client_core::ConsumeType::ConsumeActively,
            self.config.message_model,
            self.config.consume_from_where,
            lock(&self.subscriptions).values().cloned().collect(),
        )
    }
    fn subscribed_topics(&self) -> Vec<String> {
        lock(&self.subscriptions).keys().cloned().collect()
    }
    fn update_topic_subscribe_info(&self, topic: &str, queues: &[MessageQueue]) {
        self.rebalance_service
            .topic_queues_changed(&self.rebalance, topic, queues);
    }
    fn trigger_rebalance(&self) {
        self.rebalance_service.wakeup();
    }
    fn persist_consumer_offset(&self) -> BoxFuture<'static, ()> {
        let me = self.me.upgrade().filter(|c| c.config.auto_commit);
        Box::pin(async move {
            if let Some(c) = me {
                let _ = c.commit(false).await; // logged by commit
            }
        })
    }
    fn consumer_status(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        self.offset_store.clone_offset_table(Some(topic))
    }
}
