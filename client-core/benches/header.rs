//! Building a push consumer's PULL_MESSAGE ext fields from its typed header, once per 32
//! messages: the header's own `to_ext_fields` next to the serde pass every other header
//! takes (`ExtFields::from_header`: a list of pairs, then sorted by key), on the same header.

#![allow(missing_docs)]

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rmq_client_core::header::PullMessageRequestHeader;
use rmq_remoting::protocol::{ExtFields, RequestHeader};

fn bench(c: &mut Criterion) {
    // As the pull kernel fills it for a push consumer with Java's defaults.
    let h = PullMessageRequestHeader {
        consumer_group: Cow::Borrowed("please_rename_unique_group_name"),
        topic: Cow::Borrowed("TopicTest"),
        queue_id: 3,
        queue_offset: 123_456,
        max_msg_nums: 32,
        sys_flag: 3,
        commit_offset: 123_424,
        suspend_timeout_millis: 15_000,
        subscription: Some(Cow::Borrowed("*")),
        sub_version: 1_733_300_000_000,
        expression_type: Some(Cow::Borrowed("TAG")),
        max_msg_bytes: None,
        bname: Some(Cow::Borrowed("broker-a")),
    };
    let mut group = c.benchmark_group("pull_request_header");
    group.bench_function("rmq_to_ext_fields", |b| {
        b.iter(|| black_box(black_box(&h).to_ext_fields().unwrap()))
    });
    group.bench_function("serde_from_header", |b| {
        b.iter(|| black_box(ExtFields::from_header(black_box(&h)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
