//! The push consumer against the real broker (run by `cargo xtask ci`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_client_core::api::pull_sys_flag;
use rmq_client_core::header::{PullMessageRequestHeader, QueryConsumerOffsetRequestHeader};
use rmq_client_core::testing::{
    config, create_topic, env, loopback_config, tasks_back_to, unique, wait_route,
};
use rmq_client_core::{ClientConfig, ClientInstance, Message, MessageExt, Producer, PullStatus};
use rmq_push_consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, MessageListenerConcurrently, MessageListenerOrderly, MessageModel,
    PushConsumer,
};

struct Setup {
    instance: ClientInstance,
    producer: Producer,
    topic: String,
}

async fn setup(queues: i32) -> Setup {
    let instance = ClientInstance::get_or_create(&config("producer")).unwrap();
    let topic = unique("rmq_push");
    create_topic(&instance, &topic, queues).await;
    wait_route(&instance, &topic, queues as usize).await;
    let producer = Producer::new(&instance, &unique("pg")).unwrap();
    Setup {
        instance,
        producer,
        topic,
    }
}

/// Sends `n` messages, 64 in flight; returns their ids.
async fn produce(s: &Setup, n: usize, tag: &str) -> Vec<String> {
    let mut set = tokio::task::JoinSet::new();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        while set.len() >= 64 {
            ids.push(set.join_next().await.unwrap().unwrap());
        }
        let p = s.producer.clone();
        let msg = Message::new(&s.topic, format!("m-{i}")).tags(tag);
        set.spawn(async move { p.send(msg).await.expect("send").msg_id });
    }
    while let Some(r) = set.join_next().await {
        ids.push(r.unwrap());
    }
    ids
}

/// Counts deliveries per message id.
#[derive(Default)]
struct Collector {
    seen: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    delay_per_msg: Duration,
}

