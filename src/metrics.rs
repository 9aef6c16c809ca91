//! Metrics in the Prometheus text format, served at `/-/metrics`.
//!
//! The instruments are process-wide (every part of the server records into [`metrics()`]);
//! each server exposes them through a [`Registry`] that labels every series with its node
//! name, so that a Prometheus scraping several nodes keeps them apart.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreErrorLabels {
    pub backend: &'static str,
    /// `unavailable` (the database is out of reach) or `other`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request and metadata latencies: 0.5 ms to about 16 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every instrument.
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Histograms<OperationLabels>,
    pub requests_in_flight: Gauge,
    pub connections_open: Gauge,
    pub received_bytes: Counter,
    pub sent_bytes: Counter,
    pub metadata_duration: Histograms<StoreLabels>,
    pub metadata_errors: Family<StoreErrorLabels, Counter>,
    pub gc_runs: Counter,
    pub gc_reclaimed_blobs: Counter,
    pub gc_orphans_removed: Counter,
    pub lifecycle_runs: Counter,
    pub lifecycle_actions: Family<ActionLabels, Counter>,
    pub users: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    requests: Family::default(),
    request_duration: Family::new_with_constructor(latency),
    requests_in_flight: Gauge::default(),
    connections_open: Gauge::default(),
    received_bytes: Counter::default(),
    sent_bytes: Counter::default(),
    metadata_duration: Family::new_with_constructor(latency),
    metadata_errors: Family::default(),
    gc_runs: Counter::default(),
    gc_reclaimed_blobs: Counter::default(),
    gc_orphans_removed: Counter::default(),
    lifecycle_runs: Counter::default(),
    lifecycle_actions: Family::default(),
    users: Gauge::default(),
});

/// The process's instruments.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Records one metadata store operation.
    pub fn metadata_call<T>(
        &self,
        backend: &'static str,
        elapsed: Duration,
        result: &Result<T, crate::storage::StorageError>,
    ) {
        self.metadata_duration.get_or_create(&StoreLabels { backend }).observe(elapsed.as_secs_f64());
        if let Err(e) = result {
            let kind = match e {
                crate::storage::StorageError::Unavailable(_) => "unavailable",
                crate::storage::StorageError::Io(_)
                | crate::storage::StorageError::Corrupt(_)
                | crate::storage::StorageError::Closed => "other",
                // The operation's own answers (not found, conflict, …) are not errors of the store.
                _ => return,
            };
            self.metadata_errors.get_or_create(&StoreErrorLabels { backend, kind }).inc();
        }
    }
}

/// A registry exposing the instruments with `node="<node>"` on every series.
pub fn registry(node: &str) -> Registry {
    let mut r = Registry::with_prefix_and_labels("s3d", [("node".into(), node.to_owned().into())].into_iter());
    let m = metrics();
    r.register("requests", "Requests answered, by operation and HTTP status", m.requests.clone());
    r.register(
        "request_duration_seconds",
        "Time to answer a request (to the response head)",
        m.request_duration.clone(),
    );
    r.register("requests_in_flight", "Requests being answered", m.requests_in_flight.clone());
    r.register("connections_open", "Open client connections", m.connections_open.clone());
    r.register("received_bytes", "Bytes received from clients (on the wire)", m.received_bytes.clone());
    r.register("sent_bytes", "Bytes sent to clients (on the wire)", m.sent_bytes.clone());
    r.register("metadata_duration_seconds", "Time of metadata store operations", m.metadata_duration.clone());
    r.register("metadata_errors", "Metadata store operations that failed, by kind", m.metadata_errors.clone());
    r.register("gc_runs", "Garbage collector runs", m.gc_runs.clone());
    r.register("gc_reclaimed_blobs", "Unreferenced blobs deleted by the collector", m.gc_reclaimed_blobs.clone());
    r.register(
        "gc_orphans_removed",
        "Orphan blobs and abandoned temporary files removed",
        m.gc_orphans_removed.clone(),
    );
    r.register("lifecycle_runs", "Lifecycle worker runs", m.lifecycle_runs.clone());
    r.register("lifecycle_actions", "Lifecycle rule actions applied, by action", m.lifecycle_actions.clone());
    r.register("users", "Users this node authenticates", m.users.clone());
    r
}

/// The node name metrics carry: the configured one, else the host name.
pub fn default_node_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "s3d".to_owned())
}

/// The text exposition of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    out
}
