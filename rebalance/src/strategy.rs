//! The six Java allocation strategies, under their Java names.
//!
//! Each one returns exactly what the Java 4.9.8 / 5.x class returns for the same sorted
//! inputs, in the same order, so that rmq and Java consumers in one group never fight over
//! a queue or leave one unowned. The golden vectors in
//! `shared/protocol/vectors/allocation.json` (computed by the real Java classes) check this.
//!
//! | type | `name()` | Java class |
//! |---|---|---|
//! | [`AllocateMessageQueueAveragely`] | `AVG` | `AllocateMessageQueueAveragely` |
//! | [`AllocateMessageQueueAveragelyByCircle`] | `AVG_BY_CIRCLE` | `AllocateMessageQueueAveragelyByCircle` |
//! | [`AllocateMessageQueueConsistentHash`] | `CONSISTENT_HASH` | `AllocateMessageQueueConsistentHash` |
//! | [`AllocateMessageQueueByConfig`] | `CONFIG` | `AllocateMessageQueueByConfig` |
//! | [`AllocateMessageQueueByMachineRoom`] | `MACHINE_ROOM` | `AllocateMessageQueueByMachineRoom` |
//! | [`AllocateMachineRoomNearby`] | `MACHINE_ROOM_NEARBY-<inner>` | `AllocateMachineRoomNearby` |

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use md5::{Digest, Md5};
use rmq_client_core::MessageQueue;

use crate::{AllocateError, AllocateMessageQueueStrategy, check_allocate_args};

/// Runs [`check_allocate_args`] and returns the index of `current_cid` in `cid_all`
/// (Java `cidAll.indexOf(currentCID)`, the first occurrence), `None` when it owns nothing.
fn checked_index(
    current_cid: &str,
    mq_all: &[MessageQueue],
    cid_all: &[String],
) -> Result<Option<usize>, AllocateError> {
    if !check_allocate_args(current_cid, mq_all, cid_all)? {
        return Ok(None);
    }
    Ok(cid_all.iter().position(|c| c == current_cid))
}

/// Java `String.compareTo`: lexicographic by UTF-16 code unit (differs from Rust's byte
/// order only when characters outside the BMP meet characters in U+E000..U+FFFF).
fn java_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The room of a broker name as `AllocateMessageQueueByMachineRoom` sees it: Java
/// `brokerName.split("@")` must give exactly two parts, and the room is the first.
///
/// Java's `split` drops trailing empty strings, so `"hz@b@"` is `["hz", "b"]` (room `hz`),
/// `"hz@"` is `["hz"]` (dropped), `"@b"` is `["", "b"]` (room `""`), and a name without `@`
/// is one part (dropped).
fn machine_room_of(broker_name: &str) -> Option<&str> {
    if !broker_name.contains('@') {
        return None;
    }
    let mut parts: Vec<&str> = broker_name.split('@').collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    match parts.as_slice() {
        [room, _] => Some(room),
        _ => None,
    }
}

/// Contiguous blocks, the Java default (Java `AllocateMessageQueueAveragely`, name `AVG`).
///
/// With `n` queues, `c` consumers, the current consumer at index `i` and `mod = n % c`:
/// `avg = 1` if `n <= c`, else `n / c + 1` if `mod > 0 && i < mod`, else `n / c`;
/// `start = i * avg` if `mod > 0 && i < mod`, else `i * avg + mod`; the consumer takes
/// `min(avg, n - start)` queues from `start` (none if that is negative).
/// E.g. 8 queues over 3 consumers: `[0, 1, 2]`, `[3, 4, 5]`, `[6, 7]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocateMessageQueueAveragely;

impl AllocateMessageQueueStrategy for AllocateMessageQueueAveragely {
    fn name(&self) -> &str {
        "AVG"
    }

    fn allocate(
        &self,
        _consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        let Some(index) = checked_index(current_cid, mq_all, cid_all)? else {
            return Ok(Vec::new());
        };
        let n = mq_all.len();
        let c = cid_all.len();
        let rem = n % c;
        let takes_extra = rem > 0 && index < rem;
        let avg = if n <= c {
            1
        } else if takes_extra {
            n / c + 1
        } else {
            n / c
        };
        let start = if takes_extra {
            index * avg
        } else {
            index * avg + rem
        };
        // `take` stops at the end, which is Java's `min(avg, n - start)`.
        Ok(mq_all.iter().skip(start).take(avg).cloned().collect())
    }
}

