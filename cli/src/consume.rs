//! `rmq consume`: the push consumer with a counting listener, progress and a summary.

use super::*;
use crate::seen_ids::{SeenIds, id_key};

pub(crate) struct ConsumeOpts {
    pub(crate) topic: String,
    pub(crate) group: Option<String>,
    pub(crate) expression: String,
    pub(crate) orderly: bool,
    pub(crate) broadcast: bool,
    pub(crate) from: String,
    pub(crate) count: Option<u64>,
    pub(crate) wait_for_topic: bool,
    pub(crate) idle_exit: Option<u64>,
    pub(crate) format: Format,
    pub(crate) quiet: bool,
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    pub(crate) trace: Option<String>,
    pub(crate) stream: bool,
    pub(crate) stream_batch_size: Option<u16>,
    pub(crate) pop: bool,
}

/// What the consume command counts.
struct Stats {
    format: Format,
    /// `--count`: messages to print in all.
    limit: Option<u64>,
    inner: Mutex<StatsInner>,
    received: AtomicU64,
    last_ms: AtomicU64,
    /// Woken when the `--count`th message was printed.
    reached: tokio::sync::Notify,
    /// A reading of the coarse monotonic clock and the wall clock (ms) at the same moment.
    clock_base: (coarsetime::Instant, i64),
}

#[derive(Default)]
struct StatsInner {
    /// Message ids seen, as 128-bit keys (16 bytes each instead of a 32-char String:
    /// a million ids cost ~16 MiB, not ~150 MiB).
    ids: SeenIds,
    per_queue: BTreeMap<i32, u64>,
    /// Messages printed (or counted, with `--format summary`).
    printed: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

impl Stats {
    /// Counts and prints `msgs`, at most up to `--count` in all; returns `false` when not
    /// all of them fitted: that call must then never report success, so that no offset is
    /// committed past the last message printed.
    fn record(&self, msgs: &[MessageExt]) -> bool {
        let now = self.now_ms();
        let taken = {
            let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let room = self
                .limit
                .map_or(usize::MAX, |l| l.saturating_sub(s.printed) as usize);
            let taken = &msgs[..msgs.len().min(room)];
            for m in taken {
                s.ids.record(id_key(&m.msg_id()));
                *s.per_queue.entry(m.queue_id).or_default() += 1;
            }
            s.printed += taken.len() as u64;
            if !taken.is_empty() {
                s.first_ms.get_or_insert(now);
                s.last_ms = Some(now);
            }
            // Printed under the lock, so the output holds exactly `--count` messages.
            if self.format != Format::Summary {
                let mut out = std::io::stdout().lock();
                for m in taken {
                    let line = if self.format == Format::Json {
                        message_json(m)
                    } else {
                        message_text(m)
                    };
                    let _ = writeln!(out, "{line}");
                }
                let _ = out.flush();
            }
            if self.limit.is_some_and(|l| s.printed >= l) {
                self.reached.notify_one();
            }
            taken.len()
        };
        if taken > 0 {
            self.received.fetch_add(taken as u64, Ordering::Relaxed);
            self.last_ms.store(now as u64, Ordering::Relaxed);
        }
        taken == msgs.len()
    }

    /// Now, ms since the epoch, from the coarse monotonic clock (CLOCK_MONOTONIC_COARSE:
    /// a few ms of resolution at a fraction of the cost of a precise read, taken once per
    /// listener call) added to the wall clock read at start.
    fn now_ms(&self) -> i64 {
        let (instant, wall) = self.clock_base;
        wall + coarsetime::Instant::now()
            .duration_since(instant)
            .as_millis() as i64
    }

