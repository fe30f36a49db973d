//! The driver's checks must fail on seeded bugs: an adapter that returns corrupted values, a
//! stale value of another key, or loses writes makes the run fail (exit code 1); open-loop
//! latency includes the queueing delay behind a slow engine.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use harness::adapter::{AdapterResult, Engine, EngineOptions, ModelEngine, Session, Txn};
use harness::driver::{run_phase, DataCtx, OpSource, PhaseBound, PhaseSpec, PhaseWork};
use harness::run::{execute, exit_code, EngineFactory, RunRequest};
use harness::workload::{Op, WorkloadSpec};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Lie {
    Honest,
    /// Every `every`-th read returns a value with one flipped byte.
    Corrupt,
    /// Every `every`-th read returns the previous read's value (another key's).
    Stale,
    /// Every `every`-th put is acknowledged and dropped.
    LoseWrites,
    /// Every `every`-th read of a key written more than once returns its previous version.
    OldVersion,
    /// Every `every`-th scan leaves out its second row.
    SkipInScan,
    /// Every `every`-th put outside a transaction (the run's updates, after a batched
    /// load) is acknowledged and dropped: the key keeps its older, valid version.
    DropUpdates,
}

struct Faulty {
    inner: ModelEngine,
    /// The value each key had before its latest put.
    previous: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    lie: Lie,
    every: u64,
    delay: Duration,
}

struct FaultySession<'a> {
    inner: Box<dyn Session + 'a>,
    previous: &'a Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    scans: u64,
    lie: Lie,
    every: u64,
    delay: Duration,
    reads: u64,
    puts: u64,
    last: Vec<u8>,
}

impl Engine for Faulty {
    fn name(&self) -> &str {
        "faulty"
    }
    fn durable_commits(&self) -> bool {
        false
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        Ok(Box::new(FaultySession {
            inner: self.inner.session()?,
            previous: &self.previous,
            scans: 0,
            lie: self.lie,
            every: self.every,
            delay: self.delay,
            reads: 0,
            puts: 0,
            last: Vec::new(),
        }))
    }
    fn sync(&self) -> AdapterResult<()> {
        Ok(())
    }
    fn reopen(&mut self) -> AdapterResult<()> {
        Ok(())
    }
    fn close(self: Box<Self>) -> AdapterResult<()> {
        Ok(())
    }
}

impl Session for FaultySession<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        std::thread::sleep(self.delay);
        let found = self.inner.get(key, value_out)?;
        self.reads += 1;
        let lie_now = self.reads.is_multiple_of(self.every) && found;
        match self.lie {
            Lie::Corrupt if lie_now => {
                let middle = value_out.len() / 2;
                value_out[middle] ^= 0x20;
            }
            Lie::Stale if lie_now && !self.last.is_empty() => {
                std::mem::swap(value_out, &mut self.last);
                return Ok(true);
            }
            Lie::OldVersion if lie_now => {
                if let Some(old) = self.previous.lock().get(key) {
                    value_out.clone_from(old);
                }
            }
            _ => {}
        }
        self.last.clone_from(value_out);
        Ok(found)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        std::thread::sleep(self.delay);
        self.puts += 1;
        let drops = matches!(self.lie, Lie::LoseWrites | Lie::DropUpdates);
        if drops && self.puts.is_multiple_of(self.every) {
            return Ok(());
        }
        if self.lie == Lie::OldVersion {
            let mut old = Vec::new();
            if self.inner.get(key, &mut old)? {
                self.previous.lock().insert(key.to_vec(), old);
            }
        }
        self.inner.put(key, value)
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.inner.delete(key)
    }
    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        self.scans += 1;
        if self.lie != Lie::SkipInScan || !self.scans.is_multiple_of(self.every) {
            return self.inner.scan(start, count_max, visit);
        }
        let mut row = 0;
        let count = self.inner.scan(start, count_max, &mut |k, v| {
            row += 1;
            if row != 2 {
                visit(k, v);
            }
        })?;
        Ok(count - usize::from(row >= 2))
    }
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        self.inner.transaction(body)
    }
}

struct FaultyFactory {
    lie: Lie,
    every: u64,
}

impl EngineFactory for FaultyFactory {
    fn open(&self, _: &str, _: &Path, _: &EngineOptions) -> AdapterResult<Box<dyn Engine>> {
        let (lie, every, delay) = (self.lie, self.every, Duration::ZERO);
        Ok(Box::new(Faulty {
            inner: ModelEngine::new(),
            previous: Mutex::default(),
            lie,
            every,
            delay,
        }))
    }
}

const SCENARIO: &str = r#"
description = "read verification test"
engine = "model"
threads = 2
verify_reads = true
[workload]
record_count = 2000
mix = { read = 0.6, update = 0.2, read_modify_write = 0.1, scan = 0.1 }
distribution = { name = "uniform" }
value_size = { name = "uniform", min = 40, max = 300 }
[load]
batch = 1
[run]
ops = 4000
"#;

