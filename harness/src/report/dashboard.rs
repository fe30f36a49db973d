//! `harness dashboard HISTORY... --out DIR`: one self-contained page over history files
//! (`harness run --history`, see `history.rs`): a chart per metric series over the runs, the
//! biggest movers first, the failing runs with their reproduce commands, and how fresh the
//! data is.
//!
//! The page is meant for a CI artifact or GitHub Pages, so it carries everything inline: CSS,
//! SVG, the data as a JSON block and one small script (a text filter). It fetches nothing and
//! opens offline; without the script it still shows every chart and table.
//!
//! A *series* is (scenario, engine, phase, operation, metric) with metric ops/s or p99. Each
//! operation's ops/s is its successful count over the phase's duration; a phase with more than
//! one operation kind adds its total rate as operation `*`.
//!
//! **Movers rule.** For each series, `change = (latest − m) / m`, where `latest` is the value of
//! the series' last run and `m` the median of its previous runs (at most
//! [`BASELINE_RUNS_MAX`] of them, newest first). Series are ordered by `|change|`, largest
//! first; series with a single run or a zero median have no change and come last, by name.
//!
//! Runs are in *run order*: the lines as read, files in the order given.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, Read as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use super::html::escape;
use super::svg::{self, Axis, Band, LineChart, Scale, Series};
use super::time::rfc3339_utc;

/// Newest lines kept over all files (older ones are dropped and counted): every run is one x
/// position, and a chart draws at most `svg::POINTS_MAX` points per series.
pub const LINES_MAX: usize = svg::POINTS_MAX;
/// Longest line accepted: a history line is a few KiB, and a damaged file (or a binary given
/// by mistake) must not make the reader allocate without bound.
pub const LINE_BYTES_MAX: usize = 1 << 20;
/// Series drawn as charts (the biggest movers); every chart is some 10 KiB of SVG and a
/// screen tall, and past a few dozen nobody scrolls. The movers table lists the rest.
pub const SERIES_CHARTED_MAX: usize = 48;
/// Rows of the movers table, for the same reason at a larger scale.
pub const MOVERS_ROWS_MAX: usize = 500;
/// Failing runs listed, newest first: a broken build fails every run, and the first hundred
/// say what all of them would.
pub const FAILURES_SHOWN_MAX: usize = 100;
/// Previous runs the latest is compared with: the median of the last 20 follows the code as
/// it is now rather than as it was long ago, and is still robust to a few outliers.
pub const BASELINE_RUNS_MAX: usize = 20;
/// Malformed lines described one by one (stderr and page); the rest are only counted.
pub const WARNINGS_MAX: usize = 20;
/// Age past which the page calls its data stale: `bench.yml` appends on every push to main,
/// so a week without a line means the workflow stopped.
pub const STALE_AFTER_S: u64 = 7 * 86_400;
/// Most runs for which every run gets a grid line; past that the lines would merge into a
/// grey block (and cost a line per run in each of the charts).
const RUN_GRID_MAX: usize = 100;
/// Characters of a commit hash shown on axes and in tables.
const COMMIT_SHORT_CHARS: usize = 7;

/// Why no dashboard was written.
#[derive(Debug)]
pub enum DashboardError {
    /// A history file could not be opened or read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No well-formed line in any of the files.
    Empty { files: usize, malformed: usize },
    /// The output directory or page could not be written.
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DashboardError {
    /// Whether the input was at fault (exit 2) rather than the output (exit 1).
    #[must_use]
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, DashboardError::Write { .. })
    }
}

impl std::fmt::Display for DashboardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DashboardError::Read { path, source } => {
                write!(f, "reading {}: {source}", path.display())
            }
            DashboardError::Empty { files, malformed } => write!(
                f,
                "empty history: no well-formed line in {files} file(s) ({malformed} malformed)"
            ),
            DashboardError::Write { path, source } => {
                write!(f, "writing {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for DashboardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DashboardError::Read { source, .. } | DashboardError::Write { source, .. } => {
                Some(source)
            }
            DashboardError::Empty { .. } => None,
        }
    }
}

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Operations per second (higher is better).
    OpsPerS,
    /// 99th percentile latency in microseconds (lower is better).
    P99Us,
}

impl Metric {
    fn label(self) -> &'static str {
        match self {
            Metric::OpsPerS => "ops/s",
            Metric::P99Us => "p99",
        }
    }

    fn higher_is_better(self) -> bool {
        self == Metric::OpsPerS
    }

    fn format(self, value: f64) -> String {
        match self {
            Metric::OpsPerS => svg::format_count(value),
            Metric::P99Us => svg::format_latency(value),
        }
    }
}

/// One series: scenario × engine × phase × operation × metric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub scenario: String,
    pub engine: String,
    pub phase: String,
    /// Operation kind, or `*` for the phase's total rate.
    pub op: String,
    pub metric: Metric,
}

impl SeriesKey {
    /// `scenario · engine · phase · op · metric`.
    #[must_use]
    pub fn name(&self) -> String {
        format!(
            "{} · {} · {} · {} · {}",
            self.scenario,
            self.engine,
            self.phase,
            self.op,
            self.metric.label()
        )
    }
}

