//! The multi-threaded driver: runs one phase (load or run) of a workload against an engine on
//! 1 to [`THREADS_MAX`] threads and measures it.
//!
//! * Closed loop: each thread issues its next operation when the previous one completes.
//! * Open loop (`target_ops_s`): thread `t` intends to start operation `k` at
//!   `t0 + k * threads / target_ops_s`. Response time is measured from that intended start, so
//!   queueing behind a slow operation counts (no coordinated omission); service time (from the
//!   actual start) is recorded beside it.
//! * Latencies are **nanoseconds** in HdrHistograms (3 significant digits), one per operation
//!   kind per thread, merged with `Histogram::add` at the end of the phase.
//! * The clock is read once per operation boundary in closed loop: the end of operation k is
//!   the start of operation k + 1, so a latency includes the harness's preparation of the
//!   operation (key encoding, value generation). The `null` engine measures that floor.
//! * Each thread sends a one-second interval (ops, errors, histogram) to the collector, which
//!   merges them into the timeline (throughput, p50, p99 per second) and drives progress.
//! * Warm-up operations run but are not recorded.

mod history;
mod hlog;
mod keyorder;
mod probe;
mod readback;
mod recorder;
mod seconds;
mod worker;

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

use crate::adapter::{AdapterResult, Engine, ErrorKind};
use crate::report::{LatencySummary, PhaseReport, TimelinePoint};
use crate::workload::{LoadStream, Op, OpKind};

pub use history::{Begun, VersionBook, BOOK_KEYS_MAX, RING_LEN, VERSION_THREAD_SHIFT};
pub use keyorder::{KeyOrder, ScanCursor, KEY_ORDER_KEYS_MAX};
pub use probe::{duration_ns, fsync_probe, FSYNC_PROBE_COUNT_MAX};
pub use readback::{read_back, ReadBack};
pub use recorder::{new_histogram, record_ns, Interval, Recorder, Tick, ERROR_KINDS};
pub use worker::{DataCtx, VerifyLog, Worker, VERIFY_DETAILS_MAX};

/// Largest latency recorded: one hour. Longer values are clamped (and would mean a hang).
pub const LATENCY_NS_MAX: u64 = 3_600 * 1_000_000_000;
/// Most driver threads: far beyond the 100+ the harness is meant for, and bounded so a typo
/// (`threads = 100000`) fails fast instead of exhausting the process.
pub const THREADS_MAX: usize = 1024;
/// Intervals queued per thread before a worker blocks on the collector.
const TICKS_QUEUED_PER_THREAD: usize = 8;
/// How often the collector wakes to refresh progress when no interval arrives.
const PROGRESS_POLL: Duration = Duration::from_millis(200);
/// Open loop: sleep until this close to the intended start, then spin (sleep overshoots).
const OPEN_LOOP_SPIN: Duration = Duration::from_micros(50);

/// Load batch indexes preallocated per thread (a 1M-record batch grows the buffer as needed).
const LOAD_BATCH_PREALLOC_MAX: usize = 1 << 16;

/// Histogram slots: the seven operation kinds, then the load batch.
pub const KIND_COUNT: usize = 8;
/// Slot of load-phase batches.
pub const KIND_LOAD: usize = 7;

/// Histogram slot of an operation kind.
#[must_use]
pub fn kind_index(kind: OpKind) -> usize {
    OpKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_LOAD)
}

/// Report name of a histogram slot ("read", "read_modify_write", "load_batch", ...).
#[must_use]
pub fn kind_name(index: usize) -> &'static str {
    const NAMES: [&str; KIND_COUNT] = [
        "read",
        "update",
        "insert",
        "scan",
        "read_modify_write",
        "delete",
        "txn",
        "load_batch",
    ];
    NAMES.get(index).copied().unwrap_or("unknown")
}

