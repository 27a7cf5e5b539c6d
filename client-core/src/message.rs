//! Message records (REMOTING.md §5): [`MessageExt`] and the decoder of pull-response bodies.
//!
//! Java counterparts: `MessageExt`, `MessageClientExt`, `MessageDecoder.decodesBatch`.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;

pub use crate::properties::Properties;

/// `MessageDecoder.MESSAGE_MAGIC_CODE` (V1: 1-byte topic length).
pub const MESSAGE_MAGIC_CODE_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// `MessageVersion.MESSAGE_VERSION_V2` magic (2-byte topic length), brokers ≥ 5.1.0.
pub const MESSAGE_MAGIC_CODE_V2: i32 = 0xDAA3_20AB_u32 as i32;

/// sysFlag bits (`MessageSysFlag`, REMOTING.md §5.2).
pub mod sys_flag {
    /// The body is compressed.
    pub const COMPRESSED: i32 = 0x1;
    /// Transaction type mask (2 bits).
    pub const TRANSACTION_TYPE_MASK: i32 = 0xC;
    /// bornHost is IPv6 (16 + 4 bytes).
    pub const BORNHOST_V6: i32 = 0x10;
    /// storeHost is IPv6 (16 + 4 bytes).
    pub const STOREHOST_V6: i32 = 0x20;
    /// Inner-batch marker: the body holds several messages to unwrap.
    pub const NEED_UNWRAP: i32 = 0x40;
    /// Inner-batch marker.
    pub const INNER_BATCH: i32 = 0x80;
    /// Compression type bits 8–10: 0 or 3 zlib, 1 LZ4 frame, 2 zstd.
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
}

/// Well-known property names (`MessageConst`).
pub mod property {
    /// Single tag.
    pub const TAGS: &str = "TAGS";
    /// Space-separated keys.
    pub const KEYS: &str = "KEYS";
    /// Client-generated message id.
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    /// Wait for store OK.
    pub const WAIT: &str = "WAIT";
    /// Delay level.
    pub const DELAY: &str = "DELAY";
    /// Original topic of a retried message.
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// Real topic (schedule / transaction).
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Real queue id.
    pub const REAL_QID: &str = "REAL_QID";
    /// msgId of the original message.
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    /// Reconsume count carried by the fallback send-back path.
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    /// Max reconsume count carried by the fallback send-back path.
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// Transactional message.
    pub const TRAN_MSG: &str = "TRAN_MSG";
    /// Producer group.
    pub const PRODUCER_GROUP: &str = "PGROUP";
    /// Queue min offset, put by the client after a pull.
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    /// Queue max offset, put by the client after a pull.
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    /// When the listener started on the message (ms), put by the client.
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
}

/// Largest body a compressed record may inflate to, bytes: the default frame limit
/// (16 MiB, `rmq_remoting::DEFAULT_MAX_FRAME_LEN`), so that no input makes the decoder
/// allocate more than a frame may hold. Producers check a body against the message size
/// limit (4 MiB by default) before they compress it, so a real body inflates to at most
/// that; anything bigger is treated as corrupt rather than allocated.
pub const MAX_DECOMPRESSED_BODY: usize = rmq_remoting::DEFAULT_MAX_FRAME_LEN;

