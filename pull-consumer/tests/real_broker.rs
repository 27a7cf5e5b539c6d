//! The pull consumers against the real broker (run by `cargo xtask ci`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rmq_client_core::testing::{config, create_topic, env, unique, wait_route};
use rmq_client_core::{ClientInstance, Message, Producer};
use rmq_pull_consumer::{
    ClientConfig, ConsumeFromWhere, LitePullConsumer, LitePullConsumerConfig, PullConsumer,
    PullConsumerError, PullStatus,
};

fn client() -> ClientConfig {
    ClientConfig::default()
        .namesrv_addr(&env("RMQ_NAMESRV_ADDR"))
        .client_ip("127.0.0.1")
}

/// A topic with `queues` queues and `n` messages in it; returns the topic, the ids and the
/// producing instance.
async fn topic_with(queues: i32, n: usize) -> (String, Vec<String>, ClientInstance) {
    let instance = ClientInstance::get_or_create(&config("p")).unwrap();
    let topic = unique("rmq_pull");
    create_topic(&instance, &topic, queues).await;
    wait_route(&instance, &topic, queues as usize).await;
    let producer = Producer::new(&instance, &unique("pg")).unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            producer
                .send(Message::new(&topic, format!("m-{i}")).tags("TagA"))
                .await
                .unwrap()
                .msg_id,
        );
    }
    (topic, ids, instance)
}

/// Java's `MQPullConsumer` example: each queue from its stored offset until NO_NEW_MSG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn pull_consumer_reads_every_queue_from_its_stored_offset() {
    let (topic, ids, producer) = topic_with(4, 120).await;
    let group = unique("cg_pull");
    let consumer = PullConsumer::builder(&group)
        .client_config(client())
        .start()
        .await
        .unwrap();
    let queues = consumer
        .fetch_subscribe_message_queues(&topic)
        .await
        .unwrap();
    assert_eq!(queues.len(), 4);
    let mut seen = HashSet::new();
    for mq in &queues {
        let mut offset = consumer
            .fetch_consume_offset(mq, true)
            .await
            .unwrap()
            .unwrap_or(0);
        loop {
            let r = consumer
                .pull_block_if_not_found(mq, "*", offset, 32)
                .await
                .unwrap();
            match r.status {
                PullStatus::Found => {
                    for m in &r.messages {
                        assert!(
                            seen.insert(m.msg_id().into_owned()),
                            "duplicate {}",
                            m.msg_id()
                        );
                    }
                    offset = r.next_begin_offset;
                    consumer.update_consume_offset(mq, offset);
                }
                PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => break,
                PullStatus::OffsetIllegal => offset = r.next_begin_offset,
            }
            if r.status == PullStatus::Found && offset >= consumer.max_offset(mq).await.unwrap() {
                break;
            }
        }
        assert_eq!(consumer.min_offset(mq).await.unwrap(), 0);
        consumer.commit_consume_offset(mq).await.unwrap();
        assert_eq!(
            consumer.fetch_consume_offset(mq, true).await.unwrap(),
            Some(offset)
        );
    }
    assert_eq!(seen, ids.into_iter().collect::<HashSet<_>>());
    // Filtering by tag: nothing matches TagB.
    let r = consumer.pull(&queues[0], "TagB", 0, 32).await.unwrap();
    assert!(r.messages.is_empty(), "{:?}", r.status);
    consumer.shutdown().await;
    producer.shutdown(Duration::from_secs(2)).await;
}

