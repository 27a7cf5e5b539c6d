//! # rmq-consume-service
//!
//! What happens to pulled messages until their offset is committed:
//!
//! - [`ProcessQueue`]: the per-queue cache and the commit offset (the smallest offset not
//!   yet consumed).
//! - [`MessageListenerConcurrently`] / [`MessageListenerOrderly`]: the user's async
//!   listeners (also [`listener_fn`] for async closures and [`sync_listener`] for blocking
//!   code), and the [`ConsumeMessageHook`] / [`FilterMessageHook`] hooks.
//! - [`ConsumeMessageConcurrentlyService`]: bounded concurrency, retries via
//!   CONSUMER_SEND_MSG_BACK with the `%RETRY%` fallback, `ackIndex`, panics and timeouts
//!   counted as `RECONSUME_LATER`.
//! - [`ConsumeMessageOrderlyService`]: one call per queue at a time, in order, under the
//!   broker lock; suspend and redeliver; DLQ after `maxReconsumeTimes`.
//!
//! Java counterparts: `ProcessQueue`, `ConsumeMessageConcurrentlyService`,
//! `ConsumeMessageOrderlyService`, `MessageListenerConcurrently`, `MessageListenerOrderly`.

use std::time::Duration;

mod concurrent;
mod listener;
mod orderly;
mod process_queue;
mod send_back;

pub use concurrent::{ConcurrentConfig, ConsumeMessageConcurrentlyService, LOCAL_RETRY_DELAY};
pub use listener::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeMessageContext,
    ConsumeMessageHook, ConsumeOrderlyContext, ConsumeOrderlyStatus, FilterMessageHook, ListenerFn,
    MessageListenerConcurrently, MessageListenerOrderly, NoopHook, SyncListener, listener_fn,
    sync_listener,
};
pub use orderly::{ConsumeMessageOrderlyService, MAX_TIME_CONSUME_CONTINUOUSLY, OrderlyConfig};
pub use process_queue::{PULL_MAX_IDLE_TIME, ProcessQueue, REBALANCE_LOCK_MAX_LIVE_TIME};
pub use send_back::SendBack;

/// The `ConsumeMessageDirectlyResult` JSON body (REMOTING.md §3.18), fastjson key order.
pub(crate) fn direct_result(
    order: bool,
    result: &str,
    remark: &str,
    spent: Duration,
) -> bytes::Bytes {
    let v = serde_json::json!({
        "autoCommit": true,
        "consumeResult": result,
        "order": order,
        "remark": remark,
        "spentTimeMills": spent.as_millis() as i64,
    });
    bytes::Bytes::from(v.to_string())
}