/// Round robin (Java `AllocateMessageQueueAveragelyByCircle`, name `AVG_BY_CIRCLE`).
///
/// Queue `j` of `mq_all` goes to consumer `j % c`; the result is in `mq_all` order.
/// E.g. 8 queues over 3 consumers: `[0, 3, 6]`, `[1, 4, 7]`, `[2, 5]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocateMessageQueueAveragelyByCircle;

impl AllocateMessageQueueStrategy for AllocateMessageQueueAveragelyByCircle {
    fn name(&self) -> &str {
        "AVG_BY_CIRCLE"
    }

    fn allocate(
        &self,
        _consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        let Some(index) = checked_index(current_cid, mq_all, cid_all)? else {
            return Ok(Vec::new());
        };
        Ok(mq_all
            .iter()
            .skip(index)
            .step_by(cid_all.len())
            .cloned()
            .collect())
    }
}

/// The hash function of a consistent-hash ring (Java
/// `org.apache.rocketmq.common.consistenthash.HashFunction`).
///
/// Java's `hash` returns a signed `long` and its ring orders keys as signed longs; here the
/// hash is a `u64` ordered as unsigned. The default [`Md5Hash`] only produces values below
/// 2^32, for which both orders agree.
pub trait HashFunction: Send + Sync + fmt::Debug {
    /// The ring position of `key`.
    fn hash(&self, key: &str) -> u64;
}

/// The default ring hash (Java `ConsistentHashRouter.MD5Hash`): the first 4 bytes of the
/// MD5 digest of the key's UTF-8 bytes, read as a big-endian unsigned 32-bit number.
///
/// ```
/// use rmq_rebalance::strategy::{HashFunction, Md5Hash};
/// assert_eq!(Md5Hash.hash("abc"), 0x9001_5098);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Md5Hash;

impl HashFunction for Md5Hash {
    fn hash(&self, key: &str) -> u64 {
        let digest = Md5::digest(key.as_bytes());
        u64::from(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]))
    }
}

/// Consistent hashing (Java `AllocateMessageQueueConsistentHash`, name `CONSISTENT_HASH`).
///
/// Builds a ring (Java `ConsistentHashRouter`) over `cid_all` in order: each client id
/// `cid` gets `virtual_node_cnt` virtual nodes keyed `"{cid}-{i}"`, placed at
/// `hash(key)`; a later virtual node with an equal hash replaces the earlier one. Each
/// queue is hashed by its Java `toString()` (`MessageQueue [topic=T, brokerName=B,
/// queueId=N]`, the [`Display`](std::fmt::Display) form) and belongs to the virtual node at
/// the first ring position `>=` its hash, wrapping round to the smallest. A consumer gets
/// its queues in `mq_all` order.
///
/// The split is often very uneven (a consumer may get nothing). With
/// `virtual_node_cnt == 0` the ring is empty and nobody gets any queue (no error), as in
/// Java.
#[derive(Debug, Clone)]
pub struct AllocateMessageQueueConsistentHash {
    virtual_node_cnt: usize,
    hash_function: Arc<dyn HashFunction>,
}

impl AllocateMessageQueueConsistentHash {
    /// Java's default number of virtual nodes per consumer.
    pub const DEFAULT_VIRTUAL_NODE_CNT: usize = 10;

    /// A ring with `virtual_node_cnt` virtual nodes per consumer and the [`Md5Hash`] hash
    /// (Java `new AllocateMessageQueueConsistentHash(virtualNodeCnt)`).
    pub fn new(virtual_node_cnt: usize) -> Self {
        Self::with_hash_function(virtual_node_cnt, Arc::new(Md5Hash))
    }

    /// A ring with a custom hash function (Java
    /// `new AllocateMessageQueueConsistentHash(virtualNodeCnt, customHashFunction)`).
    pub fn with_hash_function(
        virtual_node_cnt: usize,
        hash_function: Arc<dyn HashFunction>,
    ) -> Self {
        AllocateMessageQueueConsistentHash {
            virtual_node_cnt,
            hash_function,
        }
    }

