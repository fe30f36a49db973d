//! The `harness` command line.
//!
//! Exit status: 0 when every check passed, 1 when a check failed or the run could not finish,
//! 2 for bad input (unknown scenario, invalid scenario file or `--set`, unknown engine, usage).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use harness::adapter::{resolve_name, ENGINE_FAMILIES, ENGINE_NAMES};
use harness::gen::cli::{run_keys, KeysArgs};
use harness::report;
use harness::run::{self, BuiltinEngines, RunRequest, ENGINES_DEFAULT};
use harness::scenario::{self, Scenario};

const EXIT_PASS: u8 = 0;
const EXIT_FAIL: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

/// Stress, crash and chaos harness for embedded key-value databases.
#[derive(Parser)]
#[command(name = "harness", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write report.json, report.html and .hgrm files.
    Run(RunArgs),
    /// List every scenario with its description.
    List,
    /// Print key indexes sampled from a distribution.
    Keys(KeysArgs),
    /// Run scenarios over many seeds in parallel; group the failures; write sweep.json/html.
    Sweep(SweepArgs),
    /// Run the integrity check of an engine database file.
    Verify(VerifyArgs),
    /// Compare two history files (`run --history`): exit 0 same, 1 a candidate run failed a
    /// check, 2 bad input, 3 a confirmed regression, 4 inconclusive (too few samples).
    Compare(CompareArgs),
    /// Merge the reports of `run --shard` into one: exit 0 merged and every check passed,
    /// 1 merged and a check failed, 2 bad input (mismatched, missing or duplicate shards).
    Merge(MergeArgs),
    /// Render history files (`run --history`) as one self-contained page, DIR/index.html:
    /// a chart per metric over the runs, biggest movers first, failing runs, freshness.
    /// Exit 0 written, 1 could not write, 2 bad input (unreadable or empty history).
    Dashboard(DashboardArgs),
    /// Keep one database open for hours under a concurrent mix with kill -9 episodes; runs
    /// as resumable slices (--until, --checkpoint, --resume). Exit 0 pass, 1 a check failed.
    Soak(harness::soak::SoakArgs),
    /// Reduce a failing in-process chaos run (faults/*) while its first failed check still
    /// fails: fewest cycles, operations (commits of the seeded workload over every cycle),
    /// keys, presets and fault kinds. Prints the minimal reproduce command and writes the
    /// shrunk scenario file. Exit 0 shrunk, 1 a run failed, 2 bad input, a refused
    /// scenario (kill -9, tmpfs) or a passing run (nothing to shrink).
    Shrink(harness::shrink::ShrinkArgs),
    /// Internal: a chaos child process (started by `harness run`, killed with SIGKILL).
    #[command(hide = true, subcommand)]
    Worker(WorkerCommand),
}

#[derive(Args)]
struct RunArgs {
    /// Scenario name under scenarios/ (`smoke`, `ycsb/a`) or path to a .toml file.
    scenario: String,
    /// Output directory (default: reports/runs/<scenario, `/` as `-`>-<UTC timestamp>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of every random choice (default: the scenario's, else random; always printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Engine name (see `harness list`), a family with the scenario's durability
    /// (`sqlite`, `redb`), or `all` for an interleaved comparison.
    #[arg(long)]
    engine: Option<String>,
    /// Override a scenario key by dotted path, value in TOML syntax: --set run.ops=1000.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Keep the engines' data files under <out>/data/.
    #[arg(long)]
    keep_data: bool,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Append one NDJSON line describing the run (commit, scenario, engine, seed, config
    /// hash, machine, fsync probe, verdict, rates and percentiles) to this file.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Run only slice I of N of a chaos scenario's cycles (I counts from 0, so 0/4 .. 3/4),
    /// with a seed derived from --seed and I; `env/N` takes I from $JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Jobs). Merge the slices with `harness merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
}

#[derive(Args)]
struct MergeArgs {
    /// Output directories of the shards (each holds a report.json).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where the merged report.json, report.html and .hgrm files go.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct CompareArgs {
    /// History file of the baseline runs.
    baseline: PathBuf,
    /// History file of the candidate runs.
    candidate: PathBuf,
}

fn cmd_compare(args: &CompareArgs) -> u8 {
    use harness::compare;
    let read = |p: &PathBuf| compare::read_history(p);
    let (base, cand) = match (read(&args.baseline), read(&args.candidate)) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e:#}");
            return compare::EXIT_BAD_INPUT;
        }
    };
    let c = compare::compare(&base, &cand);
    if c.rows.is_empty() && c.correctness.is_empty() {
        eprintln!("error: no scenario, engine and phase in common");
        return compare::EXIT_BAD_INPUT;
    }
    print!("{}", compare::table(&c));
    c.exit_code()
}