impl Collector {
    fn unique(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    fn duplicates(&self) -> usize {
        self.total.load(Ordering::SeqCst) - self.unique()
    }
    fn record(&self, msgs: &[MessageExt]) {
        let mut s = self.seen.lock().unwrap();
        for m in msgs {
            *s.entry(m.msg_id().into_owned()).or_default() += 1;
        }
        self.total.fetch_add(msgs.len(), Ordering::SeqCst);
    }
}

impl MessageListenerConcurrently for Collector {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        if !self.delay_per_msg.is_zero() {
            tokio::time::sleep(self.delay_per_msg * msgs.len() as u32).await;
        }
        self.record(msgs);
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

fn client() -> ClientConfig {
    ClientConfig::default()
        .namesrv_addr(&env("RMQ_NAMESRV_ADDR"))
        .client_ip("127.0.0.1")
}

fn consumer(group: &str, topic: &str) -> rmq_push_consumer::PushConsumerBuilder {
    PushConsumer::builder(group)
        .client_config(client())
        .subscribe(topic, "*")
        .consume_from_where(ConsumeFromWhere::FirstOffset)
}

/// Per queue of the topic: the group's committed offset on the broker and the max offset.
async fn committed_and_max(
    s: &Setup,
    group: &str,
) -> Vec<(rmq_client_core::MessageQueue, Option<i64>, i64)> {
    let mut out = Vec::new();
    for mq in s.instance.subscribe_queues(&s.topic) {
        let addr = s.instance.master_addr_of(&mq).await.unwrap();
        let api = s.instance.api();
        let max = api
            .get_max_offset(&addr, &mq, Duration::from_secs(5))
            .await
            .unwrap();
        let header = QueryConsumerOffsetRequestHeader {
            consumer_group: group.to_owned(),
            topic: s.topic.clone(),
            queue_id: mq.queue_id,
            set_zero_if_not_found: None,
            bname: Some(mq.broker_name.clone()),
        };
        let committed = api
            .query_consumer_offset(&addr, &header, Duration::from_secs(5))
            .await
            .unwrap();
        out.push((mq, committed, max));
    }
    out
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn ten_thousand_messages_over_8_queues_consumed_exactly_once() {
    let s = setup(8).await;
    let ids = produce(&s, 10_000, "TagA").await;
    let group = unique("cg_once");
    let c = Arc::new(Collector::default());
    let consumer = consumer(&group, &s.topic)
        .listener(Arc::clone(&c))
        .start()
        .await
        .unwrap();
    wait_for("10 000 messages", Duration::from_secs(60), || {
        c.unique() == 10_000
    })
    .await;
    consumer.shutdown().await;
    assert_eq!(c.duplicates(), 0, "duplicates");
    let seen = c.seen.lock().unwrap().clone();
    assert!(ids.iter().all(|id| seen.get(id) == Some(&1)));
    // Every queue's committed offset is its max offset: all consumed, all committed.
    for (mq, committed, max) in committed_and_max(&s, &group).await {
        assert_eq!(committed, Some(max), "{mq:?}");
    }
    s.instance.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn three_consumers_one_stopped_one_added_mid_stream_no_duplicates_after_clean_handoffs() {
    let s = setup(8).await;
    produce(&s, 4000, "TagA").await;
    let group = unique("cg_handoff");
    let c = Arc::new(Collector {
        delay_per_msg: Duration::from_millis(5),
        ..Default::default()
    });
    let mut members = Vec::new();
    for _ in 0..3 {
        let m = consumer(&group, &s.topic)
            .listener(Arc::clone(&c))
            .start()
            .await
            .unwrap();
        members.push(m);
    }
    wait_for("1000 consumed", Duration::from_secs(60), || {
        c.unique() >= 1000
    })
    .await;
    let stopped = members.remove(1);
    stopped.shutdown().await;
    let added = consumer(&group, &s.topic)
        .listener(Arc::clone(&c))
        .start()
        .await
        .unwrap();
    members.push(added);
    produce(&s, 2000, "TagA").await;
    wait_for("6000 consumed", Duration::from_secs(120), || {
        c.unique() == 6000
    })
    .await;
    for m in &members {
        m.shutdown().await;
    }
    println!(
        "hand-off test: {} deliveries, {} unique, {} duplicates",
        c.total.load(Ordering::SeqCst),
        c.unique(),
        c.duplicates()
    );
    assert_eq!(c.unique(), 6000);
    assert_eq!(
        c.duplicates(),
        0,
        "a clean hand-off delivered messages twice"
    );
    s.instance.shutdown(Duration::from_secs(2)).await;
}

/// Records, per queue, the sequence numbers in delivery order.
#[derive(Default)]
struct OrderRecorder {
    per_queue: Mutex<HashMap<i32, Vec<i64>>>,
    total: AtomicUsize,
}

impl MessageListenerOrderly for OrderRecorder {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeOrderlyContext,
    ) -> ConsumeOrderlyStatus {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut q = self.per_queue.lock().unwrap();
        for m in msgs {
            let seq: i64 = std::str::from_utf8(&m.body).unwrap().parse().unwrap();
            q.entry(ctx.message_queue.queue_id).or_default().push(seq);
        }
        self.total.fetch_add(msgs.len(), Ordering::SeqCst);
        ConsumeOrderlyStatus::Success
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn orderly_keeps_per_queue_order_across_a_rebalance() {
    let s = setup(4).await;
    let queues = s.instance.subscribe_queues(&s.topic);
    // 300 messages per queue, numbered in send order.
    for (qi, mq) in queues.iter().enumerate() {
        for seq in 0..300i64 {
            let msg = Message::new(&s.topic, (qi as i64 * 1000 + seq).to_string());
            s.producer.send_to_queue(msg, mq).await.unwrap();
        }
    }
    let group = unique("cg_orderly");
    let rec = Arc::new(OrderRecorder::default());
    let first = consumer(&group, &s.topic)
        .orderly_listener(Arc::clone(&rec))
        .start()
        .await
        .unwrap();
    wait_for("some consumed", Duration::from_secs(60), || {
        rec.total.load(Ordering::SeqCst) >= 200
    })
    .await;
    let second = consumer(&group, &s.topic)
        .orderly_listener(Arc::clone(&rec))
        .start()
        .await
        .unwrap();
    wait_for("all consumed", Duration::from_secs(120), || {
        rec.total.load(Ordering::SeqCst) >= 1200
    })
    .await;
    // Both members end up owning queues.
    wait_for("both own queues", Duration::from_secs(30), || {
        !first.assigned_queues().is_empty() && !second.assigned_queues().is_empty()
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;
    let per_queue = rec.per_queue.lock().unwrap().clone();
    for (q, seqs) in per_queue.iter() {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "queue {q} out of order or repeated: {:?}",
            &seqs[..seqs.len().min(50)]
        );
        assert_eq!(seqs.len(), 300, "queue {q}");
    }
    assert_eq!(per_queue.len(), 4);
    s.instance.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn broadcasting_consumers_each_get_everything_and_keep_local_offsets() {
    let s = setup(4).await;
    produce(&s, 500, "TagA").await;
    let group = unique("cg_broadcast");
    let dir = std::env::temp_dir().join(unique("rmq-broadcast-offsets"));
    let names = [unique("b1"), unique("b2")];
    let member = |name: &str, c: &Arc<Collector>| {
        PushConsumer::builder(&group)
            .client_config(loopback_config(&env("RMQ_NAMESRV_ADDR"), name))
            .subscribe(&s.topic, "*")
            .message_model(MessageModel::Broadcasting)
            .consume_from_where(ConsumeFromWhere::FirstOffset)
            .local_offset_store_dir(Some(dir.clone()))
            .listener(Arc::clone(c))
    };
    let mut members = Vec::new();
    for name in &names {
        let c = Arc::new(Collector::default());
        let m = member(name, &c).start().await.unwrap();
        members.push((m, c));
    }
    for (_, c) in &members {
        let c = Arc::clone(c);
        wait_for("500 each", Duration::from_secs(60), move || {
            c.unique() == 500
        })
        .await;
    }
    for (m, c) in &members {
        assert_eq!(
            m.assigned_queues().len(),
            4,
            "broadcasting owns every queue"
        );
        let id = m.client_id().to_owned();
        m.shutdown().await;
        assert_eq!(c.duplicates(), 0);
        let text =
            std::fs::read_to_string(dir.join(&id).join(&group).join("offsets.json")).unwrap();
        let offsets = rmq_offset_store::parse_offsets_file(&text).unwrap();
        assert_eq!(offsets.len(), 4);
        assert_eq!(offsets.values().sum::<i64>(), 500, "offsets {offsets:?}");
    }
    // A restart with the same client id resumes from the local file: only new messages.
    let more = produce(&s, 100, "TagA").await;
    let c = Arc::new(Collector::default());
    let again = member(&names[0], &c).start().await.unwrap();
    wait_for("100 new", Duration::from_secs(60), || c.unique() >= 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    again.shutdown().await;
    let seen = c.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 100, "redelivered after a broadcasting restart");
    assert!(more.iter().all(|id| seen.contains_key(id)));
    let _ = std::fs::remove_dir_all(&dir);
    s.instance.shutdown(Duration::from_secs(2)).await;
}

/// Fails every delivery, asking for a 1 s retry delay.
#[derive(Default)]
struct AlwaysLater {
    deliveries: Mutex<HashMap<String, Vec<(String, i32)>>>,
}

impl MessageListenerConcurrently for AlwaysLater {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        let mut d = self.deliveries.lock().unwrap();
        for m in msgs {
            d.entry(m.msg_id().into_owned())
                .or_default()
                .push((m.topic.to_string(), m.reconsume_times));
        }
        ctx.delay_level_when_next_consume = 1;
        ConsumeConcurrentlyStatus::ReconsumeLater
    }
}

async fn pull_all(instance: &ClientInstance, topic: &str) -> Vec<MessageExt> {
    let mut out = Vec::new();
    for _ in 0..100 {
        if instance.update_topic_route(topic).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for mq in instance.subscribe_queues(topic) {
        let addr = instance
            .find_broker_address_in_publish(&mq.broker_name)
            .unwrap();
        let mut offset = 0;
        loop {
            let header = PullMessageRequestHeader {
                consumer_group: unique("cg_reader").into(),
                topic: mq.topic.clone().into(),
                queue_id: mq.queue_id,
                queue_offset: offset,
                max_msg_nums: 32,
                sys_flag: pull_sys_flag::build(false, false, true, false),
                commit_offset: 0,
                suspend_timeout_millis: 0,
                subscription: Some("*".into()),
                sub_version: 0,
                expression_type: Some("TAG".into()),
                max_msg_bytes: None,
                bname: None,
            };
            let r = instance
                .api()
                .pull_message(&addr, &header, Duration::from_secs(5))
                .await
                .unwrap();
            if r.status != PullStatus::Found {
                break;
            }
            offset = r.next_begin_offset;
            out.extend(r.messages);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn reconsume_later_retries_through_the_retry_topic_then_lands_in_the_dlq() {
    let s = setup(2).await;
    let ids = produce(&s, 4, "TagR").await;
    let group = unique("cg_retry");
    let l = Arc::new(AlwaysLater::default());
    let c = consumer(&group, &s.topic)
        .max_reconsume_times(Some(2))
        .listener(Arc::clone(&l))
        .start()
        .await
        .unwrap();
    // 1 delivery + 2 retries each.
    wait_for("3 deliveries of each", Duration::from_secs(90), || {
        let d = l.deliveries.lock().unwrap();
        ids.iter().all(|id| d.get(id).is_some_and(|v| v.len() >= 3))
    })
    .await;
    // Then the DLQ receives all four, with their ids.
    let dlq = rmq_client_core::namespace::dlq_topic(&group);
    let mut in_dlq = Vec::new();
    for _ in 0..60 {
        in_dlq = pull_all(&s.instance, &dlq).await;
        if in_dlq.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    c.shutdown().await;
    let d = l.deliveries.lock().unwrap().clone();
    for id in &ids {
        let v = &d[id];
        assert_eq!(v.len(), 3, "{id} delivered {v:?}");
        for (i, (topic, reconsume)) in v.iter().enumerate() {
            assert_eq!(topic, &s.topic, "retried messages show their real topic");
            assert_eq!(*reconsume, i as i32);
        }
    }
    let mut dlq_ids: Vec<String> = in_dlq.iter().map(|m| m.msg_id().into_owned()).collect();
    dlq_ids.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(dlq_ids, want, "DLQ holds exactly the failed messages");
    s.instance.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn a_restart_resumes_from_the_committed_offset() {
    let s = setup(4).await;
    let first_ids = produce(&s, 300, "TagA").await;
    let group = unique("cg_restart");
    let c1 = Arc::new(Collector::default());
    let first = consumer(&group, &s.topic)
        .listener(Arc::clone(&c1))
        .start()
        .await
        .unwrap();
    wait_for("first 300", Duration::from_secs(60), || c1.unique() == 300).await;
    first.shutdown().await;
    let second_ids = produce(&s, 200, "TagA").await;
    let c2 = Arc::new(Collector::default());
    let second = consumer(&group, &s.topic)
        .listener(Arc::clone(&c2))
        .start()
        .await
        .unwrap();
    wait_for("next 200", Duration::from_secs(60), || c2.unique() >= 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.shutdown().await;
    let seen = c2.seen.lock().unwrap().clone();
    assert!(
        first_ids.iter().all(|id| !seen.contains_key(id)),
        "a consumed message was delivered again after restart"
    );
    assert!(second_ids.iter().all(|id| seen.get(id) == Some(&1)));
    assert_eq!(seen.len(), 200);
    s.instance.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn running_info_and_consume_directly_reach_the_consumer_through_the_broker() {
    use rmq_remoting::{
        RemotingClient, RemotingCommand, RemotingConfig, RequestCode, ResponseCode,
    };
    let s = setup(2).await;
    let group = unique("cg_admin");
    let c = Arc::new(Collector::default());
    let consumer = consumer(&group, &s.topic)
        .listener(Arc::clone(&c))
        .start()
        .await
        .unwrap();
    let sent = s
        .producer
        .send(Message::new(&s.topic, "direct"))
        .await
        .unwrap();
    wait_for("first delivery", Duration::from_secs(30), || {
        c.unique() == 1
    })
    .await;
    // The consumer also owns its %RETRY% queue once that topic's route exists: count only
    // the topic's own queues.
    let topic_queues = |qs: Vec<rmq_client_core::MessageQueue>| {
        let mut v: Vec<_> = qs.into_iter().filter(|q| q.topic == s.topic).collect();
        v.sort();
        v
    };
    wait_for("queues assigned", Duration::from_secs(30), || {
        topic_queues(consumer.assigned_queues()).len() == 2
    })
    .await;
    let admin = RemotingClient::new(RemotingConfig::default());
    let client_id = consumer.client_id().to_owned();
    let broker = env("RMQ_BROKER_ADDR");

    // GET_CONSUMER_RUNNING_INFO (307), forwarded by the broker to our client.
    let mut req = RemotingCommand::request(RequestCode::GET_CONSUMER_RUNNING_INFO);
    req.ext_fields = Some(
        [
            ("consumerGroup", group.as_str()),
            ("clientId", client_id.as_str()),
            ("jstackEnable", "false"),
        ]
        .into_iter()
        .collect(),
    );
    let resp = admin
        .invoke(&broker, req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "{:?}",
        resp.remark
    );
    let text = String::from_utf8(resp.body.to_vec()).unwrap();
    let mq_table =
        rmq_client_core::fastjson::parse_mq_map_field::<serde_json::Value>(&text, "mqTable")
            .unwrap();
    let owned = topic_queues(mq_table.keys().cloned().collect());
    assert_eq!(owned, topic_queues(consumer.assigned_queues()));
    assert!(
        text.contains("\"PROP_CONSUME_TYPE\":\"CONSUME_PASSIVELY\""),
        "{text}"
    );

    // CONSUME_MESSAGE_DIRECTLY (309): the broker looks the message up by its offset id and
    // our listener runs on it once more.
    let mut req = RemotingCommand::request(RequestCode::CONSUME_MESSAGE_DIRECTLY);
    req.ext_fields = Some(
        [
            ("consumerGroup", group.as_str()),
            ("clientId", client_id.as_str()),
            ("msgId", sent.offset_msg_id.as_str()),
            ("topic", s.topic.as_str()),
        ]
        .into_iter()
        .collect(),
    );
    let resp = admin
        .invoke(&broker, req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "{:?}",
        resp.remark
    );
    let result: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(result["consumeResult"], "CR_SUCCESS", "{result}");
    assert_eq!(
        c.seen.lock().unwrap().get(&sent.msg_id).copied(),
        Some(2),
        "listener ran on the direct message"
    );
    admin.shutdown(Duration::from_secs(1)).await;
    consumer.shutdown().await;
    s.instance.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn an_admin_offset_reset_makes_the_consumer_start_over() {
    use rmq_remoting::{
        RemotingClient, RemotingCommand, RemotingConfig, RequestCode, ResponseCode,
    };
    let s = setup(2).await;
    let ids = produce(&s, 40, "TagA").await;
    let group = unique("cg_reset");
    let c = Arc::new(Collector::default());
    let consumer = consumer(&group, &s.topic)
        .listener(Arc::clone(&c))
        .start()
        .await
        .unwrap();
    wait_for("first pass", Duration::from_secs(60), || c.unique() == 40).await;
    // Reset every queue of the topic to the start (INVOKE_BROKER_TO_RESET_OFFSET, timestamp
    // 0). This broker resets server-side: the consumer's next pull answers
    // PULL_OFFSET_MOVED with the new offset (REMOTING.md §3.6, OFFSET_RESET).
    let admin = RemotingClient::new(RemotingConfig::default());
    let mut req = RemotingCommand::request(RequestCode::INVOKE_BROKER_TO_RESET_OFFSET);
    req.ext_fields = Some(
        [
            ("topic", s.topic.as_str()),
            ("group", group.as_str()),
            ("timestamp", "0"),
            ("isForce", "true"),
            ("queueId", "-1"),
        ]
        .into_iter()
        .collect(),
    );
    let resp = admin
        .invoke(&env("RMQ_BROKER_ADDR"), req, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        resp.response_code(),
        ResponseCode::SUCCESS,
        "{:?}",
        resp.remark
    );
    wait_for(
        "second pass after the reset",
        Duration::from_secs(90),
        || {
            let seen = c.seen.lock().unwrap();
            ids.iter().all(|id| seen.get(id).copied().unwrap_or(0) >= 2)
        },
    )
    .await;
    admin.shutdown(Duration::from_secs(1)).await;
    consumer.shutdown().await;
    s.instance.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn dropping_a_consumer_without_shutdown_ends_its_tasks_within_1s() {
    let s = setup(4).await;
    produce(&s, 2000, "TagA").await;
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let c = Arc::new(Collector {
        delay_per_msg: Duration::from_millis(1),
        ..Default::default()
    });
    let consumer = consumer(&unique("cg_drop"), &s.topic)
        .listener(Arc::clone(&c))
        .start()
        .await
        .unwrap();
    wait_for("some consumed", Duration::from_secs(60), || {
        c.unique() >= 100
    })
    .await;
    let running = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        running > baseline + 4,
        "pull, rebalance and consume tasks run: {running} vs {baseline} before"
    );
    let dropped_at = Instant::now();
    drop(consumer);
    let alive = tasks_back_to(baseline, Duration::from_secs(1)).await;
    assert!(
        alive <= baseline,
        "{alive} tasks alive {:?} after the drop, {baseline} before the consumer started",
        dropped_at.elapsed()
    );
    let consumed = c.total.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.total.load(Ordering::SeqCst),
        consumed,
        "the listener runs no more after the drop"
    );
    let _ = &s.instance;
}

/// A clean stop right after start, while the first pulls are landing, never waits out its
/// drain timeout: each queue is sealed before its drain, so no batch slips in after it
/// (before: 10 s in 1 of 10 runs, "released queue still had cached messages").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn a_stop_right_after_start_drains_without_waiting_out_the_timeout() {
    let s = setup(8).await;
    produce(&s, 2000, "TagA").await;
    for (i, after_ms) in [200u64, 350, 500, 650, 800, 950].into_iter().enumerate() {
        let c = Arc::new(Collector::default());
        let m = consumer(&unique(&format!("cg_quick_stop_{i}")), &s.topic)
            .listener(Arc::clone(&c))
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        let started = Instant::now();
        let report = m.shutdown().await;
        let took = started.elapsed();
        assert!(
            !report.drain_timed_out && report.messages_left == 0,
            "stop {after_ms} ms after start: {report}"
        );
        assert!(
            took < Duration::from_secs(3),
            "stop {after_ms} ms after start took {took:?}: {report}"
        );
    }
    s.instance.shutdown(Duration::from_secs(2)).await;
}

fn sql92_consumer(
    group: &str,
    topic: &str,
    expression: &str,
) -> rmq_push_consumer::PushConsumerBuilder {
    PushConsumer::builder(group)
        .client_config(client())
        .subscribe_sql92(topic, expression)
        .consume_from_where(ConsumeFromWhere::FirstOffset)
}

/// The test broker runs with `enablePropertyFilter=true` (the xtask's config). What the
/// rocketmq-rust 1.0 broker can show: the start-time check (an expression it cannot parse
/// is refused before anything starts) and SQL92 subscriptions end to end (heartbeat,
/// check, pulls typed SQL92). It cannot show matching by property: its filter decodes a
/// stored message's properties with `MessageDecoder::decode_properties` (rocketmq-protocol
/// 1.0.0, `message_decoder.rs` 844–863), which advances the buffer to the topic and then
/// reads at offsets counted from the record's start, so it finds no properties in any real
/// record; every property reads as null (`n IS NOT NULL`, `TAGS = 'x'` match nothing, `TRUE`
/// matches everything; checked by hand). The expression here does not depend on one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn a_sql92_subscription_is_checked_at_start_and_consumed_end_to_end() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let s = setup(2).await;
        let mut ids = std::collections::HashSet::new();
        for i in 0..20 {
            let msg = Message::new(&s.topic, format!("m-{i}"))
                .tags("TagA")
                .property("n", i.to_string());
            ids.insert(s.producer.send(msg).await.expect("send").msg_id);
        }
        // A broker cannot compile this: start fails, naming the broker and the expression,
        // before anything was registered.
        let bad_group = unique("cg_sql_bad");
        let err = sql92_consumer(&bad_group, &s.topic, "n >>= 5")
            .listener(Collector::default())
            .start()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), rmq_push_consumer::ErrorKind::Config, "{err:?}");
        let text = format!("{err:?}");
        assert!(
            text.contains("SubscriptionRefused") && text.contains("n >>= 5"),
            "{text}"
        );
        assert!(
            s.instance
                .find_consumer_id_list(&s.topic, &bad_group)
                .await
                .unwrap_or_default()
                .is_empty(),
            "a refused consumer registered"
        );
        let collector = Arc::new(Collector::default());
        let consumer = sql92_consumer(&unique("cg_sql"), &s.topic, "TRUE OR n > 100")
            .listener(Arc::clone(&collector))
            .start()
            .await
            .unwrap();
        wait_for("every message", Duration::from_secs(60), || {
            collector.unique() == ids.len()
        })
        .await;
        consumer.shutdown().await;
        let seen: std::collections::HashSet<String> =
            collector.seen.lock().unwrap().keys().cloned().collect();
        assert_eq!(seen, ids);
        assert_eq!(collector.duplicates(), 0);
        s.instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

/// Named AVG, so a broker runs AVG for it, but refuses to allocate on the client: queues
/// a consumer with it gets can only come from the broker.
#[derive(Debug)]
struct BrokerOnlyAvg;

impl rmq_push_consumer::AllocateMessageQueueStrategy for BrokerOnlyAvg {
    fn name(&self) -> &str {
        "AVG"
    }
    fn allocate(
        &self,
        _group: &str,
        _cid: &str,
        _all: &[rmq_client_core::MessageQueue],
        _cids: &[String],
    ) -> Result<Vec<rmq_client_core::MessageQueue>, rmq_push_consumer::AllocateError> {
        Err(rmq_push_consumer::AllocateError::Config {
            strategy: "AVG".into(),
            reason: "this test strategy never allocates on the client".into(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn server_side_assignment_splits_the_queues_between_members_and_consumes_everything_once() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let s = setup(8).await;
        let group = unique("cg_server_side");
        let c = Arc::new(Collector::default());
        let member = || {
            consumer(&group, &s.topic)
                .allocate_strategy(Arc::new(BrokerOnlyAvg))
                .server_side_assignment(true)
                .listener(Arc::clone(&c))
        };
        let first = member().start().await.unwrap();
        let mine = |m: &PushConsumer| {
            let mut q: Vec<i32> = m
                .assigned_queues()
                .into_iter()
                .filter(|q| q.topic == s.topic)
                .map(|q| q.queue_id)
                .collect();
            q.sort();
            q
        };
        wait_for(
            "all 8 queues from the broker",
            Duration::from_secs(30),
            || mine(&first).len() == 8,
        )
        .await;
        let second = member().start().await.unwrap();
        // The broker's AVG over two members: 0–3 to the first client id, 4–7 to the other.
        wait_for("4 + 4 queues", Duration::from_secs(60), || {
            mine(&first).len() == 4 && mine(&second).len() == 4
        })
        .await;
        let (a, b) = (mine(&first), mine(&second));
        let mut union: Vec<i32> = a.iter().chain(&b).copied().collect();
        union.sort();
        assert_eq!(union, (0..8).collect::<Vec<_>>(), "{a:?} {b:?}");
        assert!(a == [0, 1, 2, 3] || a == [4, 5, 6, 7], "{a:?}");
        let ids = produce(&s, 400, "TagA").await;
        wait_for("400 consumed", Duration::from_secs(60), || {
            c.unique() == 400
        })
        .await;
        assert_eq!(c.duplicates(), 0);
        assert!(
            ids.iter()
                .all(|id| c.seen.lock().unwrap().get(id) == Some(&1))
        );
        // A member that leaves: the other gets everything back from the broker.
        second.shutdown().await;
        wait_for("8 queues again", Duration::from_secs(60), || {
            mine(&first).len() == 8
        })
        .await;
        first.shutdown().await;
        // A strategy brokers do not run is refused before anything starts.
        let err = consumer(&group, &s.topic)
            .allocate_strategy(Arc::new(
                rmq_push_consumer::AllocateMessageQueueConsistentHash::default(),
            ))
            .server_side_assignment(true)
            .listener(Collector::default())
            .start()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AVG_BY_CIRCLE"), "{err}");
        s.instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn a_static_topic_is_consumed_once_through_its_logical_queues() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let instance = ClientInstance::get_or_create(&config("static")).unwrap();
        let topic = unique("rmq_static");
        rmq_client_core::testing::create_static_topic(&instance, &topic, 2).await;
        let logical = instance.subscribe_queues(&topic);
        assert_eq!(logical.len(), 2);
        assert!(
            logical.iter().all(|q| q.broker_name == "__syslo__global__"),
            "{logical:?}"
        );
        let s = Setup {
            producer: Producer::new(&instance, &unique("pg")).unwrap(),
            instance,
            topic,
        };
        let ids = produce(&s, 60, "TagA").await;
        let group = unique("cg_static");
        let c = Arc::new(Collector::default());
        let consumer = consumer(&group, &s.topic)
            .listener(Arc::clone(&c))
            .start()
            .await
            .unwrap();
        wait_for("60 consumed", Duration::from_secs(60), || c.unique() == 60).await;
        let mut owned: Vec<_> = consumer
            .assigned_queues()
            .into_iter()
            .filter(|q| q.topic == s.topic)
            .collect();
        owned.sort();
        assert_eq!(owned, logical);
        consumer.shutdown().await;
        assert_eq!(c.duplicates(), 0);
        assert!(
            ids.iter()
                .all(|id| c.seen.lock().unwrap().get(id) == Some(&1))
        );
        // The committed offsets are logical, per logical queue, and cover everything.
        let committed: i64 = committed_and_max(&s, &group)
            .await
            .into_iter()
            .map(|(mq, committed, max)| {
                assert_eq!(committed, Some(max), "{mq:?}");
                max
            })
            .sum();
        assert_eq!(committed, 60);
        s.instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn a_message_stream_acks_nacks_and_dropped_handles_each_come_out_right() {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(150), async {
        let s = setup(4).await;
        let ids = produce(&s, 300, "TagA").await;
        let group = unique("cg_stream");
        let consumer = consumer(&group, &s.topic)
            .message_stream()
            .start()
            .await
            .unwrap();
        let stream = consumer.messages().expect("a stream consumer");
        assert!(consumer.messages().is_none(), "taken once");
        // Every 50th message is nacked (delay level 1, 1 s) and every 75th dropped on its
        // first delivery; both must come back, once, through the retry topic.
        // Message number (from the body) → the reconsume times of each delivery; and the
        // message ids (a redelivery keeps its id).
        let deliveries: Arc<Mutex<HashMap<usize, Vec<i32>>>> = Arc::default();
        let msg_ids: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
        let (seen, seen_ids) = (Arc::clone(&deliveries), Arc::clone(&msg_ids));
        let app = tokio::spawn(stream.for_each_concurrent(16, move |m| {
            let (seen, seen_ids) = (Arc::clone(&seen), Arc::clone(&seen_ids));
            async move {
                seen_ids.lock().unwrap().insert(m.msg_id().into_owned());
                let body = String::from_utf8_lossy(&m.body).into_owned();
                let n: usize = body.trim_start_matches("m-").parse().unwrap();
                let first = m.reconsume_times == 0;
                seen.lock()
                    .unwrap()
                    .entry(n)
                    .or_default()
                    .push(m.reconsume_times);
                if first && n % 50 == 0 {
                    m.nack(1);
                } else if first && n % 75 == 0 {
                    drop(m);
                } else {
                    m.ack();
                }
            }
        }));
        let redelivered: Vec<usize> = (0..300).filter(|n| n % 50 == 0 || n % 75 == 0).collect();
        wait_for("every message acked", Duration::from_secs(90), || {
            let d = deliveries.lock().unwrap();
            d.len() == 300 && d.values().map(Vec::len).sum::<usize>() == 300 + redelivered.len()
        })
        .await;
        consumer.shutdown().await;
        // The stream ends with the consumer.
        tokio::time::timeout(Duration::from_secs(10), app)
            .await
            .expect("the stream ended after shutdown")
            .unwrap();
        let d = std::mem::take(&mut *deliveries.lock().unwrap());
        for n in 0..300 {
            let expect = if redelivered.contains(&n) {
                vec![0, 1]
            } else {
                vec![0]
            };
            assert_eq!(d.get(&n), Some(&expect), "message {n}");
        }
        let got_ids = std::mem::take(&mut *msg_ids.lock().unwrap());
        assert_eq!(
            got_ids,
            ids.into_iter().collect::<std::collections::HashSet<_>>()
        );
        s.instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

fn pop_consumer(group: &str, topic: &str) -> rmq_push_consumer::PushConsumerBuilder {
    consumer(group, topic)
        .pop_mode(true)
        .pop_invisible_time(Duration::from_secs(20))
        .membership_check_interval(Some(Duration::from_millis(500)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn pop_mode_two_consumers_ack_a_10_000_message_backlog_exactly_once() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let s = setup(4).await;
        let ids = produce(&s, 10_000, "TagA").await;
        let group = unique("cg_pop");
        let (a, b) = (
            Arc::new(Collector::default()),
            Arc::new(Collector::default()),
        );
        let ca = pop_consumer(&group, &s.topic)
            .listener(Arc::clone(&a))
            .start()
            .await
            .unwrap();
        let cb = pop_consumer(&group, &s.topic)
            .message_stream()
            .start()
            .await
            .unwrap();
        // The second consumer takes its messages as a stream and acks each one.
        let stream = cb.messages().unwrap();
        let b2 = Arc::clone(&b);
        let app = tokio::spawn(futures::StreamExt::for_each_concurrent(
            stream,
            16,
            move |m| {
                let b = Arc::clone(&b2);
                async move {
                    b.record(std::slice::from_ref(&*m));
                    m.ack();
                }
            },
        ));
        wait_for("10 000 messages", Duration::from_secs(90), || {
            let mut seen = a.seen.lock().unwrap().clone();
            for (k, v) in b.seen.lock().unwrap().iter() {
                *seen.entry(k.clone()).or_default() += v;
            }
            seen.len() == 10_000
        })
        .await;
        // Both popped (every member pops every queue: queue id −1 on the broker), and
        // each message went to one of them, once.
        let popped = |c: &PushConsumer| {
            c.assigned_queues()
                .iter()
                .any(|q| q.topic == s.topic && q.queue_id == -1)
        };
        assert!(
            popped(&ca) && popped(&cb),
            "{:?} {:?}",
            ca.assigned_queues(),
            cb.assigned_queues()
        );
        // The running info (GET_CONSUMER_RUNNING_INFO through the broker) lists the popped
        // queue in mqPopTable, as Java members do.
        let mq = s.instance.subscribe_queues(&s.topic)[0].clone();
        let addr = s.instance.master_addr_of(&mq).await.unwrap();
        let info = s
            .instance
            .api()
            .get_consumer_running_info(&addr, &group, ca.client_id(), Duration::from_secs(5))
            .await
            .unwrap();
        let pop_queue = rmq_client_core::MessageQueue::new(&s.topic, &mq.broker_name, -1);
        let q = info
            .mq_pop_table
            .get(&pop_queue)
            .expect("popped queue in mqPopTable");
        assert!(!q.droped && q.last_pop_timestamp > 0, "{q:?}");
        // Nothing more arrives: every message was acknowledged.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ra = ca.shutdown().await;
        let rb = cb.shutdown().await;
        app.await.unwrap();
        assert_eq!((ra.messages_left, rb.messages_left), (0, 0));
        let mut seen = a.seen.lock().unwrap().clone();
        for (k, v) in b.seen.lock().unwrap().iter() {
            *seen.entry(k.clone()).or_default() += v;
        }
        assert_eq!(seen.len(), 10_000);
        assert!(ids.iter().all(|id| seen.get(id) == Some(&1)), "duplicates");
        assert!(
            a.unique() > 0 && b.unique() > 0,
            "both consumed: {} / {}",
            a.unique(),
            b.unique()
        );
        s.instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "real broker: run by cargo xtask ci"]
async fn pop_mode_nack_comes_back_after_its_delay_and_in_progress_keeps_a_message() {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(120), async {
        let s = setup(2).await;
        let ids = produce(&s, 20, "TagA").await;
        let group = unique("cg_popnack");
        let consumer = pop_consumer(&group, &s.topic)
            .pop_invisible_time(Duration::from_secs(5))
            .message_stream()
            .start()
            .await
            .unwrap();
        let stream = consumer.messages().unwrap();
        // Message number → (reconsume times, when) of each delivery.
        type Deliveries = HashMap<usize, Vec<(i32, Instant)>>;
        let deliveries: Arc<Mutex<Deliveries>> = Arc::default();
        let in_progress: Arc<Mutex<Vec<String>>> = Arc::default();
        let (seen, notes) = (Arc::clone(&deliveries), Arc::clone(&in_progress));
        let app = tokio::spawn(stream.for_each_concurrent(16, move |m| {
            let (seen, notes) = (Arc::clone(&seen), Arc::clone(&notes));
            async move {
                let n: usize = String::from_utf8_lossy(&m.body)
                    .trim_start_matches("m-")
                    .parse()
                    .unwrap();
                seen.lock()
                    .unwrap()
                    .entry(n)
                    .or_default()
                    .push((m.reconsume_times, Instant::now()));
                if n % 5 == 0 && m.reconsume_times == 0 {
                    m.nack(0);
                } else if n == 1 {
                    // A slow message: held for 8 s (past its 5 s invisible time), kept
                    // with in_progress every 2 s, then acked.
                    for _ in 0..4 {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        let r = m.in_progress().await;
                        notes.lock().unwrap().push(format!("{r:?}"));
                    }
                    m.ack();
                } else {
                    m.ack();
                }
            }
        }));
        let nacked: Vec<usize> = (0..20).filter(|n| n % 5 == 0).collect();
        wait_for(
            "every message, the nacked ones twice",
            Duration::from_secs(90),
            || {
                let d = deliveries.lock().unwrap();
                d.len() == 20
                    && nacked
                        .iter()
                        .all(|n| d.get(n).is_some_and(|v| v.len() == 2))
            },
        )
        .await;
        // Give a wrongly redelivered slow message time to show up.
        tokio::time::sleep(Duration::from_secs(3)).await;
        consumer.shutdown().await;
        app.await.unwrap();
        let d = std::mem::take(&mut *deliveries.lock().unwrap());
        for n in 0..20 {
            let v = &d[&n];
            if nacked.contains(&n) {
                // Back once, one more delivery counted, after the first pop delay (10 s).
                assert_eq!((v[0].0, v[1].0), (0, 1), "message {n}");
                let after = v[1].1 - v[0].1;
                assert!(
                    after >= Duration::from_secs(9),
                    "message {n} back after {after:?}"
                );
            } else {
                assert_eq!(v.len(), 1, "message {n} delivered {v:?}");
            }
        }
        // in_progress either extended the invisible time or, on rocketmq-rust 1.0, reports
        // the broker's refusal; either way the message was consumed once.
        let notes = in_progress.lock().unwrap().clone();
        assert_eq!(notes.len(), 4);
        assert!(
            notes
                .iter()
                .all(|n| n == "Ok(())" || n.contains("SYSTEM_ERROR")),
            "{notes:?}"
        );
        assert_eq!(ids.len(), 20);
        s.instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}
