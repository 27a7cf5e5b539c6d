//! Benchmark peer: a RocketMQ push consumer built on the crates.io crate
//! `rocketmq-client-rust` 1.0.0.
//!
//! Usage: `peer <namesrv_addr> <topic> <group> <count>`
//!
//! Consumes `<topic>` (subscription `*`, clustering, CONSUME_FROM_FIRST_OFFSET)
//! until `<count>` unique messages were seen (or 600 s passed), then prints one
//! JSON line on stdout:
//! `{"received":N,"unique":N,"duplicates":N,"consume_seconds":F,"msgs_per_sec":F}`.
//! Exit code 0 when all `<count>` messages were seen, 1 otherwise.

// The client's own examples and targets declare a raised recursion limit
// (deep async state machines); keep the same headroom here.
#![recursion_limit = "512"]

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use rocketmq_client_rust::ClientResult;
use rocketmq_client_rust::ClientRuntime;
use rocketmq_client_rust::ClientRuntimeConfig;
use rocketmq_client_rust::ConsumeConcurrentlyContext;
use rocketmq_client_rust::ConsumeConcurrentlyStatus;
use rocketmq_client_rust::DefaultMQPushConsumer;
use rocketmq_client_rust::MQPushConsumer;
use rocketmq_client_rust::MessageListenerConcurrently;
use rocketmq_client_rust::TelemetryHandle;
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::MessageConst;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;
use rocketmq_runtime::RuntimeOwner;

/// Give up waiting for `count` unique messages after this long (from start()).
const CONSUME_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the main task checks the unique counter.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Upper bound for each shutdown step, so a stuck shutdown cannot hang the bench.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters shared between the listener and the main task.
#[derive(Default)]
struct Stats {
    /// Every message handed to the listener (including redeliveries).
    received: AtomicU64,
    /// `seen.len()`, mirrored so the poll loop does not take the lock.
    unique: AtomicU64,
    /// Unique message ids (UNIQ_KEY, falling back to the offset msg id).
    seen: Mutex<HashSet<String>>,
}

