//! [`ShutdownReport`]: what a consumer's shutdown did.

use std::fmt;

/// What a consumer's `shutdown()` did, step by step (the push consumer and both pull
/// consumers return one). A clean stop has `messages_left == 0`, `offsets_persisted`, and
/// nothing timed out. Java's `shutdown()` returns nothing and logs what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// `false` when this call did nothing because the consumer was already shut down.
    pub performed: bool,
    /// Queues owned when the shutdown began.
    pub queues: usize,
    /// Messages still cached (pulled, not consumed — for the lite pull consumer: not yet
    /// polled) when the consumer stopped; they are delivered again to the next owner.
    pub messages_left: usize,
    /// Whether the drain of cached messages ran out of time.
    pub drain_timed_out: bool,
    /// Whether listener calls were still running after `await_termination_when_shutdown`.
    pub listener_calls_timed_out: bool,
    /// Whether the offsets of every owned queue were persisted (committed to the broker, or
    /// written to the local file). A lite pull consumer without auto-commit persists nothing
    /// at shutdown: `false`.
    pub offsets_persisted: bool,
    /// Whether the consumer's own tasks (pull loops, rebalance, locks) ended in time.
    pub tasks_stopped: bool,
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.performed {
            return write!(f, "already shut down");
        }
        write!(
            f,
            "{} queues released, {} cached messages left{}, offsets {}, listener calls {}, tasks {}",
            self.queues,
            self.messages_left,
            if self.drain_timed_out {
                " (drain timed out)"
            } else {
                ""
            },
            if self.offsets_persisted {
                "persisted"
            } else {
                "NOT persisted"
            },
            if self.listener_calls_timed_out {
                "still running at the deadline"
            } else {
                "finished"
            },
            if self.tasks_stopped {
                "stopped"
            } else {
                "still running at the deadline"
            },
        )
    }
}
