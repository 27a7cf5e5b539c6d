//! [`PopReceipt`]: a popped message's receipt handle, with what it takes to act on it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::kernel::PopKernel;
use super::wire::ReceiptHandle;
use crate::error::ClientError;

/// The receipt of a popped message (Java: the `POP_CK` property): its current
/// [`ReceiptHandle`], the topic it was popped from, and the consumer that popped it.
///
/// Clones of a message share one receipt: when [`PopReceipt::change_invisible_time`]
/// gets a new handle from the broker (the old one is dead from then on), every clone
/// acknowledges with the new one.
#[derive(Clone)]
pub struct PopReceipt {
    inner: Arc<Inner>,
}

struct Inner {
    handle: ArcSwap<ReceiptHandle>,
    /// The (namespaced) normal topic the message was popped from.
    topic: Arc<str>,
    kernel: Weak<PopKernel>,
}

impl PopReceipt {
    pub(crate) fn new(handle: ReceiptHandle, topic: Arc<str>, kernel: Weak<PopKernel>) -> Self {
        PopReceipt {
            inner: Arc::new(Inner {
                handle: ArcSwap::from_pointee(handle),
                topic,
                kernel,
            }),
        }
    }

    /// The current handle.
    pub fn handle(&self) -> Arc<ReceiptHandle> {
        self.inner.handle.load_full()
    }

    pub(crate) fn replace(&self, handle: ReceiptHandle) {
        self.inner.handle.store(Arc::new(handle));
    }

    /// The (namespaced) topic the message was popped from.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Whether the handle's invisible time has run out at `now_ms` (ms since the epoch):
    /// the broker may have handed the message to another consumer by now.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        let h = self.inner.handle.load();
        now_ms - h.pop_time >= h.invisible_time
    }

    fn kernel(&self) -> Result<Arc<PopKernel>, ClientError> {
        self.inner.kernel.upgrade().ok_or(ClientError::Shutdown)
    }

    /// Acknowledges the message (ACK_MESSAGE): consumed, never delivered again. `Ok(false)`
    /// when the broker no longer holds its offset.
    ///
    /// # Errors
    /// [`ClientError::Shutdown`] once the consumer is gone; the request's errors.
    pub async fn ack(&self) -> Result<bool, ClientError> {
        self.kernel()?.ack_one(self).await
    }

    /// Keeps the message invisible for `invisible` from now on
    /// (CHANGE_MESSAGE_INVISIBLETIME; ms precision): to keep working on a slow message
    /// (`in_progress`), or to have it redelivered after `invisible` (`nack`). The receipt
    /// takes the new handle the broker answers.
    ///
    /// # Errors
    /// [`ClientError::Shutdown`] once the consumer is gone; the request's errors
    /// (NO_MESSAGE when the handle was already used or the message left the queue).
    pub async fn change_invisible_time(&self, invisible: Duration) -> Result<(), ClientError> {
        self.kernel()?.change_invisible_time(self, invisible).await
    }
}

impl PartialEq for PopReceipt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.handle() == other.handle() && self.topic() == other.topic())
    }
}

impl Eq for PopReceipt {}

impl std::fmt::Debug for PopReceipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopReceipt")
            .field("handle", &self.handle().as_str())
            .field("topic", &self.topic())
            .finish()
    }
}
