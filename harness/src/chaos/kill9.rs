//! The kill -9 crash loop.
//!
//! The parent loads the keys, then per cycle starts the workload as a child process (the
//! harness binary's hidden `worker kill9` command), sends it SIGKILL at a seeded moment,
//! reopens the database itself (timed: recovery), and verifies every key against the
//! expected state the child wrote through ([`ExpectedState`] lives in a shared mapping, so it
//! survives the kill). Every `recovery_kill_every`-th cycle a second child is started on the
//! unrecovered files and killed while it opens: the kill lands during recovery, and the
//! parent's verification then covers a recovery that was itself interrupted.
//!
//! Protocol on the child's stdout, one line each: `opening`, `opened <us>`, and on a finding
//! `violation <text>` (exit 3) or `error <text>` (exit 4).

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::child::{report_end, say, ChildEnd, Lane, EXIT_VIOLATION};
use super::spec::Kill9Spec;
use super::{judge_recovery, names, nanos, ChaosOutcome, FaultsSection};
use crate::adapter::{open_engine, EngineOptions};
use crate::faults::rng::{hash, SplitMix64};
use crate::gen::{generate_value, verify_value};
use crate::oracle::{check_bank, CheckMode, ExpectedState};
use crate::report::CrashCycle;

/// Records per load transaction.
const LOAD_BATCH: u64 = 1000;
/// Bank accounts at most (the whole bank is read in one scan to check the total).
const ACCOUNTS_MAX: u64 = 10_000;
const BALANCE_INITIAL: i64 = super::records::BALANCE_INITIAL;
const TRANSFER_MAX: u64 = 100;
/// A child that was never killed stops after this many operations (then waits to be killed).
const CHILD_OPS_MAX: u64 = 10_000_000;
/// A child that outlives this is stuck: the parent kills it and reports it.
const CHILD_WAIT_MAX: Duration = Duration::from_secs(60);
/// How often a child says how many reads it has verified (`reads N`): the parent counts
/// them as `verified_reads` observations, so a child that never verifies a read is seen,
/// and a kill loses at most this long's count (kills land 10 to 150 ms in).
const READS_SAY_EVERY: Duration = Duration::from_millis(5);
/// `reads N` lines a child says at most: the parent reads its pipe only after the kill, and
/// a full pipe would block the child's last word (a violation). 2,000 lines of at most 26
/// bytes stay under half of Linux's 64 KiB pipe; a child that outlives them (10 s) keeps
/// its count to itself.
const READS_SAYS_MAX: u64 = 2_000;

/// Reads this child verified against the expected state (see [`READS_SAY_EVERY`]).
static READS_VERIFIED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// The child checks the bank total every this many transfers.
const BANK_SCAN_EVERY: u64 = 50;
/// Children started per recovery kill before giving up on landing it inside the open:
/// the delay halves each time, so eight reach from the expected open time to 1/128 of it.
const RECOVERY_KILL_ATTEMPTS_MAX: u64 = 8;

/// Test-only hook read by the `worker kill9` child: set to `1`, the child says `opening` only
/// once its open has finished (in the same write as `opened`), so no recovery kill can land
/// inside an open and `kills_during_recovery` must fail. It proves that check can fail alone
/// (`harness/tests/checks_fail_alone.rs`); a real run never sets it. The other `HARNESS_*`
/// hooks are in `adapter/engine.rs`.
pub const ANNOUNCE_OPEN_LATE_ENV: &str = "HARNESS_KILL9_ANNOUNCE_OPEN_LATE";

fn announce_open_late() -> bool {
    std::env::var(ANNOUNCE_OPEN_LATE_ENV).is_ok_and(|v| v == "1")
}

/// Arguments of `harness worker kill9` (hidden; started by the parent).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub engine: String,
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long)]
    pub oracle: PathBuf,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub cycle: u64,
    #[arg(long)]
    pub keys: u64,
    #[arg(long)]
    pub value_bytes: usize,
    #[arg(long)]
    pub workload: String,
    #[arg(long, default_value_t = 4)]
    pub txn_keys: u64,
    #[arg(long, default_value_t = 1)]
    pub threads: u64,
}

