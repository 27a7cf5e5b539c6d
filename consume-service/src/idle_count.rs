//! [`IdleCount`]: things in progress (listener calls, results being settled) that a
//! shutdown or a queue drop waits to reach zero.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::process_queue::wait_until;

/// A count of things in progress and a wait for none.
///
/// Entering and leaving are one atomic operation each, plus a load on the leave that
/// reaches zero; the wake-up (a lock inside [`Notify`]) is sent only while someone waits in
/// [`IdleCount::wait_idle`], so the common case of a call per message never touches it.
#[derive(Debug, Default)]
pub(crate) struct IdleCount {
    count: AtomicUsize,
    /// Tasks inside [`IdleCount::wait_idle`].
    waiters: AtomicUsize,
    idle: Notify,
}

/// Unregisters a waiter however its wait ends (returned, timed out, cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl IdleCount {
    /// One more in progress.
    pub(crate) fn enter(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// One fewer in progress; wakes the waiters when it was the last.
    pub(crate) fn leave(&self) {
        // Sequentially consistent with `wait_idle`'s registration and check: either the
        // waiter sees the count at zero or this sees the waiter (and the waiter's wake-up
        // was registered before its check).
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 && self.waiters.load(Ordering::SeqCst) > 0
        {
            self.idle.notify_waiters();
        }
    }

    /// Waits until nothing is in progress, at most `timeout`; `true` when nothing is.
    /// Woken by the last [`IdleCount::leave`], never polled.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiters);
        wait_until(&self.idle, timeout, || {
            self.count.load(Ordering::SeqCst) == 0
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_waiter_is_woken_by_the_last_leave_and_times_out_otherwise() {
        let c = Arc::new(IdleCount::default());
        assert!(c.wait_idle(Duration::from_secs(1)).await, "idle at once");
        c.enter();
        c.enter();
        let started = tokio::time::Instant::now();
        assert!(
            !c.wait_idle(Duration::from_secs(2)).await,
            "two in progress"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(
            c.waiters.load(Ordering::SeqCst),
            0,
            "a timed-out waiter unregisters"
        );
        let leaver = {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                c.leave();
                tokio::time::sleep(Duration::from_millis(300)).await;
                c.leave();
            })
        };
        let started = tokio::time::Instant::now();
        assert!(c.wait_idle(Duration::from_secs(60)).await);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(600),
            "woken by the last leave, not the first"
        );
        leaver.await.unwrap();
    }

    #[test]
    fn leaves_racing_a_waiter_on_threads_never_lose_the_wake_up() {
        // Many rounds of one waiter against one leaver on separate threads: a lost wake-up
        // would leave the waiter asleep until its (long) timeout and fail the round.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..2000 {
                let c = Arc::new(IdleCount::default());
                c.enter();
                let leaver = {
                    let c = Arc::clone(&c);
                    tokio::spawn(async move { c.leave() })
                };
                assert!(c.wait_idle(Duration::from_secs(10)).await);
                leaver.await.unwrap();
            }
        });
    }
}