/// Message identity: the producer-assigned UNIQ_KEY property (what RocketMQ
/// calls the client msg id); falls back to `MessageExt::msg_id()` (the
/// broker's offset msg id) when the property is absent.
fn message_key(msg: &MessageExt) -> String {
    match msg
        .properties()
        .get(MessageConst::PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
    {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        _ => msg.msg_id().as_str().to_owned(),
    }
}

struct CountingListener {
    stats: Arc<Stats>,
}

impl MessageListenerConcurrently for CountingListener {
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> ClientResult<ConsumeConcurrentlyStatus> {
        // Build the keys outside the lock to keep the critical section short.
        let keys: Vec<String> = msgs.iter().map(|msg| message_key(msg)).collect();
        // Count `received` first so that `received >= unique` always holds
        // for an observer of the two atomics.
        self.stats
            .received
            .fetch_add(keys.len() as u64, Ordering::AcqRel);
        let mut seen = self
            .stats
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for key in keys {
            seen.insert(key);
        }
        self.stats
            .unique
            .store(seen.len() as u64, Ordering::Release);
        drop(seen);
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

struct Outcome {
    /// Time from just before `start()` until `unique >= count` (or give-up).
    elapsed: Duration,
    /// Whether all `count` unique messages were seen.
    completed: bool,
}

async fn run_consumer(
    client_runtime: Arc<ClientRuntime>,
    namesrv_addr: String,
    topic: String,
    group: String,
    count: u64,
    stats: Arc<Stats>,
) -> Outcome {
    let mut consumer = DefaultMQPushConsumer::builder(client_runtime)
        .consumer_group(group)
        .name_server_addr(namesrv_addr)
        .message_model(MessageModel::Clustering)
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();

    if let Err(error) = consumer.subscribe(topic, "*").await {
        eprintln!("peer: subscribe failed: {error}");
        shutdown_consumer(&mut consumer).await;
        return Outcome {
            elapsed: Duration::ZERO,
            completed: false,
        };
    }
    consumer.register_message_listener_concurrently(CountingListener {
        stats: Arc::clone(&stats),
    });

    let started = Instant::now();
    if let Err(error) = consumer.start().await {
        eprintln!("peer: start failed: {error}");
        let elapsed = started.elapsed();
        shutdown_consumer(&mut consumer).await;
        return Outcome {
            elapsed,
            completed: false,
        };
    }

    let deadline = started + CONSUME_TIMEOUT;
    let completed = loop {
        if stats.unique.load(Ordering::Acquire) >= count {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let elapsed = started.elapsed();
    if !completed {
        eprintln!(
            "peer: gave up after {:?}: {} of {} unique messages seen",
            elapsed,
            stats.unique.load(Ordering::Acquire),
            count
        );
    }

    shutdown_consumer(&mut consumer).await;
    Outcome { elapsed, completed }
}

async fn shutdown_consumer(consumer: &mut DefaultMQPushConsumer) {
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, consumer.shutdown())
        .await
        .is_err()
    {
        eprintln!("peer: consumer shutdown timed out after {SHUTDOWN_TIMEOUT:?}");
    }
}

fn print_result(stats: &Stats, elapsed: Duration) {
    let received = stats.received.load(Ordering::Acquire);
    let unique = stats.unique.load(Ordering::Acquire);
    let duplicates = received.saturating_sub(unique);
    let secs = elapsed.as_secs_f64();
    let msgs_per_sec = if secs > 0.0 { unique as f64 / secs } else { 0.0 };
    let line = format!(
        "{{\"received\":{received},\"unique\":{unique},\"duplicates\":{duplicates},\
         \"consume_seconds\":{secs:.6},\"msgs_per_sec\":{msgs_per_sec:.3}}}"
    );
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: peer <namesrv_addr> <topic> <group> <count>");
        return ExitCode::from(1);
    }
    let namesrv_addr = args[1].clone();
    let topic = args[2].clone();
    let group = args[3].clone();
    let count: u64 = match args[4].parse() {
        Ok(count) => count,
        Err(error) => {
            eprintln!("peer: invalid <count> {:?}: {error}", args[4]);
            return ExitCode::from(1);
        }
    };

    let stats = Arc::new(Stats::default());

    // rocketmq-client-rust 1.0.0 never creates a runtime of its own: the
    // application owns a RuntimeOwner (Tokio runtime + task tree) and injects
    // a service context and telemetry handle into ClientRuntime::try_new.
    let owner = match RuntimeOwner::new() {
        Ok(owner) => owner,
        Err(error) => {
            eprintln!("peer: cannot create runtime: {error}");
            print_result(&stats, Duration::ZERO);
            return ExitCode::from(1);
        }
    };
    let client_runtime = match ClientRuntime::try_new(
        owner.root_context().component("bench-peer-client"),
        ClientRuntimeConfig::default(),
        TelemetryHandle::noop(),
    ) {
        Ok(client_runtime) => client_runtime,
        Err(error) => {
            eprintln!("peer: cannot create client runtime: {error}");
            print_result(&stats, Duration::ZERO);
            return ExitCode::from(1);
        }
    };

    let outcome = owner.block_on(run_consumer(
        Arc::clone(&client_runtime),
        namesrv_addr,
        topic,
        group,
        count,
        Arc::clone(&stats),
    ));

    // Consumer is shut down at this point; report before tearing down the
    // shared runtime so a slow teardown cannot delay the result.
    print_result(&stats, outcome.elapsed);

    // Teardown order from the crate README: client facades, then the shared
    // ClientRuntime, then the RuntimeOwner.
    let report = owner.block_on(async {
        tokio::time::timeout(SHUTDOWN_TIMEOUT, client_runtime.shutdown()).await
    });
    match report {
        Ok(report) if !report.is_healthy() => {
            eprintln!("peer: client runtime shutdown unhealthy: {}", report.to_json());
        }
        Ok(_) => {}
        Err(_) => eprintln!("peer: client runtime shutdown timed out"),
    }
    drop(client_runtime);
    match owner.shutdown_runtime_blocking() {
        Ok(report) if !report.is_healthy() => {
            eprintln!("peer: runtime shutdown unhealthy: {}", report.to_json());
        }
        Ok(_) => {}
        Err(error) => eprintln!("peer: runtime shutdown failed: {error}"),
    }

    if outcome.completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
