//! The concurrent consume service (Java `ConsumeMessageConcurrentlyService`).

use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use rmq_client_core::MessageModel;
use rmq_client_core::{MessageExt, MessageQueue};
use rmq_offset_store::OffsetStore;
use rmq_remoting::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::call::{CallOutcome, Ended, Start, guarded_from};
use crate::idle_count::IdleCount;
use crate::listener::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeMessageContext,
    ConsumeMessageHook, MessageListenerConcurrently,
};
use crate::metrics::ConsumeMetrics;
use crate::pop_process_queue::PopProcessQueue;
use crate::process_queue::ProcessQueue;
use crate::work_queue::WorkQueue;
use rmq_client_core::SendBack;

/// Delay before messages whose send-back failed are consumed again locally (Java 5000 ms).
pub const LOCAL_RETRY_DELAY: Duration = Duration::from_millis(5000);

/// Longest wait at shutdown for the results of listener calls that already returned to be
/// settled (offsets recorded, send-backs and pop acknowledgements sent), whatever the
/// grace for calls still running: what the application consumed is not redelivered
/// because the process exited while its acknowledgement was on the way.
const SETTLE_WAIT: Duration = Duration::from_millis(3000);

/// Acknowledgements of popped messages waiting for the ack task, at most.
const PENDING_ACKS: usize = 4096;
/// Acknowledgements sent in one round of the ack task, at most.
const ACKS_PER_ROUND: usize = 1024;

/// A consumed popped message waiting for its acknowledgement (a clone of a message
/// allocates nothing).
struct PendingAck {
    msg: MessageExt,
    ppq: Arc<PopProcessQueue>,
}

/// Acknowledges consumed popped messages off the consume tasks (Java's `ackAsync` does not
/// make a consume thread wait either): takes everything waiting, sends it (one
/// BATCH_ACK_MESSAGE per broker and topic), then counts the messages out of their queue;
/// while one round is on the wire the next accumulates. On `flush` it sends what is
/// waiting and ends; later acknowledgements are sent by the consume tasks themselves.
async fn ack_task(mut rx: tokio::sync::mpsc::Receiver<PendingAck>, flush: CancellationToken) {
    let mut round: Vec<PendingAck> = Vec::new();
    let mut flushing = false;
    loop {
        let first = tokio::select! {
            biased;
            // Closed: what is waiting still comes out, then `None` ends the task.
            _ = flush.cancelled(), if !flushing => {
                flushing = true;
                rx.close();
                continue;
            }
            a = rx.recv() => a,
        };
        let Some(first) = first else {
            return;
        };
        round.push(first);
        while round.len() < ACKS_PER_ROUND
            && let Ok(a) = rx.try_recv()
        {
            round.push(a);
        }
        send_acks(&mut round).await;
    }
}

/// Sends one round of acknowledgements and counts the messages out.
async fn send_acks(round: &mut Vec<PendingAck>) {
    while let Some(first) = round.first() {
        // One kernel per consumer; grouped in case queues of several share the task.
        let kernel = Arc::clone(first.ppq.kernel());
        let (mine, rest): (Vec<PendingAck>, Vec<PendingAck>) = std::mem::take(round)
            .into_iter()
            .partition(|a| Arc::ptr_eq(a.ppq.kernel(), &kernel));
        *round = rest;
        let refs: Vec<&MessageExt> = mine.iter().map(|a| &a.msg).collect();
        kernel.ack(&refs).await;
        for a in &mine {
            a.ppq.done([&a.msg]);
        }
    }
}

/// Sends a popped message to `%DLQ%<group>` (CONSUMER_SEND_MSG_BACK with delay level −1);
/// `true` once it is there and the pop may be acknowledged. On failure it stays
/// unacknowledged and comes back after its invisible time.
async fn dead_letter_popped(send_back: &SendBack, m: &MessageExt) -> bool {
    match send_back.send_message_back(m, -1).await {
        Ok(()) => {
            tracing::warn!(msg_id = %m.msg_id(), reconsume_times = m.reconsume_times, "popped message given up; sent to the DLQ");
            true
        }
        Err(e) => {
            tracing::warn!(msg_id = %m.msg_id(), error = %e, "sending a given-up popped message to the DLQ failed; it comes back after its invisible time");
            false
        }
    }
}

/// Results being settled now, and a wake-up when none is.
#[derive(Debug, Default)]
struct Settling(IdleCount);

/// One result being settled (see [`Settling`]).
struct SettleGuard<'a>(&'a Settling);

impl Settling {
    fn enter(&self) -> SettleGuard<'_> {
        self.0.enter();
        SettleGuard(self)
    }
}

