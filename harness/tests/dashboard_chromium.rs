//! `harness dashboard` end to end: a small history, the page written, and the page opened in
//! headless Chromium to prove that it renders and that its inline script runs without error
//! (the script adds `#dashboard-ready`; a script error would leave it out).
//!
//! Without a Chromium binary the browser test prints "SKIPPED: no chromium" and passes,
//! unless `HARNESS_REQUIRE_CHROMIUM=1`, when it fails. `HARNESS_CHROMIUM` names the binary.

mod common;
use common::harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Binaries tried in `PATH` when `HARNESS_CHROMIUM` is not set.
const CHROMIUM_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];
/// How long Chromium may take to load and dump the page: a cold start on a loaded 2-core
/// machine takes a few seconds; past a minute it hangs.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// A history line: scenario `ycsb/c`, phase `run` with `read` and `update`.
fn line(commit: &str, seed: u64, rate: f64, failed: &[&str]) -> String {
    serde_json::json!({
        "schema": 1, "commit": commit, "started_at": format!("2026-01-0{}T10:00:00Z", seed % 9 + 1),
        "scenario": "ycsb/c", "engine": "engine-full", "seed": seed,
        "verdict": if failed.is_empty() { "pass" } else { "fail" }, "failed_checks": failed,
        "engines": [{ "engine": "engine-full", "round_samples": [], "phases": [{
            "name": "run", "threads": 1, "ops": 2000, "duration_s": 1.0, "ops_per_s": rate + 500.0,
            "latency": {
                "read": { "count": rate, "errors": 0, "p50_us": 2.0, "p99_us": 9.0 + seed as f64,
                          "p999_us": 20.0, "max_us": 40.0 },
                "update": { "count": 500.0, "errors": 0, "p50_us": 20.0, "p99_us": 90.0,
                            "p999_us": 200.0, "max_us": 400.0 },
            },
        }]}],
    })
    .to_string()
}

/// Writes a history of four runs over three commits (one failing, one malformed line) and
/// renders it; returns the page.
fn dashboard(dir: &Path) -> anyhow::Result<PathBuf> {
    let lines = [
        line("1111111aaaa", 1, 1000.0, &[]),
        line("1111111aaaa", 2, 1010.0, &[]),
        "{malformed".to_string(),
        line("2222222bbbb", 3, 990.0, &["read_freshness"]),
        line("3333333cccc", 4, 700.0, &[]),
    ];
    let history = dir.join("history.ndjson");
    std::fs::write(&history, lines.join("\n") + "\n")?;
    let out = dir.join("dash");
    let history_arg = history.to_string_lossy().into_owned();
    let out_arg = out.to_string_lossy().into_owned();
    let output = harness(&["dashboard", &history_arg, "--out", &out_arg], dir)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.code() == Some(0), "dashboard: {stderr}");
    anyhow::ensure!(stderr.contains("malformed"), "no warning: {stderr}");
    Ok(out.join("index.html"))
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os("HARNESS_CHROMIUM") {
        return Some(PathBuf::from(named));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| CHROMIUM_NAMES.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// `chromium --headless --dump-dom file://page`: the DOM after the page's scripts ran.
fn dump_dom(chromium: &Path, page: &Path, profile: &Path) -> anyhow::Result<String> {
    let page = page.canonicalize()?;
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", chromium.display()))?;
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > CHROMIUM_TIMEOUT {
            child.kill()?;
            child.wait()?;
            anyhow::bail!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output()?;
    anyhow::ensure!(output.status.success(), "chromium: {}", output.status);
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn the_dashboard_renders_in_headless_chromium() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let page = dashboard(dir.path())?;
    let Some(chromium) = find_chromium() else {
        anyhow::ensure!(
            std::env::var("HARNESS_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "HARNESS_REQUIRE_CHROMIUM=1 but no chromium binary found (tried {CHROMIUM_NAMES:?})"
        );
        println!("SKIPPED: no chromium");
        return Ok(());
    };
    let dom = dump_dom(&chromium, &page, &dir.path().join("profile"))?;
    // The inline script ran to its end: it adds this element and un-hides the filter.
    anyhow::ensure!(
        dom.contains("id=\"dashboard-ready\""),
        "script did not run:\n{dom}"
    );
    anyhow::ensure!(
        dom.contains("4 runs, 5 series in the data; 5 charts and 5 movers rows"),
        "the script's counts differ:\n{dom}"
    );
    anyhow::ensure!(dom.contains("<svg"), "no chart");
    // The biggest mover first: read ops/s fell from a median of 1000 to 700 (-30%).
    let movers = dom.find("id=\"movers\"").context("no movers table")?;
    let first_row = dom[movers..].find("<tbody><tr").context("no movers row")?;
    let row = &dom[movers + first_row..];
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    anyhow::ensure!(
        row.contains("read · ops/s") && row.contains("-30.0%"),
        "{row}"
    );
    anyhow::ensure!(dom.contains("harness run ycsb/c --seed 3 --engine engine-full"));
    anyhow::ensure!(dom.contains("data-count=\"1\""), "malformed count missing");
    println!(
        "chromium rendered the dashboard ({} bytes of DOM)",
        dom.len()
    );
    Ok(())
}

#[test]
fn an_empty_history_exits_2() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let history = dir.path().join("empty.ndjson");
    std::fs::write(&history, "{not json\n\n")?;
    let history_arg = history.to_string_lossy().into_owned();
    let output = harness(&["dashboard", &history_arg, "--out", "dash"], dir.path())?;
    anyhow::ensure!(output.status.code() == Some(2), "{output:?}");
    anyhow::ensure!(
        !dir.path().join("dash").exists(),
        "wrote a page for nothing"
    );
    let missing = harness(&["dashboard", "nope.ndjson", "--out", "dash"], dir.path())?;
    anyhow::ensure!(missing.status.code() == Some(2), "{missing:?}");
    Ok(())
}
