//! Histogram to [`LatencySummary`].

use hdrhistogram::Histogram;

use super::{HistUnit, LatencySummary};

/// Summary of `histogram` whose values are in `unit`, converted to microseconds.
pub(crate) fn from_histogram_unit(
    histogram: &Histogram<u64>,
    unit: HistUnit,
    errors: u64,
) -> LatencySummary {
    let per_us = unit.per_us();
    assert!(per_us > 0.0, "unit scale must be positive");
    if histogram.is_empty() {
        // An empty histogram has no percentiles; zeros keep the JSON finite.
        return LatencySummary {
            errors,
            ..LatencySummary::default()
        };
    }
    let at = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / per_us;
    let summary = LatencySummary {
        count: histogram.len(),
        errors,
        mean_us: round_to_ns(histogram.mean() / per_us),
        min_us: histogram.min() as f64 / per_us,
        p50_us: at(0.50),
        p90_us: at(0.90),
        p95_us: at(0.95),
        p99_us: at(0.99),
        p999_us: at(0.999),
        p9999_us: at(0.9999),
        max_us: histogram.max() as f64 / per_us,
        histogram_b64: None,
    };
    debug_assert!(summary.p50_us <= summary.p99_us && summary.p99_us <= summary.max_us);
    summary
}

/// Rounds microseconds to whole nanoseconds (the finest unit the harness records). Short
/// decimals parse back to the same f64 even with serde_json's default (fast) float parser,
/// so report.json round-trips exactly.
pub(crate) fn round_to_ns(value_us: f64) -> f64 {
    (value_us * 1000.0).round() / 1000.0
}
