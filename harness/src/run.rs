//! One `harness run`: the load phase and the measured phases on one engine, or interleaved
//! rounds over several engines (`--engine all`), then the report.
//!
//! Layout of a run directory (default `reports/runs/<scenario>-<UTC timestamp>/`, the
//! scenario's `/` replaced by `-`): `report.json`, `report.html`, one `.hgrm` per phase and
//! operation kind, and `data/<engine>[-r<round>]/` with the engine's files, removed at the end
//! unless `--keep-data`.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

use crate::adapter::{open_engine, AdapterResult, Engine, EngineOptions};
use crate::driver::{
    fsync_probe, run_phase, DataCtx, OpSource, PhaseBound, PhaseResult, PhaseSpec, PhaseWork,
};
use crate::gen::{derive_seed, KeySpace};
use crate::report::{
    self, Check, EngineReport, FsyncProbe, LoadSummary, Report, RoundReport, TimelinePoint,
};
use crate::scenario::{RunSection, Scenario};
use crate::workload::{Op, OpStream, Workload, WorkloadSpec};

/// Engines of `--engine all` when the scenario lists none: ours first, then the peers in
/// their durable modes.
pub const ENGINES_DEFAULT: &[&str] = &[
    "engine",
    "sqlite-full",
    "redb-immediate",
    "lmdb-full",
    "fjall-full",
];

/// Runs shorter than this show no progress bar.
const PROGRESS_DELAY: Duration = Duration::from_secs(2);
/// Records sampled to estimate the mean record size of a load (exact for fixed sizes).
const LOAD_SIZE_SAMPLE: u64 = 4096;

/// Opens engines by name; tests substitute their own (a slow or lying adapter).
pub trait EngineFactory: Sync {
    /// Opens `name` with its files under `dir`.
    ///
    /// # Errors
    /// Unknown names and open errors.
    fn open(
        &self,
        name: &str,
        dir: &Path,
        options: &EngineOptions,
    ) -> AdapterResult<Box<dyn Engine>>;
}

/// The adapters of [`crate::adapter`].
pub struct BuiltinEngines;

impl EngineFactory for BuiltinEngines {
    fn open(
        &self,
        name: &str,
        dir: &Path,
        options: &EngineOptions,
    ) -> AdapterResult<Box<dyn Engine>> {
        open_engine(name, dir, options)
    }
}

impl OpSource for OpStream {
    fn next_op(&mut self) -> Op {
        OpStream::next_op(self)
    }
}

/// Everything a run needs, resolved by the command line.
#[derive(Clone)]
pub struct RunRequest {
    pub scenario_name: String,
    pub scenario: Scenario,
    pub seed: u64,
    /// Engines to run, resolved (one, or the list of `--engine all`).
    pub engines: Vec<String>,
    /// True for `--engine all` (interleaved rounds and ratios).
    pub compare: bool,
    pub out_dir: PathBuf,
    pub keep_data: bool,
    /// The command line that reproduces the run.
    pub reproduce: String,
    /// Draw a progress bar on stderr (when it is a terminal and the run takes over 2 s).
    pub progress: bool,
    /// `--shard I/N`: run only this slice of a chaos scenario's cycles (`seed` is then the
    /// shard's derived seed).
    pub shard: Option<crate::shard::ShardRun>,
}

/// The result of [`execute`].
pub struct RunOutcome {
    pub report: Report,
    pub paths: Vec<PathBuf>,
}

/// One engine's pass over the scenario (one round).
struct EnginePass {
    engine: String,
    phases: Vec<PhaseResult>,
    /// Reads were verified (on in the scenario, and the engine stores data).
    verified: bool,
    /// Reads of loaded keys were judged for freshness (the version book tracks them).
    fresh_tracked: bool,
    /// Scans were checked for skipped keys (the loaded keys were put in order).
    scans_tracked: bool,
    /// Resource samples over the pass.
    resources: Vec<crate::report::ResourcePoint>,
    /// What each load cost (none when the load was skipped; one per record count).
    loads: Vec<LoadSummary>,
    /// The final read-backs (`final_verify = "scan"`; one per record count), with the
    /// record count they covered.
    readbacks: Vec<(u64, crate::driver::ReadBack)>,
    /// Seconds from the run's start to each phase's start.
    offsets_s: Vec<f64>,
    /// The engine's data directory (its block device's counters price the load).
    data_dir: std::path::PathBuf,
}

impl EnginePass {
    /// Appends another pass of the same engine (the next record count). A check any pass
    /// could make stays: its counts from every pass are merged, so a later pass that cannot
    /// make it never hides what an earlier one found.
    fn append(&mut self, other: EnginePass) {
        self.verified |= other.verified;
        self.fresh_tracked |= other.fresh_tracked;
        self.scans_tracked |= other.scans_tracked;
        self.phases.extend(other.phases);
        self.offsets_s.extend(other.offsets_s);
        self.resources.extend(other.resources);
        self.loads.extend(other.loads);
        self.readbacks.extend(other.readbacks);
    }
}