impl Drop for SettleGuard<'_> {
    fn drop(&mut self) {
        self.0.0.leave();
    }
}

/// Listener calls that may wait for a free consume task, at least (the queue between the
/// pull tasks and the consume tasks; a pull task waits when it is full).
const MIN_WAITING_CALLS: usize = 1024;

/// Settings of the concurrent service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConcurrentConfig {
    /// The (namespaced) consumer group.
    pub group: String,
    /// Clustering (failures retried via the broker) or broadcasting (failures dropped).
    pub message_model: MessageModel,
    /// Messages per listener call. Default 1 (Java `consumeMessageBatchMaxSize`).
    pub consume_message_batch_max_size: usize,
    /// Listener calls in flight at most: the number of consume tasks. Default 20 (Java
    /// `consumeThreadMax`). A real bound: Java's pool grows its queue without limit instead
    /// (apache/rocketmq#3312).
    pub consume_thread_max: usize,
    /// A call running longer counts as `ReconsumeLater`. Default 15 min (Java `consumeTimeout`).
    pub consume_timeout: Duration,
    /// Where the service counts its pulls' listener calls per topic (the `statusTable` of
    /// the consumer's running info); shared with the consumer. Default: a new set.
    pub stats: std::sync::Arc<crate::ConsumeStats>,
}

impl ConcurrentConfig {
    /// Java's defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        ConcurrentConfig {
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_message_batch_max_size: 1,
            consume_thread_max: 20,
            consume_timeout: Duration::from_secs(15 * 60),
            stats: std::sync::Arc::new(crate::ConsumeStats::new()),
        }
    }
}

/// Where a batch's messages came from, which decides how their results are settled.
enum Owner {
    /// Pulled: failures are sent back, the offset moves past the consumed ones.
    Pull(Arc<ProcessQueue>),
    /// Popped: consumed ones are acknowledged, failed ones made invisible for their delay.
    Pop(Arc<PopProcessQueue>),
}

/// One pull's (or pop's) messages on their way to the listener, shared by all its listener
/// calls.
struct PullBatch {
    msgs: Vec<MessageExt>,
    owner: Owner,
    mq: MessageQueue,
}

/// One listener call: a range of a pull batch.
struct Work {
    batch: Arc<PullBatch>,
    range: Range<usize>,
}

/// What the consume tasks share; generic over the listener so that a call is not boxed.
struct Inner<L> {
    listener: L,
    config: ConcurrentConfig,
    offset_store: Arc<dyn OffsetStore>,
    send_back: SendBack,
    hooks: Vec<Arc<dyn ConsumeMessageHook>>,
    metrics: ConsumeMetrics,
    in_flight: Arc<AtomicUsize>,
    settling: Arc<Settling>,
    /// To the ack task (pop mode).
    acks: tokio::sync::mpsc::Sender<PendingAck>,
    token: CancellationToken,
    tracker: TaskTracker,
    /// The calls waiting for a consume task (closed by [`Stopper`]).
    queue: Arc<WorkQueue<Work>>,
}

/// CONSUME_MESSAGE_DIRECTLY, type-erased.
trait DirectConsume: Send + Sync {
    fn consume_directly(&self, msg: MessageExt, mq: MessageQueue) -> BoxFuture<'_, bytes::Bytes>;
}

/// Closes the work queue and cancels the consume tasks when the last handle is dropped.
struct Stopper {
    token: CancellationToken,
    queue: Arc<WorkQueue<Work>>,
    /// Ends the ack task once it has sent what is waiting.
    flush: CancellationToken,
}

