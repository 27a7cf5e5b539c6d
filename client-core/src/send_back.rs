//! Sending a failed message back for a retry (REMOTING.md §3.10, §7).

use std::sync::Arc;
use std::time::Duration;

use crate::header::ConsumerSendMsgBackRequestHeader;
use crate::message::property;
use crate::namespace::{retry_topic, unwrap};
use crate::producer::CLIENT_INNER_PRODUCER_GROUP;
use crate::{ClientError, ClientInstance, Message, MessageExt, Producer};

/// CONSUMER_SEND_MSG_BACK timeout (Java 5000 ms).
const SEND_BACK_TIMEOUT: Duration = Duration::from_millis(5000);

/// Sends failed messages back to the broker for a later retry, falling back to producing
/// them to `%RETRY%<group>` when the broker refuses (Java `sendMessageBack`).
#[derive(Debug, Clone)]
pub struct SendBack {
    instance: ClientInstance,
    producer: Producer,
    group: String,
    /// `%RETRY%<group>`, computed once.
    retry_topic: String,
    max_reconsume_times: i32,
    producer_fallback: bool,
}

impl SendBack {
    /// For (namespaced) `group`, retrying at most `max_reconsume_times` times before the DLQ.
    pub fn new(instance: &ClientInstance, group: &str, max_reconsume_times: i32) -> Self {
        // One inner producer per client instance, as Java's `CLIENT_INNER_PRODUCER`.
        let producer = match Producer::new(instance, CLIENT_INNER_PRODUCER_GROUP) {
            Ok(p) => p,
            Err(_) => Producer::unregistered(instance, CLIENT_INNER_PRODUCER_GROUP),
        };
        SendBack {
            instance: instance.clone(),
            producer,
            group: group.to_owned(),
            retry_topic: retry_topic(group),
            max_reconsume_times,
            producer_fallback: true,
        }
    }

    /// Whether a refused send-back falls back to producing to `%RETRY%<group>`. Turn it
    /// off while the group holds broker queue locks for hand-off: Java brokers send a
    /// retry message of a group holding locks straight to the DLQ; the message is then
    /// consumed again locally instead.
    pub fn with_producer_fallback(mut self, on: bool) -> Self {
        self.producer_fallback = on;
        self
    }

    /// The maximum number of retries.
    pub fn max_reconsume_times(&self) -> i32 {
        self.max_reconsume_times
    }

    /// Restores the real topic of a retried message (Java `resetRetryAndNamespace`): when
    /// the message came from `%RETRY%<group>` and carries `RETRY_TOPIC`, that is its
    /// topic; then the namespace is stripped.
    pub fn reset_retry_and_namespace(&self, msg: &mut MessageExt) {
        self.reset_retry_and_namespace_all(std::slice::from_mut(msg));
    }

    /// [`SendBack::reset_retry_and_namespace`] for a pull's messages. They share one topic
    /// string, so its namespace-free form is made once and shared too: a namespaced
    /// consumer allocates per batch, not per message (only retried messages, each with its
    /// own `RETRY_TOPIC`, allocate for themselves).
    pub fn reset_retry_and_namespace_all(&self, msgs: &mut [MessageExt]) {
        let ns = self.instance.config().namespace_str();
        // The last topic stripped of its namespace: (as received, as restored).
        let mut last: Option<(Arc<str>, Arc<str>)> = None;
        for msg in msgs {
            let retried = *msg.topic == *self.retry_topic;
            if retried && let Some(t) = msg.property(property::RETRY_TOPIC) {
                msg.topic = t.into();
            }
            if ns.is_empty() {
                continue;
            }
            match &last {
                Some((from, to)) if Arc::ptr_eq(from, &msg.topic) => {
                    msg.topic = Arc::clone(to);
                }
                _ => {
                    let plain = unwrap(ns, &msg.topic);
                    if *plain != *msg.topic {
                        let to: Arc<str> = plain.into();
                        // A retried message's topic is its own; the pull's is shared.
                        if !retried {
                            last = Some((Arc::clone(&msg.topic), Arc::clone(&to)));
                        }
                        msg.topic = to;
                    }
                }
            }
        }
    }