/// Runs the request and writes the report files into `out_dir`.
///
/// # Errors
/// Bad workloads, engines that fail to open or close, and I/O errors writing the report.
/// Failed checks are not errors: they are in the report (see `Report::verdict`).
pub fn execute(req: &RunRequest, factory: &dyn EngineFactory) -> anyhow::Result<RunOutcome> {
    anyhow::ensure!(!req.engines.is_empty(), "no engine to run");
    if let Some(faults) = &req.scenario.faults {
        return crate::chaos::execute(req, faults);
    }
    if let Some(bench) = &req.scenario.bench {
        return crate::bench::redb_suite::execute(req, bench);
    }
    // Refused before any engine runs, not when the first peer opens minutes later.
    for name in &req.engines {
        crate::adapter::check_fsync_delay(name, req.scenario.fsync_delay_us)
            .map_err(|e| anyhow::anyhow!("{e}: run this scenario with our engine only"))?;
    }
    std::fs::create_dir_all(&req.out_dir)
        .with_context(|| format!("creating {}", req.out_dir.display()))?;
    let config = serde_json::to_value(&req.scenario).context("scenario to JSON")?;
    let engine_label = if req.compare {
        "all"
    } else {
        req.engines[0].as_str()
    };
    let mut report = Report::new(&req.scenario_name, engine_label, req.seed, config);
    report.reproduce = Some(req.reproduce.clone());
    let mut progress = ProgressView::new(req.progress);
    let run_start = Instant::now();
    let rounds = if req.compare { req.scenario.rounds } else { 1 };
    let mut passes: BTreeMap<String, Vec<EnginePass>> = BTreeMap::new();
    for round in 0..rounds {
        if probe_wanted(req) {
            let probe = fsync_probe(&req.out_dir, round).context("fsync probe")?;
            report.fsync_probe.push(probe);
        }
        for j in 0..req.engines.len() {
            let name = &req.engines[(round as usize + j) % req.engines.len()];
            let pass = run_sizes(req, factory, name, round, run_start, &mut progress)?;
            passes.entry(name.clone()).or_default().push(pass);
        }
    }
    progress.finish();
    let histograms = fill_report(&mut report, req, &passes)?;
    report.require_checks();
    if !req.keep_data {
        let _ = std::fs::remove_dir(req.out_dir.join("data"));
    }
    let mut paths = report::write_all(&report, &histograms, &req.out_dir)?;
    paths.extend(write_interval_logs(req, &passes)?);
    Ok(RunOutcome { report, paths })
}

/// One engine's pass: the scenario once, or once per `record_counts` entry on a fresh
/// database each (phases named `<phase>@<count>`), concatenated. Peers stop at
/// `peers_record_count_max`.
fn run_sizes(
    req: &RunRequest,
    factory: &dyn EngineFactory,
    name: &str,
    round: u32,
    run_start: Instant,
    progress: &mut ProgressView,
) -> anyhow::Result<EnginePass> {
    let counts = &req.scenario.record_counts;
    if counts.is_empty() {
        return run_once(
            req,
            factory,
            name,
            &data_dir(req, name, round),
            run_start,
            progress,
        );
    }
    let ours = req.engines.first().is_some_and(|first| first == name);
    let peer_max = req.scenario.peers_record_count_max.unwrap_or(u64::MAX);
    let mut combined: Option<EnginePass> = None;
    for &n in counts.iter().filter(|&&n| ours || n <= peer_max) {
        let mut sub = req.clone();
        sub.scenario.workload.record_count = n;
        sub.scenario.record_counts = Vec::new();
        let dir = data_dir(req, name, round).join(format!("n{n}"));
        let mut pass = run_once(&sub, factory, name, &dir, run_start, progress)?;
        for phase in &mut pass.phases {
            phase.name = format!("{}@{}", phase.name, count_label(n));
            phase.keys = n;
        }
        match combined.as_mut() {
            None => combined = Some(pass),
            Some(c) => c.append(pass),
        }
    }
    combined.ok_or_else(|| anyhow::anyhow!("record_counts left {name} nothing to run"))
}

/// `10K`, `100M`, `1B`: a record count as phase names carry it.
#[must_use]
pub fn count_label(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 && n % 1_000_000_000 == 0 => format!("{}B", n / 1_000_000_000),
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}K", n / 1000),
        n => n.to_string(),
    }
}

/// [`run_engine`], then its data directory is removed unless kept.
fn run_once(
    req: &RunRequest,
    factory: &dyn EngineFactory,
    name: &str,
    dir: &Path,
    run_start: Instant,
    progress: &mut ProgressView,
) -> anyhow::Result<EnginePass> {
    let pass = run_engine(req, factory, name, dir, run_start, progress);
    if !req.keep_data {
        // Best effort: a leftover data directory is not worth failing the run over.
        let _ = std::fs::remove_dir_all(dir);
    }
    pass
}

