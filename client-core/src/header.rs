//! Typed custom headers and JSON bodies of the requests a consumer sends (REMOTING.md §3).
//!
//! Field names are the Java field names; optional fields are omitted when `None`, as Java
//! omits null fields. Each request header names its code and its response header.

use std::borrow::Cow;

use rmq_remoting::RequestCode;
use rmq_remoting::protocol::{EmptyHeader, ExtFields, HeaderError, RequestHeader};
use serde::{Deserialize, Serialize};

use crate::filter::SubscriptionData;
use crate::route::MessageQueue;

macro_rules! request_header {
    ($ty:ident, $code:ident, $resp:ty) => {
        impl RequestHeader for $ty {
            const CODE: RequestCode = RequestCode::$code;
            type Response = $resp;
        }
    };
}

/// GET_ROUTEINFO_BY_TOPIC (105) request (Java `GetRouteInfoRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetRouteInfoRequestHeader {
    /// Topic.
    pub topic: String,
    /// `true` asks name servers ≥ 4.9.4 for standard JSON.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accept_standard_json_only: Option<bool>,
}
request_header!(
    GetRouteInfoRequestHeader,
    GET_ROUTEINFO_BY_TOPIC,
    EmptyHeader
);

/// PULL_MESSAGE (11) request (Java `PullMessageRequestHeader`), field order as Java declares it.
///
/// The strings are `Cow`s so that the pull loop lends its group, topic, expression and
/// broker name instead of copying them for every pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullMessageRequestHeader<'a> {
    /// Consumer group.
    pub consumer_group: Cow<'a, str>,
    /// Topic.
    pub topic: Cow<'a, str>,
    /// Queue id.
    pub queue_id: i32,
    /// Offset to read from.
    pub queue_offset: i64,
    /// Most messages wanted (push default 32).
    pub max_msg_nums: i32,
    /// `PullSysFlag` bits, see [`crate::api::pull_sys_flag`].
    pub sys_flag: i32,
    /// Offset piggy-backed for commit (with FLAG_COMMIT_OFFSET).
    pub commit_offset: i64,
    /// Long-poll hold, ms (with FLAG_SUSPEND).
    pub suspend_timeout_millis: i64,
    /// Expression (with FLAG_SUBSCRIPTION).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subscription: Option<Cow<'a, str>>,
    /// The subscription's version.
    pub sub_version: i64,
    /// TAG or SQL92.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expression_type: Option<Cow<'a, str>>,
    /// 5.x byte cap of the batch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_msg_bytes: Option<i32>,
    /// Broker name (5.x routing; ignored by 4.x).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<Cow<'a, str>>,
}
impl RequestHeader for PullMessageRequestHeader<'_> {
    const CODE: RequestCode = RequestCode::PULL_MESSAGE;
    type Response = PullMessageResponseHeader;

    /// Written field by field, in the key order `ExtFields::from_header` gives: the push
    /// consumer sends one of these per 32 messages, and the serde pass (a list of pairs,
    /// then sorted) was about 3 % of a whole `rmq consume` run's CPU.
    fn to_ext_fields(&self) -> Result<ExtFields, HeaderError> {
        let mut ext = ExtFields::with_capacity(13);
        if let Some(b) = &self.bname {
            ext.push_str("bname", b);
        }
        ext.push_int("commitOffset", self.commit_offset);
        ext.push_str("consumerGroup", &self.consumer_group);
        if let Some(e) = &self.expression_type {
            ext.push_str("expressionType", e);
        }
        if let Some(n) = self.max_msg_bytes {
            ext.push_int("maxMsgBytes", n.into());
        }
        ext.push_int("maxMsgNums", self.max_msg_nums.into());
        ext.push_int("queueId", self.queue_id.into());
        ext.push_int("queueOffset", self.queue_offset);
        ext.push_int("subVersion", self.sub_version);
        if let Some(s) = &self.subscription {
            ext.push_str("subscription", s);
        }
        ext.push_int("suspendTimeoutMillis", self.suspend_timeout_millis);
        ext.push_int("sysFlag", self.sys_flag.into());
        ext.push_str("topic", &self.topic);
        Ok(ext)
    }
}

