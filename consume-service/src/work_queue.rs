//! [`WorkQueue`]: the bounded queue between the pull tasks and the consume tasks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore};

/// Items a push takes room for at once, at most (a pull's 32 calls at Java's defaults).
const PUSH_CHUNK: usize = 64;

/// A bounded multi-producer, multi-consumer queue that allocates nothing per item: the
/// ring is sized up front, and waiting on either side uses Tokio's intrusive waiter lists
/// (`Semaphore` for space, `Notify` for items). (`async-channel` and `flume` box a
/// listener each time a receiver waits, which is once per item when consume tasks idle.)
/// The lock is never held across an `.await`.
///
/// How consumers are woken depends on the runtime. With several worker threads, a consumer
/// that takes an item and sees more wakes the next one at once, so that calls run in
/// parallel (`eager`). With one thread, a second consumer can only help while the first
/// one waits: the consumer that takes an item wakes the next one only when its work is
/// about to wait ([`WorkQueue::wake_next`]); a burst of fast calls is then run by one task
/// without a task switch per item.
#[derive(Debug)]
pub(crate) struct WorkQueue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    space: Semaphore,
    ready: Notify,
    closed: AtomicBool,
    eager: bool,
}

impl<T> WorkQueue<T> {
    /// A queue holding at most `capacity` items; `eager`: wake the next consumer whenever
    /// items are left (see [`WorkQueue`]).
    pub(crate) fn new(capacity: usize, eager: bool) -> Self {
        WorkQueue {
            items: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity: capacity.max(1),
            space: Semaphore::new(capacity.max(1)),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            eager,
        }
    }

    /// A consumer's work is about to wait: in the one-thread mode, another consumer is
    /// woken when items are waiting (in the eager mode it already was).
    pub(crate) fn wake_next(&self) {
        if !self.eager && !self.items().is_empty() {
            self.ready.notify_one();
        }
    }

    fn items(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `items` in order, waiting while the queue is full: room for up to
    /// [`PUSH_CHUNK`] of them is taken at once and they go in under one lock, so a pull's
    /// calls cost a hand-over or two, not one each (and a large pull never waits for a
    /// nearly empty queue while other pulls wait behind it). `false` once the queue is
    /// closed (what was not added is dropped).
    pub(crate) async fn push_all(&self, mut items: impl ExactSizeIterator<Item = T>) -> bool {
        while items.len() > 0 {
            let n = items.len().min(self.capacity).min(PUSH_CHUNK);
            // `n` is at most PUSH_CHUNK.
            match self.space.acquire_many(n as u32).await {
                Ok(permits) => permits.forget(),
                Err(_) => return false,
            }
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            let was_empty = {
                let mut queued = self.items();
                let was_empty = queued.is_empty();
                queued.extend(items.by_ref().take(n));
                was_empty
            };
            // Only the first items wake a consumer. Then, with several threads, each consumer
            // that takes an item and sees more wakes the next (see `try_pop`); with one
            // thread, a consumer wakes the next when its work waits (`wake_next`). A burst
            // of n items thus wakes consumers as fast as they are needed, not n at once (a
            // wake-up costs more than a fast call).
            if was_empty {
                self.ready.notify_one();
            }
        }
        true
    }

    /// The oldest item, waiting while the queue is empty; `None` once it is closed.
    pub(crate) async fn pop(&self) -> Option<T> {
        // Taken without registering as a waiter when an item is there (the usual case under
        // load): registering and unregistering cost two more lock round trips per item.
        if let Some(taken) = self.try_pop() {
            return taken;
        }
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            // Checked again after registering, so a push in between is not missed.
            if let Some(taken) = self.try_pop() {
                return taken;
            }
            ready.await;
        }
    }

    /// `Some(Some(item))`: the oldest item; `Some(None)`: closed; `None`: empty.
    pub(crate) fn try_pop(&self) -> Option<Option<T>> {
        if self.closed.load(Ordering::Acquire) {
            return Some(None);
        }
        let (item, more) = {
            let mut items = self.items();
            let item = items.pop_front()?;
            (item, !items.is_empty())
        };
        self.space.add_permits(1);
        if more && self.eager {
            self.ready.notify_one();
        }
        Some(Some(item))
    }

    /// Closes the queue: waiting and later pushes fail, pops return `None`, queued items are
    /// dropped.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.space.close();
        self.ready.notify_waiters();
        let dropped = std::mem::take(&mut *self.items());
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn bounded_fifo_with_waiting_on_both_sides() {
        let q = Arc::new(WorkQueue::new(2, true));
        assert!(q.push_all([1, 2].into_iter()).await);
        let pusher = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.push_all(std::iter::once(3)).await }
        });
        tokio::task::yield_now().await;
        assert!(!pusher.is_finished(), "full: the third push waits");
        assert_eq!(q.pop().await, Some(1));
        assert!(pusher.await.unwrap());
        assert_eq!(q.pop().await, Some(2));
        assert_eq!(q.pop().await, Some(3));
        let popper = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.pop().await }
        });
        tokio::task::yield_now().await;
        assert!(!popper.is_finished(), "empty: the pop waits");
        assert!(q.push_all(std::iter::once(4)).await);
        assert_eq!(popper.await.unwrap(), Some(4));
    }

    #[tokio::test(start_paused = true)]
    async fn more_items_than_room_go_in_as_room_appears_in_order() {
        let q = Arc::new(WorkQueue::new(2, false));
        let pusher = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.push_all(1..6).await }
        });
        tokio::task::yield_now().await;
        assert!(!pusher.is_finished(), "room for two of five");
        assert_eq!(q.items().len(), 2);
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(q.pop().await.unwrap());
            tokio::task::yield_now().await;
            assert!(q.items().len() <= 2, "never over the capacity");
        }
        assert!(pusher.await.unwrap());
        assert_eq!(got, [1, 2, 3, 4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn close_wakes_everyone_and_drops_the_rest() {
        let q = Arc::new(WorkQueue::new(1, true));
        let poppers: Vec<_> = (0..3)
            .map(|_| {
                let q = Arc::clone(&q);
                tokio::spawn(async move { q.pop().await })
            })
            .collect();
        tokio::task::yield_now().await;
        q.close();
        for p in poppers {
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(1), p)
                    .await
                    .unwrap()
                    .unwrap(),
                None
            );
        }
        assert!(!q.push_all(std::iter::once(9)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn one_thread_mode_wakes_the_next_consumer_only_when_asked() {
        for eager in [true, false] {
            let q = Arc::new(WorkQueue::new(8, eager));
            // Two waiting consumers, three items pushed while both wait: the first push
            // wakes one; in the lazy mode it does not wake the other on taking its item.
            let spawn_pop = |q: &Arc<WorkQueue<i32>>| {
                let q = Arc::clone(q);
                tokio::spawn(async move { q.pop().await })
            };
            let (a, b) = (spawn_pop(&q), spawn_pop(&q));
            tokio::task::yield_now().await;
            for i in 3..6 {
                assert!(q.push_all(std::iter::once(i)).await);
            }
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            let done = usize::from(a.is_finished()) + usize::from(b.is_finished());
            if eager {
                assert_eq!(done, 2, "eager: the taker woke the other consumer");
            } else {
                assert_eq!(done, 1, "lazy: only the first push's wake-up");
                q.wake_next();
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                assert!(a.is_finished() && b.is_finished(), "woken when asked");
            }
            assert!(a.await.unwrap().is_some() && b.await.unwrap().is_some());
            assert!(q.pop().await.is_some(), "one item left");
        }
    }
}
