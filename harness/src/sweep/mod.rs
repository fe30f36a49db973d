//! `harness sweep`: scenarios over a range of seeds, every seed a `harness run` child
//! process, in parallel across cores. It stops at nothing: every failure is collected,
//! grouped by check and message shape so one bug shows once with its count, and the first
//! seed of each group is given with the command that reproduces it.
//!
//! A run in a child process cannot take the sweep down with it: a panic, an abort, a hang
//! past the timeout or a kill is recorded as an aborted run (a harness bug), never a pass.

pub mod group;
mod render;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

pub use group::{Finding, Group, Outcome};
pub use render::{render_html, summary_text};

/// Seeds one sweep may run per scenario: a million runs of the fastest scenario already
/// take hours on two cores.
pub const SWEEP_SEEDS_MAX: u64 = 1_000_000;
/// Scenarios in one sweep.
pub const SWEEP_SCENARIOS_MAX: usize = 64;
/// Parallel runs: more than the cores only adds contention; 256 bounds a typo.
pub const SWEEP_JOBS_MAX: usize = 256;
/// How often a worker looks at its child while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Bytes of a failed run's log kept in the message of an aborted run.
const ABORT_MESSAGE_BYTES_MAX: usize = 400;
/// Version of sweep.json.
pub const SWEEP_SCHEMA_VERSION: u32 = 1;

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepRequest {
    pub scenarios: Vec<String>,
    pub seed_first: u64,
    pub seed_count: u64,
    pub jobs: usize,
    pub out_dir: PathBuf,
    /// `--set` overrides passed to every run.
    pub sets: Vec<String>,
    pub engine: Option<String>,
    /// A run still going after this long is killed and recorded as aborted (a hang).
    pub run_timeout: Duration,
    pub progress: bool,
    /// Keep the report folders of passing runs too.
    pub keep_passing: bool,
    /// The `harness` executable to run (normally the current one).
    pub exe: PathBuf,
}

/// One scenario's row of the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRow {
    pub scenario: String,
    pub seeds_run: u64,
    pub passed: u64,
    pub failed: u64,
    pub aborted: u64,
    pub groups: u64,
    pub wall_s: f64,
    pub runs_per_s: f64,
}

/// sweep.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub schema_version: u32,
    pub git_rev: String,
    pub started_at: String,
    pub seed_first: u64,
    pub seed_last: u64,
    pub jobs: usize,
    pub sets: Vec<String>,
    pub engine: Option<String>,
    /// "pass" when every run of every scenario passed, else "fail".
    pub verdict: String,
    pub scenarios: Vec<ScenarioRow>,
    /// Every failure group, largest first within each scenario.
    pub groups: Vec<Group>,
}

impl SweepRequest {
    /// The command line that reproduces one seed's run.
    #[must_use]
    pub fn reproduce(&self, scenario: &str, seed: u64) -> String {
        crate::run::reproduce_command(scenario, seed, self.engine.as_deref(), &self.sets)
    }

    fn run_dir(&self, scenario: &str, seed: u64) -> PathBuf {
        self.out_dir
            .join("runs")
            .join(scenario.replace('/', "-"))
            .join(format!("seed-{seed}"))
    }
}

/// Runs the sweep and writes sweep.json and sweep.html into the output folder.
///
/// # Errors
/// The output folder cannot be written, or a child cannot be started at all.
pub fn execute(req: &SweepRequest) -> Result<SweepReport> {
    anyhow::ensure!(
        (1..=SWEEP_SEEDS_MAX).contains(&req.seed_count),
        "seed count must be in 1..={SWEEP_SEEDS_MAX}"
    );
    anyhow::ensure!(
        (1..=SWEEP_SCENARIOS_MAX).contains(&req.scenarios.len()),
        "at most {SWEEP_SCENARIOS_MAX} scenarios"
    );
    let jobs = req.jobs.clamp(1, SWEEP_JOBS_MAX);
    fs::create_dir_all(&req.out_dir)
        .with_context(|| format!("creating {}", req.out_dir.display()))?;
    let started_at = crate::report::rfc3339_utc(std::time::SystemTime::now());
    let bar = progress_bar(req);
    let mut rows = Vec::with_capacity(req.scenarios.len());
    let mut groups = Vec::new();
    for scenario in &req.scenarios {
        let started = Instant::now();
        let results = run_scenario(req, scenario, jobs, bar.as_ref())?;
        let wall_s = started.elapsed().as_secs_f64();
        let found = group::group(scenario, &results, |s| req.reproduce(scenario, s));
        rows.push(row(scenario, &results, found.len(), wall_s));
        groups.extend(found);
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let failed = rows.iter().any(|r| r.failed + r.aborted > 0);
    let report = SweepReport {
        schema_version: SWEEP_SCHEMA_VERSION,
        git_rev: crate::report::git_rev_short(),
        started_at,
        seed_first: req.seed_first,
        seed_last: req.seed_first.saturating_add(req.seed_count - 1),
        jobs,
        sets: req.sets.clone(),
        engine: req.engine.clone(),
        verdict: if failed { "fail" } else { "pass" }.to_string(),
        scenarios: rows,
        groups,
    };
    write_reports(&report, &req.out_dir)?;
    Ok(report)
}

fn row(scenario: &str, results: &[(u64, Outcome)], groups: usize, wall_s: f64) -> ScenarioRow {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|(_, o)| f(o)).count() as u64;
    let seeds_run = results.len() as u64;
    ScenarioRow {
        scenario: scenario.to_string(),
        seeds_run,
        passed: count(|o| matches!(o, Outcome::Pass)),
        failed: count(|o| matches!(o, Outcome::Fail(_))),
        aborted: count(|o| matches!(o, Outcome::Aborted(_))),
        groups: groups as u64,
        wall_s,
        runs_per_s: if wall_s > 0.0 {
            seeds_run as f64 / wall_s
        } else {
            0.0
        },
    }
}