/// Each phase's interval log: `<phase>.hlog`, or `<engine>.r<round>.<phase>.hlog` when
/// comparing engines.
fn write_interval_logs(
    req: &RunRequest,
    passes: &BTreeMap<String, Vec<EnginePass>>,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (engine, rounds) in passes {
        for (round, pass) in rounds.iter().enumerate() {
            for phase in pass.phases.iter().filter(|p| !p.interval_log.is_empty()) {
                let name = if req.compare {
                    format!("{engine}.r{round}.{}.hlog", phase.name)
                } else {
                    format!("{}.hlog", phase.name)
                };
                let path = req.out_dir.join(name);
                std::fs::write(&path, &phase.interval_log)
                    .with_context(|| format!("writing {}", path.display()))?;
                paths.push(path);
            }
        }
    }
    Ok(paths)
}

fn probe_wanted(req: &RunRequest) -> bool {
    req.scenario.fsync_probe.unwrap_or_else(|| {
        req.engines
            .iter()
            .any(|e| e.ends_with("-full") || e.ends_with("-immediate"))
    })
}

fn data_dir(req: &RunRequest, engine: &str, round: u32) -> PathBuf {
    let leaf = if req.compare {
        format!("{engine}-r{round}")
    } else {
        engine.to_string()
    };
    req.out_dir.join("data").join(leaf)
}

/// The workload of phase `i` (0 = `[run]`): the scenario's, with the section's overrides and
/// bounds.
fn phase_workload(base: &WorkloadSpec, section: &RunSection) -> anyhow::Result<Workload> {
    let mut spec = base.clone();
    spec.op_count = section.ops;
    spec.duration_s = section.duration_s;
    spec.warmup_ops = section.warmup_ops;
    if let Some(mix) = &section.mix {
        spec.mix = Some(mix.clone());
    }
    if let Some(d) = &section.distribution {
        spec.distribution = Some(d.clone());
    }
    if let Some(scan) = &section.scan_len {
        spec.scan_len = scan.clone();
    }
    Workload::from_spec(&spec).map_err(|e| anyhow::anyhow!("workload: {e}"))
}

fn run_engine(
    req: &RunRequest,
    factory: &dyn EngineFactory,
    name: &str,
    data_dir: &Path,
    run_start: Instant,
    progress: &mut ProgressView,
) -> anyhow::Result<EnginePass> {
    let s = &req.scenario;
    let workloads: Vec<Workload> = s
        .run_phases()
        .map(|section| phase_workload(&s.workload, section))
        .collect::<Result<_, _>>()?;
    let base = &workloads[0];
    let threads_max = s
        .run_phases()
        .filter_map(|p| p.threads)
        .chain([s.threads])
        .max()
        .unwrap_or(1);
    let options = EngineOptions {
        cache_bytes: s.cache_bytes,
        threads: threads_max,
        seed: Some(req.seed),
        fsync_delay_us: s.fsync_delay_us,
    };
    let engine = factory
        .open(name, data_dir, &options)
        .map_err(|e| anyhow::anyhow!("opening {name} in {}: {e}", data_dir.display()))?;
    let ctx = data_ctx(
        s,
        base,
        &workloads,
        req.seed,
        engine.stores_data(),
        threads_max,
    )?;
    let sampler = crate::resources::Sampler::start(name, data_dir, run_start);
    let mut pass = EnginePass {
        engine: name.to_string(),
        verified: ctx.verify_reads,
        fresh_tracked: ctx.verify_reads && ctx.book.tracks(0),
        scans_tracked: ctx.key_order.is_some(),
        phases: Vec::new(),
        offsets_s: Vec::new(),
        resources: Vec::new(),
        loads: Vec::new(),
        readbacks: Vec::new(),
        data_dir: data_dir.to_path_buf(),
    };
    progress.engine = name.to_string();
    run_phases(
        req,
        engine.as_ref(),
        &ctx,
        &workloads,
        run_start,
        progress,
        &mut pass,
    )?;
    if s.final_verify == "scan" && ctx.verify_reads {
        let mut tick = |n: u64| progress.verifying(n, ctx.keyspace.acked_count());
        let spec = &s.workload.key_encoding;
        let checked =
            crate::driver::read_back(engine.as_ref(), &ctx, spec, threads_max, &mut tick)?;
        pass.readbacks.push((s.workload.record_count, checked));
    }
    engine
        .sync()
        .map_err(|e| anyhow::anyhow!("sync {name}: {e}"))?;
    engine
        .close()
        .map_err(|e| anyhow::anyhow!("closing {name}: {e}"))?;
    pass.resources = sampler.finish();
    if let Some(load) = pass.loads.last_mut() {
        load.rss_bytes_max = pass
            .resources
            .iter()
            .map(|p| p.rss_bytes)
            .max()
            .unwrap_or(0);
        load.disk_bytes_end = pass.resources.last().map_or(0, |p| p.disk_bytes);
    }
    debug_assert_eq!(pass.phases.len(), pass.offsets_s.len());
    Ok(pass)
}

