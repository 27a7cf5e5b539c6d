//! [`PushConsumer`] (Java `DefaultMQPushConsumer`): the handle of a running consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rmq_client_core::MessageQueue;

use crate::core::Core;
use crate::listener_factory::Service;
use rmq_client_core::ShutdownReport;

/// How long a dropped consumer's unregistration from the brokers may take.
const RELEASE_ON_DROP: Duration = Duration::from_secs(1);

/// A running push consumer (Java `DefaultMQPushConsumer`): rebalance, a long-polling pull
/// task per owned queue with flow control, the concurrent or orderly consume service,
/// retries, offsets committed only past consumed messages, graceful hand-off and shutdown.
///
/// Made by [`PushConsumerBuilder::start`](crate::PushConsumerBuilder::start); there is no "created but not started" state
/// (Java's `start()` on a built consumer). Cheap to clone: clones share the consumer.
///
/// # Drop behavior
/// Dropping the last clone without [`PushConsumer::shutdown`] stops everything the consumer
/// started at once: pull tasks, rebalance, lock renewal and consume tasks end (a listener
/// call already running finishes first), and the group is unregistered from the brokers in
/// the background. Nothing is drained or persisted: offsets committed since the last
/// periodic persist (5 s) are lost, so messages may be delivered again. Call `shutdown`
/// for a clean stop.
#[derive(Clone)]
pub struct PushConsumer {
    handle: Arc<Handle>,
}

/// The last clone's drop stops the consumer.
struct Handle {
    core: Arc<Core>,
    stopped: AtomicBool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let core = &self.core;
        core.stop_now();
        tracing::info!(group = %core.group, "push consumer dropped without shutdown; stopping");
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let instance = core.instance.clone();
            let group = core.group.clone();
            rt.spawn(async move { instance.release_consumer(&group, RELEASE_ON_DROP).await });
        }
    }
}

impl std::fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumer")
            .field("group", &self.handle.core.group)
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

impl PushConsumer {
    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        PushConsumer {
            handle: Arc::new(Handle {
                core,
                stopped: AtomicBool::new(false),
            }),
        }
    }

    fn core(&self) -> &Core {
        &self.handle.core
    }

    /// The (namespaced) consumer group.
    pub fn group(&self) -> &str {
        &self.core().group
    }

    /// The client id (`clientIP@instanceName`) the brokers know this consumer by.
    pub fn client_id(&self) -> &str {
        self.core().instance.client_id()
    }

    /// The queues owned now: pulled ones, then (pop mode) popped ones, whose queue id is
    /// −1 when the broker hands out all of its queues of the topic.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        let mut q = self.core().rebalance.owned_queues();
        q.extend(self.core().rebalance.pop_queues());
        q
    }

    /// The stream of a consumer built with
    /// [`PushConsumerBuilder::message_stream`](crate::PushConsumerBuilder::message_stream)
    /// (or `orderly_message_stream`); `None` for a listener consumer and after the first
    /// call. It ends once the consumer has shut down.
    pub fn messages(&self) -> Option<rmq_consume_service::MessageStream> {
        crate::core::lock(&self.core().message_stream).take()
    }

    /// Stops pulling for every queue; cached messages are still consumed (Java `suspend`).
    /// An offset reset from the broker does not undo it.
    pub fn suspend(&self) {
        self.core().paused.store(true, Ordering::SeqCst);
    }

    /// Resumes pulling (Java `resume`).
    pub fn resume(&self) {
        self.core().paused.store(false, Ordering::SeqCst);
    }

    /// Stops gracefully (Java `shutdown`), idempotent: stops pulling, lets the cached
    /// messages be consumed (at most `drain_timeout`), waits for listener calls (at most
    /// `await_termination_when_shutdown`), persists the offsets, unlocks orderly queues
    /// and unregisters from the brokers. After a clean shutdown a restart redelivers
    /// nothing that was consumed. Returns what it did; a second call reports
    /// `performed: false`.
    pub async fn shutdown(&self) -> ShutdownReport {
        let c = &self.handle.core.config;
        self.shutdown_within(c.drain_timeout, c.await_termination_when_shutdown)
            .await
    }

    /// [`PushConsumer::shutdown`] with other limits than the configured ones: cached
    /// messages are consumed for at most `drain_timeout`, listener calls then running are
    /// awaited for at most `await_calls`. What is not consumed by then stays uncommitted
    /// (a call that finishes later commits nothing and sends nothing back), so the next
    /// owner gets it again. `Duration::ZERO` for both stops at once, with the offsets of
    /// everything consumed so far persisted: what a command that wants exactly N messages
    /// does after the Nth (Java `shutdown(awaitTerminateMillis)` has the second limit only).
    pub async fn shutdown_within(
        &self,
        drain_timeout: Duration,
        await_calls: Duration,
    ) -> ShutdownReport {
        if self.handle.stopped.swap(true, Ordering::SeqCst) {
            return ShutdownReport::default();
        }
        let core = &self.handle.core;
        let grace = core.config.await_termination_when_shutdown;
        core.token.cancel();
        let queues = core.queues().len() + crate::core::lock(&core.pop_queues).len();
        let messages_left = core.drain_all(drain_timeout).await;
        let calls_done = match &core.service {
            Service::Concurrent(s) => s.shutdown(await_calls).await,
            Service::Orderly(s) => s.shutdown(await_calls).await,
        };
        if let Some(trace) = &core.trace {
            trace.shutdown(grace).await;
        }
        let owned = core.rebalance.owned_queues();
        let offsets_persisted = match core.offset_store.persist_all(&owned).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "persisting offsets at shutdown failed");
                false
            }
        };
        core.rebalance.release_all().await;
        let tasks_stopped =
            rmq_remoting::task::stop_and_wait(&core.token, &core.tracker, grace).await;
        core.instance.release_consumer(&core.group, grace).await;
        let mut report = ShutdownReport::default();
        report.performed = true;
        report.queues = queues;
        report.messages_left = messages_left;
        report.drain_timed_out = messages_left > 0;
        report.listener_calls_timed_out = !calls_done;
        report.offsets_persisted = offsets_persisted;
        report.tasks_stopped = tasks_stopped;
        tracing::info!(group = %core.group, %report, "push consumer shut down");
        report
    }
}