/// Reads and updates only, then every key read back: the read-back is the only scan.
const READ_BACK_SCENARIO: &str = r#"
description = "read-back test"
engine = "model"
threads = 2
verify_reads = true
final_verify = "scan"
[workload]
record_count = 3000
mix = { read = 0.5, update = 0.5 }
distribution = { name = "uniform" }
[load]
batch = 100
[run]
ops = 2000
"#;

fn run_with(lie: Lie, every: u64) -> anyhow::Result<harness::report::Report> {
    run_scenario(SCENARIO, lie, every)
}

fn run_scenario(text: &str, lie: Lie, every: u64) -> anyhow::Result<harness::report::Report> {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("verify.toml");
    std::fs::write(&file, text)?;
    let scenario = harness::scenario::load(&file, &[])?;
    let request = RunRequest {
        scenario_name: "verify".into(),
        scenario,
        seed: 11,
        engines: vec!["faulty".into()],
        compare: false,
        out_dir: tmp.path().join("out"),
        keep_data: false,
        reproduce: "harness run verify --seed 11".into(),
        progress: false,
        shard: None,
    };
    Ok(execute(&request, &FaultyFactory { lie, every })?.report)
}

fn check<'r>(
    report: &'r harness::report::Report,
    name: &str,
) -> anyhow::Result<&'r harness::report::Check> {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow::anyhow!("no {name} check in {:?}", report.checks))
}

fn verification(report: &harness::report::Report) -> anyhow::Result<&harness::report::Check> {
    check(report, "read_verification")
}

/// The checks that failed, by name.
fn failed(report: &harness::report::Report) -> Vec<&str> {
    let mut names: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    names.dedup();
    names
}

#[test]
fn honest_engine_passes_verification() -> anyhow::Result<()> {
    let report = run_with(Lie::Honest, 1)?;
    assert!(verification(&report)?.passed, "{:?}", report.checks);
    for name in ["read_freshness", "scan_completeness"] {
        let c = check(&report, name)?;
        assert!(c.passed, "{}", c.detail);
        assert!(!c.detail.contains(" 0 "), "observed nothing: {}", c.detail);
    }
    assert_eq!(exit_code(&report), 0);
    Ok(())
}

#[test]
fn an_older_version_of_the_same_key_fails_freshness_alone() -> anyhow::Result<()> {
    let report = run_with(Lie::OldVersion, 7)?;
    let c = check(&report, "read_freshness")?;
    assert!(c.detail.contains("stale read"), "{}", c.detail);
    assert_eq!(failed(&report), ["read_freshness"], "{:?}", report.checks);
    assert_eq!(exit_code(&report), 1);
    Ok(())
}

#[test]
fn a_scan_that_skips_a_key_fails_completeness_alone() -> anyhow::Result<()> {
    let report = run_with(Lie::SkipInScan, 5)?;
    let c = check(&report, "scan_completeness")?;
    assert!(c.detail.contains("skipped loaded key"), "{}", c.detail);
    assert_eq!(
        failed(&report),
        ["scan_completeness"],
        "{:?}",
        report.checks
    );
    assert_eq!(exit_code(&report), 1);
    Ok(())
}

#[test]
fn corrupted_values_fail_the_run() -> anyhow::Result<()> {
    let report = run_with(Lie::Corrupt, 97)?;
    let check = verification(&report)?;
    assert!(!check.passed, "corruption not caught: {}", check.detail);
    assert!(check.detail.contains("checksum"), "{}", check.detail);
    assert_eq!(exit_code(&report), 1);
    Ok(())
}

#[test]
fn stale_value_of_another_key_fails_the_run() -> anyhow::Result<()> {
    let report = run_with(Lie::Stale, 89)?;
    let check = verification(&report)?;
    assert!(!check.passed, "stale value not caught: {}", check.detail);
    assert!(check.detail.contains("found under key"), "{}", check.detail);
    assert_eq!(exit_code(&report), 1);
    Ok(())
}

#[test]
fn lost_writes_fail_the_run_as_missing_keys() -> anyhow::Result<()> {
    // Load writes one key per put (batch = 1), so every 50th loaded key is dropped.
    let report = run_with(Lie::LoseWrites, 50)?;
    let check = verification(&report)?;
    assert!(!check.passed, "lost write not caught: {}", check.detail);
    assert!(check.detail.contains("missing"), "{}", check.detail);
    assert_eq!(exit_code(&report), 1);
    Ok(())
}

struct Reads {
    key: u64,
}

impl OpSource for Reads {
    fn next_op(&mut self) -> Op {
        self.key = (self.key + 1) % 100;
        Op::Read { key: self.key }
    }
}

