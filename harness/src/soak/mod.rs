//! `harness soak`: one database open for hours under a concurrent mix, with kill -9 crash
//! episodes at seeded moments, checked continuously; runs as resumable slices.
//!
//! The parent loads half the keys, then runs episodes: a child (`harness worker soak`, see
//! [`worker`]) opens the database and runs the mix until the parent kills it with SIGKILL at
//! the episode's seeded end; the parent reopens the files (timed: recovery), verifies every
//! key against the expected state (which lives in a shared mapping and survives the kill),
//! runs the integrity check, and starts the next episode. Each tick line of the child becomes
//! a [`stats::Sample`] and goes into an hourly [`stats::Bucket`].
//!
//! A slice ends at `--until` after a last kill and verification, so the files and the
//! expected state are settled; `--checkpoint FILE` then holds everything needed to go on
//! (seed position, samples, buckets, episodes, checks) and `--resume FILE` continues from it.

mod episode;
mod render;
pub mod stats;
mod trend;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::adapter::{open_engine, EngineOptions};
use crate::chaos::kill9::adapter_err;
use crate::chaos::records::record_key as kv_key;
use crate::faults::rng::{hash, SplitMix64};
use crate::gen::generate_value;
use crate::oracle::ExpectedState;
use stats::{Bucket, BucketStored, Sample};

/// Keys of a soak at most: the parent holds one version per key while it verifies.
pub const SOAK_KEYS_MAX: u64 = 50_000_000;
/// Samples kept: a week at one per 10 s tick; past it every other sample is dropped.
const SAMPLES_MAX: usize = 60_480;
/// Episodes kept one by one in the report and checkpoint.
const EPISODES_MAX: usize = 10_000;
/// Failure details kept per check.
const DETAILS_MAX: usize = 5;
/// Records per load transaction.
const LOAD_BATCH: u64 = 1000;
/// Resident memory a child may hold beyond its page cache's bound by default: the engine's
/// other structures, the harness's histograms and the threads' buffers (issue 11's figure).
pub const RSS_OVER_CACHE_MIB_DEFAULT: u64 = 512;
/// Checkpoint format version: a resume refuses another.
const CHECKPOINT_FORMAT: u32 = 1;

/// Arguments of `harness soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Length of this slice: `90s`, `30m`, `6h`. The slice ends with a kill and a full
    /// verification.
    #[arg(long, value_parser = parse_duration)]
    pub until: Duration,
    /// Output directory (default: reports/runs/soak-<UTC timestamp>/); with --resume, the
    /// checkpoint's directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the state needed to resume here after every episode.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue the soak a checkpoint describes (its settings and seed win over these).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Seed of every random choice (default: random; always printed).
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value = "engine")]
    pub engine: String,
    /// Key space; the load fills half of it and inserts and deletes keep it near half.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Worker threads of the child, each writing its own lane of keys and reading all.
    #[arg(long, default_value_t = 4)]
    pub threads: u64,
    #[arg(long, default_value_t = 64 << 20)]
    pub cache_bytes: usize,
    /// Shortest crash episode (the child's life between two kills).
    #[arg(long, value_parser = parse_duration, default_value = "15m")]
    pub episode_min: Duration,
    #[arg(long, value_parser = parse_duration, default_value = "45m")]
    pub episode_max: Duration,
    /// Time between two tick lines of the child (one sample each).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub tick: Duration,
    /// Latency buckets compared by the p99 drift check.
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub bucket: Duration,
    /// Bound of the resident-memory slope within an episode, MiB per hour.
    #[arg(long, default_value_t = 64.0)]
    pub rss_slope_mib_h_max: f64,
    /// Bound of the engine file's growth once the soak has settled, MiB per hour.
    #[arg(long, default_value_t = 64.0)]
    pub file_slope_mib_h_max: f64,
    /// Bound of the last bucket's p99 over the first bucket's.
    #[arg(long, default_value_t = 3.0)]
    pub p99_drift_max: f64,
    /// Resident memory the child may hold beyond --cache-bytes, MiB.
    #[arg(long, default_value_t = RSS_OVER_CACHE_MIB_DEFAULT)]
    pub rss_over_cache_mib_max: u64,
    /// Longest any operation may take (liveness).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub stall_max: Duration,
    /// The soak's whole planned length over all its slices (default: --until). It decides
    /// which trends the soak can judge; the last slice fails a trend still pending.
    #[arg(long, value_parser = parse_duration)]
    pub total: Option<Duration>,
    /// A trend check not to judge: rss_slope, file_size_slope or p99_drift (repeatable).
    /// The report says "not judged". A soak whose settings cannot judge a trend refuses to
    /// start unless that trend is switched off here.
    #[arg(long = "trend-off")]
    pub trends_off: Vec<String>,
}