/// Where a phase stops: after `ops` recorded operations over all threads (warm-up not
/// included) or `duration` after the phase starts (warm-up included), whichever comes first.
/// At least one must be set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhaseBound {
    pub ops: Option<u64>,
    pub duration: Option<Duration>,
}

impl PhaseBound {
    /// Bounded by an operation count.
    #[must_use]
    pub fn ops(ops: u64) -> PhaseBound {
        PhaseBound {
            ops: Some(ops),
            duration: None,
        }
    }
}

/// One phase to drive.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    pub name: String,
    pub threads: usize,
    pub bound: PhaseBound,
    /// Operations over all threads run before recording starts.
    pub warmup_ops: u64,
    /// Open-loop rate over all threads; None for closed loop.
    pub target_ops_s: Option<f64>,
}

/// A thread's source of operations in the run phase.
pub trait OpSource: Send {
    fn next_op(&mut self) -> Op;
}

/// What a phase does.
pub enum PhaseWork {
    /// Writes each thread's load stream, `batch` records per transaction.
    Load {
        streams: Vec<LoadStream>,
        batch: u64,
    },
    /// Draws operations from one source per thread.
    Run { sources: Vec<Box<dyn OpSource>> },
}

/// Called by the collector with (phase name, weighted ops so far, elapsed).
pub type Progress<'p> = &'p mut dyn FnMut(&str, u64, Duration);

/// Everything measured in one phase.
#[derive(Clone)]
pub struct PhaseResult {
    pub name: String,
    /// Driver threads that ran the phase.
    pub threads: usize,
    /// Records the phase ran over, in a `record_counts` sweep (0 otherwise).
    pub keys: u64,
    /// Weighted operations recorded (a load batch counts its records).
    pub ops: u64,
    pub duration: Duration,
    pub target_ops_s: Option<f64>,
    /// Response time per kind (from the intended start in open loop), nanoseconds.
    pub response: BTreeMap<&'static str, Histogram<u64>>,
    /// Open loop only: service time per kind, nanoseconds.
    pub service: BTreeMap<&'static str, Histogram<u64>>,
    /// Failed operations per kind.
    pub kind_errors: BTreeMap<&'static str, u64>,
    /// Failed operations per error kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first error messages.
    pub error_details: Vec<String>,
    /// Seconds relative to the phase start.
    pub timeline: Vec<TimelinePoint>,
    pub verify: VerifyLog,
    /// Recorded operations per kind (unweighted).
    pub kind_ops: BTreeMap<&'static str, u64>,
    /// The phase's one-second histograms as an HdrHistogram interval log (see `hlog`).
    pub interval_log: Vec<u8>,
}

