//! `harness shrink`: reduces a failing in-process chaos run to a small reproducer.
//!
//! The run is first replayed as given (the path of `harness run`: `chaos::run::run_sections`,
//! in this process, no report written) and the names of its failed checks are kept. Then the
//! schedule is reduced, one dimension at a time, while the first of those checks still fails
//! with the same seed (`dims.rs`): cycles and episodes, commits per cycle, keys, the presets
//! and fault kinds, and the workload's and faults' extras. Each trial is a full deterministic
//! run, so an accepted step is a fact about that configuration, not a guess.
//!
//! "Operations" are the write transactions the seeded workload committed, over every cycle
//! and episode: the `commit` count of the report's `workload` phase. Rollbacks, the setup
//! and the `[faults] writers` threads are not counted.
//!
//! The shrunk case is written as a scenario file (`output.rs`) that `harness run` takes and
//! `harness/tests/shrunk_replay.rs` replays.

mod dims;
mod output;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::chaos::{self, FaultsSection};
use crate::run::RunRequest;
use crate::scenario;

pub use output::{expected_check, EXPECT_CHECK_PREFIX};

/// Trials at most. Each is a full run (a few seconds for the shipped `faults/*` scenarios);
/// a bisection takes about log2 of its value's range (17 for 100 000 cycles), and some
/// twenty dimensions over two passes fit in this many, so it stops only a shrink that has
/// stopped paying off.
pub const TRIALS_MAX: u64 = 400;
/// Wall time of a shrink at most, by default (`--max-seconds`): long enough for the shipped
/// scenarios, short enough that a slow one comes back with what it has.
pub const SECONDS_DEFAULT: u64 = 900;

const EXIT_SHRUNK: u8 = 0;
const EXIT_FAIL: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

/// `harness shrink`.
#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// An in-process chaos scenario (`faults/power-loss-sqlite`) or a .toml file.
    pub scenario: String,
    /// The seed of the failing run; every trial uses it.
    #[arg(long)]
    pub seed: u64,
    /// Overrides of the failing run (as for `run`), kept unless a shrink step changes them.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The shrunk scenario file (default:
    /// harness/tests/shrunk/<scenario, `/` as `-`>-<seed>.toml, from the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop shrinking after this many seconds and keep what was reached.
    #[arg(long, default_value_t = SECONDS_DEFAULT)]
    pub max_seconds: u64,
}

/// What one run showed.
#[derive(Debug, Clone)]
pub struct Trial {
    /// Checks with a failed observation, in the report's order.
    pub failed: Vec<String>,
    /// Checks that observed nothing (they fail the run too, but are not shrunk towards).
    pub blind: Vec<String>,
    /// Operations: commits of the seeded workload (see the module docs).
    pub commits: u64,
}

/// The overrides of a shrink: `(dotted key, TOML value text)`, the user's first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sets(Vec<(String, String)>);

impl Sets {
    /// Parses `key=value` items as `--set` takes them.
    ///
    /// # Errors
    /// An item without `=`.
    pub fn parse(items: &[String]) -> Result<Sets> {
        let mut sets = Sets::default();
        for item in items {
            let (k, v) = item
                .split_once('=')
                .with_context(|| format!("--set {item:?}: expected key=value"))?;
            sets.put(k.trim(), v.trim());
        }
        Ok(sets)
    }