/// What the parent needs.
#[derive(Debug, Clone)]
pub struct Kill9Ctx {
    pub engine: String,
    pub dir: PathBuf,
    pub seed: u64,
    pub keys_n: u64,
    pub value_bytes: usize,
    pub txn_keys: u64,
    pub spec: Kill9Spec,
    pub faults: FaultsSection,
    /// The harness binary (re-executed as the worker).
    pub exe: PathBuf,
    /// `[faults.fs]`: the data directory is on a fault file system, whose power is cut after
    /// every kill (`chaos::fsloop`); None: a plain kill -9 loop.
    pub fs: Option<super::fsloop::FsHook>,
}

pub(crate) use super::records::{record_index as key_index, record_key as kv_key};

fn bank_value(account: u64, balance: i64) -> Vec<u8> {
    super::records::bank_value(account, balance, super::records::BANK_VALUE_BYTES_MIN)
}

fn bank_balance(account: u64, v: &[u8]) -> Option<i64> {
    super::records::bank_balance(account, v, super::records::BANK_VALUE_BYTES_MIN)
}

pub(crate) fn adapter_err(e: crate::adapter::AdapterError) -> anyhow::Error {
    anyhow!("{e}")
}

fn accounts_n(ctx_keys: u64) -> u64 {
    ctx_keys.clamp(2, ACCOUNTS_MAX)
}

fn engine_options(seed: u64) -> EngineOptions {
    EngineOptions {
        cache_bytes: 64 << 20,
        threads: 1,
        seed: Some(seed),
        ..EngineOptions::default()
    }
}

/// Loads every key at version 1 (or the bank's accounts) through the oracle.
fn load(ctx: &Kill9Ctx, oracle: &ExpectedState) -> Result<()> {
    let data = ctx.dir.join("data");
    let engine = open_engine(&ctx.engine, &data, &engine_options(ctx.seed)).map_err(adapter_err)?;
    let mut session = engine.session().map_err(adapter_err)?;
    let mut value = Vec::new();
    let bank = ctx.spec.workload == "bank";
    let n = if bank {
        accounts_n(ctx.keys_n)
    } else {
        ctx.keys_n
    };
    let mut start = 0;
    while start < n {
        let end = (start + LOAD_BATCH).min(n);
        if !bank {
            (start..end).try_for_each(|k| oracle.begin_put(k, 1))?;
        }
        session
            .transaction(&mut |tx| {
                for k in start..end {
                    if bank {
                        tx.put(&kv_key(b'b', k), &bank_value(k, BALANCE_INITIAL))?;
                    } else {
                        generate_value(k, 1, ctx.seed, ctx.value_bytes, &mut value);
                        tx.put(&kv_key(b'k', k), &value)?;
                    }
                }
                Ok(())
            })
            .map_err(adapter_err)?;
        if !bank {
            (start..end).try_for_each(|k| oracle.ack_put(k, 1))?;
        }
        start = end;
    }
    drop(session);
    engine.sync().map_err(adapter_err)?;
    engine.close().map_err(adapter_err)
}

