//! The pull loop of one queue (Java `DefaultMQPushConsumerImpl.pullMessage` and its
//! `PullCallback`) and the flow control before each pull.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rmq_client_core::{ErrorKind, MessageExt, MessageQueue, PullSpec, PullStatus};
use rmq_consume_service::ProcessQueue;
use rmq_offset_store::ReadOffsetType;
use rmq_rebalance::MessageModel;
use rmq_remoting::ResponseCode;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::core::Core;
use crate::listener_factory::Service;

/// Long-poll hold of a push pull or pop (Java `BROKER_SUSPEND_MAX_TIME_MILLIS`, 15 s).
pub(crate) const BROKER_SUSPEND_MAX_TIME: Duration = Duration::from_millis(15_000);
/// RPC timeout of a push pull (Java `CONSUMER_TIMEOUT_MILLIS_WHEN_SUSPEND`, 30 s).
const PULL_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Delay when the cache is over a threshold (Java `PULL_TIME_DELAY_MILLS_WHEN_CACHE_FLOW_CONTROL`).
pub(crate) const FLOW_CONTROL_DELAY: Duration = Duration::from_millis(50);
/// Delay after a FLOW_CONTROL answer (Java `PULL_TIME_DELAY_MILLS_WHEN_BROKER_FLOW_CONTROL`).
pub(crate) const BROKER_FLOW_CONTROL_DELAY: Duration = Duration::from_millis(20);
/// Delay while suspended (Java `PULL_TIME_DELAY_MILLS_WHEN_SUSPEND`).
pub(crate) const SUSPEND_DELAY: Duration = Duration::from_millis(1000);
/// Longest delay before a pull is tried again after a connection fault (refused, reset,
/// closed): the broker is reconnected within this long after the fault ends. Java waits
/// `pullTimeDelayMillsWhenException` (3 s) for every kind of failure.
pub(crate) const UNREACHABLE_RETRY_DELAY: Duration = Duration::from_millis(1000);
/// Longest wait for the heartbeat asked for after SUBSCRIPTION_NOT_EXIST.
const HEARTBEAT_WAIT: Duration = Duration::from_millis(3000);

/// The metric handles of one pull or pop loop (built once per queue, not per request).
pub(crate) struct LoopMetrics {
    pub(crate) flow_control: metrics::Counter,
    pub(crate) pull_latency: metrics::Histogram,
    pub(crate) pulled: metrics::Counter,
    pub(crate) cached: metrics::Gauge,
}

impl LoopMetrics {
    pub(crate) fn new(group: &str) -> Self {
        let group = group.to_owned();
        LoopMetrics {
            flow_control: metrics::counter!("rmq_flow_control_total", "group" => group.clone()),
            pull_latency: metrics::histogram!("rmq_pull_latency_seconds", "group" => group.clone()),
            pulled: metrics::counter!("rmq_pulled_total", "group" => group.clone()),
            cached: metrics::gauge!("rmq_cached_bytes", "group" => group),
        }
    }
}

impl Core {
    /// Java's flow-control checks; `true` when this queue must wait.
    pub(crate) fn flow_controlled(&self, mq: &MessageQueue, pq: &ProcessQueue) -> bool {
        let c = &self.config;
        let mut per_queue_count = c.pull_threshold_for_queue;
        let mut per_queue_size = c.pull_threshold_size_for_queue;
        if c.pull_threshold_for_topic.is_some() || c.pull_threshold_size_for_topic.is_some() {
            let n = self
                .queues()
                .keys()
                .filter(|q| q.topic == mq.topic)
                .count()
                .max(1);
            if let Some(t) = c.pull_threshold_for_topic {
                per_queue_count = per_queue_count.min((t / n).max(1));
            }
            if let Some(t) = c.pull_threshold_size_for_topic {
                per_queue_size = per_queue_size.min((t / n).max(1));
            }
        }
        if pq.msg_count() > per_queue_count || pq.msg_bytes() > per_queue_size {
            return true;
        }
        if self.cached_bytes.load(Ordering::Relaxed) > c.memory_budget {
            return true;
        }
        !self.is_orderly() && pq.max_span() > c.consume_concurrently_max_span
    }