/// A consumed message (Java `MessageExt` / `MessageClientExt`).
///
/// Cheap to make and to clone: decoding allocates nothing per message. `topic` and
/// `broker_name` are shared by every message of a pull, `properties` and `body` are views
/// of the received frame (the body is a copy only when the record was compressed), and the
/// offset message id is computed when asked for. A clone shares all of them.
///
/// Java puts `MIN_OFFSET`, `MAX_OFFSET` and `CONSUME_START_TIME` into every message's
/// property map after a pull (three strings per message); rmq does not touch the
/// properties: the queue's offsets at pull time are [`MessageExt::queue_min_offset`] and
/// [`MessageExt::queue_max_offset`].
#[derive(Clone, PartialEq, Eq)]
pub struct MessageExt {
    /// Topic as stored (a retried message reads `%RETRY%<group>` until the consumer restores it).
    pub topic: Arc<str>,
    /// Broker the message was pulled from (set by the pull layer; empty after bare decoding).
    pub broker_name: Arc<str>,
    /// Queue id.
    pub queue_id: i32,
    /// Logical offset in the consume queue.
    pub queue_offset: i64,
    /// Commit-log (physical) offset; CONSUMER_SEND_MSG_BACK needs it.
    pub commit_log_offset: i64,
    /// Record size in bytes (`totalSize`).
    pub store_size: i32,
    /// User flag set by the producer.
    pub flag: i32,
    /// sysFlag with the compressed bit cleared after decompression (as Java does).
    pub sys_flag: i32,
    /// CRC32 of the stored body, masked to 31 bits; not checked (Java does not either).
    pub body_crc: i32,
    /// Producer time, ms since the epoch.
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// Broker store time, ms since the epoch.
    pub store_timestamp: i64,
    /// Broker address.
    pub store_host: SocketAddr,
    /// Delivery attempts so far (0 on the first delivery).
    pub reconsume_times: i32,
    /// Prepared transaction offset.
    pub prepared_transaction_offset: i64,
    /// Properties, a view of the received frame.
    pub properties: Properties,
    /// Payload, decompressed.
    pub body: Bytes,
    /// The queue's smallest offset when the message was pulled (Java's `MIN_OFFSET`
    /// property); `None` outside a pull.
    pub queue_min_offset: Option<i64>,
    /// The queue's end offset (exclusive) when the message was pulled (Java's `MAX_OFFSET`
    /// property); `None` outside a pull. `queue_max_offset - queue_offset - 1` is the
    /// backlog behind this message.
    pub queue_max_offset: Option<i64>,
    /// Popped messages only: the receipt handle that acknowledges it (Java keeps it in the
    /// `POP_CK` property; rmq leaves the properties as received). `None` for pulled
    /// messages.
    pub receipt: Option<crate::pop::PopReceipt>,
}

impl Default for MessageExt {
    /// An empty message (all numbers 0, hosts `0.0.0.0:0`), for tests and builders.
    fn default() -> Self {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        MessageExt {
            topic: Arc::from(""),
            broker_name: Arc::from(""),
            queue_id: 0,
            queue_offset: 0,
            commit_log_offset: 0,
            store_size: 0,
            flag: 0,
            sys_flag: 0,
            body_crc: 0,
            born_timestamp: 0,
            born_host: any,
            store_timestamp: 0,
            store_host: any,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            properties: Properties::default(),
            body: Bytes::new(),
            queue_min_offset: None,
            queue_max_offset: None,
            receipt: None,
        }
    }
}

impl fmt::Debug for MessageExt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageExt")
            .field("topic", &self.topic)
            .field("broker_name", &self.broker_name)
            .field("queue_id", &self.queue_id)
            .field("queue_offset", &self.queue_offset)
            .field("msg_id", &self.msg_id())
            .field("reconsume_times", &self.reconsume_times)
            .field("properties", &self.properties)
            .field("body_len", &self.body.len())
            .field("receipt", &self.receipt)
            .finish_non_exhaustive()
    }
}

