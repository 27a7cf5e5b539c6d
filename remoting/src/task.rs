//! Stopping a group of background tasks.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cancels `token`, closes `tracker` and waits up to `grace` for its tasks to end; returns
/// `false` when some were still running at the deadline. Idempotent; cancel safe.
pub async fn stop_and_wait(
    token: &CancellationToken,
    tracker: &TaskTracker,
    grace: Duration,
) -> bool {
    token.cancel();
    tracker.close();
    tokio::time::timeout(grace, tracker.wait()).await.is_ok()
}
