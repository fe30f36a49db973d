//! Run reports: the `report.json` data model, its writers (JSON, self-contained HTML with SVG
//! charts, HdrHistogram `.hgrm` percentile files) and the terminal tables.
//!
//! The driver fills a [`Report`] and calls [`write_all`]. Every field is documented in
//! `reports/README.md`. Units are carried in field names (`_us`, `_s`, `_ops_s`).
//!
//! Histograms handed to this module record **nanoseconds** unless stated otherwise through
//! [`HistUnit`]; every latency in the report is in **microseconds** (f64, so sub-microsecond
//! engine latencies survive).
//!
//! The verdict is never stored: [`Report::verdict`] derives it from the checks, and the JSON
//! writer emits that derived value, so the file cannot disagree with its own checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub(crate) mod cost;
pub mod dashboard;
mod hgrm;
mod history;
pub(crate) mod html;
mod json;
mod keys;
mod ratio;
pub mod sample;
mod scaling;
mod summary;
pub(crate) mod svg;
pub(crate) mod table;
mod time;

pub use hgrm::hgrm_text;
pub use history::{append_history, history_line};
pub use ratio::compute_ratios;
pub use sample::demo_report;
pub use time::{git_rev_short, rfc3339_utc};

/// Version of the report.json schema; bumped on any incompatible change.
/// Additive changes (new optional fields) do not bump it.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// The unit a histogram's recorded values are in. Reports are always in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistUnit {
    /// Values are nanoseconds (the harness default: engine reads take 1-3 us).
    Nanoseconds,
    /// Values are microseconds.
    Microseconds,
}

impl HistUnit {
    /// How many recorded units make one microsecond.
    pub fn per_us(self) -> f64 {
        match self {
            HistUnit::Nanoseconds => 1000.0,
            HistUnit::Microseconds => 1.0,
        }
    }
}

/// The unit the harness records latencies in, everywhere.
pub const HISTOGRAM_UNIT: HistUnit = HistUnit::Nanoseconds;

/// Pass or fail of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed (a run with no checks passes).
    Pass,
    /// At least one check failed.
    Fail,
}

impl Verdict {
    /// "pass" or "fail".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}

/// Latency summary of one operation kind, from one HdrHistogram. All values in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Operations recorded in the histogram.
    pub count: u64,
    /// Operations of this kind that returned an error (not recorded in the histogram).
    pub errors: u64,
    /// Arithmetic mean, microseconds.
    pub mean_us: f64,
    /// Smallest recorded value, microseconds.
    #[serde(default)]
    pub min_us: f64,
    /// 50th percentile, microseconds.
    pub p50_us: f64,
    /// 90th percentile, microseconds.
    pub p90_us: f64,
    /// 95th percentile, microseconds.
    #[serde(default)]
    pub p95_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile, microseconds.
    pub p999_us: f64,
    /// 99.99th percentile, microseconds.
    #[serde(default)]
    pub p9999_us: f64,
    /// Largest recorded value, microseconds.
    pub max_us: f64,
    /// The histogram itself, HdrHistogram V2 deflate in base64 (chaos reports), so shard
    /// reports merge exactly (`harness merge`); absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_b64: Option<String>,
}

/// One phase (load, run, ...) of one engine's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Phase name from the scenario ("load", "run", ...).
    pub name: String,
    /// Driver threads that ran the phase (0 in reports written before it was recorded).
    #[serde(default)]
    pub threads: usize,
    /// Records the phase ran over, in a scenario with `record_counts` (0 otherwise).
    #[serde(default, skip_serializing_if = "crate::scenario::is_zero_u64")]
    pub keys: u64,
    /// Operations completed in the phase, all kinds, errors included.
    pub ops: u64,
    /// Wall-clock duration of the phase, seconds.
    pub duration_s: f64,
    /// `ops / duration_s`, operations per second.
    pub throughput_ops_s: f64,
    /// Open-loop target rate in operations per second; absent for closed-loop phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ops_s: Option<f64>,
    /// Per operation kind ("read", "update", ...): response time. In open loop this is measured
    /// from the intended start (coordinated-omission corrected).
    pub latency: BTreeMap<String, LatencySummary>,
    /// Open loop only: per operation kind, service time (completion minus actual start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_latency: Option<BTreeMap<String, LatencySummary>>,
}

