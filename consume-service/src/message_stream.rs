//! Messages as an async [`Stream`], each with an acknowledgement handle ([`AckMessage`]):
//! the async-nats / rdkafka way of consuming, on top of the same consume services as the
//! listeners. A [`StreamListener`] is the listener: each call hands its messages to the
//! stream and waits until every one was acked or nacked, then answers as a listener would.
//! So everything that holds for listener calls holds for handles in flight: at most
//! `consumeThreadMax` calls (so that many batches) are out at once, their bodies count
//! against the memory budget, offsets move only past acked messages, and shutdown and
//! rebalance hand-off wait for them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use rmq_client_core::{ClientError, MessageExt};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::listener::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, MessageListenerConcurrently, MessageListenerOrderly,
};

/// What the application said of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ack,
    /// Redeliver; the delay level as [`ConsumeConcurrentlyContext::delay_level_when_next_consume`].
    Nack(i32),
}

/// The answers to one listener call's messages, shared by their handles: one allocation
/// per call, not a channel per message.
#[derive(Debug)]
struct CallAnswers {
    state: Mutex<Answers>,
    /// Woken when the last answer comes.
    all_in: Notify,
}

#[derive(Debug)]
struct Answers {
    /// Per message of the call, in order; `None` until answered.
    outcomes: Vec<Option<Outcome>>,
    /// Messages not answered yet.
    missing: usize,
}

