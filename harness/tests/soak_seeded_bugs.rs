//! Proof that the soak's live checks, and the multi-writer kill -9 loop, catch seeded engine
//! bugs as a user runs them, with the bug named through `HARNESS_SEEDED_BUG` (which child
//! processes inherit). Each case names the check that must fail and the others allowed to.
//!
//! Run: `cargo test -p harness --features seeded-bugs --test soak_seeded_bugs`.
#![cfg(feature = "seeded-bugs")]

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context as _, Result};
use serde_json::Value;

fn harness(bug: &str, args: &[&str], out: &Path) -> Result<i32> {
    let status = Command::new(env!("CARGO_BIN_EXE_harness"))
        .env("HARNESS_SEEDED_BUG", bug)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .context("running harness")?
        .status;
    Ok(status.code().unwrap_or(-1))
}

/// The failed checks of a soak.json (`status`) or a report.json (`passed`).
fn failed(report: &Path) -> Result<Vec<String>> {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(report).context("report")?)?;
    Ok(r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail" || c["passed"] == false)
        // Never exercised because the bug's failure came first: not a detection.
        .filter(|c| {
            !c["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("not reached")
        })
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect())
}

fn soak_case(bug: &str, check: &str, also: &[&str]) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("soak");
    let args = [
        "soak",
        "--until",
        "15s",
        "--episode-min",
        "5s",
        "--episode-max",
        "8s",
        "--tick",
        "1s",
        "--keys",
        "5000",
        "--seed",
        "3",
        // Seconds-long soaks can judge no trend: each is switched off, as the soak demands.
        "--trend-off",
        "rss_slope",
        "--trend-off",
        "file_size_slope",
        "--trend-off",
        "p99_drift",
    ];
    let code = harness(bug, &args, &out)?;
    let failed = failed(&out.join("soak.json"))?;
    ensure!(
        code == 1,
        "{bug}: the soak exited {code}, failed {failed:?}"
    );
    ensure!(
        failed.iter().any(|f| f == check),
        "{bug}: {check} did not fail: {failed:?}"
    );
    let stray: Vec<&String> = failed
        .iter()
        .filter(|f| *f != check && !also.contains(&f.as_str()))
        .collect();
    ensure!(stray.is_empty(), "{bug}: unexpected failures {stray:?}");
    Ok(())
}

#[test]
fn soak_scans_catch_a_scan_that_skips_a_leafs_first_key() -> Result<()> {
    soak_case("scan-skips-leaf-start", "verified_scans", &[])
}

#[test]
fn soak_reads_catch_rolled_back_pages_left_in_the_cache() -> Result<()> {
    soak_case("keep-rolled-back-pages-in-cache", "verified_reads", &[])
}

#[test]
fn soak_catches_a_free_list_that_hands_out_a_page_twice() -> Result<()> {
    soak_case(
        "free-list-entry-reused",
        // Two live pages share a place in the file: the child's next read of one of them
        // meets the other's bytes and reports corruption.
        "operations_succeed",
        &[
            "durability",
            "integrity_after_recovery",
            "verified_reads",
            "verified_scans",
        ],
    )
}

#[test]
fn concurrent_kill9_loop_catches_a_checkpoint_that_drops_a_page() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("run");
    let args = [
        "run",
        "crash/kill9-concurrent-ycsb-a",
        "--seed",
        "1",
        "--no-progress",
        "--set",
        "faults.kill9.cycles=10",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root)?;
    let code = harness("drop-page-at-checkpoint", &args, &out)?;
    let failed = failed(&out.join("report.json"))?;
    // The dropped page loses an acknowledged write: recovery shows it (durability), and so
    // may a live read once the WAL that covered the page was reset (verified_reads).
    let stray: Vec<&String> = failed
        .iter()
        .filter(|f| !["durability", "verified_reads"].contains(&f.as_str()))
        .collect();
    ensure!(
        code == 1 && failed.iter().any(|f| f == "durability") && stray.is_empty(),
        "exit {code}, failed {failed:?}"
    );
    Ok(())
}
