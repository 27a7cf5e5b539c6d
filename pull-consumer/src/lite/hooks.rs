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

impl ConsumerInner for Hook {
    fn group_name(&self) -> String {
        self.0
            .upgrade()
            .map(|c| c.group.clone())
            .unwrap_or_default()
    }
    fn consumer_data(&self) -> ConsumerData {
        match self.0.upgrade() {
            Some(c) => ConsumerData::new(
                &c.group,
                rmq_client_core::ConsumeType::ConsumeActively,
                c.config.message_model,
                c.config.consume_from_where,
                lock(&c.subscriptions).values().cloned().collect(),
            ),
            None => ConsumerData::new(
                "",
                rmq_client_core::ConsumeType::ConsumeActively,
                rmq_client_core::MessageModel::Clustering,
                rmq_client_core::ConsumeFromWhere::LastOffset,
                vec![],
            ),
        }
    }
    fn subscribed_topics(&self) -> Vec<String> {
        self.0
            .upgrade()
            .map(|c| lock(&c.subscriptions).keys().cloned().collect())
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
            if let Some(c) = core
                && c.config.auto_commit
            {
                c.commit(false).await;
            }
        })
    }
    fn consumer_status(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        self.0
            .upgrade()
            .map(|c| c.offset_store.clone_offset_table(Some(topic)))
            .unwrap_or_default()
    }
}