/// PULL_MESSAGE response header (Java `PullMessageResponseHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullMessageResponseHeader {
    /// Broker id for the next pull of this queue (0 = master).
    #[serde(default)]
    pub suggest_which_broker_id: i64,
    /// Offset of the next pull.
    pub next_begin_offset: i64,
    /// Queue min offset.
    #[serde(default)]
    pub min_offset: i64,
    /// Queue max offset (exclusive).
    #[serde(default)]
    pub max_offset: i64,
    /// 5.x static topics: add to each message's queue offset.
    #[serde(default)]
    pub offset_delta: Option<i64>,
    /// 5.x topic sys flag.
    #[serde(default)]
    pub topic_sys_flag: Option<i32>,
    /// 5.x group sys flag.
    #[serde(default)]
    pub group_sys_flag: Option<i32>,
    /// 5.x reason of a NO_PERMISSION.
    #[serde(default)]
    pub forbidden_type: Option<i32>,
}

/// QUERY_CONSUMER_OFFSET (14) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryConsumerOffsetRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// 5.x: `false` forces QUERY_NOT_FOUND instead of the young-queue zero.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub set_zero_if_not_found: Option<bool>,
    /// Broker name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}
request_header!(
    QueryConsumerOffsetRequestHeader,
    QUERY_CONSUMER_OFFSET,
    OffsetResponseHeader
);

/// A response header carrying one `offset` (QUERY_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET,
/// SEARCH_OFFSET_BY_TIMESTAMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetResponseHeader {
    /// The offset.
    pub offset: i64,
}

/// UPDATE_CONSUMER_OFFSET (15) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateConsumerOffsetRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// The next offset to consume.
    pub commit_offset: i64,
    /// Broker name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}
request_header!(
    UpdateConsumerOffsetRequestHeader,
    UPDATE_CONSUMER_OFFSET,
    EmptyHeader
);

/// GET_CONSUMER_LIST_BY_GROUP (38) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetConsumerListByGroupRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
}
request_header!(
    GetConsumerListByGroupRequestHeader,
    GET_CONSUMER_LIST_BY_GROUP,
    EmptyHeader
);

/// GET_CONSUMER_RUNNING_INFO (307) request, client → broker, forwarded by the broker to
/// the member `client_id` (Java `GetConsumerRunningInfoRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetConsumerRunningInfoRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
    /// The member asked.
    pub client_id: String,
    /// Whether the member adds its thread dump (Java only).
    pub jstack_enable: bool,
}
request_header!(
    GetConsumerRunningInfoRequestHeader,
    GET_CONSUMER_RUNNING_INFO,
    EmptyHeader
);

/// GET_CONSUMER_LIST_BY_GROUP response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerListBody {
    /// Client ids of the live members.
    #[serde(default)]
    pub consumer_id_list: Vec<String>,
}

/// CONSUMER_SEND_MSG_BACK (36) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerSendMsgBackRequestHeader {
    /// The message's commit-log offset.
    pub offset: i64,
    /// Consumer group.
    pub group: String,
    /// 0 = broker decides (3 + reconsumeTimes), −1 = DLQ now, > 0 explicit.
    pub delay_level: i32,
    /// msgId of the message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin_msg_id: Option<String>,
    /// The restored real topic.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin_topic: Option<String>,
    /// Always false.
    pub unit_mode: bool,
    /// Max deliveries before the DLQ (honoured for request version ≥ 121).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_reconsume_times: Option<i32>,
    /// Broker name of the message's queue.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}
request_header!(
    ConsumerSendMsgBackRequestHeader,
    CONSUMER_SEND_MSG_BACK,
    EmptyHeader
);

