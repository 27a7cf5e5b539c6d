//! Decoding a FOUND pull body of 32 messages of 1 KiB into `MessageExt`s, next to a plain
//! copy of the same bytes (the floor for anything that touches every byte once).

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use rmq_client_core::Properties;
use rmq_client_core::message::decode_messages_of;
use rmq_client_core::testing::pull_body;

fn bench(c: &mut Criterion) {
    let body = pull_body("TopicTest", 0, 32, 1024);
    let mut group = c.benchmark_group("pull_body_32x1KiB");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("rmq_decode_messages", |b| {
        // As a pull does: the queue's broker name made once per body, shared by its messages.
        b.iter(|| black_box(decode_messages_of(black_box(&body), "broker-a".into()).unwrap()))
    });
    group.bench_function("plain_copy", |b| {
        b.iter(|| black_box(black_box(&body[..]).to_vec()))
    });
    group.finish();
}

/// The properties a rocketmq-rust 1.0 broker stores with a message sent by `rmq produce`
/// (read back with `rmq consume --format json`), in wire order.
const STORED_PROPERTIES: &str = "CLUSTER\u{1}DefaultCluster\u{2}MSG_REGION\u{1}DefaultRegion\u{2}\
TRACE_ON\u{1}true\u{2}UNIQ_KEY\u{1}C000020211FEDCE48FCA110D22FD00C0\u{2}WAIT\u{1}true\u{2}";

/// Reading one property (the message id, as every listener that logs or deduplicates
/// does) from the received bytes, next to a lookup in a map parsed beforehand (Java's
/// `HashMap<String, String>`; parsing it is not timed).
fn bench_property(c: &mut Criterion) {
    let props = Properties::parse(STORED_PROPERTIES);
    let map: std::collections::HashMap<String, String> = props
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut group = c.benchmark_group("property_uniq_key");
    group.bench_function("rmq_properties_get", |b| {
        b.iter(|| black_box(black_box(&props).get("UNIQ_KEY")))
    });
    group.bench_function("hashmap_get", |b| {
        b.iter(|| black_box(black_box(&map).get("UNIQ_KEY")))
    });
    group.finish();
}

criterion_group!(benches, bench, bench_property);
criterion_main!(benches);
