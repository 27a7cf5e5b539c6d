//! `rmq`: consume, produce, pull, inspect routes and lag on a RocketMQ cluster.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "alloc-stats")]
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Heap allocations of the whole process so far (feature `alloc-stats`).
fn allocations() -> Option<usize> {
    #[cfg(feature = "alloc-stats")]
    return Some(GLOBAL.stats().allocations);
    #[cfg(not(feature = "alloc-stats"))]
    None
}

use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use rmq_client_core::header::QueryConsumerOffsetRequestHeader;
use rmq_client_core::{ClientConfig, ClientInstance, Message, MessageExt, MessageQueue, Producer};
use rmq_push_consumer::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, MessageListenerConcurrently, MessageListenerOrderly, MessageModel,
    PushConsumer,
};

const EXIT_HELP: &str = "Exit codes:
  0  success
  1  the cluster could not be reached or refused a request (the message says which)
  2  bad command-line usage
  3  consume stopped by --idle-exit before --count messages arrived";

#[derive(Parser)]
#[command(name = "rmq", version, about = "A RocketMQ client for the command line (Remoting protocol, 4.x/5.x).", after_help = EXIT_HELP)]
struct Cli {
    /// Name server(s), `host:port;host:port`. Default: $NAMESRV_ADDR.
    #[arg(long, global = true, env = "NAMESRV_ADDR")]
    namesrv: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    /// One line per message: topic, queue, offset, id, tags, keys, body.
    Text,
    /// One JSON object per line and message.
    Json,
    /// Only a JSON summary as the last line.
    Summary,
}

#[derive(Subcommand)]
enum Command {
    /// Consume with the push consumer and print messages or a summary.
    #[command(after_help = EXIT_HELP)]
    Consume {
        /// Topic to subscribe.
        #[arg(long)]
        topic: String,
        /// Consumer group. Default: a new group `rmq-cli-<pid>-<ms>`.
        #[arg(long)]
        group: Option<String>,
        /// Tag expression: `*`, `TagA || TagB`.
        #[arg(long, default_value = "*")]
        expression: String,
        /// Consume orderly (one call per queue at a time, under the broker lock).
        #[arg(long)]
        orderly: bool,
        /// Broadcasting instead of clustering.
        #[arg(long)]
        broadcast: bool,
        /// Where a new group starts: `first`, `last`, or a time in ms since the epoch.
        #[arg(long, default_value = "last")]
        from: String,
        /// Stop after this many unique messages.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds without a message.
        #[arg(long)]
        idle_exit: Option<u64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// No progress line on stderr.
        #[arg(long)]
        quiet: bool,
    },
    /// Send messages: `--count` generated ones, or one per line of standard input.
    Produce {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Generated messages to send; without it, one message per stdin line (bytes, the
        /// line break removed).
        #[arg(long)]
        count: Option<u64>,
        /// Body size of generated messages, bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Tag of every message.
        #[arg(long)]
        tag: Option<String>,
        /// Keys of every message, space separated.
        #[arg(long)]
        keys: Option<String>,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Messages per send request (SEND_BATCH_MESSAGE); 1 sends them one by one.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Create the topic first with this many queues on every broker.
        #[arg(long)]
        create_queues: Option<i32>,
    },
    /// Pull one queue from an offset and print the messages.
    Pull {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Queue id.
        #[arg(long)]
        queue_id: i32,
        /// Broker name. Default: the first broker of the route.
        #[arg(long)]
        broker: Option<String>,
        /// Offset to start at.
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Most messages to print.
        #[arg(long, default_value_t = 32)]
        count: usize,
        /// Output format (text or json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print a topic's route as JSON.
    Route {
        /// Topic.
        topic: String,
    },
    /// Per queue: broker max offset, committed offset and lag of a group.
    Lag {
        /// Consumer group.
        #[arg(long)]
        group: String,
        /// Topic (its `%RETRY%<group>` is shown too).
        #[arg(long)]
        topic: String,
    },
}

const BROKEN_PIPE: &str = "stdout closed";

/// Writes one line to stdout; a closed stdout ends the command quietly.
fn out(line: &str) -> Result<(), Failure> {
    let mut o = std::io::stdout().lock();
    match writeln!(o, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure(0, BROKEN_PIPE.into())),
        r => r.map_err(fail),
    }
}

/// A user-facing failure: one line, and the exit code.
struct Failure(u8, String);

/// The error and its sources on one line, so it says what was wrong, not just "client error".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn fail(e: impl std::error::Error + 'static) -> Failure {
    Failure(1, error_chain(&e))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RMQ_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rmq: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`rmq consume | head`): not an error.
        Err(Failure(_, msg)) if msg == BROKEN_PIPE => ExitCode::SUCCESS,
        Err(Failure(code, msg)) => {
            eprintln!("rmq: {msg}");
            ExitCode::from(code)
        }
    }
}

