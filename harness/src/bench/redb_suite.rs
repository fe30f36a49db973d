//! `bench/redb-suite`: the workload of redb's `lmdb_benchmark`
//! (crates/redb-bench/benches/common.rs in the redb repository) through the adapters, and
//! its table (rows = operations, columns = engines, milliseconds) for every engine, with
//! each peer's time over ours.
//!
//! Pair `i` is a 24-byte key and a 150-byte value derived from the run's seed and `i`, so
//! any thread can rebuild any pair. Steps, in redb's order: bulk load of `n` pairs in one
//! transaction; `individual_writes` single-insert transactions; `batches` transactions of
//! `batch_size`; `len()`; two passes of `reads` point reads (pairs 0, 1, ...); two passes
//! of `scans` range reads of `scan_len` from pair i's key; every pair read once by each
//! count of `read_threads`; removal of the first half of the pairs in one transaction; file
//! size; the engine's own compaction; file size. Unlike redb's benchmark, each read is its
//! own read transaction (the adapter's contract); redb's holds one for a whole pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use super::BenchSection;
use crate::adapter::{open_engine, AdapterError, AdapterResult, Engine, EngineOptions};
use crate::gen::rng::{derive_seed, mix64};
use crate::report::{Check, FsyncProbe, Report};
use crate::run::{RunOutcome, RunRequest};

const KEY_BYTES: usize = 24;
const VALUE_BYTES: usize = 150;
/// Directory levels walked when sizing an engine's files (fjall nests its tables deeper
/// than the others); a bound so a runaway tree cannot stall the report.
const SIZE_DEPTH_MAX: u32 = 8;

/// One engine's pass over the suite.
#[derive(Debug, Clone, Serialize)]
pub struct EngineSuite {
    pub engine: String,
    pub round: u32,
    /// (operation, milliseconds), in redb's row order.
    pub steps: Vec<(String, f64)>,
    /// Bytes of the engine's files after the removals (engine reopened).
    pub bytes_uncompacted: u64,
    /// Bytes after the engine's own compaction (engine closed); None: it has none.
    pub bytes_compacted: Option<u64>,
    /// What "compaction" is for this engine.
    pub compaction: &'static str,
    /// How `len()` was answered: the engine's own count, or a full scan.
    pub len_by: &'static str,
    #[serde(skip)]
    tally: Tally,
}

/// What the suite verified on the way.
#[derive(Debug, Clone, Default)]
struct Tally {
    reads: u64,
    read_faults: u64,
    scans: u64,
    scan_faults: u64,
    len_expected: u64,
    len_found: u64,
    removals: u64,
    removals_missing: u64,
    first_fault: Option<String>,
}

impl Tally {
    fn fault(&mut self, what: String) {
        self.first_fault.get_or_insert(what);
    }
}

/// Pair `i` of a seed.
#[derive(Clone, Copy)]
struct Pairs {
    key_seed: u64,
    value_seed: u64,
}

impl Pairs {
    fn new(seed: u64) -> Pairs {
        Pairs {
            key_seed: derive_seed(seed, 0x5245_4442_4B45_5953), // "REDBKEYS"
            value_seed: derive_seed(seed, 0x5245_4442_5641_4C53), // "REDBVALS"
        }
    }
    fn fill(seed: u64, i: u64, out: &mut [u8]) {
        for (w, chunk) in out.chunks_mut(8).enumerate() {
            let word = mix64(seed ^ mix64(i.wrapping_mul(32).wrapping_add(w as u64)));
            chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        }
    }
    fn key(self, i: u64) -> [u8; KEY_BYTES] {
        let mut k = [0; KEY_BYTES];
        Pairs::fill(self.key_seed, i, &mut k);
        k
    }
    fn value(self, i: u64) -> [u8; VALUE_BYTES] {
        let mut v = [0; VALUE_BYTES];
        Pairs::fill(self.value_seed, i, &mut v);
        v
    }
}

/// What "compaction" means per engine family.
fn compaction_of(engine: &str) -> &'static str {
    match engine.split('-').next().unwrap_or("") {
        "redb" => "redb Database::compact",
        "lmdb" => "compacting copy (mdb_env_copy2 with MDB_CP_COMPACT) replacing data.mdb",
        "sqlite" => "VACUUM",
        "fjall" => "major compaction (Keyspace::major_compact)",
        _ => "none: the engine has no compaction, uncompacted size only",
    }
}