/// GET_MAX_OFFSET (30) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMaxOffsetRequestHeader {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// Broker name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}
request_header!(
    GetMaxOffsetRequestHeader,
    GET_MAX_OFFSET,
    OffsetResponseHeader
);

/// GET_MIN_OFFSET (31) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetMinOffsetRequestHeader {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// Broker name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}
request_header!(
    GetMinOffsetRequestHeader,
    GET_MIN_OFFSET,
    OffsetResponseHeader
);

macro_rules! from_queue {
    ($($ty:ident),*) => {
        $(impl From<&MessageQueue> for $ty {
            fn from(mq: &MessageQueue) -> Self {
                $ty {
                    topic: mq.topic.clone(),
                    queue_id: mq.queue_id,
                    bname: Some(mq.broker_name.clone()),
                }
            }
        })*
    };
}
from_queue!(GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader);

/// SEARCH_OFFSET_BY_TIMESTAMP (29) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchOffsetRequestHeader {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// Time, ms since the epoch.
    pub timestamp: i64,
    /// `LOWER` / `UPPER` (brokers ≥ 5.1.4).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub boundary_type: Option<String>,
    /// Broker name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}
request_header!(
    SearchOffsetRequestHeader,
    SEARCH_OFFSET_BY_TIMESTAMP,
    OffsetResponseHeader
);

/// HEART_BEAT (34) request: no fields of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequestHeader {}
request_header!(HeartbeatRequestHeader, HEART_BEAT, EmptyHeader);

/// CHECK_CLIENT_CONFIG (46) request: no fields of its own; the body is a
/// [`CheckClientRequestBody`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckClientConfigRequestHeader {}
request_header!(
    CheckClientConfigRequestHeader,
    CHECK_CLIENT_CONFIG,
    EmptyHeader
);

/// The CHECK_CLIENT_CONFIG (46) body (Java `CheckClientRequestBody`), keys in fastjson's
/// alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckClientRequestBody {
    /// Client id (lower-case `Id` in this body).
    pub client_id: String,
    /// Consumer group (namespace-wrapped as sent everywhere else).
    pub group: String,
    /// Java's namespace field; rmq wraps the names itself and leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The subscription to check.
    pub subscription_data: crate::filter::SubscriptionData,
}

/// UNREGISTER_CLIENT (35) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnregisterClientRequestHeader {
    /// Client id (capital `ID` on the wire).
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// Producer group.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub producer_group: Option<String>,
    /// Consumer group.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consumer_group: Option<String>,
}
request_header!(
    UnregisterClientRequestHeader,
    UNREGISTER_CLIENT,
    EmptyHeader
);

/// LOCK_BATCH_MQ (41) request header: no fields of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockBatchMqRequestHeader {}
request_header!(LockBatchMqRequestHeader, LOCK_BATCH_MQ, EmptyHeader);

/// QUERY_ASSIGNMENT (400) request header: no fields of its own; the body is a
/// [`QueryAssignmentRequestBody`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAssignmentRequestHeader {}
request_header!(QueryAssignmentRequestHeader, QUERY_ASSIGNMENT, EmptyHeader);

/// The QUERY_ASSIGNMENT (400) body (Java `QueryAssignmentRequestBody`), fastjson key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryAssignmentRequestBody {
    /// Client id (lower-case `d` here).
    pub client_id: String,
    /// Consumer group.
    pub consumer_group: String,
    /// `CLUSTERING` or `BROADCASTING`.
    pub message_model: String,
    /// The Java strategy name the broker runs (`AVG` or `AVG_BY_CIRCLE`; brokers know no
    /// other).
    pub strategy_name: String,
    /// Topic.
    pub topic: String,
}

/// The QUERY_ASSIGNMENT answer body (Java `QueryAssignmentResponseBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct QueryAssignmentResponseBody {
    /// The queues assigned to the asking client; `None` (a Java broker that does not know
    /// the topic, the group's consumers or the strategy) means "no answer".
    #[serde(default)]
    pub message_queue_assignments: Option<Vec<MessageQueueAssignment>>,
}

