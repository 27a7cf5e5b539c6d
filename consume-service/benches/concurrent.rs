//! The concurrent consume service's own cost per message, without a broker: pulled batches
//! of 32 × 1 KiB (already decoded) put into a ProcessQueue and handed to the service, a
//! listener that only counts, Java's defaults (one message per call, 20 consume tasks), on
//! a one-thread runtime as `rmq consume` runs; timed until the last offset is committed.
//! The whole-process figure (`cargo xtask bench`) also pays the sockets and the decoding.

#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq_client_core::message::decode_messages;
use rmq_client_core::testing::{closed_port, loopback_config, pull_body};
use rmq_client_core::{ClientInstance, MessageExt, MessageQueue};
use rmq_consume_service::{
    ConcurrentConfig, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    ConsumeMessageConcurrentlyService, MessageListenerConcurrently, ProcessQueue, SendBack,
};
use rmq_offset_store::{LocalFileOffsetStore, OffsetStore, ReadOffsetType};

const BATCHES: usize = 64;
const PER_PULL: usize = 32;

struct Counts(AtomicU64);

impl MessageListenerConcurrently for Counts {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        self.0.fetch_add(msgs.len() as u64, Ordering::Relaxed);
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = rt.enter();
    let instance =
        ClientInstance::get_or_create(&loopback_config(&closed_port(), "bench_concurrent"))
            .unwrap();
    let group = "bench_group";
    let dir = std::env::temp_dir().join(format!("rmq-bench-concurrent-{}", std::process::id()));
    let offsets: Arc<dyn OffsetStore> = Arc::new(LocalFileOffsetStore::new(
        Some(&dir),
        instance.client_id(),
        group,
    ));
    let listener = Arc::new(Counts(AtomicU64::new(0)));
    let service = ConsumeMessageConcurrentlyService::new(
        Arc::clone(&listener),
        ConcurrentConfig::new(group),
        Arc::clone(&offsets),
        SendBack::new(&instance, group, 16),
        Vec::new(),
    );
    let mq = MessageQueue::new("TopicTest", "broker-a", 0);
    // Offsets keep growing across iterations, as a queue's do.
    let mut next_offset = 0i64;
    let mut group_ = c.benchmark_group("concurrent_service");
    group_.throughput(Throughput::Elements((BATCHES * PER_PULL) as u64));
    group_.bench_function("64_pulls_of_32x1KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batches: Vec<Vec<MessageExt>> = (0..BATCHES)
                    .map(|i| {
                        let first = next_offset + (i * PER_PULL) as i64;
                        decode_messages(&pull_body("TopicTest", first, PER_PULL, 1024)).unwrap()
                    })
                    .collect();
                next_offset += (BATCHES * PER_PULL) as i64;
                let pq = Arc::new(ProcessQueue::new(Arc::new(AtomicUsize::new(0))));
                let started = Instant::now();
                rt.block_on(async {
                    for msgs in batches {
                        assert!(pq.put_messages(&msgs));
                        assert!(service.submit(msgs, &pq, &mq).await);
                    }
                    assert!(pq.wait_empty(Duration::from_secs(10)).await);
                });
                total += started.elapsed();
                let committed = rt
                    .block_on(offsets.read_offset(&mq, ReadOffsetType::ReadFromMemory))
                    .unwrap();
                assert_eq!(committed, Some(next_offset), "every offset committed");
            }
            total
        })
    });
    group_.finish();
    rt.block_on(service.shutdown(Duration::from_secs(1)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