/// Runs the suite on every engine of the request (rounds interleaved as in `run`), prints
/// the table, and writes `redb-suite.json`, `redb-suite.md` and the report.
///
/// # Errors
/// Bad `[bench]` values, engines that fail to open, adapter errors, report I/O.
pub fn execute(req: &RunRequest, bench: &BenchSection) -> anyhow::Result<RunOutcome> {
    bench.validate().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&req.out_dir)
        .with_context(|| format!("creating {}", req.out_dir.display()))?;
    let rounds = if req.compare { req.scenario.rounds } else { 1 };
    let mut passes = Vec::new();
    let mut probes = Vec::new();
    for round in 0..rounds {
        probes.push(crate::driver::fsync_probe(&req.out_dir, round)?);
        for j in 0..req.engines.len() {
            let name = &req.engines[(round as usize + j) % req.engines.len()];
            println!("redb-suite: {name}, round {round}");
            passes.push(run_engine(req, bench, name, round)?);
        }
    }
    let table = table_text(req, bench, &passes, &probes);
    print!("{table}");
    let config = serde_json::to_value(&req.scenario).context("scenario to JSON")?;
    let label = if req.compare { "all" } else { &req.engines[0] };
    let mut report = Report::new(&req.scenario_name, label, req.seed, config);
    report.reproduce = Some(req.reproduce.clone());
    report.fsync_probe.clone_from(&probes);
    report.checks = passes.iter().flat_map(checks_of).collect();
    let json = serde_json::json!({ "bench": bench, "fsync_probe": probes, "engines": passes });
    let json_path = req.out_dir.join("redb-suite.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    let md_path = req.out_dir.join("redb-suite.md");
    std::fs::write(&md_path, &table)?;
    let mut paths = crate::report::write_all(&report, &BTreeMap::new(), &req.out_dir)?;
    paths.extend([json_path, md_path]);
    if !req.keep_data {
        let _ = std::fs::remove_dir_all(req.out_dir.join("data"));
    }
    Ok(RunOutcome { report, paths })
}

