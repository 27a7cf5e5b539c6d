//! [`ProcessQueue`] (Java `ProcessQueue`): the messages pulled from one queue and not yet
//! consumed, and the offset that is safe to commit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::idle_count::IdleCount;
use rmq_client_core::MessageExt;
use tokio::sync::Notify;

/// Milliseconds of the monotonic clock from a fixed point of this process (its first
/// use; earlier instants are negative), so that an `Instant` fits an atomic.
fn mono_ms(t: Instant) -> i64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    match t.checked_duration_since(base) {
        Some(after) => after.as_millis() as i64,
        None => -(base.duration_since(t).as_millis() as i64),
    }
}

/// How long a broker lock is trusted without renewal (Java `REBALANCE_LOCK_MAX_LIVE_TIME`, 30 s).
pub const REBALANCE_LOCK_MAX_LIVE_TIME: Duration = Duration::from_millis(30_000);
/// A queue not pulled for this long is considered stuck (Java `PULL_MAX_IDLE_TIME`, 120 s).
pub const PULL_MAX_IDLE_TIME: Duration = Duration::from_millis(120_000);

/// One pulled message of a concurrent queue: what the commit offset and the flow control
/// need, not the message itself (the consume service owns that).
#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: i64,
    bytes: usize,
    done: bool,
}

#[derive(Default)]
struct State {
    /// Concurrent mode: pulled messages in offset order; the front one is never done (done
    /// ones at the front are popped), so the front is the commit offset.
    entries: VecDeque<Entry>,
    /// Concurrent mode: entries not yet done.
    pending: usize,
    /// Orderly mode: the cached messages themselves, by offset, not yet handed out.
    msgs: BTreeMap<i64, MessageExt>,
    /// Orderly mode: offsets and body sizes taken by the running listener call.
    consuming: Vec<(i64, usize)>,
    /// Body bytes cached.
    bytes: usize,
    /// Highest offset ever put.
    queue_offset_max: i64,
    /// A drain began: nothing more may be put (see [`ProcessQueue::seal`]).
    sealed: bool,
}

/// The cache of one owned queue (Java `ProcessQueue`): what was pulled and not yet
/// consumed, its count and body bytes, the offset that is safe to commit, and the flags of
/// its life cycle. Shared by the pull task and the consume tasks.
///
/// A concurrent queue keeps offsets and sizes only (the messages travel to the listener
/// without being copied); an orderly queue keeps the messages themselves, moved in, and
/// hands them out in offset order. Neither allocates per message beyond the amortized
/// growth of its containers.
///
/// The commit offset is always the smallest offset not yet consumed, so an offset never
/// moves past a message that was not consumed, whatever order batches finish in.
#[derive(Debug)]
pub struct ProcessQueue {
    state: Mutex<State>,
    /// Body bytes cached across every queue of the consumer (the memory budget).
    shared_bytes: Arc<AtomicUsize>,
    /// Woken whenever the cache becomes empty (drains wait on it).
    emptied: Notify,
    /// Listener calls running on this queue's messages.
    calls: IdleCount,
    dropped: AtomicBool,
    locked: AtomicBool,
    consuming: AtomicBool,
    last_pull_ms: AtomicI64,
    /// When consumption last went on, as [`mono_ms`] (a monotonic reading from the
    /// consume call that already took one, not a wall-clock read per message).
    last_consume: AtomicI64,
    last_lock_ms: AtomicI64,
    try_unlock_times: AtomicI64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("pending", &self.pending)
            .field("cached", &self.msgs.len())
            .field("consuming", &self.consuming.len())
            .field("bytes", &self.bytes)
            .field("queue_offset_max", &self.queue_offset_max)
            .finish()
    }
}

/// Waits (at most `timeout`) until `done()` holds, re-checking it whenever `notify` wakes;
/// the waiter is registered before each check, so a wake-up between the two is not lost.
pub(crate) async fn wait_until(
    notify: &Notify,
    timeout: Duration,
    done: impl Fn() -> bool + Sync,
) -> bool {
    let wait = async {
        loop {
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if done() {
                return;
            }
            woken.await;
        }
    };
    tokio::time::timeout(timeout, wait).await.is_ok()
}

