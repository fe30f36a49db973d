//! The soak's child (`harness worker soak ...`): opens the database once, runs a concurrent
//! mix of reads, scans, updates, inserts, deletes and rollbacks until it is killed, checks
//! every read against the expected state, and reports one `tick <json>` line per tick on
//! stdout: operation counts, the tick's latency histograms, its own resident memory, the
//! engine's files and counters.
//!
//! Each thread writes only the keys of its lane (`k % threads == t`), so the expected state
//! has one writer per key, and the thread knows its own keys exactly: reads and scans of them
//! are checked exactly, reads of other lanes within the window of a concurrent writer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;

use super::stats::{encode_histogram, new_histogram, OpKind, Tick, OP_KINDS};
use crate::adapter::{open_engine, AdapterError, Engine, EngineOptions, ErrorKind, Session};
use crate::chaos::child::{report_end, say, ChildEnd, Lane};
use crate::chaos::kill9::adapter_err;
use crate::chaos::records::{record_index as key_index, record_key as kv_key};
use crate::faults::rng::{hash, SplitMix64};
use crate::gen::{generate_value, verify_value};
use crate::oracle::{ExpectedState, KeyState};

/// Keys a scan covers at most (one range read per scan op).
pub const SCAN_KEYS_MAX: u64 = 64;
/// Keys one update or rollback transaction writes at most.
const TXN_KEYS_MAX: u64 = 4;
/// Largest value written: several overflow pages at every page size the engine accepts.
pub const SOAK_VALUE_BYTES_MAX: usize = 40_000;
/// Smallest value written (the verifiable header and some body).
const SOAK_VALUE_BYTES_MIN: usize = 40;
/// Threads of one child at most (each owns a lane of keys).
pub const SOAK_THREADS_MAX: u64 = 64;
/// The child exits by itself after this long without being killed: the parent is gone.
const CHILD_LIFE_MAX: Duration = Duration::from_secs(48 * 3600);

/// Test-only hook: set to `1`, the child's first worker thread blocks forever inside its
/// first operation while the others go on. It proves `liveness` sees an operation that never
/// finishes (`harness/tests/soak_checks.rs`); a real soak never sets it.
pub const BLOCK_ONE_OP_ENV: &str = "HARNESS_SOAK_BLOCK_ONE_OP";

/// Arguments of `harness worker soak` (hidden; started by `harness soak`).
#[derive(Debug, Clone, clap::Args)]
pub struct SoakWorkerArgs {
    #[arg(long)]
    pub engine: String,
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long)]
    pub oracle: PathBuf,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub episode: u64,
    #[arg(long)]
    pub keys: u64,
    #[arg(long)]
    pub threads: u64,
    #[arg(long)]
    pub cache_bytes: usize,
    #[arg(long)]
    pub tick_ms: u64,
}

/// What the threads share with the ticker: per kind, the histogram of the current tick and
/// the count of checked observations.
struct Shared {
    hists: Mutex<Vec<Histogram<u64>>>,
    reads_checked: AtomicU64,
    scans_checked: AtomicU64,
    /// Per thread, when its current operation began (milliseconds since the child started,
    /// plus one; 0 between operations): the ticker reports the longest still running, so a
    /// thread blocked forever shows although it never records a latency.
    busy_since_ms: Vec<AtomicU64>,
}

/// The child's entry point; never returns normally before it is killed.
#[must_use]
pub fn worker_main(args: &SoakWorkerArgs) -> u8 {
    match worker(args) {
        Ok(()) => 0,
        Err(end) => u8::try_from(report_end(end)).unwrap_or(1),
    }
}

fn worker(a: &SoakWorkerArgs) -> Result<(), ChildEnd> {
    // Dies with the parent: a soak stopped by its user must not leave writers behind.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let oracle = ExpectedState::open(&a.oracle)?;
    say("opening");
    let started = Instant::now();
    let options = EngineOptions {
        cache_bytes: a.cache_bytes,
        threads: usize::try_from(a.threads).unwrap_or(1),
        seed: Some(a.seed),
        ..EngineOptions::default()
    };
    let engine = open_engine(&a.engine, &a.dir, &options).map_err(adapter_err)?;
    say(&format!("opened {}", started.elapsed().as_micros()));
    settle_pending(a, engine.as_ref(), &oracle)?;
    let threads = a.threads.clamp(1, SOAK_THREADS_MAX);
    let shared = Shared {
        hists: Mutex::new((0..OP_KINDS.len()).map(|_| new_histogram()).collect()),
        reads_checked: AtomicU64::new(0),
        scans_checked: AtomicU64::new(0),
        busy_since_ms: (0..threads).map(|_| AtomicU64::new(0)).collect(),
    };
    std::thread::scope(|s| {
        for t in 0..threads {
            let (engine, oracle, shared) = (&engine, &oracle, &shared);
            s.spawn(move || {
                let lane = Lane { t, threads };
                let clock = (shared, started);
                if let Err(end) = thread_main(a, engine.as_ref(), oracle, clock, lane) {
                    // The first finding ends the whole child: the parent reads one line.
                    std::process::exit(report_end(end));
                }
            });
        }
        ticker(a, engine.as_ref(), &shared, started);
    });
    Ok(())
}