/// Parses `90`, `90s`, `250ms`, `30m`, `6h`, `1h30m` (a bare number is seconds).
///
/// # Errors
/// Any other text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?}: use numbers with ms, s, m, h or d (250ms, 90s, 30m, 6h)");
    let (mut total_ms, mut digits) = (0u64, String::new());
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit_ms = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1
            }
            ('s', _) => 1000,
            ('m', _) => 60_000,
            ('h', _) => 3_600_000,
            ('d', _) => 86_400_000,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total_ms = total_ms.saturating_add(n.saturating_mul(unit_ms));
        digits.clear();
    }
    if !digits.is_empty() {
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total_ms = total_ms.saturating_add(n.saturating_mul(1000));
    }
    Ok(Duration::from_millis(total_ms))
}

/// The settings a soak keeps from its first slice to its last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakConfig {
    pub engine: String,
    pub seed: u64,
    pub keys: u64,
    pub threads: u64,
    pub cache_bytes: usize,
    pub episode_min_s: u64,
    pub episode_max_s: u64,
    pub tick_ms: u64,
    pub bucket_s: u64,
    pub rss_slope_mib_h_max: f64,
    pub file_slope_mib_h_max: f64,
    pub p99_drift_max: f64,
    pub stall_ms_max: u64,
    #[serde(default = "rss_over_cache_mib_default")]
    pub rss_over_cache_mib_max: u64,
    /// The soak's planned length over all slices, seconds (0 in older checkpoints: unknown,
    /// and no trend is failed for being pending).
    #[serde(default)]
    pub total_s: u64,
    /// Trends switched off (`--trend-off`): never judged, reported as not judged.
    #[serde(default)]
    pub trends_off: Vec<String>,
}

fn rss_over_cache_mib_default() -> u64 {
    RSS_OVER_CACHE_MIB_DEFAULT
}

/// Where a check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Pass,
    Fail,
    Pending,
    NotJudged,
}

impl CheckStatus {
    /// The word soak.json and the page use.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Pending => "pending",
            CheckStatus::NotJudged => "not judged",
        }
    }
}

/// Why a check with no observation is not judged when another check failed first.
pub const STOPPED_EARLY: &str =
    "not reached: the soak stopped at another check's failure before this one observed anything";

impl CheckState {
    /// A failure, or no observation while neither pending nor switched off, fails; with
    /// `stopped` (another check failed, and the soak stops at its first failure) a check
    /// with no observation is not judged instead, so the failure that stopped it stands alone.
    #[must_use]
    pub fn status(&self, stopped: bool) -> CheckStatus {
        if self.failed > 0 {
            CheckStatus::Fail
        } else if self.not_judged.is_some() {
            CheckStatus::NotJudged
        } else if self.pending.is_some() {
            CheckStatus::Pending
        } else if self.checked == 0 && !stopped {
            CheckStatus::Fail
        } else if self.checked == 0 {
            CheckStatus::NotJudged
        } else {
            CheckStatus::Pass
        }
    }
}

impl SoakState {
    /// Some check failed: the soak stopped there.
    #[must_use]
    pub fn stopped(&self) -> bool {
        self.checks.iter().any(|(_, c)| c.failed > 0)
    }
}

/// One named check's counts, carried across slices.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckState {
    pub checked: u64,
    pub failed: u64,
    pub details: Vec<String>,
    /// Set while a trend check has too little data to judge.
    pub pending: Option<String>,
    /// Set for a trend switched off: it is reported as not judged, neither passed nor failed.
    #[serde(default)]
    pub not_judged: Option<String>,
    pub note: String,
}

