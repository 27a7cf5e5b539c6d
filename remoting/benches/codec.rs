//! Encode and decode a PULL_MESSAGE response frame carrying 32 messages of 1 KiB, in both
//! header serialisations, next to `tokio_util`'s `LengthDelimitedCodec` on the same bytes
//! (bare framing with no header parsing: the floor any Remoting codec can reach).

#![allow(missing_docs)]

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use rmq_remoting::codec::encode_frame;
use rmq_remoting::protocol::{ExtFields, decode_header};
use rmq_remoting::{
    DEFAULT_MAX_FRAME_LEN, RemotingCodec, RemotingCommand, ResponseCode, SerializeType,
};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// 32 message records (REMOTING.md §5 layout, V1 magic) with 1 KiB bodies.
fn pull_body() -> Bytes {
    let mut b = BytesMut::new();
    let props =
        "TAGS\u{1}TagA\u{2}KEYS\u{1}k1\u{2}UNIQ_KEY\u{1}0A00000100002A9F0000000000000001\u{2}";
    for i in 0..32i64 {
        let topic = b"TopicTest";
        let body = vec![b'x'; 1024];
        let total = 4
            + 4
            + 4
            + 4
            + 4
            + 8
            + 8
            + 4
            + 8
            + 8
            + 8
            + 8
            + 4
            + 4
            + 8
            + 4
            + body.len()
            + 1
            + topic.len()
            + 2
            + props.len();
        b.put_i32(total as i32);
        b.put_i32(0xDAA320A7u32 as i32);
        b.put_i32(0); // body crc
        b.put_i32(1); // queue id
        b.put_i32(0); // flag
        b.put_i64(i); // queue offset
        b.put_i64(123456 + i * 1200); // physical offset
        b.put_i32(0); // sys flag
        b.put_i64(1_700_000_000_000); // born ts
        b.put_slice(&[10, 0, 0, 1]);
        b.put_i32(5555);
        b.put_i64(1_700_000_000_123); // store ts
        b.put_slice(&[192, 168, 1, 2]);
        b.put_i32(10911);
        b.put_i32(0); // reconsume times
        b.put_i64(0); // prepared tx offset
        b.put_i32(body.len() as i32);
        b.put_slice(&body);
        b.put_u8(topic.len() as u8);
        b.put_slice(topic);
        b.put_i16(props.len() as i16);
        b.put_slice(props.as_bytes());
    }
    b.freeze()
}