impl MessageExt {
    /// The id users see (Java `MessageClientExt.getMsgId`): the `UNIQ_KEY` property if set
    /// (borrowed, no allocation), else [`MessageExt::offset_msg_id`]. Stable across retries.
    pub fn msg_id(&self) -> Cow<'_, str> {
        match self.uniq_key() {
            Some(k) => Cow::Borrowed(k),
            None => Cow::Owned(self.offset_msg_id()),
        }
    }

    /// The id derived from the store host and the commit-log offset, uppercase hex (Java
    /// `MessageExt.getOffsetMsgId`, `MessageDecoder.createMessageId`). Computed on each call.
    pub fn offset_msg_id(&self) -> String {
        let port = i32::from(self.store_host.port());
        match self.store_host.ip() {
            IpAddr::V4(ip) => create_offset_msg_id(&ip.octets(), port, self.commit_log_offset),
            IpAddr::V6(ip) => create_offset_msg_id(&ip.octets(), port, self.commit_log_offset),
        }
    }

    /// The `UNIQ_KEY` property: the client-generated message id.
    pub fn uniq_key(&self) -> Option<&str> {
        self.properties.get(property::UNIQ_KEY)
    }

    /// The `TAGS` property.
    pub fn tags(&self) -> Option<&str> {
        self.properties.get(property::TAGS)
    }

    /// The `KEYS` property, split on spaces.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.properties
            .get(property::KEYS)
            .unwrap_or("")
            .split(' ')
            .filter(|k| !k.is_empty())
    }

    /// A property value (no allocation).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name)
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageDecodeError {
    /// The record ends before the field.
    #[error("record at byte {at} truncated reading {field}")]
    Truncated {
        /// Offset of the record in the body.
        at: usize,
        /// The field.
        field: &'static str,
    },
    /// `totalSize` is smaller than a record can be or larger than what is left.
    #[error("record at byte {at} has impossible totalSize {total_size} ({left} bytes left)")]
    BadTotalSize {
        /// Offset of the record.
        at: usize,
        /// The size read.
        total_size: i32,
        /// Bytes left in the body.
        left: usize,
    },
    /// Unknown magic code.
    #[error("record at byte {at} has unknown magic code {magic:#x}")]
    BadMagic {
        /// Offset of the record.
        at: usize,
        /// The magic read.
        magic: i32,
    },
    /// A length field is negative.
    #[error("record at byte {at}: negative length {len} for {field}")]
    NegativeLength {
        /// Offset of the record.
        at: usize,
        /// The field.
        field: &'static str,
        /// The length read.
        len: i64,
    },
    /// Compression type bits name no known algorithm.
    #[error("record at byte {at}: unknown compression type {kind}")]
    UnknownCompression {
        /// Offset of the record.
        at: usize,
        /// `(sysFlag & 0x700) >> 8`.
        kind: i32,
    },
    /// The compressed body does not inflate.
    #[error("record at byte {at}: {algorithm} body does not decompress")]
    Decompress {
        /// Offset of the record.
        at: usize,
        /// zlib, lz4 or zstd.
        algorithm: &'static str,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The body inflates past [`MAX_DECOMPRESSED_BODY`].
    #[error("record at byte {at}: body inflates past {limit} bytes")]
    DecompressedTooLarge {
        /// Offset of the record.
        at: usize,
        /// The limit.
        limit: usize,
    },
    /// Topic or properties are not UTF-8.
    #[error("record at byte {at}: {field} is not UTF-8")]
    Utf8 {
        /// Offset of the record.
        at: usize,
        /// The field.
        field: &'static str,
    },
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], MessageDecodeError> {
        if self.buf.len() < n {
            return Err(MessageDecodeError::Truncated { at: self.at, field });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    #[inline]
    fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], MessageDecodeError> {
        match self.buf.split_first_chunk::<N>() {
            Some((head, rest)) => {
                self.buf = rest;
                Ok(*head)
            }
            None => Err(MessageDecodeError::Truncated { at: self.at, field }),
        }
    }
    #[inline]
    fn i16(&mut self, f: &'static str) -> Result<i16, MessageDecodeError> {
        self.array(f).map(i16::from_be_bytes)
    }
    #[inline]
    fn i32(&mut self, f: &'static str) -> Result<i32, MessageDecodeError> {
        self.array(f).map(i32::from_be_bytes)
    }
    #[inline]
    fn i64(&mut self, f: &'static str) -> Result<i64, MessageDecodeError> {
        self.array(f).map(i64::from_be_bytes)
    }
    fn len(&self, len: i64, field: &'static str) -> Result<usize, MessageDecodeError> {
        usize::try_from(len).map_err(|_| MessageDecodeError::NegativeLength {
            at: self.at,
            field,
            len,
        })
    }
    #[inline]
    fn host(&mut self, v6: bool, f: &'static str) -> Result<SocketAddr, MessageDecodeError> {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>(f)?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>(f)?))
        };
        let port = self.i32(f)?;
        Ok(SocketAddr::new(ip, port as u16))
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Uppercase hex of `store host ip + port (i32) + commit-log offset (i64)` (Java
/// `MessageDecoder.createMessageId`).
pub fn create_offset_msg_id(store_ip: &[u8], port: i32, commit_log_offset: i64) -> String {
    let mut s = String::with_capacity((store_ip.len() + 12) * 2);
    for b in store_ip
        .iter()
        .chain(port.to_be_bytes().iter())
        .chain(commit_log_offset.to_be_bytes().iter())
    {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xF)] as char);
    }
    s
}

fn inflate(at: usize, kind: i32, data: &[u8]) -> Result<Vec<u8>, MessageDecodeError> {
    let limit = MAX_DECOMPRESSED_BODY;
    let hint = data.len().saturating_mul(4);
    let (algorithm, result) = match kind {
        0 | 3 => (
            "zlib",
            read_capped(flate2::read::ZlibDecoder::new(data), limit, hint),
        ),
        1 => (
            "lz4",
            read_capped(lz4_flex::frame::FrameDecoder::new(data), limit, hint),
        ),
        2 => match zstd::stream::read::Decoder::new(data) {
            Ok(d) => ("zstd", read_capped(d, limit, hint)),
            Err(e) => ("zstd", Err(e)),
        },
        kind => return Err(MessageDecodeError::UnknownCompression { at, kind }),
    };
    result
        .map_err(|source| MessageDecodeError::Decompress {
            at,
            algorithm,
            source,
        })?
        .ok_or(MessageDecodeError::DecompressedTooLarge { at, limit })
}

