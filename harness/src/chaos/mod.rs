//! Chaos: crash loops and storage faults with recovery checked against an oracle.
//!
//! * [`kill9`]: the workload runs in a child process (`harness worker kill9 ...`), is killed
//!   with SIGKILL at a seeded moment (some kills land while the child recovers), and the parent
//!   reopens and verifies every key against the expected state that survived the kill.
//! * [`inproc`]: the engine runs on [`crate::faults::FaultStorage`] over memory; power loss with
//!   each preset, crashes during recovery, bit flips, misdirected writes, ENOSPC, EIO and
//!   SQLite-style fail-at-N. Every decision derives from the seed, so a run replays exactly.
//! * [`tmpfs`]: a real full disk on a small tmpfs (root only).
//!
//! Every runner returns a [`ChaosOutcome`]: named checks (see [`names`]), the crash cycles and
//! the fault schedule, which [`execute`] puts into the report.

pub mod child;
pub mod crowd;
pub mod fsloop;
pub mod inproc;
pub mod kill9;
pub mod records;
mod rig;
pub mod spec;
pub mod tmpfs;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::{self, Check, CrashCycle, CrashCycles, LatencySummary};

pub use rig::{Rig, RigConfig, Step, RIG_KEYS_MAX};
pub use spec::FaultsSection;

/// Check names of chaos runs, as they appear in `report.json`.
pub mod names {
    /// No acknowledged durable write lost, no version that was never written.
    pub const DURABILITY: &str = "durability";
    /// The recovered commits are a prefix of the commit history, without holes.
    pub const NO_HOLE_PREFIX: &str = "no_hole_prefix";
    /// Bank transfers are all-or-nothing: every read and every recovered state keeps the total.
    pub const ATOMICITY: &str = "atomicity";
    /// Injected corruption or torn writes never surface as data (only as `Error::Corruption`,
    /// or repaired/discarded by recovery).
    pub const CHECKSUM_DETECTION: &str = "checksum_detection";
    /// `check_integrity` is clean after every recovery.
    pub const INTEGRITY: &str = "integrity_after_recovery";
    /// Every reopen finished under base + per-64-MiB-of-WAL bound.
    pub const RECOVERY_TIME: &str = "recovery_time_bound";
    /// Every read of the live database returned the acknowledged version.
    pub const VERIFIED_READS: &str = "verified_reads";
    /// Every scan of the live database showed exactly the acknowledged keys of its bounds,
    /// in order (ranges ascending and descending, and prefixes).
    pub const VERIFIED_SCANS: &str = "verified_scans";
    /// After ENOSPC, the same open database commits again once space is freed.
    pub const DISK_FULL_RECOVERY: &str = "disk_full_recovery";
    /// After a failed fsync the engine refuses writes until reopened.
    pub const FSYNC_POISON: &str = "fsync_error_poisons";
    /// Fail-at-N reached a run without a fault within the bound.
    pub const FAIL_AT_N_COMPLETES: &str = "fail_at_n_completes";
    /// The control of Off mode: acknowledged writes are lost at power loss, as documented.
    pub const OFF_MODE_LOSS: &str = "off_mode_loss_expected";
    /// Normal mode: a power loss loses at most the commits of its window (at most
    /// `normal_commits - 1`, none after an idle past `normal_millis`), and some loss was seen.
    pub const NORMAL_WINDOW: &str = "normal_mode_window";
    /// Power losses landed inside checkpoints (else the scenario never tested them).
    pub const CRASHES_IN_CHECKPOINT: &str = "crashes_inside_checkpoints";
    /// Kills landed while the child was recovering.
    pub const KILLS_IN_RECOVERY: &str = "kills_during_recovery";
    /// Every EIO episode's fault fired during the workload (else the episode tested nothing).
    pub const EIO_FIRED: &str = "eio_fault_fired";
    /// `[faults.storage]` read errors and latent sectors fired during the run.
    pub const READ_FAULTS_FIRED: &str = "read_faults_fired";
    /// `[faults] writers`: every concurrent writer's acknowledged commit survived each power
    /// loss, and nothing it never began appeared.
    pub const CONCURRENT_WRITERS: &str = "concurrent_writers";
    /// `[faults] bulk_delete_every`: some integrity check saw the free list span two or more
    /// trunk pages (else the bulk deletes never tested a long free list).
    pub const FREE_LIST_TRUNKS: &str = "free_list_beyond_one_trunk";
}

/// How the detail of a check begins when it observed nothing because another check failed
/// first: it fails (it was never exercised), but it is not a detection of its own, and the
/// seeded-bug tests do not count it against a bug that must fail one check alone.
pub const NOT_REACHED: &str = "not reached";