impl PhaseResult {
    /// The report's view of this phase (latencies in microseconds).
    #[must_use]
    pub fn to_report(&self) -> PhaseReport {
        let summarize = |map: &BTreeMap<&'static str, Histogram<u64>>| {
            map.iter()
                .map(|(name, h)| {
                    let errors = self.kind_errors.get(name).copied().unwrap_or(0);
                    (
                        (*name).to_string(),
                        LatencySummary::from_histogram(h, errors),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
        let duration_s = self.duration.as_secs_f64();
        PhaseReport {
            name: self.name.clone(),
            threads: self.threads,
            keys: self.keys,
            ops: self.ops,
            duration_s,
            throughput_ops_s: self.ops as f64 / duration_s.max(f64::EPSILON),
            target_ops_s: self.target_ops_s,
            latency: summarize(&self.response),
            service_latency: self.target_ops_s.map(|_| summarize(&self.service)),
        }
    }
}

impl PhaseResult {
    /// Adds another run of the same phase (another round): counts, durations, histograms.
    ///
    /// # Errors
    /// Histograms that cannot be merged.
    pub fn absorb(&mut self, other: &PhaseResult) -> anyhow::Result<()> {
        debug_assert_eq!(self.name, other.name);
        self.ops += other.ops;
        self.duration += other.duration;
        for (name, h) in &other.response {
            add_histogram(&mut self.response, name, Some(h))?;
        }
        for (name, h) in &other.service {
            add_histogram(&mut self.service, name, Some(h))?;
        }
        for (name, n) in &other.kind_errors {
            *self.kind_errors.entry(name).or_insert(0) += n;
        }
        for (name, n) in &other.kind_ops {
            *self.kind_ops.entry(name).or_insert(0) += n;
        }
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_insert(0) += n;
        }
        self.verify.merge(other.verify.clone());
        Ok(())
    }
}

/// Per-thread plan derived from the phase spec.
#[derive(Clone, Copy)]
struct ThreadPlan {
    ops: u64,
    warmup_ops: u64,
    deadline: Option<Instant>,
    /// Open loop: nanoseconds between intended starts of this thread's operations.
    interval_ns: Option<f64>,
    t0: Instant,
}

/// Share `total` over `threads`, the remainder going to the first threads.
fn share(total: u64, threads: usize, thread: usize) -> u64 {
    let n = threads as u64;
    total / n + u64::from((thread as u64) < total % n)
}

/// Drives one phase to its bound and returns what it measured.
///
/// # Errors
/// Invalid specs, a session that cannot be opened, or a histogram that cannot be merged.
/// Operation errors are counted, not returned.
pub fn run_phase(
    engine: &dyn Engine,
    ctx: &DataCtx,
    spec: &PhaseSpec,
    work: PhaseWork,
    progress: Progress<'_>,
) -> anyhow::Result<PhaseResult> {
    anyhow::ensure!(
        (1..=THREADS_MAX).contains(&spec.threads),
        "threads = {} is outside 1..={THREADS_MAX}",
        spec.threads
    );
    anyhow::ensure!(
        spec.bound.ops.is_some()
            || spec.bound.duration.is_some()
            || matches!(work, PhaseWork::Load { .. }),
        "phase {} has neither an op count nor a duration",
        spec.name
    );
    if let Some(rate) = spec.target_ops_s {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "target_ops_s = {rate} must be > 0"
        );
    }
    let empty = new_histogram().context("creating a histogram")?;
    match &work {
        PhaseWork::Run { sources } => {
            anyhow::ensure!(sources.len() == spec.threads, "one op source per thread");
        }
        PhaseWork::Load { streams, .. } => {
            anyhow::ensure!(streams.len() == spec.threads, "one load stream per thread");
        }
    }
    let (tx, rx) = sync_channel::<Tick>(spec.threads * TICKS_QUEUED_PER_THREAD);
    let t0 = Instant::now();
    let plans: Vec<ThreadPlan> = (0..spec.threads).map(|t| plan(spec, t0, t)).collect();
    let wall_start = std::time::SystemTime::now();
    let (recorders, (timeline, interval_log), duration) = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(spec.threads);
        let mut slices = split_work(work);
        for (thread, plan) in plans.iter().copied().enumerate() {
            let recorder = Recorder::new(thread, t0, tx.clone(), &empty);
            let job = slices.remove(0);
            handles
                .push(scope.spawn(move || thread_main(engine, ctx, thread, plan, recorder, job)));
        }
        drop(tx);
        let timeline = collect(&rx, spec, t0, wall_start, progress);
        let duration = t0.elapsed();
        let recorders: Vec<_> = handles
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect();
        (recorders, timeline, duration)
    });
    let mut outcomes = Vec::with_capacity(recorders.len());
    for joined in recorders {
        match joined {
            Ok(outcome) => outcomes.push(outcome?),
            Err(_) => anyhow::bail!("a driver thread panicked in phase {}", spec.name),
        }
    }
    let mut result = merge(spec, outcomes, timeline, duration)?;
    result.interval_log = interval_log;
    Ok(result)
}

