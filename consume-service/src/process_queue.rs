//! [`ProcessQueue`] (Java `ProcessQueue`): the messages pulled from one queue and not yet
//! consumed, and the offset that is safe to commit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmq_client_core::MessageExt;

/// How long a broker lock is trusted without renewal (Java `REBALANCE_LOCK_MAX_LIVE_TIME`, 30 s).
pub const REBALANCE_LOCK_MAX_LIVE_TIME: Duration = Duration::from_millis(30_000);
/// A queue not pulled for this long is considered stuck (Java `PULL_MAX_IDLE_TIME`, 120 s).
pub const PULL_MAX_IDLE_TIME: Duration = Duration::from_millis(120_000);

#[derive(Default)]
struct State {
    /// Cached messages by queue offset, not yet handed out (orderly) or not yet consumed.
    msgs: BTreeMap<i64, MessageExt>,
    /// Orderly: taken by the running listener call, not yet committed.
    consuming: BTreeMap<i64, MessageExt>,
    /// Body bytes of `msgs` + `consuming`.
    bytes: usize,
    /// Highest offset ever put.
    queue_offset_max: i64,
}

/// The cache of one owned queue: messages by offset, their count and body bytes, and the
/// flags of its life cycle. Shared by the pull task and the consume tasks.
///
/// The commit offset is always the smallest offset not yet consumed, so an offset never
/// moves past a message that was not consumed, whatever order batches finish in.
#[derive(Debug)]
pub struct ProcessQueue {
    state: Mutex<State>,
    /// Body bytes cached across every queue of the consumer (the memory budget).
    shared_bytes: Arc<AtomicUsize>,
    dropped: AtomicBool,
    locked: AtomicBool,
    consuming: AtomicBool,
    last_pull_ms: AtomicI64,
    last_consume_ms: AtomicI64,
    last_lock_ms: AtomicI64,
    try_unlock_times: AtomicI64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("cached", &self.msgs.len())
            .field("consuming", &self.consuming.len())
            .field("bytes", &self.bytes)
            .field("queue_offset_max", &self.queue_offset_max)
            .finish()
    }
}