#[derive(Args)]
struct DashboardArgs {
    /// History files (NDJSON, one line per run), read in this order: their lines are the runs
    /// in run order.
    #[arg(required = true)]
    histories: Vec<PathBuf>,
    /// Output directory; index.html is written into it (created when missing).
    #[arg(long)]
    out: PathBuf,
}

fn cmd_dashboard(args: &DashboardArgs) -> u8 {
    use harness::report::dashboard;
    let now = std::time::SystemTime::now();
    match dashboard::write_dashboard(&args.histories, &args.out, now) {
        Ok((page, d)) => {
            let h = &d.history;
            for warning in &h.warnings {
                eprintln!("warning: malformed history line skipped: {warning}");
            }
            if h.malformed > h.warnings.len() {
                let more = h.malformed - h.warnings.len();
                eprintln!("warning: {more} more malformed history lines skipped");
            }
            println!(
                "dashboard: {} runs, {} series ({} charted), {} failing runs, {} malformed \
                 lines skipped",
                h.runs.len(),
                d.series,
                d.charted,
                d.failing,
                h.malformed
            );
            println!("page: {}", page.display());
            EXIT_PASS
        }
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_bad_input() {
                EXIT_BAD_INPUT
            } else {
                EXIT_FAIL
            }
        }
    }
}

#[derive(Args)]
struct SweepArgs {
    /// Scenario names (`faults/bitflip`), or `crash/*`-style prefixes ending in `/*`.
    #[arg(required = true)]
    scenarios: Vec<String>,
    /// Seeds to run, both ends included: `1000..1999` (1000 seeds) or one seed `7`.
    #[arg(long, conflicts_with_all = ["count", "from"])]
    seeds: Option<String>,
    /// How many seeds, from `--from` (default: a random start, printed).
    #[arg(long)]
    count: Option<u64>,
    /// First seed of `--count`.
    #[arg(long, requires = "count")]
    from: Option<u64>,
    /// Runs at a time (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output directory (default: reports/sweeps/<UTC timestamp>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Engine for every run (default: each scenario's).
    #[arg(long)]
    engine: Option<String>,
    /// Override a scenario key in every run (as for `run`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A run still going after this many seconds is killed and counted as aborted.
    #[arg(long, default_value_t = 900)]
    timeout_s: u64,
    /// Keep the report folders of passing runs (by default only failures are kept).
    #[arg(long)]
    keep_passing: bool,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Subcommand)]
enum WorkerCommand {
    /// The kill -9 loop's workload.
    Kill9(harness::chaos::kill9::WorkerArgs),
    /// The soak's workload.
    Soak(harness::soak::worker::SoakWorkerArgs),
}

