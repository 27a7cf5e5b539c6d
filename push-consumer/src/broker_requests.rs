//! What brokers ask of the consumer through its client instance (Java
//! `ClientRemotingProcessor` → `DefaultMQPushConsumerImpl`): offset reset, running info,
//! consume directly, consumer status, and the instance's callbacks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use rmq_client_core::header::ConsumerData;
use rmq_client_core::{ConsumerInner, MessageExt, MessageQueue, SubscriptionData};
use rmq_consume_service::{PopProcessQueue, ProcessQueue};
use rmq_remoting::BoxFuture;

use crate::core::{Core, QueueEntry};
use crate::listener_factory::Service;

impl Core {
    /// RESET_CONSUMER_CLIENT_OFFSET: drops the topic's owned queues, waits for their
    /// listener calls to end (they commit nothing once dropped), writes the new offsets and
    /// hands the queues back to the rebalance. Runs on its own task; pulling pauses
    /// meanwhile without touching the user's `suspend()`.
    pub(crate) async fn reset_offset(
        self: Arc<Self>,
        topic: String,
        offsets: HashMap<MessageQueue, i64>,
    ) {
        tracing::info!(group = %self.group, topic, queues = offsets.len(), "resetting offsets");
        self.resetting.fetch_add(1, Ordering::SeqCst);
        let entries: Vec<(MessageQueue, QueueEntry)> = {
            let mut q = self.queues();
            let keys: Vec<MessageQueue> = q
                .keys()
                .filter(|k| k.topic == topic && offsets.contains_key(*k))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| q.remove(&k).map(|e| (k, e)))
                .collect()
        };
        for (_, e) in &entries {
            e.token.cancel();
            e.pq.set_dropped(true);
            e.pq.clear();
        }
        let grace = self.config.await_termination_when_shutdown;
        for (mq, e) in &entries {
            if !e.pq.wait_calls_idle(grace).await {
                tracing::warn!(
                    ?mq,
                    ?grace,
                    "a listener call outlived the offset reset's wait"
                );
            }
        }
        for (mq, offset) in &offsets {
            if mq.topic != topic {
                continue;
            }
            self.offset_store.update_offset(mq, *offset, false);
            if let Err(e) = self.offset_store.persist(mq).await {
                tracing::warn!(?mq, error = %e, "persisting reset offset failed");
            }
        }
        for (mq, _) in &entries {
            self.rebalance.release(mq).await;
        }
        self.resetting.fetch_sub(1, Ordering::SeqCst);
        self.rebalance_service.wakeup();
    }

    pub(crate) fn running_info(&self) -> Bytes {
        use std::fmt::Write as _;
        let offsets = self.offset_store.clone_offset_table(None);
        let queues: Vec<(MessageQueue, (Arc<ProcessQueue>, i64))> = self
            .queues()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    (Arc::clone(&v.pq), offsets.get(k).copied().unwrap_or(-1)),
                )
            })
            .collect();
        // `cachedMsgSizeInMiB` is Java's key; rocketmq-rust admin tools read
        // `cachedMsgSizeInMib` and refuse a body without it, so both are written.
        let popped: Vec<(MessageQueue, Arc<PopProcessQueue>)> = crate::core::lock(&self.pop_queues)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(&v.ppq)))
            .collect();
        let mut s = String::from("{\"jstack\":\"\",\"mqPopTable\":");
        // Java `PopProcessQueueInfo`, fastjson's key order.
        rmq_client_core::fastjson::write_mq_map(&mut s, popped, |o, ppq| {
            let _ = write!(
                o,
                "{{\"droped\":{},\"lastPopTimestamp\":{},\"waitAckCount\":{}}}",
                ppq.is_dropped(),
                ppq.last_pop_ms(),
                ppq.wait_ack_count()
            );
        });
        s.push_str(",\"mqTable\":");
        rmq_client_core::fastjson::write_mq_map(&mut s, queues, |o, (pq, commit)| {
            let (lo, hi) = pq.offset_range().unwrap_or((0, 0));
            let _ = write!(
                o,
                "{{\"cachedMsgCount\":{},\"cachedMsgMaxOffset\":{},\"cachedMsgMinOffset\":{},\"cachedMsgSizeInMiB\":{},\"cachedMsgSizeInMib\":{},\"commitOffset\":{},\"droped\":{},\"lastConsumeTimestamp\":{},\"lastLockTimestamp\":{},\"lastPullTimestamp\":{},\"locked\":{},\"transactionMsgCount\":0,\"transactionMsgMaxOffset\":0,\"transactionMsgMinOffset\":0,\"tryUnlockTimes\":{}}}",
                pq.msg_count(),
                hi,
                lo,
                pq.msg_bytes() / (1024 * 1024),
                pq.msg_bytes() / (1024 * 1024),
                commit,
                pq.is_dropped(),
                pq.last_consume_ms(),
                pq.last_lock_ms(),
                pq.last_pull_ms(),
                pq.is_locked(),
                pq.try_unlock_times()
            );
        });
        let props = serde_json::json!({
            "PROP_CLIENT_VERSION": "rmq-0.1.0",
            "PROP_CONSUMEORDERLY": self.is_orderly().to_string(),
            "PROP_CONSUMER_START_TIMESTAMP": self.start_ms.to_string(),
            "PROP_CONSUME_TYPE": "CONSUME_PASSIVELY",
            // Java writes each address followed by `;`.
            "PROP_NAMESERVER_ADDR": self.client.namesrv_addrs.iter().map(|a| format!("{a};")).collect::<String>(),
            "PROP_THREADPOOL_CORE_SIZE": self.config.consume_thread_max.to_string(),
            "consumeFromWhere": self.config.consume_from_where.as_str(),
            "consumerGroup": self.group,
            "messageModel": self.config.message_model.as_str(),
            "pullBatchSize": self.config.pull_batch_size.to_string(),
            "pullThresholdForQueue": self.config.pull_threshold_for_queue.to_string(),
            "consumeMessageBatchMaxSize": self.config.consume_message_batch_max_size.to_string(),
        });
        // Java `ConsumeStatus` per topic, fastjson's field order.
        let status: serde_json::Map<String, serde_json::Value> = self
            .stats
            .status_table()
            .into_iter()
            .map(|(topic, c)| {
                let v = serde_json::json!({
                    "consumeFailedMsgs": c.consume_failed_msgs,
                    "consumeFailedTPS": c.consume_failed_tps,
                    "consumeOKTPS": c.consume_ok_tps,
                    "consumeRT": c.consume_rt,
                    "pullRT": c.pull_rt,
                    "pullTPS": c.pull_tps,
                });
                (topic, v)
            })
            .collect();
        let subs: Vec<&SubscriptionData> = self.subscriptions.values().collect();
        let _ = write!(
            s,
            ",\"properties\":{},\"statusTable\":{},\"subscriptionSet\":{},\"userConsumerInfo\":{{}}}}",
            props,
            serde_json::Value::Object(status),
            serde_json::to_string(&subs).unwrap_or_else(|_| "[]".into())
        );
        Bytes::from(s)
    }
}