/// One assigned queue (Java `MessageQueueAssignment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueueAssignment {
    /// The queue.
    pub message_queue: MessageQueue,
    /// `PULL` (pull it as usual) or `POP` (pop it; queue id −1 for "any").
    #[serde(default)]
    pub mode: Option<String>,
}

/// UNLOCK_BATCH_MQ (42) request header: no fields of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockBatchMqRequestHeader {}
request_header!(UnlockBatchMqRequestHeader, UNLOCK_BATCH_MQ, EmptyHeader);

/// LOCK_BATCH_MQ / UNLOCK_BATCH_MQ body (Java `LockBatchRequestBody`), fastjson key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchRequestBody {
    /// Client id (lower-case `d` here).
    pub client_id: String,
    /// Consumer group.
    pub consumer_group: String,
    /// Queues to lock or unlock.
    pub mq_set: Vec<MessageQueue>,
    /// Java: false.
    pub only_this_broker: bool,
}

/// LOCK_BATCH_MQ response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchResponseBody {
    /// Queues now held by this client.
    #[serde(default, rename = "lockOKMQSet")]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

/// SEND_MESSAGE_V2 (310) request (Java `SendMessageRequestHeaderV2`, one-letter keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessageRequestHeaderV2 {
    /// producerGroup.
    pub a: String,
    /// topic.
    pub b: String,
    /// defaultTopic (`TBW102`).
    pub c: String,
    /// defaultTopicQueueNums (4).
    pub d: i32,
    /// queueId.
    pub e: i32,
    /// sysFlag.
    pub f: i32,
    /// bornTimestamp, ms.
    pub g: i64,
    /// flag.
    pub h: i32,
    /// properties string.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub i: Option<String>,
    /// reconsumeTimes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub j: Option<i32>,
    /// unitMode.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub k: Option<bool>,
    /// maxReconsumeTimes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub l: Option<i32>,
    /// batch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub m: Option<bool>,
    /// broker name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n: Option<String>,
}
request_header!(
    SendMessageRequestHeaderV2,
    SEND_MESSAGE_V2,
    SendMessageResponseHeader
);

/// SEND_MESSAGE response header (Java `SendMessageResponseHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessageResponseHeader {
    /// The offset message id.
    pub msg_id: String,
    /// Queue the message went to.
    pub queue_id: i32,
    /// Its offset in that queue.
    pub queue_offset: i64,
    /// Transaction id.
    #[serde(default)]
    pub transaction_id: Option<String>,
}

/// UPDATE_AND_CREATE_TOPIC (17) request, an admin call used by tests and the CLI (Java
/// `CreateTopicRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTopicRequestHeader {
    /// Topic.
    pub topic: String,
    /// Template topic, `TBW102`.
    pub default_topic: String,
    /// Readable queues.
    pub read_queue_nums: i32,
    /// Writable queues.
    pub write_queue_nums: i32,
    /// Permission bits (6 = read + write).
    pub perm: i32,
    /// `SINGLE_TAG`.
    pub topic_filter_type: String,
    /// Sys flag.
    pub topic_sys_flag: i32,
    /// Ordered topic.
    pub order: bool,
}
request_header!(
    CreateTopicRequestHeader,
    UPDATE_AND_CREATE_TOPIC,
    EmptyHeader
);

impl CreateTopicRequestHeader {
    /// `topic` with `queues` read and write queues, read-write, `SINGLE_TAG`, not ordered,
    /// from the template `TBW102` (what `mqadmin updateTopic` sends by default).
    pub fn new(topic: &str, queues: i32) -> Self {
        CreateTopicRequestHeader {
            topic: topic.to_owned(),
            default_topic: crate::route::AUTO_CREATE_TOPIC.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: crate::route::perm::READ | crate::route::perm::WRITE,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: 0,
            order: false,
        }
    }
}