impl Stopper {
    /// Closes the work queue (waiting calls are dropped), cancels the consume tasks and
    /// has the ack task send what is waiting and end.
    fn stop(&self) {
        self.queue.close();
        self.token.cancel();
        self.flush.cancel();
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the listener on pulled messages with a bounded number of calls in flight, sends
/// failures back for retry, and advances offsets only past consumed messages.
///
/// `consumeThreadMax` consume tasks take listener calls from one bounded queue; a pull
/// batch is shared by its calls, so handing messages to the listener allocates per pull
/// batch, not per message, and a call allocates nothing.
///
/// # Drop behavior
/// Dropping the last clone stops the consume tasks after the calls running; waiting calls
/// are abandoned uncommitted. [`ConsumeMessageConcurrentlyService::shutdown`] waits for them.
#[derive(Clone)]
pub struct ConsumeMessageConcurrentlyService {
    handle: Arc<Handle>,
}

/// What a service handle holds; the consume tasks hold `Inner` instead, so the last
/// handle's drop runs [`Stopper`].
struct Handle {
    stopper: Stopper,
    tracker: TaskTracker,
    send_back: SendBack,
    in_flight: Arc<AtomicUsize>,
    settling: Arc<Settling>,
    /// The ack task, awaited (bounded) at shutdown.
    ack_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    direct: Arc<dyn DirectConsume>,
    config: ConcurrentConfig,
}

impl std::fmt::Debug for ConsumeMessageConcurrentlyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumeMessageConcurrentlyService")
            .field("config", &self.handle.config)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

fn status_name(s: ConsumeConcurrentlyStatus) -> &'static str {
    match s {
        ConsumeConcurrentlyStatus::ConsumeSuccess => "CONSUME_SUCCESS",
        ConsumeConcurrentlyStatus::ReconsumeLater => "RECONSUME_LATER",
    }
}

impl ConsumeMessageConcurrentlyService {
    /// A service running `listener` on `consume_thread_max` consume tasks (started here:
    /// call it inside a Tokio runtime).
    pub fn new<L: MessageListenerConcurrently>(
        listener: L,
        config: ConcurrentConfig,
        offset_store: Arc<dyn OffsetStore>,
        send_back: SendBack,
        hooks: Vec<Arc<dyn ConsumeMessageHook>>,
    ) -> Self {
        let tasks = config.consume_thread_max.max(1);
        // One runtime thread: consume tasks take over from each other only when one waits.
        let eager = tokio::runtime::Handle::current().metrics().num_workers() > 1;
        let queue = Arc::new(WorkQueue::new(MIN_WAITING_CALLS.max(tasks * 4), eager));
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let settling = Arc::new(Settling::default());
        let (acks, acks_rx) = tokio::sync::mpsc::channel(PENDING_ACKS);
        let flush = CancellationToken::new();
        let ack_task = tokio::spawn(ack_task(acks_rx, flush.clone()));
        let inner = Arc::new(Inner {
            listener,
            metrics: ConsumeMetrics::new(&config.group),
            config: config.clone(),
            offset_store,
            send_back: send_back.clone(),
            hooks,
            in_flight: Arc::clone(&in_flight),
            settling: Arc::clone(&settling),
            acks,
            token: token.clone(),
            tracker: tracker.clone(),
            queue: Arc::clone(&queue),
        });
        for _ in 0..tasks {
            tracker.spawn(Arc::clone(&inner).consume_task());
        }
        ConsumeMessageConcurrentlyService {
            handle: Arc::new(Handle {
                stopper: Stopper {
                    token,
                    queue,
                    flush,
                },
                tracker,
                send_back,
                in_flight,
                settling,
                ack_task: std::sync::Mutex::new(Some(ack_task)),
                direct: inner,
                config,
            }),
        }
    }

    /// Hands pulled messages (already recorded in `pq`) to the listener in calls of
    /// `consumeMessageBatchMaxSize`. Waits only while the queue of waiting calls is full;
    /// returns `false` when the service is stopped (the messages stay uncommitted).
    pub async fn submit(
        &self,
        msgs: Vec<MessageExt>,
        pq: &Arc<ProcessQueue>,
        mq: &MessageQueue,
    ) -> bool {
        self.submit_batch(msgs, Owner::Pull(Arc::clone(pq)), mq)
            .await
    }

    /// Hands popped messages (already counted in `ppq`) to the listener in calls of
    /// `consumeMessageBatchMaxSize` (Java `ConsumeMessagePopConcurrentlyService`). Consumed
    /// messages are acknowledged; failed ones stay invisible for their delay
    /// ([`rmq_client_core::pop::pop_retry_delay`]) and come back through the pop-retry
    /// topic; when the broker refuses that, they are sent back to `%RETRY%<group>` (and
    /// acknowledged), so that they come back even from a broker that cannot revive them.
    /// A call whose receipt expired before it started is skipped (the broker may have
    /// handed the messages to another consumer). A message delivered more than
    /// `maxReconsumeTimes` times goes to `%DLQ%<group>` (CONSUMER_SEND_MSG_BACK, delay
    /// level −1) and is then acknowledged, without reaching the listener: Java's pop
    /// consumer acknowledges it unconsumed, which drops it (the pop revive path has no
    /// DLQ). Waits only while the queue of waiting
    /// calls is full; returns `false` when the service is stopped (the messages stay
    /// unacknowledged and come back after their invisible time).
    pub async fn submit_popped(
        &self,
        msgs: Vec<MessageExt>,
        ppq: &Arc<PopProcessQueue>,
        mq: &MessageQueue,
    ) -> bool {
        let max = self.handle.send_back.max_reconsume_times();
        let msgs = if msgs.iter().any(|m| m.reconsume_times > max) {
            let (over, rest): (Vec<MessageExt>, Vec<MessageExt>) =
                msgs.into_iter().partition(|m| m.reconsume_times > max);
            for m in &over {
                if dead_letter_popped(&self.handle.send_back, m).await {
                    ppq.kernel().ack(&[m]).await;
                }
                ppq.done([m]);
            }
            rest
        } else {
            msgs
        };
        self.submit_batch(msgs, Owner::Pop(Arc::clone(ppq)), mq)
            .await
    }