/// Failure details kept per check; the rest are counted.
const DETAILS_PER_CHECK_MAX: usize = 5;
/// Fault events copied into a report; the full count is in the detail of the run.
pub const REPORT_SCHEDULE_MAX: usize = 10_000;
/// Cycles listed one by one in the report.
pub const REPORT_CYCLES_MAX: usize = 2_000;

#[derive(Debug, Default, Clone)]
struct Tallied {
    checked: u64,
    failed: u64,
    details: Vec<String>,
    note: String,
}

/// Counts of passes and failures per named check.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    checks: BTreeMap<&'static str, Tallied>,
    order: Vec<&'static str>,
}

impl Tally {
    fn entry(&mut self, name: &'static str) -> &mut Tallied {
        if !self.checks.contains_key(name) {
            self.order.push(name);
        }
        self.checks.entry(name).or_default()
    }

    /// `n` observations of `name` held.
    pub fn pass(&mut self, name: &'static str, n: u64) {
        self.entry(name).checked += n;
    }

    /// One observation of `name` failed.
    pub fn fail(&mut self, name: &'static str, detail: String) {
        let e = self.entry(name);
        e.checked += 1;
        e.failed += 1;
        if e.details.len() < DETAILS_PER_CHECK_MAX {
            e.details.push(detail);
        }
    }

    /// Registers each of `names` (with no observation if it has none yet): a check the
    /// scenario implies is in the report even when the run never reached it, and then it
    /// fails as having observed nothing.
    pub fn expect(&mut self, names: &[&'static str]) {
        for &name in names {
            self.entry(name);
        }
    }

    /// Sets the text shown with a passed check.
    pub fn note(&mut self, name: &'static str, note: String) {
        self.entry(name).note = note;
    }

    /// A control check, judged once at the end of a run: it passes with `note` when the
    /// condition it controls was `seen`, and fails with `blind` when it never was (the fault
    /// model or the checker could not have caught anything).
    pub fn control(&mut self, name: &'static str, seen: bool, note: String, blind: String) {
        if seen {
            self.pass(name, 1);
            self.note(name, note);
        } else {
            self.fail(name, blind);
        }
    }

    /// Failures of `name` so far.
    #[must_use]
    pub fn failures(&self, name: &str) -> u64 {
        self.checks.get(name).map_or(0, |t| t.failed)
    }

    /// Failures over every check.
    #[must_use]
    pub fn total_failures(&self) -> u64 {
        self.checks.values().map(|t| t.failed).sum()
    }

    /// Per check in first-seen order: (name, observations, failures), what `harness merge`
    /// adds up across shards.
    #[must_use]
    pub fn counts(&self) -> Vec<(&'static str, u64, u64)> {
        self.order
            .iter()
            .filter_map(|&n| self.checks.get(n).map(|t| (n, t.checked, t.failed)))
            .collect()
    }

    /// Adds another tally's counts.
    pub fn absorb(&mut self, other: Tally) {
        for name in other.order {
            if let Some(t) = other.checks.get(name) {
                let e = self.entry(name);
                e.checked += t.checked;
                e.failed += t.failed;
                for d in &t.details {
                    if e.details.len() < DETAILS_PER_CHECK_MAX {
                        e.details.push(d.clone());
                    }
                }
                if !t.note.is_empty() {
                    e.note.clone_from(&t.note);
                }
            }
        }
    }

    /// The report's checks, in first-seen order, prefixed with `label` in the details.
    #[must_use]
    pub fn to_checks(&self, label: &str) -> Vec<Check> {
        let mut out = Vec::new();
        for name in &self.order {
            let Some(t) = self.checks.get(name) else {
                continue;
            };
            // A check that observed nothing has not held: it fails, so a blind checker
            // (a workload that never reached it, a fault that never fired) cannot pass.
            let empty = t.checked == 0;
            let detail = if empty && self.total_failures() > 0 {
                format!(
                    "{label}: {NOT_REACHED}: observed nothing, as another check's failure came \
                     first (a failed reopen leaves nothing to check); it cannot pass"
                )
            } else if empty {
                format!("{label}: observed nothing; a check with no observation cannot pass")
            } else if t.failed == 0 {
                let note = if t.note.is_empty() {
                    String::new()
                } else {
                    format!("; {}", t.note)
                };
                format!("{label}: {} observations held{note}", t.checked)
            } else {
                format!(
                    "{label}: {} of {} observations failed; first: {}",
                    t.failed,
                    t.checked,
                    t.details.join(" | ")
                )
            };
            out.push(Check {
                name: (*name).to_string(),
                passed: t.failed == 0 && !empty,
                detail,
            });
        }
        out
    }
}

/// What a chaos runner produced.
#[derive(Debug, Default)]
pub struct ChaosOutcome {
    pub tally: Tally,
    pub cycles: Vec<CrashCycle>,
    /// Reopen times, nanoseconds.
    pub reopen_ns: Vec<u64>,
    /// Verify times, nanoseconds.
    pub verify_ns: Vec<u64>,
    pub schedule: Vec<report::FaultEvent>,
    /// Free-text facts for the run's summary (rates, counts).
    pub notes: Vec<String>,
    /// The workload's own operations (commit, read, scan, rollback): latency, nanoseconds.
    pub latency: BTreeMap<String, Histogram<u64>>,
    /// Time spent inside those operations, nanoseconds (their service rate's denominator).
    pub workload_ns: u64,
}

impl ChaosOutcome {
    /// Adds another runner's outcome (cycles renumbered after ours).
    pub fn absorb(&mut self, other: ChaosOutcome) {
        self.tally.absorb(other.tally);
        let base = self.cycles.len() as u64;
        for mut c in other.cycles {
            c.cycle += base;
            self.cycles.push(c);
        }
        self.reopen_ns.extend(other.reopen_ns);
        self.verify_ns.extend(other.verify_ns);
        let room = REPORT_SCHEDULE_MAX.saturating_sub(self.schedule.len());
        self.schedule.extend(other.schedule.into_iter().take(room));
        self.notes.extend(other.notes);
        self.workload_ns = self.workload_ns.saturating_add(other.workload_ns);
        for (kind, h) in other.latency {
            match self.latency.get_mut(&kind) {
                // Same-unit, auto-resizing histograms: add cannot fail.
                Some(mine) => {
                    let _ = mine.add(&h);
                }
                None => {
                    self.latency.insert(kind, h);
                }
            }
        }
    }

