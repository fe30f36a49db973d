//! Properties checked with quickcheck (the project's brief names it): the oracle's state word
//! after any sequence of writes to a key, key distributions in range for any key count and
//! seed, and the shard merge adding counts exactly for any split. Each property runs a fixed
//! number of cases, so the file stays within a couple of seconds.

use anyhow::{ensure, Context as _, Result};
use quickcheck::{QuickCheck, TestResult};

use harness::gen::dist::KEYS_MAX;
use harness::gen::{DistributionSpec, HarnessRng, KeySampler};
use harness::oracle::{CheckMode, ExpectedState};
use harness::report::{Check, CrashCycles, LatencySummary, Report};
use harness::shard::{encode_histogram, merge, share, CheckCount, Shard, ShardInfo};

/// Cases per property: enough to reach the edges (empty sequences, one key, one shard), few
/// enough that each property takes well under a second.
const CASES: u64 = 200;
/// Operations on one key per oracle case: past a few dozen nothing new happens to one word.
const OPS_MAX: usize = 64;

fn qc() -> QuickCheck {
    qc_with(CASES)
}

fn qc_with(cases: u64) -> QuickCheck {
    QuickCheck::new().tests(cases).max_tests(cases * 10)
}

/// One oracle case: `ops` on key 0 (0 put, 1 delete, 2 put aborted, 3 delete aborted),
/// mirrored in a model of the last acknowledged state; after each, `check` in Full mode
/// accepts exactly that state, and rejects a version never acknowledged.
fn oracle_case(ops: Vec<u8>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let state = ExpectedState::create(dir.path().join("expected"), 1)?;
    // The model: the version of the last acknowledged put, None after a delete.
    let mut acked: Option<u64> = None;
    for op in ops.into_iter().take(OPS_MAX).map(|b| b % 4) {
        let v = state.next_version(0)?;
        match op {
            0 => {
                state.begin_put(0, v)?;
                state.ack_put(0, v)?;
                acked = Some(v);
            }
            1 => {
                state.begin_delete(0)?;
                state.ack_delete(0)?;
                acked = None;
            }
            2 => {
                state.begin_put(0, v)?;
                state.abort(0)?;
            }
            _ => {
                state.begin_delete(0)?;
                state.abort(0)?;
            }
        }
        let s = state.state(0)?;
        ensure!(!s.pending(), "nothing in flight after {op}: {s:?}");
        ensure!(s.present == acked.is_some(), "present {s:?} vs {acked:?}");
        let check = state.check(0, acked, CheckMode::Full);
        ensure!(
            check.is_ok(),
            "the acknowledged state is refused: {check:?}"
        );
        let never = Some(state.next_version(0)?);
        let wrong = state.check(0, never, CheckMode::Full);
        ensure!(wrong.is_err(), "a version never acknowledged is accepted");
    }
    Ok(())
}

#[test]
fn oracle_check_holds_for_the_last_acknowledged_state() -> Result<()> {
    fn prop(ops: Vec<u8>) -> TestResult {
        match oracle_case(ops) {
            Ok(()) => TestResult::passed(),
            Err(e) => TestResult::error(format!("{e:#}")),
        }
    }
    qc().quickcheck(prop as fn(Vec<u8>) -> TestResult);
    Ok(())
}

/// Distributions with their defaults; `latest` is left out: it follows a key space's
/// acknowledged count rather than `n`.
const DISTRIBUTIONS: &[&str] = &[
    "uniform",
    "sequential",
    "zipfian",
    "scrambled_zipfian",
    "hotspot",
    "exponential",
    "left_skewed",
    "right_skewed",
    "clustered",
    "time_series",
];
/// Samples drawn per case.
const SAMPLES: usize = 64;

fn distribution_case(which: u8, n_raw: u64, seed: u64) -> Result<()> {
    let name = DISTRIBUTIONS[usize::from(which) % DISTRIBUTIONS.len()];
    // Half the cases small counts (edges: 1, 2, a few), half anywhere up to KEYS_MAX.
    let n = if n_raw.is_multiple_of(2) {
        1 + (n_raw >> 1) % 16
    } else {
        1 + (n_raw >> 1) % KEYS_MAX
    };
    let mut json = serde_json::json!({ "name": name });
    if name == "clustered" {
        // Its default 16 clusters need 16 keys: fewer keys take one cluster per key.
        json["clusters"] = n.min(16).into();
    }
    let spec: DistributionSpec = serde_json::from_value(json)?;
    let mut sampler = KeySampler::new(&spec, n).with_context(|| format!("{name} n={n}"))?;
    let mut rng = HarnessRng::from_seed(seed);
    for _ in 0..SAMPLES {
        let k = sampler.sample(&mut rng);
        ensure!(k < n, "{name} n={n} seed={seed}: sampled {k}");
    }
    Ok(())
}