impl ProcessQueue {
    /// An empty queue cache adding its bytes to `shared_bytes`.
    pub fn new(shared_bytes: Arc<AtomicUsize>) -> Self {
        let now = rmq_client_core::now_millis();
        ProcessQueue {
            state: Mutex::new(State::default()),
            shared_bytes,
            dropped: AtomicBool::new(false),
            locked: AtomicBool::new(false),
            consuming: AtomicBool::new(false),
            last_pull_ms: AtomicI64::new(now),
            last_consume_ms: AtomicI64::new(now),
            last_lock_ms: AtomicI64::new(0),
            try_unlock_times: AtomicI64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caches pulled messages (duplicates by offset are ignored). Returns `true` when an
    /// orderly consume task should be started (messages were added and none is running).
    pub fn put_messages(&self, msgs: &[MessageExt]) -> bool {
        let mut added = 0usize;
        {
            let mut s = self.state();
            for m in msgs {
                if s.msgs.contains_key(&m.queue_offset) || s.consuming.contains_key(&m.queue_offset)
                {
                    continue;
                }
                s.bytes += m.body.len();
                added += m.body.len();
                s.queue_offset_max = s.queue_offset_max.max(m.queue_offset);
                s.msgs.insert(m.queue_offset, m.clone());
            }
        }
        self.shared_bytes.fetch_add(added, Ordering::Relaxed);
        !msgs.is_empty() && !self.consuming.swap(true, Ordering::AcqRel)
    }

    /// Removes consumed messages (by queue offset) and returns the offset now safe to
    /// commit: the smallest cached offset, or one past the highest offset ever put when
    /// nothing is cached. `None` when nothing was cached at all (Java −1).
    pub fn remove_messages(&self, offsets: &[i64]) -> Option<i64> {
        let mut freed = 0usize;
        let result = {
            let mut s = self.state();
            if s.msgs.is_empty() {
                return None;
            }
            for o in offsets {
                if let Some(m) = s.msgs.remove(o) {
                    freed += m.body.len();
                }
            }
            s.bytes -= freed;
            let next = s
                .msgs
                .keys()
                .next()
                .copied()
                .unwrap_or(s.queue_offset_max + 1);
            Some(next)
        };
        self.shared_bytes.fetch_sub(freed, Ordering::Relaxed);
        self.last_consume_ms
            .store(rmq_client_core::now_millis(), Ordering::Relaxed);
        result
    }

    /// Orderly: hands out up to `n` messages in offset order (Java `takeMessages`). When
    /// none are left the consuming flag is cleared and an empty vector returned.
    pub fn take_messages(&self, n: usize) -> Vec<MessageExt> {
        let mut s = self.state();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some((offset, m)) = s.msgs.pop_first() else {
                break;
            };
            s.consuming.insert(offset, m.clone());
            out.push(m);
        }
        if out.is_empty() {
            self.consuming.store(false, Ordering::Release);
        }
        self.last_consume_ms
            .store(rmq_client_core::now_millis(), Ordering::Relaxed);
        out
    }

    /// Orderly: the taken messages were consumed; returns the offset to commit (one past
    /// the highest taken), or `None` if nothing was taken (Java `commit`).
    pub fn commit(&self) -> Option<i64> {
        let (next, freed) = {
            let mut s = self.state();
            let next = s.consuming.keys().next_back().map(|o| o + 1);
            let freed: usize = s.consuming.values().map(|m| m.body.len()).sum();
            s.consuming.clear();
            s.bytes -= freed;
            (next, freed)
        };
        self.shared_bytes.fetch_sub(freed, Ordering::Relaxed);
        next
    }

    /// Orderly: puts taken messages back to be consumed again, with `reconsume_times`
    /// already raised by the caller (Java `makeMessageToConsumeAgain`).
    pub fn make_messages_to_consume_again(&self, msgs: &[MessageExt]) {
        let mut s = self.state();
        for m in msgs {
            s.consuming.remove(&m.queue_offset);
            s.msgs.insert(m.queue_offset, m.clone());
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
    /// cleared (a racing `put_messages` then starts the next task).
    pub fn finish_consuming_if_idle(&self) -> bool {
        let s = self.state();
        if s.msgs.is_empty() {
            self.consuming.store(false, Ordering::Release);
            true
        } else {
            false
        }
    }

    /// Messages cached (including orderly ones being consumed).
    pub fn msg_count(&self) -> usize {
        let s = self.state();
        s.msgs.len() + s.consuming.len()
    }

    /// Body bytes cached.
    pub fn msg_bytes(&self) -> usize {
        self.state().bytes
    }

    /// Offset distance between the first and last cached message (Java `getMaxSpan`).
    pub fn max_span(&self) -> i64 {
        let s = self.state();
        match (s.msgs.keys().next(), s.msgs.keys().next_back()) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        }
    }

    /// Smallest and largest cached offsets.
    pub fn offset_range(&self) -> Option<(i64, i64)> {
        let s = self.state();
        Some((*s.msgs.keys().next()?, *s.msgs.keys().next_back()?))
    }

    /// Drops every cached message (on release or reset); returns how many.
    pub fn clear(&self) -> usize {
        let (n, freed) = {
            let mut s = self.state();
            let n = s.msgs.len() + s.consuming.len();
            let freed = s.bytes;
            s.msgs.clear();
            s.consuming.clear();
            s.bytes = 0;
            (n, freed)
        };
        self.shared_bytes.fetch_sub(freed, Ordering::Relaxed);
        n
    }

    /// The queue was released or reset: no more pulls or consumption for this cache.
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// Marks the queue dropped.
    pub fn set_dropped(&self, dropped: bool) {
        self.dropped.store(dropped, Ordering::Release);
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

    /// Last consumption, ms since the epoch.
    pub fn last_consume_ms(&self) -> i64 {
        self.last_consume_ms.load(Ordering::Relaxed)
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
        MessageExt {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: 0,
            queue_offset: 0,
            commit_log_offset: 0,
            store_size: 0,
            flag: 0,
            sys_flag: 0,
            body_crc: 0,
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 0,
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            properties: Default::default(),
            body: Bytes::new(),
            offset_msg_id: String::new(),
        }
    }

    #[test]
    fn commit_offset_is_the_smallest_unconsumed() {
        let shared = Arc::new(AtomicUsize::new(0));
        let pq = ProcessQueue::new(Arc::clone(&shared));
        let msgs: Vec<_> = (10..15).map(|o| msg(o, 100)).collect();
        pq.put_messages(&msgs);
        assert_eq!(pq.msg_count(), 5);
        assert_eq!(shared.load(Ordering::Relaxed), 500);
        assert_eq!(pq.max_span(), 4);
        // 12 and 13 finish first: 10 is still unconsumed.
        assert_eq!(pq.remove_messages(&[12, 13]), Some(10));
        assert_eq!(pq.remove_messages(&[10]), Some(11));
        assert_eq!(pq.remove_messages(&[11, 14]), Some(15));
        assert_eq!(shared.load(Ordering::Relaxed), 0);
        assert_eq!(pq.remove_messages(&[14]), None);
    }

    #[test]
    fn orderly_take_commit_and_retry() {
        let shared = Arc::new(AtomicUsize::new(0));
        let pq = ProcessQueue::new(Arc::clone(&shared));
        assert!(pq.put_messages(&(0..4).map(|o| msg(o, 10)).collect::<Vec<_>>()));
        assert!(
            !pq.put_messages(&[msg(4, 10)]),
            "a consume task is already running"
        );
        let taken = pq.take_messages(2);
        assert_eq!(
            taken.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
            [0, 1]
        );
        pq.make_messages_to_consume_again(&taken);
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
        assert!(pq.put_messages(&[msg(5, 1)]), "flag cleared once empty");
    }
}