    /// Virtual nodes per consumer.
    pub fn virtual_node_cnt(&self) -> usize {
        self.virtual_node_cnt
    }

    /// The ring's hash function.
    pub fn hash_function(&self) -> &Arc<dyn HashFunction> {
        &self.hash_function
    }

    /// The ring: position → client id.
    fn ring<'a>(&self, cid_all: &'a [String]) -> BTreeMap<u64, &'a str> {
        let mut ring: BTreeMap<u64, &'a str> = BTreeMap::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(cid_all.len());
        for cid in cid_all {
            // Java `addNode` numbers a node's virtual nodes after the ones it already has
            // on the ring, which matters only if a client id is listed twice.
            let existing = if seen.insert(cid.as_str()) {
                0
            } else {
                ring.values()
                    .filter(|owner| **owner == cid.as_str())
                    .count()
            };
            for i in 0..self.virtual_node_cnt {
                let key = format!("{cid}-{}", existing + i);
                ring.insert(self.hash_function.hash(&key), cid.as_str());
            }
        }
        ring
    }
}

impl Default for AllocateMessageQueueConsistentHash {
    /// Ten virtual nodes and [`Md5Hash`] (Java's no-argument constructor).
    fn default() -> Self {
        Self::new(Self::DEFAULT_VIRTUAL_NODE_CNT)
    }
}

impl AllocateMessageQueueStrategy for AllocateMessageQueueConsistentHash {
    fn name(&self) -> &str {
        "CONSISTENT_HASH"
    }

    fn allocate(
        &self,
        _consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        if checked_index(current_cid, mq_all, cid_all)?.is_none() {
            return Ok(Vec::new());
        }
        let ring = self.ring(cid_all);
        if ring.is_empty() {
            return Ok(Vec::new());
        }
        let mut result = Vec::new();
        for mq in mq_all {
            let h = self.hash_function.hash(&mq.to_string());
            let owner = ring
                .range(h..)
                .next()
                .or_else(|| ring.first_key_value())
                .map(|(_, cid)| *cid);
            if owner == Some(current_cid) {
                result.push(mq.clone());
            }
        }
        Ok(result)
    }
}

/// A fixed list (Java `AllocateMessageQueueByConfig`, name `CONFIG`).
///
/// Every consumer gets `message_queue_list`, whatever the arguments: like Java it runs no
/// checks at all, so even empty inputs, a consumer not in `cid_all` or a configured queue
/// that is not in `mq_all` make no difference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocateMessageQueueByConfig {
    /// The queues every consumer gets (Java `setMessageQueueList`).
    pub message_queue_list: Vec<MessageQueue>,
}

impl AllocateMessageQueueByConfig {
    /// A strategy giving everyone `message_queue_list`.
    pub fn new(message_queue_list: Vec<MessageQueue>) -> Self {
        AllocateMessageQueueByConfig { message_queue_list }
    }
}

impl AllocateMessageQueueStrategy for AllocateMessageQueueByConfig {
    fn name(&self) -> &str {
        "CONFIG"
    }

    fn allocate(
        &self,
        _consumer_group: &str,
        _current_cid: &str,
        _mq_all: &[MessageQueue],
        _cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        Ok(self.message_queue_list.clone())
    }
}

/// Machine-room filter (Java `AllocateMessageQueueByMachineRoom`, name `MACHINE_ROOM`).
///
/// Broker names look like `room@broker`. Only queues whose broker name splits (Java
/// `split("@")`, trailing empty parts dropped) into exactly two parts whose first part is
/// in `consumeridcs` are selected, in `mq_all` order; all other queues are **not
/// consumed by anyone**. Of the `n` selected queues, the consumer at index `i` of
/// `m = cid_all.len()` gets `[i * (n / m), (i + 1) * (n / m))` plus, if `i < n % m`, the
/// one at `i + (n / m) * m`. E.g. 8 queues over 5 consumers gives consumer 0 queues #0
/// and #5 — not contiguous like [`AllocateMessageQueueAveragely`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocateMessageQueueByMachineRoom {
    /// The rooms whose queues are consumed (Java `setConsumeridcs`, a set: order and
    /// duplicates do not matter).
    pub consumeridcs: Vec<String>,
}

