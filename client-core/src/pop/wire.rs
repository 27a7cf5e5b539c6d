//! Pop consumption's wire pieces (REMOTING-5X §1): the receipt handle (`POP_CK`, Java
//! `ExtraInfoUtil`), the pop-retry topic names (Java `KeyBuilder`), the POP_MESSAGE
//! response's offset-info strings, and the BATCH_ACK_MESSAGE body in the one form both the
//! Java and the rocketmq-rust 1.0 brokers accept. Checked against `vectors/pop.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Java `KeyBuilder.POP_ORDER_REVIVE_QUEUE`: the revive queue id of an orderly pop.
pub const POP_ORDER_REVIVE_QUEUE: i32 = 999;
const RETRY_PREFIX: &str = "%RETRY%";

/// A receipt handle that could not be read: `field` (Java name) is missing or not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receipt handle {handle:?}: field {index} ({field}) is missing or malformed")]
pub struct ReceiptHandleError {
    /// The handle as received.
    pub handle: String,
    /// The field's position (0-based).
    pub index: usize,
    /// The field's Java name.
    pub field: &'static str,
}

/// A pop receipt handle (`POP_CK`, Java `ExtraInfoUtil`): space-separated fields, kept
/// verbatim (it goes back to the broker as `extraInfo`), read by position. Eight fields
/// from Java brokers; the rocketmq-rust 1.0 broker adds a ninth on retry-topic messages,
/// which is kept and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptHandle {
    raw: String,
    /// Field 0: the check point's start offset.
    pub ck_queue_offset: i64,
    /// Field 1: when it was popped, ms since the epoch.
    pub pop_time: i64,
    /// Field 2: how long it stays invisible, ms.
    pub invisible_time: i64,
    /// Field 3: the revive queue ([`POP_ORDER_REVIVE_QUEUE`] for an orderly pop).
    pub revive_qid: i32,
    /// Field 4: `0` normal topic, `1` V1 pop-retry topic, `2` V2 pop-retry topic.
    pub retry: String,
    /// Field 5: the broker that popped it (acks go to its master).
    pub broker_name: String,
    /// Field 6: the queue (of the retry topic when `retry` is not `0`).
    pub queue_id: i32,
    /// Field 7: the message's queue offset.
    pub queue_offset: i64,
}

impl ReceiptHandle {
    /// Reads `handle`.
    ///
    /// # Errors
    /// [`ReceiptHandleError`] naming the first field that is missing or not a number.
    pub fn parse(handle: &str) -> Result<Self, ReceiptHandleError> {
        const NAMES: [&str; 8] = [
            "ckQueueOffset",
            "popTime",
            "invisibleTime",
            "reviveQid",
            "retry",
            "brokerName",
            "queueId",
            "queueOffset",
        ];
        let fields: Vec<&str> = handle.split(' ').collect();
        let field = |i: usize| {
            fields
                .get(i)
                .copied()
                .filter(|f| !f.is_empty())
                .ok_or(ReceiptHandleError {
                    handle: handle.to_owned(),
                    index: i,
                    field: NAMES[i],
                })
        };
        let number = |i: usize| {
            field(i)?.parse::<i64>().map_err(|_| ReceiptHandleError {
                handle: handle.to_owned(),
                index: i,
                field: NAMES[i],
            })
        };
        let int = |i: usize| {
            number(i).and_then(|n| {
                i32::try_from(n).map_err(|_| ReceiptHandleError {
                    handle: handle.to_owned(),
                    index: i,
                    field: NAMES[i],
                })
            })
        };
        Ok(ReceiptHandle {
            raw: handle.to_owned(),
            ck_queue_offset: number(0)?,
            pop_time: number(1)?,
            invisible_time: number(2)?,
            revive_qid: int(3)?,
            retry: field(4)?.to_owned(),
            broker_name: field(5)?.to_owned(),
            queue_id: int(6)?,
            queue_offset: number(7)?,
        })
    }

