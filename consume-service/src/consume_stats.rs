//! Per-topic pull and consume counters behind the `statusTable` of a consumer's running
//! info (GET_CONSUMER_RUNNING_INFO), which `rmq status` and the RocketMQ dashboard show.

use std::sync::Mutex;

/// Cumulative counts of one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    pulls: u64,
    pulled_msgs: u64,
    pull_rt_ms: f64,
    calls: u64,
    consume_rt_ms: f64,
    ok_msgs: u64,
    failed_msgs: u64,
}

/// One topic's figures over a window (Java `ConsumeStatus`): round-trip times in ms,
/// rates in messages per second, `consume_failed_msgs` the failures in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConsumeStatus {
    /// Mean pull round trip, ms (Java `pullRT`).
    pub pull_rt: f64,
    /// Messages pulled per second (Java `pullTPS`).
    pub pull_tps: f64,
    /// Mean listener call time, ms (Java `consumeRT`).
    pub consume_rt: f64,
    /// Messages consumed successfully per second (Java `consumeOKTPS`).
    pub consume_ok_tps: f64,
    /// Messages failed per second (Java `consumeFailedTPS`).
    pub consume_failed_tps: f64,
    /// Messages failed in the window (Java `consumeFailedMsgs`, an hour's count in Java).
    pub consume_failed_msgs: u64,
}

/// Topic → counts, written once per listener call, so hashed with foldhash (SipHash, std's
/// default, was about 1 % of all the CPU of consuming).
type Table = foldhash::HashMap<String, Counts>;

#[derive(Debug, Default)]
struct State {
    now: Table,
    /// The counts and time (ms) at the previous [`ConsumeStats::status_table`] read.
    sampled: Table,
    sampled_ms: i64,
}

/// Per-topic counters of one consumer, updated once per pull and once per listener call
/// (one uncontended lock each; no allocation after a topic's first batch).
///
/// Java keeps minute/hour sampled `StatsItemSet`s (`ConsumerStatsManager`); rmq reports
/// the rates over the window since the previous read (or since start for the first), so
/// a status request every few seconds sees current rates without a sampling timer.
#[derive(Debug, Default)]
pub struct ConsumeStats {
    state: Mutex<State>,
}

impl ConsumeStats {
    /// An empty set of counters, its window starting now.
    pub fn new() -> Self {
        let stats = ConsumeStats::default();
        stats.lock().sampled_ms = rmq_client_core::now_millis();
        stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_topic(&self, topic: &str, f: impl FnOnce(&mut Counts)) {
        let mut s = self.lock();
        match s.now.get_mut(topic) {
            Some(c) => f(c),
            None => f(s.now.entry(topic.to_owned()).or_default()),
        }
    }

    /// One pull of `topic` returned `msgs` messages after `rt_ms`.
    pub fn record_pull(&self, topic: &str, msgs: usize, rt_ms: f64) {
        self.with_topic(topic, |c| {
            c.pulls += 1;
            c.pulled_msgs += msgs as u64;
            c.pull_rt_ms += rt_ms;
        });
    }

    /// One listener call on `topic` took `rt_ms`; `ok` messages succeeded, `failed` not.
    pub fn record_consume(&self, topic: &str, ok: u64, failed: u64, rt_ms: f64) {
        self.record_consume_calls(topic, 1, ok, failed, rt_ms);
    }

    /// `calls` listener calls on `topic` took `rt_ms` milliseconds in all; `ok` messages
    /// succeeded, `failed` not. The same as `calls` calls of [`ConsumeStats::record_consume`]
    /// (the mean consume RT is per call), recorded at once when a consume task settles a
    /// run of calls together (Java counts each `ConsumeRequest` in `ConsumerStatsManager`).
    pub fn record_consume_calls(&self, topic: &str, calls: u64, ok: u64, failed: u64, rt_ms: f64) {
        self.with_topic(topic, |c| {
            c.calls += calls;
            c.consume_rt_ms += rt_ms;
            c.ok_msgs += ok;
            c.failed_msgs += failed;
        });
    }

    /// Each topic's figures since the previous call (or since [`ConsumeStats::new`]),
    /// sorted by topic; the window restarts now.
    pub fn status_table(&self) -> Vec<(String, ConsumeStatus)> {
        self.status_table_at(rmq_client_core::now_millis())
    }

    fn status_table_at(&self, now_ms: i64) -> Vec<(String, ConsumeStatus)> {
        let mut s = self.lock();
        let secs = ((now_ms - s.sampled_ms).max(1) as f64) / 1000.0;
        let mut out: Vec<(String, ConsumeStatus)> = s
            .now
            .iter()
            .map(|(topic, c)| {
                let p = s.sampled.get(topic).copied().unwrap_or_default();
                let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
                let status = ConsumeStatus {
                    pull_rt: mean(c.pull_rt_ms - p.pull_rt_ms, c.pulls - p.pulls),
                    pull_tps: (c.pulled_msgs - p.pulled_msgs) as f64 / secs,
                    consume_rt: mean(c.consume_rt_ms - p.consume_rt_ms, c.calls - p.calls),
                    consume_ok_tps: (c.ok_msgs - p.ok_msgs) as f64 / secs,
                    consume_failed_tps: (c.failed_msgs - p.failed_msgs) as f64 / secs,
                    consume_failed_msgs: c.failed_msgs - p.failed_msgs,
                };
                (topic.clone(), status)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        s.sampled = s.now.clone();
        s.sampled_ms = now_ms;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_cover_the_window_since_the_previous_read() {
        let stats = ConsumeStats::default(); // window starts at 0 ms
        stats.record_pull("T", 32, 4.0);
        stats.record_pull("T", 0, 6.0);
        stats.record_consume("T", 30, 2, 10.0);
        stats.record_consume("U", 5, 0, 1.0);
        let first = stats.status_table_at(2_000);
        assert_eq!(first[0].0, "T");
        let t = first[0].1;
        assert_eq!(t.pull_rt, 5.0);
        assert_eq!(t.pull_tps, 16.0);
        assert_eq!(t.consume_rt, 10.0);
        assert_eq!(t.consume_ok_tps, 15.0);
        assert_eq!(t.consume_failed_tps, 1.0);
        assert_eq!(t.consume_failed_msgs, 2);
        assert_eq!(first[1].0, "U");
        // Nothing since: the next window is all zeros, not the lifetime average.
        stats.record_consume("T", 4, 0, 2.0);
        let second = stats.status_table_at(4_000);
        assert_eq!(second[0].1.consume_ok_tps, 2.0);
        assert_eq!(second[0].1.pull_tps, 0.0);
        assert_eq!(second[0].1.consume_failed_msgs, 0);
        assert_eq!(second[1].1, ConsumeStatus::default());
    }
}