impl AllocateMessageQueueByMachineRoom {
    /// A strategy consuming the queues of brokers in the given rooms.
    pub fn new<I, S>(consumeridcs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AllocateMessageQueueByMachineRoom {
            consumeridcs: consumeridcs.into_iter().map(Into::into).collect(),
        }
    }
}

impl AllocateMessageQueueStrategy for AllocateMessageQueueByMachineRoom {
    fn name(&self) -> &str {
        "MACHINE_ROOM"
    }

    fn allocate(
        &self,
        _consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        let Some(index) = checked_index(current_cid, mq_all, cid_all)? else {
            return Ok(Vec::new());
        };
        let selected: Vec<&MessageQueue> = mq_all
            .iter()
            .filter(|mq| {
                machine_room_of(&mq.broker_name)
                    .is_some_and(|room| self.consumeridcs.iter().any(|idc| idc == room))
            })
            .collect();
        let m = cid_all.len();
        let per = selected.len() / m;
        let rem = selected.len() % m;
        let start = per * index;
        let extra = (index < rem).then_some(index + per * m);
        Ok((start..start + per)
            .chain(extra)
            .map(|i| selected[i].clone())
            .collect())
    }
}

/// Tells which machine room a broker or a consumer is in (Java
/// `AllocateMachineRoomNearby.MachineRoomResolver`). An empty room is an error.
pub trait MachineRoomResolver: Send + Sync + fmt::Debug {
    /// The room of the broker holding `mq` (Java `brokerDeployIn`).
    fn broker_deploy_in(&self, mq: &MessageQueue) -> String;

    /// The room of the consumer with client id `client_id` (Java `consumerDeployIn`).
    fn consumer_deploy_in(&self, client_id: &str) -> String;
}

/// Rooms as name prefixes: the text before the first `@` of the broker name or client id
/// (the whole string if it has no `@`). So broker `hz@broker-a` and client
/// `hz@192.168.0.11@12345#1700000000000` are both in room `hz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixMachineRoomResolver;

impl PrefixMachineRoomResolver {
    fn prefix(s: &str) -> String {
        s.split_once('@').map_or(s, |(room, _)| room).to_owned()
    }
}

impl MachineRoomResolver for PrefixMachineRoomResolver {
    fn broker_deploy_in(&self, mq: &MessageQueue) -> String {
        Self::prefix(&mq.broker_name)
    }

    fn consumer_deploy_in(&self, client_id: &str) -> String {
        Self::prefix(client_id)
    }
}

/// Nearby machine room first (Java `AllocateMachineRoomNearby`, name
/// `MACHINE_ROOM_NEARBY-<inner name>`), delegating the split to an inner strategy.
///
/// Queues and consumers are grouped by room with the [`MachineRoomResolver`]. The current
/// consumer first gets `inner.allocate` over its own room's queues among its own room's
/// consumers (if its room has queues); then, for each room that has queues but **no**
/// consumer, in sorted room-name order (Java `TreeMap`), `inner.allocate` over that
/// room's queues among **all** of `cid_all`. The results are concatenated in that order. A
/// consumer in a room without brokers gets nothing unless some broker room has no
/// consumer.
///
/// # Errors
/// Besides the usual argument checks, [`AllocateError::Config`] when the resolver gives
/// an empty room (Java: `Machine room is null for mq …` / `… for consumer id …`), and
/// whatever the inner strategy returns.
#[derive(Debug, Clone)]
pub struct AllocateMachineRoomNearby {
    inner: Arc<dyn AllocateMessageQueueStrategy>,
    resolver: Arc<dyn MachineRoomResolver>,
    name: String,
}

impl AllocateMachineRoomNearby {
    /// Wraps `inner`, finding rooms with `resolver`.
    pub fn new(
        inner: Arc<dyn AllocateMessageQueueStrategy>,
        resolver: Arc<dyn MachineRoomResolver>,
    ) -> Self {
        let name = format!("MACHINE_ROOM_NEARBY-{}", inner.name());
        AllocateMachineRoomNearby {
            inner,
            resolver,
            name,
        }
    }

