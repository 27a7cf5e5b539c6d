//! Pop consumption's wire pieces against `vectors/pop.json` (real Java 5.3.3 output, and
//! what the rocketmq-rust 1.0 broker's decoder accepts).

use rmq_client_core::pop::{
    ReceiptHandle, batch_ack_body, build_receipt_handle, is_pop_retry_topic_v2, offset_info_key,
    parse_msg_offset_info, parse_normal_topic, parse_start_offset_info, retry_topic_v1,
    retry_topic_v2,
};
use rmq_client_core::testing::vectors_dir;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_slice(&std::fs::read(vectors_dir().join("pop.json")).unwrap()).unwrap()
}

#[test]
fn receipt_handles_read_as_java_reads_them() {
    let v = vectors();
    for case in v["popCk"].as_array().unwrap() {
        let raw = case["extraInfo"].as_str().unwrap();
        let p = &case["parsed"];
        let h = ReceiptHandle::parse(raw).unwrap();
        let id = case["id"].as_str().unwrap();
        assert_eq!(h.as_str(), raw, "{id}");
        assert_eq!(
            h.ck_queue_offset,
            p["ckQueueOffset"].as_i64().unwrap(),
            "{id}"
        );
        assert_eq!(h.pop_time, p["popTime"].as_i64().unwrap(), "{id}");
        assert_eq!(
            h.invisible_time,
            p["invisibleTime"].as_i64().unwrap(),
            "{id}"
        );
        assert_eq!(
            i64::from(h.revive_qid),
            p["reviveQid"].as_i64().unwrap(),
            "{id}"
        );
        assert_eq!(h.retry(), p["retry"].as_str().unwrap(), "{id}");
        assert_eq!(h.broker_name(), p["brokerName"].as_str().unwrap(), "{id}");
        assert_eq!(
            i64::from(h.queue_id),
            p["queueId"].as_i64().unwrap(),
            "{id}"
        );
        assert_eq!(h.queue_offset, p["queueOffset"].as_i64().unwrap(), "{id}");
        assert_eq!(h.is_order(), p["isOrder"].as_bool().unwrap(), "{id}");
        assert_eq!(
            h.real_topic("TopicTest", "cg"),
            p["realTopic(msgTopic=TopicTest,group=cg)"]
                .as_str()
                .unwrap(),
            "{id}"
        );
        // A handle built from the same fields is the same string.
        let topic = h.real_topic("TopicTest", "cg");
        assert_eq!(
            build_receipt_handle(
                h.ck_queue_offset,
                h.pop_time,
                h.invisible_time,
                h.revive_qid,
                &topic,
                h.broker_name(),
                h.queue_id,
                h.queue_offset
            ),
            raw,
            "{id}"
        );
    }
    // rocketmq-rust's ninth field is kept and ignored; a short or garbled one is refused,
    // naming the field.
    let nine = "7 1700000000000 60000 3 1 broker-a 0 7 2";
    assert_eq!(ReceiptHandle::parse(nine).unwrap().as_str(), nine);
    let e = ReceiptHandle::parse("100 1700000000000 60000 3 0 broker-a 1").unwrap_err();
    assert_eq!((e.index, e.field), (7, "queueOffset"));
    let e = ReceiptHandle::parse("100 x 60000 3 0 broker-a 1 105").unwrap_err();
    assert_eq!((e.index, e.field), (1, "popTime"));
}

#[test]
fn pop_retry_topics_and_offset_info_strings_match_java() {
    let v = vectors();
    let r = &v["retryTopics"];
    assert_eq!(retry_topic_v1("cg", "TopicTest"), r["v1"].as_str().unwrap());
    assert_eq!(retry_topic_v2("cg", "TopicTest"), r["v2"].as_str().unwrap());
    assert!(!is_pop_retry_topic_v2(r["v1"].as_str().unwrap()));
    assert!(is_pop_retry_topic_v2(r["v2"].as_str().unwrap()));
    for key in ["v1", "v2"] {
        assert_eq!(
            parse_normal_topic(r[key].as_str().unwrap(), "cg"),
            r[format!("parseNormalTopic({key},cg)")].as_str().unwrap()
        );
    }
    let h = &v["responseHeaderStrings"];
    let start = parse_start_offset_info(h["startOffsetInfo"].as_str().unwrap());
    assert_eq!(
        format!("{start:?}").replace('"', "").replace(": ", "="),
        h["startOffsetInfoParsed"].as_str().unwrap()
    );
    let msgs = parse_msg_offset_info(h["msgOffsetInfo"].as_str().unwrap());
    assert_eq!(
        format!("{msgs:?}").replace('"', "").replace(": ", "="),
        h["msgOffsetInfoParsed"].as_str().unwrap()
    );
    let keys = &h["lookupKeys"];
    assert_eq!(
        offset_info_key("TopicTest", 1),
        keys["getStartOffsetInfoMapKey(TopicTest,1)"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        offset_info_key(r["v1"].as_str().unwrap(), 0),
        keys["getStartOffsetInfoMapKey(retryV1,0)"]
            .as_str()
            .unwrap()
    );
}

#[test]
fn the_batch_ack_body_is_javas_merge_in_the_form_both_brokers_read() {
    let v = vectors();
    let b = &v["batchAck"];
    let handles: Vec<ReceiptHandle> = b["extraInfoList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| ReceiptHandle::parse(h.as_str().unwrap()).unwrap())
        .collect();
    let ours: Value = serde_json::to_value(batch_ack_body("cg", "TopicTest", &handles)).unwrap();
    let java: Value = serde_json::from_str(b["bodyJson"].as_str().unwrap()).unwrap();
    assert_eq!(ours["brokerName"], java["brokerName"]);
    let (ours, java) = (
        ours["acks"].as_array().unwrap(),
        java["acks"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), java.len());
    for ((o, j), bits) in ours.iter().zip(java).zip(b["bitSets"].as_array().unwrap()) {
        // Every field as Java wrote it but `b`: the same bytes, as a number array padded
        // to 8 bytes instead of base64.
        for k in ["c", "it", "pt", "q", "r", "rq", "so", "t"] {
            assert_eq!(o[k], j[k], "{k}");
        }
        let bytes: Vec<u8> = o["b"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(bytes.len() % 8, 0);
        let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
        let want = bits["toByteArrayHex"].as_str().unwrap();
        assert!(
            hex.starts_with(want) && hex[want.len()..].bytes().all(|c| c == b'0'),
            "{hex}"
        );
    }
    // Exactly the body the rocketmq-rust 1.0 decoder was shown to accept.
    let first = batch_ack_body("cg", "TopicTest", &handles[..4]);
    let accepted = v["rocketmqRust1_0BatchAckDecoder"]["inputs"]["array_len8"]
        .as_str()
        .unwrap();
    assert_eq!(serde_json::to_string(&first).unwrap(), accepted);
}
