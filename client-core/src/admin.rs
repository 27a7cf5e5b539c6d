//! The read-only admin requests behind `rmq status`, `rmq doctor`, `rmq topics`,
//! `rmq cluster` and `rmq message` (Java `MQClientAPIImpl` / `DefaultMQAdminExtImpl`), and
//! the bodies they return.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use rmq_remoting::RequestCode;
use serde::{Deserialize, Serialize};

use crate::api::ClientApi;
use crate::error::ClientError;
use crate::filter::SubscriptionData;
use crate::header::GetConsumerRunningInfoRequestHeader;
use crate::route::{BrokerData, MessageQueue, quote_numeric_keys};
use rmq_remoting::protocol::EmptyHeader;

/// One connection of a consumer group's member, as a broker sees it (Java `Connection`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The member's client id (`ip@instance`).
    pub client_id: String,
    /// The remote address of its connection, `host:port`.
    #[serde(default)]
    pub client_addr: String,
    /// Its language (`JAVA`, `RUST`, …).
    #[serde(default)]
    pub language: String,
    /// Its version number (Java `MQVersion` ordinal).
    #[serde(default)]
    pub version: i32,
}

/// A consumer group's members and subscriptions on one broker (Java `ConsumerConnection`,
/// the GET_CONSUMER_CONNECTION_LIST (203) body). The broker keeps one subscription per
/// topic for the group (the last heartbeat's), so differences between members show only in
/// each member's [`ConsumerRunningInfo`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerConnection {
    /// The members' connections.
    #[serde(default)]
    pub connection_set: Vec<Connection>,
    /// Topic → the group's subscription as the broker holds it.
    #[serde(default)]
    pub subscription_table: BTreeMap<String, SubscriptionData>,
    /// `CONSUME_PASSIVELY` (push) or `CONSUME_ACTIVELY` (pull).
    #[serde(default)]
    pub consume_type: Option<String>,
    /// `CLUSTERING` or `BROADCASTING`.
    #[serde(default)]
    pub message_model: Option<String>,
    /// `CONSUME_FROM_LAST_OFFSET`, …
    #[serde(default)]
    pub consume_from_where: Option<String>,
}

/// One queue of a member's process-queue table (Java `ProcessQueueInfo`). Times are ms
/// since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessQueueInfo {
    /// The offset the member would commit now.
    pub commit_offset: i64,
    /// Smallest cached offset.
    pub cached_msg_min_offset: i64,
    /// Largest cached offset.
    pub cached_msg_max_offset: i64,
    /// Messages cached (pulled, not yet consumed).
    pub cached_msg_count: i64,
    /// Cached bytes, MiB (rounded down).
    pub cached_msg_size_in_mi_b: i64,
    /// Orderly: the broker lock is held.
    pub locked: bool,
    /// Orderly: failed unlock attempts.
    pub try_unlock_times: i64,
    /// Orderly: when the lock was last renewed.
    pub last_lock_timestamp: i64,
    /// Being released (Java's spelling `droped`).
    pub droped: bool,
    /// When the queue was last pulled.
    pub last_pull_timestamp: i64,
    /// When a listener call last finished on it.
    pub last_consume_timestamp: i64,
}

/// One popped queue in a member's running info (Java `PopProcessQueueInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PopProcessQueueInfo {
    /// Popped messages not yet acknowledged or delayed.
    pub wait_ack_count: i64,
    /// Given up (Java's spelling).
    pub droped: bool,
    /// When it was last popped, ms since the epoch.
    pub last_pop_timestamp: i64,
}

/// One topic's rates in a member's running info (Java `ConsumeStatus`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumeStatus {
    /// Mean pull round trip, ms.
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    /// Messages pulled per second.
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    /// Mean listener call time, ms.
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    /// Messages consumed successfully per second.
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    /// Messages failed per second.
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    /// Messages failed in the member's window.
    #[serde(rename = "consumeFailedMsgs")]
    pub consume_failed_msgs: i64,
}

