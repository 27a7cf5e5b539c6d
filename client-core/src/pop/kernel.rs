//! [`PopKernel`]: one consumer group's pop requests (Java `DefaultMQPushConsumerImpl`'s
//! `popAsync`, `ackAsync`, `changePopInvisibleTimeAsync` and
//! `MQClientAPIImpl.processPopResponse`).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::header::*;
use super::receipt::PopReceipt;
use super::requests::PopStatus;
use super::wire::{
    ReceiptHandle, batch_ack_body, build_receipt_handle, offset_info_key, parse_start_offset_info,
};
use crate::error::ClientError;
use crate::filter::SubscriptionData;
use crate::instance::ClientInstance;
use crate::message::MessageExt;
use crate::route::MessageQueue;

/// The receipt-handle property a broker sets on messages it read from a pop-retry topic
/// (Java `MessageConst.PROPERTY_POP_CK`).
pub const PROPERTY_POP_CK: &str = "POP_CK";

/// The RPC timeout of a pop beyond its poll time (Java: `pollTime + 10000`).
const POP_TIMEOUT_MARGIN: Duration = Duration::from_millis(10_000);

/// Java's `popDelayLevel` table, seconds: the invisible time given to a message whose
/// consumption failed, indexed by delay level (0 means "use the reconsume times").
pub const POP_DELAY_LEVEL_SECS: [u64; 16] = [
    10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/// What one pop asks for.
#[derive(Debug, Clone, Copy)]
pub struct PopSpec<'a> {
    /// The queue; queue id −1 pops every readable queue of the topic on its broker.
    pub mq: &'a MessageQueue,
    /// The subscription: its expression goes in the header, and popped messages are
    /// re-filtered by exact tag with it (the others are acknowledged unconsumed, as Java
    /// does).
    pub subscription: &'a SubscriptionData,
    /// Messages at most, 1..=32 (Java `popBatchNums`, 32).
    pub max_msg_nums: i32,
    /// How long popped messages stay invisible (Java `popInvisibleTime`, 60 s).
    pub invisible_time: Duration,
    /// Long-poll budget at the broker (Java 15 s); the RPC timeout is 10 s more.
    pub poll_time: Duration,
    /// Where a queue the group never consumed starts.
    pub init_mode: ConsumeInitMode,
}

/// A pop's outcome: the messages with their receipts, topic reset to the popped one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PopResult {
    /// How it ended.
    pub status: PopStatus,
    /// The broker's pop time, ms.
    pub pop_time: i64,
    /// Backlog left in the popped queues.
    pub rest_num: i64,
    /// The messages, each with [`MessageExt::receipt`] set.
    pub messages: Vec<MessageExt>,
    /// Messages the tag re-filter took out (acknowledged unconsumed).
    pub filtered_out: usize,
}

/// Pops, acknowledges and delays messages of one consumer group: finds the broker
/// (refreshing the route once when unknown), builds the headers, gives every popped
/// message its [`PopReceipt`], and merges acknowledgements per broker into one
/// BATCH_ACK_MESSAGE. The push consumer's pop mode and [`PopReceipt`] use it.
#[derive(Debug)]
pub struct PopKernel {
    me: Weak<PopKernel>,
    instance: ClientInstance,
    group: String,
}

impl PopKernel {
    /// A kernel for (namespaced) `group`.
    pub fn new(instance: &ClientInstance, group: &str) -> Arc<Self> {
        Arc::new_cyclic(|me| PopKernel {
            me: Weak::clone(me),
            instance: instance.clone(),
            group: group.to_owned(),
        })
    }

    /// The (namespaced) group.
    pub fn group(&self) -> &str {
        &self.group
    }

    fn timeout(&self) -> Duration {
        self.instance.config().mq_client_api_timeout
    }

