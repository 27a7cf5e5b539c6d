//! Checks every allocation strategy against the golden vectors that the real Java 4.9.8
//! client computed (`shared/protocol/vectors/allocation.json`), plus a custom strategy and
//! a property test that every queue has exactly one owner.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use rmq_client_core::MessageQueue;
use rmq_rebalance::strategy::{HashFunction, Md5Hash, PrefixMachineRoomResolver};
use rmq_rebalance::{
    AllocateError, AllocateMachineRoomNearby, AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle, AllocateMessageQueueByConfig,
    AllocateMessageQueueByMachineRoom, AllocateMessageQueueConsistentHash,
    AllocateMessageQueueStrategy,
};
use serde_json::Value;

/// Number of cases `allocation.json` holds (JAVA-VECTORS.md).
const EXPECTED_CASES: usize = 58;

fn load_vectors() -> Value {
    let dir = std::env::var_os("RMQ_VECTORS_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/protocol/vectors"
            ))
        },
        PathBuf::from,
    );
    let path = dir.join("allocation.json");
    assert!(
        path.is_file(),
        "allocation vectors not found at {}; set RMQ_VECTORS_DIR to the directory holding allocation.json",
        path.display()
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

fn array_of<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    v.as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
}

fn mq_of(v: &Value) -> MessageQueue {
    let queue_id = v["queueId"]
        .as_i64()
        .and_then(|q| i32::try_from(q).ok())
        .unwrap_or_else(|| panic!("bad queueId in {v}"));
    MessageQueue::new(
        str_of(&v["topic"], "topic"),
        str_of(&v["brokerName"], "brokerName"),
        queue_id,
    )
}

fn mqs_of(v: &Value, what: &str) -> Vec<MessageQueue> {
    array_of(v, what).iter().map(mq_of).collect()
}

fn strings_of(v: &Value, what: &str) -> Vec<String> {
    array_of(v, what)
        .iter()
        .map(|s| str_of(s, what).to_owned())
        .collect()
}

fn dyn_arc<S: AllocateMessageQueueStrategy>(s: S) -> Arc<dyn AllocateMessageQueueStrategy> {
    Arc::new(s)
}

fn virtual_nodes(v: &Value) -> usize {
    v.as_u64().map_or(
        AllocateMessageQueueConsistentHash::DEFAULT_VIRTUAL_NODE_CNT,
        |n| usize::try_from(n).expect("virtual node count fits usize"),
    )
}

/// Builds the strategy a case or edge case names, from its `strategy` and `params`.
fn build_strategy(case: &Value) -> Arc<dyn AllocateMessageQueueStrategy> {
    let name = str_of(&case["strategy"], "strategy");
    let params = &case["params"];
    let strategy = match name {
        "AVG" => dyn_arc(AllocateMessageQueueAveragely),
        "AVG_BY_CIRCLE" => dyn_arc(AllocateMessageQueueAveragelyByCircle),
        "CONSISTENT_HASH" => dyn_arc(AllocateMessageQueueConsistentHash::new(virtual_nodes(
            &params["virtualNodeCnt"],
        ))),
        "MACHINE_ROOM" => dyn_arc(AllocateMessageQueueByMachineRoom::new(strings_of(
            &params["consumeridcs"],
            "consumeridcs",
        ))),
        "CONFIG" => dyn_arc(AllocateMessageQueueByConfig::new(mqs_of(
            &params["messageQueueList"],
            "messageQueueList",
        ))),
        nearby if nearby.starts_with("MACHINE_ROOM_NEARBY-") => {
            let inner = match str_of(&params["inner"], "inner") {
                "AVG" => dyn_arc(AllocateMessageQueueAveragely),
                "AVG_BY_CIRCLE" => dyn_arc(AllocateMessageQueueAveragelyByCircle),
                "CONSISTENT_HASH" => dyn_arc(AllocateMessageQueueConsistentHash::new(
                    virtual_nodes(&params["innerVirtualNodeCnt"]),
                )),
                other => panic!("unknown inner strategy {other}"),
            };
            dyn_arc(AllocateMachineRoomNearby::new(
                inner,
                Arc::new(PrefixMachineRoomResolver),
            ))
        }
        other => panic!("unknown strategy {other}"),
    };
    assert_eq!(strategy.name(), name, "getName() of the built strategy");
    strategy
}

