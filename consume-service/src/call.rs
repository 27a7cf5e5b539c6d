//! One guarded listener call: Java's consume timeout, a panic caught, the latency recorded.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use futures::FutureExt;

/// How a listener call ended.
pub(crate) enum CallOutcome<T> {
    /// It returned this.
    Returned(T),
    /// It panicked (Java: an exception thrown by the listener).
    Panicked,
    /// It ran past `consumeTimeout`.
    TimedOut,
}

/// Runs `call` (a listener call), at most `timeout`, catching a panic, and records its
/// latency in `latency`; returns how it ended, that latency (Java's consume RT: from the
/// listener's start to its return, nothing after) and when it ended (the clock reading
/// the latency came from, for callers that also need "now"). A call that is done on its first poll
/// (most in-memory handlers) never arms a timer: the timer wheel is touched only by calls
/// that actually wait.
pub(crate) async fn guarded<F: Future>(
    timeout: Duration,
    latency: &metrics::Histogram,
    call: F,
) -> (CallOutcome<F::Output>, Duration, std::time::Instant) {
    let (outcome, ended) = guarded_from(timeout, latency, call, Start::Now, false, || None).await;
    match ended {
        Ended::Read(rt, ended) => (outcome, rt, ended.into_std()),
        Ended::Unread { .. } => unreachable!("nothing is left unread without `defer`"),
    }
}

/// Where the latency of a call that a consume task runs starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// A clock reading taken now.
    Now,
    /// This reading: the end of the call just before on the same task, which did not wait
    /// in between, or the reading a settle of earlier calls took just before. The latency
    /// then also holds the task's hand-over from one call to the next (a microsecond or
    /// less, which may include that settling); Java measures the latency with
    /// `System.currentTimeMillis`, a millisecond's resolution.
    At(Instant),
    /// Not read: the calls just before on the same task were done on their first poll and
    /// the clock was not read after them; the next reading is charged to them together
    /// (the concurrent service's `Done`). This call starts at that reading; for a call that
    /// waits, that is the reading `on_wait` takes after its first poll, so the work before
    /// its first await goes to the calls before it.
    Chained,
}

/// How the end of a call was taken.
pub(crate) enum Ended {
    /// The clock was read when the call ended: its latency (recorded) and that reading.
    Read(Duration, Instant),
    /// The call was done on its first poll and, as asked (`defer`), the clock was not read
    /// after it, nor its latency recorded: the caller charges it with the next reading.
    /// `started` is its start when one was read (`Start::Now`, `Start::At`).
    Unread { started: Option<Instant> },
}

/// [`guarded`] for a consume task running calls back to back. `start` says where the
/// latency starts. With `defer`, a call done on its first poll ends [`Ended::Unread`]: the
/// clock reads and the arithmetic around them were about a quarter of the concurrent
/// service's own cost per message with Java's one message per call (its bench: 168 ns a
/// message with a reading per call, 125 ns with one per run). `on_wait` runs
/// (synchronously, once) when the call does not finish on its first poll, before it
/// waits; it may return a clock reading it took, which a `Start::Chained` call then starts
/// from.
pub(crate) async fn guarded_from<F: Future>(
    timeout: Duration,
    latency: &metrics::Histogram,
    call: F,
    start: Start,
    defer: bool,
    on_wait: impl FnOnce() -> Option<Instant>,
) -> (CallOutcome<F::Output>, Ended) {
    let mut started = match start {
        Start::Now => Some(Instant::now()),
        Start::At(t) => Some(t),
        Start::Chained => None,
    };
    let call = AssertUnwindSafe(call).catch_unwind();
    tokio::pin!(call);
    let result = match futures::poll!(call.as_mut()) {
        Poll::Ready(r) if defer => return (outcome_of(Some(r)), Ended::Unread { started }),
        Poll::Ready(r) => Some(r),
        Poll::Pending => {
            let reading = on_wait();
            started = started.or(reading).or_else(|| Some(Instant::now()));
            tokio::time::timeout(timeout, call).await.ok()
        }
    };
    let ended = Instant::now();
    let elapsed = ended - started.unwrap_or(ended);
    latency.record(elapsed.as_secs_f64());
    (outcome_of(result), Ended::Read(elapsed, ended))
}

fn outcome_of<T>(result: Option<std::thread::Result<T>>) -> CallOutcome<T> {
    match result {
        Some(Ok(v)) => CallOutcome::Returned(v),
        Some(Err(_)) => CallOutcome::Panicked,
        None => CallOutcome::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram() -> metrics::Histogram {
        metrics::Histogram::noop()
    }

    #[tokio::test(start_paused = true)]
    async fn returns_panics_and_timeouts_are_told_apart() {
        let h = histogram();
        let t = Duration::from_secs(60);
        assert!(matches!(
            guarded(t, &h, async { 7 }).await.0,
            CallOutcome::Returned(7)
        ));
        let waits_then_returns = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            8
        };
        let (outcome, elapsed, _) = guarded(t, &h, waits_then_returns).await;
        assert!(matches!(outcome, CallOutcome::Returned(8)));
        assert_eq!(elapsed, Duration::from_secs(1), "the call's own time");
        assert!(matches!(
            guarded(t, &h, async { panic!("listener bug") }).await.0,
            CallOutcome::<()>::Panicked
        ));
        let started = tokio::time::Instant::now();
        assert!(matches!(
            guarded(t, &h, std::future::pending::<()>()).await.0,
            CallOutcome::TimedOut
        ));
        assert_eq!(started.elapsed(), t, "timed out at the consume timeout");
    }
}