#[test]
fn key_distributions_stay_in_range() -> Result<()> {
    fn prop(which: u8, n: u64, seed: u64) -> TestResult {
        match distribution_case(which, n, seed) {
            Ok(()) => TestResult::passed(),
            Err(e) => TestResult::error(format!("{e:#}")),
        }
    }
    qc().quickcheck(prop as fn(u8, u64, u64) -> TestResult);
    Ok(())
}

/// Shards at most per merge case: the split's edges show with a handful.
const SHARDS_MAX: u64 = 8;
/// Merge cases: each encodes and decodes a histogram per shard (about 10 ms unoptimized),
/// so fewer than the other properties to stay near a second.
const MERGE_CASES: u64 = 100;

/// Shard `index` of `count` running `cycles` cycles: one reopen sample per cycle, and the
/// check counts given.
fn shard_report(index: u64, count: u64, cycles: u64, obs: u64, fails: u64) -> Result<Report> {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
    for c in 0..cycles {
        h.record(1_000 + c * 37 + index)?;
    }
    let reopen = LatencySummary {
        histogram_b64: encode_histogram(&h),
        ..LatencySummary::from_histogram(&h, 0)
    };
    Ok(Report {
        scenario: "faults/power-loss-sqlite".into(),
        engine: "engine-full".into(),
        git_rev: "abc1234".into(),
        seed: harness::shard::derive_seed(7, index),
        checks: vec![Check {
            name: "durability".into(),
            passed: fails == 0,
            detail: format!("{fails} of {obs}"),
        }],
        crash_cycles: Some(CrashCycles {
            count: cycles,
            reopen: reopen.clone(),
            verify: reopen,
            cycles: Vec::new(),
        }),
        shard: Some(ShardInfo {
            index: Some(index),
            count,
            base_seed: 7,
            config_hash: "00c0ffee".into(),
            cycles,
            cycles_total: 0,
            sections: Vec::new(),
            check_counts: vec![CheckCount {
                name: "durability".into(),
                observations: obs,
                failures: fails,
            }],
        }),
        ..Report::default()
    })
}

/// `total` cycles split over `count` shards with `share`, each shard observing per cycle;
/// the merge must add cycles, reopen samples, observations and failures exactly.
fn merge_case(total: u16, count: u8, fail_every: u8) -> Result<()> {
    let count = 1 + u64::from(count) % SHARDS_MAX;
    // Up to a few hundred cycles: past that only the histogram work grows, not the cases.
    let total = count + u64::from(total) % 200;
    let mut shards = Vec::new();
    let (mut obs_sum, mut fail_sum) = (0, 0);
    for index in 0..count {
        let (_, cycles) = share(total, Shard { index, count });
        let obs = cycles * 3;
        let fails = if fail_every == 0 {
            0
        } else {
            cycles / u64::from(fail_every)
        };
        obs_sum += obs;
        fail_sum += fails;
        let report = shard_report(index, count, cycles, obs, fails)?;
        shards.push((format!("shard{index}"), report));
    }
    let merged = merge(&shards).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cc = merged.report.crash_cycles.context("crash cycles")?;
    ensure!(cc.count == total, "cycles {} != {total}", cc.count);
    ensure!(
        cc.reopen.count == total,
        "reopens {} != {total}",
        cc.reopen.count
    );
    let info = merged.report.shard.context("shard info")?;
    let counts = info.check_counts.first().context("check counts")?;
    ensure!(counts.observations == obs_sum, "{counts:?} != {obs_sum}");
    ensure!(counts.failures == fail_sum, "{counts:?} != {fail_sum}");
    let passed = merged.report.checks.iter().all(|c| c.passed);
    ensure!(
        passed == (fail_sum == 0),
        "verdict {passed} with {fail_sum} failures"
    );
    Ok(())
}

#[test]
fn shard_merge_adds_counts_exactly_for_any_split() -> Result<()> {
    fn prop(total: u16, count: u8, fail_every: u8) -> TestResult {
        match merge_case(total, count, fail_every) {
            Ok(()) => TestResult::passed(),
            Err(e) => TestResult::error(format!("{e:#}")),
        }
    }
    qc_with(MERGE_CASES).quickcheck(prop as fn(u16, u8, u8) -> TestResult);
    Ok(())
}