/// One well-formed history line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub commit: String,
    pub scenario: String,
    /// The engine the run was asked for (`engine-full`, `all`, ...).
    pub engine: String,
    pub seed: u64,
    /// `started_at` as written (RFC 3339 UTC), when the line has one.
    pub started_at: Option<String>,
    /// `started_at` in seconds since the Unix epoch, when it parses.
    pub epoch_s: Option<u64>,
    pub failed: bool,
    pub failed_checks: Vec<String>,
    /// `harness run <scenario> --seed <seed> --engine <engine>` plus the run's `--set`s.
    pub reproduce: String,
    pub values: Vec<(SeriesKey, f64)>,
}

/// Every line read, in run order.
#[derive(Debug, Default)]
pub struct History {
    pub runs: Vec<Run>,
    pub files: Vec<PathBuf>,
    /// Lines skipped as malformed.
    pub malformed: usize,
    /// The first [`WARNINGS_MAX`] malformed lines: `file:line: why`.
    pub warnings: Vec<String>,
    /// Well-formed lines dropped because more than [`LINES_MAX`] were read (the oldest go).
    pub dropped: usize,
}

impl History {
    fn note_malformed(&mut self, path: &Path, number: usize, why: &str) {
        self.malformed += 1;
        if self.warnings.len() < WARNINGS_MAX {
            self.warnings
                .push(format!("{}:{number}: {why}", path.display()));
        }
    }
}

/// Reads the history files, in order.
///
/// # Errors
/// An unreadable file, or no well-formed line at all ([`DashboardError::Empty`]).
pub fn read_histories(paths: &[PathBuf]) -> Result<History, DashboardError> {
    let mut history = History::default();
    let mut runs = VecDeque::new();
    for path in paths {
        read_file(path, &mut history, &mut runs)?;
        history.files.push(path.clone());
    }
    history.runs = runs.into();
    if history.runs.is_empty() {
        return Err(DashboardError::Empty {
            files: paths.len(),
            malformed: history.malformed,
        });
    }
    Ok(history)
}

fn read_file(
    path: &Path,
    history: &mut History,
    runs: &mut VecDeque<Run>,
) -> Result<(), DashboardError> {
    let read_error = |source| DashboardError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        number += 1;
        let why = match next_line(&mut reader, &mut buf).map_err(read_error)? {
            Line::End => return Ok(()),
            Line::TooLong => format!("longer than {LINE_BYTES_MAX} bytes"),
            Line::Text if buf.trim_ascii().is_empty() => continue,
            Line::Text => match parse_line(&buf) {
                Ok(run) => {
                    if runs.len() == LINES_MAX {
                        runs.pop_front();
                        history.dropped += 1;
                    }
                    runs.push_back(run);
                    continue;
                }
                Err(why) => why,
            },
        };
        history.note_malformed(path, number, &why);
    }
}

enum Line {
    End,
    Text,
    TooLong,
}

/// Reads one line into `buf`, never holding more than [`LINE_BYTES_MAX`] + 1 bytes of it.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let limit = LINE_BYTES_MAX as u64 + 1;
    if reader.by_ref().take(limit).read_until(b'\n', buf)? == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') || buf.len() <= LINE_BYTES_MAX {
        return Ok(Line::Text);
    }
    buf.clear();
    // Skip the rest of the over-long line without keeping it.
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(Line::TooLong);
        }
        let (used, found) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        reader.consume(used);
        if found {
            return Ok(Line::TooLong);
        }
    }
}

/// Parses one history line; the error says why it is malformed.
///
/// # Errors
/// Not JSON, not an object, or without `scenario`, `seed` or an `engines` list.
pub fn parse_line(bytes: &[u8]) -> Result<Run, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let text = |field: &str| v.get(field).and_then(Value::as_str);
    let scenario = text("scenario").ok_or("no `scenario` string")?;
    let seed = v
        .get("seed")
        .and_then(Value::as_u64)
        .ok_or("no `seed` integer")?;
    let engines = v
        .get("engines")
        .and_then(Value::as_array)
        .ok_or("no `engines` list")?;
    let engine = text("engine").unwrap_or("unknown");
    let failed_checks: Vec<String> = v
        .get("failed_checks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let started_at = text("started_at").map(str::to_string);
    let mut values = Vec::new();
    for e in engines {
        engine_values(scenario, e, &mut values)?;
    }
    Ok(Run {
        commit: text("commit").unwrap_or("unknown").to_string(),
        scenario: scenario.to_string(),
        engine: engine.to_string(),
        seed,
        epoch_s: started_at.as_deref().and_then(parse_rfc3339_utc),
        started_at,
        failed: text("verdict") == Some("fail") || !failed_checks.is_empty(),
        failed_checks,
        reproduce: reproduce_command(scenario, seed, engine, text("reproduce")),
        values,
    })
}

