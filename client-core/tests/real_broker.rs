//! Against the real name server and broker started by `cargo xtask ci`. `#[ignore]`d for
//! plain `cargo test`; the xtask runs them with `--ignored`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_client_core::api::pull_sys_flag;
use rmq_client_core::header::{
    ConsumerData, PullMessageRequestHeader, QueryConsumerOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};
use rmq_client_core::testing::{config, create_topic, env, unique, wait_route};
use rmq_client_core::{
    ClientError, ClientInstance, ConsumerInner, ExpressionType, Message, MessageQueue, Producer,
    PullStatus, SubscriptionData,
};

const LIMIT: Duration = Duration::from_secs(90);

fn pull_header(
    group: &str,
    mq: &MessageQueue,
    offset: i64,
    expression: &str,
) -> PullMessageRequestHeader<'static> {
    PullMessageRequestHeader {
        consumer_group: group.to_owned().into(),
        topic: mq.topic.clone().into(),
        queue_id: mq.queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: pull_sys_flag::build(false, false, true, false),
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: Some(expression.to_owned().into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
        bname: Some(mq.broker_name.clone().into()),
    }
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn produce_then_pull_back_bodies_tags_keys_and_offsets() {
    tokio::time::timeout(LIMIT, async {
        let instance = ClientInstance::get_or_create(&config("pp")).unwrap();
        let topic = unique("rmq_core_pull");
        create_topic(&instance, &topic, 4).await;
        wait_route(&instance, &topic, 4).await;
        let producer = Producer::new(&instance, &unique("pg")).unwrap();
        let mut sent = HashMap::new();
        for i in 0..40 {
            let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
            let msg = Message::new(&topic, format!("body-{i}"))
                .tags(tag)
                .keys([format!("k{i}"), "common".into()]);
            let r = producer.send(msg).await.expect("send");
            assert_eq!(r.queue.topic, topic);
            sent.insert(r.msg_id.clone(), (i, r.queue.clone(), r.queue_offset));
        }
        // Every queue got some messages, with consecutive offsets from 0.
        let group = unique("cg_pull");
        let mut seen = 0;
        for mq in instance.subscribe_queues(&topic) {
            let addr = instance
                .find_broker_address_in_subscribe(&mq.broker_name, 0, false)
                .unwrap()
                .addr;
            let mut r = instance
                .api()
                .pull_message(
                    &addr,
                    &pull_header(&group, &mq, 0, "*"),
                    Duration::from_secs(10),
                )
                .await
                .expect("pull");
            assert_eq!(r.status, PullStatus::Found, "{mq:?}");
            r.process(&mq, None);
            assert_eq!(r.next_begin_offset, r.messages.len() as i64);
            assert_eq!(r.max_offset, r.messages.len() as i64);
            for (expect_offset, m) in r.messages.iter().enumerate() {
                let (i, q, off) = sent
                    .get(&*m.msg_id())
                    .unwrap_or_else(|| panic!("unknown msg {}", m.msg_id()));
                assert_eq!(q, &mq);
                assert_eq!(m.queue_offset, *off);
                assert_eq!(m.queue_offset, expect_offset as i64);
                assert_eq!(&m.body[..], format!("body-{i}").as_bytes());
                assert_eq!(m.tags(), Some(if i % 2 == 0 { "TagA" } else { "TagB" }));
                assert_eq!(
                    m.keys().collect::<Vec<_>>(),
                    [format!("k{i}").as_str(), "common"]
                );
                assert_eq!(*m.topic, *topic);
                assert_eq!(*m.broker_name, *mq.broker_name);
                // Java's MAX_OFFSET property is a field here; the properties are untouched.
                assert_eq!(m.queue_max_offset, Some(r.max_offset));
                assert_eq!(m.queue_min_offset, Some(r.min_offset));
                assert_eq!(m.property("MAX_OFFSET"), None);
                seen += 1;
            }
            // Caught up: the next pull finds nothing new.
            let r = instance
                .api()
                .pull_message(
                    &addr,
                    &pull_header(&group, &mq, r.next_begin_offset, "*"),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
            assert_eq!(r.status, PullStatus::NoNewMsg);
        }
        assert_eq!(seen, 40);

        // Tag filtering at the broker plus the exact re-filter on the client, on a queue
        // that holds a TagA message (the producer starts on a random queue).
        let mq = sent
            .values()
            .find(|(i, _, _)| i % 2 == 0)
            .map(|(_, q, _)| q.clone())
            .unwrap();
        let addr = instance
            .find_broker_address_in_publish(&mq.broker_name)
            .unwrap();
        let sub = SubscriptionData::build(&topic, Some("TagA"), ExpressionType::Tag).unwrap();
        let mut r = instance
            .api()
            .pull_message(
                &addr,
                &pull_header(&group, &mq, 0, "TagA"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        r.process(&mq, Some(&sub));
        assert!(!r.messages.is_empty());
        assert!(r.messages.iter().all(|m| m.tags() == Some("TagA")));
        producer.shutdown().await;
        instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn commit_and_query_an_offset() {
    tokio::time::timeout(LIMIT, async {
        let instance = ClientInstance::get_or_create(&config("off")).unwrap();
        let topic = unique("rmq_core_offset");
        create_topic(&instance, &topic, 2).await;
        wait_route(&instance, &topic, 2).await;
        let mq = instance.subscribe_queues(&topic)[1].clone();
        let addr = instance
            .find_broker_address_in_publish(&mq.broker_name)
            .unwrap();
        let group = unique("cg_off");
        // Brokers keep offsets only for subscription groups they know: a consumer's first
        // heartbeat creates the group (autoCreateSubscriptionGroup), as in real use.
        instance
            .register_consumer(Arc::new(RecordingConsumer {
                group: group.clone(),
                topic: topic.clone(),
                queues: Mutex::new(Vec::new()),
            }) as Arc<dyn ConsumerInner>)
            .unwrap();
        instance.send_heartbeat_to_all_brokers().await;
        let query = QueryConsumerOffsetRequestHeader {
            consumer_group: group.clone(),
            topic: topic.clone(),
            queue_id: mq.queue_id,
            set_zero_if_not_found: Some(false),
            bname: Some(mq.broker_name.clone()),
        };
        let before = instance
            .api()
            .query_consumer_offset(&addr, &query, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            before.is_none() || before == Some(0),
            "fresh group has offset {before:?}"
        );
        for commit in [7i64, 42] {
            let update = UpdateConsumerOffsetRequestHeader {
                consumer_group: group.clone(),
                topic: topic.clone(),
                queue_id: mq.queue_id,
                commit_offset: commit,
                bname: Some(mq.broker_name.clone()),
            };
            instance
                .api()
                .update_consumer_offset(&addr, &update, Duration::from_secs(5))
                .await
                .unwrap();
            let got = instance
                .api()
                .query_consumer_offset(&addr, &query, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(got, Some(commit));
        }
        instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

/// A consumer that only registers a subscription and records what the instance tells it.
struct RecordingConsumer {
    group: String,
    topic: String,
    queues: Mutex<Vec<MessageQueue>>,
}

impl ConsumerInner for RecordingConsumer {
    fn group_name(&self) -> String {
        self.group.clone()
    }
    fn consumer_data(&self) -> ConsumerData {
        let sub =
            SubscriptionData::build_with_version(&self.topic, Some("*"), ExpressionType::Tag, 1)
                .unwrap();
        ConsumerData::new(
            &self.group,
            rmq_client_core::ConsumeType::ConsumePassively,
            rmq_client_core::MessageModel::Clustering,
            rmq_client_core::ConsumeFromWhere::LastOffset,
            vec![sub],
        )
    }
    fn subscribed_topics(&self) -> Vec<String> {
        vec![self.topic.clone()]
    }
    fn update_topic_subscribe_info(&self, _topic: &str, queues: &[MessageQueue]) {
        *self.queues.lock().unwrap() = queues.to_vec();
    }
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn two_instances_in_one_group_see_each_other_and_a_second_registration_is_refused() {
    tokio::time::timeout(LIMIT, async {
        let topic = unique("rmq_core_ids");
        let group = unique("cg_ids");
        let mut instances = Vec::new();
        let mut consumers = Vec::new();
        for name in ["a", "b"] {
            let instance = ClientInstance::get_or_create(&config(name)).unwrap();
            if instances.is_empty() {
                create_topic(&instance, &topic, 3).await;
            }
            let c = Arc::new(RecordingConsumer {
                group: group.clone(),
                topic: topic.clone(),
                queues: Mutex::new(Vec::new()),
            });
            instance
                .register_consumer(Arc::clone(&c) as Arc<dyn ConsumerInner>)
                .unwrap();
            wait_route(&instance, &topic, 3).await;
            instance.send_heartbeat_to_all_brokers().await;
            instances.push(instance);
            consumers.push(c);
        }
        // The instance told each consumer its queues.
        for c in &consumers {
            assert_eq!(c.queues.lock().unwrap().len(), 3);
        }
        let err = instances[0]
            .register_consumer(Arc::new(RecordingConsumer {
                group: group.clone(),
                topic: topic.clone(),
                queues: Mutex::new(Vec::new()),
            }))
            .unwrap_err();
        assert!(err.to_string().contains(&group), "{err}");
        let mut ids = Vec::new();
        for _ in 0..50 {
            ids = instances[0]
                .find_consumer_id_list(&topic, &group)
                .await
                .unwrap_or_default();
            if ids.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ids.sort();
        let mut expect: Vec<String> = instances.iter().map(|i| i.client_id().to_owned()).collect();
        expect.sort();
        assert_eq!(ids, expect);
        // Unregistering one leaves the other alone in the group.
        instances[1].unregister_consumer(&group).await;
        for _ in 0..50 {
            ids = instances[0]
                .find_consumer_id_list(&topic, &group)
                .await
                .unwrap_or_default();
            if ids.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(ids, [instances[0].client_id().to_owned()]);
        for i in instances {
            i.shutdown(Duration::from_secs(2)).await;
        }
    })
    .await
    .expect("timed out");
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn a_new_topic_and_a_new_queue_count_are_seen_after_a_refresh() {
    tokio::time::timeout(LIMIT, async {
        let instance = ClientInstance::get_or_create(&config("route")).unwrap();
        let topic = unique("rmq_core_route");
        let err = instance.update_topic_route(&topic).await.unwrap_err();
        assert!(
            matches!(err, ClientError::TopicRouteNotFound { .. }),
            "{err}"
        );
        create_topic(&instance, &topic, 2).await;
        wait_route(&instance, &topic, 2).await;
        assert!(
            !instance.update_topic_route(&topic).await.unwrap(),
            "unchanged route reported as changed"
        );
        create_topic(&instance, &topic, 6).await;
        wait_route(&instance, &topic, 6).await;
        let queues = instance.subscribe_queues(&topic);
        assert_eq!(
            queues.iter().map(|q| q.queue_id).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        let route = instance.topic_route(&topic).unwrap();
        assert_eq!(
            route.broker_datas[0].master_addr(),
            Some(env("RMQ_BROKER_ADDR").as_str())
        );
        instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn a_batch_send_stores_every_message_with_its_own_id() {
    tokio::time::timeout(LIMIT, async {
        let instance = ClientInstance::get_or_create(&config("batch")).unwrap();
        let topic = unique("rmq_core_batch");
        create_topic(&instance, &topic, 1).await;
        wait_route(&instance, &topic, 1).await;
        let producer = Producer::new(&instance, &unique("pg_batch")).unwrap();
        let msgs: Vec<Message> = (0..10)
            .map(|i| Message::new(&topic, format!("b-{i}")).tags("TagB"))
            .collect();
        let r = producer.send_batch(msgs).await.unwrap();
        let ids: Vec<String> = r.msg_id.split(',').map(str::to_owned).collect();
        assert_eq!(ids.len(), 10);
        let mq = instance.subscribe_queues(&topic)[0].clone();
        let addr = instance
            .find_broker_address_in_publish(&mq.broker_name)
            .unwrap();
        // The broker dispatches to the consume queue shortly after storing: pull until all
        // ten are there (bounded).
        let mut messages = Vec::new();
        for _ in 0..50 {
            let mut r = instance
                .api()
                .pull_message(
                    &addr,
                    &pull_header(&unique("cg_b"), &mq, messages.len() as i64, "*"),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
            r.process(&mq, None);
            messages.extend(r.messages);
            if messages.len() >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(messages.len(), 10);
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m.queue_offset, i as i64);
            assert_eq!(m.msg_id(), ids[i], "each message keeps its own UNIQ_KEY");
            assert_eq!(&m.body[..], format!("b-{i}").as_bytes());
            assert_eq!(m.tags(), Some("TagB"));
        }
        producer.shutdown().await;
        instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

/// The group's subscription table as the broker at `addr` holds it.
async fn broker_subscriptions(instance: &ClientInstance, addr: &str, group: &str) -> Vec<String> {
    let conn = instance
        .api()
        .get_consumer_connection_list(addr, group, Duration::from_secs(5))
        .await
        .unwrap();
    conn.subscription_table.into_keys().collect()
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn heartbeat_v2_sends_subscriptions_until_acknowledged_then_only_the_fingerprint() {
    tokio::time::timeout(LIMIT, async {
        let instance =
            ClientInstance::get_or_create(&config("hbv2").use_heartbeat_v2(true)).unwrap();
        let topic = unique("rmq_core_hbv2");
        let group = unique("cg_hbv2");
        create_topic(&instance, &topic, 1).await;
        instance
            .register_consumer(Arc::new(RecordingConsumer {
                group: group.clone(),
                topic: topic.clone(),
                queues: Mutex::new(Vec::new()),
            }) as Arc<dyn ConsumerInner>)
            .unwrap();
        wait_route(&instance, &topic, 1).await;
        let broker = env("RMQ_BROKER_ADDR");
        // First full heartbeat: the broker stores the group's fingerprint but answers
        // IS_SUB_CHANGE (it had none), so the next one is full as well; that one is
        // acknowledged.
        instance.send_heartbeat_to_all_brokers().await;
        assert!(instance.heartbeat_v2_brokers().is_empty());
        instance.send_heartbeat_to_all_brokers().await;
        assert_eq!(
            instance.heartbeat_v2_brokers(),
            std::slice::from_ref(&broker)
        );
        // Light heartbeats from now on: the broker keeps the subscriptions it has.
        for _ in 0..2 {
            instance.send_heartbeat_to_all_brokers().await;
            assert_eq!(
                instance.heartbeat_v2_brokers(),
                std::slice::from_ref(&broker)
            );
        }
        assert!(
            broker_subscriptions(&instance, &broker, &group)
                .await
                .contains(&topic)
        );
        // What the light heartbeat is on the wire, and what a broker answers to a light
        // heartbeat whose fingerprint it does not hold.
        let data = instance.heartbeat_data();
        let fingerprint = data.fingerprint();
        let light = data.clone().into_v2(fingerprint, true);
        assert!(light.consumer_data_set[0].subscription_data_set.is_empty());
        let api = instance.api();
        let same = api
            .send_heartbeat(&broker, &light, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(same.supports_v2 && !same.sub_change, "{same:?}");
        let other = data.clone().into_v2(fingerprint.wrapping_add(1), true);
        let changed = api
            .send_heartbeat(&broker, &other, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(changed.supports_v2 && changed.sub_change, "{changed:?}");
        // The instance notices on its next round (its light heartbeat is answered
        // IS_SUB_CHANGE) and sends the subscriptions again at once.
        instance.send_heartbeat_to_all_brokers().await;
        assert!(
            broker_subscriptions(&instance, &broker, &group)
                .await
                .contains(&topic)
        );
        instance.send_heartbeat_to_all_brokers().await;
        assert_eq!(
            instance.heartbeat_v2_brokers(),
            std::slice::from_ref(&broker)
        );
        instance.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("timed out");
}

/// Pops every message of `topic` visible now (queue −1: all queues of the broker), until
/// `want` arrived or a pop came back empty after they all did.
async fn pop_until(
    kernel: &rmq_client_core::pop::PopKernel,
    mq: &MessageQueue,
    sub: &SubscriptionData,
    want: usize,
    limit: Duration,
) -> Vec<rmq_client_core::MessageExt> {
    use rmq_client_core::pop::{ConsumeInitMode, PopSpec};
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < want && tokio::time::Instant::now() < deadline {
        let r = kernel
            .pop(PopSpec {
                mq,
                subscription: sub,
                max_msg_nums: 32,
                invisible_time: Duration::from_secs(60),
                poll_time: Duration::from_secs(2),
                init_mode: ConsumeInitMode::Min,
            })
            .await
            .expect("pop");
        got.extend(r.messages);
    }
    got
}

#[tokio::test]
#[ignore = "real broker: run by cargo xtask ci"]
async fn pop_ack_and_change_invisible_time_on_a_real_broker() {
    use rmq_client_core::pop::{PopKernel, PopStatus};
    tokio::time::timeout(Duration::from_secs(120), async {
        let instance = ClientInstance::get_or_create(&config("pop")).unwrap();
        let topic = unique("rmq_core_pop");
        create_topic(&instance, &topic, 2).await;
        wait_route(&instance, &topic, 2).await;
        let producer = Producer::new(&instance, &unique("pg")).unwrap();
        for i in 0..10 {
            let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
            producer
                .send(Message::new(&topic, format!("pop-{i}")).tags(tag))
                .await
                .expect("send");
        }
        let group = unique("cg_pop");
        let kernel = PopKernel::new(&instance, &group);
        let broker = instance.subscribe_queues(&topic)[0].broker_name.clone();
        let all = MessageQueue::new(&topic, &broker, -1);
        let sub = SubscriptionData::build(&topic, Some("*"), ExpressionType::Tag).unwrap();
        let got = pop_until(&kernel, &all, &sub, 10, Duration::from_secs(30)).await;
        assert_eq!(got.len(), 10, "{got:?}");
        for m in &got {
            let r = m.receipt.as_ref().expect("receipt");
            let h = r.handle();
            assert_eq!((h.retry(), h.broker_name()), ("0", broker.as_str()));
            assert_eq!((h.queue_id, h.queue_offset), (m.queue_id, m.queue_offset));
            assert_eq!(&*m.topic, topic);
            assert!(!r.is_expired(rmq_client_core::now_millis()));
        }
        // All invisible now.
        let again = pop_until(&kernel, &all, &sub, 1, Duration::from_secs(3)).await;
        assert!(again.is_empty(), "{again:?}");
        // Nine acked in one batch; the tenth made visible again in 5 s.
        let refs: Vec<&rmq_client_core::MessageExt> = got[..9].iter().collect();
        assert_eq!(kernel.ack(&refs).await, 9);
        let last = &got[9];
        let receipt = last.receipt.as_ref().unwrap();
        let before = receipt.handle();
        match receipt.change_invisible_time(Duration::from_secs(5)).await {
            Ok(()) => {
                // A broker that writes the new check point: a new handle, and the message
                // comes back (through the pop-retry topic) once more delivered.
                let after = receipt.handle();
                assert_ne!(before.as_str(), after.as_str());
                assert_eq!(
                    (after.ck_queue_offset, after.invisible_time),
                    (last.queue_offset, 5000)
                );
                let back = pop_until(&kernel, &all, &sub, 1, Duration::from_secs(60)).await;
                assert_eq!(back.len(), 1, "{back:?}");
                assert_eq!(
                    (&back[0].body, &*back[0].topic),
                    (&last.body, topic.as_str())
                );
                assert!(back[0].receipt.as_ref().unwrap().ack().await.expect("ack"));
            }
            Err(e) => {
                // rocketmq-rust 1.0 cannot store a check point (it sets the absolute revive
                // time as a relative timer delay: "timer delay exceeds the configured
                // maximum"), so it refuses with SYSTEM_ERROR. The old handle stays
                // valid and acknowledges the message.
                assert_eq!(
                    e.response_code(),
                    Some(rmq_remoting::ResponseCode::SYSTEM_ERROR),
                    "{e}"
                );
                assert_eq!(receipt.handle(), before);
                assert!(receipt.ack().await.expect("ack"));
            }
        }
        let r = kernel
            .pop(rmq_client_core::pop::PopSpec {
                mq: &all,
                subscription: &sub,
                max_msg_nums: 32,
                invisible_time: Duration::from_secs(60),
                poll_time: Duration::from_secs(3),
                init_mode: rmq_client_core::pop::ConsumeInitMode::Min,
            })
            .await
            .expect("pop");
        assert_eq!(r.status, PopStatus::NoNewMsg, "{:?}", r.messages);
    })
    .await
    .expect("within the limit");
}