/// Check names of a soak.
pub mod names {
    pub use crate::chaos::names::{DURABILITY, INTEGRITY, VERIFIED_READS, VERIFIED_SCANS};
    /// Every operation of the child succeeded (a healthy disk gives no engine error).
    pub const OPERATIONS_SUCCEED: &str = "operations_succeed";
    /// No operation took longer than the stall bound, and the child never went silent.
    pub const LIVENESS: &str = "liveness";
    /// Resident memory within each episode grows no faster than the bound.
    pub const RSS_SLOPE: &str = "rss_slope";
    /// The engine file grows no faster than the bound once the soak has settled.
    pub const FILE_SLOPE: &str = "file_size_slope";
    /// The last bucket's p99 is within the bound's factor of the first bucket's.
    pub const P99_DRIFT: &str = "p99_drift";
    /// The child's resident memory stays within the page cache's bound plus
    /// `--rss-over-cache-mib-max` (512 MiB by default).
    pub const RSS_BOUND: &str = "rss_bound";
    /// The trend checks: judged over the whole soak, or switched off with `--trend-off`.
    pub const TRENDS: [&str; 3] = [RSS_SLOPE, FILE_SLOPE, P99_DRIFT];
    /// Every check a soak implies, registered when it starts: one that never observes
    /// anything fails ("observed nothing") rather than being absent.
    pub const ALL: [&str; 10] = [
        OPERATIONS_SUCCEED,
        LIVENESS,
        VERIFIED_READS,
        VERIFIED_SCANS,
        DURABILITY,
        INTEGRITY,
        RSS_BOUND,
        RSS_SLOPE,
        FILE_SLOPE,
        P99_DRIFT,
    ];
}

/// One crash episode: the child's life and the verification after its kill.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EpisodeRecord {
    pub index: u64,
    /// Soak time at the child's start, seconds.
    pub start_s: f64,
    /// The child's life until the kill, seconds.
    pub length_s: f64,
    pub ops: u64,
    /// The child's own open of the database (recovery of the previous kill), microseconds.
    pub child_open_us: Option<u64>,
    /// The parent's reopen after the kill, microseconds.
    pub reopen_us: f64,
    pub verify_us: f64,
    /// WAL bytes the kill left for recovery.
    pub wal_bytes: u64,
    pub keys_present: u64,
    pub passed: bool,
    /// How the child ended: "killed", or what it said.
    pub end: String,
}

/// One slice's span, as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SliceRecord {
    pub started_utc: String,
    pub commit: String,
    pub start_s: f64,
    pub length_s: f64,
    pub episodes: u64,
}

/// Everything that carries from one slice to the next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakState {
    pub format: u32,
    pub config: SoakConfig,
    /// The soak's directory (data/, expected); relative to the checkpoint when written.
    pub dir: PathBuf,
    pub rng_state: u64,
    pub episodes_next: u64,
    pub elapsed_s: f64,
    pub samples: Vec<Sample>,
    pub episodes: Vec<EpisodeRecord>,
    pub buckets: Vec<BucketStored>,
    pub checks: Vec<(String, CheckState)>,
    pub slices: Vec<SliceRecord>,
    /// Keys the load wrote.
    pub keys_loaded: u64,
}

/// The live soak: its state with buckets decoded, and the oracle.
pub struct Soak {
    pub state: SoakState,
    pub buckets: Vec<Bucket>,
    pub oracle: ExpectedState,
    pub dir: PathBuf,
    pub exe: PathBuf,
}

impl Soak {
    fn check(&mut self, name: &str) -> &mut CheckState {
        if let Some(i) = self.state.checks.iter().position(|(n, _)| n == name) {
            return &mut self.state.checks[i].1;
        }
        self.state
            .checks
            .push((name.to_string(), CheckState::default()));
        let last = self.state.checks.len() - 1;
        &mut self.state.checks[last].1
    }

    pub(crate) fn pass(&mut self, name: &str, n: u64) {
        self.check(name).checked += n;
    }

    pub(crate) fn fail(&mut self, name: &str, detail: String) {
        let c = self.check(name);
        c.checked += 1;
        c.failed += 1;
        if c.details.len() < DETAILS_MAX {
            c.details.push(detail);
        }
    }

    pub(crate) fn failures(&self) -> u64 {
        self.state.checks.iter().map(|(_, c)| c.failed).sum()
    }

    pub(crate) fn push_sample(&mut self, s: Sample) {
        self.state.samples.push(s);
        if self.state.samples.len() > SAMPLES_MAX {
            let kept = std::mem::take(&mut self.state.samples);
            self.state.samples = kept.into_iter().step_by(2).collect();
        }
    }