/// NOTIFY_CONSUMER_IDS_CHANGED (40), GET_CONSUMER_RUNNING_INFO (307) and similar broker
/// requests name their group in `consumerGroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupHeader {
    /// Consumer group.
    pub consumer_group: String,
}

/// RESET_CONSUMER_CLIENT_OFFSET (220) / GET_CONSUMER_STATUS_FROM_CLIENT (221) headers name
/// `topic` and `group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicGroupHeader {
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub group: String,
}

/// CONSUME_MESSAGE_DIRECTLY (309) request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeMessageDirectlyResultRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
    /// Client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Message id.
    #[serde(default)]
    pub msg_id: Option<String>,
    /// Broker name.
    #[serde(default)]
    pub broker_name: Option<String>,
}

/// The heartbeat body (Java `HeartbeatData`), keys in fastjson's alphabetical order.
///
/// `heartbeatFingerprint` / `withoutSub` (heartbeat V2, brokers ≥ 5.1.3) are sent only
/// when set: a V1 heartbeat is byte for byte a 4.9.8 Java client's (a zero fingerprint
/// means the same as none to a 5.x broker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatData {
    /// Client id (capital `ID`).
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// Consumer groups of this client.
    #[serde(rename = "consumerDataSet")]
    pub consumer_data_set: Vec<ConsumerData>,
    /// Heartbeat V2: a fingerprint of the body without client id and sub versions
    /// (see [`HeartbeatData::fingerprint`]); never 0.
    #[serde(
        rename = "heartbeatFingerprint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_fingerprint: Option<i32>,
    /// Producer groups of this client.
    #[serde(rename = "producerDataSet")]
    pub producer_data_set: Vec<ProducerData>,
    /// Heartbeat V2: `true` on a heartbeat whose subscription sets were left empty because
    /// the broker already holds them (Java field `isWithoutSub`, JSON key `withoutSub`).
    #[serde(
        rename = "withoutSub",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub without_sub: Option<bool>,
}

impl HeartbeatData {
    /// The heartbeat V2 fingerprint of this body (Java `computeHeartbeatFingerprint`): the
    /// Java `String.hashCode` of its JSON with the client id, every `subVersion` and the V2
    /// fields cleared, so it changes exactly when a group, a subscription or a setting in
    /// the body does. The broker only compares fingerprints, so rmq need not (and does not)
    /// produce the same number as a Java client with the same subscriptions. A hash of 0,
    /// which the broker reads as "V1", becomes 1.
    pub fn fingerprint(&self) -> i32 {
        let mut copy = self.clone();
        copy.client_id.clear();
        copy.heartbeat_fingerprint = None;
        copy.without_sub = None;
        for c in &mut copy.consumer_data_set {
            for s in &mut c.subscription_data_set {
                s.sub_version = 0;
            }
        }
        let json = serde_json::to_string(&copy).expect("serializable");
        match crate::filter::java_string_hash(&json) {
            0 => 1,
            h => h,
        }
    }

    /// This body as a V2 heartbeat: the fingerprint set and, with `without_sub`, every
    /// subscription set emptied.
    pub fn into_v2(mut self, fingerprint: i32, without_sub: bool) -> Self {
        self.heartbeat_fingerprint = Some(fingerprint);
        self.without_sub = Some(without_sub);
        if without_sub {
            for c in &mut self.consumer_data_set {
                c.subscription_data_set.clear();
            }
        }
        self
    }
}

/// One consumer group in a heartbeat (Java `ConsumerData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerData {
    /// `CONSUME_FROM_LAST_OFFSET`, `CONSUME_FROM_FIRST_OFFSET` or `CONSUME_FROM_TIMESTAMP`.
    pub consume_from_where: String,
    /// `CONSUME_PASSIVELY` (push) or `CONSUME_ACTIVELY` (pull).
    pub consume_type: String,
    /// Consumer group.
    pub group_name: String,
    /// `CLUSTERING` or `BROADCASTING`.
    pub message_model: String,
    /// Subscriptions, in Java HashSet order (see [`ConsumerData::new`]).
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Always false.
    pub unit_mode: bool,
}

