//! Sends trace records to the trace topic in the background (Java `AsyncTraceDispatcher`):
//! a bounded queue that never makes consumption wait, batched into trace messages whose
//! `KEYS` let the dashboard find them by message id.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::instance::ClientInstance;
use crate::message::{Properties, property};
use crate::producer::{Message, Producer};
use crate::trace::{MAX_TRACE_BODY, TraceContext};

/// Records waiting to be sent at most (Java 5.x: a 2048-record queue).
pub const TRACE_QUEUE_CAPACITY: usize = 2048;
/// Records that make a batch (Java 5.x `traceMsgBatchNum`, 10).
pub const TRACE_BATCH_NUM: usize = 10;
/// A smaller batch is sent when its first record is this old (Java 5.x: 5000 ms).
pub const TRACE_FLUSH_INTERVAL: Duration = Duration::from_millis(5_000);

/// Counts of what the dispatcher did.
#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    sent_records: AtomicU64,
    failed_messages: AtomicU64,
}

/// The background sender of one consumer's trace records. Cheap to clone; the last clone's
/// drop tells the task to send what is queued and end; [`TraceDispatcher::shutdown`] also
/// waits for that.
#[derive(Debug, Clone)]
pub struct TraceDispatcher {
    tx: mpsc::Sender<TraceContext>,
    counters: Arc<Counters>,
    stop: Arc<Stop>,
    dropped_metric: metrics::Counter,
}

#[derive(Debug)]
struct Stop {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl TraceDispatcher {
    /// Starts the sender for `group` (for metrics and the producer group) writing to
    /// `trace_topic` through `instance`. Call inside a Tokio runtime.
    pub fn start(instance: &ClientInstance, group: &str, trace_topic: &str) -> Self {
        let (tx, rx) = mpsc::channel(TRACE_QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let producer =
            Producer::unregistered(instance, &format!("_INNER_TRACE_PRODUCER-{group}-CONSUME"));
        tracker.spawn(run(
            rx,
            producer,
            instance.config().with_namespace(trace_topic),
            Arc::clone(&counters),
            token.clone(),
        ));
        tracker.close();
        TraceDispatcher {
            tx,
            counters,
            stop: Arc::new(Stop { token, tracker }),
            dropped_metric: metrics::counter!("rmq_trace_dropped_total", "group" => group.to_owned()),
        }
    }

    /// Queues a record; never waits. When the queue is full the record is dropped, counted
    /// (`rmq_trace_dropped_total`) and logged (the first drop and every 1000th).
    pub fn append(&self, ctx: TraceContext) {
        if self.tx.try_send(ctx).is_err() {
            self.dropped_metric.increment(1);
            let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n % 1000 == 0 {
                tracing::warn!(
                    dropped = n,
                    "trace queue full ({TRACE_QUEUE_CAPACITY} records): trace records dropped; consumption goes on"
                );
            }
        }
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records sent to the trace topic.
    pub fn sent(&self) -> u64 {
        self.counters.sent_records.load(Ordering::Relaxed)
    }

    /// Sends what is queued (waiting at most `grace`) and stops the task.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.token.cancel();
        if tokio::time::timeout(grace, self.stop.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "trace records not all sent within the grace period");
        }
    }
}

/// The sender task: batches of [`TRACE_BATCH_NUM`] records, or fewer after
/// [`TRACE_FLUSH_INTERVAL`]; on cancel, what is queued is sent, then it ends.
async fn run(
    mut rx: mpsc::Receiver<TraceContext>,
    producer: Producer,
    topic: String,
    counters: Arc<Counters>,
    token: CancellationToken,
) {
    let mut batch: Vec<TraceContext> = Vec::with_capacity(TRACE_BATCH_NUM);
    let mut tick = tokio::time::interval(TRACE_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => {
                rx.close();
                while let Ok(ctx) = rx.try_recv() {
                    batch.push(ctx);
                }
                send(&producer, &topic, &mut batch, &counters).await;
                return;
            }
            ctx = rx.recv() => match ctx {
                Some(ctx) => {
                    batch.push(ctx);
                    if batch.len() >= TRACE_BATCH_NUM {
                        send(&producer, &topic, &mut batch, &counters).await;
                    }
                }
                None => {
                    send(&producer, &topic, &mut batch, &counters).await;
                    return;
                }
            },
            _ = tick.tick() => send(&producer, &topic, &mut batch, &counters).await,
        }
    }
}

