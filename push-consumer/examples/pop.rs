//! Pop consumption (RocketMQ 5.x): create a topic, produce messages, consume them with two
//! consumers of one group in pop mode — the brokers hand each message to one of them and
//! keep no offsets for them; each message is acknowledged on its own. One consumer takes a
//! stream of acknowledgement handles: every 100th message is nacked once (it comes back
//! after the first pop delay, 10 s) and every 50th is marked in progress first (its
//! invisible time is renewed; rocketmq-rust 1.0 brokers refuse that, which is printed).
//! The other uses a listener. Stops when every message was acked, prints a summary; fails
//! unless every message was acked exactly once.
//!
//! ```sh
//! cargo xtask broker start   # or any 5.x cluster: set RMQ_NAMESRV_ADDR / NAMESRV_ADDR
//! RMQ_NAMESRV_ADDR=127.0.0.1:9876 cargo run -p rmq-push-consumer --example pop -- 1000
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rmq_client_core::{ClientConfig, ClientInstance, Message, Producer};
use rmq_push_consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer, PushConsumerBuilder, listener_fn,
};

type Acked = Arc<Mutex<HashMap<String, usize>>>;

fn record(acked: &Acked, id: String) {
    *acked.lock().unwrap().entry(id).or_default() += 1;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(1_000);
    let namesrv = std::env::var("RMQ_NAMESRV_ADDR")
        .or_else(|_| std::env::var("NAMESRV_ADDR"))
        .map_err(|_| "set RMQ_NAMESRV_ADDR (or NAMESRV_ADDR) to the name server")?;
    let stamp = rmq_client_core::now_millis();
    let topic = format!("rmq_pop_{stamp}");
    let group = format!("rmq_pop_group_{stamp}");
    let instance = ClientInstance::get_or_create(
        &ClientConfig::default()
            .namesrv_addr(&namesrv)
            .instance_name(format!("pop-producer-{stamp}")),
    )?;
    instance.create_topic(&topic, 4).await?;
    let builder = || -> PushConsumerBuilder {
        PushConsumer::builder(&group)
            .namesrv_addr(&namesrv)
            .subscribe(&topic, "*")
            .consume_from_where(ConsumeFromWhere::FirstOffset)
            .pop_mode(true)
    };
    let acked: Acked = Arc::default();
    let by_listener_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    // A listener consumer: acknowledged when the call returns CONSUME_SUCCESS.
    let (seen, n_listener) = (Arc::clone(&acked), Arc::clone(&by_listener_count));
    let by_listener = builder()
        .listener(listener_fn(move |msgs, _ctx| {
            let (seen, n_listener) = (Arc::clone(&seen), Arc::clone(&n_listener));
            async move {
                n_listener.fetch_add(msgs.len(), std::sync::atomic::Ordering::Relaxed);
                for m in &msgs {
                    record(&seen, format!("{}", m.msg_id()));
                }
                ConsumeConcurrentlyStatus::ConsumeSuccess
            }
        }))
        .start()
        .await?;
    // A stream consumer of the same group.
    let by_stream = builder().message_stream().start().await?;
    let messages = by_stream.messages().expect("built with message_stream()");
    let seen = Arc::clone(&acked);
    let refused = Arc::new(Mutex::new(None::<String>));
    let note = Arc::clone(&refused);
    let app = tokio::spawn(messages.for_each_concurrent(32, move |m| {
        let (seen, note) = (Arc::clone(&seen), Arc::clone(&note));
        async move {
            let n: usize = String::from_utf8_lossy(&m.body).parse().unwrap_or(0);
            if n % 100 == 0 && m.reconsume_times == 0 {
                m.nack(0); // invisible for 10 s, then delivered again
                return;
            }
            if n % 50 == 0
                && let Err(e) = m.in_progress().await
            {
                *note.lock().unwrap() = Some(e.to_string());
            }
            record(&seen, m.msg_id().into_owned());
            m.ack();
        }
    }));
    // Both consumers pop while the messages are produced.
    let producer = Producer::new(&instance, &format!("pop_producer_{stamp}"))?;
    for i in 0..count {
        producer.send(Message::new(&topic, format!("{i}"))).await?;
    }
    while acked.lock().unwrap().len() < count {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("not every message was acked within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (r1, r2) = (by_listener.shutdown().await, by_stream.shutdown().await);
    app.await?;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let twice = acked.values().filter(|&&n| n > 1).count();
    println!(
        "{{\"acked\":{},\"by_listener\":{},\"acked_twice\":{twice},\"seconds\":{:.2},\"in_progress_refused\":{:?},\"shutdown\":[\"{r1}\",\"{r2}\"]}}",
        acked.len(),
        by_listener_count.load(std::sync::atomic::Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        refused.lock().unwrap().as_deref().unwrap_or("")
    );
    instance.shutdown(Duration::from_secs(2)).await;
    if twice > 0 {
        return Err(format!("{twice} messages were acked more than once").into());
    }
    Ok(())
}