/// The error a Java `IllegalArgumentException` message stands for.
fn error_for(message: &str) -> AllocateError {
    match message {
        "currentCID is empty" => AllocateError::EmptyCurrentCid,
        "mqAll is null or mqAll empty" => AllocateError::EmptyMqAll,
        "cidAll is null or cidAll empty" => AllocateError::EmptyCidAll,
        other => panic!("unexpected Java exception message {other:?}"),
    }
}

#[test]
fn every_case_matches_java() {
    let vectors = load_vectors();
    let cases = array_of(&vectors["cases"], "cases");
    assert_eq!(
        cases.len(),
        EXPECTED_CASES,
        "allocation.json should hold {EXPECTED_CASES} cases"
    );

    let mut checked = 0usize;
    let mut calls = 0usize;
    let mut names = BTreeSet::new();
    for case in cases {
        let id = str_of(&case["id"], "id");
        let description = case["description"].as_str().unwrap_or("");
        let group = case["consumerGroup"].as_str().unwrap_or("cg");
        let strategy = build_strategy(case);
        names.insert(strategy.name().to_owned());
        let mq_all = mqs_of(&case["mqAll"], "mqAll");
        let cid_all = strings_of(&case["cidAll"], "cidAll");

        // The inputs are stored in the order RebalanceImpl sorts them; our Ord must agree.
        let mut sorted_mqs = mq_all.clone();
        sorted_mqs.sort();
        assert_eq!(
            sorted_mqs, mq_all,
            "case {id}: mqAll is not in MessageQueue order"
        );
        let mut sorted_cids = cid_all.clone();
        sorted_cids.sort();
        assert_eq!(
            sorted_cids, cid_all,
            "case {id}: cidAll is not in String order"
        );

        let allocation = case["allocation"]
            .as_object()
            .unwrap_or_else(|| panic!("case {id}: allocation is not an object"));
        let expected_cids: HashSet<&str> = allocation.keys().map(String::as_str).collect();
        let given_cids: HashSet<&str> = cid_all.iter().map(String::as_str).collect();
        assert_eq!(
            expected_cids, given_cids,
            "case {id}: allocation must list every cid"
        );

        for cid in &cid_all {
            let expected = mqs_of(&allocation[cid.as_str()], "allocation");
            let got = strategy
                .allocate(group, cid, &mq_all, &cid_all)
                .unwrap_or_else(|e| panic!("case {id} ({description}), cid {cid}: {e}"));
            assert_eq!(got, expected, "case {id} ({description}), cid {cid}");
            calls += 1;
        }
        checked += 1;
    }
    assert_eq!(checked, EXPECTED_CASES);
    assert!(calls >= checked, "every case has at least one cid");
    let expected_names: BTreeSet<String> = [
        "AVG",
        "AVG_BY_CIRCLE",
        "CONFIG",
        "CONSISTENT_HASH",
        "MACHINE_ROOM",
        "MACHINE_ROOM_NEARBY-AVG",
        "MACHINE_ROOM_NEARBY-CONSISTENT_HASH",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected_names, "every strategy is covered");
}

