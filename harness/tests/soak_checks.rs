//! `harness soak` as a user runs it: a soak passes and resumes across slices, and its
//! liveness and memory-bound checks each fail alone when their bound is set below what any
//! engine can meet (the trend checks fail alone in `soak::trend`'s unit tests).

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context as _, Result};
use serde_json::Value;

/// Every trend switched off (a soak of seconds cannot judge one).
const TRENDS_OFF: [&str; 6] = [
    "--trend-off",
    "rss_slope",
    "--trend-off",
    "file_size_slope",
    "--trend-off",
    "p99_drift",
];

/// A short soak: `until` long, episodes of 3-5 s, 3,000 keys, ticks every second.
fn soak(dir: &Path, until: &str, extra: &[&str]) -> Result<(i32, String)> {
    soak_env(dir, until, extra, None)
}

/// [`soak`] with one environment variable set for the soak and its children.
fn soak_env(
    dir: &Path,
    until: &str,
    extra: &[&str],
    env: Option<(&str, &str)>,
) -> Result<(i32, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    if let Some((name, value)) = env {
        command.env(name, value);
    }
    let out = command
        .args([
            "soak",
            "--until",
            until,
            "--episode-min",
            "3s",
            "--episode-max",
            "5s",
        ])
        .args([
            "--tick",
            "1s",
            "--keys",
            "3000",
            "--threads",
            "3",
            "--seed",
            "11",
        ])
        // Seconds-long soaks can judge no trend: each is switched off, as the soak demands.
        .args(TRENDS_OFF)
        .args(extra)
        .arg("--out")
        .arg(dir)
        .output()
        .context("running harness soak")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

fn report(dir: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(dir.join("soak.json")).context("soak.json")?;
    Ok(serde_json::from_str(&text)?)
}

/// Names of the checks with `status`.
fn with_status(r: &Value, status: &str) -> Vec<String> {
    r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == status)
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

fn checked(r: &Value, name: &str) -> u64 {
    r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .and_then(|c| c["checked"].as_u64())
        .unwrap_or(0)
}

#[test]
fn soak_passes_and_resumes_from_its_checkpoint() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("soak");
    let ck = tmp.path().join("checkpoint.json");
    let ck_arg = ck.to_string_lossy().to_string();
    let (code, text) = soak(&dir, "7s", &["--checkpoint", &ck_arg])?;
    ensure!(code == 0, "first slice failed ({code}):\n{text}");
    let first = report(&dir)?;
    let episodes_first = first["episodes"].as_array().map_or(0, Vec::len);
    ensure!(
        episodes_first >= 1,
        "no episode in the first slice:\n{text}"
    );
    let (code, text) = soak(&dir, "7s", &["--resume", &ck_arg, "--checkpoint", &ck_arg])?;
    ensure!(code == 0, "second slice failed ({code}):\n{text}");
    let r = report(&dir)?;
    ensure!(
        r["slices"].as_array().map_or(0, Vec::len) == 2,
        "{}",
        r["slices"]
    );
    let episodes = r["episodes"].as_array().context("episodes")?;
    ensure!(
        episodes.len() > episodes_first,
        "the resume ran no episode:\n{text}"
    );
    // Episode numbers carry on from the checkpoint.
    let indexes: Vec<u64> = episodes
        .iter()
        .filter_map(|e| e["index"].as_u64())
        .collect();
    ensure!(
        indexes == (0..indexes.len() as u64).collect::<Vec<_>>(),
        "{indexes:?}"
    );
    ensure!(with_status(&r, "fail").is_empty(), "{}", r["checks"]);
    for name in [
        "durability",
        "verified_reads",
        "verified_scans",
        "integrity_after_recovery",
        "liveness",
        "rss_bound",
    ] {
        ensure!(
            checked(&r, name) > 0,
            "{name} observed nothing: {}",
            r["checks"]
        );
    }
    ensure!(
        with_status(&r, "not judged") == ["rss_slope", "file_size_slope", "p99_drift"],
        "the trends switched off must say so: {}",
        r["checks"]
    );
    Ok(())
}