/// One one-second interval of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Start of the interval, seconds since the start of the run.
    pub t_s: f64,
    /// Phase running during the interval.
    pub phase: String,
    /// Operations completed in the interval.
    pub ops: u64,
    /// Operations per second over the interval.
    pub throughput_ops_s: f64,
    /// Median latency over the interval, all operation kinds, microseconds.
    pub p50_us: f64,
    /// 99th percentile over the interval, all operation kinds, microseconds.
    pub p99_us: f64,
    /// Operations that failed in the interval.
    #[serde(default)]
    pub errors: u64,
}

/// One sample of resource use during a run (see `resources`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourcePoint {
    /// Engine running when the sample was taken.
    pub engine: String,
    /// Seconds since the start of the run.
    pub t_s: f64,
    /// Resident set size of the harness process (the engine is in it).
    pub rss_bytes: u64,
    /// Bytes the engine's files occupy on disk.
    pub disk_bytes: u64,
    /// Length of the engine's write-ahead log files (`*-wal`), preallocated space included.
    #[serde(default)]
    pub wal_bytes: u64,
    /// Bytes the process passed to `write` calls so far (`/proc/self/io` wchar).
    pub wchar_bytes: u64,
    /// Bytes written so far to the block device holding the data, by every process
    /// (sectors written since boot x 512; 0 on tmpfs or when unknown).
    #[serde(default)]
    pub device_write_bytes: u64,
}

/// What one engine's load phase cost (its first round).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    pub engine: String,
    /// Records loaded.
    pub keys: u64,
    /// Key and value bytes of those records.
    pub user_bytes: u64,
    pub duration_s: f64,
    pub keys_per_s: f64,
    /// Bytes passed to `write` calls during the load.
    pub wchar_bytes: u64,
    /// Bytes written to the block device holding the data during the load, by every
    /// process on the machine (0 on tmpfs or when unknown).
    #[serde(default)]
    pub device_write_bytes: u64,
    /// `wchar_bytes / user_bytes`: bytes written per byte of user data.
    pub write_amplification: f64,
    /// Largest resident set seen while this engine ran.
    pub rss_bytes_max: u64,
    /// The engine's files at the end of its run.
    pub disk_bytes_end: u64,
}

/// The result of one checker (oracle, invariant, recovery verification, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Checker name, e.g. "bank_total_invariant".
    pub name: String,
    /// Whether the check held.
    pub passed: bool,
    /// What was checked, and on failure what was found (key, expected, actual, seed).
    pub detail: String,
}

/// One engine's results in a multi-engine (`--engine all`) run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineReport {
    /// Engine name ("ours", "redb", "sqlite", ...).
    pub engine: String,
    /// Number of interleaved rounds this engine ran.
    pub rounds: u32,
    /// Phases with histograms merged over all rounds.
    pub phases: Vec<PhaseReport>,
    /// Phases of each round separately, in round order (optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_round: Vec<RoundReport>,
}

/// The phases of one engine in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// Round number, from 0.
    pub round: u32,
    /// Phases in this round.
    pub phases: Vec<PhaseReport>,
}

/// Which direction of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Larger is better (throughput).
    Higher,
    /// Smaller is better (latency).
    Lower,
}

/// Our value against a peer's for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Our engine's value.
    pub ours: f64,
    /// The peer's value.
    pub peer: f64,
    /// `ours / peer`; absent when the peer's value is zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Which direction is better for this metric.
    pub better: Better,
    /// Whether our value is strictly better than the peer's.
    pub ours_better: bool,
}

/// p50 and p99 comparisons of one operation kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyComparison {
    /// Median latency, microseconds (lower is better).
    pub p50_us: Comparison,
    /// 99th percentile latency, microseconds (lower is better).
    pub p99_us: Comparison,
}