/// What the client instance sees of the consumer (registered through [`Weakly`], so the
/// instance never keeps a dropped consumer alive).
///
/// [`Weakly`]: rmq_client_core::Weakly
impl ConsumerInner for Core {
    fn group_name(&self) -> String {
        self.group.clone()
    }

    fn consumer_data(&self) -> ConsumerData {
        Core::consumer_data(self)
    }

    fn subscribed_topics(&self) -> Vec<String> {
        self.subscriptions.keys().cloned().collect()
    }

    fn update_topic_subscribe_info(&self, topic: &str, queues: &[MessageQueue]) {
        self.rebalance_service
            .topic_queues_changed(&self.rebalance, topic, queues);
    }

    fn trigger_rebalance(&self) {
        self.rebalance_service.wakeup();
    }

    fn persist_consumer_offset(&self) -> BoxFuture<'static, ()> {
        let store = Arc::clone(&self.offset_store);
        let owned = self.rebalance.owned_queues();
        Box::pin(async move {
            if let Err(e) = store.persist_all(&owned).await {
                tracing::warn!(error = %e, "persisting offsets failed");
            }
        })
    }

    fn reset_offset(
        &self,
        topic: &str,
        offsets: HashMap<MessageQueue, i64>,
    ) -> BoxFuture<'static, ()> {
        // Never on the connection's dispatch task: the reset waits for listener calls.
        if let Some(me) = self.me.upgrade() {
            self.tracker
                .spawn(me.reset_offset(topic.to_owned(), offsets));
        }
        Box::pin(std::future::ready(()))
    }

    fn consumer_status(&self, topic: &str) -> HashMap<MessageQueue, i64> {
        self.offset_store.clone_offset_table(Some(topic))
    }

    fn running_info(&self) -> Option<Bytes> {
        Some(Core::running_info(self))
    }

    fn consume_message_directly(
        &self,
        msg: MessageExt,
        broker_name: Option<String>,
    ) -> BoxFuture<'static, Option<Bytes>> {
        let service = self.service.clone();
        Box::pin(async move {
            Some(match service {
                Service::Concurrent(s) => s.consume_message_directly(msg, broker_name).await,
                Service::Orderly(s) => s.consume_message_directly(msg, broker_name).await,
            })
        })
    }
}
