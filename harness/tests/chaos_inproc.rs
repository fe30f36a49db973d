//! In-process chaos on the correct engine: every fault section passes, and a run replays
//! identically from its seed.

use anyhow::{ensure, Context as _, Result};
use harness::chaos::inproc::Ctx;
use harness::chaos::{run_in_process, ChaosOutcome, FaultsSection};

/// Parses a `[faults]` table body.
fn faults(toml_text: &str) -> Result<FaultsSection> {
    let f: FaultsSection = toml::from_str(toml_text)?;
    f.validate().map_err(anyhow::Error::msg)?;
    Ok(f)
}

fn ctx(spec: &FaultsSection, seed: u64, keys_n: u64, commits: u64) -> Ctx {
    Ctx {
        spec: spec.clone(),
        seed,
        keys_n,
        value_bytes: 100,
        commits,
    }
}

fn all_pass(out: &ChaosOutcome, what: &str) -> Result<()> {
    let checks = out.tally.to_checks(what);
    ensure!(!checks.is_empty(), "{what}: no checks ran");
    for c in &checks {
        ensure!(c.passed, "{what}: {} failed: {}", c.name, c.detail);
    }
    Ok(())
}

fn names(out: &ChaosOutcome) -> Vec<String> {
    out.tally
        .to_checks("x")
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn power_loss_between_commits_with_every_preset_passes() -> Result<()> {
    let spec = faults(
        r#"
        accounts = 32
        checkpoint_every = 7
        [power_loss]
        cycles = 10
        presets = ["sqlite", "fdb", "tigerbeetle", "drop_all", "keep_all"]
        "#,
    )?;
    for seed in [1, 2, 3] {
        let out = run_in_process(&ctx(&spec, seed, 300, 40), &spec)?;
        all_pass(&out, &format!("power loss seed {seed}"))?;
        ensure!(out.cycles.len() == 10, "cycles: {}", out.cycles.len());
        let n = names(&out);
        for want in [
            "durability",
            "no_hole_prefix",
            "atomicity",
            "integrity_after_recovery",
            "recovery_time_bound",
        ] {
            ensure!(
                n.iter().any(|x| x == want),
                "seed {seed}: check {want} missing in {n:?}"
            );
        }
        ensure!(
            out.schedule.iter().any(|e| e.kind == "crash"),
            "no crash in the schedule"
        );
    }
    Ok(())
}

#[test]
fn torn_tails_and_crashes_in_recovery_pass() -> Result<()> {
    let spec = faults(
        r#"
        accounts = 32
        checkpoint_every = 7
        [power_loss]
        cycles = 12
        presets = ["sqlite", "fdb", "tigerbeetle", "drop_all", "keep_all"]
        crash_in_recovery_every = 3
        torn_tail = true
        "#,
    )?;
    for seed in [1, 2, 3] {
        let out = run_in_process(&ctx(&spec, seed, 300, 40), &spec)?;
        all_pass(&out, &format!("torn tail seed {seed}"))?;
        ensure!(
            out.cycles
                .iter()
                .any(|c| c.kind.contains("crash_in_recovery")),
            "no crash in recovery"
        );
    }
    Ok(())
}

#[test]
fn in_process_runs_replay_identically_from_the_seed() -> Result<()> {
    let spec = faults(
        r#"
        accounts = 16
        [power_loss]
        cycles = 6
        presets = ["fdb", "tigerbeetle"]
        crash_in_recovery_every = 2
        torn_tail = true
        [enospc]
        episodes = 2
        "#,
    )?;
    let a = run_in_process(&ctx(&spec, 77, 200, 30), &spec)?;
    let b = run_in_process(&ctx(&spec, 77, 200, 30), &spec)?;
    ensure!(a.schedule == b.schedule, "schedules differ");
    let verdicts = |o: &ChaosOutcome| -> Vec<(String, bool)> {
        o.tally
            .to_checks("x")
            .into_iter()
            .map(|c| (c.name, c.passed))
            .collect()
    };
    ensure!(verdicts(&a) == verdicts(&b), "verdicts differ");
    let at = |o: &ChaosOutcome| -> Vec<(u64, String)> {
        o.cycles.iter().map(|c| (c.at_op, c.kind.clone())).collect()
    };
    ensure!(at(&a) == at(&b), "cycles differ");
    let c = run_in_process(&ctx(&spec, 78, 200, 30), &spec)?;
    ensure!(
        c.schedule != a.schedule,
        "another seed gave the same schedule"
    );
    Ok(())
}

#[test]
fn corruption_at_rest_surfaces_only_as_corruption() -> Result<()> {
    let spec = faults(
        r#"
        checkpoint_every = 10
        [corruption]
        episodes = 6
        bit_flips = 16
        misdirect_probability = 0.01
        "#,
    )?;
    let out = run_in_process(&ctx(&spec, 5, 300, 60), &spec)?;
    all_pass(&out, "corruption")?;
    ensure!(
        names(&out).iter().any(|n| n == "checksum_detection"),
        "no detection recorded"
    );
    ensure!(
        out.schedule.iter().any(|e| e.kind == "bit_flip"),
        "no bit flip in the schedule"
    );
    Ok(())
}

#[test]
fn enospc_and_eio_pass() -> Result<()> {
    let spec = faults(
        r#"
        [enospc]
        episodes = 2
        [eio]
        kinds = ["sync_once", "sync_persistent", "write_once", "write_persistent", "read_once"]
        "#,
    )?;
    let out = run_in_process(&ctx(&spec, 9, 200, 40), &spec)?;
    all_pass(&out, "enospc/eio")?;
    let n = names(&out);
    for want in ["disk_full_recovery", "fsync_error_poisons", "durability"] {
        ensure!(n.iter().any(|x| x == want), "check {want} missing in {n:?}");
    }
    Ok(())
}

#[test]
fn fail_at_n_runs_to_completion_and_passes() -> Result<()> {
    let spec = faults("[fail_at_n]\nn_max = 3000\n")?;
    let out = run_in_process(&ctx(&spec, 9, 200, 40), &spec)?;
    all_pass(&out, "fail-at-n")?;
    let notes = out.notes.join("\n");
    ensure!(
        notes.contains("persistent=false") && notes.contains("persistent=true"),
        "fail-at-N notes: {notes}"
    );
    ensure!(out.cycles.len() > 20, "only {} reopens", out.cycles.len());
    Ok(())
}

#[test]
fn off_mode_power_loss_is_reported_as_expected_loss() -> Result<()> {
    let spec = faults(
        r#"
        durability = "off"
        sync_every = 25
        [power_loss]
        cycles = 6
        presets = ["drop_all", "fdb"]
        "#,
    )?;
    let out = run_in_process(&ctx(&spec, 11, 200, 60), &spec)?;
    all_pass(&out, "off mode")?;
    let checks = out.tally.to_checks("off");
    let loss = checks
        .iter()
        .find(|c| c.name == "off_mode_loss_expected")
        .context("no off-mode check")?;
    ensure!(
        loss.detail.contains("expected for durability=off"),
        "{}",
        loss.detail
    );
    Ok(())
}