    /// The handle as received (what ACK_MESSAGE sends back as `extraInfo`).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether it came from an orderly pop (Java `isOrder`).
    pub fn is_order(&self) -> bool {
        self.revive_qid == POP_ORDER_REVIVE_QUEUE
    }

    /// The topic the message really sits in (Java `getRealTopic`): the V1 or V2 pop-retry
    /// topic of `group` and `topic` when the handle says so, else `topic`.
    pub fn real_topic(&self, topic: &str, group: &str) -> String {
        match self.retry.as_str() {
            "1" => retry_topic_v1(group, topic),
            "2" => retry_topic_v2(group, topic),
            _ => topic.to_owned(),
        }
    }
}

/// The V1 pop-retry topic, `%RETRY%<group>_<topic>` (Java `KeyBuilder.buildPopRetryTopicV1`).
pub fn retry_topic_v1(group: &str, topic: &str) -> String {
    format!("{RETRY_PREFIX}{group}_{topic}")
}

/// The V2 pop-retry topic, `%RETRY%<group>+<topic>` (Java `buildPopRetryTopicV2`; brokers
/// with `enableRetryTopicV2=true`).
pub fn retry_topic_v2(group: &str, topic: &str) -> String {
    format!("{RETRY_PREFIX}{group}+{topic}")
}

/// Whether `topic` is a V2 pop-retry topic (Java `isPopRetryTopicV2`).
pub fn is_pop_retry_topic_v2(topic: &str) -> bool {
    topic.starts_with(RETRY_PREFIX) && topic.contains('+')
}

/// The normal topic of a pop-retry topic of `group` (Java `parseNormalTopic(topic, cid)`):
/// the topic itself when it is not one.
pub fn parse_normal_topic(topic: &str, group: &str) -> String {
    let Some(rest) = topic.strip_prefix(RETRY_PREFIX) else {
        return topic.to_owned();
    };
    if is_pop_retry_topic_v2(topic) {
        return rest.split_once('+').map_or(rest, |(_, t)| t).to_owned();
    }
    rest.strip_prefix(group)
        .and_then(|r| r.strip_prefix('_'))
        .unwrap_or(rest)
        .to_owned()
}

/// The retry flag of `topic` in handles and offset-info keys (Java `ExtraInfoUtil.getRetry`).
fn retry_flag(topic: &str) -> &'static str {
    match topic.strip_prefix(RETRY_PREFIX) {
        None => "0",
        Some(_) if topic.contains('+') => "2",
        Some(_) => "1",
    }
}

/// The key of `topic`'s `queue_id` in the parsed `startOffsetInfo` / `msgOffsetInfo`
/// (Java `getStartOffsetInfoMapKey`): `<retry flag>@<queue id>`.
pub fn offset_info_key(topic: &str, queue_id: i32) -> String {
    format!("{}@{queue_id}", retry_flag(topic))
}

/// Parses a POP_MESSAGE response's `startOffsetInfo` (`"0 1 100;1 0 7"`: retry flag, queue
/// id, check-point offset per entry) into [`offset_info_key`] → offset. Malformed entries
/// are skipped.
pub fn parse_start_offset_info(info: &str) -> BTreeMap<String, i64> {
    info.split(';')
        .filter_map(|e| {
            let mut f = e.split(' ');
            let (flag, queue, offset) = (f.next()?, f.next()?, f.next()?);
            Some((format!("{flag}@{queue}"), offset.parse().ok()?))
        })
        .collect()
}

/// Parses `msgOffsetInfo` (`"0 1 100,101,105;1 0 7"`) into [`offset_info_key`] → the
/// offsets of the popped messages, in order. Malformed entries are skipped.
pub fn parse_msg_offset_info(info: &str) -> BTreeMap<String, Vec<i64>> {
    info.split(';')
        .filter_map(|e| {
            let mut f = e.split(' ');
            let (flag, queue, offsets) = (f.next()?, f.next()?, f.next()?);
            let offsets = offsets
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<i64>, _>>()
                .ok()?;
            Some((format!("{flag}@{queue}"), offsets))
        })
        .collect()
}