    /// One pop (Java `popAsync` + `processPopResponse` + the re-filter of
    /// `processPopResult`).
    ///
    /// # Errors
    /// [`ClientError::BrokerNotFound`] or the route refresh's error when no broker serves
    /// the queue; transport errors; [`ClientError::Broker`] for a refusal; decode errors.
    pub async fn pop(&self, spec: PopSpec<'_>) -> Result<PopResult, ClientError> {
        let mq = spec.mq;
        let sub = spec.subscription;
        let addr = self.instance.master_addr_of(mq).await?;
        let header = PopMessageRequestHeader {
            consumer_group: self.group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            max_msg_nums: spec.max_msg_nums,
            invisible_time: spec.invisible_time.as_millis() as i64,
            poll_time: spec.poll_time.as_millis() as i64,
            born_time: crate::now_millis(),
            init_mode: spec.init_mode.code(),
            exp_type: Some(sub.expression_type.as_str().to_owned()),
            exp: Some(sub.sub_string.clone()),
            order: Some(false),
            bname: Some(mq.broker_name.clone()),
        };
        let raw = self
            .instance
            .api()
            .pop_message(&addr, &header, spec.poll_time + POP_TIMEOUT_MARGIN)
            .await?;
        let status = raw.status;
        let (pop_time, rest_num) = (raw.header.pop_time, raw.header.rest_num);
        let mut messages = self.attach_receipts(mq, raw.header, raw.messages);
        let before = messages.len();
        let mut unwanted = Vec::new();
        messages.retain(|m| {
            let keep = sub.matches(m);
            if !keep {
                unwanted.push(m.clone());
            }
            keep
        });
        if !unwanted.is_empty() {
            let refs: Vec<&MessageExt> = unwanted.iter().collect();
            self.ack(&refs).await;
        }
        Ok(PopResult {
            status,
            pop_time,
            rest_num,
            filtered_out: before - messages.len(),
            messages,
        })
    }

