//! The typed broker / name-server API (Java `MQClientAPIImpl`): one function per call,
//! each with its header struct, returning typed results and [`ClientError`]s.

use std::time::Duration;

use bytes::Bytes;
use rmq_remoting::protocol::RequestHeader;
use rmq_remoting::{RemotingClient, RemotingCommand, RequestCode, ResponseCode};
use serde::de::DeserializeOwned;

use crate::config::Credentials;
use crate::error::ClientError;
use crate::filter::SubscriptionData;
use crate::header::*;
use crate::message::{MessageExt, decode_messages_of};
use crate::route::{MessageQueue, TopicRouteData};

/// `PullSysFlag` bits (REMOTING.md §3.6).
pub mod pull_sys_flag {
    /// Commit the piggy-backed offset.
    pub const COMMIT_OFFSET: i32 = 0x1;
    /// Allow long polling.
    pub const SUSPEND: i32 = 0x2;
    /// Filter with the request's own subscription.
    pub const SUBSCRIPTION: i32 = 0x4;
    /// Legacy class filter.
    pub const CLASS_FILTER: i32 = 0x8;
    /// Lite pull (request code 361).
    pub const LITE_PULL: i32 = 0x10;

    /// Java `PullSysFlag.buildSysFlag`.
    pub fn build(
        commit_offset: bool,
        suspend: bool,
        subscription: bool,
        class_filter: bool,
    ) -> i32 {
        let mut f = 0;
        if commit_offset {
            f |= COMMIT_OFFSET;
        }
        if suspend {
            f |= SUSPEND;
        }
        if subscription {
            f |= SUBSCRIPTION;
        }
        if class_filter {
            f |= CLASS_FILTER;
        }
        f
    }
}

/// Outcome of a pull (Java `PullStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullStatus {
    /// SUCCESS (0): messages found.
    Found,
    /// PULL_NOT_FOUND (19): nothing new (after the long poll).
    NoNewMsg,
    /// PULL_RETRY_IMMEDIATELY (20): entries read but none matched the filter.
    NoMatchedMsg,
    /// PULL_OFFSET_MOVED (21): the requested offset is not valid; use `next_begin_offset`.
    OffsetIllegal,
}

/// A pull's result (Java `PullResultExt`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullResult {
    /// The status.
    pub status: PullStatus,
    /// Offset of the next pull.
    pub next_begin_offset: i64,
    /// Queue min offset.
    pub min_offset: i64,
    /// Queue max offset (exclusive).
    pub max_offset: i64,
    /// Broker id suggested for the next pull of the queue (0 = master).
    pub suggest_which_broker_id: i64,
    /// 5.x static topics: add to each message's queue offset.
    pub offset_delta: Option<i64>,
    /// Messages (FOUND only), in queue order.
    pub messages: Vec<MessageExt>,
    /// Messages the client-side tag re-filter removed (counted, for offsets and metrics).
    pub filtered_out: usize,
}

impl PullResult {
    /// Reads a PULL_MESSAGE / LITE_PULL_MESSAGE response from `addr` (Java
    /// `MQClientAPIImpl.processPullResponse`): the status, the offsets header and, for
    /// FOUND, the messages (decoded in place from the frame's body), each with
    /// `broker_name`, the pulled queue's broker (one shared string for the batch).
    ///
    /// # Errors
    /// [`ClientError::Broker`] for any code but 0/19/20/21; [`ClientError::Header`] for a
    /// header that does not decode; [`ClientError::Decode`] for a body that does not.
    pub fn from_response(
        request: RequestCode,
        addr: &str,
        broker_name: &str,
        resp: &RemotingCommand,
    ) -> Result<Self, ClientError> {
        let status = match resp.response_code() {
            ResponseCode::SUCCESS => PullStatus::Found,
            ResponseCode::PULL_NOT_FOUND => PullStatus::NoNewMsg,
            ResponseCode::PULL_RETRY_IMMEDIATELY => PullStatus::NoMatchedMsg,
            ResponseCode::PULL_OFFSET_MOVED => PullStatus::OffsetIllegal,
            _ => return Err(broker_error(request, addr, resp)),
        };
        let h: PullMessageResponseHeader = response_header(request, resp)?;
        let messages = if status == PullStatus::Found {
            decode_messages_of(&resp.body, broker_name.into())?
        } else {
            Vec::new()
        };
        Ok(PullResult {
            status,
            next_begin_offset: h.next_begin_offset,
            min_offset: h.min_offset,
            max_offset: h.max_offset,
            suggest_which_broker_id: h.suggest_which_broker_id,
            offset_delta: h.offset_delta,
            messages,
            filtered_out: 0,
        })
    }

