//! `harness sweep` end to end: a passing range writes sweep.json with a row per scenario and
//! exits 0; a run that never reaches a verdict (here: killed at its timeout) is counted as
//! aborted, grouped, given its reproduce command, and fails the sweep with exit 1.

mod common;
use common::harness;

use std::path::Path;

use anyhow::Context as _;

fn sweep_json(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("sweep.json"))?;
    Ok(serde_json::from_str(&text)?)
}

#[test]
fn a_passing_range_reports_every_seed_and_exits_zero() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out_dir = tmp.path().join("sweep");
    let out_arg = out_dir.to_string_lossy().into_owned();
    let args = [
        "sweep",
        "faults/eio-fsync",
        "--seeds",
        "5..7",
        "--jobs",
        "2",
        "--no-progress",
        "--out",
        &out_arg,
    ];
    let out = harness(&args, tmp.path())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let json = sweep_json(&out_dir)?;
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["seed_first"], 5);
    assert_eq!(json["seed_last"], 7);
    let row = &json["scenarios"][0];
    assert_eq!(row["scenario"], "faults/eio-fsync");
    assert_eq!(row["seeds_run"], 3);
    assert_eq!(row["passed"], 3);
    assert!(row["runs_per_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(out_dir.join("sweep.html").is_file());
    // Passing runs leave nothing behind.
    assert!(!out_dir.join("runs/faults-eio-fsync/seed-5").exists());
    Ok(())
}

#[test]
fn a_run_without_a_verdict_is_aborted_grouped_and_fails_the_sweep() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out_dir = tmp.path().join("sweep");
    let out_arg = out_dir.to_string_lossy().into_owned();
    // A 10 000-cycle kill -9 loop cannot finish in one second: every run is killed.
    let args = [
        "sweep",
        "crash/kill9-bank",
        "--seeds",
        "1..2",
        "--timeout-s",
        "1",
        "--no-progress",
        "--set",
        "faults.kill9.cycles=10000",
        "--out",
        &out_arg,
    ];
    let out = harness(&args, tmp.path())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let json = sweep_json(&out_dir)?;
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["scenarios"][0]["aborted"], 2);
    let groups = json["groups"].as_array().context("groups")?;
    assert_eq!(groups.len(), 1, "one cause, one group: {groups:?}");
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(groups[0]["check"], "aborted");
    assert_eq!(groups[0]["first_seed"], 1);
    let reproduce = groups[0]["reproduce"].as_str().unwrap_or("");
    assert!(
        reproduce.starts_with("harness run crash/kill9-bank --seed 1 --set"),
        "{reproduce}"
    );
    assert!(stdout.contains("reproduce: harness run crash/kill9-bank --seed 1"));
    // The failing runs keep their logs.
    assert!(out_dir
        .join("runs/crash-kill9-bank/seed-1/run.log")
        .is_file());
    Ok(())
}

#[test]
fn bad_ranges_and_unknown_scenarios_are_bad_input() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    for args in [
        &["sweep", "faults/eio-fsync", "--seeds", "9..3"][..],
        &["sweep", "faults/eio-fsync", "--seeds", "x"],
        &["sweep", "no/such-scenario", "--seeds", "1..2"],
        &["sweep", "nothing/*", "--seeds", "1..2"],
        &["sweep", "faults/eio-fsync"],
        &["sweep", "faults/eio-fsync", "--count", "0"],
        &["sweep", "faults/eio-fsync", "--seeds", "0..1000000"],
        &[
            "sweep",
            "faults/eio-fsync",
            "--seeds",
            "0..18446744073709551615",
        ],
        &[
            "sweep",
            "faults/eio-fsync",
            "--count",
            "3",
            "--from",
            "18446744073709551614",
        ],
    ] {
        let out = harness(args, tmp.path())?;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    Ok(())
}
