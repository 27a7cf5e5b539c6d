//! # rmq-consume-service
//!
//! What happens to pulled messages until their offset is committed:
//!
//! - [`ProcessQueue`]: the per-queue cache and the commit offset (the smallest offset not
//!   yet consumed); [`PopProcessQueue`]: what a pop-mode queue has not settled yet.
//! - [`MessageListenerConcurrently`] / [`MessageListenerOrderly`]: the user's async
//!   listeners (also [`listener_fn`] for async closures and [`sync_listener`] for blocking
//!   code), and the [`ConsumeMessageHook`] / [`FilterMessageHook`] hooks.
//! - [`message_stream`]: a [`MessageStream`] of [`AckMessage`]s (ack / nack / drop) fed by a
//!   [`StreamListener`], instead of a listener.
//! - [`ConsumeMessageConcurrentlyService`]: bounded concurrency, retries via
//!   CONSUMER_SEND_MSG_BACK with the `%RETRY%` fallback, `ackIndex`, panics and timeouts
//!   counted as `RECONSUME_LATER`; popped messages acknowledged or delayed instead.
//! - [`ConsumeMessageOrderlyService`]: one call per queue at a time, in order, under the
//!   broker lock; suspend and redeliver; DLQ after `maxReconsumeTimes`.
//! - [`ConsumeMessageTraceHook`]: message trace (SubBefore / SubAfter) of every call.
//! - [`ConsumeStats`]: per-topic pull and consume rates for the consumer's running info.
//!
//! Java counterparts: `ProcessQueue`, `ConsumeMessageConcurrentlyService`,
//! `ConsumeMessageOrderlyService`, `MessageListenerConcurrently`, `MessageListenerOrderly`.
//!
//! The rule every commit follows — an offset never advances past a message that was not
//! consumed, however the calls finish:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::AtomicUsize;
//! use rmq_consume_service::ProcessQueue;
//! use rmq_client_core::MessageExt;
//!
//! let pq = ProcessQueue::new(Arc::new(AtomicUsize::new(0)));
//! let pulled: Vec<MessageExt> = (100..104)
//!     .map(|o| MessageExt { queue_offset: o, ..Default::default() })
//!     .collect();
//! assert!(pq.put_messages(&pulled));
//! // Offsets 101..=103 finish first: 100 is still in a listener call.
//! assert_eq!(pq.remove_messages([101, 102, 103]), Some(100));
//! // Then 100: everything up to 103 is consumed, 104 is next.
//! assert_eq!(pq.remove_messages([100]), Some(104));
//! ```

use std::time::Duration;

mod call;
mod concurrent;
mod consume_stats;
mod idle_count;
mod listener;
mod message_stream;
mod metrics;
mod orderly;
mod pop_process_queue;
mod process_queue;
mod trace_hook;
mod work_queue;

pub use concurrent::{ConcurrentConfig, ConsumeMessageConcurrentlyService, LOCAL_RETRY_DELAY};
pub use consume_stats::{ConsumeStats, ConsumeStatus};
pub use listener::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeMessageContext,
    ConsumeMessageHook, ConsumeOrderlyContext, ConsumeOrderlyStatus, FilterMessageHook,
    IntoConsumeConcurrentlyStatus, ListenerFn, MessageListenerConcurrently, MessageListenerOrderly,
    NoopHook, SyncListener, listener_fn, sync_listener,
};
pub use message_stream::{AckMessage, MessageStream, StreamListener, message_stream};
pub use orderly::{
    ConsumeMessageOrderlyService, MAX_TIME_CONSUME_CONTINUOUSLY, OrderlyConfig, QueueLocker,
};
pub use pop_process_queue::PopProcessQueue;
pub use process_queue::{
    CallGuard, PULL_MAX_IDLE_TIME, ProcessQueue, REBALANCE_LOCK_MAX_LIVE_TIME,
};
/// Defined in `rmq-client-core` (the pull consumer uses it too), re-exported here.
pub use rmq_client_core::SendBack;
pub use trace_hook::ConsumeMessageTraceHook;

/// Prepares a CONSUME_MESSAGE_DIRECTLY message: the broker name it came from, its real
/// topic restored, and its queue.
pub(crate) fn prepare_direct(
    send_back: &SendBack,
    mut msg: rmq_client_core::MessageExt,
    broker_name: Option<String>,
) -> (rmq_client_core::MessageExt, rmq_client_core::MessageQueue) {
    if let Some(b) = broker_name {
        msg.broker_name = b.into();
    }
    send_back.reset_retry_and_namespace(&mut msg);
    let mq = rmq_client_core::MessageQueue::new(&*msg.topic, &*msg.broker_name, msg.queue_id);
    (msg, mq)
}

/// The `ConsumeMessageDirectlyResult` JSON body (REMOTING.md §3.18), fastjson key order:
/// `outcome` is whether the listener succeeded, or the panic it raised.
pub(crate) fn direct_result(
    order: bool,
    outcome: std::thread::Result<bool>,
    spent: Duration,
) -> bytes::Bytes {
    let (result, remark) = match outcome {
        Ok(true) => ("CR_SUCCESS", ""),
        Ok(false) => ("CR_LATER", ""),
        Err(_) => ("CR_THROW_EXCEPTION", "listener panicked"),
    };
    let v = serde_json::json!({
        "autoCommit": true,
        "consumeResult": result,
        "order": order,
        "remark": remark,
        "spentTimeMills": spent.as_millis() as i64,
    });
    bytes::Bytes::from(v.to_string())
}
