//! The pop requests on [`ClientApi`]: one async function each (REMOTING-5X §1).

use std::time::Duration;

use bytes::Bytes;
use rmq_remoting::{RequestCode, ResponseCode};

use super::header::*;
use super::wire::BatchAckBody;
use crate::api::{ClientApi, broker_error, response_header};
use crate::error::ClientError;
use crate::message::{MessageExt, decode_messages};

/// How a POP_MESSAGE ended (Java `PopStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopStatus {
    /// Messages were popped.
    Found,
    /// Nothing within the poll time (POLLING_TIMEOUT, or PULL_NOT_FOUND from old brokers).
    NoNewMsg,
    /// Too many pops parked at the broker (POLLING_FULL): pop again later.
    PollingFull,
}

/// A POP_MESSAGE answer as received: the status, the response header, and for
/// [`PopStatus::Found`] the messages decoded in place (no receipt handles yet; see
/// [`super::PopKernel::pop`]).
#[derive(Debug, Clone)]
pub struct RawPopResult {
    /// How it ended.
    pub status: PopStatus,
    /// The response header (default for anything but FOUND without one).
    pub header: PopMessageResponseHeader,
    /// The messages, as stored (retried ones may still read their pop-retry topic).
    pub messages: Vec<MessageExt>,
}

impl ClientApi {
    /// POP_MESSAGE (200050) (Java `MQClientAPIImpl.popMessageAsync`): FOUND, POLLING_TIMEOUT
    /// and PULL_NOT_FOUND are answers; any other code is an error.
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] for other codes (NO_PERMISSION,
    /// INVALID_PARAMETER, TOPIC_NOT_EXIST, SUBSCRIPTION_GROUP_NOT_EXIST, SYSTEM_ERROR…);
    /// [`ClientError::Header`] / [`ClientError::Decode`] for an answer that does not decode.
    pub async fn pop_message(
        &self,
        addr: &str,
        header: &PopMessageRequestHeader,
        timeout: Duration,
    ) -> Result<RawPopResult, ClientError> {
        let request = RequestCode::POP_MESSAGE;
        let resp = self.invoke(addr, header, Bytes::new(), timeout).await?;
        let status = match resp.response_code() {
            ResponseCode::SUCCESS => PopStatus::Found,
            ResponseCode::POLLING_TIMEOUT | ResponseCode::PULL_NOT_FOUND => PopStatus::NoNewMsg,
            ResponseCode::POLLING_FULL => PopStatus::PollingFull,
            _ => return Err(broker_error(request, addr, &resp)),
        };
        if status != PopStatus::Found {
            return Ok(RawPopResult {
                status,
                header: PopMessageResponseHeader::default(),
                messages: Vec::new(),
            });
        }
        let header: PopMessageResponseHeader = response_header(request, &resp)?;
        let messages = decode_messages(&resp.body)?;
        Ok(RawPopResult {
            status,
            header,
            messages,
        })
    }

    /// ACK_MESSAGE (200051): `Ok(true)` when acknowledged, `Ok(false)` for NO_MESSAGE (the
    /// offset is no longer in the queue: nothing to acknowledge; Java `AckStatus.NO_EXIST`).
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] for other codes.
    pub async fn ack_message(
        &self,
        addr: &str,
        header: &AckMessageRequestHeader,
        timeout: Duration,
    ) -> Result<bool, ClientError> {
        let resp = self.invoke(addr, header, Bytes::new(), timeout).await?;
        match resp.response_code() {
            ResponseCode::SUCCESS => Ok(true),
            ResponseCode::NO_MESSAGE => Ok(false),
            _ => Err(broker_error(RequestCode::ACK_MESSAGE, addr, &resp)),
        }
    }

    /// BATCH_ACK_MESSAGE (200151): all `body`'s acknowledgements, for one broker. The
    /// broker skips bad items silently, so success says only that it read the body.
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] for non-SUCCESS codes (NO_MESSAGE for an
    /// empty body).
    pub async fn batch_ack_message(
        &self,
        addr: &str,
        body: &BatchAckBody,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("serializable"));
        self.invoke_ok(addr, &BatchAckMessageRequestHeader {}, bytes, timeout)
            .await
            .map(drop)
    }

    /// CHANGE_MESSAGE_INVISIBLETIME (200053): the new check point's times. The handle
    /// sent is dead afterwards.
    ///
    /// # Errors
    /// Transport errors; [`ClientError::Broker`] for non-SUCCESS codes (NO_MESSAGE when the
    /// offset left the queue).
    pub async fn change_invisible_time(
        &self,
        addr: &str,
        header: &ChangeInvisibleTimeRequestHeader,
        timeout: Duration,
    ) -> Result<ChangeInvisibleTimeResponseHeader, ClientError> {
        let resp = self.invoke_ok(addr, header, Bytes::new(), timeout).await?;
        response_header(RequestCode::CHANGE_MESSAGE_INVISIBLETIME, &resp)
    }

    /// SET_MESSAGE_REQUEST_MODE (401), an admin call (Java `mqadmin setConsumeMode`):
    /// persists PULL or POP for a topic and group on the broker at `addr`.
    ///
    /// # Errors
    /// Transport errors, non-SUCCESS codes.
    pub async fn set_message_request_mode(
        &self,
        addr: &str,
        body: &SetMessageRequestModeRequestBody,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("serializable"));
        self.invoke_ok(addr, &SetMessageRequestModeRequestHeader {}, bytes, timeout)
            .await
            .map(drop)
    }
}
