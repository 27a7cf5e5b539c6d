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
/// which is kept and ignored. One allocation: the text fields are read in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptHandle {
    raw: String,
    retry: std::ops::Range<usize>,
    broker_name: std::ops::Range<usize>,
    /// Field 0: the check point's start offset.
    pub ck_queue_offset: i64,
    /// Field 1: when it was popped, ms since the epoch.
    pub pop_time: i64,
    /// Field 2: how long it stays invisible, ms.
    pub invisible_time: i64,
    /// Field 3: the revive queue ([`POP_ORDER_REVIVE_QUEUE`] for an orderly pop).
    pub revive_qid: i32,
    /// Field 6: the queue (of the retry topic when `retry` is not `0`).
    pub queue_id: i32,
    /// Field 7: the message's queue offset.
    pub queue_offset: i64,
}

impl ReceiptHandle {
    /// Reads `handle` (copied).
    ///
    /// # Errors
    /// [`ReceiptHandleError`] naming the first field that is missing or not a number.
    pub fn parse(handle: &str) -> Result<Self, ReceiptHandleError> {
        Self::from_string(handle.to_owned())
    }

    /// Reads `handle`, keeping the string.
    ///
    /// # Errors
    /// [`ReceiptHandleError`] naming the first field that is missing or not a number.
    pub fn from_string(handle: String) -> Result<Self, ReceiptHandleError> {
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
        let mut fields: [std::ops::Range<usize>; 8] = std::array::from_fn(|_| 0..0);
        let mut found = 0;
        let mut start = 0;
        for (i, piece) in handle.split(' ').enumerate().take(8) {
            fields[i] = start..start + piece.len();
            start += piece.len() + 1;
            found = i + 1;
        }
        let error = |index: usize| ReceiptHandleError {
            handle: handle.clone(),
            index,
            field: NAMES[index],
        };
        let field = |i: usize| {
            if i < found && !fields[i].is_empty() {
                Ok(&handle[fields[i].clone()])
            } else {
                Err(error(i))
            }
        };
        let number = |i: usize| field(i)?.parse::<i64>().map_err(|_| error(i));
        let int = |i: usize| number(i).and_then(|n| i32::try_from(n).map_err(|_| error(i)));
        let ck_queue_offset = number(0)?;
        let pop_time = number(1)?;
        let invisible_time = number(2)?;
        let revive_qid = int(3)?;
        field(4)?;
        field(5)?;
        let queue_id = int(6)?;
        let queue_offset = number(7)?;
        Ok(ReceiptHandle {
            retry: fields[4].clone(),
            broker_name: fields[5].clone(),
            raw: handle,
            ck_queue_offset,
            pop_time,
            invisible_time,
            revive_qid,
            queue_id,
            queue_offset,
        })
    }

    /// Field 4: `0` normal topic, `1` V1 pop-retry topic, `2` V2 pop-retry topic.
    pub fn retry(&self) -> &str {
        &self.raw[self.retry.clone()]
    }

    /// Field 5: the broker that popped it (acks go to its master).
    pub fn broker_name(&self) -> &str {
        &self.raw[self.broker_name.clone()]
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
        match self.retry() {
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
    let mut s = String::with_capacity(64 + broker_name.len());
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
pub fn batch_ack_body<'a>(
    group: &str,
    topic: &str,
    handles: impl IntoIterator<Item = &'a ReceiptHandle>,
) -> BatchAckBody {
    let mut acks: Vec<BatchAck> = Vec::new();
    let mut broker_name = String::new();
    for h in handles {
        if broker_name.is_empty() {
            h.broker_name().clone_into(&mut broker_name);
        }
        let same = |a: &BatchAck| {
            a.r == h.retry() && a.q == h.queue_id && a.so == h.ck_queue_offset && a.pt == h.pop_time
        };
        let i = match acks.iter().position(same) {
            Some(i) => i,
            None => {
                acks.push(BatchAck {
                    b: Vec::new(),
                    c: group.to_owned(),
                    it: h.invisible_time,
                    pt: h.pop_time,
                    q: h.queue_id,
                    r: h.retry().to_owned(),
                    rq: h.revive_qid,
                    so: h.ck_queue_offset,
                    t: topic.to_owned(),
                });
                acks.len() - 1
            }
        };
        let Ok(bit) = usize::try_from(h.queue_offset - h.ck_queue_offset) else {
            continue; // before the check point: nothing a bit can say
        };
        let b = &mut acks[i].b;
        if b.len() <= bit / 8 {
            b.resize(bit / 8 + 1, 0);
        }
        b[bit / 8] |= 1 << (bit % 8);
    }
    for a in &mut acks {
        let padded = a.b.len().div_ceil(8).max(1) * 8;
        a.b.resize(padded, 0);
    }
    BatchAckBody { acks, broker_name }
}