    /// What Java `PullAPIWrapper.processPullResult` does after a FOUND: re-filters by exact
    /// tag (the broker filters by hash), sets `broker_name` / `queue_id` from the queue
    /// (one shared broker name for the batch), adds `offset_delta`, and records the queue's
    /// min / max offsets in [`MessageExt::queue_min_offset`] / `queue_max_offset` (Java puts
    /// them into every message's properties as strings; rmq allocates nothing per message).
    pub fn process(&mut self, mq: &MessageQueue, subscription: Option<&SubscriptionData>) {
        if self.status != PullStatus::Found {
            return;
        }
        if let Some(sub) = subscription {
            let before = self.messages.len();
            self.messages.retain(|m| sub.matches(m));
            self.filtered_out = before - self.messages.len();
        }
        let Some(first) = self.messages.first() else {
            return;
        };
        let broker: std::sync::Arc<str> = if *first.broker_name == *mq.broker_name {
            std::sync::Arc::clone(&first.broker_name)
        } else {
            std::sync::Arc::from(mq.broker_name.as_str())
        };
        for m in &mut self.messages {
            // Decoded with the queue's broker name, so normally already this one.
            if !std::sync::Arc::ptr_eq(&m.broker_name, &broker) {
                m.broker_name = std::sync::Arc::clone(&broker);
            }
            m.queue_id = mq.queue_id;
            if let Some(delta) = self.offset_delta {
                m.queue_offset += delta;
            }
            m.queue_min_offset = Some(self.min_offset);
            m.queue_max_offset = Some(self.max_offset);
        }
    }
}

/// Result of a send (Java `SendResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendResult {
    /// SUCCESS, FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE: all "stored".
    pub status: ResponseCode,
    /// The client message id (UNIQ_KEY).
    pub msg_id: String,
    /// The broker's offset message id.
    pub offset_msg_id: String,
    /// Queue the message went to.
    pub queue: MessageQueue,
    /// Its offset in that queue.
    pub queue_offset: i64,
}

/// A broker's answer to HEART_BEAT (34).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeartbeatAnswer {
    /// The broker's version (the response `version`, a Java `MQVersion` ordinal).
    pub version: i32,
    /// The broker answered `IS_SUPPORT_HEART_BEAT_V2=true` (5.1.3 and later, either path).
    pub supports_v2: bool,
    /// The broker answered `IS_SUB_CHANGE=true`: the group's stored fingerprint differed
    /// from the one sent (always true on the V1 path), so the next heartbeat must be full.
    pub sub_change: bool,
}

/// The typed API over a [`RemotingClient`]: builds the request, signs it when credentials
/// are set, sends it and maps the response. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientApi {
    remoting: RemotingClient,
    credentials: Option<Credentials>,
}

pub(crate) fn broker_error(
    request: RequestCode,
    addr: &str,
    resp: &RemotingCommand,
) -> ClientError {
    ClientError::Broker {
        request,
        code: resp.response_code(),
        remark: resp.remark.clone(),
        addr: addr.to_owned(),
    }
}

pub(crate) fn response_header<T: DeserializeOwned>(
    request: RequestCode,
    resp: &RemotingCommand,
) -> Result<T, ClientError> {
    resp.decode_header()
        .map_err(|source| ClientError::Header { request, source })
}

pub(crate) fn json_body<T: DeserializeOwned>(
    request: RequestCode,
    body: &[u8],
) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|source| ClientError::Body {
        request,
        source: Box::new(source),
    })
}

impl ClientApi {
    /// An API over `remoting`, signing requests with `credentials` when given.
    pub fn new(remoting: RemotingClient, credentials: Option<Credentials>) -> Self {
        ClientApi {
            remoting,
            credentials,
        }
    }