    /// Java `processPopResponse`: the handle the broker set (`POP_CK`, on messages it read
    /// from a pop-retry topic) or one built from the offset-info strings; then the topic
    /// reset to the popped one and the broker name set. A message whose handle cannot be
    /// read is left out (not consumed: it comes back after its invisible time).
    fn attach_receipts(
        &self,
        mq: &MessageQueue,
        h: PopMessageResponseHeader,
        mut msgs: Vec<MessageExt>,
    ) -> Vec<MessageExt> {
        if msgs.is_empty() {
            return msgs;
        }
        let start = h.start_offset_info.as_deref().map(parse_start_offset_info);
        // Brokers without startOffsetInfo: the check point is the queue's first message
        // of the batch (Java's legacy handle).
        let mut first: HashMap<String, i64> = HashMap::new();
        if start.is_none() {
            for m in &msgs {
                first
                    .entry(offset_info_key(&m.topic, m.queue_id))
                    .or_insert(m.queue_offset);
            }
        }
        let topic: Arc<str> = Arc::from(mq.topic.as_str());
        let broker: Arc<str> = Arc::from(mq.broker_name.as_str());
        // The check point of the last (topic, queue) looked up: a batch is runs of one queue.
        let mut last: Option<(Arc<str>, i32, Option<i64>)> = None;
        msgs.retain_mut(|m| {
            let raw = match m.property(PROPERTY_POP_CK) {
                Some(ck) => ck.to_owned(),
                None => {
                    let ck = match &last {
                        Some((t, q, ck)) if Arc::ptr_eq(t, &m.topic) && *q == m.queue_id => *ck,
                        _ => {
                            let key = offset_info_key(&m.topic, m.queue_id);
                            let ck = start
                                .as_ref()
                                .map_or_else(|| first.get(&key), |s| s.get(&key))
                                .copied();
                            last = Some((Arc::clone(&m.topic), m.queue_id, ck));
                            ck
                        }
                    }
                    .unwrap_or(m.queue_offset);
                    build_receipt_handle(
                        ck,
                        h.pop_time,
                        h.invisible_time,
                        h.revive_qid,
                        &m.topic,
                        &mq.broker_name,
                        m.queue_id,
                        m.queue_offset,
                    )
                }
            };
            match ReceiptHandle::from_string(raw) {
                Ok(handle) => {
                    m.receipt = Some(PopReceipt::new(
                        handle,
                        Arc::clone(&topic),
                        Weak::clone(&self.me),
                    ));
                    m.topic = Arc::clone(&topic);
                    m.broker_name = Arc::clone(&broker);
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, offset = m.queue_offset, "popped message without a usable receipt handle; left to come back");
                    false
                }
            }
        });
        msgs
    }

    /// ACK_MESSAGE for one receipt (see [`PopReceipt::ack`]).
    pub(crate) async fn ack_one(&self, r: &PopReceipt) -> Result<bool, ClientError> {
        let h = r.handle();
        let addr = self
            .instance
            .master_addr_of_broker(h.broker_name(), r.topic())
            .await?;
        let header = AckMessageRequestHeader {
            consumer_group: self.group.clone(),
            topic: h.real_topic(r.topic(), &self.group),
            queue_id: h.queue_id,
            extra_info: h.as_str().to_owned(),
            offset: h.queue_offset,
            bname: Some(h.broker_name().to_owned()),
        };
        self.instance
            .api()
            .ack_message(&addr, &header, self.timeout())
            .await
    }

    /// Acknowledges `msgs` (those without a receipt are skipped): one ACK_MESSAGE for a
    /// broker and topic with one message, one BATCH_ACK_MESSAGE for more. Failures are
    /// logged (the messages then come back after their invisible time, as in Java); the
    /// number of messages whose acknowledgement was sent and answered is returned.
    pub async fn ack(&self, msgs: &[&MessageExt]) -> usize {
        // (broker, topic) → handles, in first-seen order; keys allocated per group.
        type Groups<'a> = Vec<((String, &'a str), Vec<(Arc<ReceiptHandle>, &'a PopReceipt)>)>;
        let mut groups: Groups<'_> = Vec::new();
        for r in msgs.iter().filter_map(|m| m.receipt.as_ref()) {
            let h = r.handle();
            match groups
                .iter_mut()
                .find(|((b, t), _)| b == h.broker_name() && *t == r.topic())
            {
                Some((_, v)) => v.push((h, r)),
                None => groups.push(((h.broker_name().to_owned(), r.topic()), vec![(h, r)])),
            }
        }
        let mut acked = 0;
        for ((broker, topic), receipts) in groups {
            let n = receipts.len();
            let result = if n == 1 {
                self.ack_one(receipts[0].1).await.map(drop)
            } else {
                self.batch_ack(&broker, topic, receipts.iter().map(|(h, _)| &**h))
                    .await
            };
            match result {
                Ok(()) => acked += n,
                Err(e) => {
                    tracing::warn!(broker = %broker, %topic, messages = n, error = %e, "pop ack failed; the messages come back after their invisible time");
                }
            }
        }
        acked
    }

    async fn batch_ack<'a>(
        &self,
        broker: &str,
        topic: &str,
        handles: impl IntoIterator<Item = &'a ReceiptHandle>,
    ) -> Result<(), ClientError> {
        let body = batch_ack_body(&self.group, topic, handles);
        let addr = self.instance.master_addr_of_broker(broker, topic).await?;
        self.instance
            .api()
            .batch_ack_message(&addr, &body, self.timeout())
            .await
    }

    /// CHANGE_MESSAGE_INVISIBLETIME for one receipt, which then holds the new handle
    /// (Java `changePopInvisibleTimeAsync`; see [`PopReceipt::change_invisible_time`]).
    pub(crate) async fn change_invisible_time(
        &self,
        r: &PopReceipt,
        invisible: Duration,
    ) -> Result<(), ClientError> {
        let h = r.handle();
        let addr = self
            .instance
            .master_addr_of_broker(h.broker_name(), r.topic())
            .await?;
        let real_topic = h.real_topic(r.topic(), &self.group);
        let header = ChangeInvisibleTimeRequestHeader {
            consumer_group: self.group.clone(),
            topic: real_topic.clone(),
            queue_id: h.queue_id,
            extra_info: h.as_str().to_owned(),
            offset: h.queue_offset,
            invisible_time: invisible.as_millis() as i64,
            bname: Some(h.broker_name().to_owned()),
        };
        let answer = self
            .instance
            .api()
            .change_invisible_time(&addr, &header, self.timeout())
            .await?;
        let mut raw = build_receipt_handle(
            h.queue_offset,
            answer.pop_time,
            answer.invisible_time,
            answer.revive_qid,
            &real_topic,
            h.broker_name(),
            h.queue_id,
            h.queue_offset,
        );
        // Fields past the eighth (rocketmq-rust's retry-policy generation) belong to the
        // message, not to the check point: kept.
        for extra in h.as_str().split(' ').skip(8) {
            raw.push(' ');
            raw.push_str(extra);
        }
        match ReceiptHandle::from_string(raw) {
            Ok(new) => r.replace(new),
            Err(e) => {
                tracing::warn!(error = %e, "new receipt handle unreadable; keeping the old one")
            }
        }
        Ok(())
    }
}