    /// Records one workload operation of `kind` that took `took`.
    pub fn record(&mut self, kind: &str, took: Duration) {
        let ns = nanos(took).clamp(1, crate::driver::LATENCY_NS_MAX);
        if !self.latency.contains_key(kind) {
            if let Ok(h) = crate::driver::new_histogram() {
                self.latency.insert(kind.to_string(), h);
            }
        }
        if let Some(h) = self.latency.get_mut(kind) {
            crate::driver::record_ns(h, ns);
        }
        self.workload_ns = self.workload_ns.saturating_add(ns);
    }

    /// The workload as one report phase: per kind its latency, and the rate of operations
    /// over the time spent in them (a service rate: crashes and checks are not counted).
    #[must_use]
    pub fn workload_phase(&self) -> Option<report::PhaseReport> {
        let ops: u64 = self.latency.values().map(Histogram::len).sum();
        if ops == 0 {
            return None;
        }
        let duration_s = self.workload_ns as f64 / 1e9;
        Some(report::PhaseReport {
            name: "workload".into(),
            threads: 1,
            ops,
            duration_s,
            throughput_ops_s: ops as f64 / duration_s.max(f64::EPSILON),
            latency: self
                .latency
                .iter()
                .map(|(k, h)| (k.clone(), with_histogram(h)))
                .collect(),
            ..report::PhaseReport::default()
        })
    }

    /// The report's crash-cycle section.
    #[must_use]
    pub fn crash_cycles(&self) -> CrashCycles {
        CrashCycles {
            count: self.cycles.len() as u64,
            reopen: summary(&self.reopen_ns),
            verify: summary(&self.verify_ns),
            cycles: self
                .cycles
                .iter()
                .take(REPORT_CYCLES_MAX)
                .cloned()
                .collect(),
        }
    }
}

/// Longest reopen or verification a crash-cycle summary records exactly: an hour. Longer
/// ones count at this value (the per-cycle entries keep the real figure).
const CYCLE_NS_MAX: u64 = 3_600_000_000_000;

/// Nanosecond samples as a latency summary.
fn summary(samples_ns: &[u64]) -> LatencySummary {
    // Bounded: an auto-resizing histogram starts with a range of 1..=2, and saturating
    // records then clamped every sample to 2 ns (every percentile read 0.002 us).
    let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, CYCLE_NS_MAX, 3) else {
        return LatencySummary::default();
    };
    for &s in samples_ns {
        h.saturating_record(s.max(1));
    }
    with_histogram(&h)
}

