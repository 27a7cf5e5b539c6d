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
    let (outcome, rt, ended) = guarded_from(timeout, latency, call, None, || {}).await;
    (outcome, rt, ended.into_std())
}

/// [`guarded`], with two additions for a consume task running calls back to back:
/// `started`, when given, is taken as the call's start instead of a clock read (the end of
/// the call just before, on the same task, which did not wait in between: the latency then
/// also holds the task's hand-over from one call to the next, a microsecond or less, which
/// may include settling the previous calls when the next one comes from another pull; Java
/// measures the latency with `System.currentTimeMillis`, a millisecond's resolution), and
/// `on_wait` runs (synchronously, once) when the call does not finish on its first poll,
/// before it waits. Returns the end as a Tokio instant, to be the next call's start.
pub(crate) async fn guarded_from<F: Future>(
    timeout: Duration,
    latency: &metrics::Histogram,
    call: F,
    started: Option<Instant>,
    on_wait: impl FnOnce(),
) -> (CallOutcome<F::Output>, Duration, Instant) {
    let started = started.unwrap_or_else(Instant::now);
    let call = AssertUnwindSafe(call).catch_unwind();
    tokio::pin!(call);
    let result = match futures::poll!(call.as_mut()) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => {
            on_wait();
            tokio::time::timeout(timeout, call).await.ok()
        }
    };
    let ended = Instant::now();
    let elapsed = ended - started;
    latency.record(elapsed.as_secs_f64());
    let outcome = match result {
        Some(Ok(v)) => CallOutcome::Returned(v),
        Some(Err(_)) => CallOutcome::Panicked,
        None => CallOutcome::TimedOut,
    };
    (outcome, elapsed, ended)
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