#[derive(Args)]
struct VerifyArgs {
    /// Path of the engine's main database file (its WAL is `<path>-wal`).
    path: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cmd_run(&args),
        Command::List => cmd_list(),
        Command::Keys(args) => {
            let mut out = std::io::stdout().lock();
            match run_keys(&args, &mut out) {
                Ok(()) => EXIT_PASS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    EXIT_BAD_INPUT
                }
            }
        }
        Command::Sweep(args) => cmd_sweep(&args),
        Command::Verify(args) => cmd_verify(&args),
        Command::Compare(args) => cmd_compare(&args),
        Command::Dashboard(args) => cmd_dashboard(&args),
        Command::Merge(args) => harness::shard::merge::cmd_merge(&args.dirs, &args.out),
        Command::Soak(args) => cmd_soak(&args),
        Command::Shrink(args) => harness::shrink::cmd_shrink(&args),
        Command::Worker(WorkerCommand::Kill9(args)) => harness::chaos::kill9::worker_main(&args),
        Command::Worker(WorkerCommand::Soak(args)) => harness::soak::worker::worker_main(&args),
    };
    ExitCode::from(code)
}

fn cmd_soak(args: &harness::soak::SoakArgs) -> u8 {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find the harness binary to start the soak's child: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    match harness::soak::run(args, exe) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_BAD_INPUT
        }
    }
}

fn cmd_list() -> u8 {
    let scenarios = scenario::list();
    if scenarios.is_empty() {
        eprintln!("no scenarios found in {:?}", scenario::scenario_dirs());
        return EXIT_BAD_INPUT;
    }
    let width = scenarios.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    println!("Scenarios (harness run <name>):");
    for (name, file) in &scenarios {
        println!("  {name:width$}  {}", scenario::description_of(file));
    }
    println!("\nEngines (--engine): {}, all", ENGINE_NAMES.join(", "));
    println!(
        "Families (durability from the scenario): {}",
        ENGINE_FAMILIES.join(", ")
    );
    EXIT_PASS
}

