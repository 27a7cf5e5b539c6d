//! Topic routes (REMOTING.md §4): [`MessageQueue`], [`TopicRouteData`] parsed leniently, and
//! the queues and broker addresses derived from them.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The auto-create template topic (Java `TopicValidator.AUTO_CREATE_TOPIC_KEY_TOPIC`).
pub const AUTO_CREATE_TOPIC: &str = "TBW102";

/// Broker id of a master.
pub const MASTER_ID: i64 = 0;

/// Permission bits (`PermName`).
pub mod perm {
    /// Priority.
    pub const PRIORITY: i32 = 0x8;
    /// Readable: consumers may pull.
    pub const READ: i32 = 0x4;
    /// Writable: producers may send.
    pub const WRITE: i32 = 0x2;
    /// Inherit.
    pub const INHERIT: i32 = 0x1;
}

/// One queue of a topic on one broker (Java `MessageQueue`).
///
/// Ordered like Java's `compareTo`: topic, then broker name, then queue id numerically.
/// (Rust compares strings by bytes, Java by UTF-16 units; the two agree for all names a
/// RocketMQ topic or broker may have, which are ASCII.) Serialized with fastjson's key order.
#[derive(PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    /// Broker name.
    pub broker_name: String,
    /// Queue id, `0..readQueueNums`.
    pub queue_id: i32,
    /// Topic.
    pub topic: String,
}

impl MessageQueue {
    /// A queue.
    pub fn new(topic: impl Into<String>, broker_name: impl Into<String>, queue_id: i32) -> Self {
        MessageQueue {
            broker_name: broker_name.into(),
            queue_id,
            topic: topic.into(),
        }
    }
}

impl Clone for MessageQueue {
    fn clone(&self) -> Self {
        MessageQueue {
            broker_name: self.broker_name.clone(),
            queue_id: self.queue_id,
            topic: self.topic.clone(),
        }
    }

    /// Reuses the strings' buffers (no allocation when they are large enough): consume
    /// loops keep one context and point it at each batch's queue.
    fn clone_from(&mut self, source: &Self) {
        self.broker_name.clone_from(&source.broker_name);
        self.queue_id = source.queue_id;
        self.topic.clone_from(&source.topic);
    }
}

impl Ord for MessageQueue {
    fn cmp(&self, other: &Self) -> Ordering {
        self.topic
            .cmp(&other.topic)
            .then_with(|| self.broker_name.cmp(&other.broker_name))
            .then_with(|| self.queue_id.cmp(&other.queue_id))
    }
}

impl PartialOrd for MessageQueue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for MessageQueue {
    /// Java `MessageQueue.toString()`, which the consistent-hash strategy hashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MessageQueue [topic={}, brokerName={}, queueId={}]",
            self.topic, self.broker_name, self.queue_id
        )
    }
}

impl fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.topic, self.broker_name, self.queue_id)
    }
}

/// One broker's queues of a topic (Java `QueueData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    /// Broker name.
    pub broker_name: String,
    /// Readable queues.
    pub read_queue_nums: i32,
    /// Writable queues.
    pub write_queue_nums: i32,
    /// Permission bits, see [`perm`].
    pub perm: i32,
    /// Topic sys flag; spelt `topicSynFlag` before 4.9.0, both accepted.
    #[serde(default, alias = "topicSynFlag")]
    pub topic_sys_flag: i32,
}

/// One broker (master and slaves) of a cluster (Java `BrokerData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    /// Cluster name.
    #[serde(default)]
    pub cluster: String,
    /// Broker name.
    pub broker_name: String,
    /// Broker id (0 = master) → `host:port`.
    pub broker_addrs: BTreeMap<i64, String>,
    /// 5.x zone name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
    /// 5.x acting-master switch.
    #[serde(default)]
    pub enable_acting_master: bool,
}

impl BrokerData {
    /// The master's address (id 0).
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }
}

/// The prefix of the broker name static-topic queues carry (Java
/// `MixAll.LOGICAL_QUEUE_MOCK_BROKER_PREFIX`): `__syslo__global__` for the global scope.
pub const LOGICAL_QUEUE_MOCK_BROKER_PREFIX: &str = "__syslo__";
/// The default scope of a static topic (Java `MixAll.METADATA_SCOPE_GLOBAL`).
pub const METADATA_SCOPE_GLOBAL: &str = "__global__";