/// Reads `r` to its end; `Ok(None)` as soon as it holds more than `limit` bytes. The
/// vector's capacity never exceeds `limit` (a doubling `read_to_end` could allocate twice
/// the limit), starting at `hint` at most.
fn read_capped(mut r: impl Read, limit: usize, hint: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut out: Vec<u8> = Vec::with_capacity(hint.min(limit));
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(Some(out)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if out.len() + n > limit {
            return Ok(None);
        }
        if out.capacity() - out.len() < n {
            let want = out
                .capacity()
                .saturating_mul(2)
                .max(out.len() + n)
                .min(limit);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The strings a pull's records share: a pull body is one queue's records, so one topic
/// `Arc<str>` serves the whole batch, and one broker name (the pulled queue's, or empty).
struct SharedNames {
    topic: Option<Arc<str>>,
    broker_name: Arc<str>,
}

impl SharedNames {
    fn new(broker_name: Arc<str>) -> Self {
        SharedNames {
            topic: None,
            broker_name,
        }
    }

    /// The topic of `raw`: the previous record's (compared as bytes, so an unchanged topic
    /// is not validated again), else a new UTF-8-checked one.
    fn topic(&mut self, raw: &[u8]) -> Option<Arc<str>> {
        match &self.topic {
            Some(t) if t.as_bytes() == raw => Some(Arc::clone(t)),
            _ => {
                let t: Arc<str> = Arc::from(std::str::from_utf8(raw).ok()?);
                self.topic = Some(Arc::clone(&t));
                Some(t)
            }
        }
    }
}

/// The properties of a record: `len` bytes of `frame` from `start`, no copy (checked as
/// UTF-8 pair by pair when read, see [`Properties`]).
fn properties_view(frame: &Bytes, start: usize, len: usize) -> Properties {
    if len == 0 {
        return Properties::new();
    }
    Properties::from_wire(frame.slice(start..start + len))
}

/// Decodes one record starting at `body[at..]` onto the end of `out` (built in place, not
/// returned: a message is a few hundred bytes, and moving it twice per record cost more
/// than the parsing); returns the record length.
fn decode_record(
    body: &Bytes,
    at: usize,
    names: &mut SharedNames,
    out: &mut Vec<MessageExt>,
) -> Result<usize, MessageDecodeError> {
    let left = body.len() - at;
    let mut c = Cursor {
        buf: &body[at..],
        at,
    };
    let total_size = c.i32("totalSize")?;
    // 4 totalSize + 4 magic + … the smallest record is well above 20 bytes.
    if total_size < 20 || total_size as usize > left {
        return Err(MessageDecodeError::BadTotalSize {
            at,
            total_size,
            left,
        });
    }
    let end = at + total_size as usize;
    c.buf = &body[at + 4..end];
    let magic = c.i32("magicCode")?;
    let v2 = match magic {
        MESSAGE_MAGIC_CODE_V1 => false,
        MESSAGE_MAGIC_CODE_V2 => true,
        magic => return Err(MessageDecodeError::BadMagic { at, magic }),
    };
    let body_crc = c.i32("bodyCRC")?;
    let queue_id = c.i32("queueId")?;
    let flag = c.i32("flag")?;
    let queue_offset = c.i64("queueOffset")?;
    let commit_log_offset = c.i64("physicalOffset")?;
    let mut sys_flag = c.i32("sysFlag")?;
    let born_timestamp = c.i64("bornTimestamp")?;
    let born_host = c.host(sys_flag & sys_flag::BORNHOST_V6 != 0, "bornHost")?;
    let store_timestamp = c.i64("storeTimestamp")?;
    let store_host = c.host(sys_flag & sys_flag::STOREHOST_V6 != 0, "storeHost")?;
    let reconsume_times = c.i32("reconsumeTimes")?;
    let prepared_transaction_offset = c.i64("preparedTransactionOffset")?;
    let body_len = c.i32("bodyLength")?;
    let body_len = c.len(body_len.into(), "body")?;
    let body_start = end - c.buf.len();
    c.take(body_len, "body")?;
    let raw_body = body.slice(body_start..body_start + body_len);
    let topic_len = if v2 {
        c.i16("topicLength")? as i64
    } else {
        i64::from(c.take(1, "topicLength")?[0] as i8)
    };
    let topic_len = c.len(topic_len, "topic")?;
    let topic = names
        .topic(c.take(topic_len, "topic")?)
        .ok_or(MessageDecodeError::Utf8 { at, field: "topic" })?;
    let props_len = c.i16("propertiesLength")?;
    let props_len = c.len(props_len.into(), "properties")?;
    let props_start = end - c.buf.len();
    c.take(props_len, "properties")?;
    let properties = properties_view(body, props_start, props_len);

    let payload = if sys_flag & sys_flag::COMPRESSED != 0 {
        let kind = (sys_flag & sys_flag::COMPRESSION_TYPE_MASK) >> 8;
        let inflated = inflate(at, kind, &raw_body)?;
        sys_flag &= !sys_flag::COMPRESSED;
        Bytes::from(inflated)
    } else {
        raw_body
    };
    out.push(MessageExt {
        topic,
        broker_name: Arc::clone(&names.broker_name),
        queue_id,
        queue_offset,
        commit_log_offset,
        store_size: total_size,
        flag,
        sys_flag,
        body_crc,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        properties,
        body: payload,
        queue_min_offset: None,
        queue_max_offset: None,
        receipt: None,
    });
    Ok(total_size as usize)
}

/// Expands an inner-batch message (INNER_BATCH and NEED_UNWRAP set, REMOTING.md §5.6 step 2).
fn unwrap_inner_batch(
    outer: MessageExt,
    out: &mut Vec<MessageExt>,
) -> Result<(), MessageDecodeError> {
    let body = outer.body.clone();
    let mut pos = 0usize;
    let mut index = 0i64;
    while pos < body.len() {
        let at = pos;
        let mut c = Cursor {
            buf: &body[pos..],
            at,
        };
        let total = c.i32("inner totalSize")?;
        if total < 22 || total as usize > body.len() - pos {
            return Err(MessageDecodeError::BadTotalSize {
                at,
                total_size: total,
                left: body.len() - pos,
            });
        }
        let end = pos + total as usize;
        c.buf = &body[pos + 4..end];
        let _magic = c.i32("inner magic")?;
        let _crc = c.i32("inner bodyCRC")?;
        let flag = c.i32("inner flag")?;
        let body_len = c.i32("inner bodyLength")?;
        let body_len = c.len(body_len.into(), "inner body")?;
        let start = end - c.buf.len();
        c.take(body_len, "inner body")?;
        let props_len = c.i16("inner propertiesLength")?;
        let props_len = c.len(props_len.into(), "inner properties")?;
        let props_start = end - c.buf.len();
        c.take(props_len, "inner properties")?;
        let mut m = outer.clone();
        m.flag = flag;
        m.body = body.slice(start..start + body_len);
        m.properties = properties_view(&body, props_start, props_len);
        m.queue_offset = outer.queue_offset + index;
        m.store_size = total;
        out.push(m);
        pos = end;
        index += 1;
    }
    Ok(())
}

/// Decodes a FOUND pull body (concatenated records) into messages, in order, with an
/// empty [`MessageExt::broker_name`] (see [`decode_messages_of`]).
///
/// Advances by each record's `totalSize` rather than trusting field-by-field parsing.
/// Inner batches are unwrapped. Nothing is skipped silently: a record that cannot be
/// decoded fails the whole body, so that no offset is ever committed past a message that
/// was not delivered.
///
/// Allocations: the returned vector, one topic string and one broker name per batch
/// (plus the inflated body of a compressed record); bodies and properties are slices of
/// `body`.
///
/// # Errors
/// [`MessageDecodeError`] naming the record (byte offset) and the field.
pub fn decode_messages(body: &Bytes) -> Result<Vec<MessageExt>, MessageDecodeError> {
    decode_messages_of(body, Arc::from(""))
}

/// [`decode_messages`] for a pull from the queue of broker `broker_name`, which every
/// message shares (set here rather than afterwards: each change of a message's name costs
/// two atomic reference-count operations, and those were a sixth of decoding).
///
/// # Errors
/// As [`decode_messages`].
pub fn decode_messages_of(
    body: &Bytes,
    broker_name: Arc<str>,
) -> Result<Vec<MessageExt>, MessageDecodeError> {
    let mut out = Vec::with_capacity(32);
    let mut at = 0usize;
    let mut names = SharedNames::new(broker_name);
    while at < body.len() {
        at += decode_record(body, at, &mut names, &mut out)?;
        let last = out.last().map_or(0, |m| m.sys_flag);
        if last & sys_flag::INNER_BATCH != 0 && last & sys_flag::NEED_UNWRAP != 0 {
            let outer = out.pop().expect("just decoded");
            unwrap_inner_batch(outer, &mut out)?;
        }
    }
    Ok(out)
}

/// Decodes exactly one record (the CONSUME_MESSAGE_DIRECTLY body).
///
/// # Errors
/// As [`decode_messages`].
pub fn decode_message(body: &Bytes) -> Result<MessageExt, MessageDecodeError> {
    let mut out = Vec::with_capacity(1);
    decode_record(body, 0, &mut SharedNames::new(Arc::from("")), &mut out)?;
    Ok(out.pop().expect("one record decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record whose body is `raw` zlib-compressed (sys flag COMPRESSED, type zlib).
    fn compressed_record(raw: &[u8]) -> Bytes {
        use bytes::BufMut;
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(raw).unwrap();
        let body = z.finish().unwrap();
        let topic = b"T";
        let total = 84 + 4 + body.len() + 1 + topic.len() + 2;
        let mut b = bytes::BytesMut::new();
        b.put_i32(total as i32);
        b.put_i32(MESSAGE_MAGIC_CODE_V1);
        b.put_i32(0);
        b.put_i32(0);
        b.put_i32(0);
        b.put_i64(0);
        b.put_i64(0);
        b.put_i32(sys_flag::COMPRESSED);
        b.put_i64(0);
        b.put_slice(&[127, 0, 0, 1]);
        b.put_i32(1);
        b.put_i64(0);
        b.put_slice(&[127, 0, 0, 1]);
        b.put_i32(2);
        b.put_i32(0);
        b.put_i64(0);
        b.put_i32(body.len() as i32);
        b.put_slice(&body);
        b.put_u8(topic.len() as u8);
        b.put_slice(topic);
        b.put_i16(0);
        b.freeze()
    }

    #[test]
    fn a_body_inflating_past_the_frame_limit_is_refused_not_allocated() {
        let at_limit = compressed_record(&vec![0u8; MAX_DECOMPRESSED_BODY]);
        assert!(at_limit.len() < 100 * 1024, "a compression bomb");
        let m = decode_messages(&at_limit).unwrap();
        assert_eq!(m[0].body.len(), MAX_DECOMPRESSED_BODY);
        let past = compressed_record(&vec![0u8; MAX_DECOMPRESSED_BODY + 1]);
        assert!(matches!(
            decode_messages(&past),
            Err(MessageDecodeError::DecompressedTooLarge { at: 0, limit }) if limit == MAX_DECOMPRESSED_BODY
        ));
        assert_eq!(MAX_DECOMPRESSED_BODY, rmq_remoting::DEFAULT_MAX_FRAME_LEN);
    }

    #[test]
    fn read_capped_never_reserves_past_its_limit() {
        let data = vec![7u8; 100_000];
        let out = read_capped(&data[..], 100_000, 10).unwrap().unwrap();
        assert_eq!(out, data);
        assert!(out.capacity() <= 100_000, "capacity {}", out.capacity());
        assert!(read_capped(&data[..], 99_999, 10).unwrap().is_none());
    }

    #[test]
    fn a_property_that_is_not_utf8_costs_that_pair_not_the_pull() {
        let body = crate::testing::pull_body("T", 0, 3, 10);
        let mut raw = body.to_vec();
        let at = raw
            .windows(7)
            .position(|w| w == b"KEYS\x01k1")
            .expect("second record's KEYS");
        raw[at + 5] = 0xFF;
        let broker: Arc<str> = Arc::from("broker-a");
        let m = decode_messages_of(&Bytes::from(raw), Arc::clone(&broker)).unwrap();
        assert_eq!(m.len(), 3, "every message delivered");
        assert_eq!(m[1].keys().count(), 0, "the bad pair is absent");
        assert_eq!(m[1].tags(), Some("TagA"));
        assert_eq!(m[1].uniq_key(), Some("0A00000100002A9F0000000000000001"));
        assert_eq!(m[2].keys().collect::<Vec<_>>(), ["k2"]);
        assert!(
            m.iter().all(|m| Arc::ptr_eq(&m.broker_name, &broker)),
            "one broker name, shared"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..200u8 {
            let body = Bytes::from((0..n).map(|i| i.wrapping_mul(37)).collect::<Vec<_>>());
            let _ = decode_messages(&body);
        }
    }
}
