//! [`PopProcessQueue`] (Java `PopProcessQueue`): what a pop-mode queue has handed to the
//! listener and not yet settled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use rmq_client_core::MessageExt;
use rmq_client_core::pop::PopKernel;
use tokio::sync::Notify;

use crate::process_queue::wait_until;

/// One pop-mode queue (a queue id, or −1 for all of a broker's queues of the topic): the
/// popped messages not yet acknowledged or delayed (Java `waitAckCounter`) and their body
/// bytes, which count against the consumer's memory budget, and the [`PopKernel`] that
/// settles them. There are no offsets: the broker keeps them.
#[derive(Debug)]
pub struct PopProcessQueue {
    kernel: Arc<PopKernel>,
    wait_ack: AtomicUsize,
    bytes: AtomicUsize,
    shared_bytes: Arc<AtomicUsize>,
    sealed: AtomicBool,
    dropped: AtomicBool,
    last_pop_ms: AtomicI64,
    /// Woken whenever nothing is left to settle (drains wait on it).
    emptied: Notify,
}

impl PopProcessQueue {
    /// An empty queue settling through `kernel`, adding its bytes to `shared_bytes`.
    pub fn new(kernel: Arc<PopKernel>, shared_bytes: Arc<AtomicUsize>) -> Self {
        PopProcessQueue {
            kernel,
            wait_ack: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            shared_bytes,
            sealed: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            last_pop_ms: AtomicI64::new(rmq_client_core::now_millis()),
            emptied: Notify::new(),
        }
    }

    /// The kernel that acknowledges and delays this queue's messages.
    pub fn kernel(&self) -> &Arc<PopKernel> {
        &self.kernel
    }

    /// Counts popped messages in; `false` (nothing counted) once sealed: the caller then
    /// leaves them unconsumed, to come back after their invisible time.
    pub fn put(&self, msgs: &[MessageExt]) -> bool {
        if self.sealed.load(Ordering::SeqCst) {
            return false;
        }
        let bytes: usize = msgs.iter().map(|m| m.body.len()).sum();
        self.wait_ack.fetch_add(msgs.len(), Ordering::SeqCst);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.shared_bytes.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    /// Counts settled (acknowledged, delayed or abandoned) messages out.
    pub fn done<'a>(&self, msgs: impl IntoIterator<Item = &'a MessageExt>) {
        let (mut n, mut bytes) = (0, 0);
        for m in msgs {
            n += 1;
            bytes += m.body.len();
        }
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.shared_bytes.fetch_sub(bytes, Ordering::Relaxed);
        if n > 0 && self.wait_ack.fetch_sub(n, Ordering::SeqCst) == n {
            self.emptied.notify_waiters();
        }
    }

    /// Messages popped and not yet settled (Java `waitAckCounter`).
    pub fn wait_ack_count(&self) -> usize {
        self.wait_ack.load(Ordering::SeqCst)
    }

    /// Their body bytes.
    pub fn msg_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Lets nothing more in (a drain began).
    pub fn seal(&self) {
        self.sealed.store(true, Ordering::SeqCst);
    }

    /// Waits until nothing is left to settle, at most `timeout`; woken, never polled.
    pub async fn wait_empty(&self, timeout: Duration) -> bool {
        wait_until(&self.emptied, timeout, || self.wait_ack_count() == 0).await
    }

    /// Whether the queue was given up (no more pops).
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Gives the queue up (or takes it back).
    pub fn set_dropped(&self, dropped: bool) {
        self.dropped.store(dropped, Ordering::SeqCst);
    }

    /// Records a pop now.
    pub fn touch_pop(&self) {
        self.last_pop_ms
            .store(rmq_client_core::now_millis(), Ordering::Relaxed);
    }

    /// When it was last popped, ms since the epoch (Java `lastPopTimestamp`).
    pub fn last_pop_ms(&self) -> i64 {
        self.last_pop_ms.load(Ordering::Relaxed)
    }
}
