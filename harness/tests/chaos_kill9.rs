//! The kill -9 loop through the CLI: the harness re-executes itself as the worker, kills it,
//! reopens and verifies. SQLite (synchronous=FULL) is the control that must pass, kills during
//! recovery included; our engine must pass the loop without recovery kills (with them it meets
//! the checkpoint bug of tests/chaos_regressions.rs).

use std::process::Command;

use anyhow::{ensure, Context as _, Result};

fn run(engine: &str, extra: &[&str]) -> Result<(bool, String, harness::report::Report)> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            "crash/kill9-ycsb-a",
            "--seed",
            "5",
            "--no-progress",
            "--engine",
            engine,
        ])
        .args([
            "--set",
            "faults.kill9.cycles=4",
            "--set",
            "workload.record_count=2000",
        ])
        .args(["--set", "faults.kill9.delay_ms={ min = 40, max = 90 }"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let json = std::fs::read_to_string(out.join("report.json")).with_context(|| text.clone())?;
    Ok((
        o.status.success(),
        text,
        harness::report::from_json_str(&json)?,
    ))
}

#[test]
fn sqlite_full_passes_the_kill9_loop_with_kills_during_recovery() -> Result<()> {
    let (_, text, report) = run(
        "sqlite-full",
        &["--set", "faults.kill9.recovery_kill_every=2"],
    )?;
    // Whether a kill lands inside SQLite's short open is timing; every data check must pass.
    let data_failed: Vec<_> = report
        .checks
        .iter()
        .filter(|c| !c.passed && c.name != "kills_during_recovery")
        .collect();
    ensure!(data_failed.is_empty(), "{text}");
    let cycles = report.crash_cycles.context("no crash cycles")?;
    ensure!(cycles.count == 4, "{text}");
    // The summary agrees with the cycles it summarizes (0.1%: the histogram's precision).
    let max_reopen = cycles
        .cycles
        .iter()
        .map(|c| c.reopen_us)
        .fold(0.0, f64::max);
    ensure!(
        (cycles.reopen.max_us - max_reopen).abs() <= max_reopen * 0.001 + 0.001,
        "reopen max {} us in the summary, {max_reopen} us in the cycles",
        cycles.reopen.max_us
    );
    ensure!(
        report
            .checks
            .iter()
            .any(|c| c.name == "durability" && c.passed),
        "{text}"
    );
    ensure!(
        report.reproduce.is_some_and(|r| r.contains("--seed 5")),
        "{text}"
    );
    Ok(())
}

#[test]
fn our_engine_passes_the_kill9_loop() -> Result<()> {
    let (ok, text, report) = run(
        "engine-full",
        &["--set", "faults.kill9.recovery_kill_every=0"],
    )?;
    ensure!(ok, "{text}");
    ensure!(
        report
            .checks
            .iter()
            .any(|c| c.name == "integrity_after_recovery" && c.passed),
        "{text}"
    );
    ensure!(text.contains("cycles/min"), "{text}");
    Ok(())
}