    pub(crate) async fn pause(token: &CancellationToken, d: Duration) -> bool {
        tokio::select! {
            _ = token.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// The pull loop of one queue (Java `pullMessage` + `PullCallback`).
    pub(crate) async fn pull_loop(
        self: Arc<Self>,
        mq: MessageQueue,
        mut pq: Arc<ProcessQueue>,
        mut next_offset: i64,
        token: CancellationToken,
    ) {
        let Some(sub) = self.subscription_of(&mq.topic).cloned() else {
            tracing::warn!(?mq, "no subscription for the queue's topic");
            return;
        };
        let clustering = self.config.message_model == MessageModel::Clustering;
        let exception_delay = self.client.pull_time_delay_when_exception;
        // Metric handles built once per queue, not on every pull.
        let m = LoopMetrics::new(&self.group);
        let m_lag = metrics::gauge!(
            "rmq_queue_lag",
            "topic" => mq.topic.clone(),
            "queue" => mq.queue_id.to_string()
        );
        // A heartbeat was asked for after the last pull's SUBSCRIPTION_NOT_EXIST.
        let mut heartbeat_sent = false;
        loop {
            if token.is_cancelled() || pq.is_dropped() {
                return;
            }
            pq.touch_pull();
            if self.pulling_paused() {
                if !Self::pause(&token, SUSPEND_DELAY).await {
                    return;
                }
                continue;
            }
            if self.flow_controlled(&mq, &pq) {
                m.flow_control.increment(1);
                if !Self::pause(&token, FLOW_CONTROL_DELAY).await {
                    return;
                }
                continue;
            }
            if self.is_orderly() && clustering && !pq.is_locked() {
                // Locked by the rebalance (or the consume task) before pulling (Java).
                if self.rebalance.lock(&mq).await {
                    pq.set_locked(true);
                } else if !Self::pause(&token, exception_delay).await {
                    return;
                } else {
                    continue;
                }
            }
            let commit = if clustering {
                self.offset_store
                    .read_offset(&mq, ReadOffsetType::ReadFromMemory)
                    .await
                    .ok()
                    .flatten()
                    .filter(|o| *o > 0)
            } else {
                None
            };
            let started = std::time::Instant::now();
            let pull = self
                .kernel
                .pull(PullSpec {
                    mq: &mq,
                    subscription: &sub,
                    offset: next_offset,
                    max_msg_nums: self.config.pull_batch_size,
                    commit_offset: commit,
                    suspend: Some(BROKER_SUSPEND_MAX_TIME),
                    post_subscription: false,
                    timeout: PULL_TIMEOUT,
                })
                .instrument(tracing::trace_span!("pull_request", offset = next_offset));
            let result = tokio::select! {
                biased;
                _ = token.cancelled() => return,
                r = pull => r,
            };
            let rt = started.elapsed().as_secs_f64();
            m.pull_latency.record(rt);
            if let Ok(r) = &result {
                heartbeat_sent = false;
                self.stats
                    .record_pull(&mq.topic, r.messages.len(), rt * 1000.0);
            }
            match result {
                Ok(mut r) => {
                    let lag = (r.max_offset - r.next_begin_offset).max(0) as f64;
                    m_lag.set(lag + pq.msg_count() as f64);
                    match r.status {
                        PullStatus::Found => {
                            next_offset = r.next_begin_offset;
                            let mut msgs: Vec<MessageExt> = std::mem::take(&mut r.messages);
                            for h in &self.filter_hooks {
                                h.filter_message(&mq, &mut msgs);
                            }
                            if msgs.is_empty() {
                                self.correct_tags_offset(&mq, &pq, next_offset);
                                continue;
                            }
                            m.pulled.increment(msgs.len() as u64);
                            match &self.service {
                                // A sealed queue is draining: these messages stay
                                // unconsumed and uncommitted, for the next owner.
                                Service::Concurrent(s) => {
                                    if !pq.put_messages(&msgs) || !s.submit(msgs, &pq, &mq).await {
                                        return;
                                    }
                                }
                                Service::Orderly(s) => {
                                    let Some(dispatch) = pq.put_messages_orderly(msgs) else {
                                        return;
                                    };
                                    s.submit(&pq, &mq, dispatch);
                                }
                            }
                            m.cached
                                .set(self.cached_bytes.load(Ordering::Relaxed) as f64);
                            if !self.config.pull_interval.is_zero()
                                && !Self::pause(&token, self.config.pull_interval).await
                            {
                                return;
                            }
                        }
                        PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                            next_offset = r.next_begin_offset;
                            self.correct_tags_offset(&mq, &pq, next_offset);
                            if let Some(d) = rmq_client_core::pull_kernel::unheld_empty_pull_pause(
                                &r,
                                started.elapsed(),
                            ) && !Self::pause(&token, d).await
                            {
                                return;
                            }
                        }
                        PullStatus::OffsetIllegal => {
                            // The broker says where this queue continues (a too-small or
                            // too-large offset, or an admin reset). Continue there in place,
                            // with a fresh cache: the old one is dropped so its calls still
                            // running commit nothing. Java instead releases the queue and
                            // re-reads the offset from the broker, which loses a server-side
                            // reset on brokers that keep committed offsets increase-only
                            // (rocketmq-rust 1.0.0 does).
                            tracing::warn!(
                                ?mq,
                                requested = next_offset,
                                next = r.next_begin_offset,
                                "pull offset illegal; continuing at the broker's offset"
                            );
                            pq.set_dropped(true);
                            pq.clear();
                            pq = Arc::new(ProcessQueue::new(Arc::clone(&self.cached_bytes)));
                            if let Some(e) = self.queues().get_mut(&mq)
                                && e.token == token
                            {
                                e.pq = Arc::clone(&pq);
                            } else {
                                return; // released meanwhile
                            }
                            next_offset = r.next_begin_offset;
                            self.offset_store.update_offset(&mq, next_offset, false);
                            if let Err(e) = self.offset_store.persist(&mq).await {
                                tracing::warn!(?mq, error = %e, "persisting corrected offset failed");
                            }
                        }
                    }
                }
                Err(e) => {
                    let code = e.response_code();
                    let delay = if code == Some(ResponseCode::FLOW_CONTROL) {
                        BROKER_FLOW_CONTROL_DELAY
                    } else if matches!(
                        code,
                        Some(ResponseCode::SUBSCRIPTION_NOT_EXIST)
                            | Some(ResponseCode::SUBSCRIPTION_NOT_LATEST)
                    ) && !heartbeat_sent
                    {
                        // The broker lost (restart, dropped connection) or lags behind the
                        // group's registration: tell it now and pull again at once, instead
                        // of waiting for the next scheduled heartbeat (Java: up to 30 s).
                        tracing::info!(?mq, error = %e, "broker does not know the subscription; heartbeat now");
                        heartbeat_sent = true;
                        let hb = self.instance.heartbeat_now(HEARTBEAT_WAIT);
                        tokio::select! {
                            _ = token.cancelled() => return,
                            _ = hb => {}
                        }
                        continue;
                    } else {
                        tracing::warn!(?mq, error = %e, "pull failed");
                        if matches!(e.kind(), ErrorKind::Network) {
                            exception_delay.min(UNREACHABLE_RETRY_DELAY)
                        } else {
                            exception_delay
                        }
                    };
                    if !Self::pause(&token, delay).await {
                        return;
                    }
                }
            }
        }
    }

    /// Nothing cached: the pulled-past offset is safe to commit (Java `correctTagsOffset`).
    pub(crate) fn correct_tags_offset(
        &self,
        mq: &MessageQueue,
        pq: &ProcessQueue,
        next_offset: i64,
    ) {
        if pq.msg_count() == 0 && !pq.is_dropped() {
            self.offset_store.update_offset(mq, next_offset, true);
        }
    }
}