fn plan(spec: &PhaseSpec, t0: Instant, thread: usize) -> ThreadPlan {
    let ops = spec
        .bound
        .ops
        .map_or(u64::MAX, |total| share(total, spec.threads, thread));
    let deadline = spec.bound.duration.map(|d| t0 + d);
    ThreadPlan {
        ops,
        warmup_ops: share(spec.warmup_ops, spec.threads, thread),
        deadline,
        interval_ns: spec
            .target_ops_s
            .map(|rate| 1e9 * spec.threads as f64 / rate),
        t0,
    }
}

/// A thread's share of the work.
enum Job {
    Load { stream: LoadStream, batch: u64 },
    Run { source: Box<dyn OpSource> },
}

fn split_work(work: PhaseWork) -> Vec<Job> {
    match work {
        PhaseWork::Load { streams, batch } => streams
            .into_iter()
            .map(|stream| Job::Load {
                stream,
                batch: batch.max(1),
            })
            .collect(),
        PhaseWork::Run { sources } => sources
            .into_iter()
            .map(|source| Job::Run { source })
            .collect(),
    }
}

fn thread_main(
    engine: &dyn Engine,
    ctx: &DataCtx,
    thread: usize,
    mut plan: ThreadPlan,
    mut recorder: Recorder,
    job: Job,
) -> anyhow::Result<(Recorder, VerifyLog)> {
    let session = engine.session();
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            recorder.finish();
            return Err(anyhow::anyhow!(
                "thread {thread}: opening a session on {}: {e}",
                engine.name()
            ));
        }
    };
    let mut worker = Worker::new(session, ctx, thread);
    match job {
        Job::Load { mut stream, batch } => {
            plan.ops = stream.remaining().div_ceil(batch);
            let batch_len = usize::try_from(batch).unwrap_or(usize::MAX);
            let mut indexes: Vec<u64> = Vec::with_capacity(batch_len.min(LOAD_BATCH_PREALLOC_MAX));
            drive(&mut worker, &mut recorder, plan, |w| {
                indexes.clear();
                indexes.extend(stream.by_ref().take(batch_len));
                (KIND_LOAD, w.load(&indexes))
            });
        }
        Job::Run { mut source } => {
            drive(&mut worker, &mut recorder, plan, |w| {
                let op = source.next_op();
                (kind_index(op.kind()), w.execute(&op))
            });
        }
    }
    recorder.finish();
    Ok((recorder, worker.verify))
}

/// The measured loop. `step` runs one operation and returns its slot and weight.
fn drive(
    worker: &mut Worker<'_, '_>,
    recorder: &mut Recorder,
    plan: ThreadPlan,
    mut step: impl FnMut(&mut Worker<'_, '_>) -> (usize, AdapterResult<u64>),
) {
    let total = plan.warmup_ops.saturating_add(plan.ops);
    let mut boundary = Instant::now();
    let mut k: u64 = 0;
    while k < total {
        let (intended, start) = match plan.interval_ns {
            None => (boundary, boundary),
            Some(interval_ns) => {
                let intended = plan.t0 + Duration::from_nanos((k as f64 * interval_ns) as u64);
                if boundary < intended {
                    (intended, wait_until(intended))
                } else {
                    (intended, boundary)
                }
            }
        };
        let (kind, outcome) = step(worker);
        let end = Instant::now();
        if k >= plan.warmup_ops {
            match outcome {
                Ok(weight) => {
                    recorder.record(kind, weight, end, duration_ns(end - intended));
                    if plan.interval_ns.is_some() {
                        recorder.record_service(kind, duration_ns(end - start));
                    }
                }
                Err(e) => recorder.record_error(kind, end, &e),
            }
        }
        boundary = end;
        k += 1;
        if plan.deadline.is_some_and(|d| end >= d) {
            break;
        }
    }
    debug_assert!(k <= total);
}

