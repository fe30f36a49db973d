//! The harness as the judge of engine mutants (`scripts/mutants.sh`, cargo-mutants): a fixed
//! set of crash and fault scenarios, each run through the `harness` binary as a user runs
//! it, stopping at the first that fails. A mutant of the engine that survives this test is
//! one no scenario saw; the engine's own unit tests play no part.
//!
//! Ignored by default: it takes minutes, and its subject is the engine under mutation, not
//! the harness. Run it alone with
//! `cargo test -p harness --test mutant_scenarios -- --ignored`.

use std::process::Command;

use anyhow::{bail, Context as _, Result};

/// (scenario, seed, overrides): the crash and fault scenarios, each cut to a few seconds.
/// Seeds are fixed so a mutant's verdict is reproducible.
const SCENARIOS: &[(&str, u64, &[&str])] = &[
    ("faults/power-loss-sqlite", 1, &[]),
    ("faults/power-loss-fdb", 1, &[]),
    ("faults/power-loss-churn", 1, &[]),
    ("faults/power-loss-checkpoint", 1, &[]),
    ("faults/power-loss-free-list", 1, &[]),
    ("faults/power-loss-normal", 1, &[]),
    ("faults/off-mode-power-loss", 1, &[]),
    (
        "faults/power-loss-concurrent",
        1,
        &["--set", "faults.power_loss.cycles=20"],
    ),
    ("faults/torn-write-wal-tail", 1, &[]),
    ("faults/bitflip", 1, &[]),
    ("faults/enospc", 1, &[]),
    ("faults/eio-fsync", 1, &[]),
    ("faults/read-errors", 1, &[]),
    ("faults/fail-at-n", 1, &[]),
    ("crash/smoke", 1, &[]),
];

#[test]
#[ignore = "minutes long; the judge of engine mutants (scripts/mutants.sh)"]
fn every_crash_and_fault_scenario_passes() -> Result<()> {
    let out = tempfile::tempdir()?;
    for (i, (scenario, seed, sets)) in SCENARIOS.iter().enumerate() {
        let dir = out.path().join(format!("run-{i}"));
        let o = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args([
                "run",
                scenario,
                "--seed",
                &seed.to_string(),
                "--no-progress",
            ])
            .args(*sets)
            .arg("--out")
            .arg(&dir)
            .output()
            .with_context(|| format!("running {scenario}"))?;
        if !o.status.success() {
            let text = String::from_utf8_lossy(&o.stdout);
            let failed: Vec<&str> = text.lines().filter(|l| l.contains("FAILED")).collect();
            bail!(
                "{scenario} --seed {seed} {}: exit {:?}: {}",
                sets.join(" "),
                o.status.code(),
                failed.join(" | ")
            );
        }
    }
    Ok(())
}