    /// The transport.
    pub fn remoting(&self) -> &RemotingClient {
        &self.remoting
    }

    fn build<H: RequestHeader>(
        &self,
        header: &H,
        body: Bytes,
    ) -> Result<RemotingCommand, ClientError> {
        let mut cmd = RemotingCommand::request_with_header(header)
            .map_err(|source| ClientError::Header {
                request: H::CODE,
                source,
            })?
            .with_body(body);
        if let Some(c) = &self.credentials {
            crate::acl::sign(&mut cmd, c);
        }
        Ok(cmd)
    }

    /// Sends a typed request and returns the raw response, whatever its code.
    ///
    /// # Errors
    /// [`ClientError::Remoting`] when the transport fails, [`ClientError::Header`] when the
    /// header does not serialize.
    pub async fn invoke<H: RequestHeader>(
        &self,
        addr: &str,
        header: &H,
        body: Bytes,
        timeout: Duration,
    ) -> Result<RemotingCommand, ClientError> {
        let cmd = self.build(header, body)?;
        Ok(self.remoting.invoke(addr, cmd, timeout).await?)
    }

    pub(crate) async fn invoke_ok<H: RequestHeader>(
        &self,
        addr: &str,
        header: &H,
        body: Bytes,
        timeout: Duration,
    ) -> Result<RemotingCommand, ClientError> {
        let resp = self.invoke(addr, header, body, timeout).await?;
        if resp.response_code().is_success() {
            Ok(resp)
        } else {
            Err(broker_error(H::CODE, addr, &resp))
        }
    }

    /// Sends a typed one-way request.
    ///
    /// # Errors
    /// [`ClientError::Remoting`] when it could not be queued.
    pub async fn invoke_oneway<H: RequestHeader>(
        &self,
        addr: &str,
        header: &H,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let cmd = self.build(header, body)?;
        Ok(self.remoting.invoke_oneway(addr, cmd, timeout).await?)
    }

