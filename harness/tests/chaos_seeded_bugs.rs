//! Proof that the chaos checkers can fail: for each seeded engine bug, the matching in-process
//! chaos scenario reports a failure of the right check, while the correct engine passes the
//! same scenario with the same seeds.
//!
//! Run: `cargo test -p harness --features seeded-bugs --test chaos_seeded_bugs`.
#![cfg(feature = "seeded-bugs")]

use anyhow::{bail, ensure, Result};
use engine::SeededBug;
use harness::chaos::inproc::Ctx;
use harness::chaos::{run_in_process, ChaosOutcome, FaultsSection};

/// Seeds tried per bug before giving up: every bug is caught on the first few.
const SEEDS_MAX: u64 = 6;

struct Case {
    bug: SeededBug,
    /// The `[faults]` table of the scenario.
    faults: &'static str,
    keys_n: u64,
    commits: u64,
    /// The checks the bug may fail. The first is the one the test names: some seed must fail
    /// it, and no seed may fail a check outside the list (an unlisted failure is a blind
    /// spot or a false alarm, never a catch).
    failing: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            bug: SeededBug::SkipCommitFsync,
            faults: "[power_loss]\ncycles = 4\npresets = [\"drop_all\"]\n",
            keys_n: 200,
            commits: 30,
            failing: &["durability", "no_hole_prefix"],
        },
        Case {
            bug: SeededBug::AcceptBadFrameChecksum,
            faults: "wal_checkpoint_bytes = 67108864\n[power_loss]\ncycles = 12\npresets = [\"fdb\"]\ntorn_tail = true\nmodel = { granularity = \"sector\", written = 0.7, omitted = 0.0, garbage = 0.3, garbage_source = \"random\", dir_op_lost = 0.0 }\n",
            keys_n: 200,
            commits: 30,
            failing: &["checksum_detection", "durability", "integrity_after_recovery"],
        },
        Case {
            bug: SeededBug::CommitRecordFirst,
            faults: "durability = \"off\"\naccounts = 64\n[power_loss]\ncycles = 6\npresets = [\"keep_all\", \"fdb\"]\n",
            keys_n: 200,
            commits: 30,
            // The torn transaction is recovered in part. Its first frame is usually the meta
            // page (most transactions allocate), so what breaks is the page accounting
            // (integrity: on every one of seeds 1-6); a transfer split across pages may break
            // the bank total (atomicity) beside it.
            failing: &["integrity_after_recovery", "atomicity"],
        },
        Case {
            bug: SeededBug::DropPageAtCheckpoint,
            faults: "checkpoint_every = 5\nread_per_mille = 0\n[power_loss]\ncycles = 3\npresets = [\"keep_all\"]\n",
            keys_n: 400,
            commits: 40,
            // The lost page shows as a stale or missing page: the engine reports corruption
            // on read and the integrity check finds the damage; stale values fail durability.
            // A lost page loses early commits while later ones survive: a hole (no_hole_prefix).
            failing: &[
                "durability",
                "checksum_detection",
                "integrity_after_recovery",
                "no_hole_prefix",
            ],
        },
        Case {
            bug: SeededBug::KeepRolledBackPagesInCache,
            faults: "checkpoint_every = 5\nrollback_per_mille = 300\nread_per_mille = 1000\n[power_loss]\ncycles = 2\npresets = [\"keep_all\"]\n",
            keys_n: 400,
            commits: 60,
            // Later commits build on the rolled-back pages the cache kept, so a recovery may
            // show them too (durability, integrity).
            failing: &["verified_reads", "durability", "integrity_after_recovery"],
        },
        Case {
            bug: SeededBug::LoseLastKeyOfSplit,
            faults: "read_per_mille = 1000\n[power_loss]\ncycles = 2\npresets = [\"keep_all\"]\n",
            keys_n: 3000,
            commits: 300,
            failing: &["verified_reads", "durability", "integrity_after_recovery"],
        },
        Case {
            bug: SeededBug::NormalWindowTenfold,
            faults: "durability = \"normal\"\n[power_loss]\ncycles = 12\npresets = [\"sqlite\"]\n",
            keys_n: 200,
            commits: 60,
            failing: &["normal_mode_window"],
        },
        Case {
            bug: SeededBug::NormalFlusherNeverSyncs,
            faults: "durability = \"normal\"\n[power_loss]\ncycles = 8\npresets = [\"sqlite\"]\nidle_every = 2\n",
            keys_n: 200,
            commits: 4,
            failing: &["normal_mode_window"],
        },
        Case {
            bug: SeededBug::CorruptWalReadAsTornTail,
            faults: "checkpoint_every = 10\n[corruption]\nepisodes = 6\nbit_flips = 16\n",
            keys_n: 2000,
            commits: 80,
            failing: &["checksum_detection"],
        },
        Case {
            bug: SeededBug::WalResetBeforeMainSync,
            faults: "[power_loss]\ncycles = 24\npresets = [\"sqlite\", \"fdb\"]\ncrash_in_checkpoint_every = 1\n",
            keys_n: 2000,
            commits: 40,
            // The main file misses the checkpointed commits: the prefix ends before the
            // durable commits (no_hole_prefix) and the pages they freed leak.
            failing: &[
                "durability",
                "integrity_after_recovery",
                "checksum_detection",
                "no_hole_prefix",
            ],
        },
        Case {
            bug: SeededBug::LoseLastKeyOfMerge,
            faults: "checkpoint_every = 7\ndelete_per_mille = 300\nscan_per_mille = 300\nread_per_mille = 300\nvalue_bytes_max = 49152\n[power_loss]\ncycles = 24\npresets = [\"sqlite\"]\n",
            keys_n: 1000,
            commits: 40,
            failing: &["durability", "verified_scans", "verified_reads", "integrity_after_recovery"],
        },
        Case {
            bug: SeededBug::ReadErrorAsAbsent,
            faults: "accounts = 32\ncheckpoint_every = 9\n[storage]\neio_read = { probability = 0.002 }\nlatent = [{ file = \"db\", offset = 20480, len = 4096 }]\n[power_loss]\ncycles = 20\npresets = [\"sqlite\"]\n",
            keys_n: 2000,
            commits: 60,
            failing: &["atomicity", "verified_reads", "durability"],
        },
        Case {
            bug: SeededBug::GroupCommitEarlyAck,
            faults: "writers = 4\n[storage]\nsync_delay_us = 300\n[power_loss]\ncycles = 8\npresets = [\"drop_all\"]\n",
            keys_n: 500,
            commits: 40,
            failing: &["concurrent_writers", "durability", "no_hole_prefix"],
        },
        Case {
            bug: SeededBug::FreeListEntryReused,
            faults: "checkpoint_every = 7\ndelete_per_mille = 300\nvalue_bytes_max = 49152\n[power_loss]\ncycles = 6\npresets = [\"sqlite\"]\n",
            keys_n: 1000,
            commits: 40,
            failing: &["integrity_after_recovery", "checksum_detection", "durability"],
        },
        Case {
            bug: SeededBug::SnapshotReadsLatest,
            faults: "accounts = 64\nwriters = 4\n[power_loss]\ncycles = 8\npresets = [\"drop_all\"]\n",
            keys_n: 500,
            commits: 60,
            failing: &["atomicity"],
        },
        Case {
            bug: SeededBug::FsyncErrorNotPoisoned,
            faults: "[eio]\nkinds = [\"sync_once\", \"sync_persistent\"]\n",
            keys_n: 500,
            commits: 40,
            failing: &["fsync_error_poisons"],
        },
        Case {
            bug: SeededBug::ScanSkipsLeafStart,
            faults: "scan_per_mille = 300\n[power_loss]\ncycles = 4\npresets = [\"sqlite\"]\n",
            keys_n: 1000,
            commits: 60,
            failing: &["verified_scans"],
        },
        Case {
            bug: SeededBug::FreedPageLeaked,
            faults: "delete_per_mille = 300\nvalue_bytes_max = 49152\n[power_loss]\ncycles = 3\npresets = [\"sqlite\"]\n",
            keys_n: 1000,
            commits: 40,
            failing: &["integrity_after_recovery"],
        },
        Case {
            bug: SeededBug::DiskFullPoisons,
            faults: "[enospc]\nepisodes = 2\n",
            keys_n: 500,
            commits: 40,
            failing: &["disk_full_recovery"],
        },
        Case {
            bug: SeededBug::SkipInvalidWalTxn,
            faults: "durability = \"off\"\nsync_every = 25\n[power_loss]\ncycles = 30\npresets = [\"drop_all\", \"fdb\", \"sqlite\"]\n",
            keys_n: 2000,
            commits: 60,
            // A kept commit after a skipped one hides the skipped one's writes; a skipped
            // leaf split breaks the tree as well, and a child page past the end of the file
            // is reported as corruption with nothing damaged at rest (checksum_detection).
            failing: &[
                "no_hole_prefix",
                "integrity_after_recovery",
                "durability",
                "checksum_detection",
            ],
        },
        Case {
            bug: SeededBug::CheckpointPastReader,
            faults: "checkpoint_every = 7\nlong_reader_every = 20\nlong_reader_commits = 30\nwal_checkpoint_bytes = 262144\n[power_loss]\ncycles = 6\npresets = [\"sqlite\"]\n",
            keys_n: 1000,
            commits: 120,
            failing: &["verified_reads", "checksum_detection", "durability", "integrity_after_recovery"],
        },
        Case {
            bug: SeededBug::DeleteKeepsInsertHint,
            faults: "delete_put_every = 5\nvalue_bytes_max = 8192\n[power_loss]\ncycles = 6\npresets = [\"sqlite\"]\n",
            keys_n: 1000,
            commits: 60,
            failing: &["durability", "verified_reads", "integrity_after_recovery", "checksum_detection"],
        },
        Case {
            bug: SeededBug::SkipDirSyncOnCreate,
            // Every unsynced creation undone at each power loss: the in-process layer's
            // directory model at its harshest.
            faults: "[power_loss]\ncycles = 4\npresets = [\"drop_all\"]\nmodel = { granularity = \"sector\", written = 0.0, omitted = 1.0, garbage = 0.0, garbage_source = \"random\", dir_op_lost = 1.0 }\n",
            keys_n: 200,
            commits: 30,
            failing: &["durability"],
        },
    ]
}