    fn unique(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .unique()
    }
}

struct StatsListener(Arc<Stats>);

impl MessageListenerConcurrently for StatsListener {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        if !self.0.record(msgs) {
            // Past --count: never returns; the command stops without committing it.
            std::future::pending::<()>().await;
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    }
}

impl MessageListenerOrderly for StatsListener {
    async fn consume_message(
        &self,
        msgs: &[MessageExt],
        _ctx: &mut ConsumeOrderlyContext,
    ) -> ConsumeOrderlyStatus {
        if !self.0.record(msgs) {
            std::future::pending::<()>().await;
        }
        ConsumeOrderlyStatus::Success
    }
}

pub(crate) async fn consume(cluster: &Cluster, o: ConsumeOpts) -> Result<(), Failure> {
    let client = client_config(cluster, "consume")?;
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
    let mut signals = signal::StopSignals::install();
    if let Some(addr) = o.metrics_addr {
        // Installed before the consumer starts, so its metric handles register with it.
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| Failure(1, format!("metrics endpoint on {addr}: {e}")))?;
    }
    let instance = ClientInstance::get_or_create(&client).map_err(fail)?;
    if !preflight::topic_route(&instance, &o.topic, o.wait_for_topic, &mut signals).await? {
        return Ok(());
    }
    preflight::brokers_reachable(&instance, &o.topic, o.quiet).await?;
    let started_ms = rmq_client_core::now_millis();
    let stats = Arc::new(Stats {
        format: o.format,
        limit: o.count,
        reached: tokio::sync::Notify::new(),
        inner: Mutex::new(StatsInner {
            // Sized up front for --count, so the list never grows by copying.
            ids: SeenIds::with_capacity(o.count.unwrap_or(0).min(50_000_000) as usize),
            ..StatsInner::default()
        }),
        received: AtomicU64::new(0),
        last_ms: AtomicU64::new(started_ms as u64),
        clock_base: (coarsetime::Instant::now(), started_ms),
    });
    let mut b = PushConsumer::builder(&group)
        .instance(&instance)
        .subscribe(&o.topic, &o.expression)
        .consume_from_where(from);
    if let Some(ms) = ts {
        b = b.consume_timestamp_ms(ms);
    }
    if o.broadcast {
        b = b.message_model(MessageModel::Broadcasting);
    }
    if let Some(t) = &o.trace {
        b = b.enable_trace(Some(t));
    }
    if o.pop {
        b = b.pop_mode(true);
    }
    if let Some(n) = o.stream_batch_size {
        b = b.stream_batch_size(usize::from(n));
    } else if o.count.is_some() {
        // Each message printed is committed as soon as it is acked; past --count nothing
        // is, and nothing waits in a half-answered batch.
        b = b.stream_batch_size(1);
    }
    b = match (o.stream, o.orderly) {
        (true, true) => b.orderly_message_stream(),
        (true, false) => b.message_stream(),
        (false, true) => b.orderly_listener(StatsListener(Arc::clone(&stats))),
        (false, false) => b.listener(StatsListener(Arc::clone(&stats))),
    };
    let started = Instant::now();
    let consumer = b.start().await.map_err(fail)?;
    // With --stream: one task takes the messages, records and acks them; past --count it
    // keeps the handles unanswered (nothing is committed past them, nothing is sent back)
    // until the command ends.
    let stream_task = consumer.messages().map(|mut messages| {
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut held = Vec::new();
            while let Some(m) = messages.next().await {
                if stats.record(std::slice::from_ref(m.message())) {
                    m.ack();
                } else {
                    held.push(m);
                }
            }
            // Held until the command aborts this task, after the consumer stopped: a
            // handle dropped while its call still waits would send the message back.
            std::future::pending::<()>().await;
            drop(held);
        })
    });
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_progress = Instant::now();
    let mut idle_stop = false;
    let mut reached = false;
    let mut went_idle = false;
    loop {
        tokio::select! {
            _ = signals.recv() => break,
            _ = stats.reached.notified() => {
                reached = true;
                break;
            }
            _ = tick.tick() => {}
        }
        if !o.quiet && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            // Counted only for the progress line: counting sorts what arrived since.
            let unique = stats.unique();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "progress: received {} unique {} in {:.1} s ({:.0} msg/s)",
                stats.received.load(Ordering::Relaxed),
                unique,
                secs,
                unique as f64 / secs.max(1e-9)
            );
        }
        if let Some(idle) = o.idle_exit {
            let last = stats.last_ms.load(Ordering::Relaxed) as i64;
            if rmq_client_core::now_millis() - last >= (idle as i64) * 1000 {
                idle_stop = o.count.is_some();
                went_idle = true;
                break;
            }
        }
    }
    let owned = consumer.assigned_queues().len();
    if reached {
        // Every message printed was consumed; calls holding messages past --count never
        // return: stop at once, committing nothing past the last message printed.
        consumer
            .shutdown_within(Duration::ZERO, Duration::ZERO)
            .await;
    } else {
        consumer.shutdown().await;
    }
    if let Some(task) = stream_task {
        task.abort();
    }
    let mut s = stats.inner.lock().unwrap_or_else(|e| e.into_inner());
    let received = stats.received.load(Ordering::Relaxed);
    let unique = s.ids.unique();
    let span_ms = match (s.first_ms, s.last_ms) {
        (Some(a), Some(b)) if b > a => (b - a) as f64,
        _ => 0.0,
    };
    if o.format == Format::Summary || o.count.is_some() {
        let mut summary = serde_json::json!({
            "received": received,
            "unique": unique,
            "duplicates": received - unique,
            "first_timestamp": s.first_ms,
            "last_timestamp": s.last_ms,
            "msgs_per_sec": if span_ms > 0.0 { (unique as f64 * 1000.0 / span_ms).round() } else { 0.0 },
            "per_queue": s.per_queue,
        });
        // Only in a build with the `alloc-stats` feature (`cargo xtask bench`).
        if let Some(n) = allocations() {
            summary["allocations"] = n.into();
        }
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
    if went_idle && received == 0 && !o.quiet {
        eprintln!(
            "rmq: no message arrived within --idle-exit {} s (queues owned at the end: {owned})",
            o.idle_exit.unwrap_or(0)
        );
    }
    Ok(())
}
