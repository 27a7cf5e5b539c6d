//! One pull round trip through the pull kernel (header built and encoded, the request
//! written, the response read and its header and 32 × 1 KiB messages decoded) against an
//! in-process scripted broker on loopback that answers every PULL_MESSAGE at once with the
//! same prebuilt body. Both sides run on one current-thread runtime, so the figure holds
//! the broker stand-in's work too (decoding the request, encoding the response) and the
//! loopback syscalls; a profile separates them. What it is for: a steady figure for rmq's
//! per-pull cost, which the whole-process run (`cargo xtask bench`) mixes with a real
//! broker's timing.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq_client_core::testing::{Reply, ScriptedBroker, loopback_config, pull_body, reply_to};
use rmq_client_core::{
    ClientInstance, ExpressionType, MessageQueue, PullKernel, PullSpec, PullStatus,
    SubscriptionData,
};
use rmq_remoting::{RequestCode, ResponseCode};

const TOPIC: &str = "TopicTest";
const BROKER: &str = "broker-a";
const PULLS: u64 = 256;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = pull_body(TOPIC, 0, 32, 1024);
    let (instance, kernel) = rt.block_on(async {
        let broker = ScriptedBroker::start(BROKER, 1, move |req| {
            (req.request_code() == RequestCode::PULL_MESSAGE).then(|| {
                // The four fields of every FOUND answer, and two of the optional ones a
                // rocketmq-rust 1.0 broker's header type has.
                Reply::Answer(reply_to(
                    req,
                    ResponseCode::SUCCESS,
                    &[
                        ("suggestWhichBrokerId", "0"),
                        ("nextBeginOffset", "32"),
                        ("minOffset", "0"),
                        ("maxOffset", "37504"),
                        ("topicSysFlag", "0"),
                        ("groupSysFlag", "0"),
                    ],
                    body.clone(),
                ))
            })
        })
        .await;
        let instance =
            ClientInstance::get_or_create(&loopback_config(&broker.addr, "bench_pull")).unwrap();
        instance.update_topic_route(TOPIC).await.unwrap();
        let kernel = PullKernel::new(&instance, "bench_group");
        (instance, kernel)
    });
    let mq = MessageQueue::new(TOPIC, BROKER, 0);
    let sub = SubscriptionData::build(TOPIC, Some("*"), ExpressionType::Tag).unwrap();
    let spec = || PullSpec {
        mq: &mq,
        subscription: &sub,
        offset: 0,
        max_msg_nums: 32,
        commit_offset: Some(0),
        suspend: Some(Duration::from_secs(15)),
        post_subscription: false,
        timeout: Duration::from_secs(30),
    };
    let mut group = c.benchmark_group("pull_round_trip");
    group.throughput(Throughput::Elements(PULLS * 32));
    group.bench_function("256_pulls_of_32x1KiB", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            rt.block_on(async {
                for _ in 0..iters * PULLS {
                    let r = kernel.pull(spec()).await.unwrap();
                    assert_eq!(r.status, PullStatus::Found);
                    assert_eq!(r.messages.len(), 32);
                }
            });
            started.elapsed()
        })
    });
    group.finish();
    drop(kernel);
    drop(instance);
}

criterion_group!(benches, bench);
criterion_main!(benches);
