//! A user-written allocation strategy plugged into a push consumer: each member gets whole
//! brokers (all queues of a broker go to one member), which keeps a member's connections
//! few when a group spans many brokers. Produces `COUNT` messages to a new topic, consumes
//! them with two members using the strategy, and prints which queues each member owned.
//!
//! ```sh
//! cargo xtask broker start
//! RMQ_NAMESRV_ADDR=127.0.0.1:9876 cargo run -p rmq-push-consumer --example custom_strategy -- 1000
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_client_core::{ClientConfig, ClientInstance, Message, Producer};
use rmq_push_consumer::{
    AllocateError, AllocateMessageQueueStrategy, ConsumeConcurrentlyStatus, ConsumeFromWhere,
    MessageQueue, PushConsumer, check_allocate_args, listener_fn,
};

/// Whole brokers per member: brokers sorted by name are dealt to the members (sorted client
/// ids) in turn; with more members than brokers the extra members own nothing.
#[derive(Debug)]
struct ByBroker;

impl AllocateMessageQueueStrategy for ByBroker {
    fn name(&self) -> &str {
        "BY_BROKER"
    }

    fn allocate(
        &self,
        _consumer_group: &str,
        current_cid: &str,
        mq_all: &[MessageQueue],
        cid_all: &[String],
    ) -> Result<Vec<MessageQueue>, AllocateError> {
        // The checks every Java strategy makes; `false`: this client is not a member.
        if !check_allocate_args(current_cid, mq_all, cid_all)? {
            return Ok(Vec::new());
        }
        let me = cid_all
            .iter()
            .position(|c| c == current_cid)
            .expect("checked");
        let mut brokers: BTreeMap<&str, Vec<MessageQueue>> = BTreeMap::new();
        for mq in mq_all {
            brokers.entry(&mq.broker_name).or_default().push(mq.clone());
        }
        Ok(brokers
            .into_values()
            .enumerate()
            .filter(|(i, _)| i % cid_all.len() == me)
            .flat_map(|(_, queues)| queues)
            .collect())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(1000);
    let namesrv = std::env::var("RMQ_NAMESRV_ADDR")
        .or_else(|_| std::env::var("NAMESRV_ADDR"))
        .map_err(|_| "set RMQ_NAMESRV_ADDR (or NAMESRV_ADDR) to the name server")?;
    let stamp = rmq_client_core::now_millis();
    let (topic, group) = (
        format!("custom_strategy_{stamp}"),
        format!("custom_strategy_g_{stamp}"),
    );

    let instance = ClientInstance::get_or_create(
        &ClientConfig::default()
            .namesrv_addr(&namesrv)
            .instance_name(format!("custom-strategy-producer-{stamp}")),
    )?;
    instance.create_topic(&topic, 4).await?;
    let producer = Producer::new(&instance, &format!("custom_strategy_pg_{stamp}"))?;
    for i in 0..count {
        producer
            .send(Message::new(&topic, format!("message {i}")))
            .await?;
    }

    let seen = Arc::new(Mutex::new(HashSet::new()));
    let all_in = Arc::new(tokio::sync::Notify::new());
    let mut members = Vec::new();
    for _ in 0..2 {
        let (seen, all_in) = (Arc::clone(&seen), Arc::clone(&all_in));
        members.push(
            PushConsumer::builder(&group)
                .namesrv_addr(&namesrv)
                .subscribe(&topic, "*")
                .consume_from_where(ConsumeFromWhere::FirstOffset)
                .allocate_strategy(Arc::new(ByBroker))
                .listener(listener_fn(move |msgs, _ctx| {
                    let (seen, all_in) = (Arc::clone(&seen), Arc::clone(&all_in));
                    async move {
                        let mut s = seen.lock().expect("not poisoned");
                        s.extend(msgs.iter().map(|m| m.msg_id().into_owned()));
                        if s.len() >= count {
                            all_in.notify_one();
                        }
                        ConsumeConcurrentlyStatus::ConsumeSuccess
                    }
                }))
                .start()
                .await?,
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), all_in.notified()).await;
    for (i, m) in members.iter().enumerate() {
        let owned: Vec<String> = m
            .assigned_queues()
            .iter()
            .filter(|q| q.topic == topic)
            .map(|q| format!("{}#{}", q.broker_name, q.queue_id))
            .collect();
        println!("member {i} ({}) owns {owned:?}", m.client_id());
    }
    let consumed = seen.lock().expect("not poisoned").len();
    println!("consumed {consumed} of {count}");
    for m in &members {
        m.shutdown().await;
    }
    producer.shutdown().await;
    instance.shutdown(Duration::from_secs(2)).await;
    if consumed != count {
        return Err(format!("consumed {consumed} of {count}").into());
    }
    Ok(())
}