    /// GET_ROUTEINFO_BY_TOPIC (105) to one name server: `Ok(None)` for TOPIC_NOT_EXIST.
    ///
    /// # Errors
    /// Transport errors, other response codes, or a body that is not route JSON.
    pub async fn get_topic_route(
        &self,
        namesrv: &str,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<TopicRouteData>, ClientError> {
        let header = GetRouteInfoRequestHeader {
            topic: topic.to_owned(),
            accept_standard_json_only: Some(true),
        };
        let resp = self.invoke(namesrv, &header, Bytes::new(), timeout).await?;
        match resp.response_code() {
            ResponseCode::SUCCESS => {
                TopicRouteData::parse(&resp.body)
                    .map(Some)
                    .map_err(|source| ClientError::Route {
                        topic: topic.to_owned(),
                        source,
                    })
            }
            ResponseCode::TOPIC_NOT_EXIST => Ok(None),
            _ => Err(broker_error(
                RequestCode::GET_ROUTEINFO_BY_TOPIC,
                namesrv,
                &resp,
            )),
        }
    }

    /// PULL_MESSAGE (11), or LITE_PULL_MESSAGE (361) when the sys flag has
    /// [`pull_sys_flag::LITE_PULL`]. Maps the response code to a [`PullStatus`] as Java
    /// `processPullResponse` does and decodes the messages of a FOUND body (not yet
    /// re-filtered: see [`PullResult::process`]).
    ///
    /// The timeout must exceed `suspend_timeout_millis` (Java: 30 s for a 15 s hold).
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] for any code but 0/19/20/21 (FLOW_CONTROL,
    /// SUBSCRIPTION_NOT_LATEST…); [`ClientError::Decode`] for a body that does not decode.
    pub async fn pull_message(
        &self,
        addr: &str,
        header: &PullMessageRequestHeader<'_>,
        timeout: Duration,
    ) -> Result<PullResult, ClientError> {
        self.pull_message_expecting(addr, header, timeout, 0).await
    }

    /// [`ClientApi::pull_message`] of a queue the caller expects the broker to answer at
    /// once with about `expected_bytes` bytes of messages (it has a backlog), which lets the
    /// connection coalesce its wake-ups: see [`RemotingClient::invoke_expecting`]. No Java
    /// counterpart (Java's `pullMessage` sends every pull alike).
    ///
    /// # Errors
    /// As [`ClientApi::pull_message`].
    pub async fn pull_message_expecting(
        &self,
        addr: &str,
        header: &PullMessageRequestHeader<'_>,
        timeout: Duration,
        expected_bytes: usize,
    ) -> Result<PullResult, ClientError> {
        let mut cmd = self.build(header, Bytes::new())?;
        if header.sys_flag & pull_sys_flag::LITE_PULL != 0 {
            // The code is not part of the ACL signature, so the signed command stays valid.
            cmd.code = RequestCode::LITE_PULL_MESSAGE.0;
        }
        let request = cmd.request_code();
        let resp = self
            .remoting
            .invoke_expecting(addr, cmd, timeout, expected_bytes)
            .await?;
        PullResult::from_response(
            request,
            addr,
            header.bname.as_deref().unwrap_or_default(),
            &resp,
        )
    }

    /// QUERY_CONSUMER_OFFSET (14): `Ok(None)` when the group has no offset (QUERY_NOT_FOUND).
    ///
    /// # Errors
    /// Transport errors, other response codes.
    pub async fn query_consumer_offset(
        &self,
        addr: &str,
        header: &QueryConsumerOffsetRequestHeader,
        timeout: Duration,
    ) -> Result<Option<i64>, ClientError> {
        let resp = self.invoke(addr, header, Bytes::new(), timeout).await?;
        match resp.response_code() {
            ResponseCode::SUCCESS => {
                let h: OffsetResponseHeader =
                    response_header(RequestCode::QUERY_CONSUMER_OFFSET, &resp)?;
                Ok(Some(h.offset))
            }
            ResponseCode::QUERY_NOT_FOUND => Ok(None),
            _ => Err(broker_error(
                RequestCode::QUERY_CONSUMER_OFFSET,
                addr,
                &resp,
            )),
        }
    }

    /// UPDATE_CONSUMER_OFFSET (15), waiting for the answer (pull consumers' `commitSync`).
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn update_consumer_offset(
        &self,
        addr: &str,
        header: &UpdateConsumerOffsetRequestHeader,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.invoke_ok(addr, header, Bytes::new(), timeout)
            .await
            .map(drop)
    }

    /// UPDATE_CONSUMER_OFFSET (15) one-way, as the Java push consumer's persister sends it.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn update_consumer_offset_oneway(
        &self,
        addr: &str,
        header: &UpdateConsumerOffsetRequestHeader,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.invoke_oneway(addr, header, Bytes::new(), timeout)
            .await
    }