    pub(crate) fn bucket(&mut self, t_s: f64) -> &mut Bucket {
        let index = (t_s / self.state.config.bucket_s.max(1) as f64) as u64;
        if let Some(i) = self.buckets.iter().position(|b| b.index == index) {
            return &mut self.buckets[i];
        }
        self.buckets.push(Bucket::new(index));
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }
}

fn config_of(args: &SoakArgs, seed: u64) -> Result<SoakConfig> {
    let engine = crate::adapter::resolve_name(&args.engine, None).map_err(anyhow::Error::msg)?;
    if !(2..=SOAK_KEYS_MAX).contains(&args.keys) {
        bail!("--keys {} is outside 2..={SOAK_KEYS_MAX}", args.keys);
    }
    if args.threads == 0 || args.threads > worker::SOAK_THREADS_MAX || args.threads > args.keys {
        bail!(
            "--threads {} must be 1..={} and at most --keys",
            args.threads,
            worker::SOAK_THREADS_MAX
        );
    }
    if args.episode_min.is_zero() || args.episode_min > args.episode_max {
        bail!("--episode-min must be above zero and at most --episode-max");
    }
    if args.tick < Duration::from_millis(100) || args.bucket < args.tick {
        bail!("--tick must be at least 100ms and --bucket at least one tick");
    }
    let total = args.total.unwrap_or(args.until);
    if total < args.until {
        bail!("--total must be at least --until (one slice)");
    }
    let judged = |name: &str| !args.trends_off.iter().any(|t| t == name);
    for off in &args.trends_off {
        if !names::TRENDS.contains(&off.as_str()) {
            bail!(
                "--trend-off {off}: not a trend (one of {:?})",
                names::TRENDS
            );
        }
    }
    for (name, why) in trend::unjudgeable(
        total.as_secs(),
        args.episode_min.as_secs(),
        args.bucket.as_secs().max(1),
    ) {
        if judged(name) {
            bail!(
                "this soak cannot judge {name}: {why}; lengthen it, or switch the trend off \
                 with --trend-off {name} (the report then says \"not judged\")"
            );
        }
    }
    Ok(SoakConfig {
        engine,
        seed,
        keys: args.keys,
        threads: args.threads,
        cache_bytes: args.cache_bytes,
        episode_min_s: args.episode_min.as_secs(),
        episode_max_s: args.episode_max.as_secs(),
        tick_ms: u64::try_from(args.tick.as_millis()).unwrap_or(u64::MAX),
        bucket_s: args.bucket.as_secs().max(1),
        rss_slope_mib_h_max: args.rss_slope_mib_h_max,
        file_slope_mib_h_max: args.file_slope_mib_h_max,
        p99_drift_max: args.p99_drift_max,
        stall_ms_max: u64::try_from(args.stall_max.as_millis()).unwrap_or(u64::MAX),
        rss_over_cache_mib_max: args.rss_over_cache_mib_max,
        total_s: total.as_secs(),
        trends_off: args.trends_off.clone(),
    })
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    crate::gen::mix64(nanos ^ (u64::from(std::process::id()) << 32))
}