    /// Queues the calls of one pulled or popped batch.
    async fn submit_batch(
        &self,
        mut msgs: Vec<MessageExt>,
        owner: Owner,
        mq: &MessageQueue,
    ) -> bool {
        if msgs.is_empty() {
            return true;
        }
        self.handle
            .send_back
            .reset_retry_and_namespace_all(&mut msgs);
        let batch = Arc::new(PullBatch {
            msgs,
            owner,
            mq: mq.clone(),
        });
        send_calls(
            &self.handle.stopper.queue,
            batch,
            self.handle.config.consume_message_batch_max_size,
        )
        .await
    }

    /// Listener calls running now.
    pub fn in_flight(&self) -> usize {
        self.handle.in_flight.load(Ordering::Relaxed)
    }

    /// Runs the listener on one message outside any queue (CONSUME_MESSAGE_DIRECTLY) and
    /// returns the `ConsumeMessageDirectlyResult` JSON.
    pub async fn consume_message_directly(
        &self,
        msg: MessageExt,
        broker_name: Option<String>,
    ) -> bytes::Bytes {
        let (msg, mq) = crate::prepare_direct(&self.handle.send_back, msg, broker_name);
        self.handle.direct.consume_directly(msg, mq).await
    }

    /// Stops taking listener calls at once, without waiting (what dropping a consumer
    /// does); calls running finish, waiting ones are abandoned uncommitted.
    pub fn cancel(&self) {
        self.handle.stopper.stop();
    }

    /// Stops starting listener calls and waits up to `grace` for the ones running. Calls
    /// not started stay uncommitted. The results of calls that already returned are
    /// settled first in any case (at most 3 s more: their offsets recorded, send-backs and
    /// pop acknowledgements answered). Idempotent. Returns `true` when every call ended in
    /// time.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.handle.stopper.stop();
        let done = rmq_remoting::task::stop_and_wait(
            &self.handle.stopper.token,
            &self.handle.tracker,
            grace,
        )
        .await;
        // One 3 s bound for both: the settling calls, then the ack task's last rounds.
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        if !self.handle.settling.0.wait_idle(SETTLE_WAIT).await {
            tracing::warn!("results of finished listener calls still being settled after 3 s");
        }
        let acks = self
            .handle
            .ack_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = acks
            && tokio::time::timeout_at(deadline, t).await.is_err()
        {
            tracing::warn!("pop acknowledgements still on the way after 3 s");
        }
        if !done {
            tracing::warn!(
                ?grace,
                "listener calls still running after the grace period"
            );
        }
        done
    }
}

/// Queues the calls of `batch`, `size` messages each; `false` once the service stopped
/// (stopping closes the queue, which ends a push waiting for room).
async fn send_calls(queue: &WorkQueue<Work>, batch: Arc<PullBatch>, size: usize) -> bool {
    let n = batch.msgs.len();
    let size = size.max(1);
    let calls = (0..n.div_ceil(size)).map(|i| Work {
        batch: Arc::clone(&batch),
        range: i * size..((i + 1) * size).min(n),
    });
    queue.push_all(calls).await
}