/// Our engine against one peer in one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// Phase name.
    pub phase: String,
    /// Our engine's name.
    pub ours: String,
    /// The peer engine's name.
    pub peer: String,
    /// Phase throughput, operations per second (higher is better).
    pub throughput_ops_s: Comparison,
    /// Per operation kind present in both engines' phase.
    pub latency: BTreeMap<String, LatencyComparison>,
}

/// An fsync probe taken in one round, so durable figures can be read against the disk's regime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsyncProbe {
    /// Round number, from 0.
    pub round: u32,
    /// fsyncs completed per second.
    pub fsyncs_per_s: f64,
    /// Median fsync latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile fsync latency, microseconds.
    pub p99_us: f64,
}

/// Crash-and-recover cycles of a chaos run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrashCycles {
    /// Number of crash cycles completed.
    pub count: u64,
    /// Time to reopen (recover) the database after each crash, one sample per cycle.
    pub reopen: LatencySummary,
    /// Time to verify the recovered state against the oracle, one sample per cycle.
    pub verify: LatencySummary,
    /// Each cycle (optional, may be capped by the driver).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<CrashCycle>,
}

/// One crash-and-recover cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrashCycle {
    /// Cycle number, from 0.
    pub cycle: u64,
    /// Operation count at which the crash happened.
    pub at_op: u64,
    /// How the process or storage was crashed ("kill9", "power_loss", ...).
    pub kind: String,
    /// Reopen time, microseconds.
    pub reopen_us: f64,
    /// Verification time, microseconds.
    pub verify_us: f64,
    /// Whether the recovered state matched the oracle.
    pub passed: bool,
}

/// One seeded fault injected during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// Operation count at which the fault fired.
    pub at_op: u64,
    /// Fault kind ("torn_write", "enospc", "fsync_error", "bit_flip", ...).
    pub kind: String,
    /// File the fault hit, relative to the database directory.
    pub file: String,
    /// Byte offset in the file, when the fault has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Free-form specifics (length, garbage seed, errno, ...).
    pub detail: String,
}

/// Everything a run produced. The driver fills it; the writers render it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Report {
    /// Schema version, [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Engine name, or "all" for a multi-engine run.
    pub engine: String,
    /// The one seed everything random derived from.
    pub seed: u64,
    /// `git rev-parse --short HEAD` at run time, or "unknown".
    pub git_rev: String,
    /// Run start, RFC 3339 UTC ("2025-01-31T12:34:56Z").
    pub started_at: String,
    /// The resolved scenario (every default filled in), as JSON.
    pub config: serde_json::Value,
    /// Phases of the engine under test (single-engine runs).
    pub phases: Vec<PhaseReport>,
    /// One point per second of the run.
    pub timeline: Vec<TimelinePoint>,
    /// Error counts by kind ("io", "conflict", "timeout", ...).
    pub errors: BTreeMap<String, u64>,
    /// Checker results; the verdict derives from them.
    pub checks: Vec<Check>,
    /// Multi-engine runs: each engine's results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<EngineReport>,
    /// Resource use over the run, about once a second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourcePoint>,
    /// What each engine's load cost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loads: Vec<LoadSummary>,
    /// Multi-engine runs: our engine against each peer, per phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// Multi-engine runs: one fsync probe per round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fsync_probe: Vec<FsyncProbe>,
    /// Chaos runs: crash-and-recover cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_cycles: Option<CrashCycles>,
    /// Chaos runs: the seeded faults, in firing order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_schedule: Option<Vec<FaultEvent>>,
    /// The one command line that reproduces this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
    /// `run --shard` and `merge`: which slice of the scenario this report covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
}

