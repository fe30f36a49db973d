//! Replays every seed in `seed_regressions.txt`: seeds that once failed a chaos or fault
//! scenario must pass now. Each runs as `harness run SCENARIO --seed S`, exactly the command
//! a sweep prints, and its report must pass with every check observed.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context as _};

/// Seeds the list may hold: each replay takes a second or two in a debug build.
const REGRESSIONS_MAX: usize = 200;

fn regressions() -> anyhow::Result<Vec<(String, u64)>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seed_regressions.txt");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(scenario), Some(seed), None) = (parts.next(), parts.next(), parts.next()) else {
            bail!("line {}: expected `scenario seed`", n + 1);
        };
        out.push((scenario.to_string(), seed.parse()?));
    }
    anyhow::ensure!(
        !out.is_empty() && out.len() <= REGRESSIONS_MAX,
        "{} regressions: expected 1..={REGRESSIONS_MAX}",
        out.len()
    );
    Ok(out)
}

/// `harness run SCENARIO --seed S` under `dir`; `None` when it passed, else why not.
fn replay(dir: &Path, scenario: &str, seed: u64) -> anyhow::Result<Option<String>> {
    let out_dir = dir.join(format!("{}-{seed}", scenario.replace('/', "-")));
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            scenario,
            "--seed",
            &seed.to_string(),
            "--no-progress",
        ])
        .arg("--out")
        .arg(&out_dir)
        .current_dir(dir)
        .output()?;
    let report = std::fs::read_to_string(out_dir.join("report.json")).unwrap_or_default();
    if out.status.code() == Some(0) && report.contains("\"verdict\": \"pass\"") {
        return Ok(None);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Ok(Some(format!(
        "harness run {scenario} --seed {seed}: {stderr}"
    )))
}

#[test]
fn every_seed_that_once_failed_passes() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let list = regressions()?;
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some((scenario, seed)) = list.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let why = replay(tmp.path(), scenario, *seed)
                        .unwrap_or_else(|e| Some(format!("{scenario} {seed}: {e:#}")));
                    if let (Some(why), Ok(mut f)) = (why, failed.lock()) {
                        f.push(why);
                    }
                }
            });
        }
    });
    let failed = failed
        .into_inner()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    Ok(())
}