/// Plain successes (every message consumed, nothing to send back) of consecutive calls on
/// one pulled batch, settled together: the consumed offsets leave the [`ProcessQueue`] and
/// the commit offset moves in one step, and the statistics are counted once, instead of
/// once per call (with Java's default of one message per call, that is per message). The
/// commit offset is the smallest offset not consumed either way. One difference: when the
/// queue is dropped on another thread in the middle of a run, the run's offsets are not
/// committed (its messages come again to the queue's next owner, as those of calls that
/// return after the drop do).
///
/// Never left unsettled while its consume task waits for anything (the next call, a
/// listener that waits, a send-back) or runs the application's hooks, so it only delays
/// settling within one run of back-to-back calls; meanwhile it counts as a call running
/// on the queue (an offset reset waits for it) and as a result being settled (a shutdown
/// waits for it).
///
/// The clock is read once for a run of calls done on their first poll, not after each
/// (`Ended::Unread`): the reading that ends the run (when it is settled, after the first
/// poll of a call that waits, when a call that fails is timed) is charged to them
/// together, each call's latency in the histogram being their mean. The consume RT's sum
/// (Java `consumeRT`) keeps the time of every call; a call with no start of its own (the
/// first after such a run to fail, or to have its queue dropped meanwhile) counts 0 and
/// its time goes to the run, as does the work of a call that waits before its first
/// await.
#[derive(Default)]
struct Done<'a> {
    batch: Option<Arc<PullBatch>>,
    offsets: Vec<i64>,
    calls: u64,
    msgs: u64,
    rt_ms: f64,
    /// When the last of the calls returned (for calls whose ends were not read: the
    /// reading charged to them).
    ended: Option<std::time::Instant>,
    /// The last of the calls, done on their first poll one after another from
    /// `unread_since`, whose end the clock was not read for (`Ended::Unread`): the next
    /// reading is charged to them together, shared out evenly in the latency histogram.
    unread: u32,
    unread_since: Option<tokio::time::Instant>,
    call: Option<crate::process_queue::CallGuard>,
    settling: Option<SettleGuard<'a>>,
}

impl Done<'_> {
    /// `true` when calls of a batch other than `batch` are waiting to be settled.
    fn holds_other_than(&self, batch: &Arc<PullBatch>) -> bool {
        self.batch.as_ref().is_some_and(|b| !Arc::ptr_eq(b, batch))
    }
}

impl<L: MessageListenerConcurrently> Inner<L> {
    /// One consume task: takes calls from the queue until the service stops.
    async fn consume_task(self: Arc<Self>) {
        let mut ctx = ConsumeConcurrentlyContext::new(MessageQueue::new("", "", 0));
        let mut done = Done::default();
        // Where the next call's latency starts, when this task goes on to it without waiting
        // (see `guarded_from`).
        let mut next_start = Start::Now;
        loop {
            // Stopping closes the queue: `pop` then returns `None` at once.
            let work = match self.queue.try_pop() {
                Some(taken) => taken,
                None => {
                    self.settle(&mut done);
                    next_start = Start::Now;
                    self.queue.pop().await
                }
            };
            let Some(work) = work else {
                self.settle(&mut done);
                return;
            };
            if done.holds_other_than(&work.batch)
                && let Some(reading) = self.settle(&mut done)
            {
                next_start = Start::At(reading);
            }
            let _call = match &work.batch.owner {
                Owner::Pull(pq) => {
                    let call = pq.begin_call();
                    if pq.is_dropped() {
                        // Released queue: these messages stay unconsumed and uncommitted.
                        continue;
                    }
                    Some(call)
                }
                Owner::Pop(ppq) => {
                    // A popped message is this consumer's until its invisible time ends,
                    // whatever the assignment says now; past that, another consumer may
                    // have it (Java skips such a batch too).
                    let msgs = &work.batch.msgs[work.range.clone()];
                    let now = rmq_client_core::now_millis();
                    if msgs
                        .first()
                        .and_then(|m| m.receipt.as_ref())
                        .is_some_and(|r| r.is_expired(now))
                    {
                        tracing::warn!(queue = ?work.batch.mq, messages = msgs.len(), "popped messages' invisible time ran out before their call; skipped");
                        ppq.done(msgs);
                        continue;
                    }
                    None
                }
            };
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            // Taken only now: a skipped call above leaves the chain of unread ends as it was.
            let start = std::mem::replace(&mut next_start, Start::Now);
            let call = self.run_call(&work, &mut ctx, &mut done, start);
            tokio::pin!(call);
            let mut waited = false;
            let after = std::future::poll_fn(|cx| {
                let polled = call.as_mut().poll(cx);
                if polled.is_pending() && !waited {
                    // The listener (or a send-back) waits: let another task take the next
                    // call meanwhile.
                    waited = true;
                    self.queue.wake_next();
                }
                polled
            })
            .await;
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            // Java's consume RT leaves the hooks out: with hooks, each call reads its start.
            if !waited && self.hooks.is_empty() {
                next_start = after;
            }
        }
    }

    /// Charges the calls of `done` whose end was not read (see [`Done`]) with `now`, a
    /// clock reading taken when they had all ended.
    fn charge_unread(&self, done: &mut Done<'_>, now: tokio::time::Instant) {
        if done.unread == 0 {
            return;
        }
        let since = done.unread_since.take().unwrap_or(now);
        let total = now.saturating_duration_since(since);
        self.metrics.latency.record_many(
            total.as_secs_f64() / f64::from(done.unread),
            done.unread as usize,
        );
        done.rt_ms += total.as_secs_f64() * 1000.0;
        done.ended = Some(now.into_std());
        done.unread = 0;
    }