/// The summary of `h` carrying `h` itself, so shard reports merge exactly (`harness merge`).
fn with_histogram(h: &Histogram<u64>) -> LatencySummary {
    LatencySummary {
        histogram_b64: crate::shard::encode_histogram(h),
        ..LatencySummary::from_histogram(h, 0)
    }
}

/// Converts the fault layer's events for the report.
#[must_use]
pub fn report_events(
    events: &[crate::faults::FaultEvent],
    context: &str,
) -> Vec<report::FaultEvent> {
    events
        .iter()
        .take(REPORT_SCHEDULE_MAX)
        .map(|e| {
            let kind = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let detail = if e.detail.is_empty() {
                format!("{context}; {} bytes", e.len)
            } else {
                format!("{context}; {} bytes; {}", e.len, e.detail)
            };
            report::FaultEvent {
                at_op: e.op_index,
                kind,
                file: e.file.clone(),
                offset: Some(e.offset),
                detail,
            }
        })
        .collect()
}

/// Nanoseconds of a duration, saturating.
#[must_use]
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The recovery bound for a WAL of `wal_bytes`: `base + per_64mib * wal / 64 MiB`.
#[must_use]
pub fn recovery_bound(spec: &FaultsSection, wal_bytes: u64) -> Duration {
    const MIB_64: f64 = (64u64 << 20) as f64;
    let ms = spec.recovery_bound_base_ms as f64
        + spec.recovery_bound_ms_per_64mib as f64 * (wal_bytes as f64 / MIB_64);
    Duration::from_secs_f64(ms / 1000.0)
}

/// How far a loaded machine may stretch a reopen's wall time past the bound when the
/// reopen's own CPU time stays within it. A recovery that hangs or sleeps still fails
/// past this; one that does too much work fails on its CPU time alone.
pub const RECOVERY_LOAD_FACTOR_MAX: u32 = 16;

/// Wall and CPU time of one reopen.
#[derive(Debug, Clone, Copy)]
pub struct Took {
    pub wall: Duration,
    /// CPU time of this process (user and system, every thread) over the reopen.
    pub cpu: Option<Duration>,
}

/// CPU time (user and system) this process has used so far.
fn cpu_used() -> Option<Duration> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let tv = |t: nix::sys::time::TimeVal| {
        let us = u64::try_from(t.tv_sec()).ok()? * 1_000_000 + u64::try_from(t.tv_usec()).ok()?;
        Some(Duration::from_micros(us))
    };
    Some(tv(usage.user_time())? + tv(usage.system_time())?)
}

/// Runs `f` (a reopen) and measures its wall and CPU time.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Took) {
    let cpu_start = cpu_used();
    let started = std::time::Instant::now();
    let out = f();
    let wall = started.elapsed();
    let cpu = cpu_start.and_then(|a| cpu_used().map(|b| b.saturating_sub(a)));
    (out, Took { wall, cpu })
}