#[test]
fn edge_cases_match_java() {
    let vectors = load_vectors();
    let edge_cases = array_of(&vectors["edgeCases"], "edgeCases");
    assert!(!edge_cases.is_empty(), "allocation.json has no edge cases");

    let mut checked = 0usize;
    for (n, case) in edge_cases.iter().enumerate() {
        let description = case["description"].as_str().unwrap_or("");
        let strategy = build_strategy(case);
        let what = format!("edge case #{n} {} ({description})", strategy.name());
        let current_cid = str_of(&case["currentCID"], "currentCID");
        let mq_all = mqs_of(&case["mqAll"], "mqAll");
        let cid_all = strings_of(&case["cidAll"], "cidAll");
        let got = strategy.allocate("cg", current_cid, &mq_all, &cid_all);
        if let Some(message) = case["exceptionMessage"].as_str() {
            let err = got.expect_err(&what);
            assert_eq!(err.to_string(), message, "{what}: message");
            assert_eq!(err, error_for(message), "{what}: variant");
        } else {
            let expected = mqs_of(&case["result"], "result");
            assert_eq!(
                got.unwrap_or_else(|e| panic!("{what}: {e}")),
                expected,
                "{what}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, edge_cases.len());
}

#[test]
fn md5_hash_matches_java() {
    let vectors = load_vectors();
    let samples = array_of(&vectors["md5HashSamples"], "md5HashSamples");
    assert!(!samples.is_empty(), "allocation.json has no md5 samples");

    let mut checked = 0usize;
    for sample in samples {
        let key = str_of(&sample["key"], "key");
        let expected = sample["hash"]
            .as_u64()
            .unwrap_or_else(|| panic!("bad hash in {sample}"));
        assert_eq!(Md5Hash.hash(key), expected, "MD5Hash({key:?})");
        checked += 1;
    }
    assert_eq!(checked, samples.len());
}

/// A toy user strategy: the last consumer takes every queue.
#[derive(Debug)]
struct LastTakesAll;

impl AllocateMessageQueueStrategy for LastTakesAll {
    fn name(&self) -> &str {
        "LAST_TAKES_ALL"
    }

    fn allocate(
        &self,
        _consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        if !rmq_rebalance::check_allocate_args(current_cid, mq_all, cid_all)? {
            return Ok(Vec::new());
        }
        if cid_all.last().map(String::as_str) == Some(current_cid) {
            Ok(mq_all.to_vec())
        } else {
            Ok(Vec::new())
        }
    }
}

#[test]
fn custom_strategy_works_through_the_trait_object() {
    let mqs: Vec<MessageQueue> = (0..4).map(|i| MessageQueue::new("T", "hz@b", i)).collect();
    let cids = ["hz@a".to_owned(), "hz@b".to_owned()];

    let strategy: Box<dyn AllocateMessageQueueStrategy> = Box::new(LastTakesAll);
    assert_eq!(strategy.name(), "LAST_TAKES_ALL");
    assert!(
        strategy
            .allocate("cg", "hz@a", &mqs, &cids)
            .unwrap()
            .is_empty()
    );
    assert_eq!(strategy.allocate("cg", "hz@b", &mqs, &cids).unwrap(), mqs);
    assert!(
        strategy
            .allocate("cg", "hz@zz", &mqs, &cids)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        strategy.allocate("cg", "", &mqs, &cids),
        Err(AllocateError::EmptyCurrentCid)
    );

    // A user strategy can also be the inner strategy of MACHINE_ROOM_NEARBY.
    let nearby =
        AllocateMachineRoomNearby::new(Arc::new(LastTakesAll), Arc::new(PrefixMachineRoomResolver));
    assert_eq!(nearby.name(), "MACHINE_ROOM_NEARBY-LAST_TAKES_ALL");
    assert_eq!(nearby.allocate("cg", "hz@b", &mqs, &cids).unwrap(), mqs);
    assert!(
        nearby
            .allocate("cg", "hz@a", &mqs, &cids)
            .unwrap()
            .is_empty()
    );
}

/// Puts every key at the same ring position.
#[derive(Debug)]
struct ConstantHash;

impl HashFunction for ConstantHash {
    fn hash(&self, _key: &str) -> u64 {
        7
    }
}

#[test]
fn custom_hash_function_and_overwrite_on_collision() {
    let mqs: Vec<MessageQueue> = (0..5).map(|i| MessageQueue::new("T", "b", i)).collect();
    let cids = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let strategy =
        AllocateMessageQueueConsistentHash::with_hash_function(3, Arc::new(ConstantHash));
    assert_eq!(strategy.virtual_node_cnt(), 3);
    // All virtual nodes collide; the last one written (of "c") owns the whole ring.
    assert!(
        strategy
            .allocate("cg", "a", &mqs, &cids)
            .unwrap()
            .is_empty()
    );
    assert!(
        strategy
            .allocate("cg", "b", &mqs, &cids)
            .unwrap()
            .is_empty()
    );
    assert_eq!(strategy.allocate("cg", "c", &mqs, &cids).unwrap(), mqs);

    let default = AllocateMessageQueueConsistentHash::default();
    assert_eq!(default.virtual_node_cnt(), 10);
    assert_eq!(default.name(), "CONSISTENT_HASH");
}

#[test]
fn machine_room_uses_java_split_and_config_skips_checks() {
    let mqs = [
        MessageQueue::new("T", "hz@a", 0),
        MessageQueue::new("T", "hz@a@", 0),
        MessageQueue::new("T", "hz@", 0),
        MessageQueue::new("T", "hz@a@b", 0),
        MessageQueue::new("T", "hz", 0),
        MessageQueue::new("T", "sh@a", 0),
    ];
    let cids = ["c".to_owned()];
    let strategy = AllocateMessageQueueByMachineRoom::new(["hz"]);
    assert_eq!(
        strategy.allocate("cg", "c", &mqs, &cids).unwrap(),
        [
            MessageQueue::new("T", "hz@a", 0),
            MessageQueue::new("T", "hz@a@", 0)
        ]
    );
    assert_eq!(
        strategy.allocate("cg", "c", &[], &cids),
        Err(AllocateError::EmptyMqAll)
    );

    let config = AllocateMessageQueueByConfig::new(vec![MessageQueue::new("X", "b", 1)]);
    assert_eq!(
        config.allocate("cg", "", &[], &[]).unwrap(),
        config.message_queue_list
    );
}

const ROOMS: [&str; 4] = ["hz", "sh", "bj", "gz"];
const BROKERS: [&str; 3] = ["hz@broker-a", "sh@broker-b", "bj@broker-c"];

/// 1..40 queues over 1..3 brokers, distinct and sorted.
fn queue_sets() -> impl Strategy<Value = Vec<MessageQueue>> {
    (1..=BROKERS.len())
        .prop_flat_map(|brokers| prop::collection::vec((0..brokers, 0..64i32), 1..40))
        .prop_map(|picks| {
            let set: BTreeSet<MessageQueue> = picks
                .into_iter()
                .map(|(b, q)| MessageQueue::new("TopicTest", BROKERS[b], q))
                .collect();
            set.into_iter().collect()
        })
}

/// 1..10 distinct client ids, room-prefixed (room `gz` has no broker), sorted.
fn cid_sets() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set((0..ROOMS.len(), 0..50u32), 1..10).prop_map(|picks| {
        let set: BTreeSet<String> = picks
            .into_iter()
            .map(|(room, host)| format!("{}@10.0.0.{host}@4242#1700000000000", ROOMS[room]))
            .collect();
        set.into_iter().collect()
    })
}

fn covering_strategies() -> Vec<Arc<dyn AllocateMessageQueueStrategy>> {
    vec![
        dyn_arc(AllocateMessageQueueAveragely),
        dyn_arc(AllocateMessageQueueAveragelyByCircle),
        dyn_arc(AllocateMessageQueueConsistentHash::new(10)),
        dyn_arc(AllocateMessageQueueByMachineRoom::new(ROOMS)),
        dyn_arc(AllocateMachineRoomNearby::new(
            Arc::new(AllocateMessageQueueAveragely),
            Arc::new(PrefixMachineRoomResolver),
        )),
    ]
}

proptest! {
    #[test]
    fn every_queue_has_exactly_one_owner(mq_all in queue_sets(), cid_all in cid_sets()) {
        for strategy in covering_strategies() {
            let mut owned = Vec::with_capacity(mq_all.len());
            for cid in &cid_all {
                let mine = strategy.allocate("cg", cid, &mq_all, &cid_all);
                prop_assert!(mine.is_ok(), "{} failed for {cid}: {mine:?}", strategy.name());
                owned.extend(mine.unwrap_or_default());
            }
            owned.sort();
            prop_assert_eq!(&owned, &mq_all, "strategy {}", strategy.name());
        }
    }
}
