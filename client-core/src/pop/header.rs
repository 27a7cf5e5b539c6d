//! The custom headers of the pop requests (REMOTING-5X §1.2–§1.7). Their codes do not fit
//! an `i16`, so they always go out with JSON headers.

use rmq_remoting::RequestCode;
use rmq_remoting::protocol::{EmptyHeader, RequestHeader};
use serde::{Deserialize, Serialize};

/// Java `ConsumeInitMode`: where a pop starts in a queue the group never consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumeInitMode {
    /// `MIN` (0): from the queue's first message (Java sends it for
    /// `CONSUME_FROM_FIRST_OFFSET` only).
    Min,
    /// `MAX` (1): from the newest message (Java's choice for every other `ConsumeFromWhere`,
    /// even `CONSUME_FROM_TIMESTAMP`).
    #[default]
    Max,
}

impl ConsumeInitMode {
    /// The wire value.
    pub fn code(self) -> i32 {
        match self {
            ConsumeInitMode::Min => 0,
            ConsumeInitMode::Max => 1,
        }
    }
}

/// POP_MESSAGE (200050) request (Java `PopMessageRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PopMessageRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
    /// The normal topic (the broker adds the group's pop-retry topic itself).
    pub topic: String,
    /// Queue id; −1 pops every readable queue of the topic on this broker.
    pub queue_id: i32,
    /// Messages at most, 1..=32 (Java `popBatchNums`, 32).
    pub max_msg_nums: i32,
    /// How long popped messages stay invisible to other pops, ms (Java 60 000).
    pub invisible_time: i64,
    /// Long-poll budget, ms (Java 15 000); ≤ 0 answers at once.
    pub poll_time: i64,
    /// Client clock, ms since the epoch.
    pub born_time: i64,
    /// [`ConsumeInitMode::code`].
    pub init_mode: i32,
    /// `TAG` or `SQL92`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exp_type: Option<String>,
    /// The expression.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exp: Option<String>,
    /// Orderly pop; Java's push consumer always sends `false`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order: Option<bool>,
    /// Broker name (5.x routing).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}

impl RequestHeader for PopMessageRequestHeader {
    const CODE: RequestCode = RequestCode::POP_MESSAGE;
    type Response = PopMessageResponseHeader;
}

/// POP_MESSAGE response header (Java `PopMessageResponseHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PopMessageResponseHeader {
    /// Broker time of the pop, ms.
    #[serde(default)]
    pub pop_time: i64,
    /// The invisible time, echoed, ms.
    #[serde(default)]
    pub invisible_time: i64,
    /// The check point's revive queue (999 for an orderly pop).
    #[serde(default)]
    pub revive_qid: i32,
    /// Backlog left in the polled queues.
    #[serde(default)]
    pub rest_num: i64,
    /// `<retry flag> <queue id> <check-point offset>` per queue, `;`-separated.
    #[serde(default)]
    pub start_offset_info: Option<String>,
    /// `<retry flag> <queue id> <offset>,<offset>…` per queue, `;`-separated.
    #[serde(default)]
    pub msg_offset_info: Option<String>,
    /// Orderly pops only: delivery counts.
    #[serde(default)]
    pub order_count_info: Option<String>,
}

/// ACK_MESSAGE (200051) request (Java `AckMessageRequestHeader`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckMessageRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
    /// The topic the message really sits in (the pop-retry topic for a retried message).
    pub topic: String,
    /// Receipt handle field 6.
    pub queue_id: i32,
    /// The whole receipt handle.
    pub extra_info: String,
    /// Receipt handle field 7.
    pub offset: i64,
    /// Receipt handle field 5.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}

impl RequestHeader for AckMessageRequestHeader {
    const CODE: RequestCode = RequestCode::ACK_MESSAGE;
    type Response = EmptyHeader;
}

/// CHANGE_MESSAGE_INVISIBLETIME (200053) request (Java `ChangeInvisibleTimeRequestHeader`):
/// the ACK fields plus the new invisible time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeInvisibleTimeRequestHeader {
    /// Consumer group.
    pub consumer_group: String,
    /// The topic the message really sits in.
    pub topic: String,
    /// Receipt handle field 6.
    pub queue_id: i32,
    /// The whole receipt handle (dead once this request succeeds).
    pub extra_info: String,
    /// Receipt handle field 7.
    pub offset: i64,
    /// Invisible from now on for this long, ms.
    pub invisible_time: i64,
    /// Receipt handle field 5.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bname: Option<String>,
}

impl RequestHeader for ChangeInvisibleTimeRequestHeader {
    const CODE: RequestCode = RequestCode::CHANGE_MESSAGE_INVISIBLETIME;
    type Response = ChangeInvisibleTimeResponseHeader;
}

/// CHANGE_MESSAGE_INVISIBLETIME response header: the new check point's times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChangeInvisibleTimeResponseHeader {
    /// The new pop time, ms.
    #[serde(default)]
    pub pop_time: i64,
    /// The new invisible time, ms.
    #[serde(default)]
    pub invisible_time: i64,
    /// The new check point's revive queue.
    #[serde(default)]
    pub revive_qid: i32,
}

/// BATCH_ACK_MESSAGE (200151) request header: none of its own; the body is a
/// [`super::BatchAckBody`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAckMessageRequestHeader {}

impl RequestHeader for BatchAckMessageRequestHeader {
    const CODE: RequestCode = RequestCode::BATCH_ACK_MESSAGE;
    type Response = EmptyHeader;
}

/// Java `MessageRequestMode`: how a topic's queues are consumed by a group whose clients
/// let the broker assign them (QUERY_ASSIGNMENT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageRequestMode {
    /// Pulled with offsets, as always.
    Pull,
    /// Popped.
    Pop,
}

/// SET_MESSAGE_REQUEST_MODE (401) request header: none of its own; the body is a
/// [`SetMessageRequestModeRequestBody`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMessageRequestModeRequestHeader {}

impl RequestHeader for SetMessageRequestModeRequestHeader {
    const CODE: RequestCode = RequestCode::SET_MESSAGE_REQUEST_MODE;
    type Response = EmptyHeader;
}

/// The SET_MESSAGE_REQUEST_MODE body (Java `SetMessageRequestModeRequestBody`), what
/// `mqadmin setConsumeMode` sends; the broker persists it per topic and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetMessageRequestModeRequestBody {
    /// Consumer group.
    pub consumer_group: String,
    /// PULL or POP.
    pub mode: MessageRequestMode,
    /// POP: how many other members' queues each member also pops; 0 (or ≥ members − 1)
    /// gives every member every queue (queue id −1 per broker).
    pub pop_share_queue_num: i32,
    /// Topic.
    pub topic: String,
}