/// One broker's share of a 5.x static (logical-queue) topic (Java
/// `TopicQueueMappingInfo`, REMOTING-5X §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicQueueMappingInfo {
    /// Topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// Scope, `__global__` by default.
    #[serde(default)]
    pub scope: Option<String>,
    /// Number of logical queues.
    #[serde(default)]
    pub total_queues: i32,
    /// The physical broker hosting the logical queues listed in `curr_id_map`.
    #[serde(default)]
    pub bname: Option<String>,
    /// The higher epoch wins when two brokers list one logical queue.
    #[serde(default)]
    pub epoch: i64,
    /// Being changed.
    #[serde(default)]
    pub dirty: bool,
    /// Logical queue id → physical queue id on `bname`, for the logical queues this broker
    /// leads.
    #[serde(default)]
    pub curr_id_map: Option<BTreeMap<i32, i32>>,
}

/// A topic's route as the name server returns it (Java `TopicRouteData`).
///
/// A 5.x static topic (non-empty `topic_queue_mapping_by_broker`) is consumed through its
/// logical queues, as Java 5.x does: see [`TopicRouteData::static_queue_brokers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    /// Producer-side order config, `brokerName:queueNum;…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    /// Queues per broker.
    #[serde(default)]
    pub queue_datas: Vec<QueueData>,
    /// Brokers.
    #[serde(default)]
    pub broker_datas: Vec<BrokerData>,
    /// Legacy filter servers.
    #[serde(default)]
    pub filter_server_table: HashMap<String, Vec<String>>,
    /// 5.x static topics: broker name → its share of the logical queues. Java's key is
    /// `topicQueueMappingByBroker`; the rocketmq-rust 1.0 name server writes
    /// `topicQueueMappingInfo`; both are read.
    #[serde(
        default,
        alias = "topicQueueMappingInfo",
        skip_serializing_if = "Option::is_none"
    )]
    pub topic_queue_mapping_by_broker: Option<BTreeMap<String, TopicQueueMappingInfo>>,
}

