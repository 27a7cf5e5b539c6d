//! The user's message listeners (Java `MessageListenerConcurrently`,
//! `MessageListenerOrderly`) and the consume hooks (Java `ConsumeMessageHook`,
//! `FilterMessageHook`).

use std::future::Future;
use std::sync::Arc;

use rmq_client_core::{MessageExt, MessageQueue};
use rmq_remoting::BoxFuture;

/// What a concurrent listener says of a batch (Java `ConsumeConcurrentlyStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeConcurrentlyStatus {
    /// Consumed; messages after [`ConsumeConcurrentlyContext::ack_index`] are retried.
    ConsumeSuccess,
    /// Retry the whole batch later through `%RETRY%<group>`.
    ReconsumeLater,
}

/// Per-call context of a concurrent listener (Java `ConsumeConcurrentlyContext`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumeConcurrentlyContext {
    /// The queue the batch came from.
    pub message_queue: MessageQueue,
    /// Delay level of the retry: 0 lets the broker choose (3 + reconsume times, i.e. 10 s
    /// first), −1 sends straight to the DLQ, > 0 is explicit. Default 0.
    pub delay_level_when_next_consume: i32,
    /// With `ConsumeSuccess`, messages up to and including this index are acknowledged and
    /// the rest retried. Default `i32::MAX` (all).
    pub ack_index: i32,
    /// The message stream's per-message answers: with `ConsumeSuccess`, when not empty,
    /// exactly these messages (index in the batch, delay level) are retried and the others
    /// acknowledged, instead of everything after `ack_index`.
    pub(crate) retry: Vec<(usize, i32)>,
}

impl ConsumeConcurrentlyContext {
    /// The defaults for a batch of `mq`.
    pub fn new(message_queue: MessageQueue) -> Self {
        ConsumeConcurrentlyContext {
            message_queue,
            delay_level_when_next_consume: 0,
            ack_index: i32::MAX,
            retry: Vec::new(),
        }
    }
}

/// What an orderly listener says of a batch (Java `ConsumeOrderlyStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeOrderlyStatus {
    /// Consumed; the offset moves past the batch.
    Success,
    /// Wait `suspend_current_queue_time` and deliver the same messages again, in order.
    SuspendCurrentQueueAMoment,
}

/// Per-call context of an orderly listener (Java `ConsumeOrderlyContext`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumeOrderlyContext {
    /// The queue the batch came from.
    pub message_queue: MessageQueue,
    /// How long to suspend the queue after `SuspendCurrentQueueAMoment`, ms; −1 = the
    /// consumer's `suspendCurrentQueueTimeMillis`.
    pub suspend_current_queue_time_millis: i64,
}

impl ConsumeOrderlyContext {
    /// The defaults for a batch of `mq`.
    pub fn new(message_queue: MessageQueue) -> Self {
        ConsumeOrderlyContext {
            message_queue,
            suspend_current_queue_time_millis: -1,
        }
    }
}

/// Consumes batches concurrently (Java `MessageListenerConcurrently`).
///
/// Called from consume tasks, up to `consumeThreadMax` calls at once, possibly for the same
/// queue; never on a connection task. A call that panics, or runs past `consumeTimeout`,
/// counts as [`ConsumeConcurrentlyStatus::ReconsumeLater`]. Implement it with `async fn`.
pub trait MessageListenerConcurrently: Send + Sync + 'static {
    /// Consumes `msgs` (at most `consumeMessageBatchMaxSize`, default 1).
    fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeConcurrentlyContext,
    ) -> impl Future<Output = ConsumeConcurrentlyStatus> + Send;
}

/// Consumes batches of one queue one call at a time, in offset order (Java
/// `MessageListenerOrderly`). Calls for different queues run concurrently.
pub trait MessageListenerOrderly: Send + Sync + 'static {
    /// Consumes `msgs` in order.
    fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeOrderlyContext,
    ) -> impl Future<Output = ConsumeOrderlyStatus> + Send;
}

/// A shared listener is a listener (so one `Arc` can serve several consumers).
impl<L: MessageListenerConcurrently> MessageListenerConcurrently for Arc<L> {
    fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeConcurrentlyContext,
    ) -> impl Future<Output = ConsumeConcurrentlyStatus> + Send {
        (**self).consume_message(msgs, ctx)
    }
}

/// A shared listener is a listener (so one `Arc` can serve several consumers).
impl<L: MessageListenerOrderly> MessageListenerOrderly for Arc<L> {
    fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeOrderlyContext,
    ) -> impl Future<Output = ConsumeOrderlyStatus> + Send {
        (**self).consume_message(msgs, ctx)
    }
}

