//! Vectors produced by the real Java code (`../shared/protocol/vectors/`).

use std::net::SocketAddr;

use rmq_client_core::testing::vectors_dir;

use bytes::Bytes;
use rmq_client_core::filter::{ExpressionType, SubscriptionData, java_string_hash};
use rmq_client_core::message::decode_messages;

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(vectors_dir().join(name)).unwrap()).unwrap()
}

/// `messages.bin`: seven records, every one must decode to the table in vectors/README.md.
#[test]
fn messages_bin_decodes_like_java() {
    let body = Bytes::from(std::fs::read(vectors_dir().join("messages.bin")).unwrap());
    assert_eq!(body.len(), 1223);
    let msgs = decode_messages(&body).unwrap();
    assert_eq!(msgs.len(), 7);
    let hello = "hello-rocketmq".repeat(20);
    let expect: [(&str, i64, &[u8]); 7] = [
        ("TopicTest", 5, b"plain-body"),
        ("", 6, b"v2-topic"),
        ("TopicTest", 7, hello.as_bytes()),
        ("TopicTest", 8, hello.as_bytes()),
        ("TopicTest", 9, hello.as_bytes()),
        ("TopicTest", 10, hello.as_bytes()),
        ("%RETRY%cg", 11, b"retry"),
    ];
    let t200 = "T".repeat(200);
    for (i, (m, (topic, offset, body))) in msgs.iter().zip(expect).enumerate() {
        let topic = if i == 1 { t200.as_str() } else { topic };
        assert_eq!(&*m.topic, topic, "record {i}");
        assert_eq!(m.queue_offset, offset, "record {i}");
        assert_eq!(&m.body[..], body, "record {i}");
        assert_eq!(m.queue_id, 1);
        assert_eq!(m.flag, 0);
        assert_eq!(m.commit_log_offset, 123456);
        assert_eq!(m.born_timestamp, 1700000000000);
        assert_eq!(m.store_timestamp, 1700000000123);
        assert_eq!(m.prepared_transaction_offset, 0);
        assert_eq!(m.sys_flag & 1, 0, "compressed bit cleared after inflating");
        if i < 6 {
            assert_eq!(m.born_host, "10.0.0.1:5555".parse::<SocketAddr>().unwrap());
            assert_eq!(
                m.store_host,
                "192.168.1.2:10911".parse::<SocketAddr>().unwrap()
            );
            assert_eq!(m.reconsume_times, 0);
        }
    }
    let m = &msgs[0];
    assert_eq!(m.tags(), Some("TagA"));
    assert_eq!(m.keys().collect::<Vec<_>>(), ["k1", "k2"]);
    assert_eq!(m.property("WAIT"), Some("true"));
    assert_eq!(m.msg_id(), "0A00000100002A9F0000000000000001");
    assert_eq!(m.offset_msg_id(), "C0A8010200002A9F000000000001E240");
    assert_eq!(msgs[1].tags(), Some("x"));
    assert_eq!(msgs[2].tags(), Some("TagB"));
    assert_eq!(msgs[3].tags(), Some("TagB"));
    assert!(msgs[4].properties.is_empty() && msgs[5].properties.is_empty());
    // Sys flags keep the compression type bits, like Java.
    assert_eq!(msgs[3].sys_flag, 0x300);
    assert_eq!(msgs[4].sys_flag, 0x100);
    assert_eq!(msgs[5].sys_flag, 0x200);
    let r = &msgs[6];
    assert_eq!(r.sys_flag, 0x30);
    assert_eq!(r.born_host, "[::1]:7".parse::<SocketAddr>().unwrap());
    assert_eq!(
        r.store_host,
        "[fe80::1]:10911".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(r.reconsume_times, 2);
    assert_eq!(r.property("RETRY_TOPIC"), Some("TopicTest"));
    assert_eq!(r.property("REAL_TOPIC"), Some("%RETRY%cg"));
    assert_eq!(r.property("REAL_QID"), Some("0"));
    assert_eq!(
        r.offset_msg_id(),
        "FE80000000000000000000000000000100002A9F000000000001E240"
    );
    assert_eq!(
        r.msg_id(),
        r.offset_msg_id(),
        "no UNIQ_KEY: msgId is the offset id"
    );
    // Uncompressed bodies are slices of the frame, not copies.
    let base = body.as_ptr() as usize;
    let p = msgs[0].body.as_ptr() as usize;
    assert!(p >= base && p < base + body.len());
}

/// Every truncation of a valid body is an error, never a panic or a short batch.
#[test]
fn truncated_bodies_are_errors() {
    let body = Bytes::from(std::fs::read(vectors_dir().join("messages.bin")).unwrap());
    let first_len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
    for cut in 1..body.len() {
        let r = decode_messages(&body.slice(..cut));
        if cut == first_len {
            continue; // exactly one whole record
        }
        if cut < first_len {
            assert!(r.is_err(), "cut {cut}");
        }
    }
}

/// `tag_hash.json`: Java String.hashCode of 33 tags.
#[test]
fn tag_hashes_match_the_jvm() {
    let doc = json("tag_hash.json");
    let tags = doc["tagHashes"].as_array().unwrap();
    assert_eq!(tags.len(), 33);
    for t in tags {
        let tag = t["tag"].as_str().unwrap();
        assert_eq!(
            i64::from(java_string_hash(tag)),
            t["hashCode"].as_i64().unwrap(),
            "{:?}",
            t["description"]
        );
    }
}

/// `tag_hash.json`: FilterAPI.buildSubscriptionData and FilterAPI.build, with Java's set
/// order, the fastjson text, and the same expressions rejected.
#[test]
fn subscriptions_match_filter_api() {
    let doc = json("tag_hash.json");
    for s in doc["subscriptions"].as_array().unwrap() {
        let expr = s["expression"].as_str();
        let built = SubscriptionData::build_with_version(
            "TopicTest",
            expr,
            ExpressionType::Tag,
            1700000000000,
        );
        if s.get("exceptionClass").is_some() {
            let e = built.expect_err(&format!("{expr:?} must be rejected"));
            assert!(
                s["exceptionMessage"]
                    .as_str()
                    .unwrap()
                    .contains("split error"),
                "{e}"
            );
            continue;
        }
        let built = built.unwrap();
        assert_eq!(
            built.sub_string,
            s["subString"].as_str().unwrap(),
            "{expr:?}"
        );
        let tags: Vec<&str> = s["tagsSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(built.tags_set, tags, "{expr:?}");
        let codes: Vec<i64> = s["codeSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(
            built
                .code_set
                .iter()
                .map(|c| i64::from(*c))
                .collect::<Vec<_>>(),
            codes,
            "{expr:?}"
        );
        assert_eq!(
            serde_json::to_string(&built).unwrap(),
            s["fastjsonWithSubVersion1700000000000"].as_str().unwrap(),
            "{expr:?}"
        );
    }
    for b in doc["filterApiBuild"].as_array().unwrap() {
        let ty = match b["type"].as_str() {
            Some("SQL92") => ExpressionType::Sql92,
            _ => ExpressionType::Tag,
        };
        let built =
            SubscriptionData::build_with_version("TopicTest", b["expression"].as_str(), ty, 0);
        if b.get("exceptionClass").is_some() {
            assert!(built.is_err(), "{b}");
            continue;
        }
        let built = built.unwrap();
        assert_eq!(built.sub_string, b["subString"].as_str().unwrap());
        assert_eq!(
            built.expression_type.as_str(),
            b["expressionType"].as_str().unwrap()
        );
        assert_eq!(built.tags_set.len(), b["tagsSet"].as_array().unwrap().len());
    }
}

use rmq_client_core::header::{
    ConsumerData, HeartbeatData, ProducerData, PullMessageRequestHeader,
    QueryConsumerOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use rmq_remoting::protocol::ExtFields;

fn heartbeat_data(with_producer: bool) -> HeartbeatData {
    // The subscriptions are given in the "wrong" order on purpose: the body must list them
    // in Java HashSet order (retry first) all the same.
    let subs = vec![
        SubscriptionData::build_with_version(
            "TopicTest",
            Some("TagA || TagB"),
            ExpressionType::Tag,
            1700000000000,
        )
        .unwrap(),
        SubscriptionData::build_with_version(
            "%RETRY%cg",
            Some("*"),
            ExpressionType::Tag,
            1700000000000,
        )
        .unwrap(),
    ];
    HeartbeatData {
        client_id: "127.0.0.1@9999#1".into(),
        consumer_data_set: vec![ConsumerData::new(
            "cg",
            rmq_client_core::ConsumeType::ConsumePassively,
            rmq_client_core::MessageModel::Clustering,
            rmq_client_core::ConsumeFromWhere::FirstOffset,
            subs,
        )],
        producer_data_set: if with_producer {
            vec![ProducerData {
                group_name: "CLIENT_INNER_PRODUCER".into(),
            }]
        } else {
            vec![]
        },
        heartbeat_fingerprint: None,
        without_sub: None,
    }
}

/// `heartbeat.consumer_only.body` and `heartbeat.body`, byte for byte.
#[test]
fn heartbeat_bodies_equal_javas() {
    let dir = vectors_dir();
    let consumer_only = std::fs::read(dir.join("heartbeat.consumer_only.body")).unwrap();
    let full = std::fs::read(dir.join("heartbeat.body")).unwrap();
    assert_eq!(
        serde_json::to_vec(&heartbeat_data(false)).unwrap(),
        consumer_only
    );
    assert_eq!(serde_json::to_vec(&heartbeat_data(true)).unwrap(), full);
    let back: HeartbeatData = serde_json::from_slice(&full).unwrap();
    assert_eq!(back, heartbeat_data(true));
}

/// Heartbeat V2: the Java body with the two fields added in fastjson's key order, and a
/// fingerprint that ignores the client id and sub versions but not the subscriptions.
#[test]
fn heartbeat_v2_bodies_and_fingerprints() {
    let v1 = heartbeat_data(true);
    let f = v1.fingerprint();
    assert_ne!(f, 0);
    let mut other_client = heartbeat_data(true);
    other_client.client_id = "10.0.0.9@1#2".into();
    for s in &mut other_client.consumer_data_set[0].subscription_data_set {
        s.sub_version += 1234;
    }
    assert_eq!(other_client.fingerprint(), f);
    let mut other_tags = heartbeat_data(true);
    other_tags.consumer_data_set[0].subscription_data_set[0] =
        SubscriptionData::build_with_version(
            "%RETRY%cg",
            Some("TagZ"),
            ExpressionType::Tag,
            1700000000000,
        )
        .unwrap();
    assert_ne!(other_tags.fingerprint(), f);
    // Java's body with `heartbeatFingerprint` before `producerDataSet` and `withoutSub` last.
    let full =
        String::from_utf8(std::fs::read(vectors_dir().join("heartbeat.body")).unwrap()).unwrap();
    let (head, producers) = full.split_once(",\"producerDataSet\"").unwrap();
    let expect = format!(
        "{head},\"heartbeatFingerprint\":{f},\"producerDataSet\"{},\"withoutSub\":false}}",
        producers.strip_suffix('}').unwrap()
    );
    let v2 = v1.clone().into_v2(f, false);
    assert_eq!(serde_json::to_string(&v2).unwrap(), expect);
    assert_eq!(v2.fingerprint(), f);
    let light = v1.into_v2(f, true);
    assert!(light.consumer_data_set[0].subscription_data_set.is_empty());
    assert_eq!(light.without_sub, Some(true));
    let back: HeartbeatData =
        serde_json::from_str(&serde_json::to_string(&light).unwrap()).unwrap();
    assert_eq!(back, light);
}

fn ext_of(f: &serde_json::Value) -> ExtFields {
    f["extFields"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Every frame of `frames.json` decodes into our typed header with the Java field values,
/// and our header encodes to the same ext fields (order aside) and decodes back.
#[test]
fn frames_decode_into_typed_headers() {
    let doc = json("frames.json");
    let mut checked = 0;
    for f in doc["frames"].as_array().unwrap() {
        let ext = ext_of(f);
        let custom = &f["customHeader"];
        match f["code"].as_i64().unwrap() {
            11 => {
                let h: PullMessageRequestHeader = ext.to_header().unwrap();
                assert_eq!(h.consumer_group, custom["consumerGroup"].as_str().unwrap());
                assert_eq!(h.topic, custom["topic"].as_str().unwrap());
                assert_eq!(i64::from(h.queue_id), custom["queueId"].as_i64().unwrap());
                assert_eq!(h.queue_offset, custom["queueOffset"].as_i64().unwrap());
                assert_eq!(
                    i64::from(h.max_msg_nums),
                    custom["maxMsgNums"].as_i64().unwrap()
                );
                assert_eq!(
                    h.sys_flag,
                    rmq_client_core::api::pull_sys_flag::build(true, true, true, false)
                );
                assert_eq!(h.commit_offset, 99);
                assert_eq!(h.suspend_timeout_millis, 15000);
                assert_eq!(h.subscription.as_deref(), Some("TagA"));
                assert_eq!(h.sub_version, 0);
                assert_eq!(h.expression_type.as_deref(), Some("TAG"));
                assert_eq!(h.bname.as_deref(), custom["bname"].as_str());
                assert_eq!(ExtFields::from_header(&h).unwrap(), ext);
            }
            14 => {
                let h: QueryConsumerOffsetRequestHeader = ext.to_header().unwrap();
                assert_eq!(
                    (h.consumer_group.as_str(), h.topic.as_str(), h.queue_id),
                    ("cg", "TopicTest", 3)
                );
                assert_eq!(h.bname.as_deref(), custom["bname"].as_str());
                assert_eq!(ExtFields::from_header(&h).unwrap(), ext);
            }
            15 => {
                let h: UpdateConsumerOffsetRequestHeader = ext.to_header().unwrap();
                assert_eq!(h.commit_offset, 99);
                assert_eq!(h.bname.as_deref(), custom["bname"].as_str());
                assert_eq!(ExtFields::from_header(&h).unwrap(), ext);
            }
            34 => {
                let body = hex_decode(f["bodyHex"].as_str().unwrap());
                assert_eq!(
                    body,
                    std::fs::read(vectors_dir().join("heartbeat.body")).unwrap()
                );
                let hb: HeartbeatData = serde_json::from_slice(&body).unwrap();
                assert_eq!(hb.client_id, "127.0.0.1@9999#1");
            }
            other => panic!("unexpected frame code {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 16);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