fn pull_response(ty: SerializeType) -> RemotingCommand {
    let mut cmd = RemotingCommand::response(ResponseCode::SUCCESS, Some("FOUND".to_owned()))
        .with_body(pull_body())
        .with_serialize_type(ty);
    cmd.opaque = 4242;
    let ext: ExtFields = [
        ("suggestWhichBrokerId", "0"),
        ("nextBeginOffset", "32"),
        ("minOffset", "0"),
        ("maxOffset", "100000"),
    ]
    .into_iter()
    .collect();
    cmd.ext_fields = Some(ext);
    cmd
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pull_response_32x1KiB");
    for ty in [SerializeType::Json, SerializeType::RocketMq] {
        let cmd = pull_response(ty);
        let mut frame = BytesMut::new();
        RemotingCodec::default()
            .encode(cmd.clone(), &mut frame)
            .unwrap();
        let frame = frame.freeze();
        group.throughput(Throughput::Bytes(frame.len() as u64));

        group.bench_with_input(
            BenchmarkId::new("rmq_encode", format!("{ty:?}")),
            &cmd,
            |b, cmd| {
                let mut codec = RemotingCodec::default();
                let mut buf = BytesMut::with_capacity(frame.len());
                b.iter(|| {
                    buf.clear();
                    codec.encode(black_box(cmd.clone()), &mut buf).unwrap();
                    black_box(buf.len())
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("rmq_decode", format!("{ty:?}")),
            &frame,
            |b, frame| {
                let mut codec = RemotingCodec::default();
                b.iter(|| {
                    let mut buf = BytesMut::from(&frame[..]);
                    black_box(codec.decode(&mut buf).unwrap().unwrap())
                })
            },
        );
        // Peer: the same frame through a plain 4-byte length-delimited codec.
        group.bench_with_input(
            BenchmarkId::new("length_delimited_decode", format!("{ty:?}")),
            &frame,
            |b, frame| {
                let mut codec = LengthDelimitedCodec::builder()
                    .length_field_length(4)
                    .max_frame_length(16 * 1024 * 1024)
                    .new_codec();
                b.iter(|| {
                    let mut buf = BytesMut::from(&frame[..]);
                    black_box(codec.decode(&mut buf).unwrap().unwrap())
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("length_delimited_encode", format!("{ty:?}")),
            &frame,
            |b, frame| {
                let mut codec = LengthDelimitedCodec::builder()
                    .length_field_length(4)
                    .new_codec();
                let payload = frame.slice(4..);
                let mut buf = BytesMut::with_capacity(frame.len());
                b.iter(|| {
                    buf.clear();
                    codec.encode(black_box(payload.clone()), &mut buf).unwrap();
                    black_box(buf.len())
                })
            },
        );
    }
    group.finish();
}

/// The JSON header of a FOUND pull answer exactly as a rocketmq-rust 1.0 broker sent it
/// (captured with strace on loopback): what every pull's response costs to read, apart from
/// its messages.
const RUST_BROKER_PULL_HEADER: &str = r#"{"code":0,"language":"RUST","version":474,"opaque":6,"flag":1,"remark":"Some(Found)","extFields":{"suggestWhichBrokerId":"0","nextBeginOffset":"32","minOffset":"0","maxOffset":"64","topicSysFlag":"0","groupSysFlag":"0"},"serializeTypeCurrentRPC":"JSON"}"#;

fn bench_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("pull_answer_header");
    let header = RUST_BROKER_PULL_HEADER.as_bytes();
    group.throughput(Throughput::Bytes(header.len() as u64));
    group.bench_function("rmq_decode_header_json", |b| {
        b.iter(|| black_box(decode_header(SerializeType::Json, black_box(header)).unwrap()))
    });
    // Peer: serde_json into a generic tree, the floor for "read it with serde_json" at all.
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(header)).unwrap())
        })
    });
    group.finish();
}

/// The extFields of a push consumer's PULL_MESSAGE request as rmq sends it (Java's
/// `PullMessageRequestHeader`, field order of the struct).
const PULL_REQUEST_FIELDS: [(&str, &str); 12] = [
    ("consumerGroup", "please_rename_unique_group_name"),
    ("topic", "TopicTest"),
    ("queueId", "3"),
    ("queueOffset", "123456"),
    ("maxMsgNums", "32"),
    ("sysFlag", "3"),
    ("commitOffset", "123424"),
    ("suspendTimeoutMillis", "15000"),
    ("subscription", "*"),
    ("subVersion", "1733300000000"),
    ("expressionType", "TAG"),
    ("bname", "broker-a"),
];

/// One pull request, from its extFields to the bytes on the wire: what every pull costs to
/// send, apart from building the header.
fn bench_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("pull_request_encode");
    let ext: ExtFields = PULL_REQUEST_FIELDS.into_iter().collect();
    let mut cmd = RemotingCommand::request(rmq_remoting::RequestCode::PULL_MESSAGE);
    cmd.ext_fields = Some(ext);
    cmd.opaque = 4242;
    let mut out = BytesMut::with_capacity(1024);
    group.bench_function("rmq_encode_frame", |b| {
        b.iter(|| {
            out.clear();
            encode_frame(black_box(&cmd), &mut out, DEFAULT_MAX_FRAME_LEN).unwrap();
            black_box(out.len())
        })
    });
    // Peer: the same header as a serde_json map written by serde_json.
    let ext_json: serde_json::Map<String, serde_json::Value> = PULL_REQUEST_FIELDS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let value = serde_json::json!({
        "code": 11, "extFields": ext_json, "flag": 0, "language": "JAVA", "opaque": 4242,
        "serializeTypeCurrentRPC": "JSON", "version": 399,
    });
    group.bench_function("serde_json_value_to_writer", |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer((&mut out).writer(), black_box(&value)).unwrap();
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_header, bench_request);
criterion_main!(benches);
