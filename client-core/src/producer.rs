//! A small producer (SEND_MESSAGE_V2) for the consumer's retry fallback, tests and the CLI.
//! Not a general producer: no transactions, no batches.
//!
//! Java counterparts: `DefaultMQProducer` (send with round-robin queue selection and
//! `retryTimesWhenSendFailed` = 2), `MessageClientIDSetter` (UNIQ_KEY).

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::api::SendResult;
use crate::error::ClientError;
use crate::header::SendMessageRequestHeaderV2;
use crate::instance::ClientInstance;
use crate::message::{Properties, property, sys_flag};
use crate::namespace;
use crate::route::MessageQueue;

/// Producer group of the client's inner producer (Java `MixAll.CLIENT_INNER_PRODUCER_GROUP`).
pub const CLIENT_INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";
pub use crate::route::AUTO_CREATE_TOPIC;

/// A random first queue index, so that short-lived producers (a CLI run, a test) do not
/// all start on queue 0 (Java `ThreadLocalIndex` starts at a random value too).
fn random_start() -> usize {
    (crate::config::unique_u64() >> 1) as usize
}

/// A message to send (Java `Message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// User flag, stored as is.
    pub flag: i32,
    /// Properties (TAGS, KEYS, …).
    pub properties: Properties,
    /// Payload.
    pub body: Bytes,
}

impl Message {
    /// A message with `WAIT=true`, as Java's short constructors make.
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        let mut properties = Properties::new();
        properties.insert(property::WAIT, "true");
        Message {
            topic: topic.into(),
            flag: 0,
            properties,
            body: body.into(),
        }
    }

    /// Sets the tag (`TAGS`).
    pub fn tags(mut self, tags: impl Into<String>) -> Self {
        let t = tags.into();
        if !t.is_empty() {
            self.properties.insert(property::TAGS, t);
        }
        self
    }

    /// Sets the keys (`KEYS`, space separated).
    pub fn keys<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, keys: I) -> Self {
        let k: Vec<String> = keys.into_iter().map(|s| s.as_ref().to_owned()).collect();
        if !k.is_empty() {
            self.properties.insert(property::KEYS, k.join(" "));
        }
        self
    }

    /// Sets a property.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name, value);
        self
    }

    /// Sets the delay level (`DELAY`, 1..=18 with the default broker table).
    pub fn delay_time_level(self, level: i32) -> Self {
        self.property(property::DELAY, level.to_string())
    }
}

/// Bytes of the fixed part of a UNIQ_KEY: IPv4 (4) + pid (2) + random (4).
fn uniq_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let ip: Vec<u8> = match crate::config::local_ip().parse::<std::net::Ipv4Addr>() {
            Ok(v4) => v4.octets().to_vec(),
            Err(_) => (crate::now_millis() as u32).to_be_bytes().to_vec(),
        };
        let pid = (std::process::id() as u16).to_be_bytes();
        // Java uses the class loader's identity hash; any per-process random value serves.
        let salt = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish() as u32
        };
        hex_upper(ip.iter().chain(pid.iter()).chain(salt.to_be_bytes().iter()))
    })
}

fn hex_upper<'a>(bytes: impl Iterator<Item = &'a u8>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// One message of a batch body (Java `MessageDecoder.encodeMessage`): total size, magic 0,
/// body CRC 0, flag, body length + body, properties length + properties.
fn encode_batch_item(out: &mut bytes::BytesMut, flag: i32, body: &[u8], props: &str) {
    use bytes::BufMut;
    let total = 4 + 4 + 4 + 4 + 4 + body.len() + 2 + props.len();
    out.put_i32(total as i32);
    out.put_i32(0);
    out.put_i32(0);
    out.put_i32(flag);
    out.put_i32(body.len() as i32);
    out.put_slice(body);
    out.put_i16(props.len() as i16);
    out.put_slice(props.as_bytes());
}