    /// A call's latency and end reading, for a call that cannot join the unread run in
    /// `done`. An unread end is read now: the unread calls before it ended before it and
    /// get this reading (and this call's time, when it has no start of its own: it then
    /// counts 0), and its latency is recorded.
    fn read_end(
        &self,
        done: &mut Done<'_>,
        end: Ended,
    ) -> (std::time::Duration, tokio::time::Instant) {
        match end {
            Ended::Read(rt, ended) => (rt, ended),
            Ended::Unread { started } => {
                let now = tokio::time::Instant::now();
                self.charge_unread(done, now);
                let rt = now.saturating_duration_since(started.unwrap_or(now));
                self.metrics.latency.record(rt.as_secs_f64());
                (rt, now)
            }
        }
    }

    /// Settles the calls gathered in `done` (see [`Done`]); returns the clock reading it
    /// took, if any (only when some calls' ends were not read yet).
    fn settle(&self, done: &mut Done<'_>) -> Option<tokio::time::Instant> {
        done.batch.as_ref()?;
        let reading = (done.unread > 0).then(tokio::time::Instant::now);
        if let Some(now) = reading {
            self.charge_unread(done, now);
        }
        // Its guards (`call`, `settling`) are held until the offset is committed.
        let Done {
            batch: Some(batch),
            mut offsets,
            calls,
            msgs,
            rt_ms,
            ended,
            unread: _,
            unread_since: _,
            call: _call,
            settling: _settling,
        } = std::mem::take(done)
        else {
            return reading;
        };
        // Each call was checked for a dropped queue when it returned (as Java does); a
        // queue dropped since (on another thread, within this run) gets no commit.
        if let Owner::Pull(pq) = &batch.owner {
            self.metrics.ok.increment(msgs);
            self.config
                .stats
                .record_consume_calls(&batch.mq.topic, calls, msgs, 0, rt_ms);
            let ended = ended.unwrap_or_else(std::time::Instant::now);
            if let Some(offset) = pq.remove_messages_at(offsets.drain(..), ended)
                && !pq.is_dropped()
            {
                self.offset_store.update_offset(&batch.mq, offset, true);
            }
        }
        // The list's room is kept for the next run.
        offsets.clear();
        done.offsets = offsets;
        reading
    }