impl ConsumerData {
    /// Consumer data with the subscriptions put in the order a Java `HashSet` iterates
    /// them (by `SubscriptionData.hashCode`), so the body equals Java's byte for byte.
    pub fn new(
        group_name: impl Into<String>,
        consume_type: crate::ConsumeType,
        message_model: crate::MessageModel,
        consume_from_where: crate::ConsumeFromWhere,
        subscriptions: Vec<SubscriptionData>,
    ) -> Self {
        let subscription_data_set = crate::filter::java_hash_set_order(
            subscriptions
                .into_iter()
                .map(|s| (s.java_hash_code(), s))
                .collect(),
        );
        ConsumerData {
            consume_from_where: consume_from_where.as_str().to_owned(),
            consume_type: consume_type.as_str().to_owned(),
            group_name: group_name.into(),
            message_model: message_model.as_str().to_owned(),
            subscription_data_set,
            unit_mode: false,
        }
    }
}

/// One producer group in a heartbeat (Java `ProducerData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerData {
    /// Producer group.
    pub group_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pull header's own ext fields are exactly serde's: the same pairs in the same
    /// order, with each optional field present and absent, and with values that need
    /// escaping or are longer than fit inline.
    #[test]
    fn pull_header_writes_the_fields_serde_gives() {
        let long = "a_consumer_group_name_longer_than_24_bytes";
        for mask in 0..16u32 {
            let on = |bit: u32| mask & (1 << bit) != 0;
            let h = PullMessageRequestHeader {
                consumer_group: Cow::Borrowed(if on(0) { long } else { "g" }),
                topic: Cow::Borrowed("T\"q\u{1}é"),
                queue_id: 7,
                queue_offset: -1,
                max_msg_nums: 32,
                sys_flag: 3,
                commit_offset: i64::MAX,
                suspend_timeout_millis: 15_000,
                subscription: on(1).then_some(Cow::Borrowed("TagA || TagB")),
                sub_version: 1_733_300_000_000,
                expression_type: on(2).then_some(Cow::Borrowed("TAG")),
                max_msg_bytes: on(3).then_some(i32::MIN),
                bname: on(0).then_some(Cow::Borrowed("broker-a")),
            };
            let own = h.to_ext_fields().unwrap();
            let serde = ExtFields::from_header(&h).unwrap();
            assert_eq!(
                own.iter().collect::<Vec<_>>(),
                serde.iter().collect::<Vec<_>>(),
                "mask {mask}"
            );
        }
    }

    /// The rocketmq-rust 1.0 broker's QUERY_ASSIGNMENT answer (`attachments` always present
    /// and null) and a Java broker's "no answer" (the array left out).
    #[test]
    fn query_assignment_answers_decode() {
        let rust = br#"{"messageQueueAssignments":[{"messageQueue":{"topic":"T","brokerName":"broker-a","queueId":3},"mode":"PULL","attachments":null}]}"#;
        let body: QueryAssignmentResponseBody = serde_json::from_slice(rust).unwrap();
        let got = body.message_queue_assignments.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message_queue, MessageQueue::new("T", "broker-a", 3));
        assert_eq!(got[0].mode.as_deref(), Some("PULL"));
        let java_null: QueryAssignmentResponseBody = serde_json::from_slice(b"{}").unwrap();
        assert_eq!(java_null.message_queue_assignments, None);
        // The request body in fastjson's key order.
        let req = QueryAssignmentRequestBody {
            client_id: "c".into(),
            consumer_group: "g".into(),
            message_model: "CLUSTERING".into(),
            strategy_name: "AVG".into(),
            topic: "T".into(),
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"clientId":"c","consumerGroup":"g","messageModel":"CLUSTERING","strategyName":"AVG","topic":"T"}"#
        );
    }
}
