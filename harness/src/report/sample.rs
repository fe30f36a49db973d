//! A deterministic demonstration report: three engines, two phases, three operation kinds,
//! a 30-second timeline, a failing check, crash cycles and a fault schedule. Used by the report
//! tests, by `reports/README.md`'s example, and to look at report.html in a browser.
//! The numbers are synthetic (log-normal latencies shaped after REFERENCE.md section 3); they
//! are not measurements.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use super::{
    compute_ratios, Check, CrashCycle, CrashCycles, EngineReport, FaultEvent, FsyncProbe, HistUnit,
    LatencySummary, PhaseReport, Report, RoundReport, TimelinePoint, REPORT_SCHEMA_VERSION,
};

/// Distinct samples drawn per (engine, phase, op) histogram: enough for a p99.99 with a few
/// points beyond it. Each is recorded `SAMPLE_WEIGHT` times so counts look like a 5 s phase.
const SAMPLES_PER_HISTOGRAM: u64 = 40_000;
const SAMPLE_WEIGHT: u64 = 30;
/// Highest latency the demo histograms track: 10 s in nanoseconds.
const LATENCY_NS_MAX: u64 = 10_000_000_000;
/// Seconds in the demo timeline.
const TIMELINE_SECONDS: u32 = 30;
/// Probability that a sample lands in the slow tail (a stall behind a checkpoint or fsync).
const TAIL_PROBABILITY: f64 = 0.002;

/// (engine, op, median ns, log-normal sigma, phase ops/s) for the demo.
const PROFILES: [(&str, &str, &str, f64, f64, f64); 9] = [
    ("ours", "load", "insert", 3_100.0, 0.35, 250_000.0),
    ("ours", "run", "read", 1_700.0, 0.30, 480_000.0),
    ("ours", "run", "update", 4_200.0, 0.45, 480_000.0),
    ("redb", "load", "insert", 3_600.0, 0.40, 270_000.0),
    ("redb", "run", "read", 1_750.0, 0.35, 520_000.0),
    ("redb", "run", "update", 5_100.0, 0.50, 520_000.0),
    ("sqlite", "load", "insert", 3_800.0, 0.30, 263_000.0),
    ("sqlite", "run", "read", 2_090.0, 0.25, 461_000.0),
    ("sqlite", "run", "update", 6_300.0, 0.40, 461_000.0),
];

/// A histogram of `SAMPLES_PER_HISTOGRAM` log-normal nanosecond latencies with a slow tail.
fn demo_histogram(rng: &mut StdRng, median_ns: f64, sigma: f64) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3)?;
    let body = LogNormal::new(median_ns.ln(), sigma)?;
    for _ in 0..SAMPLES_PER_HISTOGRAM {
        let mut value = body.sample(rng);
        if rng.random_bool(TAIL_PROBABILITY) {
            value *= rng.random_range(5.0..150.0);
        }
        histogram.record_n((value as u64).clamp(1, LATENCY_NS_MAX), SAMPLE_WEIGHT)?;
    }
    Ok(histogram)
}

/// The demo report and its histograms (keyed "engine.phase.op"), all derived from `seed`.
pub fn demo_report(seed: u64) -> anyhow::Result<(Report, BTreeMap<String, Histogram<u64>>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut histograms = BTreeMap::new();
    let mut engines: Vec<EngineReport> = Vec::new();
    for (engine, phase, op, median_ns, sigma, rate) in PROFILES {
        let histogram = demo_histogram(&mut rng, median_ns, sigma)?;
        let errors = u64::from(engine == "redb" && op == "update") * 3;
        let summary =
            LatencySummary::from_histogram_unit(&histogram, HistUnit::Nanoseconds, errors);
        histograms.insert(format!("{engine}.{phase}.{op}"), histogram);
        if engines.last().is_none_or(|e| e.engine != engine) {
            engines.push(EngineReport {
                engine: engine.to_string(),
                rounds: 3,
                ..EngineReport::default()
            });
        }
        let Some(current) = engines.last_mut() else {
            continue;
        };
        if current.phases.last().is_none_or(|p| p.name != phase) {
            current.phases.push(PhaseReport {
                name: phase.to_string(),
                duration_s: 4.0,
                throughput_ops_s: round3(rate * rng.random_range(0.97..1.03)),
                ..PhaseReport::default()
            });
        }
        if let Some(current_phase) = current.phases.last_mut() {
            current_phase.ops += summary.count + summary.errors;
            current_phase.latency.insert(op.to_string(), summary);
        }
    }
    for engine in &mut engines {
        for phase in &mut engine.phases {
            // Duration follows from ops and rate, so per-op ops/s add up to the phase's.
            phase.duration_s = round3(phase.ops as f64 / phase.throughput_ops_s);
        }
        engine.per_round = vec![RoundReport {
            round: 0,
            phases: engine.phases.clone(),
        }];
    }
    let mut report = demo_identity(seed);
    report.ratios = engines
        .first()
        .map(|ours| compute_ratios(ours, &engines))
        .unwrap_or_default();
    report.phases = engines
        .first()
        .map(|e| e.phases.clone())
        .unwrap_or_default();
    report.engines = engines;
    report.timeline = demo_timeline(&mut rng);
    report.resources = (0..12u32)
        .map(|t| super::ResourcePoint {
            engine: "engine-full".into(),
            t_s: f64::from(t),
            rss_bytes: u64::from(200 + 10 * t) << 20,
            disk_bytes: u64::from(30 * t) << 20,
            wal_bytes: u64::from(t % 4) << 20,
            wchar_bytes: u64::from(45 * t) << 20,
            device_write_bytes: u64::from(40 * t) << 20,
        })
        .collect();
    report.loads = vec![super::LoadSummary {
        engine: "engine-full".into(),
        keys: 100_000,
        user_bytes: 10_800_000,
        duration_s: 0.5,
        keys_per_s: 200_000.0,
        wchar_bytes: 32_400_000,
        device_write_bytes: 30_000_000,
        write_amplification: 3.0,
        rss_bytes_max: 310 << 20,
        disk_bytes_end: 330 << 20,
    }];
    report.fsync_probe = (0..3)
        .map(|round| FsyncProbe {
            round,
            fsyncs_per_s: if round == 1 {
                412.0
            } else {
                14_800.0 + 300.0 * f64::from(round)
            },
            p50_us: if round == 1 { 2_310.0 } else { 64.0 },
            p99_us: if round == 1 { 4_020.0 } else { 118.0 },
        })
        .collect();
    report.crash_cycles = Some(demo_crash_cycles(&mut rng)?);
    report.fault_schedule = Some(demo_faults());
    Ok((report, histograms))
}

