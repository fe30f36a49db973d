//! Replays every shrunk case in `harness/tests/shrunk/` (written by `harness shrink`): each
//! file is a scenario with its `seed` key, and its `# expect-check:` line names the check
//! that must fail, with a failed observation (a check that observed nothing does not count).
//!
//! A case that names `faults.seeded_bug` needs the engine's defects:
//! `cargo test -p harness --features seeded-bugs --test shrunk_replay`. Without the feature
//! those cases are skipped. A case without a seeded bug is a regression seed of today's
//! engine, so only cases that fail because of a seeded bug are committed.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context as _, Result};
use harness::shrink::{expected_check, trial, Sets};

fn cases() -> Result<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("shrunk");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Replays one file; false when it was skipped (a seeded bug without the feature).
fn replay(file: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(file)?;
    let check = expected_check(&text).context("no `# expect-check:` line")?;
    let scenario = harness::scenario::load(file, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seed = scenario.seed.context("no `seed` key")?;
    let bug = scenario.faults.as_ref().and_then(|f| f.seeded_bug.clone());
    if bug.is_some() && !cfg!(feature = "seeded-bugs") {
        eprintln!("skipped {} (needs --features seeded-bugs)", file.display());
        return Ok(false);
    }
    let scratch = tempfile::tempdir()?;
    let name = file.display().to_string();
    let ran = trial(&name, file, seed, &Sets::default(), scratch.path())?;
    ensure!(
        ran.failed.contains(&check),
        "{name} seed {seed}: expected {check} to fail, failed {:?} (observed nothing: {:?})",
        ran.failed,
        ran.blind
    );
    Ok(true)
}

#[test]
#[cfg_attr(
    not(feature = "seeded-bugs"),
    ignore = "the shrunk cases name seeded bugs: run with --features seeded-bugs"
)]
fn every_shrunk_case_still_fails_its_check() -> Result<()> {
    let files = cases()?;
    ensure!(!files.is_empty(), "no shrunk case in harness/tests/shrunk/");
    let mut replayed = 0;
    for file in &files {
        if replay(file).with_context(|| file.display().to_string())? {
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} of {} shrunk cases", files.len());
    // Under the feature nothing may be skipped: a replay that ran nothing cannot pass.
    ensure!(
        replayed == files.len(),
        "replayed {replayed} of {} shrunk cases",
        files.len()
    );
    Ok(())
}