    /// Sets `key` to `value`, in place when it is already set.
    pub fn put(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    /// Drops the override of `key`, if any.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// True when `key` is overridden.
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// `key=value` items, for `scenario::load` and the reproduce command.
    #[must_use]
    pub fn items(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// One shrink in progress: the scenario, the failure kept, the budget.
pub struct Shrinker {
    pub name: String,
    pub file: PathBuf,
    pub seed: u64,
    /// The check that must keep failing.
    pub target: String,
    pub sets: Sets,
    pub trials: u64,
    /// Accepted steps, as printed.
    pub steps: Vec<String>,
    started: Instant,
    budget: Duration,
    scratch: tempfile::TempDir,
}

impl Shrinker {
    /// True while trials and time remain.
    fn has_budget(&self) -> bool {
        self.trials < TRIALS_MAX && self.started.elapsed() < self.budget
    }

    /// Runs the scenario with `sets`: `None` when the configuration is refused or the run
    /// cannot finish (a trial that proves nothing).
    fn run(&mut self, sets: &Sets) -> Option<Trial> {
        self.trials += 1;
        trial(&self.name, &self.file, self.seed, sets, self.scratch.path()).ok()
    }

    /// `sets` kept when the target check still fails with them.
    fn fails(&mut self, sets: &Sets) -> Option<Trial> {
        self.run(sets).filter(|t| t.failed.contains(&self.target))
    }
}

/// One run of `file` with `sets` and `seed`, as `harness run` does it, without the report.
///
/// # Errors
/// An invalid configuration, a scenario without in-process fault sections, a failed setup
/// or a panic inside the run.
pub fn trial(
    name: &str,
    file: &std::path::Path,
    seed: u64,
    sets: &Sets,
    scratch: &std::path::Path,
) -> Result<Trial> {
    let scenario = scenario::load(file, &sets.items()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let faults = scenario.faults.clone().context("no [faults] table")?;
    refusal(&faults).map_or(Ok(()), |why| Err(anyhow::anyhow!(why)))?;
    let mode = scenario
        .durability
        .get(&scenario.engine)
        .map(String::as_str);
    let engine =
        crate::adapter::resolve_name(&scenario.engine, mode).map_err(anyhow::Error::msg)?;
    let req = RunRequest {
        scenario_name: name.to_string(),
        scenario,
        seed,
        engines: vec![engine.clone()],
        compare: false,
        out_dir: scratch.to_path_buf(),
        keep_data: false,
        reproduce: String::new(),
        progress: false,
        shard: None,
    };
    // A panic is a harness bug, not the engine's failure: the trial shows nothing, and the
    // shrink goes on with the configurations that do run.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        chaos::run::run_sections(&req, &faults, &engine)
    }));
    let outcome = ran.map_err(|_| anyhow::anyhow!("the run panicked"))??;
    // A check that observed nothing also fails a run, but keeping it failing would shrink
    // towards a workload that reaches nothing: only failed observations count here.
    let (mut failed, mut blind) = (Vec::new(), Vec::new());
    for (check, observations, failures) in outcome.tally.counts() {
        if failures > 0 {
            failed.push(check.to_string());
        } else if observations == 0 {
            blind.push(check.to_string());
        }
    }
    let commits = outcome
        .latency
        .get("commit")
        .map_or(0, hdrhistogram::Histogram::len);
    Ok(Trial {
        failed,
        blind,
        commits,
    })
}

/// Why a scenario cannot be shrunk in process, if it cannot.
#[must_use]
pub fn refusal(faults: &FaultsSection) -> Option<String> {
    if faults.kill9.is_some() {
        return Some(
            "[faults.kill9]: the kill -9 loop kills a child process at wall-clock moments, so \
             a trial does not replay its run exactly and a shrink could not tell a smaller \
             failing case from luck; shrink in-process scenarios (faults/*)"
                .to_string(),
        );
    }
    if faults.tmpfs.is_some() {
        return Some(
            "[faults.tmpfs]: a real full disk needs root and a mounted tmpfs, and its one \
             episode has nothing to reduce; shrink in-process scenarios (faults/*)"
                .to_string(),
        );
    }
    let in_process = faults.power_loss.is_some()
        || faults.corruption.is_some()
        || faults.enospc.is_some()
        || faults.eio.is_some()
        || faults.fail_at_n.is_some();
    (!in_process).then(|| "no in-process fault section ([faults.power_loss], corruption, enospc, eio, fail_at_n) to shrink".to_string())
}

/// `harness shrink`: exit 0 shrunk and written, 1 a run or the file write failed, 2 bad
/// input, a refused scenario or a passing run (nothing to shrink).
#[must_use]
pub fn cmd_shrink(args: &ShrinkArgs) -> u8 {
    match start(args) {
        Ok(Ok((shrinker, original))) => finish(args, shrinker, &original),
        Ok(Err(message)) => {
            eprintln!("error: {message}");
            EXIT_BAD_INPUT
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_FAIL
        }
    }
}

/// Resolves the scenario and runs it as given: the shrinker, or why there is nothing to
/// shrink (the inner error, exit 2).
fn start(args: &ShrinkArgs) -> Result<std::result::Result<(Shrinker, Trial), String>> {
    let bad = |e: String| Ok(Err(e));
    let (name, file) = match scenario::resolve(&args.scenario) {
        Ok(found) => found,
        Err(e) => return bad(e.to_string()),
    };
    let sets = match Sets::parse(&args.set) {
        Ok(s) => s,
        Err(e) => return bad(e.to_string()),
    };
    let scenario = match scenario::load(&file, &sets.items()) {
        Ok(s) => s,
        Err(e) => return bad(e.to_string()),
    };
    let Some(faults) = &scenario.faults else {
        return bad(format!(
            "{name} has no [faults] table: only chaos runs shrink"
        ));
    };
    if let Some(why) = refusal(faults) {
        return bad(format!("{name} cannot be shrunk: {why}"));
    }
    if faults.seeded_bug.is_some() && !cfg!(feature = "seeded-bugs") {
        return bad("faults.seeded_bug needs a harness built with --features seeded-bugs".into());
    }
    let scratch = tempfile::tempdir().context("scratch directory")?;
    let started = Instant::now();
    let original = trial(&name, &file, args.seed, &sets, scratch.path())
        .with_context(|| format!("running {name} seed {} as given", args.seed))?;
    let Some(target) = original.failed.first().cloned() else {
        let what = if original.blind.is_empty() {
            "passes every check".to_string()
        } else {
            format!(
                "fails only checks that observed nothing ({:?}): a smaller run would only \
                 observe less",
                original.blind
            )
        };
        return bad(format!(
            "{name} seed {} {what}: nothing to shrink",
            args.seed
        ));
    };
    println!(
        "shrink {name} seed {}: fails {:?}; keeping {target} failing; {} operations",
        args.seed, original.failed, original.commits
    );
    let mut shrinker = Shrinker {
        name,
        file,
        seed: args.seed,
        target,
        sets,
        trials: 1,
        steps: Vec::new(),
        started,
        budget: Duration::from_secs(args.max_seconds),
        scratch,
    };
    dims::shrink(&mut shrinker, &original, faults);
    Ok(Ok((shrinker, original)))
}

/// Confirms the shrunk case once more, prints the summary and writes the file.
fn finish(args: &ShrinkArgs, mut s: Shrinker, original: &Trial) -> u8 {
    let sets = s.sets.clone();
    let Some(last) = s.fails(&sets) else {
        eprintln!(
            "error: the shrunk configuration no longer fails {} on a replay (concurrent \
             writers replay their configuration, not their interleaving)",
            s.target
        );
        return EXIT_FAIL;
    };
    let report = output::Summary::new(&s, args, original, &last);
    report.print();
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| output::default_path(&s.name, s.seed));
    match output::write_case(&s, &report, &path) {
        Ok(()) => {
            println!("shrunk case: {}", path.display());
            EXIT_SHRUNK
        }
        Err(e) => {
            eprintln!("error: writing {}: {e:#}", path.display());
            EXIT_FAIL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{expected_check, refusal, Sets};
    use crate::chaos::FaultsSection;

    /// A later value of a key replaces the earlier in place, so the reproduce command keeps
    /// the user's order and names each key once.
    #[test]
    fn sets_replace_in_place() -> anyhow::Result<()> {
        let mut sets = Sets::parse(&["a.b=1".to_string(), "c=x".to_string()])?;
        sets.put("a.b", "2");
        sets.put("d", "[\"fdb\"]");
        anyhow::ensure!(sets.items() == ["a.b=2", "c=x", "d=[\"fdb\"]"], "{sets:?}");
        sets.remove("c");
        anyhow::ensure!(!sets.has("c") && sets.has("d"));
        anyhow::ensure!(Sets::parse(&["no-equals".to_string()]).is_err());
        Ok(())
    }

    /// Kill -9 and tmpfs sections are refused with their reason; power loss is taken.
    #[test]
    fn refuses_what_does_not_replay_in_process() -> anyhow::Result<()> {
        let kill9: FaultsSection =
            toml::from_str("[kill9]\ncycles = 1\ndelay_ms = { min = 1, max = 2 }\n")?;
        anyhow::ensure!(refusal(&kill9).is_some_and(|w| w.contains("kill -9")));
        let tmpfs: FaultsSection = toml::from_str("[tmpfs]\nsize_mib = 24\nballast_mib = 8\n")?;
        anyhow::ensure!(refusal(&tmpfs).is_some_and(|w| w.contains("tmpfs")));
        let pl: FaultsSection =
            toml::from_str("[power_loss]\ncycles = 1\npresets = [\"sqlite\"]\n")?;
        anyhow::ensure!(refusal(&pl).is_none());
        Ok(())
    }

    #[test]
    fn reads_the_expected_check() -> anyhow::Result<()> {
        let text = "# Shrunk\n# expect-check: durability\n\nseed = 1\n";
        anyhow::ensure!(expected_check(text).as_deref() == Some("durability"));
        anyhow::ensure!(expected_check("seed = 1\n").is_none());
        Ok(())
    }
}