fn run(case: &Case, seed: u64, bug: Option<SeededBug>) -> Result<ChaosOutcome> {
    let mut spec: FaultsSection = toml::from_str(case.faults)?;
    spec.seeded_bug = bug.map(|b| b.name().to_string());
    spec.validate().map_err(anyhow::Error::msg)?;
    let ctx = Ctx {
        spec: spec.clone(),
        seed,
        keys_n: case.keys_n,
        value_bytes: 100,
        commits: case.commits,
    };
    run_in_process(&ctx, &spec)
}

fn failed(out: &ChaosOutcome) -> Vec<String> {
    out.tally
        .to_checks("x")
        .into_iter()
        .filter(|c| !c.passed)
        // Never exercised because the bug's failure came first: not a detection.
        .filter(|c| !c.detail.contains(harness::chaos::NOT_REACHED))
        .map(|c| c.name)
        .collect()
}

fn prove(case: &Case) -> Result<()> {
    let mut seen = Vec::new();
    for seed in 1..=SEEDS_MAX {
        let correct = run(case, seed, None)?;
        let correct_failed = failed(&correct);
        ensure!(
            correct_failed.is_empty(),
            "{:?} seed {seed}: the correct engine failed {correct_failed:?}: {:?}",
            case.bug,
            correct.tally.to_checks("correct")
        );
        let buggy = run(case, seed, Some(case.bug))?;
        let buggy_failed = failed(&buggy);
        let unlisted: Vec<&String> = buggy_failed
            .iter()
            .filter(|f| !case.failing.contains(&f.as_str()))
            .collect();
        ensure!(
            unlisted.is_empty(),
            "{:?} seed {seed}: failed {unlisted:?}, outside {:?}: {:?}",
            case.bug,
            case.failing,
            buggy.tally.to_checks("buggy")
        );
        if buggy_failed.iter().any(|f| f == case.failing[0]) {
            println!(
                "{:?}: caught on seed {seed}: failed {buggy_failed:?}",
                case.bug
            );
            return Ok(());
        }
        seen.push((seed, buggy_failed));
    }
    bail!(
        "{:?}: none of {SEEDS_MAX} seeds failed {}; failed per seed: {seen:?}",
        case.bug,
        case.failing[0]
    )
}