/// The values one engine's phases contribute.
fn engine_values(
    scenario: &str,
    engine: &Value,
    out: &mut Vec<(SeriesKey, f64)>,
) -> Result<(), String> {
    let name = engine
        .get("engine")
        .and_then(Value::as_str)
        .ok_or("an engine without a name")?;
    let phases = engine.get("phases").and_then(Value::as_array);
    for phase in phases.into_iter().flatten() {
        let phase_name = phase
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a phase without a name")?;
        let number = |v: &Value, field: &str| v.get(field).and_then(Value::as_f64);
        let duration = number(phase, "duration_s").unwrap_or(0.0);
        let key = |op: &str, metric| SeriesKey {
            scenario: scenario.to_string(),
            engine: name.to_string(),
            phase: phase_name.to_string(),
            op: op.to_string(),
            metric,
        };
        let ops = phase.get("latency").and_then(Value::as_object);
        for (op, summary) in ops.into_iter().flatten() {
            if let Some(count) = number(summary, "count").filter(|_| duration > 0.0) {
                out.push((key(op, Metric::OpsPerS), count / duration));
            }
            if let Some(p99) = number(summary, "p99_us") {
                out.push((key(op, Metric::P99Us), p99));
            }
        }
        let kinds = ops.map_or(0, serde_json::Map::len);
        if let Some(rate) = number(phase, "ops_per_s").filter(|_| kinds > 1) {
            out.push((key("*", Metric::OpsPerS), rate));
        }
    }
    out.retain(|(_, v)| v.is_finite());
    Ok(())
}

