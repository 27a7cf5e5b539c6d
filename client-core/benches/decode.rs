//! Decoding a FOUND pull body of 32 messages of 1 KiB into `MessageExt`s, next to a plain
//! copy of the same bytes (the floor for anything that touches every byte once).

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
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

criterion_group!(benches, bench);
criterion_main!(benches);