#[test]
fn skip_commit_fsync_fails_durability_under_power_loss() -> Result<()> {
    prove(&cases()[0])
}

#[test]
fn accept_bad_frame_checksum_fails_checksum_detection_on_a_torn_wal_tail() -> Result<()> {
    prove(&cases()[1])
}

#[test]
fn commit_record_first_fails_integrity_after_a_torn_transaction() -> Result<()> {
    prove(&cases()[2])
}

#[test]
fn drop_page_at_checkpoint_fails_durability_after_reopen() -> Result<()> {
    prove(&cases()[3])
}

#[test]
fn keep_rolled_back_pages_fails_verified_reads() -> Result<()> {
    prove(&cases()[4])
}

#[test]
fn lose_last_key_of_split_fails_verified_reads_of_inserts() -> Result<()> {
    prove(&cases()[5])
}

#[test]
fn normal_window_tenfold_fails_the_normal_mode_window() -> Result<()> {
    prove(&cases()[6])
}

#[test]
fn normal_flusher_never_syncing_fails_the_normal_mode_window_after_idling() -> Result<()> {
    prove(&cases()[7])
}

#[test]
fn corrupt_wal_read_as_torn_tail_fails_checksum_detection_on_live_wal_flips() -> Result<()> {
    prove(&cases()[8])
}