/// Milliseconds since the first day of the current UTC month (Java uses the local month).
fn ms_since_month_start(now_ms: i64) -> i64 {
    let days = now_ms.div_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day_of_month = doy - (153 * mp + 2) / 5; // 0-based
    (day_of_month * 86_400_000) + now_ms.rem_euclid(86_400_000)
}

/// A new client message id (Java `MessageClientIDSetter.createUniqID`): 32 uppercase hex
/// characters = IPv4 (4 bytes) + pid (2) + per-process random (4) + ms since the month
/// began (4) + counter (2).
pub fn create_uniq_id() -> String {
    static COUNTER: AtomicU16 = AtomicU16::new(0);
    let diff = ms_since_month_start(crate::now_millis()) as i32;
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{:08X}{:04X}", uniq_prefix(), diff as u32, counter)
}

/// The inner producer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Producer {
    instance: ClientInstance,
    group: String,
    next_queue: std::sync::Arc<AtomicUsize>,
    /// Bodies of at least this many bytes are zlib-compressed (Java
    /// `compressMsgBodyOverHowmuch`, 4096).
    pub compress_over: usize,
    /// Timeout of one send attempt. Default 3 s (Java `sendMsgTimeout`).
    pub send_timeout: Duration,
    /// Extra attempts on another queue after a failure. Default 2 (Java `retryTimesWhenSendFailed`).
    pub retry_times: usize,
}

impl Producer {
    /// A producer of `group` on `instance`; registers the group (it appears in heartbeats).
    ///
    /// # Errors
    /// [`ClientError::GroupAlreadyRegistered`] if the group is taken in this instance.
    pub fn new(instance: &ClientInstance, group: &str) -> Result<Self, ClientError> {
        let producer = Producer::unregistered(instance, group);
        instance.register_producer(&producer.group)?;
        Ok(producer)
    }

    /// A producer of a `group` that is registered elsewhere in this instance (the shared
    /// inner producer); it does not register or unregister the group.
    pub fn unregistered(instance: &ClientInstance, group: &str) -> Self {
        Producer {
            instance: instance.clone(),
            group: instance.config().with_namespace(group),
            next_queue: std::sync::Arc::new(AtomicUsize::new(random_start())),
            compress_over: 4096,
            send_timeout: Duration::from_millis(3000),
            retry_times: 2,
        }
    }