    /// The strategy that splits each room's queues.
    pub fn inner(&self) -> &Arc<dyn AllocateMessageQueueStrategy> {
        &self.inner
    }

    /// The room resolver.
    pub fn resolver(&self) -> &Arc<dyn MachineRoomResolver> {
        &self.resolver
    }

    fn config_error(&self, reason: String) -> AllocateError {
        AllocateError::Config {
            strategy: self.name.clone(),
            reason,
        }
    }
}

impl AllocateMessageQueueStrategy for AllocateMachineRoomNearby {
    fn name(&self) -> &str {
        &self.name
    }

    fn allocate(
        &self,
        consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        if !check_allocate_args(current_cid, mq_all, cid_all)? {
            return Ok(Vec::new());
        }

        let mut mqs_by_room: HashMap<String, Vec<MessageQueue>> = HashMap::new();
        for mq in mq_all {
            let room = self.resolver.broker_deploy_in(mq);
            if room.is_empty() {
                return Err(self.config_error(format!("Machine room is null for mq {mq}")));
            }
            mqs_by_room.entry(room).or_default().push(mq.clone());
        }

        let mut cids_by_room: HashMap<String, Vec<String>> = HashMap::new();
        for cid in cid_all {
            let room = self.resolver.consumer_deploy_in(cid);
            if room.is_empty() {
                return Err(
                    self.config_error(format!("Machine room is null for consumer id {cid}"))
                );
            }
            cids_by_room.entry(room).or_default().push(cid.clone());
        }

        let mut result = Vec::new();

        // 1. The queues of the current consumer's own room, among that room's consumers.
        let current_room = self.resolver.consumer_deploy_in(current_cid);
        let local_mqs = mqs_by_room.remove(&current_room).unwrap_or_default();
        if !local_mqs.is_empty() {
            // The current consumer is in `cid_all`, so its room always has consumers.
            let local_cids = cids_by_room
                .get(&current_room)
                .map_or(&[][..], Vec::as_slice);
            result.extend(self.inner.allocate(
                consumer_group,
                current_cid,
                &local_mqs,
                local_cids,
            )?);
        }

        // 2. Rooms with queues but no consumer: shared by everyone, in room-name order.
        let mut orphan_rooms: Vec<(String, Vec<MessageQueue>)> = mqs_by_room
            .into_iter()
            .filter(|(room, _)| !cids_by_room.contains_key(room))
            .collect();
        orphan_rooms.sort_by(|(a, _), (b, _)| java_string_cmp(a, b));
        for (_, mqs) in &orphan_rooms {
            result.extend(
                self.inner
                    .allocate(consumer_group, current_cid, mqs, cid_all)?,
            );
        }

        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_room_split_follows_java_split() {
        assert_eq!(machine_room_of("hz@broker-a"), Some("hz"));
        assert_eq!(machine_room_of("hz@broker-a@"), Some("hz"));
        assert_eq!(machine_room_of("hz@broker-a@@"), Some("hz"));
        assert_eq!(machine_room_of("@broker-a"), Some(""));
        assert_eq!(machine_room_of("hz@"), None);
        assert_eq!(machine_room_of("@"), None);
        assert_eq!(machine_room_of("hz@a@b"), None);
        assert_eq!(machine_room_of("broker-d"), None);
        assert_eq!(machine_room_of(""), None);
    }

    #[test]
    fn prefix_resolver_takes_text_before_first_at() {
        let r = PrefixMachineRoomResolver;
        assert_eq!(r.consumer_deploy_in("hz@192.168.0.1@1#1"), "hz");
        assert_eq!(r.consumer_deploy_in("plain"), "plain");
        assert_eq!(r.broker_deploy_in(&MessageQueue::new("T", "sh@b", 0)), "sh");
    }

    #[test]
    fn java_order_is_utf16() {
        assert_eq!(java_string_cmp("a", "b"), Ordering::Less);
        // U+FFFD is one unit 0xFFFD; U+1F600 starts with the surrogate 0xD83D.
        assert_eq!(java_string_cmp("\u{FFFD}", "\u{1F600}"), Ordering::Greater);
        assert_eq!("\u{FFFD}".cmp("\u{1F600}"), Ordering::Less);
    }
}