/// Creates the soak's directory and loads half the keys (each key by a coin of the seed).
fn start_new(args: &SoakArgs, exe: PathBuf) -> Result<Soak> {
    let seed = args.seed.unwrap_or_else(random_seed);
    let config = config_of(args, seed)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        let stamp = crate::report::rfc3339_utc(std::time::SystemTime::now()).replace(':', "");
        PathBuf::from("reports/runs").join(format!("soak-{stamp}"))
    });
    if dir.join("data").exists() {
        bail!(
            "{} already holds a soak: resume it with --resume, or pick another --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("data"))?;
    let oracle = ExpectedState::create(dir.join("expected"), config.keys)?;
    let keys_loaded = load(&config, &dir, &oracle).context("soak: load")?;
    let checks = registered(&config);
    let state = SoakState {
        format: CHECKPOINT_FORMAT,
        rng_state: hash(seed, 0x50A4_0003, 0),
        config,
        dir: dir.clone(),
        episodes_next: 0,
        elapsed_s: 0.0,
        samples: Vec::new(),
        episodes: Vec::new(),
        buckets: Vec::new(),
        checks,
        slices: Vec::new(),
        keys_loaded,
    };
    Ok(Soak {
        state,
        buckets: Vec::new(),
        oracle,
        dir,
        exe,
    })
}

/// Every check the soak implies, before any is observed; the trends switched off say so.
fn registered(config: &SoakConfig) -> Vec<(String, CheckState)> {
    names::ALL
        .iter()
        .map(|&name| {
            let off = config.trends_off.iter().any(|t| t == name);
            let state = CheckState {
                not_judged: off.then(|| "switched off with --trend-off".to_string()),
                ..CheckState::default()
            };
            (name.to_string(), state)
        })
        .collect()
}

fn load(config: &SoakConfig, dir: &Path, oracle: &ExpectedState) -> Result<u64> {
    let options = EngineOptions {
        cache_bytes: config.cache_bytes,
        threads: 1,
        seed: Some(config.seed),
        ..EngineOptions::default()
    };
    let engine = open_engine(&config.engine, &dir.join("data"), &options).map_err(adapter_err)?;
    let mut session = engine.session().map_err(adapter_err)?;
    let chosen = |k: u64| hash(config.seed, 0x50A4_0002, k) & 1 == 0;
    let (mut value, mut loaded, mut start) = (Vec::new(), 0u64, 0u64);
    while start < config.keys {
        let end = (start + LOAD_BATCH).min(config.keys);
        let batch: Vec<u64> = (start..end).filter(|&k| chosen(k)).collect();
        batch.iter().try_for_each(|&k| oracle.begin_put(k, 1))?;
        session
            .transaction(&mut |tx| {
                for &k in &batch {
                    let len = 40 + (hash(config.seed, 0x50A4_0004, k) % 360) as usize;
                    generate_value(k, 1, config.seed, len, &mut value);
                    tx.put(&kv_key(b'k', k), &value)?;
                }
                Ok(())
            })
            .map_err(adapter_err)?;
        batch.iter().try_for_each(|&k| oracle.ack_put(k, 1))?;
        loaded += batch.len() as u64;
        start = end;
    }
    drop(session);
    engine.sync().map_err(adapter_err)?;
    engine.close().map_err(adapter_err)?;
    Ok(loaded)
}

/// Reads a checkpoint; the soak's directory is looked up beside the checkpoint first.
fn resume(path: &Path, exe: PathBuf) -> Result<Soak> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut state: SoakState = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a soak checkpoint", path.display()))?;
    if state.format != CHECKPOINT_FORMAT {
        bail!(
            "{}: checkpoint format {} (this build reads {CHECKPOINT_FORMAT})",
            path.display(),
            state.format
        );
    }
    let beside = path.parent().unwrap_or(Path::new(".")).join(&state.dir);
    let dir = if beside.join("expected").exists() {
        beside
    } else {
        state.dir.clone()
    };
    if !dir.join("expected").exists() {
        bail!(
            "{}: the soak directory {} (data/ and expected) is missing",
            path.display(),
            dir.display()
        );
    }
    let oracle = ExpectedState::open(dir.join("expected"))?;
    let buckets = state
        .buckets
        .iter()
        .map(Bucket::load)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    state.dir.clone_from(&dir);
    Ok(Soak {
        state,
        buckets,
        oracle,
        dir,
        exe,
    })
}

fn write_checkpoint(soak: &mut Soak, path: &Path) -> Result<()> {
    soak.state.buckets = soak.buckets.iter().map(Bucket::store).collect();
    let mut state = soak.state.clone();
    // Relative to the checkpoint, so a copied soak (a CI artifact) resumes anywhere.
    let base = path.parent().unwrap_or(Path::new("."));
    let (abs_dir, abs_base) = (std::path::absolute(&soak.dir)?, std::path::absolute(base)?);
    state.dir = abs_dir
        .strip_prefix(&abs_base)
        .map_or(abs_dir.clone(), Path::to_path_buf);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&state)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Runs one slice of a soak; returns the exit code (0 pass, 1 a check failed).