fn progress_bar(req: &SweepRequest) -> Option<indicatif::ProgressBar> {
    if !req.progress {
        return None;
    }
    let total = req.seed_count.saturating_mul(req.scenarios.len() as u64);
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} runs [{elapsed_precise}, eta {eta}] {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Every seed of one scenario, `jobs` at a time.
fn run_scenario(
    req: &SweepRequest,
    scenario: &str,
    jobs: usize,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<Vec<(u64, Outcome)>> {
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let results = Mutex::new(Vec::with_capacity(req.seed_count as usize));
    let spawn_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= req.seed_count || lock(&spawn_error).is_some() {
                    return;
                }
                let seed = req.seed_first.wrapping_add(i);
                match run_one(req, scenario, seed) {
                    Ok(outcome) => {
                        if outcome != Outcome::Pass {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        lock(&results).push((seed, outcome));
                    }
                    Err(e) => *lock(&spawn_error) = Some(e),
                }
                if let Some(bar) = bar {
                    let failed = failures.load(Ordering::Relaxed);
                    bar.set_message(format!("{scenario}: {failed} failed"));
                    bar.inc(1);
                }
            });
        }
    });
    if let Some(e) = lock(&spawn_error).take() {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// A poisoned lock only means another worker panicked; its data is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One seed: `harness run` in a child, judged from its exit status and report.json.
fn run_one(req: &SweepRequest, scenario: &str, seed: u64) -> Result<Outcome> {
    let dir = req.run_dir(scenario, seed);
    // An earlier sweep's report in the same folder must never stand in for this run's.
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("run.log");
    let log = fs::File::create(&log_path)?;
    let mut cmd = Command::new(&req.exe);
    // Its own process group, so a timeout kills the run and every process it started
    // (the kill -9 loop's workers) together.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.arg("run")
        .arg(scenario)
        .arg("--seed")
        .arg(seed.to_string());
    cmd.arg("--no-progress").arg("--out").arg(&dir);
    if let Some(engine) = &req.engine {
        cmd.arg("--engine").arg(engine);
    }
    for set in &req.sets {
        cmd.arg("--set").arg(set);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", req.exe.display()))?;
    let started = Instant::now();
    let status = loop {
        let polled = child.try_wait();
        if let Ok(Some(status)) = polled {
            break Some(status);
        }
        if polled.is_err() || started.elapsed() > req.run_timeout {
            kill_group(&mut child);
            break None;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let outcome = judge(status, &dir, &log_path, req.run_timeout);
    if outcome == Outcome::Pass && !req.keep_passing {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(outcome)
}

/// Kills the child's whole process group (the child leads it) and reaps the child.
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ =
            nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The outcome of a finished child: its report's failed checks, else why it had no verdict.
fn judge(
    status: Option<std::process::ExitStatus>,
    dir: &Path,
    log: &Path,
    timeout: Duration,
) -> Outcome {
    let Some(status) = status else {
        return Outcome::Aborted(format!("hang: still running after {} s", timeout.as_secs()));
    };
    let report = fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|t| crate::report::from_json_str(&t).ok());
    let found: Vec<Finding> = (report.iter())
        .flat_map(|r| r.failed_checks())
        .map(|c| Finding {
            check: c.name.clone(),
            detail: c.detail.clone(),
        })
        .collect();
    let observed = report.as_ref().is_some_and(|r| !r.checks.is_empty());
    match status.code() {
        // A pass needs a report that judged something: exit 0 alone proves nothing.
        Some(0) if found.is_empty() && observed => Outcome::Pass,
        Some(1) if !found.is_empty() => Outcome::Fail(found),
        code => {
            let text = fs::read_to_string(log).unwrap_or_default();
            let why = abort_reason(&text);
            let how =
                code.map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}"));
            Outcome::Aborted(format!("{how}: {why}"))
        }
    }
}

/// The line of a run's log that says why it stopped: an error or a panic, else the last line.
fn abort_reason(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.starts_with("error:") || l.contains("panicked at"))
        .or_else(|| log.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no output");
    let mut line = line.trim().to_string();
    if line.len() > ABORT_MESSAGE_BYTES_MAX {
        let mut cut = ABORT_MESSAGE_BYTES_MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

fn write_reports(report: &SweepReport, dir: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    fs::write(dir.join("sweep.json"), json)?;
    fs::write(dir.join("sweep.html"), render_html(report))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_reason_prefers_the_error_line() {
        let log = "harness run x\nerror: enospc episode 1: setup: disk full\nseed 3\n";
        assert_eq!(
            abort_reason(log),
            "error: enospc episode 1: setup: disk full"
        );
        assert_eq!(abort_reason(""), "no output");
        assert_eq!(abort_reason("a\nlast line\n\n"), "last line");
        assert!(abort_reason(&"é".repeat(1000)).len() <= ABORT_MESSAGE_BYTES_MAX);
    }
}