impl CallAnswers {
    fn new(n: usize) -> Self {
        CallAnswers {
            state: Mutex::new(Answers {
                outcomes: vec![None; n],
                missing: n,
            }),
            all_in: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the answer for message `i` (the first answer counts).
    fn answer(&self, i: usize, outcome: Outcome) {
        let last = {
            let mut s = self.state();
            match s.outcomes.get_mut(i) {
                Some(slot @ None) => {
                    *slot = Some(outcome);
                    s.missing -= 1;
                    s.missing == 0
                }
                _ => false,
            }
        };
        if last {
            // A permit is kept when the call is not waiting yet.
            self.all_in.notify_one();
        }
    }

    /// Waits until every message is answered.
    async fn all_answered(&self) {
        loop {
            let woken = self.all_in.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.state().missing == 0 {
                return;
            }
            woken.await;
        }
    }
}

/// A message from a [`MessageStream`] and its acknowledgement handle.
///
/// Exactly one of [`AckMessage::ack`] or [`AckMessage::nack`] should be called. **Dropping
/// it without either counts as `nack(0)`**: the message is redelivered (through the retry
/// topic after 10 s, then longer, in concurrent mode; after `suspendCurrentQueueTimeMillis`
/// in orderly mode), never silently lost. A handle acked after its listener call ended
/// (past `consumeTimeout`, 15 min, or after shutdown gave up waiting) changes nothing: the
/// message was already given back for redelivery.
#[derive(Debug)]
pub struct AckMessage {
    message: MessageExt,
    /// The call's answers and this message's place in them; `None` once answered.
    reply: Option<(Arc<CallAnswers>, usize)>,
}

impl AckMessage {
    /// The message.
    pub fn message(&self) -> &MessageExt {
        &self.message
    }

    /// Consumed: the offset may move past it (Java `CONSUME_SUCCESS`).
    pub fn ack(mut self) {
        self.reply(Outcome::Ack);
    }

    /// Not consumed: redeliver it. Pop mode: it stays invisible for the pop delay of
    /// `delay_level` (0: by reconsume times, 10 s first, then 30 s, 1 min…; −1: to the
    /// DLQ), then comes back. Concurrent mode: through `%RETRY%<group>` with
    /// `delay_level` (0: the broker's schedule, 3 + reconsume times, i.e. 10 s first; −1:
    /// straight to the DLQ; > 0: that level), as `RECONSUME_LATER` does. Orderly mode: the
    /// queue is suspended for `suspendCurrentQueueTimeMillis` and the message comes again
    /// in order (`delay_level` is not used), as `SUSPEND_CURRENT_QUEUE_A_MOMENT` does.
    pub fn nack(mut self, delay_level: i32) {
        self.reply(Outcome::Nack(delay_level));
    }

    /// Still working on it: in pop mode, keeps the message invisible to other consumers for
    /// another invisible time (the one it was popped with) from now
    /// (CHANGE_MESSAGE_INVISIBLETIME), so a slow message is not redelivered meanwhile; the
    /// later `ack` uses the new receipt handle. Like async-nats' `in_progress`. Pulled
    /// messages are never redelivered while their handle is held (their offset cannot
    /// move past them), so for them this does nothing and returns `Ok`.
    ///
    /// # Errors
    /// The broker's refusal (rocketmq-rust 1.0 refuses every change with SYSTEM_ERROR: it
    /// cannot store the check point), a transport error, or [`ClientError::Shutdown`]
    /// once the consumer is gone. The old handle then stays valid for `ack`.
    pub async fn in_progress(&self) -> Result<(), ClientError> {
        match &self.message.receipt {
            Some(r) => {
                let invisible = r.handle().invisible_time.max(0) as u64;
                r.change_invisible_time(std::time::Duration::from_millis(invisible))
                    .await
            }
            None => Ok(()),
        }
    }

    fn reply(&mut self, outcome: Outcome) {
        if let Some((answers, i)) = self.reply.take() {
            answers.answer(i, outcome);
        }
    }
}

impl Drop for AckMessage {
    /// Unanswered: a nack with the broker's own schedule (see [`AckMessage`]).
    fn drop(&mut self) {
        self.reply(Outcome::Nack(0));
    }
}

impl std::ops::Deref for AckMessage {
    type Target = MessageExt;
    fn deref(&self) -> &MessageExt {
        &self.message
    }
}

/// The messages of a consumer started with a stream instead of a listener: a
/// `futures::Stream` of [`AckMessage`]. It ends when the consumer has shut down.
///
/// Poll it from one task; process messages concurrently as you like (for example with
/// `for_each_concurrent`): up to `consumeThreadMax` batches (20 by default, one message
/// each by default) are handed out at once. Keep polling until `shutdown()` returns:
/// dropping the stream while the consumer runs makes every later call give its messages
/// back for redelivery.
pub struct MessageStream {
    rx: mpsc::Receiver<AckMessage>,
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl std::fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream").finish_non_exhaustive()
    }
}

impl Stream for MessageStream {
    type Item = AckMessage;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AckMessage>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(m) => Poll::Ready(m),
            // Nothing waiting: the end once the consumer stopped.
            Poll::Pending => match self.stopped.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The listener behind a [`MessageStream`] (concurrent and orderly): hands each call's
/// messages to the stream and answers with what the handles said. Made by
/// [`message_stream`].
#[derive(Debug, Clone)]
pub struct StreamListener {
    tx: mpsc::Sender<AckMessage>,
}

/// A listener and the stream it feeds. `capacity` (at least 1) bounds the messages waiting
/// to be polled; the consume services bound the ones handed out. The stream ends when
/// `stopped` is cancelled (the consumer's shutdown) and nothing is left waiting in it, or
/// when the listener is dropped.
pub fn message_stream(
    capacity: usize,
    stopped: CancellationToken,
) -> (StreamListener, MessageStream) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let stopped = Box::pin(stopped.cancelled_owned());
    (StreamListener { tx }, MessageStream { rx, stopped })
}

impl StreamListener {
    /// Hands `msgs` out and waits for each one's outcome; the index and delay level of
    /// every message not acked, in order.
    async fn hand_out(&self, msgs: &[MessageExt]) -> Vec<(usize, i32)> {
        let answers = Arc::new(CallAnswers::new(msgs.len()));
        for (i, m) in msgs.iter().enumerate() {
            let handed = AckMessage {
                message: m.clone(),
                reply: Some((Arc::clone(&answers), i)),
            };
            if let Err(mpsc::error::SendError(mut back)) = self.tx.send(handed).await {
                // Nobody polls the stream any more: this and the rest go back.
                back.reply = None;
                for rest in i..msgs.len() {
                    answers.answer(rest, Outcome::Nack(0));
                }
                break;
            }
        }
        // A dropped handle is a nack(0). Every handle is waited for, so none is left in
        // the application's hands when the call returns.
        answers.all_answered().await;
        let s = answers.state();
        s.outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Some(Outcome::Ack) => None,
                Some(Outcome::Nack(level)) => Some((i, *level)),
                None => Some((i, 0)),
            })
            .collect()
    }
}

