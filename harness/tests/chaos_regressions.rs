//! Engine bugs found by the chaos runs, each as a minimal failing test (the lead fixes the
//! engine; these turn green then).
//!
//! Both come from one crash window: a power loss (or a failed fsync followed by a restart)
//! inside a checkpoint. A correct engine reopens every such crash image with every commit.

use std::sync::Arc;

use anyhow::{anyhow, ensure, Result};
use engine::{Database, MemStorage, Options};
use harness::faults::{
    CrashModel, CrashPreset, CrashSpec, FaultPlan, FaultStorage, GarbageSource, Granularity,
};

/// Commits before the checkpoint.
const COMMITS: u64 = 5;
/// I/O operations searched after the checkpoint starts: it syncs, writes a few runs of pages,
/// syncs the main file, rewrites the WAL header and syncs the WAL.
const CHECKPOINT_OPS_MAX: u64 = 16;

fn opts() -> Options {
    Options {
        salt_seed: Some(7),
        ..Options::default()
    }
}

fn workload(db: &Database) -> Result<()> {
    for i in 0..COMMITS {
        let mut tx = db.begin_write()?;
        let t = tx.open_or_create_table("kv")?;
        tx.put(&t, format!("key{i}").as_bytes(), &[i as u8; 100])?;
        tx.commit()?;
    }
    Ok(())
}

/// I/O operations before `Database::checkpoint` starts, on an identical run.
fn ops_before_checkpoint() -> Result<u64> {
    let plan = FaultPlan {
        track_durability: false,
        ..FaultPlan::default()
    };
    let fs = FaultStorage::new(Arc::new(MemStorage::new()), plan, 1);
    let db = Database::open_with(Arc::new(fs.clone()), "db", opts())?;
    workload(&db)?;
    Ok(fs.ops_total())
}

/// Crashes at each I/O of a checkpoint with `model`; returns what went wrong on reopen.
fn crash_inside_checkpoint(model: &CrashModel) -> Result<Vec<String>> {
    let base = ops_before_checkpoint()?;
    let mut problems = Vec::new();
    for at in base + 1..=base + CHECKPOINT_OPS_MAX {
        let plan = FaultPlan {
            crash_at_op: Some(at),
            crash: CrashSpec::Model(model.clone()),
            ..FaultPlan::default()
        };
        let fs = FaultStorage::new(Arc::new(MemStorage::new()), plan, 1);
        let db = Database::open_with(Arc::new(fs.clone()), "db", opts())?;
        workload(&db)?;
        let _ = db.checkpoint();
        drop(db);
        let Some(image) = fs.crash_image() else {
            continue;
        };
        match Database::open_with(Arc::new(image), "db", opts()) {
            Ok(db) => {
                let r = db.begin_read()?;
                let t = r.table("kv")?;
                let n = (0..COMMITS)
                    .filter(|i| {
                        r.get(&t, format!("key{i}").as_bytes())
                            .ok()
                            .flatten()
                            .is_some()
                    })
                    .count();
                if n as u64 != COMMITS {
                    problems.push(format!(
                        "crash at I/O {} of the checkpoint: {n} of {COMMITS} commits",
                        at - base
                    ));
                }
            }
            Err(e) => problems.push(format!(
                "crash at I/O {} of the checkpoint: reopen failed: {e}",
                at - base
            )),
        }
    }
    Ok(problems)
}

/// Bug A (engine/src/checkpoint.rs `checkpoint_locked` step 2 writes the meta page in place;
/// engine/src/db.rs `read_meta` then fails): a power loss after the checkpoint wrote page 0
/// and before the main file's fsync tears page 0 (unsynced writes may become garbage: the
/// FoundationDB and TigerBeetle models), and the database no longer opens ("corruption in
/// database header: no valid page size"), although the WAL still holds every commit.
#[test]
fn torn_meta_page_write_in_a_checkpoint_leaves_the_database_openable() -> Result<()> {
    let garbage = CrashModel {
        granularity: Granularity::Write,
        written: 0.0,
        omitted: 0.0,
        garbage: 1.0,
        garbage_source: GarbageSource::Content,
        dir_op_lost: 0.0,
        whole_sector_garbage: false,
    };
    let problems = crash_inside_checkpoint(&garbage)?;
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Bug B (engine/src/wal.rs `recover` with `min_txn` = the meta page's last txn id, and
/// `check_tail`): after checkpoint step 3 (main file synced, meta page says last txn = N and
/// checkpointed salt = the WAL's salt) and before step 4 rewrites the WAL header, a crash or a
/// restart finds the old generation's frames with txn ids <= N. Recovery rejects frame 0 as
/// invalid, finds later frames vouching for it (`synced_upto`) and fails with
/// "corruption in WAL frame 0 ... frame k was written after it was synced", so the database
/// does not open. Frames of a generation whose salt equals the meta page's checkpointed salt
/// are already in the main file and should be skipped.
#[test]
fn crash_between_main_sync_and_wal_reset_leaves_the_database_openable() -> Result<()> {
    let problems = crash_inside_checkpoint(&CrashPreset::KeepAll.model())?;
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Bug B reached without a power loss: the main file's fsync fails in a checkpoint (SQLite's
/// fail-at-N finds it), the database poisons itself as it should, and the restart on the same
/// bytes fails with corruption.
#[test]
fn failed_main_fsync_in_a_checkpoint_then_restart_opens() -> Result<()> {
    let base = ops_before_checkpoint()?;
    let mut problems = Vec::new();
    for at in base + 1..=base + CHECKPOINT_OPS_MAX {
        let mem = MemStorage::new();
        let plan = FaultPlan {
            fail_at: Some(harness::faults::FailAt {
                op: at,
                persistent: false,
            }),
            ..FaultPlan::default()
        };
        let fs = FaultStorage::new(Arc::new(mem.clone()), plan, 1);
        let db = Database::open_with(Arc::new(fs), "db", opts())?;
        workload(&db)?;
        let _ = db.checkpoint();
        drop(db);
        if let Err(e) = Database::open_with(Arc::new(mem), "db", opts()) {
            problems.push(format!(
                "I/O {} of the checkpoint failed, restart: {e}",
                at - base
            ));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn regression_harness_sees_checkpoints() -> Result<()> {
    // The searches above only mean something if the checkpoint does I/O inside the window.
    let fs = FaultStorage::new(
        Arc::new(MemStorage::new()),
        FaultPlan {
            track_durability: false,
            ..FaultPlan::default()
        },
        1,
    );
    let db = Database::open_with(Arc::new(fs.clone()), "db", opts())?;
    workload(&db)?;
    let before = fs.ops_total();
    db.checkpoint().map_err(|e| anyhow!("{e}"))?;
    let ops = fs.ops_total() - before;
    ensure!(
        (3..=CHECKPOINT_OPS_MAX).contains(&ops),
        "checkpoint took {ops} I/Os"
    );
    Ok(())
}