    /// The writable queues of `topic`, refreshing its route if it is not cached. A topic
    /// the name server does not know is sent through `TBW102` (at most 4 queues), so a
    /// broker with `autoCreateTopicEnable` creates it, as Java does.
    ///
    /// # Errors
    /// [`ClientError::TopicRouteNotFound`] when neither the topic nor `TBW102` has a route.
    pub async fn publish_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        if self.instance.topic_route(topic).is_none() {
            match self.instance.update_topic_route(topic).await {
                Ok(_) => {}
                Err(ClientError::TopicRouteNotFound { .. }) => {
                    if self.instance.topic_route(AUTO_CREATE_TOPIC).is_none() {
                        // The user's topic is what has no route; the template is how it
                        // would have been created.
                        match self.instance.update_topic_route(AUTO_CREATE_TOPIC).await {
                            Ok(_) => {}
                            Err(ClientError::TopicRouteNotFound { .. }) => {
                                return Err(ClientError::TopicRouteNotFound {
                                    topic: topic.to_owned(),
                                });
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    let route = self
                        .instance
                        .topic_route(AUTO_CREATE_TOPIC)
                        .ok_or_else(|| ClientError::TopicRouteNotFound {
                            topic: topic.to_owned(),
                        })?;
                    // Java caps the template's queues at defaultTopicQueueNums (4).
                    return Ok(route
                        .publish_queues(topic)
                        .into_iter()
                        .filter(|q| q.queue_id < 4)
                        .collect());
                }
                Err(e) => return Err(e),
            }
        }
        let route =
            self.instance
                .topic_route(topic)
                .ok_or_else(|| ClientError::TopicRouteNotFound {
                    topic: topic.to_owned(),
                })?;
        Ok(route.publish_queues(topic))
    }

    /// Sends `msg` to the next queue in round-robin order, retrying on the following queues
    /// up to [`Producer::retry_times`] times.
    ///
    /// # Errors
    /// The last attempt's error; [`ClientError::TopicRouteNotFound`] without a route.
    pub async fn send(&self, mut msg: Message) -> Result<SendResult, ClientError> {
        msg.topic = self.instance.config().with_namespace(&msg.topic);
        self.send_raw(msg).await
    }

    /// As [`Producer::send`], with the topic taken as is (already namespaced).
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub async fn send_raw(&self, msg: Message) -> Result<SendResult, ClientError> {
        let queues = self.publish_queues(&msg.topic).await?;
        if queues.is_empty() {
            return Err(ClientError::TopicRouteNotFound { topic: msg.topic });
        }
        let mut last = None;
        for _ in 0..=self.retry_times {
            let i = self.next_queue.fetch_add(1, Ordering::Relaxed);
            let mq = &queues[i % queues.len()];
            match self.send_to_queue_inner(&msg, mq).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(queue = ?mq, error = %e, "send failed, trying the next queue");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Sends `msg` to one queue.
    ///
    /// # Errors
    /// [`ClientError::BrokerNotFound`] when the queue's broker has no master address;
    /// transport and broker errors.
    pub async fn send_to_queue(
        &self,
        msg: Message,
        mq: &MessageQueue,
    ) -> Result<SendResult, ClientError> {
        if self.instance.master_addr_cached(mq).is_none() {
            self.publish_queues(&mq.topic).await?;
        }
        self.send_to_queue_inner(&msg, mq).await
    }

    async fn send_to_queue_inner(
        &self,
        msg: &Message,
        mq: &MessageQueue,
    ) -> Result<SendResult, ClientError> {
        let addr =
            self.instance
                .master_addr_cached(mq)
                .ok_or_else(|| ClientError::BrokerNotFound {
                    broker_name: self.instance.broker_name_of(mq).into_owned(),
                })?;
        let mut properties = msg.properties.clone();
        let uniq = match properties.get(property::UNIQ_KEY) {
            Some(u) => u.to_owned(),
            None => {
                let u = create_uniq_id();
                properties.insert(property::UNIQ_KEY, u.as_str());
                u
            }
        };
        let (mut reconsume, mut max_reconsume) = (None, None);
        if namespace::is_retry_topic(&mq.topic) {
            reconsume = properties
                .remove(property::RECONSUME_TIME)
                .and_then(|v| v.parse().ok());
            max_reconsume = properties
                .remove(property::MAX_RECONSUME_TIMES)
                .and_then(|v| v.parse().ok());
        }
        let mut sys = 0;
        let body = if msg.body.len() >= self.compress_over {
            let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
            enc.write_all(&msg.body)
                .map_err(|e| ClientError::InvalidConfig(format!("compress: {e}")))?;
            sys |= sys_flag::COMPRESSED | 0x300;
            Bytes::from(
                enc.finish()
                    .map_err(|e| ClientError::InvalidConfig(format!("compress: {e}")))?,
            )
        } else {
            msg.body.clone()
        };
        let header = SendMessageRequestHeaderV2 {
            a: self.group.clone(),
            b: mq.topic.clone(),
            c: AUTO_CREATE_TOPIC.to_owned(),
            d: 4,
            e: mq.queue_id,
            f: sys,
            g: crate::now_millis(),
            h: msg.flag,
            i: Some(properties.to_wire()),
            j: Some(reconsume.unwrap_or(0)),
            k: Some(false),
            l: max_reconsume,
            m: Some(false),
            n: Some(mq.broker_name.clone()),
        };
        self.instance
            .api()
            .send_message_v2(
                &addr,
                &mq.broker_name,
                &header,
                body,
                uniq,
                self.send_timeout,
            )
            .await
    }

    /// Sends several messages of one topic to one queue in one request
    /// (SEND_BATCH_MESSAGE, Java `send(Collection<Message>)`): the next queue in round-robin
    /// order, retried on the following ones. The broker stores them contiguously; the result
    /// names the first offset, and `msg_id` joins the ids with commas as Java does.
    ///
    /// Bodies are not compressed (Java never compresses batches).
    ///
    /// # Errors
    /// [`ClientError::InvalidConfig`] for an empty batch or mixed topics; as [`Producer::send`].
    pub async fn send_batch(&self, msgs: Vec<Message>) -> Result<SendResult, ClientError> {
        let Some(first) = msgs.first() else {
            return Err(ClientError::InvalidConfig("empty batch".into()));
        };
        if msgs.iter().any(|m| m.topic != first.topic) {
            return Err(ClientError::InvalidConfig(
                "a batch must have one topic".into(),
            ));
        }
        let topic = self.instance.config().with_namespace(&first.topic);
        let queues = self.publish_queues(&topic).await?;
        if queues.is_empty() {
            return Err(ClientError::TopicRouteNotFound { topic });
        }
        let mut ids = Vec::with_capacity(msgs.len());
        let mut body = bytes::BytesMut::new();
        for m in &msgs {
            let mut props = m.properties.clone();
            let id = match props.get(property::UNIQ_KEY) {
                Some(u) => u.to_owned(),
                None => {
                    let u = create_uniq_id();
                    props.insert(property::UNIQ_KEY, u.as_str());
                    u
                }
            };
            ids.push(id);
            encode_batch_item(&mut body, m.flag, &m.body, &props.to_wire());
        }
        let body = body.freeze();
        let mut last = None;
        for _ in 0..=self.retry_times {
            let i = self.next_queue.fetch_add(1, Ordering::Relaxed);
            let mq = &queues[i % queues.len()];
            let Some(addr) = self.instance.master_addr_cached(mq) else {
                last = Some(ClientError::BrokerNotFound {
                    broker_name: self.instance.broker_name_of(mq).into_owned(),
                });
                continue;
            };
            // No UNIQ_KEY on the batch itself: brokers append the batch's properties to
            // every inner message, and a batch id would replace each message's own id.
            let mut batch_props = Properties::new();
            batch_props.insert(property::WAIT, "true");
            let header = SendMessageRequestHeaderV2 {
                a: self.group.clone(),
                b: mq.topic.clone(),
                c: AUTO_CREATE_TOPIC.to_owned(),
                d: 4,
                e: mq.queue_id,
                f: 0,
                g: crate::now_millis(),
                h: 0,
                i: Some(batch_props.to_wire()),
                j: Some(0),
                k: Some(false),
                l: None,
                m: Some(true),
                n: Some(mq.broker_name.clone()),
            };
            let mut cmd = rmq_remoting::RemotingCommand::request_with_header(&header)
                .map_err(|source| ClientError::Header {
                    request: rmq_remoting::RequestCode::SEND_BATCH_MESSAGE,
                    source,
                })?
                .with_body(body.clone());
            cmd.code = rmq_remoting::RequestCode::SEND_BATCH_MESSAGE.0;
            match self
                .instance
                .api()
                .send_command(
                    &addr,
                    &mq.broker_name,
                    &mq.topic,
                    cmd,
                    ids.join(","),
                    self.send_timeout,
                )
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(queue = ?mq, error = %e, "batch send failed, trying the next queue");
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Unregisters the producer group.
    pub async fn shutdown(&self) {
        self.instance.unregister_producer(&self.group).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniq_ids_are_32_hex_and_distinct() {
        let a = create_uniq_id();
        let b = create_uniq_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
        assert_eq!(a[..20], b[..20]);
    }

    #[test]
    fn month_start() {
        // 2023-11-14T22:13:20Z → 13 days, 22:13:20 into November.
        let ms = 1_700_000_000_000;
        assert_eq!(
            ms_since_month_start(ms),
            13 * 86_400_000 + (22 * 3600 + 13 * 60 + 20) * 1000
        );
        // 2024-03-01T00:00:00Z is a month start (leap year February before it).
        assert_eq!(ms_since_month_start(1_709_251_200_000), 0);
    }
}