fn cmd_run(args: &RunArgs) -> u8 {
    let (request, reproduce) = match prepare(args) {
        Ok(prepared) => prepared,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    println!(
        "harness run {}: engine {}, seed {}, output {}",
        request.scenario_name,
        if request.compare {
            format!("all ({})", request.engines.join(", "))
        } else {
            request.engines[0].clone()
        },
        request.seed,
        request.out_dir.display()
    );
    match run::execute(&request, &BuiltinEngines) {
        Ok(outcome) => {
            print!("{}", report::summary_table(&outcome.report));
            print!("{}", report::ratio_table(&outcome.report));
            print!("{}", run::fsync_lines(&outcome.report.fsync_probe));
            println!("report: {}", request.out_dir.join("report.html").display());
            if let Some(file) = &args.history {
                if let Err(e) = report::append_history(&outcome.report, file) {
                    eprintln!("error: appending to {}: {e}", file.display());
                    return EXIT_FAIL;
                }
                println!("history: {}", file.display());
            }
            let code = run::exit_code(&outcome.report);
            if code == EXIT_PASS {
                code
            } else {
                for check in outcome.report.failed_checks() {
                    eprintln!("FAILED {}: {}", check.name, check.detail);
                }
                eprintln!("seed {}; reproduce with:\n  {reproduce}", request.seed);
                code
            }
        }
        Err(e) if e.is::<harness::chaos::fsloop::NeedsFuse>() => {
            eprintln!("{e}");
            EXIT_BAD_INPUT
        }
        Err(e) if e.is::<harness::chaos::tmpfs::NeedsRoot>() => {
            eprintln!("error: {e}");
            EXIT_BAD_INPUT
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!("seed {}; reproduce with:\n  {reproduce}", request.seed);
            EXIT_FAIL
        }
    }
}

/// Resolves the scenario, overrides, engines, seed and output directory.
fn prepare(args: &RunArgs) -> Result<(RunRequest, String), String> {
    let (name, file) = scenario::resolve(&args.scenario).map_err(|e| e.to_string())?;
    let scenario = scenario::load(&file, &args.set).map_err(|e| e.to_string())?;
    let choice = args
        .engine
        .clone()
        .unwrap_or_else(|| scenario.engine.clone());
    let compare = choice == "all";
    let engines = if compare {
        let listed: Vec<String> = scenario.engines.clone().unwrap_or_else(default_engines);
        listed
            .iter()
            .map(|e| resolve_engine(&scenario, e))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![resolve_engine(&scenario, &choice)?]
    };
    let mut seed = args.seed.or(scenario.seed).unwrap_or_else(random_seed);
    let mut reproduce = reproduce_line(&name, seed, args);
    let mut out_dir = args.out.clone().unwrap_or_else(|| default_out_dir(&name));
    let shard = match &args.shard {
        Some(text) => Some(harness::shard::plan(&scenario, &name, text, seed)?),
        None => None,
    };
    if let Some(s) = &shard {
        // The base seed and the explicit index replay this shard (`env/N` included).
        reproduce.push_str(&format!(" --shard {}", s.shard));
        seed = harness::shard::derive_seed(seed, s.shard.index);
        if args.out.is_none() {
            let mut dir = out_dir.into_os_string();
            dir.push(format!("-shard-{}-of-{}", s.shard.index, s.shard.count));
            out_dir = dir.into();
        }
    }
    let request = RunRequest {
        scenario_name: name,
        scenario,
        seed,
        engines,
        compare,
        out_dir,
        keep_data: args.keep_data,
        reproduce: reproduce.clone(),
        progress: !args.no_progress,
        shard,
    };
    Ok((request, reproduce))
}

fn default_engines() -> Vec<String> {
    ENGINES_DEFAULT.iter().map(|e| (*e).to_string()).collect()
}

fn resolve_engine(scenario: &Scenario, name: &str) -> Result<String, String> {
    let mode = scenario.durability.get(name).map(String::as_str);
    resolve_name(name, mode).map_err(|e| format!("--engine: {e}"))
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    harness::gen::mix64(nanos ^ (u64::from(std::process::id()) << 32))
}

/// The current UTC time as `20261201T172000Z`, for folder names.
fn utc_stamp() -> String {
    report::rfc3339_utc(std::time::SystemTime::now())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn default_out_dir(name: &str) -> PathBuf {
    PathBuf::from("reports").join("runs").join(format!(
        "{}-{}",
        name.replace('/', "-"),
        utc_stamp()
    ))
}

fn reproduce_line(name: &str, seed: u64, args: &RunArgs) -> String {
    run::reproduce_command(name, seed, args.engine.as_deref(), &args.set)
}

fn cmd_sweep(args: &SweepArgs) -> u8 {
    let request = match prepare_sweep(args) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let last = request.seed_first.saturating_add(request.seed_count - 1);
    println!(
        "harness sweep: {} scenarios x seeds {}..={} ({} each), {} jobs, output {}",
        request.scenarios.len(),
        request.seed_first,
        last,
        request.seed_count,
        request.jobs,
        request.out_dir.display()
    );
    match harness::sweep::execute(&request) {
        Ok(report) => {
            print!("{}", harness::sweep::summary_text(&report));
            println!("report: {}", request.out_dir.join("sweep.html").display());
            if report.verdict == "pass" {
                EXIT_PASS
            } else {
                EXIT_FAIL
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_FAIL
        }
    }
}

/// Resolves scenario names and prefixes, the seed range, jobs and the output folder.
fn prepare_sweep(args: &SweepArgs) -> Result<harness::sweep::SweepRequest, String> {
    let mut scenarios = Vec::new();
    for pattern in &args.scenarios {
        for name in expand_scenarios(pattern)? {
            let (_, file) = scenario::resolve(&name).map_err(|e| e.to_string())?;
            scenario::load(&file, &args.set).map_err(|e| format!("{name}: {e}"))?;
            if !scenarios.contains(&name) {
                scenarios.push(name);
            }
        }
    }
    let (seed_first, seed_count) = match (&args.seeds, args.count) {
        (Some(range), _) => parse_seed_range(range)?,
        (None, Some(count)) => (args.from.unwrap_or_else(|| random_seed() >> 16), count),
        (None, None) => return Err("give --seeds A..B or --count N [--from S]".to_string()),
    };
    let max = harness::sweep::SWEEP_SEEDS_MAX;
    if !(1..=max).contains(&seed_count) {
        return Err(format!(
            "{seed_count} seeds: a sweep runs 1..={max} per scenario"
        ));
    }
    if seed_first.checked_add(seed_count - 1).is_none() {
        return Err(format!(
            "seeds from {seed_first}: the range passes 2^64 - 1"
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join("sweeps").join(utc_stamp()));
    Ok(harness::sweep::SweepRequest {
        scenarios,
        seed_first,
        seed_count,
        jobs,
        out_dir,
        sets: args.set.clone(),
        engine: args.engine.clone(),
        run_timeout: std::time::Duration::from_secs(args.timeout_s.max(1)),
        progress: !args.no_progress,
        keep_passing: args.keep_passing,
        exe,
    })
}

/// A scenario name, or every scenario under a folder for `folder/*`.
fn expand_scenarios(pattern: &str) -> Result<Vec<String>, String> {
    let Some(prefix) = pattern.strip_suffix("/*") else {
        return Ok(vec![pattern.to_string()]);
    };
    let names: Vec<String> = scenario::list()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with(&format!("{prefix}/")))
        .collect();
    if names.is_empty() {
        return Err(format!("no scenario matches {pattern}"));
    }
    Ok(names)
}

/// `A..B` (both ends included) or a single seed `A`.
fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--seeds {text}: expected A..B (both included) or one seed");
    let (a, b) = match text.split_once("..") {
        Some((a, b)) => (a, b.trim_start_matches('=')),
        None => (text, text),
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    let count = b
        .checked_sub(a)
        .and_then(|d| d.checked_add(1))
        .ok_or_else(bad)?;
    Ok((a, count))
}

/// Most problems `verify` prints; the count of the rest is shown.
const VERIFY_PROBLEMS_SHOWN_MAX: usize = 50;

fn cmd_verify(args: &VerifyArgs) -> u8 {
    if !args.path.is_file() {
        eprintln!("error: {} is not a file", args.path.display());
        return EXIT_BAD_INPUT;
    }
    // Opening replays the WAL's committed transactions (recovery) and writes nothing else;
    // Durability::Off avoids syncing anything on the way.
    let options = engine::Options {
        durability: engine::Durability::Off,
        ..Default::default()
    };
    let db = match engine::Database::open(&args.path, options) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("FAILED: cannot open {}: {e}", args.path.display());
            return EXIT_FAIL;
        }
    };
    let outcome = db.check_integrity();
    let closed = db.close();
    match outcome {
        Ok(report) => {
            println!(
                "{}: {} pages ({} free), {} entries",
                args.path.display(),
                report.pages_total,
                report.pages_free,
                report.entries
            );
            for (table, entries) in &report.tables {
                println!("  table {table}: {entries} entries");
            }
            for problem in report.problems.iter().take(VERIFY_PROBLEMS_SHOWN_MAX) {
                println!("  problem: {problem}");
            }
            if report.problems.len() > VERIFY_PROBLEMS_SHOWN_MAX {
                println!(
                    "  ... and {} more problems",
                    report.problems.len() - VERIFY_PROBLEMS_SHOWN_MAX
                );
            }
            if let Err(e) = closed {
                eprintln!("FAILED: closing: {e}");
                return EXIT_FAIL;
            }
            if report.is_ok() {
                println!("integrity: ok");
                EXIT_PASS
            } else {
                println!("integrity: FAILED ({} problems)", report.problems.len());
                EXIT_FAIL
            }
        }
        Err(e) => {
            eprintln!("FAILED: integrity check of {}: {e}", args.path.display());
            EXIT_FAIL
        }
    }
}