/// The load (unless skipped) and every measured phase, in order; the load's cost goes into
/// `pass.load`.
fn run_phases(
    req: &RunRequest,
    engine: &dyn Engine,
    ctx: &DataCtx,
    workloads: &[Workload],
    run_start: Instant,
    progress: &mut ProgressView,
    pass: &mut EnginePass,
) -> anyhow::Result<()> {
    let s = &req.scenario;
    let base = &workloads[0];
    let keyspace: Arc<KeySpace> = Arc::clone(&ctx.keyspace);
    // Each phase's streams are built just before it runs, so samplers see the key space as
    // the previous phases left it.
    let phases = usize::from(!s.load.skip) + 1 + s.then.len();
    for n in 0..phases {
        let (spec, work) = match n.checked_sub(usize::from(!s.load.skip)) {
            None => load_plan(s, base, req.seed),
            Some(i) => run_plan(s, i, &workloads[i], req.seed, &keyspace)?,
        };
        pass.offsets_s.push(run_start.elapsed().as_secs_f64());
        progress.goal(&spec, keyspace.record_count());
        let io_before = crate::resources::process_io();
        let device_before = crate::resources::device_write_bytes(&pass.data_dir);
        let mut tick = |p: &str, o: u64, e: Duration| progress.tick(p, o, e);
        let result = run_phase(engine, ctx, &spec, work, &mut tick)?;
        if spec.name == "load" {
            let io_after = crate::resources::process_io();
            let device_bytes =
                crate::resources::device_write_bytes(&pass.data_dir).saturating_sub(device_before);
            let mut load = load_summary(&pass.engine, ctx, &result, io_before, io_after);
            load.device_write_bytes = device_bytes;
            pass.loads.push(load);
        }
        pass.phases.push(result);
    }
    Ok(())
}

/// What the load wrote, against the key and value bytes it loaded.
fn load_summary(
    engine: &str,
    ctx: &DataCtx,
    load: &PhaseResult,
    before: crate::resources::ProcessIo,
    after: crate::resources::ProcessIo,
) -> LoadSummary {
    let keys = load.ops;
    // Mean record size from a sample of the loaded indexes (exact for fixed sizes).
    let sample = keys.clamp(1, LOAD_SIZE_SAMPLE);
    let sampled: u64 = (0..sample)
        .map(|i| i * keys.max(1) / sample)
        .map(|i| (ctx.keys.key(i).len() + ctx.values.value_len(i, 0)) as u64)
        .sum();
    let user_bytes = (sampled as f64 / sample as f64 * keys as f64) as u64;
    let wchar_bytes = after.wchar_bytes.saturating_sub(before.wchar_bytes);
    let duration_s = load.duration.as_secs_f64();
    LoadSummary {
        engine: engine.to_string(),
        keys,
        user_bytes,
        duration_s,
        keys_per_s: keys as f64 / duration_s.max(f64::EPSILON),
        wchar_bytes,
        device_write_bytes: 0,
        write_amplification: wchar_bytes as f64 / user_bytes.max(1) as f64,
        rss_bytes_max: 0,
        disk_bytes_end: 0,
    }
}