/// Prints a tick line every `tick_ms` until the child's life bound.
fn ticker(a: &SoakWorkerArgs, engine: &dyn Engine, shared: &Shared, started: Instant) {
    let tick = Duration::from_millis(a.tick_ms.max(10));
    let mut next = Instant::now() + tick;
    let mut last = Instant::now();
    while started.elapsed() < CHILD_LIFE_MAX {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += tick;
        let hists: Vec<Histogram<u64>> = match shared.hists.lock() {
            Ok(mut h) => h
                .iter_mut()
                .map(|h| std::mem::replace(h, new_histogram()))
                .collect(),
            Err(_) => return,
        };
        let io = crate::resources::process_io();
        let (disk_bytes, wal_bytes) = crate::resources::disk_bytes(&a.dir);
        let counters = engine.counters();
        let line = Tick {
            t_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            dt_ms: u64::try_from(last.elapsed().as_millis()).unwrap_or(0),
            rss_bytes: io.rss_bytes,
            file_bytes: disk_bytes.saturating_sub(wal_bytes),
            wal_bytes,
            fsyncs: counters.map(|c| c.fsyncs),
            cache_bytes: counters.map(|c| c.cache_bytes),
            reads_checked: shared.reads_checked.swap(0, Ordering::Relaxed),
            scans_checked: shared.scans_checked.swap(0, Ordering::Relaxed),
            inflight_ms_max: inflight_ms_max(shared, started),
            hists: hists.iter().map(encode_histogram).collect(),
        };
        last = Instant::now();
        match serde_json::to_string(&line) {
            Ok(json) => say(&format!("tick {json}")),
            Err(e) => say(&format!("error tick: {e}")),
        }
    }
}

/// The longest operation still running, milliseconds (0: none).
fn inflight_ms_max(shared: &Shared, started: Instant) -> u64 {
    let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    (shared.busy_since_ms.iter())
        .map(|b| b.load(Ordering::SeqCst))
        .filter(|&since| since > 0)
        .map(|since| now_ms.saturating_sub(since - 1))
        .max()
        .unwrap_or(0)
}

/// The operation mix, in percent: reads 40, scans 10, updates 25, inserts and deletes 15,
/// rollbacks 10.
fn draw_kind(rng: &mut SplitMix64) -> OpKind {
    match rng.below(100) {
        0..40 => OpKind::Read,
        40..50 => OpKind::Scan,
        50..75 => OpKind::Update,
        75..90 => OpKind::Churn,
        _ => OpKind::Rollback,
    }
}

/// Value lengths: mostly small, some of a few KiB, one in a hundred spans several overflow
/// pages; a key's value grows and shrinks as it is rewritten.
fn draw_value_bytes(rng: &mut SplitMix64) -> usize {
    let (lo, hi) = match rng.below(100) {
        0..90 => (SOAK_VALUE_BYTES_MIN, 400),
        90..99 => (400, 4000),
        _ => (8000, SOAK_VALUE_BYTES_MAX),
    };
    lo + usize::try_from(rng.below((hi - lo + 1) as u64)).unwrap_or(0)
}

