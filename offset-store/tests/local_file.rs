//! The local offsets file against the Java-written vectors (`vectors/offsets*.json`).

use std::collections::HashMap;
use std::path::PathBuf;

use rmq_client_core::testing::vectors_dir;

use rmq_client_core::MessageQueue;
use rmq_offset_store::{
    LocalFileOffsetStore, OffsetStore, ReadOffsetType, format_offsets_file, parse_offsets_file,
};

/// One `{topic, brokerName, queueId, offset}` entry of the vector files.
fn entry(e: &serde_json::Value) -> (MessageQueue, i64) {
    (
        MessageQueue::new(
            e["topic"].as_str().unwrap(),
            e["brokerName"].as_str().unwrap(),
            e["queueId"].as_i64().unwrap() as i32,
        ),
        e["offset"].as_i64().unwrap(),
    )
}

fn expected() -> Vec<(MessageQueue, i64)> {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("offsets.expected.json")).unwrap(),
    )
    .unwrap();
    v.as_array().unwrap().iter().map(entry).collect()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rmq-offsets-{name}-{}-{}",
        std::process::id(),
        rmq_client_core::now_millis()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn reads_the_java_file_exactly_and_writes_javas_layout() {
    let text = std::fs::read_to_string(vectors_dir().join("offsets.json")).unwrap();
    let table = parse_offsets_file(&text).unwrap();
    let expected = expected();
    assert_eq!(table, expected.iter().cloned().collect::<HashMap<_, _>>());
    assert_eq!(
        table[&MessageQueue::new("%RETRY%cg", "broker-b", 0)],
        9007199254740993
    );
    // Given Java's entry order, the writer reproduces Java's bytes exactly.
    assert_eq!(format_offsets_file(&expected), text);
}

#[test]
fn reader_accepts_and_rejects_what_java_does() {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("offsets.reader_probes.json")).unwrap(),
    )
    .unwrap();
    let probes = v["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 8);
    for p in probes {
        let input = p["input"].as_str().unwrap();
        let parsed = parse_offsets_file(input);
        if !p["accepted"].as_bool().unwrap() {
            assert!(parsed.is_err(), "{}", p["description"]);
            continue;
        }
        let parsed = parsed.unwrap_or_else(|e| panic!("{}: {e}", p["description"]));
        let mut got: Vec<(MessageQueue, i64)> = parsed.into_iter().collect();
        got.sort();
        let want: Vec<(MessageQueue, i64)> = p["parsedSorted"]
            .as_array()
            .unwrap()
            .iter()
            .map(entry)
            .collect();
        assert_eq!(got, want, "{}", p["description"]);
    }
}

#[tokio::test]
async fn offsets_survive_a_restart_and_a_lost_main_file() {
    let dir = tempdir("restart");
    let store = LocalFileOffsetStore::new(Some(&dir), "127.0.0.1@9999#1", "cg");
    assert_eq!(
        store.path(),
        dir.join("127.0.0.1@9999#1").join("cg").join("offsets.json")
    );
    let mqs: Vec<MessageQueue> = expected().into_iter().map(|(mq, _)| mq).collect();
    for (mq, o) in expected() {
        store.update_offset(&mq, o, false);
    }
    store.persist_all(&mqs).await.unwrap();
    // A second write keeps the previous file as .bak.
    store.update_offset(&mqs[3], 43, true);
    store.persist_all(&mqs).await.unwrap();
    let bak = PathBuf::from(format!("{}.bak", store.path().display()));
    assert!(bak.exists());
    assert!(!PathBuf::from(format!("{}.tmp", store.path().display())).exists());

    let restarted = LocalFileOffsetStore::new(Some(&dir), "127.0.0.1@9999#1", "cg");
    restarted.load().await.unwrap();
    assert_eq!(
        restarted
            .read_offset(&mqs[3], ReadOffsetType::ReadFromMemory)
            .await
            .unwrap(),
        Some(43)
    );
    assert_eq!(
        restarted
            .read_offset(&mqs[1], ReadOffsetType::ReadFromStore)
            .await
            .unwrap(),
        Some(9007199254740993)
    );
    assert_eq!(
        restarted
            .read_offset(
                &MessageQueue::new("X", "b", 0),
                ReadOffsetType::MemoryFirstThenStore
            )
            .await
            .unwrap(),
        None
    );

    // A crash that lost or truncated offsets.json: load falls back to the .bak copy.
    std::fs::write(store.path(), "{\n\t\"offsetTable\":{{\n").unwrap();
    let after_crash = LocalFileOffsetStore::new(Some(&dir), "127.0.0.1@9999#1", "cg");
    after_crash.load().await.unwrap();
    assert_eq!(
        after_crash
            .read_offset(&mqs[3], ReadOffsetType::ReadFromMemory)
            .await
            .unwrap(),
        Some(42)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