/// What every driver thread shares: key and value generators, the key space, the version
/// book (sized for the loaded keys and as many inserts again) and, when scans can be checked
/// for skipped keys (loaded keys never deleted), the loaded keys in order.
fn data_ctx(
    s: &Scenario,
    base: &Workload,
    workloads: &[Workload],
    seed: u64,
    stores_data: bool,
    threads: usize,
) -> anyhow::Result<DataCtx> {
    let keys = base.key_encoder(seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let values = base.value_gen(seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let keyspace = base.key_space();
    let record_count = keyspace.record_count();
    let verify_reads = s.verify_reads && stores_data;
    let deletes_possible = workloads.iter().any(|w| w.mix().delete > 0.0);
    let scans = workloads.iter().any(|w| w.mix().scan > 0.0);
    let key_order = if verify_reads && scans && !deletes_possible && !s.load.skip {
        crate::driver::KeyOrder::build(&keys, record_count)
    } else {
        None
    };
    // A key space past the dense bound is held sparsely whole (keys written only): a dense
    // part over its first keys would cost 128 MiB for keys the run seldom writes.
    let book_keys = if record_count <= crate::driver::BOOK_KEYS_MAX {
        (record_count.saturating_mul(2) + (1 << 16)).min(crate::driver::BOOK_KEYS_MAX)
    } else {
        0
    };
    Ok(DataCtx {
        keys,
        values,
        keyspace,
        verify_reads,
        deletes_possible,
        book: crate::driver::VersionBook::new(threads, book_keys),
        key_order,
    })
}

/// The load phase: each thread writes its slice of the load stream, `load.batch` per
/// transaction.
fn load_plan(s: &Scenario, base: &Workload, seed: u64) -> (PhaseSpec, PhaseWork) {
    let threads = s.load.threads.unwrap_or(s.threads);
    let streams = (0..threads as u64)
        .map(|t| base.load_stream(seed, t, threads as u64))
        .collect();
    let spec = PhaseSpec {
        name: "load".into(),
        threads,
        bound: PhaseBound::default(),
        warmup_ops: 0,
        target_ops_s: None,
    };
    (
        spec,
        PhaseWork::Load {
            streams,
            batch: s.load.batch,
        },
    )
}

/// Measured phase `i`: one op stream per thread, seeded from (seed, phase).
fn run_plan(
    s: &Scenario,
    i: usize,
    workload: &Workload,
    seed: u64,
    keyspace: &Arc<KeySpace>,
) -> anyhow::Result<(PhaseSpec, PhaseWork)> {
    let section = s
        .run_phases()
        .nth(i)
        .ok_or_else(|| anyhow::anyhow!("no phase {i}"))?;
    let threads = section.threads.unwrap_or(s.threads);
    let phase_seed = derive_seed(seed, i as u64 + 1);
    let mut sources: Vec<Box<dyn OpSource>> = Vec::with_capacity(threads);
    for t in 0..threads as u64 {
        let stream = workload
            .op_stream(phase_seed, t, keyspace)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        sources.push(Box::new(stream));
    }
    let spec = PhaseSpec {
        name: s.phase_name(i),
        threads,
        bound: PhaseBound {
            ops: section.ops,
            duration: workload.duration(),
        },
        warmup_ops: section.warmup_ops,
        target_ops_s: section.target_ops_s,
    };
    Ok((spec, PhaseWork::Run { sources }))
}

/// Fills phases, timeline, errors, checks (and for comparisons engines and ratios); returns
/// the histograms to write as `.hgrm` files.
fn fill_report(
    report: &mut Report,
    req: &RunRequest,
    passes: &BTreeMap<String, Vec<EnginePass>>,
) -> anyhow::Result<BTreeMap<String, Histogram<u64>>> {
    let mut histograms = BTreeMap::new();
    let mut engine_reports = Vec::new();
    for name in &req.engines {
        let Some(rounds) = passes.get(name) else {
            continue;
        };
        let merged = merge_rounds(rounds)?;
        for (round, pass) in rounds.iter().enumerate() {
            let label = if req.compare {
                format!("{name} round {round}")
            } else {
                name.clone()
            };
            add_checks(report, &label, pass);
            add_timeline(report, pass, req.compare);
        }
        for phase in &merged {
            for (kind, n) in &phase.errors {
                *report.errors.entry(kind.as_str().to_string()).or_insert(0) += n;
            }
            let prefix = if req.compare {
                format!("{name}.{}", phase.name)
            } else {
                phase.name.clone()
            };
            for (kind, h) in &phase.response {
                histograms.insert(format!("{prefix}.{kind}"), h.clone());
            }
            for (kind, h) in &phase.service {
                histograms.insert(format!("{prefix}.{kind}.service"), h.clone());
            }
        }
        engine_reports.push(EngineReport {
            engine: name.clone(),
            rounds: u32::try_from(rounds.len()).unwrap_or(u32::MAX),
            phases: merged.iter().map(PhaseResult::to_report).collect(),
            per_round: per_round(rounds, req.compare),
        });
    }
    for name in &req.engines {
        for (round, pass) in passes.get(name).into_iter().flatten().enumerate() {
            report.resources.extend(pass.resources.iter().cloned());
            if round == 0 {
                report.loads.extend(pass.loads.iter().cloned());
            }
            let sweep = pass.readbacks.len() > 1;
            for (n, rb) in &pass.readbacks {
                let at = if sweep {
                    format!(" at {}", count_label(*n))
                } else {
                    String::new()
                };
                let label = format!("{name} round {round}{at}");
                report.checks.push(final_verification(&label, rb));
            }
        }
    }
    let ours = engine_reports.first().cloned().unwrap_or_default();
    report.phases = ours.phases.clone();
    if req.compare {
        report.ratios = report::compute_ratios(&ours, &engine_reports);
        report.engines = engine_reports;
    }
    Ok(histograms)
}

fn per_round(rounds: &[EnginePass], compare: bool) -> Vec<RoundReport> {
    if !compare {
        return Vec::new();
    }
    rounds
        .iter()
        .enumerate()
        .map(|(r, pass)| RoundReport {
            round: u32::try_from(r).unwrap_or(u32::MAX),
            phases: pass.phases.iter().map(PhaseResult::to_report).collect(),
        })
        .collect()
}

fn merge_rounds(rounds: &[EnginePass]) -> anyhow::Result<Vec<PhaseResult>> {
    let Some(first) = rounds.first() else {
        return Ok(Vec::new());
    };
    let mut merged = first.phases.clone();
    for pass in &rounds[1..] {
        for (into, phase) in merged.iter_mut().zip(&pass.phases) {
            into.absorb(phase)?;
        }
    }
    Ok(merged)
}

fn add_timeline(report: &mut Report, pass: &EnginePass, compare: bool) {
    for (phase, offset_s) in pass.phases.iter().zip(&pass.offsets_s) {
        for point in &phase.timeline {
            let phase_label = if compare {
                format!("{}/{}", pass.engine, point.phase)
            } else {
                point.phase.clone()
            };
            report.timeline.push(TimelinePoint {
                t_s: point.t_s + offset_s,
                phase: phase_label,
                ..point.clone()
            });
        }
    }
}

/// The `read_verification` check of one pass, when there is something to judge: reads were
/// verified, or reads ran (then no verified read means the verifier saw nothing: it fails).
fn read_verification(
    label: &str,
    verify: &crate::driver::VerifyLog,
    reads_expected: bool,
) -> Option<Check> {
    if verify.checked == 0 && !reads_expected {
        return None;
    }
    let detail = if verify.checked == 0 {
        format!("{label}: verification was on and reads ran, but no read was checked")
    } else if verify.failed == 0 {
        format!("{label}: {} reads verified", verify.checked)
    } else {
        format!(
            "{label}: {} of {} reads failed verification; first: {}",
            verify.failed,
            verify.checked,
            verify.details.join(" | ")
        )
    };
    Some(Check {
        name: "read_verification".into(),
        passed: verify.failed == 0 && verify.checked > 0,
        detail,
    })
}

/// A check over `checked` observations of which `failed` failed, `details` the first
/// failures: it fails on any failure, and when it observed nothing.
fn counted_check(
    name: &str,
    label: &str,
    (checked, failed, details): (u64, u64, &[String]),
    [none, held, broke]: [&str; 3],
) -> Check {
    let detail = if checked == 0 {
        format!("{label}: {none}")
    } else if failed == 0 {
        format!("{label}: {checked} {held}")
    } else {
        format!(
            "{label}: {failed} of {checked} {broke}; first: {}",
            details.join(" | ")
        )
    };
    Check {
        name: name.into(),
        passed: failed == 0 && checked > 0,
        detail,
    }
}

/// No read returned a version older than one acknowledged before it began, or one never
/// written (see `driver::history`).
fn read_freshness(label: &str, v: &crate::driver::VerifyLog) -> Check {
    counted_check(
        "read_freshness",
        label,
        (v.fresh_checked, v.fresh_failed, &v.fresh_details),
        [
            "reads ran, but none was judged against the writes before it",
            "reads returned a version no older than the newest acknowledged before they began",
            "reads were stale or never written",
        ],
    )
}

/// No scan skipped a loaded key between its start and its last key, or ended short of its
/// length before the last loaded key.
fn scan_completeness(label: &str, v: &crate::driver::VerifyLog) -> Check {
    counted_check(
        "scan_completeness",
        label,
        (v.scans_checked, v.scans_failed, &v.scans_details),
        [
            "scans ran, but none was checked for skipped keys",
            "scans returned every loaded key in their range",
            "scans skipped a loaded key",
        ],
    )
}

/// The final read-back: every acknowledged key read back and verified.
fn final_verification(label: &str, rb: &crate::driver::ReadBack) -> Check {
    let rate = rb.keys_verified as f64 / rb.duration.as_secs_f64().max(1e-9);
    let how = format!(
        "every acknowledged key read back by {} on {} threads",
        rb.method, rb.threads
    );
    let detail = if rb.failures == 0 && rb.keys_verified == rb.keys_expected {
        format!(
            "{label}: {how}: {} of {} keys verified in {:.1} s ({rate:.0} keys/s)",
            rb.keys_verified,
            rb.keys_expected,
            rb.duration.as_secs_f64()
        )
    } else {
        format!(
            "{label}: {how}: {} of {} keys verified, {} problems; first: {}",
            rb.keys_verified,
            rb.keys_expected,
            rb.failures,
            rb.details.join(" | ")
        )
    };
    Check {
        name: "final_verification".into(),
        passed: rb.failures == 0 && rb.keys_verified == rb.keys_expected && rb.keys_expected > 0,
        detail,
    }
}

/// Checks from one pass: read verification (when on and possible) and operation errors.
fn add_checks(report: &mut Report, label: &str, pass: &EnginePass) {
    let phases = &pass.phases;
    let mut verify = crate::driver::VerifyLog::default();
    for phase in phases {
        verify.merge(phase.verify.clone());
    }
    // Every recorded read, read-modify-write and transaction verifies what it read.
    let reads_expected = phases.iter().any(|p| {
        ["read", "read_modify_write", "txn"]
            .iter()
            .any(|k| p.kind_ops.get(k).is_some_and(|&n| n > 0))
    });
    if pass.verified {
        report
            .checks
            .extend(read_verification(label, &verify, reads_expected));
    }
    if pass.fresh_tracked && (reads_expected || verify.fresh_checked > 0) {
        report.checks.push(read_freshness(label, &verify));
    }
    let scans_ran = phases
        .iter()
        .any(|p| p.kind_ops.get("scan").is_some_and(|&n| n > 0));
    if pass.scans_tracked && scans_ran {
        report.checks.push(scan_completeness(label, &verify));
    }
    let errors: u64 = phases.iter().flat_map(|p| p.errors.values()).sum();
    let ops: u64 = phases.iter().map(|p| p.ops).sum();
    let details: Vec<&str> = phases
        .iter()
        .flat_map(|p| p.error_details.iter().map(String::as_str))
        .collect();
    let detail = if ops == 0 && errors == 0 {
        format!("{label}: observed nothing: no operation ran, so none could fail")
    } else if errors == 0 {
        format!("{label}: no operation failed")
    } else {
        format!(
            "{label}: {errors} operations failed; first: {}",
            details.join(" | ")
        )
    };
    report.checks.push(Check {
        name: "op_errors".into(),
        passed: errors == 0 && ops > 0,
        detail,
    });
}

/// The progress bar: spinner, elapsed time, engine, phase, ops and rate. Drawn on stderr only
/// when it is a terminal and the run has lasted over [`PROGRESS_DELAY`].
struct ProgressView {
    enabled: bool,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
    engine: String,
    /// The current phase's end: its op count and its duration, when it has them.
    goal_ops: Option<u64>,
    goal_duration: Option<Duration>,
    verify_started: Option<Instant>,
}

impl ProgressView {
    fn new(wanted: bool) -> ProgressView {
        let enabled = wanted && std::io::stderr().is_terminal();
        ProgressView {
            enabled,
            started: Instant::now(),
            bar: None,
            engine: String::new(),
            goal_ops: None,
            goal_duration: None,
            verify_started: None,
        }
    }

    /// The phase about to run, for its ETA (a load's goal is the record count).
    fn goal(&mut self, spec: &PhaseSpec, records: u64) {
        self.goal_ops = if spec.name == "load" {
            Some(records)
        } else {
            spec.bound.ops.map(|o| o.saturating_add(spec.warmup_ops))
        };
        self.goal_duration = spec.bound.duration;
        self.verify_started = None;
    }

    fn eta(&self, ops: u64, elapsed: Duration) -> Option<Duration> {
        let rate = ops as f64 / elapsed.as_secs_f64().max(1e-9);
        let by_ops = self
            .goal_ops
            .filter(|_| rate > 0.0)
            .map(|g| Duration::from_secs_f64(g.saturating_sub(ops) as f64 / rate));
        let by_time = self.goal_duration.map(|d| d.saturating_sub(elapsed));
        match (by_ops, by_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn bar(&mut self) -> Option<&indicatif::ProgressBar> {
        if !self.enabled || self.started.elapsed() < PROGRESS_DELAY {
            return None;
        }
        let started = self.started;
        Some(self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new_spinner().with_elapsed(started.elapsed());
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            {
                bar.set_style(style);
            }
            bar
        }))
    }

    fn tick(&mut self, phase: &str, ops: u64, phase_elapsed: Duration) {
        // Called on every interval from every thread: nothing is computed (nor /proc read)
        // unless the bar is drawn.
        if self.bar().is_none() {
            return;
        }
        let rate = ops as f64 / phase_elapsed.as_secs_f64().max(1e-9);
        let eta = self
            .eta(ops, phase_elapsed)
            .map_or(String::new(), |d| format!(", ETA {}", clock(d)));
        let rss = crate::resources::process_io().rss_bytes >> 20;
        let message = format!(
            "{} {phase}: {ops} ops, {rate:.0} ops/s{eta}, RSS {rss} MiB",
            self.engine
        );
        if let Some(bar) = self.bar() {
            bar.set_message(message);
            bar.tick();
        }
    }

    /// The final read-back: `done` of `total` keys.
    fn verifying(&mut self, done: u64, total: u64) {
        if self.bar().is_none() {
            return;
        }
        let started = *self.verify_started.get_or_insert_with(Instant::now);
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / elapsed;
        let left = total.saturating_sub(done) as f64 / rate.max(1e-9);
        let eta = clock(Duration::from_secs_f64(left.min(1e9)));
        let message = format!(
            "{} read-back: {done} of {total} keys, {rate:.0} keys/s, ETA {eta}",
            self.engine
        );
        if let Some(bar) = self.bar() {
            bar.set_message(message);
            bar.tick();
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The probes of a report as terminal lines.
#[must_use]
pub fn fsync_lines(probes: &[FsyncProbe]) -> String {
    probes
        .iter()
        .map(|p| {
            format!(
                "fsync probe round {}: {:.0} fsyncs/s, p50 {:.1} us, p99 {:.1} us\n",
                p.round, p.fsyncs_per_s, p.p50_us, p.p99_us
            )
        })
        .collect()
}

/// Exit status of a finished run: 0 when every check passed, 1 when one failed.
#[must_use]
pub fn exit_code(report: &Report) -> u8 {
    match report.verdict() {
        report::Verdict::Pass => 0,
        report::Verdict::Fail => 1,
    }
}

/// The one command line that reproduces a run of `scenario` with `seed`.
#[must_use]
pub fn reproduce_command(
    scenario: &str,
    seed: u64,
    engine: Option<&str>,
    sets: &[String],
) -> String {
    let mut line = format!("harness run {} --seed {seed}", shell_quote(scenario));
    if let Some(engine) = engine {
        line.push_str(&format!(" --engine {}", shell_quote(engine)));
    }
    for item in sets {
        line.push_str(&format!(" --set {}", shell_quote(item)));
    }
    line
}

/// `s` quoted for a POSIX shell when it needs it.
#[must_use]
pub fn shell_quote(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c));
    if plain && !s.is_empty() {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `1h02m03s` / `2m03s` / `3s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::{add_checks, read_verification, EnginePass};
    use crate::driver::VerifyLog;
    use crate::report::Report;

    fn pass(tracked: bool, scans_failed: u64) -> EnginePass {
        let phase = crate::driver::PhaseResult {
            name: "run".into(),
            threads: 1,
            keys: 0,
            ops: 20,
            duration: std::time::Duration::from_secs(1),
            target_ops_s: None,
            response: std::collections::BTreeMap::new(),
            service: std::collections::BTreeMap::new(),
            kind_errors: std::collections::BTreeMap::new(),
            errors: std::collections::BTreeMap::new(),
            error_details: Vec::new(),
            timeline: Vec::new(),
            verify: VerifyLog {
                checked: 10,
                fresh_checked: 10,
                fresh_failed: scans_failed,
                scans_checked: 10,
                scans_failed,
                ..VerifyLog::default()
            },
            kind_ops: [("read", 10), ("scan", 10)].into_iter().collect(),
            interval_log: Vec::new(),
        };
        EnginePass {
            engine: "e".into(),
            phases: vec![phase],
            verified: true,
            fresh_tracked: tracked,
            scans_tracked: tracked,
            resources: Vec::new(),
            loads: Vec::new(),
            readbacks: Vec::new(),
            offsets_s: Vec::new(),
            data_dir: std::path::PathBuf::new(),
        }
    }

    /// A report that judged nothing exits non-zero and says why.
    #[test]
    fn a_report_with_no_checks_fails() {
        let mut report = Report::new("s", "e", 1, serde_json::Value::Null);
        assert_eq!(super::exit_code(&report), 1);
        report.require_checks();
        assert!(report
            .checks
            .iter()
            .any(|c| !c.passed && c.detail.contains("nothing")));
    }

    /// `op_errors` over no operation has observed nothing: it fails.
    #[test]
    fn op_errors_with_no_operation_fails() {
        let mut idle = pass(true, 0);
        idle.phases[0].ops = 0;
        idle.phases[0].kind_ops.clear();
        let mut report = Report::new("s", "e", 1, serde_json::Value::Null);
        add_checks(&mut report, "e", &idle);
        let check = report.checks.iter().find(|c| c.name == "op_errors");
        assert!(check.is_some_and(|c| !c.passed), "{check:?}");
    }

    /// A record-count pass that cannot judge freshness or scans (a key space too large to
    /// track) must not hide the failures an earlier pass counted.
    #[test]
    fn an_untracked_pass_keeps_what_a_tracked_pass_found() {
        let mut combined = pass(true, 2);
        combined.append(pass(false, 0));
        let mut report = Report::new("s", "e", 1, serde_json::Value::Null);
        add_checks(&mut report, "e", &combined);
        for name in ["read_freshness", "scan_completeness"] {
            let check = report.checks.iter().find(|c| c.name == name);
            assert!(check.is_some_and(|c| !c.passed), "{name}: {check:?}");
        }
    }

    /// Reads that ran with none verified fail the check; no reads at all leave it out.
    #[test]
    fn read_verification_fails_when_it_saw_nothing() {
        let none = VerifyLog::default();
        let failed = read_verification("t", &none, true);
        assert!(failed.as_ref().is_some_and(|c| !c.passed), "{failed:?}");
        assert!(read_verification("t", &none, false).is_none());
        let seen = VerifyLog {
            checked: 3,
            ..VerifyLog::default()
        };
        assert!(read_verification("t", &seen, true).is_some_and(|c| c.passed));
    }
}