/// A listener call running on a queue's messages (see [`ProcessQueue::begin_call`]).
#[derive(Debug)]
pub struct CallGuard(Arc<ProcessQueue>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.calls.leave();
    }
}

impl State {
    fn count(&self) -> usize {
        self.pending + self.msgs.len() + self.consuming.len()
    }

    fn entry_index(&self, offset: i64) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&offset, |e| e.offset)
    }
}

impl ProcessQueue {
    /// An empty queue cache adding its bytes to `shared_bytes`.
    pub fn new(shared_bytes: Arc<AtomicUsize>) -> Self {
        let now = rmq_client_core::now_millis();
        ProcessQueue {
            state: Mutex::new(State::default()),
            shared_bytes,
            emptied: Notify::new(),
            calls: IdleCount::default(),
            dropped: AtomicBool::new(false),
            locked: AtomicBool::new(false),
            consuming: AtomicBool::new(false),
            last_pull_ms: AtomicI64::new(now),
            last_consume: AtomicI64::new(mono_ms(Instant::now())),
            last_lock_ms: AtomicI64::new(0),
            try_unlock_times: AtomicI64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Concurrent mode: records pulled messages (offsets and body sizes; a duplicate offset
    /// is ignored). The messages themselves go to the consume service. Returns `false`, and
    /// records nothing, once the queue is [sealed](ProcessQueue::seal): the caller must
    /// not hand the messages to the consume service then.
    #[must_use = "sealed queues refuse messages, which must then not be consumed"]
    pub fn put_messages(&self, msgs: &[MessageExt]) -> bool {
        let mut added = 0usize;
        {
            let mut s = self.state();
            if s.sealed {
                return false;
            }
            for m in msgs {
                let e = Entry {
                    offset: m.queue_offset,
                    bytes: m.body.len(),
                    done: false,
                };
                match s.entries.back() {
                    Some(b) if b.offset >= e.offset => match s.entry_index(e.offset) {
                        Ok(_) => continue,
                        Err(i) => s.entries.insert(i, e),
                    },
                    _ => s.entries.push_back(e),
                }
                s.pending += 1;
                s.bytes += e.bytes;
                added += e.bytes;
                s.queue_offset_max = s.queue_offset_max.max(e.offset);
            }
        }
        self.shared_bytes.fetch_add(added, Ordering::Relaxed);
        true
    }

    /// Refuses every later put (a drain began). Taken under the same lock as the puts, so
    /// a drain that seals and then waits for the queue to empty cannot miss a batch that
    /// arrives meanwhile (the race that made a clean stop wait out its drain timeout).
    /// Java's `ProcessQueue` has no such state: its pull callback may still add a batch
    /// after `removeUnnecessaryMessageQueue` began.
    pub fn seal(&self) {
        self.state().sealed = true;
    }

    /// Takes puts again (a release that was refused: the queue stays with its owner).
    pub fn unseal(&self) {
        self.state().sealed = false;
    }

    /// Whether the queue is sealed.
    pub fn is_sealed(&self) -> bool {
        self.state().sealed
    }

    /// Concurrent mode: marks consumed messages (by queue offset) and returns the offset
    /// now safe to commit: the smallest offset not consumed, or one past the highest
    /// offset ever put when everything was. `None` when nothing was cached at all (Java −1).
    pub fn remove_messages(&self, offsets: impl IntoIterator<Item = i64>) -> Option<i64> {
        self.remove_messages_at(offsets, Instant::now())
    }

    /// [`ProcessQueue::remove_messages`] with the time the consume call ended (`at`), which
    /// the caller already read: it becomes [`ProcessQueue::last_consume_ms`] (Java
    /// `removeMessage` sets `lastConsumeTimestamp` from a clock read of its own).
    pub fn remove_messages_at(
        &self,
        offsets: impl IntoIterator<Item = i64>,
        at: Instant,
    ) -> Option<i64> {
        let mut freed = 0usize;
        let (result, empty) = {
            let mut s = self.state();
            if s.entries.is_empty() {
                return None;
            }
            // Offsets usually come in queue order (a call's messages, consecutive calls of
            // one pull): the entry after the last one found is tried before a search.
            let mut next = 0usize;
            for o in offsets {
                let found = match s.entries.get(next) {
                    Some(e) if e.offset == o => Ok(next),
                    _ => s.entry_index(o),
                };
                if let Ok(i) = found {
                    next = i + 1;
                    if !s.entries[i].done {
                        s.entries[i].done = true;
                        freed += s.entries[i].bytes;
                        s.pending -= 1;
                    }
                }
            }
            while s.entries.front().is_some_and(|e| e.done) {
                s.entries.pop_front();
            }
            s.bytes -= freed;
            let next = s
                .entries
                .front()
                .map_or(s.queue_offset_max + 1, |e| e.offset);
            (Some(next), s.count() == 0)
        };
        self.shared_bytes.fetch_sub(freed, Ordering::Relaxed);
        self.last_consume.store(mono_ms(at), Ordering::Relaxed);
        if empty {
            self.emptied.notify_waiters();
        }
        result
    }

    /// Orderly mode: caches pulled messages, moved in (a duplicate offset is ignored).
    /// Returns `true` when a consume task should be started (messages were added and none
    /// is running); `None`, caching nothing, once the queue is [sealed](ProcessQueue::seal).
    pub fn put_messages_orderly(&self, msgs: Vec<MessageExt>) -> Option<bool> {
        let mut added = 0usize;
        let any = !msgs.is_empty();
        {
            let mut s = self.state();
            if s.sealed {
                return None;
            }
            for m in msgs {
                if s.msgs.contains_key(&m.queue_offset)
                    || s.consuming.iter().any(|(o, _)| *o == m.queue_offset)
                {
                    continue;
                }
                s.bytes += m.body.len();
                added += m.body.len();
                s.queue_offset_max = s.queue_offset_max.max(m.queue_offset);
                s.msgs.insert(m.queue_offset, m);
            }
        }
        self.shared_bytes.fetch_add(added, Ordering::Relaxed);
        Some(any && !self.consuming.swap(true, Ordering::AcqRel))
    }

    /// Orderly: hands out up to `n` messages in offset order (Java `takeMessages`), moved
    /// out; the queue remembers their offsets until [`ProcessQueue::commit`]. When none are
    /// left the consuming flag is cleared and an empty vector returned.
    pub fn take_messages(&self, n: usize) -> Vec<MessageExt> {
        let mut s = self.state();
        let mut out = Vec::with_capacity(n.min(s.msgs.len()));
        while out.len() < n {
            let Some((offset, m)) = s.msgs.pop_first() else {
                break;
            };
            s.consuming.push((offset, m.body.len()));
            out.push(m);
        }
        if out.is_empty() {
            self.consuming.store(false, Ordering::Release);
        }
        self.last_consume
            .store(mono_ms(Instant::now()), Ordering::Relaxed);
        out
    }

    /// Orderly: the taken messages were consumed; returns the offset to commit (one past
    /// the highest taken), or `None` if nothing was taken (Java `commit`).
    pub fn commit(&self) -> Option<i64> {
        let (next, freed, empty) = {
            let mut s = self.state();
            let next = s.consuming.iter().map(|(o, _)| o + 1).max();
            let freed: usize = s.consuming.iter().map(|(_, b)| b).sum();
            s.consuming.clear();
            s.bytes -= freed;
            (next, freed, s.count() == 0)
        };
        self.shared_bytes.fetch_sub(freed, Ordering::Relaxed);
        if empty {
            self.emptied.notify_waiters();
        }
        next
    }

    /// Orderly: puts taken messages back to be consumed again, with `reconsume_times`
    /// already raised by the caller (Java `makeMessageToConsumeAgain`).
    pub fn make_messages_to_consume_again(&self, msgs: Vec<MessageExt>) {
        let mut s = self.state();
        for m in msgs {
            s.consuming.retain(|(o, _)| *o != m.queue_offset);
            s.msgs.insert(m.queue_offset, m);
        }
    }

    /// Orderly: sets the consuming flag if it was clear; `true` when the caller now owns
    /// the queue's consume task.
    pub fn try_start_consuming(&self) -> bool {
        self.consuming
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Orderly: clears the consuming flag if nothing is cached; returns `true` when it was
    /// cleared (a racing `put_messages_orderly` then starts the next task).
    pub fn finish_consuming_if_idle(&self) -> bool {
        let s = self.state();
        if s.msgs.is_empty() {
            self.consuming.store(false, Ordering::Release);
            true
        } else {
            false
        }
    }

    /// Marks a listener call on this queue's messages as running until the guard drops.
    /// Take it before checking [`ProcessQueue::is_dropped`], so that whoever drops the
    /// queue and then waits in [`ProcessQueue::wait_calls_idle`] sees the call.
    pub fn begin_call(self: &Arc<Self>) -> CallGuard {
        self.calls.enter();
        CallGuard(Arc::clone(self))
    }

    /// Waits until no listener call runs on this queue, at most `timeout`; returns whether
    /// none does. Woken by the calls' guards, never polled.
    pub async fn wait_calls_idle(&self, timeout: Duration) -> bool {
        self.calls.wait_idle(timeout).await
    }

    /// Waits until nothing is cached, at most `timeout`; returns whether the cache is
    /// empty. Woken by the consume side, never polled.
    pub async fn wait_empty(&self, timeout: Duration) -> bool {
        wait_until(&self.emptied, timeout, || self.msg_count() == 0).await
    }

    /// Messages cached (including orderly ones being consumed).
    pub fn msg_count(&self) -> usize {
        self.state().count()
    }

    /// Body bytes cached.
    pub fn msg_bytes(&self) -> usize {
        self.state().bytes
    }

    /// Offset distance between the first and last cached message (Java `getMaxSpan`).
    /// In concurrent mode the last one may already be consumed (it is forgotten once the
    /// ones before it are): the span is then larger than Java's, never smaller.
    pub fn max_span(&self) -> i64 {
        self.offset_range().map_or(0, |(a, b)| b - a)
    }

    /// Smallest and largest cached offsets (orderly: of the messages not handed out).
    pub fn offset_range(&self) -> Option<(i64, i64)> {
        let s = self.state();
        match (s.entries.front(), s.entries.back()) {
            (Some(a), Some(b)) => Some((a.offset, b.offset)),
            _ => Some((*s.msgs.keys().next()?, *s.msgs.keys().next_back()?)),
        }
    }

    /// Drops every cached message (on release or reset); returns how many.
    pub fn clear(&self) -> usize {
        let (n, freed) = {
            let mut s = self.state();
            let n = s.count();
            let freed = s.bytes;
            s.entries.clear();
            s.pending = 0;
            s.msgs.clear();
            s.consuming.clear();
            s.bytes = 0;
            (n, freed)
        };
        self.shared_bytes.fetch_sub(freed, Ordering::Relaxed);
        self.emptied.notify_waiters();
        n
    }

    /// The queue was released or reset: no more pulls or consumption for this cache.
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Marks the queue dropped.
    pub fn set_dropped(&self, dropped: bool) {
        self.dropped.store(dropped, Ordering::SeqCst);
    }

    /// Orderly: the broker lock is held.
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    /// Records the broker lock state (and the time when held).
    pub fn set_locked(&self, locked: bool) {
        if locked {
            self.last_lock_ms
                .store(rmq_client_core::now_millis(), Ordering::Relaxed);
        }
        self.locked.store(locked, Ordering::Release);
    }

    /// The lock was not renewed for [`REBALANCE_LOCK_MAX_LIVE_TIME`].
    pub fn is_lock_expired(&self) -> bool {
        rmq_client_core::now_millis() - self.last_lock_ms.load(Ordering::Relaxed)
            > REBALANCE_LOCK_MAX_LIVE_TIME.as_millis() as i64
    }

    /// Records a pull.
    pub fn touch_pull(&self) {
        self.last_pull_ms
            .store(rmq_client_core::now_millis(), Ordering::Relaxed);
    }

    /// Not pulled for [`PULL_MAX_IDLE_TIME`].
    pub fn is_pull_expired(&self) -> bool {
        rmq_client_core::now_millis() - self.last_pull_ms.load(Ordering::Relaxed)
            > PULL_MAX_IDLE_TIME.as_millis() as i64
    }

    /// Last pull, ms since the epoch.
    pub fn last_pull_ms(&self) -> i64 {
        self.last_pull_ms.load(Ordering::Relaxed)
    }

    /// Last consumption (Java `lastConsumeTimestamp`), ms since the epoch: how long ago it
    /// was, on the monotonic clock, taken from the wall clock now.
    pub fn last_consume_ms(&self) -> i64 {
        let ago = mono_ms(Instant::now()) - self.last_consume.load(Ordering::Relaxed);
        rmq_client_core::now_millis() - ago.max(0)
    }

    /// Last lock, ms since the epoch.
    pub fn last_lock_ms(&self) -> i64 {
        self.last_lock_ms.load(Ordering::Relaxed)
    }

    /// Failed unlock attempts (running info).
    pub fn try_unlock_times(&self) -> i64 {
        self.try_unlock_times.load(Ordering::Relaxed)
    }

    /// Counts a failed unlock attempt.
    pub fn inc_try_unlock_times(&self) {
        self.try_unlock_times.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(offset: i64, len: usize) -> MessageExt {
        let mut m = test_msg();
        m.queue_offset = offset;
        m.body = Bytes::from(vec![0u8; len]);
        m
    }

    fn test_msg() -> MessageExt {
        MessageExt::default()
    }

    #[test]
    fn commit_offset_is_the_smallest_unconsumed() {
        let shared = Arc::new(AtomicUsize::new(0));
        let pq = ProcessQueue::new(Arc::clone(&shared));
        let msgs: Vec<_> = (10..15).map(|o| msg(o, 100)).collect();
        assert!(pq.put_messages(&msgs));
        assert!(pq.put_messages(&msgs[..2]));
        assert_eq!(pq.msg_count(), 5, "duplicates ignored");
        assert_eq!(shared.load(Ordering::Relaxed), 500);
        assert_eq!(pq.max_span(), 4);
        // 12 and 13 finish first: 10 is still unconsumed.
        assert_eq!(pq.remove_messages([12, 13]), Some(10));
        assert_eq!(
            pq.remove_messages([12]),
            Some(10),
            "removing twice frees nothing"
        );
        assert_eq!(shared.load(Ordering::Relaxed), 300);
        assert_eq!(pq.remove_messages([10]), Some(11));
        assert_eq!(pq.remove_messages([11, 14]), Some(15));
        assert_eq!(shared.load(Ordering::Relaxed), 0);
        assert_eq!(pq.remove_messages([14]), None);
    }

    #[test]
    fn offsets_in_any_order_with_gaps_and_repeats_are_each_removed_once() {
        let shared = Arc::new(AtomicUsize::new(0));
        let pq = ProcessQueue::new(Arc::clone(&shared));
        // Cached: 20..=24 and 30..=31 (a gap the broker's filter left).
        let msgs: Vec<_> = (20..25).chain(30..32).map(|o| msg(o, 10)).collect();
        assert!(pq.put_messages(&msgs));
        // Unknown 25 between known ones, 21 twice, then a jump back to 20.
        assert_eq!(pq.remove_messages([21, 25, 21, 22, 20]), Some(23));
        assert_eq!(shared.load(Ordering::Relaxed), 40, "three freed, once each");
        assert_eq!(pq.remove_messages([31, 24, 23]), Some(30));
        assert_eq!(pq.msg_count(), 1);
        assert_eq!(pq.remove_messages([29, 30]), Some(32));
        assert_eq!(shared.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn last_consume_is_when_the_call_ended() {
        let pq = ProcessQueue::new(Arc::new(AtomicUsize::new(0)));
        assert!(pq.put_messages(&[msg(1, 10), msg(2, 10)]));
        let wall = rmq_client_core::now_millis();
        let ended = Instant::now() - Duration::from_secs(5);
        assert_eq!(pq.remove_messages_at([1], ended), Some(2));
        let ago = wall - pq.last_consume_ms();
        assert!(
            (4_900..5_200).contains(&ago),
            "5 s ago, read as {ago} ms ago"
        );
        pq.remove_messages([2]);
        let ago = rmq_client_core::now_millis() - pq.last_consume_ms();
        assert!((-5..200).contains(&ago), "now, read as {ago} ms ago");
    }

    #[test]
    fn orderly_take_commit_and_retry() {
        let shared = Arc::new(AtomicUsize::new(0));
        let pq = ProcessQueue::new(Arc::clone(&shared));
        assert_eq!(
            pq.put_messages_orderly((0..4).map(|o| msg(o, 10)).collect::<Vec<_>>()),
            Some(true)
        );
        assert_eq!(
            pq.put_messages_orderly(vec![msg(4, 10)]),
            Some(false),
            "a consume task is already running"
        );
        let taken = pq.take_messages(2);
        assert_eq!(
            taken.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
            [0, 1]
        );
        pq.make_messages_to_consume_again(taken);
        let taken = pq.take_messages(3);
        assert_eq!(
            taken.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(pq.commit(), Some(3));
        assert_eq!(shared.load(Ordering::Relaxed), 20);
        assert_eq!(pq.take_messages(5).len(), 2);
        assert_eq!(pq.commit(), Some(5));
        assert!(pq.take_messages(1).is_empty());
        assert_eq!(
            pq.put_messages_orderly(vec![msg(5, 1)]),
            Some(true),
            "flag cleared once empty"
        );
    }

    #[test]
    fn out_of_order_puts_keep_the_commit_offset_exact() {
        let pq = ProcessQueue::new(Arc::new(AtomicUsize::new(0)));
        assert!(pq.put_messages(&[msg(20, 1), msg(22, 1)]));
        // A message older than the last one put (a local retry re-put, say) slots in.
        assert!(pq.put_messages(&[msg(21, 1)]));
        assert_eq!(pq.remove_messages([20, 22]), Some(21));
        assert_eq!(pq.offset_range(), Some((21, 22)));
        assert_eq!(pq.remove_messages([21]), Some(23));
    }

    #[test]
    fn a_sealed_queue_refuses_puts_and_keeps_what_it_has() {
        let shared = Arc::new(AtomicUsize::new(0));
        let pq = ProcessQueue::new(Arc::clone(&shared));
        assert!(pq.put_messages(&[msg(1, 10)]));
        pq.seal();
        assert!(pq.is_sealed());
        assert!(!pq.put_messages(&[msg(2, 10)]), "a drain began");
        assert_eq!(pq.msg_count(), 1);
        assert_eq!(shared.load(Ordering::Relaxed), 10);
        assert_eq!(
            pq.remove_messages([1]),
            Some(2),
            "what it had is still consumed"
        );
        let orderly = ProcessQueue::new(Arc::new(AtomicUsize::new(0)));
        orderly.seal();
        assert_eq!(orderly.put_messages_orderly(vec![msg(1, 1)]), None);
        assert_eq!(orderly.msg_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_is_woken_when_the_last_message_is_consumed() {
        let pq = Arc::new(ProcessQueue::new(Arc::new(AtomicUsize::new(0))));
        assert!(pq.put_messages(&[msg(1, 1), msg(2, 1)]));
        let waiter = tokio::spawn({
            let pq = Arc::clone(&pq);
            async move { pq.wait_empty(Duration::from_secs(60)).await }
        });
        tokio::task::yield_now().await;
        pq.remove_messages([1]);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one message is still cached");
        pq.remove_messages([2]);
        assert!(waiter.await.unwrap(), "woken, not timed out");
        assert!(
            pq.wait_empty(Duration::from_millis(1)).await,
            "already empty"
        );
    }
}