fn client_config(namesrv: &Option<String>, name: &str) -> Result<ClientConfig, Failure> {
    let ns = namesrv.clone().ok_or_else(|| {
        Failure(
            2,
            "no name server: pass --namesrv host:port or set NAMESRV_ADDR".into(),
        )
    })?;
    Ok(ClientConfig::default()
        .namesrv_addr(&ns)
        .instance_name(format!(
            "rmq-cli-{name}-{}-{}",
            std::process::id(),
            rmq_client_core::now_millis()
        )))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Consume {
            topic,
            group,
            expression,
            orderly,
            broadcast,
            from,
            count,
            idle_exit,
            format,
            quiet,
        } => {
            let opts = ConsumeOpts {
                topic,
                group,
                expression,
                orderly,
                broadcast,
                from,
                count,
                idle_exit,
                format,
                quiet,
            };
            consume(&cli.namesrv, opts).await
        }
        Command::Produce {
            topic,
            count,
            size,
            tag,
            keys,
            concurrency,
            batch,
            create_queues,
        } => {
            produce(
                &cli.namesrv,
                &topic,
                count,
                size,
                tag,
                keys,
                concurrency,
                batch,
                create_queues,
            )
            .await
        }
        Command::Pull {
            topic,
            queue_id,
            broker,
            offset,
            count,
            format,
        } => {
            pull(
                &cli.namesrv,
                &topic,
                queue_id,
                broker,
                offset,
                count,
                format,
            )
            .await
        }
        Command::Route { topic } => route(&cli.namesrv, &topic).await,
        Command::Lag { group, topic } => lag(&cli.namesrv, &group, &topic).await,
    }
}

fn message_json(m: &MessageExt) -> String {
    let props: BTreeMap<&str, &str> = m.properties.iter().collect();
    let mut v = serde_json::json!({
        "topic": &*m.topic,
        "brokerName": &*m.broker_name,
        "queueId": m.queue_id,
        "queueOffset": m.queue_offset,
        "msgId": m.msg_id(),
        "offsetMsgId": m.offset_msg_id(),
        "keys": m.keys().collect::<Vec<_>>(),
        "tags": m.tags(),
        "bornTimestamp": m.born_timestamp,
        "storeTimestamp": m.store_timestamp,
        "reconsumeTimes": m.reconsume_times,
        "properties": props,
    });
    match std::str::from_utf8(&m.body) {
        Ok(text) => v["body"] = serde_json::Value::from(text),
        Err(_) => {
            v["body"] =
                serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(&m.body));
            v["bodyEncoding"] = serde_json::Value::from("base64");
        }
    }
    v.to_string()
}

fn message_text(m: &MessageExt) -> String {
    format!(
        "{} {} {} {} tags={} keys={} {}",
        m.topic,
        m.queue_id,
        m.queue_offset,
        m.msg_id(),
        m.tags().unwrap_or("-"),
        m.keys().collect::<Vec<_>>().join(","),
        String::from_utf8_lossy(&m.body)
    )
}

struct ConsumeOpts {
    topic: String,
    group: Option<String>,
    expression: String,
    orderly: bool,
    broadcast: bool,
    from: String,
    count: Option<u64>,
    idle_exit: Option<u64>,
    format: Format,
    quiet: bool,
}