#[test]
fn wal_reset_before_main_sync_fails_durability_when_power_is_lost_inside_a_checkpoint() -> Result<()>
{
    prove(&cases()[9])
}

#[test]
fn lose_last_key_of_merge_fails_durability_under_deletes() -> Result<()> {
    prove(&cases()[10])
}

#[test]
fn read_error_as_absent_fails_reads_under_read_faults() -> Result<()> {
    prove(&cases()[11])
}

#[test]
fn group_commit_early_ack_fails_concurrent_writers_under_power_loss() -> Result<()> {
    prove(&cases()[12])
}

#[test]
fn free_list_entry_reused_fails_integrity_under_deletes() -> Result<()> {
    prove(&cases()[13])
}

#[test]
fn snapshot_reads_latest_fails_atomicity_of_a_live_bank_read() -> Result<()> {
    prove(&cases()[14])
}

#[test]
fn fsync_error_not_poisoned_fails_fsync_error_poisons() -> Result<()> {
    prove(&cases()[15])
}

#[test]
fn scan_skips_leaf_start_fails_verified_scans() -> Result<()> {
    prove(&cases()[16])
}

#[test]
fn freed_page_leaked_fails_integrity() -> Result<()> {
    prove(&cases()[17])
}

#[test]
fn disk_full_poisons_fails_disk_full_recovery() -> Result<()> {
    prove(&cases()[18])
}

#[test]
fn skip_invalid_wal_txn_fails_no_hole_prefix_in_off_mode() -> Result<()> {
    prove(&cases()[19])
}

#[test]
fn checkpoint_past_reader_fails_reads_of_a_held_snapshot() -> Result<()> {
    prove(&cases()[20])
}

#[test]
fn delete_keeps_insert_hint_fails_durability_of_delete_then_put() -> Result<()> {
    prove(&cases()[21])
}

#[test]
fn skip_dir_sync_on_create_in_process() -> Result<()> {
    prove(&cases()[22])
}

#[test]
fn every_seeded_bug_has_a_case() -> Result<()> {
    let covered: Vec<SeededBug> = cases().iter().map(|c| c.bug).collect();
    for bug in SeededBug::ALL {
        ensure!(covered.contains(&bug), "{bug:?} has no chaos case");
    }
    Ok(())
}