/// Three decimals, like every value the harness derives from nanosecond clocks, so the demo
/// round-trips through JSON exactly.
fn round3(value: f64) -> f64 {
    super::summary::round_to_ns(value)
}

fn demo_identity(seed: u64) -> Report {
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        scenario: "ycsb-a-demo".to_string(),
        engine: "all".to_string(),
        seed,
        git_rev: "0a1b2c3".to_string(),
        started_at: "2025-01-31T12:34:56Z".to_string(),
        config: serde_json::json!({
            "workload": "a", "keys": 1_000_000, "key_bytes": 24, "value_bytes": 150,
            "distribution": "zipfian", "threads": 1, "phases": ["load", "run"],
            "engines": ["ours", "redb", "sqlite"], "rounds": 3
        }),
        errors: BTreeMap::from([("conflict".to_string(), 3), ("io".to_string(), 0)]),
        checks: vec![
            check(
                "oracle_read_your_writes",
                true,
                "40000 reads matched the expected state",
            ),
            check(
                "bank_total_invariant",
                true,
                "total 1000000 in every snapshot (12 scans)",
            ),
            check(
                "recovery_prefix",
                false,
                "cycle 7: key 0x00000000000a41f3 version 12 acknowledged (synced) but \
                 recovered version 11; seed=42",
            ),
        ],
        reproduce: Some(format!(
            "harness run --scenario scenarios/ycsb-a.toml --engine all --seed {seed}"
        )),
        ..Report::default()
    }
}

fn check(name: &str, passed: bool, detail: &str) -> Check {
    Check {
        name: name.to_string(),
        passed,
        detail: detail.to_string(),
    }
}

fn demo_timeline(rng: &mut StdRng) -> Vec<TimelinePoint> {
    let phases = [
        "ours:load",
        "ours:run",
        "redb:load",
        "redb:run",
        "sqlite:load",
        "sqlite:run",
    ];
    (0..TIMELINE_SECONDS)
        .map(|second| {
            let slot = (second / 5) as usize;
            let phase = phases[slot.min(phases.len() - 1)];
            let base = if phase.ends_with("load") {
                250_000.0
            } else {
                480_000.0
            };
            // A stall at 17 s: a checkpoint holds writers, throughput drops and p99 jumps.
            let stalled = second == 17;
            let throughput =
                round3(base * rng.random_range(0.92..1.05) * if stalled { 0.35 } else { 1.0 });
            TimelinePoint {
                t_s: f64::from(second),
                phase: phase.to_string(),
                ops: throughput as u64,
                throughput_ops_s: throughput,
                p50_us: round3(rng.random_range(1.6..3.4)),
                p99_us: if stalled {
                    2_400.0
                } else {
                    round3(rng.random_range(9.0..30.0))
                },
                errors: u64::from(stalled) * 3,
            }
        })
        .collect()
}

fn demo_crash_cycles(rng: &mut StdRng) -> anyhow::Result<CrashCycles> {
    let mut reopen = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3)?;
    let mut verify = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3)?;
    let mut cycles = Vec::new();
    for cycle in 0..20u64 {
        let reopen_us = round3(rng.random_range(800.0..6_000.0));
        let verify_us = round3(rng.random_range(20_000.0..60_000.0));
        reopen.record((reopen_us * 1000.0) as u64)?;
        verify.record((verify_us * 1000.0) as u64)?;
        cycles.push(CrashCycle {
            cycle,
            at_op: 5_000 + cycle * 12_345,
            kind: if cycle % 2 == 0 {
                "kill9"
            } else {
                "power_loss"
            }
            .to_string(),
            reopen_us,
            verify_us,
            passed: cycle != 7,
        });
    }
    Ok(CrashCycles {
        count: cycles.len() as u64,
        reopen: LatencySummary::from_histogram(&reopen, 0),
        verify: LatencySummary::from_histogram(&verify, 0),
        cycles,
    })
}

fn demo_faults() -> Vec<FaultEvent> {
    let fault =
        |at_op: u64, kind: &str, file: &str, offset: Option<u64>, detail: &str| FaultEvent {
            at_op,
            kind: kind.to_string(),
            file: file.to_string(),
            offset,
            detail: detail.to_string(),
        };
    vec![
        fault(
            17_345,
            "torn_write",
            "wal/000003.log",
            Some(1_048_576),
            "sectors 3..8 dropped",
        ),
        fault(
            54_030,
            "fsync_error",
            "data.db",
            None,
            "EIO; handle poisoned, reopened",
        ),
        fault(
            91_211,
            "bit_flip",
            "data.db",
            Some(40_960),
            "bit 5 of byte 1234 in page 10",
        ),
        fault(
            120_004,
            "enospc",
            "wal/000004.log",
            Some(2_097_152),
            "tmpfs full at 16 MiB",
        ),
    ]
}
