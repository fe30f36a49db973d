//! The metrics snapshot in the Prometheus text exposition format (version 0.0.4): one
//! `# HELP` and `# TYPE` line per metric, counters suffixed `_total`, sizes in bytes.
//! Format: <https://prometheus.io/docs/instrumenting/exposition_formats/>.

use std::fmt::Write;

use crate::options::{Durability, Metrics};

/// Prefix of every metric name, so the engine's series never clash with an application's.
const PREFIX: &str = "engine";

/// Whether a series only grows (a counter) or goes up and down (a gauge).
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// Every series but the durability label: name after the prefix, kind, help text. The
/// values come from [`values`], in the same order.
const SERIES: [(&str, Kind, &str); 19] = [
    ("commits_total", Kind::Counter, "Commits since open."),
    ("rollbacks_total", Kind::Counter, "Rollbacks since open."),
    (
        "fsyncs_total",
        Kind::Counter,
        "Fsyncs of the main file and the WAL.",
    ),
    ("checkpoints_total", Kind::Counter, "Checkpoints run."),
    (
        "bound_checkpoints_total",
        Kind::Counter,
        "Checkpoints a writer ran because the WAL passed its hard bound.",
    ),
    (
        "checkpoints_blocked_by_reader_total",
        Kind::Counter,
        "Checkpoints that could not restart the WAL because of an open reader.",
    ),
    ("cache_hits_total", Kind::Counter, "Page cache hits."),
    ("cache_misses_total", Kind::Counter, "Page cache misses."),
    (
        "cache_evictions_total",
        Kind::Counter,
        "Pages evicted from the cache.",
    ),
    (
        "pages_read_total",
        Kind::Counter,
        "Pages read from storage.",
    ),
    (
        "pages_written_total",
        Kind::Counter,
        "Pages written into the main file by checkpoints.",
    ),
    ("cache_bytes", Kind::Gauge, "Bytes of pages in the cache."),
    (
        "cache_bytes_max",
        Kind::Gauge,
        "The cache's bound in bytes.",
    ),
    ("readers_open", Kind::Gauge, "Read transactions open."),
    (
        "reader_lag_commits",
        Kind::Gauge,
        "Commits the oldest open reader lags behind the newest.",
    ),
    (
        "wal_frames",
        Kind::Gauge,
        "Frames in the current WAL generation.",
    ),
    (
        "wal_bytes",
        Kind::Gauge,
        "Bytes of the WAL header and frames.",
    ),
    (
        "pages",
        Kind::Gauge,
        "Pages in the database, meta page included.",
    ),
    ("page_size_bytes", Kind::Gauge, "Bytes per page."),
];

/// The values of [`SERIES`], in its order.
fn values(m: &Metrics) -> [u64; SERIES.len()] {
    [
        m.commits,
        m.rollbacks,
        m.fsyncs,
        m.checkpoints,
        m.bound_checkpoints,
        m.checkpoints_blocked_by_reader,
        m.cache_hits,
        m.cache_misses,
        m.cache_evictions,
        m.pages_read,
        m.pages_written,
        m.cache_bytes,
        m.cache_bytes_max,
        m.readers_open,
        m.reader_lag_commits,
        m.wal_frames,
        m.wal_bytes,
        m.page_count,
        m.page_size,
    ]
}

/// `m` as Prometheus text.
pub(crate) fn prometheus_text(m: &Metrics) -> String {
    let mut out = String::with_capacity(SERIES.len() * 128);
    for ((name, kind, help), value) in SERIES.into_iter().zip(values(m)) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP {PREFIX}_{name} {help}\n# TYPE {PREFIX}_{name} {kind}\n{PREFIX}_{name} {value}\n"
        );
    }
    let durability = match m.durability {
        Durability::Full => "full",
        Durability::Normal { .. } => "normal",
        Durability::Off => "off",
    };
    let _ = write!(
        out,
        "# HELP {PREFIX}_durability_info The durability mode, as a label.\n\
         # TYPE {PREFIX}_durability_info gauge\n\
         {PREFIX}_durability_info{{mode=\"{durability}\"}} 1\n"
    );
    out
}