async fn poll_n(
    c: &LitePullConsumer,
    n: usize,
    limit: Duration,
) -> Vec<rmq_client_core::MessageExt> {
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < n {
        assert!(started.elapsed() < limit, "polled {} of {n}", out.len());
        out.extend(c.poll_timeout(Duration::from_millis(500)).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn lite_pull_commit_survives_a_restart() {
    let (topic, ids, producer) = topic_with(2, 60).await;
    let group = unique("cg_lite");
    let mut cfg = LitePullConsumerConfig::default();
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    cfg.auto_commit = false;
    let first = LitePullConsumer::builder(&group)
        .client_config(client())
        .config(cfg.clone())
        .subscribe(&topic, "*")
        .start()
        .await
        .unwrap();
    let got = poll_n(&first, 60, Duration::from_secs(60)).await;
    let got_ids: HashSet<String> = got.iter().map(|m| m.msg_id().into_owned()).collect();
    assert_eq!(got_ids, ids.iter().cloned().collect::<HashSet<_>>());
    first.commit_sync().await.unwrap();
    first.shutdown().await;

    let more: HashSet<String> = {
        let p = Producer::new(&producer, &unique("pg2")).unwrap();
        let mut v = HashSet::new();
        for i in 0..20 {
            v.insert(
                p.send(Message::new(&topic, format!("n-{i}")))
                    .await
                    .unwrap()
                    .msg_id,
            );
        }
        v
    };
    let second = LitePullConsumer::builder(&group)
        .client_config(client())
        .config(cfg)
        .subscribe(&topic, "*")
        .start()
        .await
        .unwrap();
    let got = poll_n(&second, 20, Duration::from_secs(60)).await;
    // Nothing committed is delivered again.
    let extra = second.poll_timeout(Duration::from_millis(1500)).await;
    let got_ids: HashSet<String> = got
        .iter()
        .chain(extra.iter())
        .map(|m| m.msg_id().into_owned())
        .collect();
    assert_eq!(got_ids, more);
    second.shutdown().await;
    producer.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn lite_pull_seek_replays_and_stream_yields_messages() {
    use futures::StreamExt;
    let (topic, ids, producer) = topic_with(1, 30).await;
    let group = unique("cg_seek");
    let mut cfg = LitePullConsumerConfig::default();
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    let c = LitePullConsumer::builder(&group)
        .client_config(client())
        .config(cfg)
        .start()
        .await
        .unwrap();
    let queues = c.fetch_message_queues(&topic).await.unwrap();
    c.assign(&queues).await.unwrap();
    assert_eq!(c.assignment(), queues);
    let first = poll_n(&c, 30, Duration::from_secs(60)).await;
    assert_eq!(
        first.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
    // Seek back to 10 while the queue's long poll (15 s) waits at the broker: the poll is
    // abandoned and offsets 10.. come again, in order, within a round trip or two.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sought = Instant::now();
    c.seek(&queues[0], 10).await.unwrap();
    let again = poll_n(&c, 20, Duration::from_secs(60)).await;
    assert_eq!(
        again.iter().map(|m| m.queue_offset).collect::<Vec<_>>(),
        (10..30).collect::<Vec<_>>()
    );
    assert!(
        sought.elapsed() < Duration::from_secs(3),
        "the replay took {:?} after the seek (the long poll was not abandoned)",
        sought.elapsed()
    );
    // Seek to the beginning and read through the Stream.
    c.seek_to_begin(&queues[0]).await.unwrap();
    let streamed: Vec<_> = tokio::time::timeout(
        Duration::from_secs(60),
        c.stream().take(30).collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let streamed_ids: Vec<String> = streamed.iter().map(|m| m.msg_id().into_owned()).collect();
    let first_ids: Vec<String> = first.iter().map(|m| m.msg_id().into_owned()).collect();
    assert_eq!(streamed_ids, first_ids);
    assert_eq!(
        first_ids.iter().cloned().collect::<HashSet<_>>(),
        ids.into_iter().collect::<HashSet<_>>()
    );
    // Out-of-range seeks are refused, with a kind that is not a configuration error.
    let err = c.seek(&queues[0], 31).await.unwrap_err();
    assert!(
        matches!(err, PullConsumerError::OffsetOutOfRange { offset: 31, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), rmq_client_core::ErrorKind::InvalidArgument);
    let report = c.shutdown().await;
    assert!(
        report.performed && report.offsets_persisted && report.tasks_stopped,
        "{report}"
    );
    assert_eq!(report.queues, 1);
    assert!(!c.shutdown().await.performed, "idempotent");
    producer.shutdown(Duration::from_secs(2)).await;
}

/// Every message of the trace topic's one queue (read with a pull consumer), decoded.
async fn trace_records(trace_topic: &str) -> Vec<rmq_client_core::trace::DecodedRecord> {
    let reader = PullConsumer::builder(&unique("cg_trace_reader"))
        .client_config(client())
        .start()
        .await
        .unwrap();
    let queues = reader
        .fetch_subscribe_message_queues(trace_topic)
        .await
        .unwrap();
    let mut records = Vec::new();
    let mut offset = 0;
    loop {
        let r = reader.pull(&queues[0], "*", offset, 32).await.unwrap();
        if r.status != PullStatus::Found {
            break;
        }
        for m in &r.messages {
            let body = std::str::from_utf8(&m.body).unwrap();
            let decoded = rmq_client_core::trace::decode(body);
            // The trace message's keys are the message ids, so a lookup by id finds it.
            for d in &decoded {
                let id = d.msg_id().unwrap();
                assert!(m.keys().any(|k| k == id), "keys of {m:?} lack {id}");
            }
            records.extend(decoded);
        }
        offset = r.next_begin_offset;
    }
    reader.shutdown().await;
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn lite_pull_with_trace_records_every_polled_message() {
    use rmq_client_core::trace::TraceType;
    let (topic, ids, producer) = topic_with(2, 30).await;
    let trace_topic = format!("{topic}_trace");
    create_topic(&producer, &trace_topic, 1).await;
    wait_route(&producer, &trace_topic, 1).await;
    let group = unique("cg_lite_trace");
    let mut cfg = LitePullConsumerConfig::default();
    cfg.consume_from_where = ConsumeFromWhere::FirstOffset;
    let consumer = LitePullConsumer::builder(&group)
        .client_config(client())
        .config(cfg)
        .enable_trace(Some(&trace_topic))
        .subscribe(&topic, "*")
        .start()
        .await
        .unwrap();
    poll_n(&consumer, 30, Duration::from_secs(60)).await;
    // Shutdown sends what is queued.
    consumer.shutdown().await;
    let records = trace_records(&trace_topic).await;
    let mut before = HashSet::new();
    let mut after = HashSet::new();
    for r in &records {
        let id = r.msg_id().unwrap().to_owned();
        match r.trace_type {
            TraceType::SubBefore => {
                assert_eq!(r.fields[2], group, "{r:?}");
                before.insert(id);
            }
            TraceType::SubAfter => {
                assert_eq!(r.fields[3], "true", "success: {r:?}");
                after.insert(id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let ids: HashSet<String> = ids.into_iter().collect();
    assert_eq!(before, ids);
    assert_eq!(after, ids);
    producer.shutdown(Duration::from_secs(2)).await;
}
