//! The pop loop of one pop-mode queue (Java `DefaultMQPushConsumerImpl.popMessage` and its
//! `PopCallback`) and the flow control before each pop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rmq_client_core::pop::{ConsumeInitMode, PopSpec, PopStatus};
use rmq_client_core::{ConsumeFromWhere, ErrorKind, MessageExt, MessageQueue};
use rmq_consume_service::PopProcessQueue;
use rmq_remoting::ResponseCode;
use tokio_util::sync::CancellationToken;

use crate::core::Core;
use crate::listener_factory::Service;
use crate::pull_loop::{
    BROKER_FLOW_CONTROL_DELAY, BROKER_SUSPEND_MAX_TIME, FLOW_CONTROL_DELAY, LoopMetrics,
    SUSPEND_DELAY, UNREACHABLE_RETRY_DELAY,
};

impl Core {
    /// Pops `mq` until its token is cancelled or it is dropped, handing what it pops to the
    /// concurrent service.
    pub(crate) async fn pop_loop(
        self: Arc<Self>,
        mq: MessageQueue,
        ppq: Arc<PopProcessQueue>,
        token: CancellationToken,
    ) {
        let Service::Concurrent(service) = &self.service else {
            tracing::warn!(?mq, "pop mode needs the concurrent service");
            return;
        };
        let Some(sub) = self.subscription_of(&mq.topic).cloned() else {
            tracing::warn!(?mq, "no subscription for the queue's topic");
            return;
        };
        let kernel = Arc::clone(ppq.kernel());
        // Java sends MIN only for CONSUME_FROM_FIRST_OFFSET (REMOTING-5X §1.2).
        let init_mode = if self.config.consume_from_where == ConsumeFromWhere::FirstOffset {
            ConsumeInitMode::Min
        } else {
            ConsumeInitMode::Max
        };
        let exception_delay = self.client.pull_time_delay_when_exception;
        let m = LoopMetrics::new(&self.group);
        loop {
            if token.is_cancelled() || ppq.is_dropped() {
                return;
            }
            ppq.touch_pop();
            if self.pulling_paused() {
                if !Self::pause(&token, SUSPEND_DELAY).await {
                    return;
                }
                continue;
            }
            if ppq.wait_ack_count() > self.config.pop_threshold_for_queue
                || self.cached_bytes.load(Ordering::Relaxed) > self.config.memory_budget
            {
                m.flow_control.increment(1);
                if !Self::pause(&token, FLOW_CONTROL_DELAY).await {
                    return;
                }
                continue;
            }
            let started = std::time::Instant::now();
            let pop = kernel.pop(PopSpec {
                mq: &mq,
                subscription: &sub,
                max_msg_nums: self.config.pop_batch_nums,
                invisible_time: self.config.pop_invisible_time,
                poll_time: BROKER_SUSPEND_MAX_TIME,
                init_mode,
            });
            let result = tokio::select! {
                biased;
                _ = token.cancelled() => return,
                r = pop => r,
            };
            let rt = started.elapsed();
            m.pull_latency.record(rt.as_secs_f64());
            let delay = match result {
                Ok(r) => match r.status {
                    PopStatus::Found => {
                        self.stats.record_pull(
                            &mq.topic,
                            r.messages.len(),
                            rt.as_secs_f64() * 1000.0,
                        );
                        let msgs = self.apply_filter_hooks(&mq, r.messages).await;
                        if msgs.is_empty() {
                            continue;
                        }
                        m.pulled.increment(msgs.len() as u64);
                        // Sealed (draining) or stopped: what was popped stays
                        // unacknowledged and comes back after its invisible time.
                        if !ppq.put(&msgs) {
                            return;
                        }
                        if !service.submit_popped(msgs, &ppq, &mq).await {
                            return;
                        }
                        m.cached
                            .set(self.cached_bytes.load(Ordering::Relaxed) as f64);
                        self.config.pull_interval
                    }
                    // A broker that does not hold pops is not asked in a busy loop.
                    PopStatus::NoNewMsg => {
                        rmq_client_core::pull_kernel::unheld_empty_answer_pause(true, rt)
                            .unwrap_or(Duration::ZERO)
                    }
                    PopStatus::PollingFull => exception_delay,
                },
                Err(e) if e.response_code() == Some(ResponseCode::FLOW_CONTROL) => {
                    BROKER_FLOW_CONTROL_DELAY
                }
                Err(e) => {
                    tracing::warn!(?mq, error = %e, "pop failed");
                    if matches!(e.kind(), ErrorKind::Network) {
                        exception_delay.min(UNREACHABLE_RETRY_DELAY)
                    } else {
                        exception_delay
                    }
                }
            };
            if !delay.is_zero() && !Self::pause(&token, delay).await {
                return;
            }
        }
    }

    /// Runs the filter hooks over popped messages; the ones they take out are acknowledged
    /// unconsumed (else they would come back after their invisible time).
    async fn apply_filter_hooks(
        &self,
        mq: &MessageQueue,
        mut msgs: Vec<MessageExt>,
    ) -> Vec<MessageExt> {
        if self.filter_hooks.is_empty() {
            return msgs;
        }
        let before = msgs.clone();
        for h in &self.filter_hooks {
            h.filter_message(mq, &mut msgs);
        }
        if msgs.len() < before.len() {
            let dropped: Vec<&MessageExt> = before
                .iter()
                .filter(|b| !msgs.iter().any(|m| m.receipt == b.receipt))
                .collect();
            if let Some(k) = &self.pop_kernel {
                k.ack(&dropped).await;
            }
        }
        msgs
    }
}