/// Runs the crash loop.
///
/// # Errors
/// Load failures, a child that cannot be started, oracle files.
pub fn run(ctx: &Kill9Ctx) -> Result<ChaosOutcome> {
    anyhow::ensure!(
        ctx.spec.threads <= ctx.keys_n,
        "faults.kill9.threads ({}) must not exceed workload.record_count ({}): each writer \
         thread owns keys of its own",
        ctx.spec.threads,
        ctx.keys_n
    );
    std::fs::create_dir_all(&ctx.dir)?;
    // The expected state must survive the power cut: never on the fault file system.
    let oracle_path = ctx.fs.as_ref().map_or_else(
        || ctx.dir.join("expected"),
        |f| f.oracle_dir.join("expected"),
    );
    let oracle = ExpectedState::create(&oracle_path, ctx.keys_n)?;
    load(ctx, &oracle).context("kill9: load")?;
    // The load was synced: a relaxed engine may lose only what comes after it.
    oracle.mark_recovered();
    let mut out = ChaosOutcome::default();
    let mut rng = SplitMix64::new(hash(ctx.seed, 0x4B11_9001, 0));
    let mut open_us_est: u64 = 1000;
    let (mut in_recovery, mut recovery_tries) = (0u64, 0u64);
    let started = Instant::now();
    let mut relaxed_lost = 0u64;
    for c in 0..ctx.spec.cycles {
        let d = &ctx.spec.delay_ms;
        let delay_us = d.min * 1000 + rng.below((d.max - d.min) * 1000 + 1);
        let run = kill_child(ctx, &oracle_path, c, Duration::from_micros(delay_us), false)?;
        judge_child(&mut out, &run, c);
        super::fsloop::cut(ctx, c, 0)?;
        if let Some(us) = run.open_us {
            open_us_est = (open_us_est * 3 + us) / 4;
        }
        let every = ctx.spec.recovery_kill_every;
        let mut kind = "kill9".to_string();
        if every > 0 && c % every == every - 1 {
            recovery_tries += 1;
            if kill_in_recovery(ctx, &oracle_path, c, &mut rng, &mut open_us_est, &mut out)? {
                in_recovery += 1;
                kind = "kill9+kill_in_recovery".to_string();
            }
        }
        let integrity = ctx.spec.integrity_every > 0 && c % ctx.spec.integrity_every == 0
            || c + 1 == ctx.spec.cycles;
        relaxed_lost += verify_cycle(ctx, &oracle, &mut out, c, &kind, delay_us, integrity)?;
    }
    if ctx.fs.as_ref().is_some_and(|f| f.relaxed) {
        // The relaxed mode's control: what it lost, as its promise allows.
        out.notes.push(format!(
            "{}: {relaxed_lost} acknowledged writes lost at the power cuts (its promise allows it)",
            ctx.engine
        ));
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    out.notes.push(format!(
        "kill9 on {}: {} cycles in {:.1} s ({:.0} cycles/min) at {} keys; {in_recovery} of {recovery_tries} recovery kills landed during the child's open",
        ctx.engine,
        ctx.spec.cycles,
        minutes * 60.0,
        ctx.spec.cycles as f64 / minutes.max(1e-9),
        ctx.keys_n
    ));
    if recovery_tries > 0 {
        if in_recovery > 0 {
            out.tally.pass(names::KILLS_IN_RECOVERY, in_recovery);
            out.tally.note(
                names::KILLS_IN_RECOVERY,
                format!("{in_recovery} of {recovery_tries} landed while the child recovered"),
            );
        } else {
            out.tally.fail(
                names::KILLS_IN_RECOVERY,
                format!("none of {recovery_tries} recovery kills landed during the child's open"),
            );
        }
    }
    Ok(out)
}

/// Tries to kill a child while it recovers, at a seeded moment below its expected open
/// time; a kill that came after the open finished (the open was quicker than expected, on a
/// loaded machine say) is still a crash, and the next try aims at half the delay, down to
/// killing at once. True when a kill landed during the open. Timing alone once left 2 of
/// 1000 `crash/smoke` seeds with no kill in recovery at all.
fn kill_in_recovery(
    ctx: &Kill9Ctx,
    oracle: &Path,
    c: u64,
    rng: &mut SplitMix64,
    open_us_est: &mut u64,
    out: &mut ChaosOutcome,
) -> Result<bool> {
    let mut aim_us = (*open_us_est).max(1);
    for attempt in 0..RECOVERY_KILL_ATTEMPTS_MAX {
        let delay = Duration::from_micros(rng.below(aim_us));
        let child_cycle = c + 1_000_000 * (attempt + 1);
        let second = kill_child(ctx, oracle, child_cycle, delay, true)?;
        judge_child(out, &second, c);
        super::fsloop::cut(ctx, c, attempt + 1)?;
        if second.exited.is_some() {
            return Ok(false);
        }
        if second.open_us.is_none() && second.opening_seen {
            return Ok(true);
        }
        if let Some(us) = second.open_us {
            *open_us_est = (*open_us_est * 3 + us) / 4;
            aim_us = aim_us.min(us);
        }
        aim_us = (aim_us / 2).max(1);
    }
    Ok(false)
}

/// One child's life as the parent saw it.
#[derive(Debug, Default)]
struct ChildRun {
    opening_seen: bool,
    open_us: Option<u64>,
    /// Reads the child said it verified before it was killed.
    reads_verified: u64,
    /// The child ended by itself (not killed): its exit code and last lines.
    exited: Option<(i32, String)>,
}

fn spawn(ctx: &Kill9Ctx, oracle: &Path, cycle: u64) -> Result<Child> {
    Command::new(&ctx.exe)
        .args([
            "worker",
            "kill9",
            "--engine",
            &ctx.engine,
            "--workload",
            &ctx.spec.workload,
        ])
        .arg("--dir")
        .arg(ctx.dir.join("data"))
        .arg("--oracle")
        .arg(oracle)
        .args([
            "--seed",
            &ctx.seed.to_string(),
            "--cycle",
            &cycle.to_string(),
        ])
        .args([
            "--keys",
            &ctx.keys_n.to_string(),
            "--value-bytes",
            &ctx.value_bytes.to_string(),
        ])
        .args(["--txn-keys", &ctx.txn_keys.to_string()])
        .args(["--threads", &ctx.spec.threads.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} worker kill9", ctx.exe.display()))
}

/// Starts a child and kills it `delay` after it starts (`after_opening`: after it says
/// `opening`, so the kill lands in its recovery).
fn kill_child(
    ctx: &Kill9Ctx,
    oracle: &Path,
    cycle: u64,
    delay: Duration,
    after_opening: bool,
) -> Result<ChildRun> {
    let mut child = spawn(ctx, oracle, cycle)?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut run = ChildRun::default();
    let mut line = String::new();
    if after_opening {
        // Blocks until the child is about to open (or dies).
        let _ = reader.read_line(&mut line);
        run.opening_seen = line.starts_with("opening");
    }
    std::thread::sleep(delay);
    let pid = Pid::from_raw(i32::try_from(child.id()).context("pid")?);
    // ESRCH (already exited) is fine: the exit status tells why.
    let _ = kill(pid, Signal::SIGKILL);
    let status = child.wait()?;
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    for l in line.lines().chain(rest.lines()) {
        if l.starts_with("opening") {
            run.opening_seen = true;
        } else if let Some(us) = l.strip_prefix("opened ") {
            run.open_us = us.trim().parse().ok();
        } else if let Some(n) = l.strip_prefix("reads ") {
            run.reads_verified = run.reads_verified.max(n.trim().parse().unwrap_or(0));
        }
    }
    if let Some(code) = status.code() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let tail: Vec<&str> = rest.lines().chain(err.lines()).rev().take(3).collect();
        run.exited = Some((code, tail.join(" / ")));
    }
    Ok(run)
}

fn judge_child(out: &mut ChaosOutcome, run: &ChildRun, cycle: u64) {
    if run.reads_verified > 0 {
        out.tally.pass(names::VERIFIED_READS, run.reads_verified);
    }
    let Some((code, text)) = &run.exited else {
        return;
    };
    let check = if *code == EXIT_VIOLATION {
        names::VERIFIED_READS
    } else {
        names::DURABILITY
    };
    out.tally.fail(
        check,
        format!("kill9 cycle {cycle}: the child exited by itself with status {code}: {text}"),
    );
}

/// What the parent read back after a kill.
struct Observed {
    versions: Vec<Option<u64>>,
    balances: Vec<Option<i64>>,
    reopen: Duration,
    took: super::Took,
    wal_bytes: u64,
    integrity: Option<Result<(), String>>,
}

#[allow(clippy::too_many_arguments)]
fn verify_cycle(
    ctx: &Kill9Ctx,
    oracle: &ExpectedState,
    out: &mut ChaosOutcome,
    c: u64,
    kind: &str,
    delay_us: u64,
    integrity: bool,
) -> Result<u64> {
    let mut relaxed_lost = 0;
    let failures_before = out.tally.total_failures();
    let verify_start = Instant::now();
    let observed = match read_back(ctx, integrity, &mut out.tally, c) {
        Ok(o) => o,
        Err(e) => {
            out.tally.fail(
                names::DURABILITY,
                format!("kill9 cycle {c}: reopen failed: {e:#}"),
            );
            return Ok(0);
        }
    };
    judge_recovery(
        &mut out.tally,
        &ctx.faults,
        observed.wal_bytes,
        observed.took,
    );
    if ctx.spec.workload == "bank" {
        match check_bank(
            &observed.balances,
            BALANCE_INITIAL * accounts_n(ctx.keys_n) as i64,
        ) {
            Ok(()) => out.tally.pass(names::ATOMICITY, 1),
            Err(e) => out
                .tally
                .fail(names::ATOMICITY, format!("kill9 cycle {c}: {e}")),
        }
    } else {
        let mut held = 0;
        // A relaxed engine on the fault file system may lose acknowledged commits back to
        // its last sync; what it recovered becomes the new durable point.
        let relaxed = ctx.fs.as_ref().is_some_and(|f| f.relaxed);
        let mode = if relaxed {
            CheckMode::Buffered
        } else {
            CheckMode::Full
        };
        let mut lost = 0u64;
        for (key, &v) in (0u64..).zip(&observed.versions) {
            if relaxed && oracle.check(key, v, CheckMode::Full).is_err() {
                lost += 1;
            }
            match oracle.check(key, v, mode) {
                Ok(()) => held += 1,
                Err(m) => out.tally.fail(
                    names::DURABILITY,
                    format!("kill9 cycle {c} (seed {}): {m}", ctx.seed),
                ),
            }
            if relaxed
                || oracle
                    .state(key)
                    .is_ok_and(|s| s.pending_put || s.pending_delete)
            {
                oracle.adopt(key, v)?;
            }
        }
        if relaxed {
            oracle.mark_recovered();
        }
        relaxed_lost = lost;
        out.tally.pass(names::DURABILITY, held);
    }
    match &observed.integrity {
        Some(Ok(())) => out.tally.pass(names::INTEGRITY, 1),
        Some(Err(e)) => out
            .tally
            .fail(names::INTEGRITY, format!("kill9 cycle {c}: {e}")),
        None => {}
    }
    let verify = verify_start.elapsed().saturating_sub(observed.reopen);
    out.reopen_ns.push(nanos(observed.reopen));
    out.verify_ns.push(nanos(verify));
    out.cycles.push(CrashCycle {
        cycle: c,
        at_op: delay_us,
        kind: kind.to_string(),
        reopen_us: observed.reopen.as_secs_f64() * 1e6,
        verify_us: verify.as_secs_f64() * 1e6,
        passed: out.tally.total_failures() == failures_before,
    });
    Ok(relaxed_lost)
}

fn wal_len(engine: &str, data: &Path) -> u64 {
    crate::adapter::wal_file(engine).map_or(0, |f| {
        std::fs::metadata(data.join(f)).map_or(0, |m| m.len())
    })
}

/// Reopens (timed) and reads every record back through the adapter.
fn read_back(
    ctx: &Kill9Ctx,
    integrity: bool,
    tally: &mut super::Tally,
    c: u64,
) -> Result<Observed> {
    let data = ctx.dir.join("data");
    let wal_bytes = wal_len(&ctx.engine, &data);
    let (engine, took) =
        super::timed(|| open_engine(&ctx.engine, &data, &engine_options(ctx.seed)));
    let engine = engine.map_err(adapter_err)?;
    let reopen = took.wall;
    let mut versions = vec![None; ctx.keys_n as usize];
    let mut balances = vec![None; accounts_n(ctx.keys_n) as usize];
    let mut bad: Vec<String> = Vec::new();
    {
        let mut session = engine.session().map_err(adapter_err)?;
        let mut visit = |k: &[u8], v: &[u8]| match key_index(k) {
            Some((b'k', i)) if i < ctx.keys_n => match verify_value(i, ctx.seed, v) {
                Ok(ver) => versions[i as usize] = Some(ver),
                Err(e) => bad.push(format!("key {i}: damaged value: {e}")),
            },
            Some((b'b', i)) if (i as usize) < balances.len() => {
                balances[i as usize] = bank_balance(i, v)
            }
            _ => bad.push(format!("unexpected key {k:?}")),
        };
        session
            .scan(b"", usize::MAX, &mut visit)
            .map_err(adapter_err)?;
    }
    for b in bad {
        tally.fail(names::CHECKSUM_DETECTION, format!("kill9 cycle {c}: {b}"));
    }
    // Through the adapter, on the recovered handle: engines without a check have none here.
    let integrity = integrity.then(|| engine.check_integrity()).flatten();
    engine.close().map_err(adapter_err)?;
    Ok(Observed {
        versions,
        balances,
        reopen,
        took,
        wal_bytes,
        integrity,
    })
}

/// The child: `harness worker kill9 ...`. Never returns normally before it is killed.
#[must_use]
pub fn worker_main(args: &WorkerArgs) -> u8 {
    match worker(args) {
        Ok(()) => 0,
        Err(end) => u8::try_from(report_end(end)).unwrap_or(1),
    }
}

fn worker(a: &WorkerArgs) -> Result<(), ChildEnd> {
    // Dies with the parent (a sweep's timeout kills the run; its worker must not outlive it).
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let oracle = ExpectedState::open(&a.oracle)?;
    let late = announce_open_late();
    if !late {
        say("opening");
    }
    let started = Instant::now();
    let engine = open_engine(&a.engine, &a.dir, &engine_options(a.seed)).map_err(adapter_err)?;
    let opened = format!("opened {}", started.elapsed().as_micros());
    if late {
        // One write: a kill cannot fall between the two lines and pass for one in the open.
        say(&format!("opening\n{opened}"));
    } else {
        say(&opened);
    }
    if a.workload != "bank" {
        settle_pending(a, engine.as_ref(), &oracle)?;
    }
    let threads = a.threads.clamp(1, super::spec::KILL9_THREADS_MAX);
    let live = std::sync::atomic::AtomicU64::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (engine, oracle, live) = (&engine, &oracle, &live);
            s.spawn(move || {
                // The first finding ends the whole child at once: the parent reads one line.
                if let Err(end) = worker_thread(a, engine.as_ref(), oracle, t, threads) {
                    std::process::exit(report_end(end));
                }
                live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        s.spawn(|| say_reads(&live));
    });
    std::thread::sleep(CHILD_WAIT_MAX);
    Ok(())
}

/// Says `reads N` every [`READS_SAY_EVERY`] while a worker thread lives.
fn say_reads(live: &std::sync::atomic::AtomicU64) {
    use std::sync::atomic::Ordering;
    for _ in 0..READS_SAYS_MAX {
        if live.load(Ordering::SeqCst) == 0 {
            return;
        }
        std::thread::sleep(READS_SAY_EVERY);
        say(&format!("reads {}", READS_VERIFIED.load(Ordering::SeqCst)));
    }
}

/// Resolves the keys a killed child left in flight from what the recovered database shows,
/// before this child writes: a retried recovery kill starts children before the parent has
/// verified (and cleared) the last one's keys. A value that is neither the old nor the new
/// version is a violation.
fn settle_pending(
    a: &WorkerArgs,
    engine: &dyn crate::adapter::Engine,
    oracle: &ExpectedState,
) -> Result<(), ChildEnd> {
    let mut session = engine.session().map_err(adapter_err)?;
    let mut buf = Vec::new();
    for key in 0..a.keys {
        let state = oracle.state(key)?;
        if !(state.pending_put || state.pending_delete) {
            continue;
        }
        let observed = read_version(a, session.as_mut(), key, &mut buf)?;
        oracle
            .settle(key, observed)
            .map_err(|m| ChildEnd::Violation(format!("after recovery: {m}")))?;
    }
    Ok(())
}

/// One thread of the child: its own session and random stream; with several threads, its
/// updates go to the keys `k % threads == t` so each key has one writer (the expected
/// state tracks one pending write per key).
fn worker_thread(
    a: &WorkerArgs,
    engine: &dyn crate::adapter::Engine,
    oracle: &ExpectedState,
    t: u64,
    threads: u64,
) -> Result<(), ChildEnd> {
    let mut session = engine.session().map_err(adapter_err)?;
    let stream = a.cycle.wrapping_mul(super::spec::KILL9_THREADS_MAX) + t;
    let mut rng = SplitMix64::new(hash(a.seed, 0x4B11_9002, stream));
    let mut value = Vec::new();
    let lane = Lane { t, threads };
    for op in 0..CHILD_OPS_MAX / threads {
        match a.workload.as_str() {
            "bank" => bank_op(a, session.as_mut(), &mut rng, op)?,
            "ycsb-a" if rng.below(2) == 0 => read_op(a, session.as_mut(), oracle, &mut rng)?,
            _ => update_op(a, session.as_mut(), oracle, &mut rng, &mut value, lane)?,
        }
    }
    Ok(())
}

fn read_op(
    a: &WorkerArgs,
    s: &mut dyn crate::adapter::Session,
    oracle: &ExpectedState,
    rng: &mut SplitMix64,
) -> Result<(), ChildEnd> {
    let key = rng.below(a.keys);
    // Taken before the read: another thread may own this key and commit meanwhile.
    let before = oracle.state(key)?;
    let observed = read_version(a, s, key, &mut Vec::new())?;
    oracle
        .check_read(key, before, observed)
        .map_err(|m| ChildEnd::Violation(m.to_string()))?;
    READS_VERIFIED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// The version `key` holds in the database (None: absent); a value that fails its own
/// verification is a violation.
fn read_version(
    a: &WorkerArgs,
    s: &mut dyn crate::adapter::Session,
    key: u64,
    buf: &mut Vec<u8>,
) -> Result<Option<u64>, ChildEnd> {
    if !s.get(&kv_key(b'k', key), buf).map_err(adapter_err)? {
        return Ok(None);
    }
    let version = verify_value(key, a.seed, buf)
        .map_err(|e| ChildEnd::Violation(format!("key {key}: {e}")))?;
    Ok(Some(version))
}

fn update_op(
    a: &WorkerArgs,
    s: &mut dyn crate::adapter::Session,
    oracle: &ExpectedState,
    rng: &mut SplitMix64,
    value: &mut Vec<u8>,
    lane: Lane,
) -> Result<(), ChildEnd> {
    let n = 1 + rng.below(a.txn_keys.clamp(1, a.keys));
    let mut keys: Vec<u64> = (0..n).map(|_| lane.draw(rng, a.keys)).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut versions = Vec::with_capacity(keys.len());
    for &k in &keys {
        let v = oracle.next_version(k)?;
        oracle.begin_put(k, v)?;
        versions.push(v);
    }
    s.transaction(&mut |tx| {
        for (&k, &v) in keys.iter().zip(&versions) {
            generate_value(k, v, a.seed, a.value_bytes, value);
            tx.put(&kv_key(b'k', k), value)?;
        }
        Ok(())
    })
    .map_err(adapter_err)?;
    for (&k, &v) in keys.iter().zip(&versions) {
        oracle.ack_put(k, v)?;
    }
    Ok(())
}

fn bank_op(
    a: &WorkerArgs,
    s: &mut dyn crate::adapter::Session,
    rng: &mut SplitMix64,
    op: u64,
) -> Result<(), ChildEnd> {
    let n = accounts_n(a.keys);
    if op % BANK_SCAN_EVERY == BANK_SCAN_EVERY - 1 {
        let mut balances = vec![None; n as usize];
        let mut visit = |k: &[u8], v: &[u8]| {
            if let Some((b'b', i)) = key_index(k) {
                if let Some(slot) = balances.get_mut(i as usize) {
                    *slot = bank_balance(i, v);
                }
            }
        };
        s.scan(b"", usize::MAX, &mut visit).map_err(adapter_err)?;
        check_bank(&balances, BALANCE_INITIAL * n as i64).map_err(ChildEnd::Violation)?;
    }
    let from = rng.below(n);
    let to = (from + 1 + rng.below(n - 1)) % n;
    let amount = (1 + rng.below(TRANSFER_MAX)) as i64;
    s.transaction(&mut |tx| {
        let mut buf = Vec::new();
        let bf = tx
            .get(&kv_key(b'b', from), &mut buf)?
            .then(|| bank_balance(from, &buf))
            .flatten();
        let bt = tx
            .get(&kv_key(b'b', to), &mut buf)?
            .then(|| bank_balance(to, &buf))
            .flatten();
        if let (Some(bf), Some(bt)) = (bf, bt) {
            if bf >= amount {
                tx.put(&kv_key(b'b', from), &bank_value(from, bf - amount))?;
                tx.put(&kv_key(b'b', to), &bank_value(to, bt + amount))?;
            }
        }
        Ok(())
    })
    .map_err(|e| ChildEnd::Error(adapter_err(e)))
}