/// Sends `batch` as trace messages of at most [`MAX_TRACE_BODY`] characters each.
async fn send(
    producer: &Producer,
    topic: &str,
    batch: &mut Vec<TraceContext>,
    counters: &Counters,
) {
    if batch.is_empty() {
        return;
    }
    for (body, keys, records) in segments(batch.drain(..)) {
        let mut properties = Properties::new();
        properties.insert(property::WAIT, "true");
        properties.insert(property::KEYS, keys);
        let msg = Message {
            topic: topic.to_owned(),
            flag: 0,
            properties,
            body: body.into(),
        };
        match producer.send_raw(msg).await {
            Ok(_) => {
                counters
                    .sent_records
                    .fetch_add(records as u64, Ordering::Relaxed);
            }
            Err(e) => {
                let n = counters.failed_messages.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n % 100 == 0 {
                    tracing::warn!(topic, error = %e, failed = n, "trace message not sent");
                }
            }
        }
    }
}

/// Concatenated records cut into bodies of at most [`MAX_TRACE_BODY`] characters, each
/// with its keys (space-joined union of the records' keys) and record count.
fn segments(contexts: impl Iterator<Item = TraceContext>) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut keys = BTreeSet::new();
    let mut n = 0usize;
    for ctx in contexts {
        let record = ctx.encode();
        if !body.is_empty() && body.len() + record.len() > MAX_TRACE_BODY {
            out.push((
                std::mem::take(&mut body),
                join(&std::mem::take(&mut keys)),
                n,
            ));
            n = 0;
        }
        body.push_str(&record);
        ctx.add_keys(&mut keys);
        n += 1;
    }
    if !body.is_empty() {
        out.push((body, join(&keys), n));
    }
    out
}

fn join(keys: &BTreeSet<String>) -> String {
    keys.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{ConsumeReturnType, TraceBean, TraceType};

    fn ctx(i: usize, keys: Option<&str>) -> TraceContext {
        TraceContext {
            trace_type: TraceType::SubBefore,
            time_stamp: 1,
            region_id: Some("DefaultRegion".into()),
            group_name: "g".into(),
            request_id: format!("R{i}"),
            cost_time: 0,
            success: true,
            context_code: ConsumeReturnType::Success,
            beans: vec![TraceBean {
                topic: "T".into(),
                msg_id: format!("M{i}"),
                keys: keys.map(str::to_owned),
                retry_times: 0,
            }],
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let config = crate::ClientConfig::default()
            .namesrv_addr(&addr)
            .instance_name("trace-drop-test");
        let instance = ClientInstance::get_or_create(&config).unwrap();
        let d = TraceDispatcher::start(&instance, "g", "T");
        // The sender task cannot run before this loop yields: the queue fills up.
        for i in 0..TRACE_QUEUE_CAPACITY + 100 {
            d.append(ctx(i, None));
        }
        assert_eq!(d.dropped(), 100);
        // Nothing can be sent (no name server): shutdown still ends within its grace.
        d.shutdown(Duration::from_secs(5)).await;
        assert_eq!(d.sent(), 0);
        instance.shutdown(Duration::from_secs(1)).await;
    }

    #[test]
    fn records_are_concatenated_with_the_union_of_their_keys_and_cut_at_the_size_limit() {
        let segs = segments([ctx(1, Some("a b")), ctx(2, None)].into_iter());
        assert_eq!(segs.len(), 1);
        assert_eq!(
            segs[0].0,
            format!("{}{}", ctx(1, Some("a b")).encode(), ctx(2, None).encode())
        );
        assert_eq!(segs[0].1, "M1 M2 a b");
        assert_eq!(segs[0].2, 2);
        // Records never split; a body stays under the limit.
        let big = "k".repeat(40_000);
        let segs = segments((0..5).map(|i| ctx(i, Some(&big))));
        assert!(segs.len() >= 2);
        assert_eq!(segs.iter().map(|s| s.2).sum::<usize>(), 5);
        assert!(segs.iter().all(|s| s.0.len() <= MAX_TRACE_BODY));
    }
}
