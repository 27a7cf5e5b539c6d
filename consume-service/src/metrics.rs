//! The consume services' metric handles, registered once per service (labels are built
//! once, not on every listener call).

use metrics::{Counter, Histogram};

/// `rmq_consumed_total{group, result=ok|failed}` and `rmq_consume_latency_seconds{group}`.
pub(crate) struct ConsumeMetrics {
    pub(crate) ok: Counter,
    pub(crate) failed: Counter,
    pub(crate) latency: Histogram,
}

impl ConsumeMetrics {
    pub(crate) fn new(group: &str) -> Self {
        ConsumeMetrics {
            ok: metrics::counter!("rmq_consumed_total", "group" => group.to_owned(), "result" => "ok"),
            failed: metrics::counter!("rmq_consumed_total", "group" => group.to_owned(), "result" => "failed"),
            latency: metrics::histogram!("rmq_consume_latency_seconds", "group" => group.to_owned()),
        }
    }
}