fn adapter_err(e: AdapterError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// One engine, one round, on a fresh directory.
fn run_engine(
    req: &RunRequest,
    bench: &BenchSection,
    name: &str,
    round: u32,
) -> anyhow::Result<EngineSuite> {
    let dir = req.out_dir.join("data").join(format!("{name}-r{round}"));
    let _ = std::fs::remove_dir_all(&dir);
    let options = EngineOptions {
        cache_bytes: req.scenario.cache_bytes,
        // SQLite splits its cache per connection by this; the threaded steps open this many.
        threads: bench.read_threads.iter().copied().max().unwrap_or(1),
        seed: Some(req.seed),
        fsync_delay_us: 0,
    };
    let mut engine = open_engine(name, &dir, &options).map_err(adapter_err)?;
    let pairs = Pairs::new(req.seed);
    let mut suite = EngineSuite {
        engine: name.to_string(),
        round,
        steps: Vec::new(),
        bytes_uncompacted: 0,
        bytes_compacted: None,
        compaction: compaction_of(name),
        len_by: "len()",
        tally: Tally::default(),
    };
    writes(engine.as_ref(), bench, pairs, &mut suite).map_err(adapter_err)?;
    reads(engine.as_ref(), bench, pairs, &mut suite).map_err(adapter_err)?;
    removals(engine.as_ref(), bench, pairs, &mut suite).map_err(adapter_err)?;
    engine.reopen().map_err(adapter_err)?;
    suite.bytes_uncompacted = dir_bytes(&dir, 0);
    let started = Instant::now();
    if let Some(done) = engine.compact() {
        done.map_err(adapter_err)?;
        suite.step("compaction", started);
        engine.close().map_err(adapter_err)?;
        suite.bytes_compacted = Some(dir_bytes(&dir, 0));
    } else {
        engine.close().map_err(adapter_err)?;
    }
    Ok(suite)
}

impl EngineSuite {
    fn step(&mut self, op: &str, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.steps.push((op.to_string(), ms));
    }
}

/// Pairs the write steps insert: the load, the single writes, the batches.
fn total_pairs(bench: &BenchSection) -> u64 {
    bench.n + bench.individual_writes + bench.batches * bench.batch_size
}

fn writes(
    engine: &dyn Engine,
    bench: &BenchSection,
    pairs: Pairs,
    suite: &mut EngineSuite,
) -> AdapterResult<()> {
    let mut s = engine.session()?;
    let started = Instant::now();
    s.transaction(&mut |t| (0..bench.n).try_for_each(|i| t.put(&pairs.key(i), &pairs.value(i))))?;
    suite.step("bulk load", started);
    let started = Instant::now();
    for i in bench.n..bench.n + bench.individual_writes {
        s.put(&pairs.key(i), &pairs.value(i))?;
    }
    suite.step("individual writes", started);
    let started = Instant::now();
    let first = bench.n + bench.individual_writes;
    for b in 0..bench.batches {
        let from = first + b * bench.batch_size;
        let range = from..from + bench.batch_size;
        s.transaction(&mut |t| {
            range
                .clone()
                .try_for_each(|i| t.put(&pairs.key(i), &pairs.value(i)))
        })?;
    }
    suite.step("batch writes", started);
    Ok(())
}

fn reads(
    engine: &dyn Engine,
    bench: &BenchSection,
    pairs: Pairs,
    suite: &mut EngineSuite,
) -> AdapterResult<()> {
    let total = total_pairs(bench);
    let started = Instant::now();
    let len = match engine.key_count() {
        Some(n) => n?,
        None => {
            suite.len_by = "a full scan (the adapter has no count)";
            let mut s = engine.session()?;
            s.scan(b"", usize::MAX, &mut |_, _| ())? as u64
        }
    };
    suite.step("len()", started);
    suite.tally.len_expected = total;
    suite.tally.len_found = len;
    let mut s = engine.session()?;
    let mut value = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        for i in 0..bench.reads.min(total) {
            let found = s.get(&pairs.key(i), &mut value)?;
            check_read(&mut suite.tally, pairs, i, found, &value);
        }
        suite.step("random reads", started);
    }
    for _ in 0..2 {
        let started = Instant::now();
        for i in 0..bench.scans.min(total) {
            scan_one(&mut *s, bench.scan_len, pairs, i, &mut suite.tally)?;
        }
        suite.step("random range reads", started);
    }
    drop(s);
    for &threads in &bench.read_threads {
        let started = Instant::now();
        threaded_reads(engine, threads, total, pairs, &mut suite.tally)?;
        suite.step(&format!("random reads ({threads} threads)"), started);
    }
    Ok(())
}

fn check_read(tally: &mut Tally, pairs: Pairs, i: u64, found: bool, value: &[u8]) {
    tally.reads += 1;
    if !found || value != pairs.value(i) {
        tally.read_faults += 1;
        tally.fault(format!(
            "pair {i}: found {found}, {} value bytes",
            value.len()
        ));
    }
}

/// A range read from pair `i`'s key: its first pair must be pair `i`.
fn scan_one(
    s: &mut dyn crate::adapter::Session,
    scan_len: usize,
    pairs: Pairs,
    i: u64,
    tally: &mut Tally,
) -> AdapterResult<()> {
    let key = pairs.key(i);
    let mut first_ok = None;
    let mut value_sum = 0u64;
    s.scan(&key, scan_len, &mut |k, v| {
        first_ok.get_or_insert(k == key && v == pairs.value(i));
        value_sum += u64::from(v.first().copied().unwrap_or(0));
    })?;
    std::hint::black_box(value_sum);
    tally.scans += 1;
    if first_ok != Some(true) {
        tally.scan_faults += 1;
        tally.fault(format!(
            "range read from pair {i}: first pair wrong or missing"
        ));
    }
    Ok(())
}

/// Every pair read once, split among `threads` sessions started together.
fn threaded_reads(
    engine: &dyn Engine,
    threads: usize,
    total: u64,
    pairs: Pairs,
    tally: &mut Tally,
) -> AdapterResult<()> {
    let barrier = std::sync::Barrier::new(threads);
    let per = total.div_ceil(threads as u64);
    let outcomes: Vec<AdapterResult<Tally>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut s = engine.session()?;
                    let mut mine = Tally::default();
                    let mut value = Vec::new();
                    barrier.wait();
                    for i in t * per..((t + 1) * per).min(total) {
                        let found = s.get(&pairs.key(i), &mut value)?;
                        check_read(&mut mine, pairs, i, found, &value);
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(AdapterError::new(
                        crate::adapter::ErrorKind::Other,
                        "reader thread panicked",
                    ))
                })
            })
            .collect()
    });
    for outcome in outcomes {
        let mine = outcome?;
        tally.reads += mine.reads;
        tally.read_faults += mine.read_faults;
        if let Some(f) = mine.first_fault {
            tally.fault(f);
        }
    }
    Ok(())
}

