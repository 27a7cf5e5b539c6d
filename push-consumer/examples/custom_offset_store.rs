//! A user-written offset store plugged into a push consumer. `SharedMapStore` keeps the
//! committed offsets in a map the application owns (a stand-in for a database table):
//! a first consumer consumes part of a topic and shuts down cleanly; a second consumer of
//! the same group with the same store goes on where the first stopped, so no message is
//! consumed twice and none is skipped.
//!
//! ```sh
//! cargo xtask broker start
//! RMQ_NAMESRV_ADDR=127.0.0.1:9876 cargo run -p rmq-push-consumer --example custom_offset_store -- 1000
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_client_core::{ClientConfig, ClientInstance, Message, Producer};
use rmq_push_consumer::{
    BoxFuture, ConsumeConcurrentlyStatus, ConsumeFromWhere, MessageQueue, OffsetStore,
    OffsetStoreError, PushConsumer, ReadOffsetType, listener_fn,
};

/// The durable side: what survives a consumer (here, a map the application keeps).
type Durable = Arc<Mutex<HashMap<MessageQueue, i64>>>;

/// An offset store over [`Durable`]: the consumer updates the in-memory table on every
/// consumed batch; `persist` / `persist_all` copy it to the durable map (every 5 s and at
/// shutdown); `read_offset` from the store reads the durable map.
#[derive(Debug, Default)]
struct SharedMapStore {
    memory: Mutex<HashMap<MessageQueue, i64>>,
    durable: Durable,
}

impl SharedMapStore {
    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<MessageQueue, i64>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn durable(&self) -> std::sync::MutexGuard<'_, HashMap<MessageQueue, i64>> {
        self.durable.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OffsetStore for SharedMapStore {
    fn load(&self) -> BoxFuture<'_, Result<(), OffsetStoreError>> {
        // Nothing to load up front: offsets are read from the durable map per queue.
        Box::pin(async { Ok(()) })
    }

    fn update_offset(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        let mut m = self.memory();
        let e = m.entry(mq.clone()).or_insert(offset);
        if !increase_only || offset > *e {
            *e = offset;
        }
    }

    fn read_offset<'a>(
        &'a self,
        mq: &'a MessageQueue,
        read_type: ReadOffsetType,
    ) -> BoxFuture<'a, Result<Option<i64>, OffsetStoreError>> {
        Box::pin(async move {
            let in_memory = self.memory().get(mq).copied();
            Ok(match read_type {
                ReadOffsetType::ReadFromMemory => in_memory,
                ReadOffsetType::MemoryFirstThenStore if in_memory.is_some() => in_memory,
                _ => {
                    let stored = self.durable().get(mq).copied();
                    if let Some(o) = stored {
                        self.memory().insert(mq.clone(), o);
                    }
                    stored
                }
            })
        })
    }

    fn persist_all<'a>(
        &'a self,
        mqs: &'a [MessageQueue],
    ) -> BoxFuture<'a, Result<(), OffsetStoreError>> {
        Box::pin(async move {
            for mq in mqs {
                self.persist(mq).await?;
            }
            Ok(())
        })
    }

    fn persist<'a>(&'a self, mq: &'a MessageQueue) -> BoxFuture<'a, Result<(), OffsetStoreError>> {
        Box::pin(async move {
            if let Some(o) = self.memory().get(mq).copied() {
                self.durable().insert(mq.clone(), o);
            }
            Ok(())
        })
    }

    fn remove_offset(&self, mq: &MessageQueue) {
        self.memory().remove(mq);
    }

    fn clone_offset_table(&self, topic: Option<&str>) -> HashMap<MessageQueue, i64> {
        self.memory()
            .iter()
            .filter(|(q, _)| topic.is_none_or(|t| q.topic == t))
            .map(|(q, o)| (q.clone(), *o))
            .collect()
    }
}

/// Consumes with a fresh consumer over `durable` until `until` unique messages were seen
/// in all; returns how many this consumer received.
async fn consume_until(
    namesrv: &str,
    topic: &str,
    group: &str,
    durable: &Durable,
    seen: &Arc<Mutex<HashSet<String>>>,
    until: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let received = Arc::new(Mutex::new(0usize));
    let reached = Arc::new(tokio::sync::Notify::new());
    let (r, s, n) = (
        Arc::clone(&received),
        Arc::clone(seen),
        Arc::clone(&reached),
    );
    let consumer = PushConsumer::builder(group)
        .namesrv_addr(namesrv)
        .subscribe(topic, "*")
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .offset_store(Arc::new(SharedMapStore {
            durable: Arc::clone(durable),
            ..Default::default()
        }))
        .listener(listener_fn(move |msgs, _ctx| {
            let (r, s, n) = (Arc::clone(&r), Arc::clone(&s), Arc::clone(&n));
            async move {
                *r.lock().expect("not poisoned") += msgs.len();
                let mut s = s.lock().expect("not poisoned");
                s.extend(msgs.iter().map(|m| m.msg_id().into_owned()));
                if s.len() >= until {
                    n.notify_one();
                }
                ConsumeConcurrentlyStatus::ConsumeSuccess
            }
        }))
        .start()
        .await?;
    let _ = tokio::time::timeout(Duration::from_secs(60), reached.notified()).await;
    println!("shutdown: {}", consumer.shutdown().await);
    let n = *received.lock().expect("not poisoned");
    Ok(n)
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
        format!("custom_store_{stamp}"),
        format!("custom_store_g_{stamp}"),
    );
    let instance = ClientInstance::get_or_create(
        &ClientConfig::default()
            .namesrv_addr(&namesrv)
            .instance_name(format!("custom-store-producer-{stamp}")),
    )?;
    instance.create_topic(&topic, 4).await?;
    let producer = Producer::new(&instance, &format!("custom_store_pg_{stamp}"))?;
    for i in 0..count {
        producer
            .send(Message::new(&topic, format!("message {i}")))
            .await?;
    }

    let durable = Durable::default();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let first = consume_until(&namesrv, &topic, &group, &durable, &seen, count / 2).await?;
    println!(
        "first consumer: {first} messages; stored offsets {:?}",
        durable.lock().expect("not poisoned").values().sum::<i64>()
    );
    let second = consume_until(&namesrv, &topic, &group, &durable, &seen, count).await?;
    let unique = seen.lock().expect("not poisoned").len();
    println!(
        "second consumer: {second} messages; {unique} unique of {count}, {} delivered twice",
        first + second - unique
    );
    producer.shutdown().await;
    instance.shutdown(Duration::from_secs(2)).await;
    if unique != count || first + second != unique {
        return Err("the second consumer did not go on exactly where the first stopped".into());
    }
    Ok(())
}