/// Sleeps, then spins, until `at`; returns the time it woke.
fn wait_until(at: Instant) -> Instant {
    loop {
        let now = Instant::now();
        if now >= at {
            return now;
        }
        let left = at - now;
        if left > OPEN_LOOP_SPIN {
            std::thread::sleep(left - OPEN_LOOP_SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Receives intervals until every thread is done; returns the timeline (seconds from `t0`)
/// and the phase's interval log, both written as seconds complete.
fn collect(
    rx: &Receiver<Tick>,
    spec: &PhaseSpec,
    t0: Instant,
    wall_start: std::time::SystemTime,
    progress: Progress<'_>,
) -> (Vec<TimelinePoint>, Vec<u8>) {
    let mut out = Vec::new();
    let mut serializer = hdrhistogram::serialization::V2DeflateSerializer::new();
    let mut log = hlog::IntervalLog::begin(&spec.name, wall_start, &mut out, &mut serializer);
    let mut seconds = seconds::Seconds::new(&spec.name, spec.threads);
    let mut live = spec.threads;
    let mut ops_total: u64 = 0;
    while live > 0 {
        match rx.recv_timeout(PROGRESS_POLL) {
            Ok(Tick::Interval(iv)) => {
                ops_total += iv.ops;
                seconds.add(iv);
            }
            Ok(Tick::Done { thread }) => {
                live -= 1;
                seconds.done(thread);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        seconds.close_ready(t0.elapsed().as_secs_f64(), &mut log);
        progress(&spec.name, ops_total, t0.elapsed());
    }
    let timeline = seconds.close_all(t0.elapsed().as_secs_f64(), &mut log);
    if !log.finish() {
        out.clear();
    }
    (timeline, out)
}

fn merge(
    spec: &PhaseSpec,
    outcomes: Vec<(Recorder, VerifyLog)>,
    timeline: Vec<TimelinePoint>,
    duration: Duration,
) -> anyhow::Result<PhaseResult> {
    let mut result = PhaseResult {
        name: spec.name.clone(),
        threads: spec.threads,
        keys: 0,
        ops: 0,
        duration,
        target_ops_s: spec.target_ops_s,
        response: BTreeMap::new(),
        service: BTreeMap::new(),
        kind_errors: BTreeMap::new(),
        errors: BTreeMap::new(),
        error_details: Vec::new(),
        timeline,
        verify: VerifyLog::default(),
        kind_ops: BTreeMap::new(),
        interval_log: Vec::new(),
    };
    for (recorder, verify) in outcomes {
        result.ops += recorder.ops;
        result.verify.merge(verify);
        for slot in 0..KIND_COUNT {
            let name = kind_name(slot);
            add_histogram(&mut result.response, name, recorder.response[slot].as_ref())?;
            add_histogram(&mut result.service, name, recorder.service[slot].as_ref())?;
            if recorder.kind_errors[slot] > 0 {
                *result.kind_errors.entry(name).or_insert(0) += recorder.kind_errors[slot];
            }
            if recorder.kind_ops[slot] > 0 {
                *result.kind_ops.entry(name).or_insert(0) += recorder.kind_ops[slot];
            }
        }
        for (i, count) in recorder.errors.iter().enumerate().filter(|(_, c)| **c > 0) {
            *result.errors.entry(ERROR_KINDS[i]).or_insert(0) += count;
        }
        for detail in recorder.error_details {
            if result.error_details.len() < recorder::ERROR_DETAILS_MAX {
                result.error_details.push(detail);
            }
        }
    }
    Ok(result)
}

fn add_histogram(
    into: &mut BTreeMap<&'static str, Histogram<u64>>,
    name: &'static str,
    h: Option<&Histogram<u64>>,
) -> anyhow::Result<()> {
    let Some(h) = h else { return Ok(()) };
    match into.get_mut(name) {
        Some(merged) => merged
            .add(h)
            .map_err(|e| anyhow::anyhow!("merging {name}: {e:?}")),
        None => {
            into.insert(name, h.clone());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
