//! Checks that judge whether a fault reached what it was aimed at must fail, alone, when it
//! did not: each case below is a `[faults]` table that starves exactly one such check (the
//! engine is correct, so every other check passes). A blind check would pass these runs.

use anyhow::{ensure, Result};
use harness::chaos::inproc::Ctx;
use harness::chaos::{run_in_process, FaultsSection};

struct Case {
    /// The `[faults]` table.
    faults: &'static str,
    /// The one check that must fail.
    check: &'static str,
    /// Words its failure detail must contain.
    detail: &'static str,
}

fn prove(case: &Case) -> Result<()> {
    let spec: FaultsSection = toml::from_str(case.faults)?;
    spec.validate().map_err(anyhow::Error::msg)?;
    let ctx = Ctx {
        spec: spec.clone(),
        seed: 5,
        keys_n: 300,
        value_bytes: 100,
        commits: 20,
    };
    let out = run_in_process(&ctx, &spec)?;
    let checks = out.tally.to_checks("t");
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    ensure!(
        failed == [case.check],
        "failed {failed:?}, wanted only {}: {checks:?}",
        case.check
    );
    let detail = checks
        .iter()
        .find(|c| c.name == case.check)
        .map(|c| c.detail.clone())
        .unwrap_or_default();
    ensure!(detail.contains(case.detail), "{}: {detail}", case.check);
    Ok(())
}

#[test]
fn crashes_aimed_at_empty_checkpoints_fail_crashes_inside_checkpoints() -> Result<()> {
    // A checkpoint after every commit leaves the aimed one nothing to copy: no I/O to land on.
    prove(&Case {
        faults: "checkpoint_every = 1\n[power_loss]\ncycles = 4\npresets = [\"drop_all\"]\n\
                 crash_in_checkpoint_every = 1\n",
        check: "crashes_inside_checkpoints",
        detail: "none of 4 power losses aimed at a checkpoint landed",
    })
}

#[test]
fn off_mode_synced_after_every_commit_fails_off_mode_loss_expected() -> Result<()> {
    // Off mode with a sync after each commit can lose nothing: the loss model went untested.
    prove(&Case {
        faults: "durability = \"off\"\nsync_every = 1\n[power_loss]\ncycles = 4\n\
                 presets = [\"drop_all\"]\n",
        check: "off_mode_loss_expected",
        detail: "no acknowledged write lost over 4 power losses",
    })
}

#[test]
fn latent_errors_past_the_end_of_the_file_fail_read_faults_fired() -> Result<()> {
    // A bad sector far past the end of every file is never read.
    prove(&Case {
        faults: "[storage]\nlatent = [{ file = \"db\", offset = 1099511627776, len = 4096 }]\n\
                 [power_loss]\ncycles = 3\npresets = [\"sqlite\"]\n",
        check: "read_faults_fired",
        detail: "no planned read error or latent sector fired",
    })
}

#[test]
fn an_eio_on_reads_the_cache_absorbs_fails_eio_fault_fired() -> Result<()> {
    // The first read after open is a cache hit or the meta page, never the workload's: with
    // a write-only episode that reads nothing, `read_once` has nothing to fire on.
    prove(&Case {
        faults: "read_per_mille = 0\ncache_bytes = 67108864\n[eio]\nkinds = [\"read_once\"]\n",
        check: "eio_fault_fired",
        detail: "the fault never fired",
    })
}

#[test]
fn a_fail_at_n_bound_below_the_workload_fails_fail_at_n_completes() -> Result<()> {
    // Three I/Os cannot hold a whole workload: no run gets through without its fault.
    prove(&Case {
        faults: "[fail_at_n]\nn_max = 3\n",
        check: "fail_at_n_completes",
        detail: "still faulting at N = 3",
    })
}

#[test]
fn a_recovery_bound_of_nothing_fails_recovery_time_bound() -> Result<()> {
    // No reopen takes zero time: the bound check must say so (the other checks still pass).
    prove(&Case {
        faults: "recovery_bound_base_ms = 0\nrecovery_bound_ms_per_64mib = 0\n[power_loss]\n\
                 cycles = 3\npresets = [\"sqlite\"]\n",
        check: "recovery_time_bound",
        detail: "bound 0.0 ms",
    })
}

#[test]
fn bulk_deletes_of_small_values_fail_free_list_beyond_one_trunk() -> Result<()> {
    // 300 keys of 100 bytes: a bulk delete frees a few pages, never a second trunk's worth.
    prove(&Case {
        faults: "bulk_delete_every = 5\n[power_loss]\ncycles = 3\npresets = [\"sqlite\"]\n",
        check: "free_list_beyond_one_trunk",
        detail: "bulk deletes never grew the free list to two trunk pages",
    })
}

#[test]
fn reads_configured_but_never_reached_fail_verified_reads() -> Result<()> {
    // One verified read per 1000 commits, and 20 commits: no read is ever drawn. The check
    // the scenario implies is in the report, failed, not absent.
    prove(&Case {
        faults: "read_per_mille = 1\n[power_loss]\ncycles = 2\npresets = [\"keep_all\"]\n",
        check: "verified_reads",
        detail: "observed nothing",
    })
}
