//! The user's listener until start wraps the consume service around it.

use std::sync::Arc;

use rmq_client_core::MessageQueue;
use rmq_consume_service::QueueLocker;
use rmq_consume_service::{
    ConcurrentConfig, ConsumeMessageConcurrentlyService, ConsumeMessageHook,
    ConsumeMessageOrderlyService, MessageListenerConcurrently, MessageListenerOrderly,
    OrderlyConfig, SendBack,
};
use rmq_offset_store::OffsetStore;
use rmq_rebalance::RebalanceImpl;
use rmq_remoting::BoxFuture;

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
            Arc<dyn QueueLocker>,
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

#[derive(Clone)]
pub(crate) enum Service {
    Concurrent(ConsumeMessageConcurrentlyService),
    Orderly(ConsumeMessageOrderlyService),
}

/// The orderly service's broker locks, taken through the consumer's rebalance.
pub(crate) struct RebalanceLocker(pub(crate) Arc<RebalanceImpl>);

impl QueueLocker for RebalanceLocker {
    fn lock<'a>(&'a self, mq: &'a MessageQueue) -> BoxFuture<'a, bool> {
        Box::pin(self.0.lock(mq))
    }
}
