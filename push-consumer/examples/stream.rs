//! Messages as an async stream with acknowledgement handles: create a topic, produce
//! messages, consume them with `message_stream()` and `for_each_concurrent`, acking each
//! one (every 100th is nacked once and comes back through the retry topic); stop when all
//! were acked, print a summary. Fails unless every message was acked exactly once.
//!
//! ```sh
//! cargo xtask broker start   # or any cluster: set RMQ_NAMESRV_ADDR / NAMESRV_ADDR
//! RMQ_NAMESRV_ADDR=127.0.0.1:9876 cargo run -p rmq-push-consumer --example stream -- 1000
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rmq_client_core::{ClientConfig, ClientInstance, Message, Producer};
use rmq_push_consumer::{ConsumeFromWhere, PushConsumer};

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
    let topic = format!("rmq_stream_{stamp}");
    let instance = ClientInstance::get_or_create(
        &ClientConfig::default()
            .namesrv_addr(&namesrv)
            .instance_name(format!("stream-producer-{stamp}")),
    )?;
    instance.create_topic(&topic, 4).await?;
    let producer = Producer::new(&instance, &format!("stream_producer_{stamp}"))?;
    for i in 0..count {
        producer.send(Message::new(&topic, format!("{i}"))).await?;
    }

    let consumer = PushConsumer::builder(&format!("rmq_stream_group_{stamp}"))
        .namesrv_addr(&namesrv)
        .subscribe(&topic, "*")
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .message_stream()
        .start()
        .await?;
    let messages = consumer.messages().expect("built with message_stream()");
    let acked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let started = Instant::now();
    let seen = Arc::clone(&acked);
    // The application's loop: up to 32 messages processed at once.
    let app = tokio::spawn(messages.for_each_concurrent(32, move |m| {
        let seen = Arc::clone(&seen);
        async move {
            let n: usize = String::from_utf8_lossy(&m.body).parse().unwrap_or(0);
            if n % 100 == 0 && m.reconsume_times == 0 {
                m.nack(1); // back in about a second, through %RETRY%<group>
            } else {
                *seen
                    .lock()
                    .unwrap()
                    .entry(m.msg_id().into_owned())
                    .or_default() += 1;
                m.ack();
            }
        }
    }));
    while acked.lock().unwrap().len() < count {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("not every message was acked within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = consumer.shutdown().await;
    app.await?;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let twice = acked.values().filter(|&&n| n > 1).count();
    println!(
        "{{\"acked\":{},\"acked_twice\":{twice},\"seconds\":{:.2},\"shutdown\":\"{report}\"}}",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
    instance.shutdown(Duration::from_secs(2)).await;
    if twice > 0 {
        return Err(format!("{twice} messages were acked more than once").into());
    }
    Ok(())
}
