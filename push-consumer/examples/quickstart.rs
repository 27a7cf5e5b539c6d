//! Quickstart: create a topic with 8 queues, produce messages, consume them all with a
//! push consumer, print a summary.
//!
//! ```sh
//! cargo xtask broker start   # or any cluster: set RMQ_NAMESRV_ADDR / NAMESRV_ADDR
//! RMQ_NAMESRV_ADDR=127.0.0.1:9876 cargo run --release -p rmq-push-consumer --example quickstart -- 10000
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_client_core::{ClientConfig, ClientInstance, Message, Producer};
use rmq_push_consumer::{ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer, listener_fn};

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ")"; 100 ticks/s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(10_000);
    let namesrv = std::env::var("RMQ_NAMESRV_ADDR")
        .or_else(|_| std::env::var("NAMESRV_ADDR"))
        .map_err(
            |_| "set RMQ_NAMESRV_ADDR (or NAMESRV_ADDR) to the name server, e.g. 127.0.0.1:9876",
        )?;
    let stamp = rmq_client_core::now_millis();
    let topic = format!("rmq_quickstart_{stamp}");
    let group = format!("rmq_quickstart_group_{stamp}");

    // Create the topic on the broker(s) serving the auto-create template topic.
    let producer_cfg = ClientConfig::default()
        .namesrv_addr(&namesrv)
        .instance_name(format!("quickstart-producer-{stamp}"));
    let instance = ClientInstance::get_or_create(&producer_cfg)?;
    instance.create_topic(&topic, 8).await?;

    // Produce, 64 sends in flight.
    let producer = Producer::new(&instance, &format!("quickstart_producer_{stamp}"))?;
    let started = Instant::now();
    let body = vec![b'x'; 1024];
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        while set.len() >= 64 {
            set.join_next().await.expect("non-empty")??;
        }
        let p = producer.clone();
        let msg = Message::new(&topic, body.clone())
            .tags("TagA")
            .keys([format!("key-{i}")]);
        set.spawn(async move { p.send(msg).await.map(drop) });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let produce_secs = started.elapsed().as_secs_f64();
    println!("produced {count} messages of 1 KiB to {topic} in {produce_secs:.2} s");

    // Consume.
    let seen = Arc::new(Mutex::new(HashSet::<String>::with_capacity(count)));
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let (s2, r2, d2) = (Arc::clone(&seen), Arc::clone(&received), Arc::clone(&done));
    let builder = PushConsumer::builder(&group)
        .namesrv_addr(&namesrv)
        .subscribe(&topic, "*")
        .consume_from_where(ConsumeFromWhere::FirstOffset)
        .listener(listener_fn(move |msgs, _ctx| {
            let (seen, received, done) = (Arc::clone(&s2), Arc::clone(&r2), Arc::clone(&d2));
            async move {
                received.fetch_add(msgs.len(), std::sync::atomic::Ordering::Relaxed);
                let mut s = seen.lock().expect("not poisoned");
                for m in &msgs {
                    s.insert(m.msg_id().into_owned());
                }
                if s.len() >= count {
                    done.notify_one();
                }
                ConsumeConcurrentlyStatus::ConsumeSuccess
            }
        }));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let consumer = builder.start().await?;
    // Stop when everything arrived, after 300 s, or on Ctrl-C / SIGTERM: all run the clean
    // shutdown below.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let finished = tokio::select! {
        r = tokio::time::timeout(Duration::from_secs(300), done.notified()) => r.is_ok(),
        _ = tokio::signal::ctrl_c() => false,
        _ = term.recv() => false,
    };
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let report = consumer.shutdown().await;
    eprintln!("shutdown: {report}");
    producer.shutdown().await;
    instance.shutdown(Duration::from_secs(2)).await;

    let unique = seen.lock().expect("not poisoned").len();
    let total = received.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{{\"produced\":{count},\"received\":{total},\"unique\":{unique},\"duplicates\":{},\"consume_seconds\":{secs:.3},\"msgs_per_sec\":{:.0},\"cpu_seconds\":{cpu:.2},\"cpu_seconds_per_10k\":{:.3}}}",
        total - unique,
        unique as f64 / secs,
        cpu * 10_000.0 / unique.max(1) as f64
    );
    if !finished || unique != count {
        return Err(format!("consumed {unique} of {count} messages").into());
    }
    Ok(())
}