/// The handle a client builds for a popped message when the broker did not set `POP_CK`
/// (Java `ExtraInfoUtil.buildExtraInfo` + `" " + queueOffset`).
#[allow(clippy::too_many_arguments)]
pub fn build_receipt_handle(
    ck_queue_offset: i64,
    pop_time: i64,
    invisible_time: i64,
    revive_qid: i32,
    topic: &str,
    broker_name: &str,
    queue_id: i32,
    queue_offset: i64,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{ck_queue_offset} {pop_time} {invisible_time} {revive_qid} {} {broker_name} {queue_id} {queue_offset}",
        retry_flag(topic)
    );
    s
}

/// One merged acknowledgement of a BATCH_ACK_MESSAGE body (Java `BatchAck`), short keys in
/// fastjson's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchAck {
    /// Bit `i` acknowledges offset `so + i`: `BitSet.toByteArray()`, zero-padded to a
    /// multiple of 8 bytes and written as a number array — the one form both brokers read
    /// (Java's base64 string is refused by rocketmq-rust 1.0, which also panics on an array
    /// whose length is not a multiple of 8; REMOTING-5X §8).
    pub b: Vec<u8>,
    /// Consumer group.
    pub c: String,
    /// Invisible time, ms.
    pub it: i64,
    /// Pop time, ms.
    pub pt: i64,
    /// Queue id.
    pub q: i32,
    /// Retry flag.
    pub r: String,
    /// Revive queue id.
    pub rq: i32,
    /// Check-point start offset.
    pub so: i64,
    /// The normal topic (the broker rebuilds the real one from `r`).
    pub t: String,
}

/// A BATCH_ACK_MESSAGE body (Java `BatchAckMessageRequestBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAckBody {
    /// The merged acknowledgements.
    pub acks: Vec<BatchAck>,
    /// The broker they all go to.
    pub broker_name: String,
}

/// Merges `handles` (all of one broker) of `group` popped from `topic` (the normal topic)
/// into a BATCH_ACK_MESSAGE body, one [`BatchAck`] per retry flag, queue, check point and
/// pop time (Java `MQClientAPIImpl.batchAckMessageAsync`), in first-seen order.
pub fn batch_ack_body(group: &str, topic: &str, handles: &[ReceiptHandle]) -> BatchAckBody {
    let mut acks: Vec<(String, BatchAck)> = Vec::new();
    for h in handles {
        let key = format!(
            "{}@{}@{}@{}",
            h.retry, h.queue_id, h.ck_queue_offset, h.pop_time
        );
        let i = match acks.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                acks.push((
                    key,
                    BatchAck {
                        b: Vec::new(),
                        c: group.to_owned(),
                        it: h.invisible_time,
                        pt: h.pop_time,
                        q: h.queue_id,
                        r: h.retry.clone(),
                        rq: h.revive_qid,
                        so: h.ck_queue_offset,
                        t: topic.to_owned(),
                    },
                ));
                acks.len() - 1
            }
        };
        let Ok(bit) = usize::try_from(h.queue_offset - h.ck_queue_offset) else {
            continue; // before the check point: nothing a bit can say
        };
        let b = &mut acks[i].1.b;
        if b.len() <= bit / 8 {
            b.resize(bit / 8 + 1, 0);
        }
        b[bit / 8] |= 1 << (bit % 8);
    }
    for (_, a) in &mut acks {
        let padded = a.b.len().div_ceil(8).max(1) * 8;
        a.b.resize(padded, 0);
    }
    BatchAckBody {
        acks: acks.into_iter().map(|(_, a)| a).collect(),
        broker_name: handles
            .first()
            .map(|h| h.broker_name.clone())
            .unwrap_or_default(),
    }
}