/// `harness run <scenario> --seed <seed> --engine <engine>`, with the `--set` overrides of the
/// stored command (they come last in it) so the run is reproduced as it was configured.
fn reproduce_command(scenario: &str, seed: u64, engine: &str, stored: Option<&str>) -> String {
    let sets = stored
        .and_then(|s| s.find(" --set ").map(|at| &s[at..]))
        .unwrap_or("");
    format!(
        "harness run {} --seed {seed} --engine {}{sets}",
        crate::run::shell_quote(scenario),
        crate::run::shell_quote(engine)
    )
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SSZ` (what `rfc3339_utc` writes), or
/// None for any other form or a time before 1970.
#[must_use]
pub fn parse_rfc3339_utc(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let num = |from: usize, to: usize| text.get(from..to)?.parse::<u64>().ok();
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let valid = year >= 1970
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    Some(days_from_civil(year, month, day)? * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of `civil_from_days` in
/// `time.rs`): eras of 400 years, with years starting in March so the leap day comes last.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

/// Every series of `runs`: (run index, value) in run order.
#[must_use]
pub fn series(runs: &[Run]) -> BTreeMap<SeriesKey, Vec<(usize, f64)>> {
    let mut out: BTreeMap<SeriesKey, Vec<(usize, f64)>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for (key, value) in &run.values {
            out.entry(key.clone()).or_default().push((i, *value));
        }
    }
    out
}

/// One series with its latest value against the median of the runs before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mover {
    pub key: SeriesKey,
    /// (run index, value), in run order.
    pub points: Vec<(usize, f64)>,
    pub latest: f64,
    /// The median of up to [`BASELINE_RUNS_MAX`] previous values and how many there were.
    pub baseline: Option<(f64, usize)>,
    /// `(latest − median) / median`; None with no previous run or a zero median.
    pub change: Option<f64>,
    /// `compare`'s verdict on the latest commit's runs against up to
    /// [`BASELINE_RUNS_MAX`] runs of earlier commits (None: no earlier commit). Only a
    /// regression or an improvement there is coloured.
    pub judged: Option<crate::compare::Verdict>,
}

impl Mover {
    fn new(key: SeriesKey, points: Vec<(usize, f64)>, commits: &[String]) -> Mover {
        let judged = judge_latest_commit(&key, &points, commits);
        let latest = points.last().map_or(0.0, |p| p.1);
        let before = &points[..points.len().saturating_sub(1)];
        let window = &before[before.len().saturating_sub(BASELINE_RUNS_MAX)..];
        let values: Vec<f64> = window.iter().map(|p| p.1).collect();
        let baseline = (!values.is_empty()).then(|| (median(&values), values.len()));
        let change = baseline
            .map(|(m, _)| m)
            .filter(|m| *m > 0.0)
            .map(|m| (latest - m) / m);
        Mover {
            key,
            points,
            latest,
            baseline,
            change,
            judged,
        }
    }

    /// Whether the series moved in the bad direction for this metric, when `compare`'s test
    /// calls the move a change (significant, and beyond the larger of 2% and the baseline's
    /// noise band); None when it does not.
    fn worse(&self) -> Option<bool> {
        use crate::compare::Verdict;
        // `compare` reads higher as better; a latency's rise is its "improvement".
        let lower = match self.judged.as_ref()? {
            Verdict::Regression => true,
            Verdict::Improvement => false,
            Verdict::Same | Verdict::Inconclusive => return None,
        };
        Some(lower == self.key.metric.higher_is_better())
    }
}

/// `compare::judge` of the runs of the series' latest commit against up to
/// [`BASELINE_RUNS_MAX`] runs of the commits before it (None when there are none).
fn judge_latest_commit(
    key: &SeriesKey,
    points: &[(usize, f64)],
    commits: &[String],
) -> Option<crate::compare::Verdict> {
    let commit_of = |i: usize| commits.get(i).map(String::as_str);
    let latest = commit_of(points.last()?.0)?;
    let first = points.iter().position(|p| commit_of(p.0) == Some(latest))?;
    let cand: Vec<f64> = (points[first..].iter())
        .filter(|p| commit_of(p.0) == Some(latest))
        .map(|p| p.1)
        .collect();
    let before = &points[..first];
    let base: Vec<f64> = before[before.len().saturating_sub(BASELINE_RUNS_MAX)..]
        .iter()
        .map(|p| p.1)
        .collect();
    if base.is_empty() {
        return None;
    }
    let name = (key.scenario.clone(), key.engine.clone(), key.name());
    Some(crate::compare::judge(name, &base, &cand).verdict)
}

/// The series ordered by the movers rule: `|change|` descending, then those without a change
/// by name.
#[must_use]
pub fn movers(series: BTreeMap<SeriesKey, Vec<(usize, f64)>>, commits: &[String]) -> Vec<Mover> {
    let mut movers: Vec<Mover> = series
        .into_iter()
        .map(|(key, points)| Mover::new(key, points, commits))
        .collect();
    movers.sort_by(|a, b| match (a.change, b.change) {
        (Some(x), Some(y)) => y.abs().total_cmp(&x.abs()).then_with(|| a.key.cmp(&b.key)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.key.cmp(&b.key),
    });
    movers
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A built page and what it covers.
#[derive(Debug)]
pub struct Dashboard {
    pub html: String,
    pub history: History,
    pub series: usize,
    pub charted: usize,
    pub failing: usize,
}

/// Reads `paths` and renders the page as of `now`.
///
/// # Errors
/// As [`read_histories`].
pub fn build(paths: &[PathBuf], now: SystemTime) -> Result<Dashboard, DashboardError> {
    let history = read_histories(paths)?;
    let commits: Vec<String> = history.runs.iter().map(|r| r.commit.clone()).collect();
    let movers = movers(series(&history.runs), &commits);
    let html = render(&history, &movers, now);
    Ok(Dashboard {
        html,
        series: movers.len(),
        charted: movers.len().min(SERIES_CHARTED_MAX),
        failing: history.runs.iter().filter(|r| r.failed).count(),
        history,
    })
}

/// Builds the page and writes it as `out_dir/index.html`, creating the folder.
///
/// # Errors
/// As [`build`], and [`DashboardError::Write`].
pub fn write_dashboard(
    paths: &[PathBuf],
    out_dir: &Path,
    now: SystemTime,
) -> Result<(PathBuf, Dashboard), DashboardError> {
    let dashboard = build(paths, now)?;
    let page = out_dir.join("index.html");
    let write_error = |source| DashboardError::Write {
        path: page.clone(),
        source,
    };
    std::fs::create_dir_all(out_dir).map_err(write_error)?;
    std::fs::write(&page, &dashboard.html).map_err(write_error)?;
    Ok((page, dashboard))
}

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1a202c;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 16px 40px}
h1{font-size:24px;margin:0 0 6px}
h2{font-size:18px;margin:0 0 10px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:16px 18px;margin:14px 0}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 9px;border-bottom:1px solid #e6e9ee;text-align:right;white-space:nowrap}
th{background:#f0f2f5;font-weight:600;color:#2d3748}
th.l,td.l{text-align:left}
td.wrap{white-space:normal;text-align:left}
td.better{background:#e8f6ec;color:#17663a}td.worse{background:#fdeeee;color:#a12a2a}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f0f2f5;padding:1px 4px;border-radius:3px;overflow-wrap:anywhere}
.note{color:#5a6475;font-size:13px;margin:6px 0 10px}
.stale{color:#a12a2a;font-weight:700}
.scroll{overflow-x:auto;max-height:640px;overflow-y:auto}
svg.chart{width:100%;height:auto;display:block;margin:4px 0 8px}
#filter{font:inherit;padding:4px 8px;width:360px;margin:0 0 6px}
";

/// The movers rule as the page states it (kept beside the code that applies it).
const RULE: &str = "Ordering: for each series, change = (latest − m) / m, where latest is the \
     value of the series' last run and m the median of its previous runs (at most 20, the \
     newest). Series are sorted by |change|, largest first; a series with one run or a zero \
     median has no change and comes last, by name. A change is coloured only when `harness \
     compare`'s test calls it one: the runs of the latest commit against up to 20 runs of the \
     commits before it, a Mann-Whitney U test at p < 0.05 and a change of the medians beyond \
     the larger of 2% and the baseline's noise band (so one run, or runs of one commit, are \
     never coloured); red is worse (lower ops/s, higher p99), green better.";

/// The whole page.
fn render(history: &History, movers: &[Mover], now: SystemTime) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>harness dashboard</title><style>{STYLE}</style></head><body><main>\
         <h1>Benchmark dashboard</h1>"
    );
    freshness(&mut out, history, now);
    movers_table(&mut out, movers);
    failures_table(&mut out, &history.runs);
    charts(&mut out, movers, &history.runs);
    data_block(&mut out, history, movers, now);
    out.push_str("<script>");
    out.push_str(SCRIPT);
    out.push_str("</script></main></body></html>\n");
    out
}

/// Newest line, its age, and what the page covers.
fn freshness(out: &mut String, history: &History, now: SystemTime) {
    let generated = rfc3339_utc(now);
    let now_s = parse_rfc3339_utc(&generated).unwrap_or(0);
    let newest = history.runs.iter().filter_map(|r| r.epoch_s).max();
    let oldest = history.runs.iter().filter_map(|r| r.epoch_s).min();
    let commits: BTreeSet<&str> = history.runs.iter().map(|r| r.commit.as_str()).collect();
    out.push_str("<section id=\"freshness\"><h2>Freshness</h2><p>");
    match (newest, oldest) {
        (Some(newest), Some(oldest)) => {
            let age = now_s.saturating_sub(newest);
            let stale = if age > STALE_AFTER_S {
                " <span class=\"stale\">stale</span>"
            } else {
                ""
            };
            let _ = write!(
                out,
                "Newest line: <b>{}</b>, <b id=\"age\">{}</b> old when this page was generated \
                 ({generated}){stale}. Lines from {} to {}.",
                rfc3339_utc(epoch(newest)),
                format_age(age),
                rfc3339_utc(epoch(oldest)),
                rfc3339_utc(epoch(newest)),
            );
        }
        _ => {
            let _ = write!(
                out,
                "No line carries a readable time (started_at); generated {generated}."
            );
        }
    }
    let files: Vec<String> = history
        .files
        .iter()
        .map(|f| format!("<code>{}</code>", escape(&f.display().to_string())))
        .collect();
    let _ = write!(
        out,
        "</p><p>Covers <b id=\"lines\">{}</b> {} from <b id=\"commits\">{}</b> {}, read \
         from {}.</p>",
        history.runs.len(),
        plural(history.runs.len(), "run (line)", "runs (lines)"),
        commits.len(),
        plural(commits.len(), "commit", "commits"),
        files.join(", ")
    );
    skipped(out, history);
    out.push_str("</section>");
}

/// The malformed and dropped line counts, with the first reasons.
fn skipped(out: &mut String, history: &History) {
    let _ = write!(
        out,
        "<p id=\"malformed\" data-count=\"{}\">Malformed lines skipped: <b>{}</b>.",
        history.malformed, history.malformed
    );
    if history.dropped > 0 {
        let _ = write!(
            out,
            " Oldest well-formed lines dropped past the {LINES_MAX}-line limit: <b>{}</b>.",
            history.dropped
        );
    }
    out.push_str("</p>");
    if !history.warnings.is_empty() {
        out.push_str("<ul class=\"note\">");
        for warning in &history.warnings {
            let _ = write!(out, "<li><code>{}</code></li>", escape(warning));
        }
        out.push_str("</ul>");
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn epoch(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
}

/// "40 s", "12 min", "3.5 h", "9.0 days".
fn format_age(seconds: u64) -> String {
    let s = seconds as f64;
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{:.0} min", s / 60.0),
        7200..=172_799 => format!("{:.1} h", s / 3600.0),
        _ => format!("{:.1} days", s / 86_400.0),
    }
}

fn short(commit: &str) -> &str {
    commit
        .char_indices()
        .nth(COMMIT_SHORT_CHARS)
        .map_or(commit, |(at, _)| &commit[..at])
}

/// The movers table: every series (up to [`MOVERS_ROWS_MAX`]) by the movers rule.
fn movers_table(out: &mut String, movers: &[Mover]) {
    let _ = write!(
        out,
        "<section id=\"movers-section\"><h2>Biggest movers</h2><p class=\"note\">{RULE}</p>\
         <input id=\"filter\" type=\"search\" placeholder=\"filter series (scenario, engine, \
         phase, op)\" hidden><div class=\"scroll\"><table id=\"movers\"><thead><tr>\
         <th>#</th><th class=\"l\">series</th><th>latest</th><th>median before</th>\
         <th>runs before</th><th>change</th></tr></thead><tbody>"
    );
    for (rank, m) in movers.iter().enumerate().take(MOVERS_ROWS_MAX) {
        let class = match m.worse() {
            Some(true) => " class=\"worse\"",
            Some(false) => " class=\"better\"",
            None => "",
        };
        let name = escape(&m.key.name());
        let label = if rank < SERIES_CHARTED_MAX {
            format!("<a href=\"#s{rank}\">{name}</a>")
        } else {
            name
        };
        let (median, before) = m
            .baseline
            .map_or(("–".to_string(), 0), |(v, n)| (m.key.metric.format(v), n));
        let change = m
            .change
            .map_or("–".to_string(), |c| format!("{:+.1}%", c * 100.0));
        let _ = write!(
            out,
            "<tr data-key=\"{}\"><td>{}</td><td class=\"l\">{label}</td><td>{}</td><td>{median}\
             </td><td>{before}</td><td{class}>{change}</td></tr>",
            escape(&m.key.name()),
            rank + 1,
            m.key.metric.format(m.latest),
        );
    }
    out.push_str("</tbody></table></div>");
    if movers.len() > MOVERS_ROWS_MAX {
        let _ = write!(
            out,
            "<p class=\"note\">{} more series not listed (limit {MOVERS_ROWS_MAX}).</p>",
            movers.len() - MOVERS_ROWS_MAX
        );
    }
    out.push_str("</section>");
}

/// Failing runs, newest first, with their failed checks and reproduce commands.
fn failures_table(out: &mut String, runs: &[Run]) {
    let failing: Vec<&Run> = runs.iter().rev().filter(|r| r.failed).collect();
    let _ = write!(
        out,
        "<section id=\"failures-section\"><h2>Failing runs ({})</h2>",
        failing.len()
    );
    if failing.is_empty() {
        out.push_str("<p id=\"no-failures\">No failing run in the history.</p></section>");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table id=\"failures\"><thead><tr><th class=\"l\">started</th>\
         <th class=\"l\">commit</th><th class=\"l\">scenario</th><th class=\"l\">engine</th>\
         <th>seed</th><th class=\"l\">failed checks</th><th class=\"l\">reproduce</th></tr>\
         </thead><tbody>",
    );
    for run in failing.iter().take(FAILURES_SHOWN_MAX) {
        let checks = if run.failed_checks.is_empty() {
            "(verdict fail, no check named)".to_string()
        } else {
            run.failed_checks.join(", ")
        };
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td><td class=\"l\">{}\
             </td><td class=\"l\">{}</td><td>{}</td><td class=\"wrap\">{}</td>\
             <td class=\"wrap\"><code>{}</code></td></tr>",
            escape(run.started_at.as_deref().unwrap_or("?")),
            escape(short(&run.commit)),
            escape(&run.scenario),
            escape(&run.engine),
            run.seed,
            escape(&checks),
            escape(&run.reproduce),
        );
    }
    out.push_str("</tbody></table></div>");
    if failing.len() > FAILURES_SHOWN_MAX {
        let _ = write!(
            out,
            "<p class=\"note\">{} older failing runs not listed (limit {FAILURES_SHOWN_MAX}).</p>",
            failing.len() - FAILURES_SHOWN_MAX
        );
    }
    out.push_str("</section>");
}

/// One chart per series, biggest movers first, up to [`SERIES_CHARTED_MAX`].
fn charts(out: &mut String, movers: &[Mover], runs: &[Run]) {
    let _ = write!(
        out,
        "<section id=\"charts\"><h2>Series ({} charted of {})</h2><p class=\"note\">x: runs in \
         run order, labelled with the short commit at the first run of each commit; shaded: \
         runs of the scenario that failed a check; dashed: the median the latest run is \
         compared with.</p>",
        movers.len().min(SERIES_CHARTED_MAX),
        movers.len()
    );
    let x = run_axis(runs);
    for (rank, m) in movers.iter().enumerate().take(SERIES_CHARTED_MAX) {
        let _ = write!(
            out,
            "<div class=\"series\" id=\"s{rank}\" data-key=\"{}\">{}</div>",
            escape(&m.key.name()),
            fail_bands_red(&chart(m, runs, &x).render())
        );
    }
    out.push_str("</section>");
}

/// `svg.rs` shades bands in two pale neutral tints (they mark phases in run reports); here
/// every band is a failing run, so both tints become a pale red. Those two fills are used by
/// bands only, so the replacement touches nothing else.
fn fail_bands_red(chart_svg: &str) -> String {
    chart_svg
        .replace("fill=\"#eef3fa\"", "fill=\"#fbe3e3\"")
        .replace("fill=\"#f7f7f2\"", "fill=\"#fbe3e3\"")
}

/// x: one position per run, a labelled tick where a new commit starts and, for short
/// histories, an unlabelled grid line at every other run so runs can be told apart.
fn run_axis(runs: &[Run]) -> Axis {
    let mut ticks = Vec::new();
    let mut others = Vec::new();
    let mut previous: Option<&str> = None;
    for (i, run) in runs.iter().enumerate() {
        if previous != Some(run.commit.as_str()) {
            ticks.push((i as f64, short(&run.commit).to_string()));
        } else if runs.len() <= RUN_GRID_MAX {
            others.push((i as f64, String::new()));
        }
        previous = Some(run.commit.as_str());
    }
    // svg.rs skips a label that would overlap the one drawn before it, in tick order: the
    // commit labels come first so an empty tick never hides one.
    ticks.extend(others);
    Axis {
        label: "run (short commit at its first run)".to_string(),
        scale: Scale::Linear,
        min: -0.5,
        max: runs.len().max(1) as f64 - 0.5,
        ticks,
    }
}

fn chart(m: &Mover, runs: &[Run], x: &Axis) -> LineChart {
    let data_max = m
        .points
        .iter()
        .map(|p| p.1)
        .fold(m.baseline.map_or(0.0, |b| b.0), f64::max);
    let format = match m.key.metric {
        Metric::OpsPerS => svg::format_count,
        Metric::P99Us => svg::format_latency,
    };
    let y = Axis::linear(m.key.metric.label(), 0.0, data_max, format);
    let mut series = vec![Series {
        name: "each run".to_string(),
        color: svg::color(0),
        dashed: false,
        markers: true,
        points: m.points.iter().map(|(i, v)| (*i as f64, *v)).collect(),
    }];
    if let Some((median, n)) = m.baseline {
        series.push(Series {
            name: format!("median of the {n} runs before the latest"),
            color: svg::color(7),
            dashed: true,
            markers: false,
            points: vec![(x.min, median), (x.max, median)],
        });
    }
    let bands = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.failed && r.scenario == m.key.scenario)
        .map(|(i, _)| Band {
            x0: i as f64 - 0.5,
            x1: i as f64 + 0.5,
            label: "fail".to_string(),
        })
        .collect();
    let change = m.change.map_or(String::new(), |c| {
        format!(" ({:+.1}% vs median)", c * 100.0)
    });
    LineChart {
        title: format!("{}{change}", m.key.name()),
        x: x.clone(),
        y,
        series,
        bands,
    }
}

/// The data behind the page, inline as JSON (for the script and for anyone saving the page).
fn data_block(out: &mut String, history: &History, movers: &[Mover], now: SystemTime) {
    let series: Vec<Value> = movers
        .iter()
        .take(MOVERS_ROWS_MAX)
        .map(|m| {
            json!({
                "name": m.key.name(), "scenario": m.key.scenario, "engine": m.key.engine,
                "phase": m.key.phase, "op": m.key.op, "metric": m.key.metric.label(),
                "latest": m.latest, "median_before": m.baseline.map(|b| b.0),
                "change": m.change, "points": m.points,
            })
        })
        .collect();
    let runs: Vec<Value> = history
        .runs
        .iter()
        .map(|r| {
            json!({ "commit": r.commit, "scenario": r.scenario, "engine": r.engine,
                         "seed": r.seed, "started_at": r.started_at, "failed": r.failed })
        })
        .collect();
    let data = json!({
        "generated_at": rfc3339_utc(now), "malformed": history.malformed,
        "dropped": history.dropped, "runs": runs, "series": series,
    });
    // `<` only occurs inside JSON strings, where \u003c means the same; so no `</script>`
    // or `<!--` in the data can end the block early.
    let text = data.to_string().replace('<', "\\u003c");
    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"dashboard-data\">{text}</script>"
    );
}

/// Runs on load: checks the inline data against the rendered page, reports it in
/// `#dashboard-ready` (what the Chromium test looks for) and turns on the series filter.
const SCRIPT: &str = r##"
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  var charts = document.querySelectorAll("div.series svg").length;
  var rows = document.querySelectorAll("#movers tbody tr").length;
  var ready = document.createElement("p");
  ready.id = "dashboard-ready";
  ready.className = "note";
  ready.textContent = "Script ran: " + data.runs.length + " runs, " + data.series.length +
    " series in the data; " + charts + " charts and " + rows + " movers rows on the page.";
  document.getElementById("freshness").appendChild(ready);
  var filter = document.getElementById("filter");
  filter.hidden = false;
  filter.addEventListener("input", function () {
    var q = filter.value.toLowerCase();
    var hide = function (el) { el.hidden = q !== "" && el.dataset.key.toLowerCase().indexOf(q) < 0; };
    document.querySelectorAll("div.series").forEach(hide);
    document.querySelectorAll("#movers tbody tr").forEach(hide);
  });
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    /// A history line with one phase `run` of one op `read`.
    fn line(commit: &str, seed: u64, rate: f64, p99: f64, failed: &[&str]) -> String {
        json!({
            "schema": 1, "commit": commit, "started_at": "2026-01-02T03:04:05Z",
            "scenario": "ycsb/c", "engine": "engine-full", "seed": seed,
            "verdict": if failed.is_empty() { "pass" } else { "fail" },
            "failed_checks": failed,
            "reproduce": format!("harness run ycsb/c --seed {seed} --set run.ops=10"),
            "engines": [{ "engine": "engine-full", "round_samples": [], "phases": [{
                "name": "run", "threads": 1, "ops": 1000, "duration_s": 1.0,
                "ops_per_s": rate,
                "latency": { "read": { "count": rate, "errors": 0, "p50_us": 1.0,
                                       "p99_us": p99, "p999_us": 9.0, "max_us": 10.0 } },
            }]}],
        })
        .to_string()
    }

    fn write_lines(lines: &[String]) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("history.ndjson");
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok((dir, path))
    }

    fn key(op: &str, metric: Metric) -> SeriesKey {
        SeriesKey {
            scenario: "s".into(),
            engine: "e".into(),
            phase: "run".into(),
            op: op.into(),
            metric,
        }
    }

    #[test]
    fn movers_are_ordered_by_relative_change_against_the_median_before() -> anyhow::Result<()> {
        let mut input = BTreeMap::new();
        // Steady, then +5%: change 0.05.
        input.insert(
            key("a", Metric::OpsPerS),
            vec![(0, 100.0), (1, 100.0), (2, 105.0)],
        );
        // An outlier before does not move the median: 100, 100, 1000 -> 100; latest 70 -> -0.3.
        let b = vec![(0, 100.0), (1, 1000.0), (2, 100.0), (3, 70.0)];
        input.insert(key("b", Metric::OpsPerS), b);
        // p99 doubled: +1.0, the biggest.
        input.insert(key("c", Metric::P99Us), vec![(0, 10.0), (1, 20.0)]);
        // One run: no change, last.
        input.insert(key("d", Metric::OpsPerS), vec![(3, 5.0)]);
        let order = movers(input, &[]);
        let ops: Vec<&str> = order.iter().map(|m| m.key.op.as_str()).collect();
        anyhow::ensure!(ops == ["c", "b", "a", "d"], "{ops:?}");
        let b = &order[1];
        anyhow::ensure!(b.baseline == Some((100.0, 3)), "{:?}", b.baseline);
        anyhow::ensure!(b.change.is_some_and(|c| (c + 0.3).abs() < 1e-12));
        anyhow::ensure!(order[3].change.is_none());
        // No commits given: nothing is judged, so nothing is coloured.
        anyhow::ensure!(order.iter().all(|m| m.worse().is_none()));
        Ok(())
    }

    /// 27 runs of one commit, the last +32.5%: one commit's noise, never coloured. Nine runs
    /// of a commit 20% slower than nine before it: coloured worse (and a p99 rise too).
    #[test]
    fn only_a_change_compare_calls_significant_is_coloured() -> anyhow::Result<()> {
        let noisy: Vec<(usize, f64)> = (0..27)
            .map(|i| {
                (
                    i,
                    if i == 26 {
                        132.5
                    } else {
                        100.0 + (i % 5) as f64
                    },
                )
            })
            .collect();
        let one_commit = vec!["a".to_string(); 27];
        let m = Mover::new(key("n", Metric::P99Us), noisy, &one_commit);
        anyhow::ensure!(m.change.is_some_and(|c| c > 0.25) && m.worse().is_none());
        let two: Vec<String> = (0..18)
            .map(|i| if i < 9 { "a" } else { "b" }.into())
            .collect();
        let slower: Vec<(usize, f64)> = (0..18)
            .map(|i| (i, if i < 9 { 100.0 } else { 80.0 } + (i % 3) as f64))
            .collect();
        let m = Mover::new(key("s", Metric::OpsPerS), slower.clone(), &two);
        anyhow::ensure!(m.worse() == Some(true), "{:?}", m.judged);
        let m = Mover::new(key("p", Metric::P99Us), slower, &two);
        anyhow::ensure!(m.worse() == Some(false), "{:?}", m.judged);
        Ok(())
    }

    #[test]
    fn the_baseline_is_the_median_of_at_most_the_last_runs_before() -> anyhow::Result<()> {
        // 30 old runs at 1000, then BASELINE_RUNS_MAX at 100, then the latest at 100.
        let points: Vec<(usize, f64)> = (0..30)
            .map(|i| (i, 1000.0))
            .chain((30..30 + BASELINE_RUNS_MAX).map(|i| (i, 100.0)))
            .chain(std::iter::once((30 + BASELINE_RUNS_MAX, 100.0)))
            .collect();
        let m = Mover::new(key("a", Metric::OpsPerS), points, &[]);
        anyhow::ensure!(m.baseline == Some((100.0, BASELINE_RUNS_MAX)));
        anyhow::ensure!(m.change == Some(0.0));
        Ok(())
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() -> anyhow::Result<()> {
        let long = format!("{{\"x\":\"{}\"}}", "a".repeat(LINE_BYTES_MAX + 10));
        let lines = [
            line("aaaaaaa1", 1, 100.0, 5.0, &[]),
            "{not json".to_string(),
            "[1,2,3]".to_string(),
            String::new(),
            json!({"scenario": "x", "seed": 1}).to_string(),
            long,
            line("aaaaaaa2", 2, 110.0, 5.0, &["durability"]),
        ];
        let (_dir, path) = write_lines(&lines)?;
        let history = read_histories(std::slice::from_ref(&path))?;
        anyhow::ensure!(history.runs.len() == 2, "{:?}", history.runs.len());
        anyhow::ensure!(history.malformed == 4, "{}", history.malformed);
        anyhow::ensure!(history.warnings.len() == 4);
        anyhow::ensure!(
            history.warnings[0].contains(":2: not JSON"),
            "{:?}",
            history.warnings
        );
        anyhow::ensure!(history.warnings[3].contains(":6: longer than"));
        let page = build(&[path], SystemTime::now())?.html;
        anyhow::ensure!(page.contains("data-count=\"4\""));
        Ok(())
    }

    #[test]
    fn an_empty_history_is_an_error() -> anyhow::Result<()> {
        let (_dir, path) = write_lines(&["{oops".to_string()])?;
        match read_histories(&[path]) {
            Err(e @ DashboardError::Empty { malformed: 1, .. }) => {
                anyhow::ensure!(e.is_bad_input());
                Ok(())
            }
            other => anyhow::bail!("expected Empty, got {other:?}"),
        }
    }

    #[test]
    fn the_page_is_self_contained_and_lists_failures() -> anyhow::Result<()> {
        let lines = [
            line("aaaaaaa1", 1, 100.0, 5.0, &[]),
            line("bbbbbbb2", 2, 90.0, 6.0, &["durability"]),
            line("<script>", 3, 80.0, 7.0, &[]),
        ];
        let (_dir, path) = write_lines(&lines)?;
        let page = build(&[path], SystemTime::now())?.html;
        for bad in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "url(http",
        ] {
            anyhow::ensure!(!page.contains(bad), "the page refers to {bad}");
        }
        // The data block and the script: a commit named `<script>` opened no third.
        anyhow::ensure!(
            page.matches("<script").count() == 2,
            "commit text not escaped"
        );
        anyhow::ensure!(
            page.contains("harness run ycsb/c --seed 2 --engine engine-full --set run.ops=10")
        );
        anyhow::ensure!(page.contains("durability"));
        // ops/s and p99 of `read`; a phase with one op kind has no `*` total.
        anyhow::ensure!(page.matches("<svg").count() == 2);
        Ok(())
    }

    #[test]
    fn timestamps_round_trip() -> anyhow::Result<()> {
        for secs in [
            0u64,
            951_782_400,
            1_709_251_199,
            1_738_326_896,
            4_102_444_800,
        ] {
            let text = rfc3339_utc(epoch(secs));
            anyhow::ensure!(parse_rfc3339_utc(&text) == Some(secs), "{text}");
        }
        for bad in [
            "",
            "2025-01-31 12:34:56Z",
            "1969-12-31T23:59:59Z",
            "2025-13-01T00:00:00Z",
        ] {
            anyhow::ensure!(parse_rfc3339_utc(bad).is_none(), "{bad}");
        }
        Ok(())
    }
}