#[test]
fn open_loop_latency_includes_queueing_behind_a_slow_engine() -> anyhow::Result<()> {
    let delay = Duration::from_millis(4);
    let engine = Faulty {
        inner: ModelEngine::new(),
        previous: Mutex::default(),
        lie: Lie::Honest,
        every: 1,
        delay,
    };
    let workload_spec = WorkloadSpec {
        record_count: 100,
        ..WorkloadSpec::default()
    };
    let ctx = DataCtx {
        keys: harness::gen::KeyEncoder::new(&workload_spec.key_encoding, 1)?,
        values: harness::gen::ValueGen::new(&workload_spec.value_size, 1)?,
        keyspace: std::sync::Arc::new(harness::gen::KeySpace::new(100)),
        verify_reads: false,
        deletes_possible: false,
        book: harness::driver::VersionBook::new(1, 100),
        key_order: None,
    };
    // Intended: one operation every 2 ms; each takes at least 4 ms, so operation k waits
    // about 2k ms behind its predecessors.
    let phase = PhaseSpec {
        name: "open".into(),
        threads: 1,
        bound: PhaseBound::ops(40),
        warmup_ops: 0,
        target_ops_s: Some(500.0),
    };
    let work = PhaseWork::Run {
        sources: vec![Box::new(Reads { key: 0 })],
    };
    let result = run_phase(&engine, &ctx, &phase, work, &mut |_, _, _| {})?;
    let response = result
        .response
        .get("read")
        .ok_or_else(|| anyhow::anyhow!("no reads"))?;
    let service = result
        .service
        .get("read")
        .ok_or_else(|| anyhow::anyhow!("no service"))?;
    assert_eq!(response.len(), 40);
    assert_eq!(service.len(), 40);
    let delay_ns = u64::try_from(delay.as_nanos())?;
    assert!(
        service.min() >= delay_ns * 99 / 100,
        "service below the engine's sleep"
    );
    // The last operation queued behind 39 others: at least 39 * (4 - 2) ms late.
    assert!(
        response.max() >= 39 * 2 * 1_000_000 * 99 / 100,
        "max {}",
        response.max()
    );
    assert!(response.max() > 5 * service.value_at_quantile(0.5));
    let report = result.to_report();
    assert!(
        report.service_latency.is_some(),
        "open loop reports service time"
    );
    Ok(())
}

#[test]
fn the_final_read_back_passes_and_fails_alone_on_a_skipped_key() -> anyhow::Result<()> {
    let honest = run_scenario(READ_BACK_SCENARIO, Lie::Honest, 1)?;
    let c = check(&honest, "final_verification")?;
    assert!(
        c.passed && c.detail.contains("3000 of 3000"),
        "{}",
        c.detail
    );
    // The read-back scans in two slices; the first scan of each session skips a row.
    let report = run_scenario(READ_BACK_SCENARIO, Lie::SkipInScan, 1)?;
    let c = check(&report, "final_verification")?;
    assert!(c.detail.contains("missing"), "{}", c.detail);
    assert_eq!(
        failed(&report),
        ["final_verification"],
        "{:?}",
        report.checks
    );
    assert_eq!(exit_code(&report), 1);
    Ok(())
}

#[test]
fn the_full_scan_read_back_catches_a_skipped_key_under_unordered_keys() -> anyhow::Result<()> {
    let text = READ_BACK_SCENARIO.replace(
        "record_count = 3000",
        "record_count = 3000\nkey_encoding = { name = \"uuid_v4\" }",
    );
    let honest = run_scenario(&text, Lie::Honest, 1)?;
    let c = check(&honest, "final_verification")?;
    assert!(
        c.passed && c.detail.contains("one full scan"),
        "{}",
        c.detail
    );
    let report = run_scenario(&text, Lie::SkipInScan, 1)?;
    let c = check(&report, "final_verification")?;
    assert!(
        c.detail.contains("1 of 3000 acknowledged keys missing"),
        "{}",
        c.detail
    );
    assert_eq!(
        failed(&report),
        ["final_verification"],
        "{:?}",
        report.checks
    );
    Ok(())
}

/// A lost update leaves the key's older version, valid for that key: only the version the
/// book recorded as acknowledged tells it apart. Updates only, so no read sees it first.
#[test]
fn the_final_read_back_catches_a_lost_update_by_its_version() -> anyhow::Result<()> {
    let text = READ_BACK_SCENARIO.replace("read = 0.5, update = 0.5", "update = 1.0");
    let honest = run_scenario(&text, Lie::Honest, 1)?;
    let c = check(&honest, "final_verification")?;
    assert!(c.passed, "{}", c.detail);
    let report = run_scenario(&text, Lie::DropUpdates, 5)?;
    let c = check(&report, "final_verification")?;
    assert!(c.detail.contains("stale"), "{}", c.detail);
    assert_eq!(
        failed(&report),
        ["final_verification"],
        "{:?}",
        report.checks
    );
    Ok(())
}