/// What a member reports about itself (Java `ConsumerRunningInfo`, the
/// GET_CONSUMER_RUNNING_INFO (307) reply), rmq and Java members alike.
#[derive(Debug, Clone, Default)]
pub struct ConsumerRunningInfo {
    /// `PROP_CONSUME_TYPE`, `PROP_CLIENT_VERSION`, `PROP_CONSUMEORDERLY`, `messageModel`, …
    /// (Java puts the consumer's settings here as strings).
    pub properties: BTreeMap<String, String>,
    /// The member's own subscriptions.
    pub subscription_set: Vec<SubscriptionData>,
    /// The queues it holds (owns or is still draining).
    pub mq_table: BTreeMap<MessageQueue, ProcessQueueInfo>,
    /// The queues it pops (pop mode; queue id −1 for all of a broker's queues of a topic).
    pub mq_pop_table: BTreeMap<MessageQueue, PopProcessQueueInfo>,
    /// Per topic rates.
    pub status_table: BTreeMap<String, ConsumeStatus>,
}

impl ConsumerRunningInfo {
    /// Parses the reply body (fastjson, `mqTable` keyed by MessageQueue objects).
    ///
    /// # Errors
    /// [`ClientError::Body`] when the body is not a running info.
    pub fn parse(body: &[u8]) -> Result<Self, ClientError> {
        let bad = |source: crate::BoxError| ClientError::Body {
            request: RequestCode::GET_CONSUMER_RUNNING_INFO,
            source,
        };
        let text = String::from_utf8_lossy(body);
        let mut object = crate::fastjson::parse_object(&text, &["mqTable", "mqPopTable"])
            .map_err(|e| bad(Box::new(e)))?;
        let mut info = ConsumerRunningInfo::default();
        for (mq, v) in object.mq_maps.remove("mqTable").unwrap_or_default() {
            let pq: ProcessQueueInfo = serde_json::from_value(v).map_err(|e| bad(Box::new(e)))?;
            info.mq_table.insert(mq, pq);
        }
        for (mq, v) in object.mq_maps.remove("mqPopTable").unwrap_or_default() {
            let pq: PopProcessQueueInfo =
                serde_json::from_value(v).map_err(|e| bad(Box::new(e)))?;
            info.mq_pop_table.insert(mq, pq);
        }
        let mut take = |name: &str| object.fields.remove(name).unwrap_or_default();
        if let serde_json::Value::Object(props) = take("properties") {
            for (k, v) in props {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                info.properties.insert(k, v);
            }
        }
        if let v @ serde_json::Value::Array(_) = take("subscriptionSet") {
            info.subscription_set = serde_json::from_value(v).map_err(|e| bad(Box::new(e)))?;
        }
        if let v @ serde_json::Value::Object(_) = take("statusTable") {
            info.status_table = serde_json::from_value(v).map_err(|e| bad(Box::new(e)))?;
        }
        info.subscription_set.sort_by(|a, b| a.topic.cmp(&b.topic));
        Ok(info)
    }

    /// Whether the member consumes orderly (`PROP_CONSUMEORDERLY`).
    pub fn is_orderly(&self) -> bool {
        self.properties
            .get("PROP_CONSUMEORDERLY")
            .is_some_and(|v| v == "true")
    }

    /// The member's subscriptions as `topic → expression` (tags or SQL92 text), the form
    /// members are compared in.
    pub fn subscriptions(&self) -> BTreeMap<String, String> {
        self.subscription_set
            .iter()
            .map(|s| (s.topic.clone(), s.sub_string.clone()))
            .collect()
    }
}

/// The brokers of every cluster (Java `ClusterInfo`, the GET_BROKER_CLUSTER_INFO (106)
/// body from the name server).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Broker name → its addresses.
    #[serde(default)]
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Cluster name → broker names.
    #[serde(default)]
    pub cluster_addr_table: BTreeMap<String, Vec<String>>,
}

/// GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) body (Java `TopicList`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicList {
    /// Topic names (system topics included).
    #[serde(default)]
    pub topic_list: Vec<String>,
}

/// GET_CONSUMER_CONNECTION_LIST (203) request (Java `GetConsumerConnectionListRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetConsumerConnectionListRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
}

impl rmq_remoting::protocol::RequestHeader for GetConsumerConnectionListRequestHeader {
    const CODE: RequestCode = RequestCode::GET_CONSUMER_CONNECTION_LIST;
    type Response = EmptyHeader;
}

/// A request without a header (GET_BROKER_CLUSTER_INFO, GET_ALL_TOPIC_LIST_FROM_NAMESERVER).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct NoHeader<const CODE: i32> {}

impl<const CODE: i32> rmq_remoting::protocol::RequestHeader for NoHeader<CODE> {
    const CODE: RequestCode = RequestCode(CODE);
    type Response = EmptyHeader;
}

/// VIEW_MESSAGE_BY_ID (33) request (Java `ViewMessageRequestHeader`): the commit-log offset
/// encoded in an offset message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewMessageRequestHeader {
    /// Commit-log offset.
    pub offset: i64,
}

impl rmq_remoting::protocol::RequestHeader for ViewMessageRequestHeader {
    const CODE: RequestCode = RequestCode::VIEW_MESSAGE_BY_ID;
    type Response = EmptyHeader;
}

/// QUERY_MESSAGE (12) request (Java `QueryMessageRequestHeader`): messages of `topic` whose
/// key (or, with `_UNIQUE_KEY_QUERY`, whose unique id) is `key`, stored in the time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryMessageRequestHeader {
    /// Topic.
    pub topic: String,
    /// The key or unique id.
    pub key: String,
    /// Most messages returned.
    pub max_num: i32,
    /// Range start, ms since the epoch.
    pub begin_timestamp: i64,
    /// Range end, ms since the epoch.
    pub end_timestamp: i64,
    /// `"true"` for a lookup by unique id (Java `MixAll.UNIQUE_MSG_QUERY_FLAG`).
    #[serde(rename = "_UNIQUE_KEY_QUERY", skip_serializing_if = "Option::is_none")]
    pub unique_key_query: Option<String>,
}

impl rmq_remoting::protocol::RequestHeader for QueryMessageRequestHeader {
    const CODE: RequestCode = RequestCode::QUERY_MESSAGE;
    type Response = EmptyHeader;
}

/// An offset message id (Java `MessageDecoder.decodeMessageId`): the storing broker's
/// `host:port` and the commit-log offset. `None` when `id` is not 32 hex digits of an IPv4
/// store host (16 bytes: ip 4, port 4, offset 8; IPv6 ids are 56 digits and decoded too).
pub fn decode_offset_msg_id(id: &str) -> Option<(String, i64)> {
    let bytes: Vec<u8> = (0..id.len())
        .step_by(2)
        .map(|i| {
            id.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()?;
    let (ip, rest): (std::net::IpAddr, &[u8]) = match bytes.len() {
        16 => (
            std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into(),
            &bytes[4..],
        ),
        28 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&bytes[..16]);
            (std::net::Ipv6Addr::from(a).into(), &bytes[16..])
        }
        _ => return None,
    };
    let port = i32::from_be_bytes(rest[..4].try_into().ok()?);
    let offset = i64::from_be_bytes(rest[4..12].try_into().ok()?);
    if !(1..=65535).contains(&port) || offset < 0 {
        return None;
    }
    Some((
        std::net::SocketAddr::new(ip, port as u16).to_string(),
        offset,
    ))
}

