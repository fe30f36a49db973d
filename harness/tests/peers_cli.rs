//! The LMDB and fjall adapters through the CLI: the kill -9 loop (each must pass, as the
//! SQLite control does) and `bench/redb-suite` at a small size on every engine.

use std::process::Command;

use anyhow::{ensure, Context as _, Result};

fn harness(args: &[&str], out: &std::path::Path) -> Result<(String, harness::report::Report)> {
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .arg("--no-progress")
        .arg("--out")
        .arg(out)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let json = std::fs::read_to_string(out.join("report.json")).with_context(|| text.clone())?;
    Ok((text, harness::report::from_json_str(&json)?))
}

#[test]
fn lmdb_and_fjall_pass_the_kill9_loop() -> Result<()> {
    for engine in ["lmdb-full", "lmdb-off", "fjall-full", "fjall-off"] {
        let dir = tempfile::tempdir()?;
        let args = [
            "run",
            "crash/kill9-ycsb-a",
            "--seed",
            "5",
            "--engine",
            engine,
            "--set",
            "faults.kill9.cycles=4",
            "--set",
            "workload.record_count=2000",
            "--set",
            "faults.kill9.delay_ms={ min = 60, max = 120 }",
        ];
        let (text, report) = harness(&args, &dir.path().join("out"))?;
        // Whether a kill lands inside the open is timing; every data check must pass.
        let data_failed: Vec<_> = report
            .checks
            .iter()
            .filter(|c| !c.passed && c.name != "kills_during_recovery")
            .collect();
        ensure!(data_failed.is_empty(), "{engine}: {text}");
        let cycles = report.crash_cycles.context("no crash cycles")?;
        ensure!(cycles.count == 4, "{engine}: {text}");
    }
    Ok(())
}

#[test]
fn redb_suite_prints_redbs_table_for_every_engine() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let args = [
        "run",
        "bench/redb-suite",
        "--engine",
        "all",
        "--set",
        "bench.n=2000",
        "--set",
        "bench.reads=1000",
        "--set",
        "bench.scans=500",
        "--set",
        "bench.individual_writes=20",
        "--set",
        "bench.batches=3",
        "--set",
        "bench.batch_size=100",
    ];
    let (text, report) = harness(&args, &out)?;
    ensure!(report.verdict() == harness::report::Verdict::Pass, "{text}");
    // Four checks per engine, five engines.
    ensure!(report.checks.len() == 20, "{text}");
    let table = std::fs::read_to_string(out.join("redb-suite.md"))?;
    let header = "| | engine-full | lmdb-full | redb-immediate | fjall-full | sqlite-full |";
    ensure!(table.contains(header), "{table}");
    for row in [
        "| bulk load |",
        "| random reads (32 threads) |",
        "| removals |",
        "| size, compacted | n/a |",
    ] {
        ensure!(table.contains(row), "no row {row}: {table}");
    }
    ensure!(table.contains("peer ms / engine-full ms"), "{table}");
    Ok(())
}
