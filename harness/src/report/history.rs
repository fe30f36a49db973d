//! `harness run --history FILE`: one NDJSON line per run, appended, so runs can be compared
//! across commits (after TigerBeetle's devhub). The line is self-describing: commit,
//! scenario, engine, seed, a hash of the resolved configuration, machine facts with the
//! fsync probe, the verdict with any failed checks, and per phase and operation the rate and
//! percentiles, with each round's rate as a sample for later statistics.

use std::io::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::{PhaseReport, Report};
use crate::faults::rng::hash_bytes;

fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({ "cpus": cpus, "mem_bytes": mem_kib * 1024, "kernel": kernel, "os": std::env::consts::OS })
}

fn phase_value(p: &PhaseReport) -> Value {
    let ops: serde_json::Map<String, Value> = p
        .latency
        .iter()
        .map(|(op, s)| {
            let v = json!({
                "count": s.count, "errors": s.errors, "p50_us": s.p50_us, "p99_us": s.p99_us,
                "p999_us": s.p999_us, "max_us": s.max_us,
            });
            (op.clone(), v)
        })
        .collect();
    json!({
        "name": p.name, "threads": p.threads, "ops": p.ops, "duration_s": p.duration_s,
        "ops_per_s": p.throughput_ops_s, "latency": ops,
    })
}

/// The history line of `report`.
#[must_use]
pub fn history_line(report: &Report) -> Value {
    let config = serde_json::to_vec(&report.config).unwrap_or_default();
    let engines: Vec<Value> = if report.engines.is_empty() {
        vec![
            json!({ "engine": report.engine, "phases": report.phases.iter().map(phase_value).collect::<Vec<_>>(), "round_samples": [] }),
        ]
    } else {
        report
            .engines
            .iter()
            .map(|e| {
                // Per round, each phase's rate: the samples a significance test needs.
                let samples: Vec<Value> = e
                    .per_round
                    .iter()
                    .map(|r| {
                        let rates: serde_json::Map<String, Value> = r
                            .phases
                            .iter()
                            .map(|p| (p.name.clone(), json!(p.throughput_ops_s)))
                            .collect();
                        json!({ "round": r.round, "ops_per_s": rates })
                    })
                    .collect();
                json!({
                    "engine": e.engine,
                    "phases": e.phases.iter().map(phase_value).collect::<Vec<_>>(),
                    "round_samples": samples,
                })
            })
            .collect()
    };
    let failed: Vec<&str> = report.failed_checks().map(|c| c.name.as_str()).collect();
    json!({
        "schema": 1,
        "commit": report.git_rev,
        "started_at": report.started_at,
        "scenario": report.scenario,
        "engine": report.engine,
        "seed": report.seed,
        "config_hash": format!("{:016x}", hash_bytes(&config)),
        "machine": machine(),
        "fsync_probe": report.fsync_probe,
        "verdict": report.verdict(),
        "failed_checks": failed,
        "reproduce": report.reproduce,
        "engines": engines,
    })
}

/// Appends the history line of `report` to `file` (created when missing).
///
/// # Errors
/// I/O errors opening or writing the file.
pub fn append_history(report: &Report, file: &Path) -> std::io::Result<()> {
    let mut line = serde_json::to_string(&history_line(report)).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    // One write of the whole line: concurrent appenders never interleave within it.
    f.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_run_with_the_documented_fields() -> anyhow::Result<()> {
        let (report, _) = crate::report::demo_report(3)?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("history.ndjson");
        append_history(&report, &file)?;
        append_history(&report, &file)?;
        let text = std::fs::read_to_string(&file)?;
        let lines: Vec<&str> = text.lines().collect();
        anyhow::ensure!(lines.len() == 2, "{text}");
        let v: Value = serde_json::from_str(lines[0])?;
        for field in [
            "commit",
            "scenario",
            "engine",
            "seed",
            "config_hash",
            "machine",
            "verdict",
            "engines",
        ] {
            anyhow::ensure!(v.get(field).is_some(), "history line lacks {field}");
        }
        let rounds = &v["engines"][0]["round_samples"];
        anyhow::ensure!(rounds.as_array().is_some_and(|r| !r.is_empty()), "{rounds}");
        anyhow::ensure!(v["engines"][0]["phases"][0]["ops_per_s"].is_number());
        Ok(())
    }
}