impl MessageListenerConcurrently for StreamListener {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        let nacked = self.hand_out(msgs).await;
        if nacked.len() == msgs.len() {
            // Nothing acked: the listener's own answer, with the first delay level.
            ctx.delay_level_when_next_consume = nacked.first().map_or(0, |(_, l)| *l);
            return ConsumeConcurrentlyStatus::ReconsumeLater;
        }
        // Exactly the nacked messages are retried, each with its own delay level; the
        // acked ones around them are not.
        ctx.retry = nacked;
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

impl MessageListenerOrderly for StreamListener {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeOrderlyContext,
    ) -> ConsumeOrderlyStatus {
        if self.hand_out(msgs).await.is_empty() {
            ConsumeOrderlyStatus::Success
        } else {
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use rmq_client_core::MessageQueue;

    use super::*;

    fn msgs(n: i64) -> Vec<MessageExt> {
        (0..n)
            .map(|o| MessageExt {
                queue_offset: o,
                ..Default::default()
            })
            .collect()
    }

    fn ctx() -> ConsumeConcurrentlyContext {
        ConsumeConcurrentlyContext::new(MessageQueue::new("T", "b", 0))
    }

    /// Runs one concurrent call over `n` messages while `answer` handles each one (by
    /// offset); the call's status and context.
    async fn call(
        n: i64,
        answer: impl Fn(AckMessage) + Send + 'static,
    ) -> (ConsumeConcurrentlyStatus, ConsumeConcurrentlyContext) {
        let stop = CancellationToken::new();
        let (listener, mut stream) = message_stream(4, stop);
        let app = tokio::spawn(async move {
            while let Some(m) = stream.next().await {
                answer(m);
            }
        });
        let mut c = ctx();
        let status =
            MessageListenerConcurrently::consume_message(&listener, &msgs(n), &mut c).await;
        drop(listener);
        app.await.unwrap();
        (status, c)
    }

    #[tokio::test]
    async fn acks_nacks_and_dropped_handles_become_the_listener_answer() {
        let (s, _) = call(1, |m| m.ack()).await;
        assert_eq!(s, ConsumeConcurrentlyStatus::ConsumeSuccess);
        let (s, c) = call(1, |m| m.nack(5)).await;
        assert_eq!(s, ConsumeConcurrentlyStatus::ReconsumeLater);
        assert_eq!(c.delay_level_when_next_consume, 5);
        // Dropped unanswered: a nack with the broker's own schedule.
        let (s, c) = call(1, drop).await;
        assert_eq!(s, ConsumeConcurrentlyStatus::ReconsumeLater);
        assert_eq!(c.delay_level_when_next_consume, 0);
        // A batch: each message answered on its own.
        let (s, c) = call(3, |m| {
            if m.queue_offset == 1 {
                m.nack(2)
            } else {
                m.ack()
            }
        })
        .await;
        assert_eq!(s, ConsumeConcurrentlyStatus::ConsumeSuccess);
        // Exactly the nacked one is retried, with its level; 0 and 2 are acked.
        assert_eq!(c.retry, [(1, 2)]);
    }

    #[tokio::test]
    async fn orderly_nack_suspends_the_queue() {
        let stop = CancellationToken::new();
        let (listener, mut stream) = message_stream(4, stop);
        let app = tokio::spawn(async move {
            let first = stream.next().await.unwrap();
            first.ack();
            let second = stream.next().await.unwrap();
            second.nack(0);
        });
        let mut c = ConsumeOrderlyContext::new(MessageQueue::new("T", "b", 0));
        let ok = MessageListenerOrderly::consume_message(&listener, &msgs(1), &mut c).await;
        let again = MessageListenerOrderly::consume_message(&listener, &msgs(1), &mut c).await;
        app.await.unwrap();
        assert_eq!(ok, ConsumeOrderlyStatus::Success);
        assert_eq!(again, ConsumeOrderlyStatus::SuspendCurrentQueueAMoment);
    }

    #[tokio::test]
    async fn the_stream_ends_after_the_stop_once_drained_and_a_gone_stream_nacks() {
        let stop = CancellationToken::new();
        let (listener, mut stream) = message_stream(4, stop.clone());
        let l = listener.clone();
        let call = tokio::spawn(async move {
            let mut c = ctx();
            MessageListenerConcurrently::consume_message(&l, &msgs(1), &mut c).await
        });
        let m = stream.next().await.unwrap();
        stop.cancel();
        m.ack();
        assert_eq!(
            call.await.unwrap(),
            ConsumeConcurrentlyStatus::ConsumeSuccess
        );
        // Stopped and nothing waiting: the end.
        assert!(stream.next().await.is_none());
        drop(stream);
        // Nobody polls any more: the messages go back for redelivery.
        let mut c = ctx();
        let s = MessageListenerConcurrently::consume_message(&listener, &msgs(1), &mut c).await;
        assert_eq!(s, ConsumeConcurrentlyStatus::ReconsumeLater);
    }
}