/// Judges one reopen against [`recovery_bound`].
///
/// The bound is wall-clock, and outside load (another job's builds and writeback on the
/// same two cores and disk) once stretched 50 ms reopens to 2-10 s with no fault of the
/// engine's. So a reopen over the bound passes when its own CPU time is within the bound
/// and its wall time within [`RECOVERY_LOAD_FACTOR_MAX`] times it; the note says so.
pub fn judge_recovery(tally: &mut Tally, spec: &FaultsSection, wal_bytes: u64, took: Took) {
    let bound = recovery_bound(spec, wal_bytes);
    if took.wall <= bound {
        tally.pass(names::RECOVERY_TIME, 1);
        return;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let missed = format!(
        "reopen took {:.1} ms with {wal_bytes} bytes of WAL, bound {:.1} ms",
        ms(took.wall),
        ms(bound)
    );
    let loaded = took
        .cpu
        .filter(|&cpu| cpu <= bound && took.wall <= bound * RECOVERY_LOAD_FACTOR_MAX);
    match (loaded, took.cpu) {
        (Some(cpu), _) => {
            tally.pass(names::RECOVERY_TIME, 1);
            let note = format!(
                "{missed}, but used {:.1} ms of CPU: the rest was waiting on a loaded machine",
                ms(cpu)
            );
            tally.note(names::RECOVERY_TIME, note);
        }
        (None, Some(cpu)) => {
            let d = format!("{missed}; it used {:.1} ms of CPU", ms(cpu));
            tally.fail(names::RECOVERY_TIME, d);
        }
        (None, None) => tally.fail(names::RECOVERY_TIME, missed),
    }
}

pub use run::{execute, run_in_process};
pub mod run;
pub mod swarm;

#[cfg(test)]
mod tests {

    #[test]
    fn the_workload_becomes_a_report_phase_with_its_latency() -> anyhow::Result<()> {
        let mut out = super::ChaosOutcome::default();
        assert!(out.workload_phase().is_none(), "no operation, no phase");
        out.record("commit", Duration::from_millis(1));
        out.record("commit", Duration::from_millis(3));
        out.record("read", Duration::from_micros(20));
        let mut other = super::ChaosOutcome::default();
        other.record("commit", Duration::from_millis(2));
        out.absorb(other);
        let phase = out
            .workload_phase()
            .ok_or_else(|| anyhow::anyhow!("no phase"))?;
        assert_eq!(phase.ops, 4);
        let commit = &phase.latency["commit"];
        assert_eq!(commit.count, 3);
        assert!((commit.max_us - 3000.0).abs() < 10.0, "{commit:?}");
        assert!(
            (phase.duration_s - 0.006_02).abs() < 1e-4,
            "{}",
            phase.duration_s
        );
        Ok(())
    }
    use super::{judge_recovery, names, summary, timed, FaultsSection, Tally, Took};
    use std::time::Duration;

    fn spec() -> anyhow::Result<FaultsSection> {
        Ok(toml::from_str("")?)
    }

    fn took(wall_ms: u64, cpu_ms: Option<u64>) -> Took {
        Took {
            wall: Duration::from_millis(wall_ms),
            cpu: cpu_ms.map(Duration::from_millis),
        }
    }

    /// A reopen that spent its time working fails the bound on its own.
    #[test]
    fn slow_reopen_fails_the_recovery_bound() -> anyhow::Result<()> {
        let spec = spec()?;
        let mut tally = Tally::default();
        judge_recovery(&mut tally, &spec, 0, took(10, Some(10)));
        judge_recovery(&mut tally, &spec, 0, took(3_000, Some(2_900)));
        judge_recovery(&mut tally, &spec, 0, took(3_000, None));
        assert_eq!(tally.failures(names::RECOVERY_TIME), 2);
        assert_eq!(tally.total_failures(), 2, "only the recovery bound fails");
        Ok(())
    }

    /// A reopen that waited on a loaded machine passes, up to the load factor.
    #[test]
    fn waiting_reopen_passes_up_to_the_load_factor() -> anyhow::Result<()> {
        let spec = spec()?;
        let mut tally = Tally::default();
        judge_recovery(&mut tally, &spec, 0, took(10_000, Some(40)));
        assert_eq!(tally.failures(names::RECOVERY_TIME), 0);
        judge_recovery(&mut tally, &spec, 0, took(40_000, Some(40)));
        assert_eq!(tally.failures(names::RECOVERY_TIME), 1, "a hang fails");
        Ok(())
    }

    /// `timed` sees CPU spent inside it: the closure spins until the process has used 30 ms
    /// of CPU (however long a loaded machine makes that take, up to 20 s).
    #[test]
    fn timed_measures_cpu() {
        let spin = Duration::from_millis(30);
        let ((), t) = timed(|| {
            let (start, began) = (super::cpu_used(), std::time::Instant::now());
            let mut x = 0u64;
            while super::cpu_used()
                .zip(start)
                .is_some_and(|(now, s)| now - s < spin)
                && began.elapsed() < Duration::from_secs(20)
            {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        let cpu = t.cpu.unwrap_or_default();
        assert!(cpu >= spin, "{t:?}");
    }

    /// A check that observed nothing fails; one observation that held passes.
    #[test]
    fn a_check_with_no_observation_fails() {
        let mut tally = Tally::default();
        tally.pass(names::DURABILITY, 0);
        tally.pass(names::INTEGRITY, 1);
        let checks = tally.to_checks("t");
        assert_eq!(checks.len(), 2);
        assert!(!checks[0].passed, "{:?}", checks[0]);
        assert!(checks[0].detail.contains("observed nothing"));
        assert!(checks[1].passed, "{:?}", checks[1]);
    }

    /// The summary agrees with the samples it summarizes (it once read 0.002 us for
    /// reopens of milliseconds).
    #[test]
    fn cycle_summary_matches_its_samples() {
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        let s = summary(&samples);
        assert_eq!(s.count, 100);
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.001;
        assert!(near(s.min_us, 1_000.0), "{s:?}");
        assert!(near(s.p50_us, 50_000.0), "{s:?}");
        assert!(near(s.max_us, 100_000.0), "{s:?}");
        assert!(near(s.mean_us, 50_500.0), "{s:?}");
    }
}