    /// GET_CONSUMER_LIST_BY_GROUP (38): the client ids of the group's live members.
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] with SYSTEM_ERROR when the broker knows
    /// no member ("no consumer for this group").
    pub async fn get_consumer_id_list(
        &self,
        addr: &str,
        group: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, ClientError> {
        let header = GetConsumerListByGroupRequestHeader {
            consumer_group: group.to_owned(),
        };
        let resp = self.invoke_ok(addr, &header, Bytes::new(), timeout).await?;
        let body: ConsumerListBody =
            json_body(RequestCode::GET_CONSUMER_LIST_BY_GROUP, &resp.body)?;
        Ok(body.consumer_id_list)
    }

    /// GET_CONSUMER_RUNNING_INFO (307) through the broker at `addr` to the member
    /// `client_id` of `group`: the queues in that member's process-queue table (Java
    /// `ConsumerRunningInfo.mqTable`, fastjson with object keys) — the queues it owns or
    /// is still draining (the table of [`ClientApi::get_consumer_running_info`]).
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes (the broker does not know the member, or the
    /// member did not answer), a malformed body.
    pub async fn get_consumer_running_queues(
        &self,
        addr: &str,
        group: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Vec<MessageQueue>, ClientError> {
        let info = self
            .get_consumer_running_info(addr, group, client_id, timeout)
            .await?;
        Ok(info.mq_table.into_keys().collect())
    }

    /// QUERY_ASSIGNMENT (400): the queues of `body.topic` the broker assigns to this client
    /// (server-side rebalance, Java `MQClientAPIImpl.queryAssignment`). `None` when the
    /// broker had no answer (a Java broker's null: unknown topic, no consumers, unknown
    /// strategy); the rocketmq-rust 1.0 broker answers those with an empty list instead.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes, a malformed body.
    pub async fn query_assignment(
        &self,
        addr: &str,
        body: &QueryAssignmentRequestBody,
        timeout: Duration,
    ) -> Result<Option<Vec<MessageQueueAssignment>>, ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("serializable"));
        let resp = self
            .invoke_ok(addr, &QueryAssignmentRequestHeader {}, bytes, timeout)
            .await?;
        if resp.body.is_empty() {
            return Ok(None);
        }
        let out: QueryAssignmentResponseBody =
            json_body(RequestCode::QUERY_ASSIGNMENT, &resp.body)?;
        Ok(out.message_queue_assignments)
    }

    /// LOCK_BATCH_MQ (41): the queues now held by this client.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes, a malformed body.
    pub async fn lock_batch_mq(
        &self,
        addr: &str,
        body: &LockBatchRequestBody,
        timeout: Duration,
    ) -> Result<Vec<MessageQueue>, ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("serializable"));
        let resp = self
            .invoke_ok(addr, &LockBatchMqRequestHeader {}, bytes, timeout)
            .await?;
        if resp.body.is_empty() {
            return Ok(Vec::new());
        }
        let out: LockBatchResponseBody = json_body(RequestCode::LOCK_BATCH_MQ, &resp.body)?;
        Ok(out.lock_ok_mq_set)
    }

    /// UNLOCK_BATCH_MQ (42), waiting for the answer or one-way.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn unlock_batch_mq(
        &self,
        addr: &str,
        body: &LockBatchRequestBody,
        timeout: Duration,
        oneway: bool,
    ) -> Result<(), ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("serializable"));
        if oneway {
            self.invoke_oneway(addr, &UnlockBatchMqRequestHeader {}, bytes, timeout)
                .await
        } else {
            self.invoke_ok(addr, &UnlockBatchMqRequestHeader {}, bytes, timeout)
                .await
                .map(drop)
        }
    }

    /// CONSUMER_SEND_MSG_BACK (36), to the master of the broker holding the message.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes (the caller then falls back to sending to
    /// `%RETRY%<group>`).
    pub async fn consumer_send_msg_back(
        &self,
        addr: &str,
        header: &ConsumerSendMsgBackRequestHeader,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.invoke_ok(addr, header, Bytes::new(), timeout)
            .await
            .map(drop)
    }

    async fn offset_call<H: RequestHeader>(
        &self,
        addr: &str,
        header: &H,
        timeout: Duration,
    ) -> Result<i64, ClientError> {
        let resp = self.invoke_ok(addr, header, Bytes::new(), timeout).await?;
        let h: OffsetResponseHeader = response_header(H::CODE, &resp)?;
        Ok(h.offset)
    }

    /// GET_MAX_OFFSET (30): the queue's exclusive max offset.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn get_max_offset(
        &self,
        addr: &str,
        mq: &MessageQueue,
        timeout: Duration,
    ) -> Result<i64, ClientError> {
        self.offset_call(addr, &GetMaxOffsetRequestHeader::from(mq), timeout)
            .await
    }

    /// GET_MIN_OFFSET (31): the queue's min offset.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn get_min_offset(
        &self,
        addr: &str,
        mq: &MessageQueue,
        timeout: Duration,
    ) -> Result<i64, ClientError> {
        self.offset_call(addr, &GetMinOffsetRequestHeader::from(mq), timeout)
            .await
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (29): the offset of the first message stored at or after
    /// `timestamp_ms` (lower boundary).
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn search_offset(
        &self,
        addr: &str,
        mq: &MessageQueue,
        timestamp_ms: i64,
        timeout: Duration,
    ) -> Result<i64, ClientError> {
        let header = SearchOffsetRequestHeader {
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            timestamp: timestamp_ms,
            boundary_type: None,
            bname: Some(mq.broker_name.clone()),
        };
        self.offset_call(addr, &header, timeout).await
    }

    /// HEART_BEAT (34): the broker's version and its heartbeat V2 answer.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn send_heartbeat(
        &self,
        addr: &str,
        data: &HeartbeatData,
        timeout: Duration,
    ) -> Result<HeartbeatAnswer, ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(data).expect("serializable"));
        let resp = self
            .invoke_ok(addr, &HeartbeatRequestHeader {}, bytes, timeout)
            .await?;
        Ok(HeartbeatAnswer {
            version: resp.version,
            supports_v2: resp.ext("IS_SUPPORT_HEART_BEAT_V2") == Some("true"),
            sub_change: resp.ext("IS_SUB_CHANGE") == Some("true"),
        })
    }

    /// CHECK_CLIENT_CONFIG (46): asks the broker at `addr` whether it can serve the
    /// subscription in `body` (Java `MQClientAPIImpl.checkClientInBroker`).
    ///
    /// # Errors
    /// Transport errors; [`ClientError::SubscriptionRefused`] when the broker answers
    /// anything but SUCCESS.
    pub async fn check_client_config(
        &self,
        addr: &str,
        body: &CheckClientRequestBody,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("serializable"));
        match self
            .invoke_ok(addr, &CheckClientConfigRequestHeader {}, bytes, timeout)
            .await
        {
            Ok(_) => Ok(()),
            Err(ClientError::Broker { code, remark, .. }) => {
                Err(ClientError::SubscriptionRefused {
                    addr: addr.to_owned(),
                    code,
                    subscription: Box::new(crate::error::RefusedSubscription {
                        topic: body.subscription_data.topic.clone(),
                        expression_type: body.subscription_data.expression_type.as_str().to_owned(),
                        expression: body.subscription_data.sub_string.clone(),
                        remark,
                    }),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// UNREGISTER_CLIENT (35).
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn unregister_client(
        &self,
        addr: &str,
        header: &UnregisterClientRequestHeader,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.invoke_ok(addr, header, Bytes::new(), timeout)
            .await
            .map(drop)
    }

    /// SEND_MESSAGE_V2 (310).
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] for codes other than the four "stored" ones.
    pub async fn send_message_v2(
        &self,
        addr: &str,
        broker_name: &str,
        header: &SendMessageRequestHeaderV2,
        body: Bytes,
        uniq_key: String,
        timeout: Duration,
    ) -> Result<SendResult, ClientError> {
        let cmd = RemotingCommand::request_with_header(header)
            .map_err(|source| ClientError::Header {
                request: RequestCode::SEND_MESSAGE_V2,
                source,
            })?
            .with_body(body);
        self.send_command(addr, broker_name, &header.b, cmd, uniq_key, timeout)
            .await
    }

    /// Sends a prepared SEND_MESSAGE(_V2) / SEND_BATCH_MESSAGE command and reads the
    /// send response (signing it first when credentials are set).
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] for codes other than the four "stored" ones.
    pub async fn send_command(
        &self,
        addr: &str,
        broker_name: &str,
        topic: &str,
        mut cmd: RemotingCommand,
        msg_id: String,
        timeout: Duration,
    ) -> Result<SendResult, ClientError> {
        if let Some(c) = &self.credentials {
            crate::acl::sign(&mut cmd, c);
        }
        let request = cmd.request_code();
        let resp = self.remoting.invoke(addr, cmd, timeout).await?;
        match resp.response_code() {
            ResponseCode::SUCCESS
            | ResponseCode::FLUSH_DISK_TIMEOUT
            | ResponseCode::FLUSH_SLAVE_TIMEOUT
            | ResponseCode::SLAVE_NOT_AVAILABLE => {
                let h: SendMessageResponseHeader = response_header(request, &resp)?;
                Ok(SendResult {
                    status: resp.response_code(),
                    msg_id,
                    offset_msg_id: h.msg_id,
                    queue: MessageQueue::new(topic, broker_name, h.queue_id),
                    queue_offset: h.queue_offset,
                })
            }
            _ => Err(broker_error(request, addr, &resp)),
        }
    }

    /// UPDATE_AND_CREATE_TOPIC (17), an admin call (tests, the CLI).
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn create_topic(
        &self,
        addr: &str,
        header: &CreateTopicRequestHeader,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.invoke_ok(addr, header, Bytes::new(), timeout)
            .await
            .map(drop)
    }
}