fn thread_main(
    a: &SoakWorkerArgs,
    engine: &dyn Engine,
    oracle: &ExpectedState,
    (shared, child_started): (&Shared, Instant),
    lane: Lane,
) -> Result<(), ChildEnd> {
    let busy = shared
        .busy_since_ms
        .get(usize::try_from(lane.t).unwrap_or(usize::MAX))
        .ok_or_else(|| anyhow!("thread {} has no busy slot", lane.t))?;
    let block = lane.t == 0 && std::env::var(BLOCK_ONE_OP_ENV).is_ok_and(|v| v == "1");
    let mut session = engine.session().map_err(adapter_err)?;
    let stream = a.episode.wrapping_mul(SOAK_THREADS_MAX) + lane.t;
    let mut rng = SplitMix64::new(hash(a.seed, 0x50A4_0001, stream));
    let mut local: Vec<Histogram<u64>> = (0..OP_KINDS.len()).map(|_| new_histogram()).collect();
    let mut flush_at = Instant::now();
    let mut op = Op {
        a,
        oracle,
        lane,
        value: Vec::new(),
    };
    loop {
        let kind = draw_kind(&mut rng);
        let started = Instant::now();
        let since = u64::try_from(child_started.elapsed().as_millis()).unwrap_or(u64::MAX);
        busy.store(since.saturating_add(1), Ordering::SeqCst);
        if block {
            // The hook: this operation never finishes; the episode's kill ends it.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        match kind {
            OpKind::Read => op.read(session.as_mut(), &mut rng, shared)?,
            OpKind::Scan => op.scan(session.as_mut(), &mut rng, shared)?,
            OpKind::Update => op.update(session.as_mut(), &mut rng)?,
            OpKind::Churn => op.churn(session.as_mut(), &mut rng)?,
            OpKind::Rollback => op.rollback(session.as_mut(), &mut rng)?,
        }
        busy.store(0, Ordering::SeqCst);
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if let Some(h) = local.get_mut(kind as usize) {
            h.saturating_record(ns.max(1));
        }
        // Thread-local histograms go to the shared ones every 50 ms, not every op.
        if flush_at.elapsed() >= Duration::from_millis(50) {
            flush_at = Instant::now();
            let mut hists = shared
                .hists
                .lock()
                .map_err(|_| anyhow!("a worker thread panicked"))?;
            for (to, from) in hists.iter_mut().zip(local.iter_mut()) {
                let _ = to.add(&*from);
                from.reset();
            }
        }
    }
}

/// One thread's operations.
struct Op<'a> {
    a: &'a SoakWorkerArgs,
    oracle: &'a ExpectedState,
    lane: Lane,
    value: Vec<u8>,
}