/// An async closure as a concurrent listener. It gets the batch and the call's context by
/// value and returns either a [`ConsumeConcurrentlyStatus`], or the status with the context
/// it changed (`ack_index`, `delay_level_when_next_consume`), as the trait's `&mut` context
/// allows.
///
/// Convenience has a price: the closure owns its batch, so each call copies the message
/// handles into a `Vec` (one allocation per call; bodies and properties are shared, not
/// copied). Implement [`MessageListenerConcurrently`] for the path that allocates nothing.
///
/// ```
/// use rmq_consume_service::{ConsumeConcurrentlyStatus, listener_fn};
/// let plain = listener_fn(|msgs, _ctx| async move {
///     for m in &msgs {
///         println!("{}", m.msg_id());
///     }
///     ConsumeConcurrentlyStatus::ConsumeSuccess
/// });
/// // Acknowledge the first message only and retry the rest in 30 s (delay level 4).
/// let partial = listener_fn(|_msgs, mut ctx| async move {
///     ctx.ack_index = 0;
///     ctx.delay_level_when_next_consume = 4;
///     (ConsumeConcurrentlyStatus::ConsumeSuccess, ctx)
/// });
/// ```
pub fn listener_fn<F, Fut, R>(f: F) -> ListenerFn<F>
where
    F: Fn(Vec<MessageExt>, ConsumeConcurrentlyContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoConsumeConcurrentlyStatus,
{
    ListenerFn(f)
}

/// What a [`listener_fn`] closure may return: a status, or a status and the context.
pub trait IntoConsumeConcurrentlyStatus: Send + 'static {
    /// The status; a returned context replaces the call's.
    fn into_status(self, ctx: &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus;
}

impl IntoConsumeConcurrentlyStatus for ConsumeConcurrentlyStatus {
    fn into_status(self, _ctx: &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus {
        self
    }
}

impl IntoConsumeConcurrentlyStatus for (ConsumeConcurrentlyStatus, ConsumeConcurrentlyContext) {
    fn into_status(self, ctx: &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus {
        *ctx = self.1;
        self.0
    }
}

/// See [`listener_fn`].
#[derive(Debug, Clone)]
pub struct ListenerFn<F>(F);

impl<F, Fut, R> MessageListenerConcurrently for ListenerFn<F>
where
    F: Fn(Vec<MessageExt>, ConsumeConcurrentlyContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoConsumeConcurrentlyStatus,
{
    fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeConcurrentlyContext,
    ) -> impl Future<Output = ConsumeConcurrentlyStatus> + Send {
        let call = (self.0)(msgs.to_vec(), ctx.clone());
        async move { call.await.into_status(ctx) }
    }
}

/// A blocking (synchronous) concurrent listener, run on Tokio's blocking pool so it never
/// stalls the async workers (Java listeners are synchronous).
pub fn sync_listener<F>(f: F) -> SyncListener<F>
where
    F: Fn(&[MessageExt], &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus
        + Send
        + Sync
        + 'static,
{
    SyncListener(Arc::new(f))
}

/// See [`sync_listener`].
#[derive(Debug)]
pub struct SyncListener<F>(Arc<F>);

impl<F> MessageListenerConcurrently for SyncListener<F>
where
    F: Fn(&[MessageExt], &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus
        + Send
        + Sync
        + 'static,
{
    fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeConcurrentlyContext,
    ) -> impl Future<Output = ConsumeConcurrentlyStatus> + Send {
        let f = Arc::clone(&self.0);
        let msgs = msgs.to_vec();
        let mut owned_ctx = ctx.clone();
        async move {
            match tokio::task::spawn_blocking(move || {
                let s = f(&msgs, &mut owned_ctx);
                (s, owned_ctx)
            })
            .await
            {
                Ok((status, back)) => {
                    *ctx = back;
                    status
                }
                // The listener panicked on the blocking pool: retry the batch later.
                Err(_) => ConsumeConcurrentlyStatus::ReconsumeLater,
            }
        }
    }
}

/// The type-erased orderly listener the services store.
pub(crate) trait DynOrderly: Send + Sync + 'static {
    fn consume<'a>(
        &'a self,
        msgs: &'a [MessageExt],
        ctx: &'a mut ConsumeOrderlyContext,
    ) -> BoxFuture<'a, ConsumeOrderlyStatus>;
}

impl<L: MessageListenerOrderly> DynOrderly for L {
    fn consume<'a>(
        &'a self,
        msgs: &'a [MessageExt],
        ctx: &'a mut ConsumeOrderlyContext,
    ) -> BoxFuture<'a, ConsumeOrderlyStatus> {
        Box::pin(self.consume_message(msgs, ctx))
    }
}