/// How long a popped message whose consumption failed stays invisible before it is
/// delivered again (Java `ConsumeMessagePopConcurrentlyService.processConsumeResult` and
/// `checkNeedAckOrDelay`), or `None` when it is given up (Java acknowledges it unconsumed,
/// which drops it; rmq's consume service sends it to the DLQ first).
///
/// - `delay_level` > 0 picks [`POP_DELAY_LEVEL_SECS`]`[delay_level]` (the last entry when
///   past the end); 0 uses `reconsume_times` as the level, so the first failure waits 10 s,
///   the second 30 s…
/// - `delay_level` < 0 ("straight to the DLQ", as in pull mode): given up. Java would index
///   the table with −1 and throw.
/// - At `reconsume_times >= max_reconsume_times`: given up when it was born more than
///   twice the last level (4 h) ago, else delayed by the first level that covers its age.
pub fn pop_retry_delay(
    reconsume_times: i32,
    delay_level: i32,
    max_reconsume_times: i32,
    age_ms: i64,
) -> Option<Duration> {
    let table = POP_DELAY_LEVEL_SECS;
    let last = table.len() - 1;
    if delay_level < 0 {
        return None;
    }
    if reconsume_times >= max_reconsume_times {
        if age_ms > (table[last] * 1000 * 2) as i64 {
            return None;
        }
        let level = table
            .iter()
            .position(|s| (s * 1000) as i64 > age_ms)
            .unwrap_or(last);
        return Some(Duration::from_secs(table[level]));
    }
    let level = if delay_level == 0 {
        reconsume_times
    } else {
        delay_level
    };
    let level = usize::try_from(level).unwrap_or(0).min(last);
    Some(Duration::from_secs(table[level]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_messages_wait_as_java_pop_consumers_do() {
        let s = |n| Some(Duration::from_secs(n));
        // First failure 10 s, then by reconsume times; an explicit level wins.
        assert_eq!(pop_retry_delay(0, 0, 16, 0), s(10));
        assert_eq!(pop_retry_delay(1, 0, 16, 0), s(30));
        assert_eq!(pop_retry_delay(0, 3, 16, 0), s(120));
        assert_eq!(pop_retry_delay(0, 40, 16, 0), s(7200));
        // −1 gives up.
        assert_eq!(pop_retry_delay(0, -1, 16, 0), None);
        // Over the limit: the level covering the age, or given up after 4 h.
        assert_eq!(pop_retry_delay(16, 0, 16, 45_000), s(60));
        assert_eq!(pop_retry_delay(16, 0, 16, 5 * 3600 * 1000), None);
        assert_eq!(pop_retry_delay(16, 0, 16, 3 * 3600 * 1000), s(7200));
    }
}