impl Op<'_> {
    fn read(
        &mut self,
        s: &mut dyn Session,
        rng: &mut SplitMix64,
        shared: &Shared,
    ) -> Result<(), ChildEnd> {
        let key = rng.below(self.a.keys);
        let before = self.oracle.state(key)?;
        let observed = read_version(self.a.seed, s, key, &mut self.value)?;
        self.judge(key, before, observed, "read")?;
        shared.reads_checked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A read of `key` against what was known before it began: exact for the lane's own
    /// keys (no other writer), else within the window of the key's concurrent writer.
    fn judge(
        &self,
        key: u64,
        before: KeyState,
        observed: Option<u64>,
        what: &str,
    ) -> Result<(), ChildEnd> {
        let verdict = if self.lane.owns(key) {
            self.oracle
                .check(key, observed, crate::oracle::CheckMode::Full)
                .map_err(|m| m.to_string())
        } else {
            check_foreign(self.oracle, key, before, observed)
        };
        verdict.map_err(|m| ChildEnd::Violation(format!("{what} of key {key}: {m}")))
    }

    /// A range read of up to [`SCAN_KEYS_MAX`] keys: every key it returns is checked, and
    /// every key between its bounds that it skipped must be absent.
    fn scan(
        &mut self,
        s: &mut dyn Session,
        rng: &mut SplitMix64,
        shared: &Shared,
    ) -> Result<(), ChildEnd> {
        let keys = self.a.keys;
        let start = rng.below(keys);
        let end = (start + SCAN_KEYS_MAX).min(keys);
        let befores = (start..end)
            .map(|k| self.oracle.state(k))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen: Vec<Option<Result<u64, String>>> = vec![None; befores.len()];
        let (mut last, mut past_end, mut stray) = (None, false, None);
        let count_max = usize::try_from(end - start).unwrap_or(0);
        let seed = self.a.seed;
        let mut visit = |k: &[u8], v: &[u8]| match key_index(k) {
            Some((b'k', i)) if (start..end).contains(&i) => {
                last = Some(i);
                if let Some(slot) = seen.get_mut((i - start) as usize) {
                    *slot = Some(verify_value(i, seed, v).map_err(|e| e.to_string()));
                }
            }
            Some((b'k', i)) if i >= end => past_end = true,
            _ => stray = Some(k.to_vec()),
        };
        let got = s
            .scan(&kv_key(b'k', start), count_max, &mut visit)
            .map_err(adapter_err)?;
        if let Some(k) = stray {
            return Err(ChildEnd::Violation(format!(
                "scan from key {start}: unexpected key {k:?}"
            )));
        }
        // A scan that filled its count inside the range stopped at its last key: the keys
        // after it are unseen. One that ran short, or past `end`, saw the whole range: a key
        // it did not return there is absent, and judged so.
        let checked_end = if got >= count_max && !past_end {
            last.map_or(start, |l| l + 1)
        } else {
            end
        };
        for (i, (before, seen)) in befores.iter().zip(&seen).enumerate() {
            let key = start + i as u64;
            if key >= checked_end {
                break;
            }
            let observed = match seen {
                Some(Ok(v)) => Some(*v),
                Some(Err(e)) => return Err(ChildEnd::Violation(format!("scan: key {key}: {e}"))),
                None => None,
            };
            self.judge(key, *before, observed, "scan")?;
        }
        shared.scans_checked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Rewrites present keys of the lane (absent ones are left to inserts, so the key
    /// count stays where inserts and deletes balance).
    fn update(&mut self, s: &mut dyn Session, rng: &mut SplitMix64) -> Result<(), ChildEnd> {
        let mut keys = self.draw_keys(rng);
        let mut present = Vec::with_capacity(keys.len());
        for &k in &keys {
            present.push(self.oracle.state(k)?.present);
        }
        let mut flags = present.iter();
        keys.retain(|_| flags.next().copied().unwrap_or(false));
        if keys.is_empty() {
            return self.churn(s, rng);
        }
        let mut versions = Vec::with_capacity(keys.len());
        for &k in &keys {
            let v = self.oracle.next_version(k)?;
            self.oracle.begin_put(k, v)?;
            versions.push((v, draw_value_bytes(rng)));
        }
        let (seed, value) = (self.a.seed, &mut self.value);
        s.transaction(&mut |tx| {
            for (&k, &(v, len)) in keys.iter().zip(&versions) {
                generate_value(k, v, seed, len, value);
                tx.put(&kv_key(b'k', k), value)?;
            }
            Ok(())
        })
        .map_err(adapter_err)?;
        for (&k, &(v, _)) in keys.iter().zip(&versions) {
            self.oracle.ack_put(k, v)?;
        }
        Ok(())
    }

    /// Inserts an absent key of the lane or deletes a present one: the key count stays near
    /// where the load left it (half the keys).
    fn churn(&mut self, s: &mut dyn Session, rng: &mut SplitMix64) -> Result<(), ChildEnd> {
        let key = self.lane.draw(rng, self.a.keys);
        if self.oracle.state(key)?.present {
            self.oracle.begin_delete(key)?;
            s.delete(&kv_key(b'k', key)).map_err(adapter_err)?;
            self.oracle.ack_delete(key)?;
            return Ok(());
        }
        let v = self.oracle.next_version(key)?;
        self.oracle.begin_put(key, v)?;
        generate_value(key, v, self.a.seed, draw_value_bytes(rng), &mut self.value);
        s.put(&kv_key(b'k', key), &self.value)
            .map_err(adapter_err)?;
        self.oracle.ack_put(key, v)?;
        Ok(())
    }

    /// Writes and deletes lane keys in a transaction that then fails: nothing of it may
    /// show, which a read of each key checks at once.
    fn rollback(&mut self, s: &mut dyn Session, rng: &mut SplitMix64) -> Result<(), ChildEnd> {
        let keys = self.draw_keys(rng);
        let (seed, value, oracle) = (self.a.seed, &mut self.value, self.oracle);
        let outcome = s.transaction(&mut |tx| {
            for &k in &keys {
                let v = oracle
                    .next_version(k)
                    .map_err(|e| AdapterError::new(ErrorKind::Other, e.to_string()))?;
                if k % 2 == 0 {
                    tx.delete(&kv_key(b'k', k))?;
                } else {
                    generate_value(k, v, seed, SOAK_VALUE_BYTES_MIN + 100, value);
                    tx.put(&kv_key(b'k', k), value)?;
                }
            }
            Err(AdapterError::new(ErrorKind::Other, ROLLBACK_MARK))
        });
        match outcome {
            Err(e) if e.detail == ROLLBACK_MARK => {}
            Err(e) => return Err(ChildEnd::Error(adapter_err(e))),
            Ok(()) => {
                return Err(ChildEnd::Violation(
                    "a transaction whose body failed committed".into(),
                ))
            }
        }
        for &k in &keys {
            let before = self.oracle.state(k)?;
            let observed = read_version(seed, s, k, &mut self.value)?;
            self.judge(k, before, observed, "read after rollback")?;
        }
        Ok(())
    }

    fn draw_keys(&self, rng: &mut SplitMix64) -> Vec<u64> {
        let n = 1 + rng.below(TXN_KEYS_MAX.min(self.a.keys));
        let mut keys: Vec<u64> = (0..n).map(|_| self.lane.draw(rng, self.a.keys)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// The error text a deliberate rollback returns from its transaction body.
const ROLLBACK_MARK: &str = "soak: deliberate rollback";

/// A live read of a key another thread writes. A version must lie in the window of
/// [`ExpectedState::check_read`]; an absence is wrong only when the key was present before
/// the read and is still present at the same version with nothing in flight (a delete and
/// re-insert in between would have raised the version).
fn check_foreign(
    oracle: &ExpectedState,
    key: u64,
    before: KeyState,
    observed: Option<u64>,
) -> Result<(), String> {
    if observed.is_some() {
        return oracle
            .check_read(key, before, observed)
            .map_err(|m| m.to_string());
    }
    let after = oracle.state(key).map_err(|e| e.to_string())?;
    let unchanged = before.present && after.present && after.version == before.version;
    if unchanged && !before.pending() && !after.pending() {
        return Err(format!(
            "absent, but present at version {} before and after the read",
            after.version
        ));
    }
    Ok(())
}

/// The version `key` holds (None: absent); a value failing its own verification is a
/// violation.
fn read_version(
    seed: u64,
    s: &mut dyn Session,
    key: u64,
    buf: &mut Vec<u8>,
) -> Result<Option<u64>, ChildEnd> {
    if !s.get(&kv_key(b'k', key), buf).map_err(adapter_err)? {
        return Ok(None);
    }
    verify_value(key, seed, buf)
        .map(Some)
        .map_err(|e| ChildEnd::Violation(format!("key {key}: {e}")))
}

/// Resolves keys a killed child left in flight from what the recovered database shows.
fn settle_pending(
    a: &SoakWorkerArgs,
    engine: &dyn Engine,
    oracle: &ExpectedState,
) -> Result<(), ChildEnd> {
    let mut session = engine.session().map_err(adapter_err)?;
    let mut buf = Vec::new();
    for key in 0..a.keys {
        if !oracle.state(key)?.pending() {
            continue;
        }
        let observed = read_version(a.seed, session.as_mut(), key, &mut buf)?;
        oracle
            .settle(key, observed)
            .map_err(|m| ChildEnd::Violation(format!("after recovery: {m}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::ModelEngine;

    /// A scan whose range misses its last key runs on past `end` to fill its count: the
    /// missing key must be judged (absent against the oracle's present), not skipped.
    #[test]
    fn a_scan_past_its_end_judges_a_missing_last_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let keys = 200;
        let oracle = ExpectedState::create(dir.path().join("expected"), keys)?;
        let engine = ModelEngine::new();
        let mut session = engine.session().map_err(|e| anyhow!("{e}"))?;
        let a = SoakWorkerArgs {
            engine: "model".into(),
            dir: dir.path().to_path_buf(),
            oracle: dir.path().join("expected"),
            seed: 9,
            episode: 0,
            keys,
            threads: 1,
            cache_bytes: 0,
            tick_ms: 1000,
        };
        // The scan's range, drawn as `scan` draws it.
        let mut rng = SplitMix64::new(3);
        let start = rng.clone().below(keys);
        let end = (start + SCAN_KEYS_MAX).min(keys);
        anyhow::ensure!(end < keys, "the range must end before the last key");
        let mut value = Vec::new();
        for k in 0..keys {
            oracle.begin_put(k, 1)?;
            if k != end - 1 {
                generate_value(k, 1, a.seed, 60, &mut value);
                session
                    .put(&kv_key(b'k', k), &value)
                    .map_err(|e| anyhow!("{e}"))?;
            }
            oracle.ack_put(k, 1)?;
        }
        let shared = Shared {
            hists: Mutex::new(Vec::new()),
            reads_checked: AtomicU64::new(0),
            scans_checked: AtomicU64::new(0),
            busy_since_ms: Vec::new(),
        };
        let mut op = Op {
            a: &a,
            oracle: &oracle,
            lane: Lane { t: 0, threads: 1 },
            value: Vec::new(),
        };
        match op.scan(session.as_mut(), &mut rng, &shared) {
            Err(ChildEnd::Violation(v)) => {
                anyhow::ensure!(v.contains(&format!("key {}", end - 1)), "{v}");
                Ok(())
            }
            Err(ChildEnd::Error(e)) => Err(e),
            Ok(()) => anyhow::bail!(
                "key {} missing at the end of {start}..{end} passed",
                end - 1
            ),
        }
    }
}