/// What a [`ConsumeMessageHook`] sees (Java `ConsumeMessageContext`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumeMessageContext {
    /// Consumer group.
    pub consumer_group: String,
    /// The queue.
    pub message_queue: MessageQueue,
    /// Number of messages in the call.
    pub message_count: usize,
    /// After the call: whether it succeeded.
    pub success: bool,
    /// After the call: the status name (`CONSUME_SUCCESS`, `RECONSUME_LATER`, `SUCCESS`,
    /// `SUSPEND_CURRENT_QUEUE_A_MOMENT`, `EXCEPTION`, `TIME_OUT`).
    pub status: &'static str,
    /// Identifies the call, unique in the process: the same in `before` and `after`, so a
    /// hook can pair them (Java hooks stash state in `mqTraceContext` instead).
    pub call_id: u64,
}

impl ConsumeMessageContext {
    /// The context of a new call (a listener call, or a batch a lite pull consumer's
    /// `poll` hands out) with a fresh `call_id`.
    pub fn new(consumer_group: &str, message_queue: &MessageQueue, message_count: usize) -> Self {
        static NEXT_CALL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        ConsumeMessageContext {
            consumer_group: consumer_group.to_owned(),
            message_queue: message_queue.clone(),
            message_count,
            success: false,
            status: "",
            call_id: NEXT_CALL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Runs before and after each listener call (Java `ConsumeMessageHook`). Called on the
/// consume task, around the listener; must be quick. Both methods default to no-ops.
pub trait ConsumeMessageHook: Send + Sync + 'static {
    /// The hook's name.
    fn hook_name(&self) -> &str;
    /// Before the listener runs.
    fn consume_message_before(&self, _ctx: &ConsumeMessageContext, _msgs: &[MessageExt]) {}
    /// After the listener returned (or failed).
    fn consume_message_after(&self, _ctx: &ConsumeMessageContext, _msgs: &[MessageExt]) {}
}

/// Sees every pulled batch after the tag re-filter (Java `FilterMessageHook`); may drop
/// messages by clearing them from the vector. Messages it drops still advance the offset.
pub trait FilterMessageHook: Send + Sync + 'static {
    /// The hook's name.
    fn hook_name(&self) -> &str;
    /// Filters `msgs` of `mq` in place. Default: keep everything.
    fn filter_message(&self, _mq: &MessageQueue, _msgs: &mut Vec<MessageExt>) {}
}

/// A hook that does nothing (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopHook;

impl ConsumeMessageHook for NoopHook {
    fn hook_name(&self) -> &str {
        "noop"
    }
}

impl FilterMessageHook for NoopHook {
    fn hook_name(&self) -> &str {
        "noop"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listener_fn_closures_see_and_change_the_context() {
        let l = listener_fn(
            |msgs: Vec<MessageExt>, mut ctx: ConsumeConcurrentlyContext| async move {
                assert_eq!(ctx.ack_index, i32::MAX, "the defaults come in");
                ctx.ack_index = msgs.len() as i32 - 2;
                ctx.delay_level_when_next_consume = 4;
                (ConsumeConcurrentlyStatus::ConsumeSuccess, ctx)
            },
        );
        let msgs = vec![MessageExt::default(); 3];
        let mut ctx = ConsumeConcurrentlyContext::new(MessageQueue::new("T", "b", 0));
        let status = l.consume_message(&msgs, &mut ctx).await;
        assert_eq!(status, ConsumeConcurrentlyStatus::ConsumeSuccess);
        assert_eq!((ctx.ack_index, ctx.delay_level_when_next_consume), (1, 4));
        let plain = listener_fn(|_m, _c| async { ConsumeConcurrentlyStatus::ReconsumeLater });
        let mut ctx = ConsumeConcurrentlyContext::new(MessageQueue::new("T", "b", 0));
        let status = plain.consume_message(&msgs, &mut ctx).await;
        assert_eq!(status, ConsumeConcurrentlyStatus::ReconsumeLater);
        assert_eq!(
            ctx.ack_index,
            i32::MAX,
            "a bare status leaves the context alone"
        );
    }
}