impl ClientApi {
    /// GET_CONSUMER_CONNECTION_LIST (203) to the broker at `addr`: the group's members
    /// connected to it and the subscriptions it holds for the group.
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] with CONSUMER_NOT_ONLINE (206) when no member
    /// of the group is connected to that broker; a malformed body.
    pub async fn get_consumer_connection_list(
        &self,
        addr: &str,
        group: &str,
        timeout: Duration,
    ) -> Result<ConsumerConnection, ClientError> {
        let header = GetConsumerConnectionListRequestHeader {
            consumer_group: group.to_owned(),
        };
        let resp = self.invoke_ok(addr, &header, Bytes::new(), timeout).await?;
        lenient_json(RequestCode::GET_CONSUMER_CONNECTION_LIST, &resp.body)
    }

    /// GET_CONSUMER_RUNNING_INFO (307) through the broker at `addr` to `client_id`, a member
    /// of `group`: what that member reports (Java `MQClientAPIImpl.getConsumerRunningInfo`).
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] when the broker does not know the member or
    /// the member did not answer; a malformed body.
    pub async fn get_consumer_running_info(
        &self,
        addr: &str,
        group: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<ConsumerRunningInfo, ClientError> {
        let header = GetConsumerRunningInfoRequestHeader {
            consumer_group: group.to_owned(),
            client_id: client_id.to_owned(),
            jstack_enable: false,
        };
        let resp = self.invoke_ok(addr, &header, Bytes::new(), timeout).await?;
        ConsumerRunningInfo::parse(&resp.body)
    }

    /// GET_BROKER_CLUSTER_INFO (106) to the name server at `addr`: every broker it knows.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes, a malformed body.
    pub async fn get_broker_cluster_info(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<ClusterInfo, ClientError> {
        let header = NoHeader::<{ RequestCode::GET_BROKER_CLUSTER_INFO.0 }> {};
        let resp = self.invoke_ok(addr, &header, Bytes::new(), timeout).await?;
        lenient_json(RequestCode::GET_BROKER_CLUSTER_INFO, &resp.body)
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) to the name server at `addr`: every topic's
    /// name, sorted.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes, a malformed body.
    pub async fn get_all_topic_list(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, ClientError> {
        let header = NoHeader::<{ RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER.0 }> {};
        let resp = self.invoke_ok(addr, &header, Bytes::new(), timeout).await?;
        let mut list: TopicList =
            lenient_json(RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER, &resp.body)?;
        list.topic_list.sort();
        Ok(list.topic_list)
    }

    /// VIEW_MESSAGE_BY_ID (33) to the broker at `addr`: the message stored at commit-log
    /// `offset` (see [`decode_offset_msg_id`]).
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] (SYSTEM_ERROR) when nothing is stored
    /// there; a body that is not a message record.
    pub async fn view_message(
        &self,
        addr: &str,
        offset: i64,
        timeout: Duration,
    ) -> Result<crate::MessageExt, ClientError> {
        let header = ViewMessageRequestHeader { offset };
        let resp = self.invoke_ok(addr, &header, Bytes::new(), timeout).await?;
        crate::message::decode_message(&resp.body).map_err(|e| ClientError::Body {
            request: RequestCode::VIEW_MESSAGE_BY_ID,
            source: Box::new(e),
        })
    }

    /// QUERY_MESSAGE (12) to the broker at `addr`: the messages the broker's index finds
    /// for `header` (empty when none: QUERY_NOT_FOUND).
    ///
    /// # Errors
    /// Transport errors, other non-SUCCESS codes, a body that is not message records.
    pub async fn query_message(
        &self,
        addr: &str,
        header: &QueryMessageRequestHeader,
        timeout: Duration,
    ) -> Result<Vec<crate::MessageExt>, ClientError> {
        let resp = self.invoke(addr, header, Bytes::new(), timeout).await?;
        let code = resp.response_code();
        if code == rmq_remoting::ResponseCode::QUERY_NOT_FOUND {
            return Ok(Vec::new());
        }
        if !code.is_success() {
            return Err(crate::api::broker_error(
                RequestCode::QUERY_MESSAGE,
                addr,
                &resp,
            ));
        }
        crate::message::decode_messages(&resp.body).map_err(|e| ClientError::Body {
            request: RequestCode::QUERY_MESSAGE,
            source: Box::new(e),
        })
    }
}

/// Standard JSON after quoting fastjson's bare integer keys (cluster info has them).
fn lenient_json<T: serde::de::DeserializeOwned>(
    request: RequestCode,
    body: &[u8],
) -> Result<T, ClientError> {
    let text = String::from_utf8_lossy(body);
    serde_json::from_str(&quote_numeric_keys(&text)).map_err(|source| ClientError::Body {
        request,
        source: Box::new(source),
    })
}

/// Members of a group seen on several brokers, merged by client id.
pub fn merge_connections(per_broker: Vec<ConsumerConnection>) -> ConsumerConnection {
    let mut merged = ConsumerConnection::default();
    let mut by_id: HashMap<String, Connection> = HashMap::new();
    for c in per_broker {
        for conn in c.connection_set {
            by_id.entry(conn.client_id.clone()).or_insert(conn);
        }
        merged.subscription_table.extend(c.subscription_table);
        merged.consume_type = merged.consume_type.or(c.consume_type);
        merged.message_model = merged.message_model.or(c.message_model);
        merged.consume_from_where = merged.consume_from_where.or(c.consume_from_where);
    }
    merged.connection_set = by_id.into_values().collect();
    merged
        .connection_set
        .sort_by(|a, b| a.client_id.cmp(&b.client_id));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_msg_ids_decode_to_the_store_host_and_offset() {
        let id = crate::message::create_offset_msg_id(&[127, 0, 0, 1], 10911, 0x1234_5678);
        assert_eq!(
            decode_offset_msg_id(&id),
            Some(("127.0.0.1:10911".to_owned(), 0x1234_5678))
        );
        assert_eq!(
            decode_offset_msg_id("not hex at all, 32 characters!!"),
            None
        );
        assert_eq!(decode_offset_msg_id("7F000001"), None);
    }

    #[test]
    fn running_info_with_object_keys_parses() {
        let body = br#"{"jstack":"","mqTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"cachedMsgCount":3,"cachedMsgMaxOffset":12,"cachedMsgMinOffset":10,"cachedMsgSizeInMiB":0,"commitOffset":10,"droped":false,"lastConsumeTimestamp":5,"lastLockTimestamp":0,"lastPullTimestamp":7,"locked":true,"transactionMsgCount":0,"transactionMsgMaxOffset":0,"transactionMsgMinOffset":0,"tryUnlockTimes":0}},"properties":{"PROP_CONSUMEORDERLY":"true","PROP_THREADPOOL_CORE_SIZE":20},"statusTable":{"T":{"consumeFailedMsgs":1,"consumeFailedTPS":0.5,"consumeOKTPS":12.5,"consumeRT":3.0,"pullRT":4.0,"pullTPS":13.0}},"subscriptionSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}]}"#;
        let info = ConsumerRunningInfo::parse(body).unwrap();
        let pq = &info.mq_table[&MessageQueue::new("T", "broker-a", 1)];
        assert_eq!(
            (pq.cached_msg_count, pq.commit_offset, pq.locked),
            (3, 10, true)
        );
        assert!(info.is_orderly());
        assert_eq!(info.properties["PROP_THREADPOOL_CORE_SIZE"], "20");
        assert_eq!(info.status_table["T"].consume_ok_tps, 12.5);
        assert_eq!(info.subscriptions()["T"], "*");
        assert!(ConsumerRunningInfo::parse(b"{\"mqTable\":[1]}").is_err());
    }

    #[test]
    fn cluster_info_with_integer_keys_parses() {
        let body = br#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}"#;
        let info: ClusterInfo = lenient_json(RequestCode::GET_BROKER_CLUSTER_INFO, body).unwrap();
        assert_eq!(
            info.broker_addr_table["broker-a"].master_addr(),
            Some("127.0.0.1:10911")
        );
        assert_eq!(info.cluster_addr_table["DefaultCluster"], ["broker-a"]);
    }
}