/// An 8-second soak of 3,000 keys with episodes of 3-5 s, plus `extra`, into `dir`; only
/// the flags given (no trend switched off unless `extra` says so).
fn eight_second_soak(dir: &Path, extra: &[&str]) -> Result<std::process::Output> {
    let base = [
        "soak",
        "--until",
        "8s",
        "--episode-min",
        "3s",
        "--episode-max",
        "5s",
    ];
    Ok(Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(base)
        .args(["--keys", "3000"])
        .args(extra)
        .arg("--out")
        .arg(dir)
        .output()?)
}

/// A soak too short to judge a trend refuses to start unless the trend is switched off.
#[test]
fn a_soak_that_cannot_judge_a_trend_is_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = eight_second_soak(
        &tmp.path().join("soak"),
        &["--tick", "1s", "--bucket", "2s"],
    )?;
    let text = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(2) && text.contains("--trend-off rss_slope"),
        "({:?}) {text}",
        out.status.code()
    );
    Ok(())
}

/// A soak that never ticked (8 s with a 10 s tick) observed no operation: it fails, with
/// each check it implies saying it observed nothing, instead of printing PASS.
#[test]
fn a_soak_that_observed_nothing_fails() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("soak");
    let mut args = vec!["--tick", "10s", "--bucket", "10s", "--seed", "11"];
    args.extend(TRENDS_OFF);
    let out = eight_second_soak(&dir, &args)?;
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(
        code == 1,
        "a soak that saw no tick must fail ({code}):\n{text}"
    );
    let r = report(&dir)?;
    let failed = with_status(&r, "fail");
    for name in ["liveness", "verified_reads", "verified_scans", "rss_bound"] {
        ensure!(
            failed.contains(&name.to_string()),
            "{name}: {}",
            r["checks"]
        );
    }
    ensure!(text.contains("observed nothing"), "{text}");
    Ok(())
}

#[test]
fn liveness_fails_alone_below_any_operation_time() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("soak");
    let (code, text) = soak(&dir, "4s", &["--stall-max", "1ms"])?;
    ensure!(code == 1, "a 1 ms stall bound must fail ({code}):\n{text}");
    let r = report(&dir)?;
    ensure!(with_status(&r, "fail") == ["liveness"], "{}", r["checks"]);
    Ok(())
}

/// One worker thread blocks forever inside an operation while the others go on: the ticks
/// keep coming, but liveness must see the operation that never finishes.
#[test]
fn an_operation_that_never_finishes_fails_liveness_alone() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("soak");
    let hook = Some(("HARNESS_SOAK_BLOCK_ONE_OP", "1"));
    let (code, text) = soak_env(&dir, "6s", &["--stall-max", "2s"], hook)?;
    ensure!(code == 1, "a blocked operation must fail ({code}):\n{text}");
    let r = report(&dir)?;
    ensure!(with_status(&r, "fail") == ["liveness"], "{}", r["checks"]);
    ensure!(text.contains("still running"), "{text}");
    Ok(())
}

#[test]
fn rss_bound_fails_alone_below_the_process_size() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("soak");
    let (code, text) = soak(
        &dir,
        "4s",
        &["--cache-bytes", "65536", "--rss-over-cache-mib-max", "0"],
    )?;
    ensure!(
        code == 1,
        "a 64 KiB memory bound must fail ({code}):\n{text}"
    );
    let r = report(&dir)?;
    ensure!(with_status(&r, "fail") == ["rss_bound"], "{}", r["checks"]);
    Ok(())
}

#[test]
fn a_bad_resume_is_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let ck = tmp.path().join("missing.json");
    let (code, text) = soak(
        &tmp.path().join("soak"),
        "1s",
        &["--resume", &ck.to_string_lossy()],
    )?;
    ensure!(
        code == 2 && text.contains("missing.json"),
        "({code}):\n{text}"
    );
    Ok(())
}