/// A message id as a 128-bit key: the 32 hex digits of a UNIQ_KEY or IPv4 offset id are
/// exactly 16 bytes; anything else (IPv6 offset ids) is hashed with two keyed hashers.
fn id_key(id: &str) -> u128 {
    if id.len() == 32
        && let Ok(v) = u128::from_str_radix(id, 16)
    {
        return v;
    }
    use std::hash::{Hash, Hasher};
    let mut a = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (id, 0x9e37_79b9_u32).hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// What the consume command counts.
struct Stats {
    format: Format,
    inner: Mutex<StatsInner>,
    received: AtomicU64,
    last_ms: AtomicU64,
}

#[derive(Default)]
struct StatsInner {
    /// Message ids seen, as 128-bit keys (16 bytes each instead of a 32-char String:
    /// a million ids cost ~20 MiB, not ~150 MiB).
    ids: HashSet<u128>,
    per_queue: BTreeMap<i32, u64>,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

impl Stats {
    fn record(&self, msgs: &[MessageExt]) {
        let now = rmq_client_core::now_millis();
        {
            let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            for m in msgs {
                s.ids.insert(id_key(&m.msg_id()));
                *s.per_queue.entry(m.queue_id).or_default() += 1;
            }
            s.first_ms.get_or_insert(now);
            s.last_ms = Some(now);
        }
        self.received
            .fetch_add(msgs.len() as u64, Ordering::Relaxed);
        self.last_ms.store(now as u64, Ordering::Relaxed);
        if self.format != Format::Summary {
            let mut out = std::io::stdout().lock();
            for m in msgs {
                let line = if self.format == Format::Json {
                    message_json(m)
                } else {
                    message_text(m)
                };
                let _ = writeln!(out, "{line}");
            }
        }
    }

    fn unique(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .len() as u64
    }
}

struct StatsListener(Arc<Stats>);

impl MessageListenerConcurrently for StatsListener {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        self.0.record(msgs);
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

impl MessageListenerOrderly for StatsListener {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeOrderlyContext,
    ) -> ConsumeOrderlyStatus {
        self.0.record(msgs);
        ConsumeOrderlyStatus::Success
    }
}

async fn consume(namesrv: &Option<String>, o: ConsumeOpts) -> Result<(), Failure> {
    let client = client_config(namesrv, "consume")?;
    let (from, ts) = match o.from.as_str() {
        "first" => (ConsumeFromWhere::FirstOffset, None),
        "last" => (ConsumeFromWhere::LastOffset, None),
        t => match t.parse::<i64>() {
            Ok(ms) => (ConsumeFromWhere::Timestamp, Some(ms)),
            Err(_) => {
                return Err(Failure(
                    2,
                    format!("--from {t:?}: expected first, last or ms since the epoch"),
                ));
            }
        },
    };
    let group = o.group.unwrap_or_else(|| {
        format!(
            "rmq-cli-{}-{}",
            std::process::id(),
            rmq_client_core::now_millis()
        )
    });
    let stats = Arc::new(Stats {
        format: o.format,
        inner: Mutex::new(StatsInner {
            // Sized up front for --count, so the set never rehashes (and never doubles).
            ids: HashSet::with_capacity(o.count.unwrap_or(0).min(50_000_000) as usize),
            ..StatsInner::default()
        }),
        received: AtomicU64::new(0),
        last_ms: AtomicU64::new(rmq_client_core::now_millis() as u64),
    });
    let mut b = PushConsumer::builder(&group)
        .client_config(client)
        .subscribe(&o.topic, &o.expression)
        .consume_from_where(from);
    if let Some(ms) = ts {
        b = b.consume_timestamp_ms(ms);
    }
    if o.broadcast {
        b = b.message_model(MessageModel::Broadcasting);
    }
    b = if o.orderly {
        b.orderly_listener(StatsListener(Arc::clone(&stats)))
    } else {
        b.listener(StatsListener(Arc::clone(&stats)))
    };
    let started = Instant::now();
    let consumer = b.start().await.map_err(fail)?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_progress = Instant::now();
    let mut idle_stop = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {}
        }
        let unique = stats.unique();
        if !o.quiet && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "progress: received {} unique {} in {:.1} s ({:.0} msg/s)",
                stats.received.load(Ordering::Relaxed),
                unique,
                secs,
                unique as f64 / secs.max(1e-9)
            );
        }
        if o.count.is_some_and(|c| unique >= c) {
            break;
        }
        if let Some(idle) = o.idle_exit {
            let last = stats.last_ms.load(Ordering::Relaxed) as i64;
            if rmq_client_core::now_millis() - last >= (idle as i64) * 1000 {
                idle_stop = o.count.is_some();
                break;
            }
        }
    }
    consumer.shutdown().await;
    let s = stats.inner.lock().unwrap_or_else(|e| e.into_inner());
    let received = stats.received.load(Ordering::Relaxed);
    let unique = s.ids.len() as u64;
    let span_ms = match (s.first_ms, s.last_ms) {
        (Some(a), Some(b)) if b > a => (b - a) as f64,
        _ => 0.0,
    };
    if o.format == Format::Summary || o.count.is_some() {
        let summary = serde_json::json!({
            "received": received,
            "unique": unique,
            "duplicates": received - unique,
            "first_timestamp": s.first_ms,
            "last_timestamp": s.last_ms,
            "msgs_per_sec": if span_ms > 0.0 { (unique as f64 * 1000.0 / span_ms).round() } else { 0.0 },
            "per_queue": s.per_queue,
            "allocations": allocations(),
        });
        out(&summary.to_string())?;
    }
    if idle_stop {
        return Err(Failure(
            3,
            format!(
                "idle for --idle-exit seconds after {unique} of {} messages",
                o.count.unwrap_or(0)
            ),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn produce(
    namesrv: &Option<String>,
    topic: &str,
    count: Option<u64>,
    size: usize,
    tag: Option<String>,
    keys: Option<String>,
    concurrency: usize,
    batch: usize,
    create_queues: Option<i32>,
) -> Result<(), Failure> {
    let client = client_config(namesrv, "produce")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    if let Some(queues) = create_queues {
        instance.create_topic(topic, queues).await.map_err(fail)?;
    }
    let producer = Producer::new(
        &instance,
        &format!("rmq-cli-producer-{}", std::process::id()),
    )
    .map_err(fail)?;
    let make = |body: Vec<u8>| {
        let mut m = Message::new(topic, body);
        if let Some(t) = &tag {
            m = m.tags(t.clone());
        }
        if let Some(k) = &keys {
            m = m.keys(k.split(' ').filter(|s| !s.is_empty()));
        }
        m
    };
    let started = Instant::now();
    let mut set: tokio::task::JoinSet<Result<u64, String>> = tokio::task::JoinSet::new();
    let mut sent = 0u64;
    let concurrency = concurrency.max(1);
    let batch = batch.max(1);
    let mut pending: Vec<Message> = Vec::with_capacity(batch);
    let mut bodies: Box<dyn Iterator<Item = Vec<u8>> + Send> = match count {
        Some(n) => {
            let body = vec![b'x'; size];
            Box::new((0..n).map(move |_| body.clone()))
        }
        None => Box::new(std::iter::empty()),
    };
    // Lines are read as bytes: a body need not be UTF-8.
    let mut stdin = count
        .is_none()
        .then(|| tokio::io::BufReader::new(tokio::io::stdin()));
    loop {
        let next = match stdin.as_mut() {
            Some(r) => {
                use tokio::io::AsyncBufReadExt;
                let mut line = Vec::new();
                if r.read_until(b'\n', &mut line).await.map_err(fail)? == 0 {
                    None
                } else {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    Some(line)
                }
            }
            None => bodies.next(),
        };
        let done = next.is_none();
        if let Some(body) = next {
            pending.push(make(body));
        }
        if pending.len() >= batch || (done && !pending.is_empty()) {
            while set.len() >= concurrency {
                sent += set
                    .join_next()
                    .await
                    .expect("non-empty")
                    .map_err(fail)?
                    .map_err(|e| Failure(1, e))?;
            }
            let p = producer.clone();
            let msgs = std::mem::replace(&mut pending, Vec::with_capacity(batch));
            set.spawn(async move {
                let n = msgs.len() as u64;
                let r = if n == 1 {
                    p.send(msgs.into_iter().next().expect("one")).await
                } else {
                    p.send_batch(msgs).await
                };
                r.map(|_| n).map_err(|e| error_chain(&e))
            });
        }
        if done {
            break;
        }
    }
    while let Some(r) = set.join_next().await {
        sent += r.map_err(fail)?.map_err(|e| Failure(1, e))?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}",
        serde_json::json!({"sent": sent, "seconds": (secs * 1000.0).round() / 1000.0, "msgs_per_sec": (sent as f64 / secs.max(1e-9)).round()})
    );
    producer.shutdown().await;
    instance.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

async fn pull(
    namesrv: &Option<String>,
    topic: &str,
    queue_id: i32,
    broker: Option<String>,
    offset: i64,
    count: usize,
    format: Format,
) -> Result<(), Failure> {
    let client = client_config(namesrv, "pull")?;
    let consumer =
        rmq_pull_consumer::PullConsumer::builder(&format!("rmq-cli-pull-{}", std::process::id()))
            .client_config(client)
            .start()
            .await
            .map_err(fail)?;
    let queues = consumer
        .fetch_subscribe_message_queues(topic)
        .await
        .map_err(fail)?;
    let mq = queues
        .iter()
        .find(|q| q.queue_id == queue_id && broker.as_ref().is_none_or(|b| &q.broker_name == b))
        .cloned()
        .ok_or_else(|| {
            Failure(
                1,
                format!(
                    "topic {topic} has no queue {queue_id}{}",
                    broker.map(|b| format!(" on {b}")).unwrap_or_default()
                ),
            )
        })?;
    let mut next = offset;
    let mut printed = 0;
    while printed < count {
        let r = consumer
            .pull(&mq, "*", next, (count - printed).min(32) as i32)
            .await
            .map_err(fail)?;
        if r.messages.is_empty() {
            break;
        }
        for m in &r.messages {
            if printed < count {
                out(&if format == Format::Json {
                    message_json(m)
                } else {
                    message_text(m)
                })?;
                printed += 1;
            }
        }
        next = r.next_begin_offset;
    }
    consumer.shutdown().await;
    Ok(())
}

async fn route(namesrv: &Option<String>, topic: &str) -> Result<(), Failure> {
    let client = client_config(namesrv, "route")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    instance.update_topic_route(topic).await.map_err(fail)?;
    let r = instance
        .topic_route(topic)
        .ok_or_else(|| Failure(1, format!("no route for topic {topic}")))?;
    out(&serde_json::to_string_pretty(&*r).map_err(fail)?)?;
    instance.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

async fn lag(namesrv: &Option<String>, group: &str, topic: &str) -> Result<(), Failure> {
    let client = client_config(namesrv, "lag")?;
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    let mut total = 0i64;
    out(&format!(
        "{:<40} {:<16} {:>6} {:>14} {:>14} {:>10}",
        "TOPIC", "BROKER", "QUEUE", "MAX_OFFSET", "COMMITTED", "LAG"
    ))?;
    for t in [topic.to_owned(), format!("%RETRY%{group}")] {
        if instance.update_topic_route(&t).await.is_err() {
            continue;
        }
        let queues: Vec<MessageQueue> = instance.subscribe_queues(&t);
        for mq in queues {
            let addr = instance
                .find_broker_address_in_publish(&mq.broker_name)
                .ok_or_else(|| Failure(1, format!("no master for broker {}", mq.broker_name)))?;
            let timeout = Duration::from_secs(3);
            let max = instance
                .api()
                .get_max_offset(&addr, &mq, timeout)
                .await
                .map_err(fail)?;
            let header = QueryConsumerOffsetRequestHeader {
                consumer_group: group.to_owned(),
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                set_zero_if_not_found: Some(false),
                bname: Some(mq.broker_name.clone()),
            };
            let committed = instance
                .api()
                .query_consumer_offset(&addr, &header, timeout)
                .await
                .map_err(fail)?;
            let lag = max - committed.unwrap_or(0);
            total += lag;
            out(&format!(
                "{:<40} {:<16} {:>6} {:>14} {:>14} {:>10}",
                mq.topic,
                mq.broker_name,
                mq.queue_id,
                max,
                committed
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                lag
            ))?;
        }
    }
    out(&format!("total lag: {total}"))?;
    instance.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
