//! The rebalance's callbacks into the consumer (Java `RebalancePushImpl`).

use std::sync::Weak;

use rmq_client_core::MessageQueue;
use rmq_rebalance::RebalanceListener;
use rmq_remoting::BoxFuture;

use crate::core::Core;

/// The rebalance hooks, holding the consumer weakly.
pub(crate) struct RebalanceHook(pub(crate) Weak<Core>);

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

    fn pop_queue_added(&self, mq: &MessageQueue) -> bool {
        self.0
            .upgrade()
            .is_some_and(|core| core.pop_queue_added(mq))
    }

    fn pop_queue_removed(&self, mq: &MessageQueue) {
        if let Some(core) = self.0.upgrade() {
            core.pop_queue_removed(mq);
        }
    }

    fn lock_state(&self, mq: &MessageQueue, locked: bool) {
        if let Some(core) = self.0.upgrade()
            && let Some(e) = core.queues().get(mq)
        {
            e.pq.set_locked(locked);
        }
    }
}