    /// Runs one call (its latency starting at `start`, see `guarded_from`) and settles or
    /// gathers its result; returns where the next call's latency starts if the task goes on
    /// to it without waiting.
    async fn run_call<'a>(
        &'a self,
        work: &Work,
        ctx: &mut ConsumeConcurrentlyContext,
        done: &mut Done<'a>,
        start: Start,
    ) -> Start {
        let batch = &work.batch;
        let msgs = &batch.msgs[work.range.clone()];
        ctx.message_queue.clone_from(&batch.mq);
        ctx.delay_level_when_next_consume = 0;
        ctx.ack_index = i32::MAX;
        ctx.retry.clear();
        let mut hook_ctx = (!self.hooks.is_empty())
            .then(|| ConsumeMessageContext::new(&self.config.group, &batch.mq, msgs.len()));
        if let Some(h) = &hook_ctx {
            // The application's hooks run outside any gathered run: one that panics ends
            // only its own call.
            self.settle(done);
            for hook in &self.hooks {
                hook.consume_message_before(h, msgs);
            }
        }
        let call = self.listener.consume_message(msgs, ctx);
        // Before the call waits, what earlier calls gathered is settled (see `Done`). With
        // hooks every call's end is read (Java's consume RT leaves the hooks out).
        let (returned, end) = guarded_from(
            self.config.consume_timeout,
            &self.metrics.latency,
            call,
            start,
            hook_ctx.is_none(),
            || self.settle(done),
        )
        .await;
        // Counted as settling from the poll in which the call returned, so a shutdown that
        // the call itself triggered (a command's last wanted message) still sees it.
        let _settling = self.settling.enter();
        let (status, outcome) = match returned {
            CallOutcome::Returned(s) => (s, status_name(s)),
            CallOutcome::Panicked => {
                tracing::warn!(queue = ?batch.mq, "listener panicked; the batch will be retried");
                (ConsumeConcurrentlyStatus::ReconsumeLater, "EXCEPTION")
            }
            CallOutcome::TimedOut => {
                tracing::warn!(queue = ?batch.mq, timeout = ?self.config.consume_timeout, "listener timed out; the batch will be retried");
                (ConsumeConcurrentlyStatus::ReconsumeLater, "TIME_OUT")
            }
        };
        if let Some(h) = &mut hook_ctx {
            h.success = status == ConsumeConcurrentlyStatus::ConsumeSuccess;
            h.status = outcome;
            for hook in &self.hooks {
                hook.consume_message_after(h, msgs);
            }
        }
        if let Owner::Pull(pq) = &batch.owner
            && pq.is_dropped()
        {
            // Released (or reset) while the call ran: the queue's next owner consumes these
            // again, so neither a commit nor a send-back happens here (Java
            // `ConsumeRequest.run`: "processQueue is dropped without process consume result").
            tracing::debug!(queue = ?batch.mq, "queue dropped during the call; result not processed");
            let (_, ended) = self.read_end(done, end);
            return Start::At(ended);
        }
        let all_consumed = status == ConsumeConcurrentlyStatus::ConsumeSuccess
            && ctx.retry.is_empty()
            && usize::try_from(ctx.ack_index).is_ok_and(|a| a.saturating_add(1) >= msgs.len());
        if let (true, Owner::Pull(pq)) = (all_consumed, &batch.owner) {
            if done.holds_other_than(batch) {
                self.settle(done);
            }
            if done.batch.is_none() {
                done.batch = Some(Arc::clone(batch));
                done.call = Some(pq.begin_call());
                done.settling = Some(self.settling.enter());
            }
            done.offsets.extend(msgs.iter().map(|m| m.queue_offset));
            done.calls += 1;
            done.msgs += msgs.len() as u64;
            return match end {
                Ended::Read(rt, ended) => {
                    done.rt_ms += rt.as_secs_f64() * 1000.0;
                    done.ended = Some(ended.into_std());
                    Start::At(ended)
                }
                Ended::Unread { started } => {
                    if done.unread == 0 {
                        done.unread_since = Some(started.unwrap_or_else(tokio::time::Instant::now));
                    }
                    done.unread += 1;
                    Start::Chained
                }
            };
        }
        let (rt, ended) = self.read_end(done, end);
        self.settle(done);
        self.process_result(
            status,
            ctx,
            msgs,
            batch,
            rt.as_secs_f64() * 1000.0,
            ended.into_std(),
        )
        .await;
        Start::At(ended)
    }

    /// Java `processConsumeResult`; `ended` is when the call returned.
    async fn process_result(
        &self,
        status: ConsumeConcurrentlyStatus,
        ctx: &ConsumeConcurrentlyContext,
        msgs: &[MessageExt],
        batch: &PullBatch,
        rt_ms: f64,
        ended: std::time::Instant,
    ) {
        let len = msgs.len();
        // The messages to retry, each with its delay level.
        let retry: Vec<(usize, i32)> = match status {
            ConsumeConcurrentlyStatus::ConsumeSuccess if !ctx.retry.is_empty() => ctx
                .retry
                .iter()
                .copied()
                .filter(|(i, _)| *i < len)
                .collect(),
            ConsumeConcurrentlyStatus::ConsumeSuccess => {
                let acked = usize::try_from(ctx.ack_index).map_or(0, |a| a.saturating_add(1));
                (acked.min(len)..len)
                    .map(|i| (i, ctx.delay_level_when_next_consume))
                    .collect()
            }
            ConsumeConcurrentlyStatus::ReconsumeLater => (0..len)
                .map(|i| (i, ctx.delay_level_when_next_consume))
                .collect(),
        };
        let failed = retry.len() as u64;
        let ok = len as u64 - failed;
        self.metrics.ok.increment(ok);
        self.metrics.failed.increment(failed);
        self.config
            .stats
            .record_consume(&batch.mq.topic, ok, failed, rt_ms);
        let pq = match &batch.owner {
            Owner::Pull(pq) => pq,
            Owner::Pop(ppq) => {
                self.settle_popped(ppq, msgs, &retry).await;
                return;
            }
        };
        let mut local_retry = Vec::new();
        for (m, delay_level) in retry.iter().map(|&(i, level)| (&msgs[i], level)) {
            match self.config.message_model {
                MessageModel::Broadcasting => {
                    tracing::warn!(msg_id = %m.msg_id(), queue = ?batch.mq, "broadcasting: consume failed, message dropped (no retry in broadcasting mode)");
                }
                MessageModel::Clustering => {
                    if let Err(e) = self.send_back.send_message_back(m, delay_level).await {
                        tracing::warn!(msg_id = %m.msg_id(), error = %e, "send-back failed; consuming again locally in 5 s");
                        let mut again = m.clone();
                        again.reconsume_times += 1;
                        local_retry.push(again);
                    }
                }
            }
        }
        // Messages kept for a local retry stay in the cache, so the offset cannot pass them.
        let done = msgs
            .iter()
            .map(|m| m.queue_offset)
            .filter(|o| !local_retry.iter().any(|r| r.queue_offset == *o));
        if let Some(offset) = pq.remove_messages_at(done, ended)
            && !pq.is_dropped()
        {
            self.offset_store.update_offset(&batch.mq, offset, true);
        }
        if !local_retry.is_empty() {
            let retry = Arc::new(PullBatch {
                msgs: local_retry,
                owner: Owner::Pull(Arc::clone(pq)),
                mq: batch.mq.clone(),
            });
            let (queue, token) = (Arc::clone(&self.queue), self.token.clone());
            let size = self.config.consume_message_batch_max_size;
            self.tracker.spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = tokio::time::sleep(LOCAL_RETRY_DELAY) => {
                        send_calls(&queue, retry, size).await;
                    }
                }
            });
        }
    }

    /// Settles popped messages after their call: `retry` (index, delay level) are delayed,
    /// the rest acknowledged (Java `ConsumeMessagePopConcurrentlyService.processConsumeResult`).
    async fn settle_popped(
        &self,
        ppq: &Arc<PopProcessQueue>,
        msgs: &[MessageExt],
        retry: &[(usize, i32)],
    ) {
        let max = self.send_back.max_reconsume_times();
        let now = rmq_client_core::now_millis();
        let mut acks: Vec<&MessageExt> = Vec::with_capacity(msgs.len());
        // Settled here (delayed, sent back, or left to come back): counted out at once.
        let mut settled: Vec<&MessageExt> = Vec::new();
        // Each message's delay level when it failed, whatever order `retry` is in.
        let mut failed: Vec<Option<i32>> = vec![None; msgs.len()];
        for &(i, level) in retry {
            failed[i] = Some(level);
        }
        for (m, failed) in msgs.iter().zip(failed) {
            let Some(level) = failed else {
                acks.push(m);
                continue;
            };
            let Some(receipt) = m.receipt.as_ref() else {
                settled.push(m);
                continue;
            };
            let age = now - m.born_timestamp;
            let Some(delay) =
                rmq_client_core::pop::pop_retry_delay(m.reconsume_times, level, max, age)
            else {
                // Given up (delay level -1, or too many deliveries for too long): to the DLQ,
                // where Java's pop consumer drops it.
                if dead_letter_popped(&self.send_back, m).await {
                    acks.push(m);
                } else {
                    settled.push(m);
                }
                continue;
            };
            if let Err(e) = receipt.change_invisible_time(delay).await {
                // The broker cannot delay it (rocketmq-rust 1.0 cannot store the check
                // point): retry it through %RETRY%<group> instead, which this consumer
                // pulls, then acknowledge the pop.
                tracing::debug!(msg_id = %m.msg_id(), error = %e, "changing the invisible time failed; sending the message back");
                match self.send_back.send_message_back(m, level).await {
                    Ok(()) => acks.push(m),
                    Err(e) => {
                        tracing::warn!(msg_id = %m.msg_id(), error = %e, "send-back failed too; the message comes back after its invisible time");
                        settled.push(m);
                    }
                }
            } else {
                settled.push(m);
            }
        }
        // The acknowledged ones go to the ack task, and are counted out once their
        // acknowledgement was answered (so a drain waits for it); after shutdown ended the
        // ack task, they are sent from here.
        let mut inline: Vec<&MessageExt> = Vec::new();
        for m in acks {
            let pending = PendingAck {
                msg: m.clone(),
                ppq: Arc::clone(ppq),
            };
            if self.acks.send(pending).await.is_err() {
                inline.push(m);
            }
        }
        if !inline.is_empty() {
            ppq.kernel().ack(&inline).await;
            settled.extend(inline);
        }
        ppq.done(settled);
    }
}

impl<L: MessageListenerConcurrently> DirectConsume for Inner<L> {
    fn consume_directly(&self, msg: MessageExt, mq: MessageQueue) -> BoxFuture<'_, bytes::Bytes> {
        Box::pin(async move {
            let mut ctx = ConsumeConcurrentlyContext::new(mq);
            let started = Instant::now();
            let batch = [msg];
            let outcome = AssertUnwindSafe(self.listener.consume_message(&batch, &mut ctx))
                .catch_unwind()
                .await
                .map(|s| s == ConsumeConcurrentlyStatus::ConsumeSuccess);
            crate::direct_result(false, outcome, started.elapsed())
        })
    }
}