fn removals(
    engine: &dyn Engine,
    bench: &BenchSection,
    pairs: Pairs,
    suite: &mut EngineSuite,
) -> AdapterResult<()> {
    let half = total_pairs(bench) / 2;
    let mut s = engine.session()?;
    let mut missing = 0;
    let started = Instant::now();
    s.transaction(&mut |t| {
        missing = 0;
        for i in 0..half {
            missing += u64::from(!t.delete(&pairs.key(i))?);
        }
        Ok(())
    })?;
    suite.step("removals", started);
    suite.tally.removals = half;
    suite.tally.removals_missing = missing;
    if missing > 0 {
        suite
            .tally
            .fault(format!("{missing} of {half} removals found no key"));
    }
    Ok(())
}

/// Apparent bytes of the files under `dir` (what redb's benchmark sums).
fn dir_bytes(dir: &Path, depth: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && depth < SIZE_DEPTH_MAX {
            total += dir_bytes(&entry.path(), depth + 1);
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

fn checks_of(suite: &EngineSuite) -> Vec<Check> {
    let t = &suite.tally;
    let who = format!("{} round {}", suite.engine, suite.round);
    let first = t.first_fault.clone().unwrap_or_default();
    let check = |name: &str, passed: bool, detail: String| Check {
        name: name.to_string(),
        passed,
        detail: if passed {
            detail
        } else {
            format!("{detail}; first: {first}")
        },
    };
    vec![
        check(
            "redb_suite_reads",
            t.reads > 0 && t.read_faults == 0,
            format!(
                "{who}: {} of {} reads wrong or missing",
                t.read_faults, t.reads
            ),
        ),
        check(
            "redb_suite_range_reads",
            t.scans > 0 && t.scan_faults == 0,
            format!("{who}: {} of {} range reads wrong", t.scan_faults, t.scans),
        ),
        check(
            "redb_suite_len",
            t.len_expected > 0 && t.len_found == t.len_expected,
            format!("{who}: len {} of {} expected", t.len_found, t.len_expected),
        ),
        check(
            "redb_suite_removals",
            t.removals > 0 && t.removals_missing == 0,
            format!(
                "{who}: {} of {} removals missed",
                t.removals_missing, t.removals
            ),
        ),
    ]
}

/// Median over the rounds of `engine`'s `row`-th step (rows by position: two passes share a
/// name).
fn median_ms(passes: &[EngineSuite], engine: &str, row: usize) -> Option<f64> {
    let mut v: Vec<f64> = passes
        .iter()
        .filter(|p| p.engine == engine)
        .filter_map(|p| p.steps.get(row).map(|s| s.1))
        .collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn size_text(bytes: Option<u64>) -> String {
    match bytes {
        None => "n/a".to_string(),
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30)),
        Some(b) => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
    }
}

/// redb's layout (rows = operations, columns = engines, ms), sizes, then each peer's time
/// over ours per operation (above 1: ours is faster), and what compaction was.
fn table_text(
    req: &RunRequest,
    bench: &BenchSection,
    passes: &[EngineSuite],
    probes: &[FsyncProbe],
) -> String {
    let engines = &req.engines;
    // Every engine runs the same steps in the same order; engines with a compaction have
    // one more, last.
    let rows: Vec<String> = passes
        .iter()
        .max_by_key(|p| p.steps.len())
        .map(|p| p.steps.iter().map(|s| s.0.clone()).collect())
        .unwrap_or_default();
    let mut out = format!(
        "\nredb-suite: {} pairs loaded, seed {}, milliseconds (median of {} round(s))\n\n",
        bench.n,
        req.seed,
        passes.len() / engines.len().max(1)
    );
    out.push_str(&format!("| | {} |\n|---|", engines.join(" | ")));
    out.push_str(&"---|".repeat(engines.len()));
    out.push('\n');
    for (r, op) in rows.iter().enumerate() {
        let cells: Vec<String> = engines
            .iter()
            .map(|e| median_ms(passes, e, r).map_or("n/a".into(), |ms| format!("{ms:.0}")))
            .collect();
        out.push_str(&format!("| {op} | {} |\n", cells.join(" | ")));
    }
    let sizes = |f: &dyn Fn(&EngineSuite) -> Option<u64>| -> String {
        let cells: Vec<String> = engines
            .iter()
            .map(|e| size_text(passes.iter().find(|p| &p.engine == e).and_then(f)))
            .collect();
        cells.join(" | ")
    };
    out.push_str(&format!(
        "| size, uncompacted | {} |\n",
        sizes(&|p| Some(p.bytes_uncompacted))
    ));
    out.push_str(&format!(
        "| size, compacted | {} |\n",
        sizes(&|p| p.bytes_compacted)
    ));
    out.push_str(&ratio_text(engines, &rows, passes));
    for e in engines {
        if let Some(p) = passes.iter().find(|p| &p.engine == e) {
            out.push_str(&format!(
                "{e}: compaction = {}; len() by {}\n",
                p.compaction, p.len_by
            ));
        }
    }
    for p in probes {
        out.push_str(&format!(
            "fsync probe, round {}: {:.0} fsyncs/s (p50 {:.0} us)\n",
            p.round, p.fsyncs_per_s, p.p50_us
        ));
    }
    out
}

fn ratio_text(engines: &[String], rows: &[String], passes: &[EngineSuite]) -> String {
    let Some((ours, peers)) = engines.split_first() else {
        return String::new();
    };
    if peers.is_empty() {
        return String::new();
    }
    let mut out = format!("\npeer ms / {ours} ms (above 1: {ours} is faster)\n\n| | ");
    out.push_str(&peers.join(" | "));
    out.push_str(" |\n|---|");
    out.push_str(&"---|".repeat(peers.len()));
    out.push('\n');
    for (r, op) in rows.iter().enumerate() {
        let base = median_ms(passes, ours, r);
        let cells: Vec<String> = peers
            .iter()
            .map(|e| match (median_ms(passes, e, r), base) {
                (Some(peer), Some(b)) if b > 0.0 => format!("{:.2}", peer / b),
                _ => "n/a".to_string(),
            })
            .collect();
        out.push_str(&format!("| {op} | {} |\n", cells.join(" | ")));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(tally: Tally) -> EngineSuite {
        EngineSuite {
            engine: "x".into(),
            round: 0,
            steps: Vec::new(),
            bytes_uncompacted: 0,
            bytes_compacted: None,
            compaction: "none",
            len_by: "len()",
            tally,
        }
    }

    fn clean() -> Tally {
        Tally {
            reads: 10,
            scans: 10,
            len_expected: 10,
            len_found: 10,
            removals: 5,
            ..Tally::default()
        }
    }

    #[test]
    fn pairs_are_reproducible_and_distinct() {
        let (a, b) = (Pairs::new(3), Pairs::new(3));
        assert_eq!(a.key(7), b.key(7));
        assert_eq!(a.value(7), b.value(7));
        assert_ne!(a.key(7), a.key(8));
        assert_ne!(a.key(7), Pairs::new(4).key(7));
        assert_ne!(a.value(7)[144..], [0; 6], "the last partial word is filled");
    }

    #[test]
    fn each_check_fails_alone_on_its_fault_and_when_it_saw_nothing() {
        let passed =
            |t: Tally| -> Vec<bool> { checks_of(&suite(t)).iter().map(|c| c.passed).collect() };
        assert_eq!(passed(clean()), [true, true, true, true]);
        assert_eq!(
            passed(Tally {
                read_faults: 1,
                ..clean()
            }),
            [false, true, true, true]
        );
        assert_eq!(
            passed(Tally {
                scan_faults: 1,
                ..clean()
            }),
            [true, false, true, true]
        );
        assert_eq!(
            passed(Tally {
                len_found: 9,
                ..clean()
            }),
            [true, true, false, true]
        );
        assert_eq!(
            passed(Tally {
                removals_missing: 1,
                ..clean()
            }),
            [true, true, true, false]
        );
        assert_eq!(passed(Tally::default()), [false, false, false, false]);
    }
}
