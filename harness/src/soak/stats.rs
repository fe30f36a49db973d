//! What a soak measures: the child's tick lines, the samples and per-bucket histograms built
//! from them, and the trend figures its checks judge (slopes by least squares, p99 drift).

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Operation kinds of the soak's mix, in the order of every per-kind vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read = 0,
    Scan = 1,
    Update = 2,
    Churn = 3,
    Rollback = 4,
}

/// Every kind, in index order.
pub const OP_KINDS: [OpKind; 5] = [
    OpKind::Read,
    OpKind::Scan,
    OpKind::Update,
    OpKind::Churn,
    OpKind::Rollback,
];

impl OpKind {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Scan => "scan",
            OpKind::Update => "update",
            OpKind::Churn => "insert_delete",
            OpKind::Rollback => "rollback",
        }
    }
}

/// Largest latency a histogram holds, nanoseconds: an hour (a longer stall fails the
/// liveness check long before).
const LATENCY_NS_MAX: u64 = 3_600_000_000_000;

/// A latency histogram in nanoseconds, three significant digits.
#[must_use]
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3) {
        Ok(h) => h,
        // Constant bounds and precision inside HdrHistogram's limits: this arm cannot run.
        Err(e) => panic!("soak histogram bounds: {e:?}"),
    }
}

/// The histogram as base64 of HdrHistogram's V2 deflate encoding (what its own tools read).
#[must_use]
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads [`encode_histogram`]'s text; an empty text is an empty histogram.
///
/// # Errors
/// Bad base64 or a bad histogram encoding.
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    if text.is_empty() {
        return Ok(new_histogram());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram base64: {e}"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram: {e:?}"))?;
    let mut out = new_histogram();
    out.add(&h).map_err(|e| format!("histogram: {e:?}"))?;
    Ok(out)
}

/// One `tick <json>` line of the child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tick {
    /// Since the child started, milliseconds.
    pub t_ms: u64,
    /// The tick's length, milliseconds.
    pub dt_ms: u64,
    pub rss_bytes: u64,
    /// The engine's files other than its WAL.
    pub file_bytes: u64,
    pub wal_bytes: u64,
    /// The engine's fsync counter since the child opened it (None: the engine keeps none).
    pub fsyncs: Option<u64>,
    /// Bytes the engine's page cache holds (None: the engine does not say).
    pub cache_bytes: Option<u64>,
    /// Reads and scans checked against the expected state during the tick.
    pub reads_checked: u64,
    pub scans_checked: u64,
    /// The longest operation still running at the tick, milliseconds (0: none).
    #[serde(default)]
    pub inflight_ms_max: u64,
    /// Per [`OP_KINDS`], the tick's latencies ([`encode_histogram`]).
    pub hists: Vec<String>,
}

/// One point of the soak's time series (one tick of a child).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Since the soak began (across slices), seconds.
    pub t_s: f64,
    pub episode: u64,
    /// Since the episode's child started, seconds.
    pub child_t_s: f64,
    pub ops_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub rss_bytes: u64,
    /// The engine's page cache within `rss_bytes`, when the engine says (0 otherwise).
    #[serde(default)]
    pub cache_bytes: u64,
    pub file_bytes: u64,
    pub wal_bytes: u64,
    /// None: the engine keeps no fsync counter, or the episode's first tick.
    pub fsyncs_per_s: Option<f64>,
}

/// Latencies of one stretch of soak time (an hour by default), per operation kind.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub index: u64,
    /// Seconds of workload the bucket covers (ticks added).
    pub work_s: f64,
    pub hists: Vec<Histogram<u64>>,
}

/// [`Bucket`] as stored in a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketStored {
    pub index: u64,
    pub work_s: f64,
    pub hists: Vec<String>,
}

impl Bucket {
    #[must_use]
    pub fn new(index: u64) -> Bucket {
        Bucket {
            index,
            work_s: 0.0,
            hists: OP_KINDS.iter().map(|_| new_histogram()).collect(),
        }
    }

    /// Every kind's latencies together.
    #[must_use]
    pub fn all(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for h in &self.hists {
            let _ = all.add(h);
        }
        all
    }

    #[must_use]
    pub fn store(&self) -> BucketStored {
        BucketStored {
            index: self.index,
            work_s: self.work_s,
            hists: self.hists.iter().map(encode_histogram).collect(),
        }
    }

    /// # Errors
    /// A histogram that does not decode.
    pub fn load(s: &BucketStored) -> Result<Bucket, String> {
        let mut hists = s
            .hists
            .iter()
            .map(|h| decode_histogram(h))
            .collect::<Result<Vec<_>, _>>()?;
        hists.resize_with(OP_KINDS.len(), new_histogram);
        Ok(Bucket {
            index: s.index,
            work_s: s.work_s,
            hists,
        })
    }
}

/// Microseconds of a nanosecond histogram's quantile.
#[must_use]
pub fn quantile_us(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Least-squares slope of `points` (x, y), or None with fewer than `n_min` points or no
/// spread in x.
#[must_use]
pub fn slope(points: &[(f64, f64)], n_min: usize) -> Option<f64> {
    if points.len() < n_min.max(2) {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_through_text() -> Result<(), String> {
        let mut h = new_histogram();
        for v in [1_000u64, 20_000, 3_000_000, 40_000_000_000] {
            h.record(v).map_err(|e| format!("{e:?}"))?;
        }
        let back = decode_histogram(&encode_histogram(&h))?;
        assert_eq!(back.len(), 4);
        assert_eq!(back.max(), h.max());
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("")?.is_empty());
        Ok(())
    }

    #[test]
    fn slope_of_a_line_and_of_too_little() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 1.0))
            .collect();
        let s = slope(&pts, 3).unwrap_or(f64::NAN);
        assert!((s - 3.0).abs() < 1e-9, "{s}");
        assert_eq!(slope(&pts[..2], 3), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)], 3), None);
    }
}