    /// Sends `msg` back with `delay_level` (0: broker decides, −1: DLQ now). Returns
    /// `Ok` once the broker or the retry topic has it.
    ///
    /// # Errors
    /// When both CONSUMER_SEND_MSG_BACK and the fallback send failed; the caller then keeps
    /// the message and consumes it again locally.
    pub async fn send_message_back(
        &self,
        msg: &MessageExt,
        delay_level: i32,
    ) -> Result<(), ClientError> {
        let origin_topic = self.instance.config().with_namespace(&msg.topic);
        // The queue's own broker (for a static topic's logical queue, the bound one).
        let addr = self
            .instance
            .master_addr_cached(&crate::route::MessageQueue::new(
                &origin_topic,
                &*msg.broker_name,
                msg.queue_id,
            ));
        let direct = match addr {
            Some(addr) => {
                let header = ConsumerSendMsgBackRequestHeader {
                    offset: msg.commit_log_offset,
                    group: self.group.clone(),
                    delay_level,
                    origin_msg_id: Some(msg.msg_id().into_owned()),
                    origin_topic: Some(origin_topic.clone()),
                    unit_mode: false,
                    max_reconsume_times: Some(self.max_reconsume_times),
                    bname: Some(msg.broker_name.to_string()),
                };
                self.instance
                    .api()
                    .consumer_send_msg_back(&addr, &header, SEND_BACK_TIMEOUT)
                    .await
            }
            None => Err(ClientError::BrokerNotFound {
                broker_name: msg.broker_name.to_string(),
            }),
        };
        match direct {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::info!(msg_id = %msg.msg_id(), error = %e, "send-back refused; producing to the retry topic");
                self.produce_to_retry_topic(msg, &origin_topic, delay_level)
                    .await
            }
        }
    }

    /// The fallback: a normal message to `%RETRY%<group>` carrying the retry bookkeeping in
    /// properties (Java's recipe, REMOTING.md §7.3).
    ///
    /// On a rocketmq-rust 1.0 broker this path ends in the DLQ unless the group holds an
    /// unexpired orderly lock: its `handle_retry_and_dlq` inverts Java's
    /// `!isLockAllExpired` test. The message is not lost — it waits in the DLQ for
    /// `rmq resend-dlq` — but it is not redelivered by itself.
    async fn produce_to_retry_topic(
        &self,
        msg: &MessageExt,
        origin_topic: &str,
        delay_level: i32,
    ) -> Result<(), ClientError> {
        let mut properties = msg.properties.clone();
        if properties.get(property::ORIGIN_MESSAGE_ID).is_none() {
            properties.insert(property::ORIGIN_MESSAGE_ID, msg.msg_id().into_owned());
        }
        properties.insert(property::RETRY_TOPIC, origin_topic);
        properties.insert(
            property::MAX_RECONSUME_TIMES,
            self.max_reconsume_times.to_string(),
        );
        properties.remove("TRAN_MSG");
        properties.remove(property::MIN_OFFSET);
        properties.remove(property::MAX_OFFSET);
        properties.remove(property::CONSUME_START_TIME);
        if delay_level < 0 {
            // Straight to the DLQ: the broker sends a retry whose reconsume count exceeds
            // the maximum to `%DLQ%<group>`.
            let over = (msg.reconsume_times + 1).max(self.max_reconsume_times + 1);
            properties.insert(property::RECONSUME_TIME, over.to_string());
            properties.remove(property::DELAY);
        } else {
            properties.insert(
                property::RECONSUME_TIME,
                (msg.reconsume_times + 1).to_string(),
            );
            let delay = if delay_level > 0 {
                delay_level
            } else {
                3 + msg.reconsume_times
            };
            properties.insert(property::DELAY, delay.to_string());
        }
        let retry = Message {
            topic: self.retry_topic.clone(),
            flag: msg.flag,
            properties,
            body: msg.body.clone(),
        };
        self.producer.send_raw(retry).await.map(drop)
    }
}