///
/// # Errors
/// Bad arguments, a load or checkpoint that fails, a child that cannot be started.
pub fn run(args: &SoakArgs, exe: PathBuf) -> Result<u8> {
    let mut soak = match &args.resume {
        Some(path) => resume(path, exe)?,
        None => start_new(args, exe)?,
    };
    let c = &soak.state.config;
    println!(
        "soak: seed {} engine {} keys {} threads {} episodes {}..{} s; slice of {} s from soak time {:.0} s; dir {}",
        c.seed, c.engine, c.keys, c.threads, c.episode_min_s, c.episode_max_s,
        args.until.as_secs(), soak.state.elapsed_s, soak.dir.display()
    );
    if soak.failures() > 0 {
        println!("soak: this soak has already failed; it is not resumed");
        return Ok(finish(&soak, args));
    }
    let slice_start = Instant::now();
    let base_s = soak.state.elapsed_s;
    let episodes_before = soak.state.episodes_next;
    while slice_start.elapsed() < args.until && soak.failures() == 0 {
        let remaining = args.until.saturating_sub(slice_start.elapsed());
        let length = draw_episode(&mut soak.state, remaining);
        let record = episode::run(&mut soak, base_s, slice_start, length)?;
        print_episode(&record);
        if soak.state.episodes.len() < EPISODES_MAX {
            soak.state.episodes.push(record);
        }
        soak.state.elapsed_s = base_s + slice_start.elapsed().as_secs_f64();
        if let Some(path) = &args.checkpoint {
            write_checkpoint(&mut soak, path)?;
        }
    }
    soak.state.slices.push(SliceRecord {
        started_utc: crate::report::rfc3339_utc(
            std::time::SystemTime::now() - slice_start.elapsed(),
        ),
        commit: crate::report::git_rev_short(),
        start_s: base_s,
        length_s: slice_start.elapsed().as_secs_f64(),
        episodes: soak.state.episodes_next - episodes_before,
    });
    trend::judge(&mut soak.state, &soak.buckets);
    trend::fail_pending_at_end(&mut soak.state);
    if let Some(path) = &args.checkpoint {
        write_checkpoint(&mut soak, path)?;
    }
    render::write(&soak)?;
    Ok(finish(&soak, args))
}

/// The next episode's length: seeded within the bounds, cut to what the slice has left.
fn draw_episode(state: &mut SoakState, remaining: Duration) -> Duration {
    let mut rng = SplitMix64::new(state.rng_state);
    let (lo, hi) = (state.config.episode_min_s, state.config.episode_max_s);
    let secs = lo + rng.below(hi - lo + 1);
    state.rng_state = rng.next_u64();
    Duration::from_secs(secs).min(remaining)
}

fn print_episode(r: &EpisodeRecord) {
    println!(
        "episode {}: {:.0} s, {} ops, ended {}; reopen {:.1} ms, {} keys present, {}",
        r.index,
        r.length_s,
        r.ops,
        r.end,
        r.reopen_us / 1000.0,
        r.keys_present,
        if r.passed { "verified" } else { "FAILED" }
    );
}

fn finish(soak: &Soak, args: &SoakArgs) -> u8 {
    for (name, c) in &soak.state.checks {
        let verdict = if c.failed > 0 {
            format!(
                "FAIL {} of {}: {}",
                c.failed,
                c.checked,
                c.details.join(" | ")
            )
        } else if let Some(why) = &c.not_judged {
            format!("not judged: {why}")
        } else if c.checked == 0 && soak.state.stopped() {
            format!("not judged: {STOPPED_EARLY}")
        } else if let Some(why) = &c.pending {
            format!("pending: {why}")
        } else if c.checked == 0 {
            "FAIL: observed nothing".to_string()
        } else {
            format!(
                "pass ({} observations{}{})",
                c.checked,
                if c.note.is_empty() { "" } else { "; " },
                c.note
            )
        };
        println!("  {name}: {verdict}");
    }
    println!("report: {}", soak.dir.join("soak.html").display());
    let failed = soak
        .state
        .checks
        .iter()
        .any(|(_, c)| c.status(soak.state.stopped()) == CheckStatus::Fail);
    if failed {
        let c = &soak.state.config;
        println!(
            "FAIL: reproduce with: harness soak --seed {} --engine {} --keys {} --threads {} --until {}s \
             --episode-min {}s --episode-max {}s (timing-dependent: the seed fixes the operations and \
             episode lengths, not the thread interleaving)",
            c.seed, c.engine, c.keys, c.threads, args.until.as_secs(), c.episode_min_s, c.episode_max_s
        );
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_their_units() -> Result<(), String> {
        assert_eq!(parse_duration("90")?, Duration::from_secs(90));
        assert_eq!(parse_duration("90s")?, Duration::from_secs(90));
        assert_eq!(parse_duration("30m")?, Duration::from_secs(1800));
        assert_eq!(parse_duration("1h30m")?, Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms")?, Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s")?, Duration::from_secs(90));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("h").is_err());
        Ok(())
    }
}