impl Report {
    /// A report with the run identity filled in: schema version, git revision of the current
    /// directory's repository, and the start time (now). Everything else empty.
    pub fn new(scenario: &str, engine: &str, seed: u64, config: serde_json::Value) -> Report {
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            scenario: scenario.to_string(),
            engine: engine.to_string(),
            seed,
            git_rev: git_rev_short(),
            started_at: rfc3339_utc(std::time::SystemTime::now()),
            config,
            ..Report::default()
        }
    }

    /// Fail when any check failed, pass otherwise (including when there are no checks).
    pub fn verdict(&self) -> Verdict {
        // A report that judged nothing has not passed: it fails, never exits 0 unseen.
        if self.checks.is_empty() || self.checks.iter().any(|check| !check.passed) {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }

    /// Name of the check [`Report::require_checks`] adds to a report with none.
    pub const NO_CHECKS: &'static str = "checks_present";

    /// A report with no check gains one failed check saying so: a run or merge that judged
    /// nothing fails, and its report says why.
    pub fn require_checks(&mut self) {
        if self.checks.is_empty() {
            self.checks.push(Check {
                name: Self::NO_CHECKS.into(),
                passed: false,
                detail: "observed nothing: the run registered no check, so nothing was judged"
                    .into(),
            });
        }
    }

    /// The failed checks, in report order.
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| !check.passed)
    }
}

impl LatencySummary {
    /// Summary of a histogram recorded in [`HISTOGRAM_UNIT`] (nanoseconds).
    pub fn from_histogram(histogram: &Histogram<u64>, errors: u64) -> LatencySummary {
        summary::from_histogram_unit(histogram, HISTOGRAM_UNIT, errors)
    }

    /// Summary of a histogram whose values are in `unit`.
    pub fn from_histogram_unit(
        histogram: &Histogram<u64>,
        unit: HistUnit,
        errors: u64,
    ) -> LatencySummary {
        summary::from_histogram_unit(histogram, unit, errors)
    }
}

/// Writes `dir/report.json` (pretty-printed, with the derived verdict). Returns the path.
pub fn write_json(report: &Report, dir: &Path) -> anyhow::Result<PathBuf> {
    json::write_json(report, dir)
}

/// Serializes the report to the report.json text (pretty-printed, with the derived verdict).
pub fn to_json_string(report: &Report) -> anyhow::Result<String> {
    json::to_json_string(report)
}

/// Parses report.json text back into a [`Report`] (the stored verdict is ignored: it derives).
pub fn from_json_str(text: &str) -> anyhow::Result<Report> {
    json::from_json_str(text)
}

/// Writes `dir/report.html`: one self-contained file, inline CSS and SVG. Returns the path.
pub fn write_html(report: &Report, dir: &Path) -> anyhow::Result<PathBuf> {
    html::write_html(report, dir)
}

/// Renders the report.html text.
pub fn render_html(report: &Report) -> String {
    html::render_html(report)
}

/// Writes `dir/<op_name>.hgrm`: the HdrHistogram percentile distribution of a histogram
/// recorded in [`HISTOGRAM_UNIT`], values printed in microseconds. `op_name` is sanitized into
/// a file name (characters other than `[A-Za-z0-9._-]` become `_`). Returns the path.
pub fn write_hgrm(
    op_name: &str,
    histogram: &Histogram<u64>,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    hgrm::write_hgrm(op_name, histogram, dir)
}

/// Writes report.json, report.html and one `.hgrm` file per histogram (keyed by name, e.g.
/// "run.read") into `dir`, creating it if needed. Returns the paths written.
pub fn write_all(
    report: &Report,
    histograms: &BTreeMap<String, Histogram<u64>>,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = vec![write_json(report, dir)?, write_html(report, dir)?];
    for (name, histogram) in histograms {
        paths.push(write_hgrm(name, histogram, dir)?);
    }
    Ok(paths)
}

/// Aligned terminal table: one row per phase and operation kind with ops/s, p50, p99, p99.9,
/// max and errors, followed by failed checks and the verdict.
pub fn summary_table(report: &Report) -> String {
    table::summary_table(report)
}

/// Aligned terminal table of [`Report::ratios`] (empty string when there are none).
pub fn ratio_table(report: &Report) -> String {
    table::ratio_table(report)
}