/// Why a route body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("route body is not valid route JSON")]
pub struct RouteParseError(#[source] serde_json::Error);

impl TopicRouteData {
    /// Parses a GET_ROUTEINFO_BY_TOPIC body, accepting the old fastjson form with bare
    /// numeric map keys (`{0:"127.0.0.1:10911"}`, REMOTING.md §4.3) as well as standard JSON.
    ///
    /// # Errors
    /// [`RouteParseError`] when the body is not route JSON even after the key fix-up.
    pub fn parse(body: &[u8]) -> Result<Self, RouteParseError> {
        let text = String::from_utf8_lossy(body);
        let fixed = quote_numeric_keys(&text);
        let mut data: TopicRouteData = serde_json::from_str(&fixed).map_err(RouteParseError)?;
        data.normalize();
        Ok(data)
    }

    /// Sorts queue and broker data by broker name, so that equal routes compare equal
    /// (Java `topicRouteDataChanged` sorts before comparing).
    pub fn normalize(&mut self) {
        self.queue_datas
            .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        self.broker_datas
            .sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    }

    /// For a static topic (a non-empty mapping), the logical queues and the physical broker
    /// each is bound to (Java `ClientMetadata.topicRouteData2EndpointsForStaticTopic`):
    /// every id below the largest `totalQueues`, on the broker of the highest-epoch mapping
    /// that lists it; `None` for an id no mapping lists (its requests fail with "broker not
    /// found", as in Java). The queues carry the mock broker name
    /// `__syslo__<scope>` ([`LOGICAL_QUEUE_MOCK_BROKER_PREFIX`]). `None` for an ordinary
    /// topic.
    pub fn static_queue_brokers(&self, topic: &str) -> Option<Vec<(MessageQueue, Option<String>)>> {
        let infos = self.topic_queue_mapping_by_broker.as_ref()?;
        if infos.is_empty() {
            return None;
        }
        let total = infos
            .values()
            .map(|i| i.total_queues)
            .max()
            .unwrap_or(0)
            .max(0);
        let scope = infos
            .values()
            .find_map(|i| i.scope.clone())
            .unwrap_or_else(|| METADATA_SCOPE_GLOBAL.to_owned());
        // Java `TopicQueueMappingUtils.getMockBrokerName`: the global scope loses its
        // leading "__" (`__syslo__global__`), any other is appended as it is.
        let mock = match scope.as_str() {
            METADATA_SCOPE_GLOBAL => format!("{LOGICAL_QUEUE_MOCK_BROKER_PREFIX}{}", &scope[2..]),
            other => format!("{LOGICAL_QUEUE_MOCK_BROKER_PREFIX}{other}"),
        };
        let mut bound: BTreeMap<i32, (i64, String)> = BTreeMap::new();
        for (name, info) in infos {
            let bname = info.bname.clone().unwrap_or_else(|| name.clone());
            for logical in info.curr_id_map.iter().flat_map(|m| m.keys()) {
                let better = bound
                    .get(logical)
                    .is_none_or(|(epoch, _)| info.epoch > *epoch);
                if better {
                    bound.insert(*logical, (info.epoch, bname.clone()));
                }
            }
        }
        Some(
            (0..total)
                .map(|id| {
                    (
                        MessageQueue::new(topic, &mock, id),
                        bound.get(&id).map(|(_, b)| b.clone()),
                    )
                })
                .collect(),
        )
    }

    /// Queues a consumer may pull from (Java `topicRouteData2TopicSubscribeInfo`): every
    /// readable broker's `0..readQueueNums`, sorted; a static topic's logical queues
    /// (see [`TopicRouteData::static_queue_brokers`]).
    pub fn subscribe_queues(&self, topic: &str) -> Vec<MessageQueue> {
        if let Some(logical) = self.static_queue_brokers(topic) {
            return logical.into_iter().map(|(mq, _)| mq).collect();
        }
        let mut out: Vec<MessageQueue> = self
            .queue_datas
            .iter()
            .filter(|q| q.perm & perm::READ != 0)
            .flat_map(|q| {
                (0..q.read_queue_nums).map(move |i| MessageQueue::new(topic, &q.broker_name, i))
            })
            .collect();
        out.sort();
        out
    }

    /// Queues a producer may send to (Java `topicRouteData2TopicPublishInfo`): writable
    /// brokers that have a master, by broker name, `0..writeQueueNums`; a static topic's
    /// bound logical queues.
    pub fn publish_queues(&self, topic: &str) -> Vec<MessageQueue> {
        if let Some(logical) = self.static_queue_brokers(topic) {
            return logical
                .into_iter()
                .filter(|(_, b)| b.is_some())
                .map(|(mq, _)| mq)
                .collect();
        }
        let mut qds: Vec<&QueueData> = self.queue_datas.iter().collect();
        qds.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        qds.into_iter()
            .filter(|q| q.perm & perm::WRITE != 0)
            .filter(|q| {
                self.broker_datas
                    .iter()
                    .any(|b| b.broker_name == q.broker_name && b.master_addr().is_some())
            })
            .flat_map(|q| {
                (0..q.write_queue_nums).map(move |i| MessageQueue::new(topic, &q.broker_name, i))
            })
            .collect()
    }
}

/// Rewrites bare integer map keys (`{0:"a",-1:2}`) into quoted ones, leaving string
/// literals untouched (REMOTING.md §3.22). Borrowed when nothing needs fixing.
pub fn quote_numeric_keys(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0usize;
    let mut i = 0usize;
    let mut in_string = false;
    let mut after_open = false; // last significant char was `{` or `,`
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                after_open = false;
            }
            b'{' | b',' => after_open = true,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'-' | b'0'..=b'9' if after_open => {
                let start = i;
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let mut k = j;
                while k < b.len() && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                if k < b.len() && b[k] == b':' && j > start + usize::from(c == b'-') {
                    let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
                    o.push_str(&text[copied..start]);
                    o.push('"');
                    o.push_str(&text[start..j]);
                    o.push('"');
                    copied = j;
                }
                after_open = false;
                i = j;
                continue;
            }
            _ => after_open = false,
        }
        i += 1;
    }
    match out {
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_integer_keys_are_quoted_but_strings_are_not_touched() {
        let old = r#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1 :"x:{2:3}"},"brokerName":"b","cluster":"c"}],"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,"topicSynFlag":0,"writeQueueNums":4}],"filterServerTable":{},"m":{-1:3}}"#;
        let fixed = quote_numeric_keys(old);
        assert!(
            fixed.contains(r#"{"0":"127.0.0.1:10911","1" :"x:{2:3}"}"#),
            "{fixed}"
        );
        assert!(fixed.contains(r#"{"-1":3}"#));
        let r = TopicRouteData::parse(old.as_bytes()).unwrap();
        assert_eq!(r.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
        assert_eq!(r.broker_datas[0].broker_addrs[&1], "x:{2:3}");
        assert_eq!(r.subscribe_queues("T").len(), 4);
        let standard = r#"{"queueDatas":[],"brokerDatas":[],"filterServerTable":{}}"#;
        assert!(matches!(quote_numeric_keys(standard), Cow::Borrowed(_)));
    }

    #[test]
    fn queues_follow_permissions_and_order() {
        let json = r#"{"queueDatas":[
            {"brokerName":"b","perm":6,"readQueueNums":2,"writeQueueNums":1,"topicSysFlag":0},
            {"brokerName":"a","perm":4,"readQueueNums":12,"writeQueueNums":12,"topicSysFlag":0}],
          "brokerDatas":[{"cluster":"c","brokerName":"a","brokerAddrs":{"0":"h:1"}},
                         {"cluster":"c","brokerName":"b","brokerAddrs":{"1":"h:2"}}]}"#;
        let r = TopicRouteData::parse(json.as_bytes()).unwrap();
        let sub = r.subscribe_queues("T");
        assert_eq!(sub.len(), 14);
        assert_eq!(sub[2], MessageQueue::new("T", "a", 2));
        assert_eq!(sub[12], MessageQueue::new("T", "b", 0));
        // a is read-only, b has no master.
        assert!(r.publish_queues("T").is_empty());
        assert_eq!(
            MessageQueue::new("T", "b", 3).to_string(),
            "MessageQueue [topic=T, brokerName=b, queueId=3]"
        );
    }
}

#[cfg(test)]
mod static_topic_tests {
    use super::*;

    /// Java's spelling (REMOTING-5X §2.2, unquoted integer keys as fastjson writes them):
    /// the highest epoch wins a logical queue two brokers list; an id no broker lists is
    /// unbound (not published, its requests fail); queueDatas are ignored.
    #[test]
    fn logical_queues_are_bound_to_the_highest_epoch() {
        let body = br#"{"brokerDatas":[],"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"writeQueueNums":8}],
            "topicQueueMappingByBroker":{
              "broker-a":{"bname":"broker-a","currIdMap":{0:0,1:1},"dirty":false,"epoch":5,"scope":"__global__","topic":"ST","totalQueues":4},
              "broker-b":{"bname":"broker-b","currIdMap":{1:0,2:1},"dirty":false,"epoch":7,"scope":"__global__","topic":"ST","totalQueues":4}}}"#;
        let route = TopicRouteData::parse(body).unwrap();
        let bound: Vec<(i32, Option<String>)> = route
            .static_queue_brokers("ST")
            .unwrap()
            .into_iter()
            .map(|(mq, b)| {
                assert_eq!(mq.broker_name, "__syslo__global__");
                (mq.queue_id, b)
            })
            .collect();
        assert_eq!(
            bound,
            [
                (0, Some("broker-a".to_owned())),
                (1, Some("broker-b".to_owned())),
                (2, Some("broker-b".to_owned())),
                (3, None)
            ]
        );
        assert_eq!(route.subscribe_queues("ST").len(), 4);
        assert_eq!(route.publish_queues("ST").len(), 3);
        // An ordinary route, or an empty mapping, is not static.
        let plain = TopicRouteData::parse(
            br#"{"brokerDatas":[],"queueDatas":[],"topicQueueMappingByBroker":{}}"#,
        )
        .unwrap();
        assert!(plain.static_queue_brokers("T").is_none());
    }
}
