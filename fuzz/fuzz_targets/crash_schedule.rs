//! Crashes and I/O faults: operations run on the engine over the harness's fault-injecting
//! storage (`harness::faults::FaultStorage`) with a fault plan (EIO on a chosen write or
//! sync, a full disk from a chosen write) and a power loss at a chosen I/O operation under
//! one of the harness's crash models; optionally a second power loss during recovery. The
//! crash image is then opened on clean storage and must hold a state the commit history
//! allows:
//!
//! * every state is one the database went through (a prefix of the commits; a commit that
//!   failed may or may not be there);
//! * in Full mode every acknowledged commit survives; in Off mode every commit acknowledged
//!   before the last successful `sync` or `checkpoint` survives;
//! * the recovered database passes its integrity check.
//!
//! Misdirected writes and bit flips are left out on purpose: they destroy acknowledged data
//! and belong to `open_damaged`, which accepts a corruption error. Reads during the faulty
//! run may fail, but a read that succeeds must return the model's data.
#![no_main]

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use engine::{Database, Durability, MemStorage, Options, Storage, Table, WriteTxn};
use engine_fuzz::{read_table, KeySel, Model, ValueSel};
use harness::faults::{
    CrashModel, CrashPreset, CrashSpec, EnospcPlan, FaultPlan, FaultStorage, GarbageSource,
    Granularity, Trigger,
};
use libfuzzer_sys::fuzz_target;

/// Operations per input: commits, checkpoints and syncs enough for several WAL generations.
const OPS_MAX: usize = 96;
/// A crash or fault lands within the first this many I/O operations: more than a run of
/// OPS_MAX operations issues, so every point of it can be hit.
const IO_OPS_SPAN: u64 = 400;
const TABLE: &str = "t";

#[derive(Arbitrary, Debug)]
enum Op {
    Put { key: KeySel, value: ValueSel },
    Delete { key: KeySel },
    Get { key: KeySel },
    Commit,
    Rollback,
    Checkpoint,
    Sync,
}

#[derive(Arbitrary, Debug)]
struct Plan {
    off: bool,
    preset: u8,
    seed: u64,
    crash_at_op: u16,
    eio_write_at: Option<u8>,
    eio_sync_at: Option<u8>,
    enospc_at_write: Option<u8>,
    recovery_crash_at: Option<u8>,
}

/// The power-loss model for selector `p`: whole writes kept or dropped, a per-write coin, and
/// the harness's tearing presets (SQLite, FoundationDB, TigerBeetle). `FUZZ_TORN_WRITES=0`
/// restricts it to whole writes (the tearing models once found a torn meta page that made a
/// database unopenable; the engine now recovers the meta page from its WAL frame:
/// fuzz/corpus/crash_schedule/seed-torn-meta-page).
fn crash_model(p: u8) -> CrashSpec {
    let torn = std::env::var_os("FUZZ_TORN_WRITES").is_none_or(|v| v != "0");
    let choices = if torn { 6 } else { 3 };
    match p % choices {
        0 => CrashSpec::Preset(CrashPreset::KeepAll),
        1 => CrashSpec::Preset(CrashPreset::DropAll),
        2 => CrashSpec::Model(CrashModel {
            granularity: Granularity::Write,
            written: 1.0,
            omitted: 1.0,
            garbage: 0.0,
            garbage_source: GarbageSource::Random,
            dir_op_lost: 0.0,
            whole_sector_garbage: false,
        }),
        3 => CrashSpec::Preset(CrashPreset::Sqlite),
        4 => CrashSpec::Preset(CrashPreset::Fdb),
        _ => CrashSpec::Preset(CrashPreset::Tigerbeetle),
    }
}

fn opts(off: bool) -> Options {
    Options {
        cache_bytes_max: 64 << 10,
        wal_checkpoint_bytes: 128 << 10,
        // Deterministic I/O order: the fault schedule counts operations.
        checkpoint_in_background: false,
        durability: if off {
            Durability::Off
        } else {
            Durability::Full
        },
        salt_seed: Some(0xC4A5),
        seeded_bug: engine_fuzz::seeded_bug(),
        ..Options::default()
    }
}

fn trigger(at: Option<u8>) -> Option<Trigger> {
    at.map(|n| Trigger {
        at: Some(u64::from(n) + 1),
        ..Trigger::default()
    })
}

/// The commit history as the client saw it.
struct History {
    /// States in commit order: after setup, then after each commit attempt.
    states: Vec<Model>,
    /// Index in `states` of the latest acknowledged commit: what readers see.
    acked: usize,
    /// Index below which no state may be recovered (durably acknowledged).
    floor: usize,
    /// The commit that created the table is durable (Full mode, or a sync since).
    setup_durable: bool,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else {
        return;
    };
    let mut ops = Vec::new();
    while ops.len() < OPS_MAX && !u.is_empty() {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        ops.push(op);
    }
    let model = crash_model(plan.preset);
    let fault_plan = FaultPlan {
        seed: Some(plan.seed),
        eio_write: trigger(plan.eio_write_at),
        eio_sync: trigger(plan.eio_sync_at),
        enospc: plan.enospc_at_write.map(|n| EnospcPlan {
            at_write: Some(u64::from(n) + 1),
            bytes_max: None,
        }),
        crash_at_op: Some(1 + u64::from(plan.crash_at_op) % IO_OPS_SPAN),
        crash: model.clone(),
        ..FaultPlan::default()
    };
    let faults = match FaultStorage::try_new(Arc::new(MemStorage::new()), fault_plan, plan.seed) {
        Ok(f) => f,
        Err(e) => panic!("fault plan rejected: {e}"),
    };
    let debug = std::env::var_os("FUZZ_DEBUG").is_some();
    if debug {
        eprintln!("{plan:?}\n{ops:?}");
    }
    let history = run(&faults, plan.off, &ops);
    if debug {
        eprintln!("schedule: {:?}", faults.schedule());
    }
    let mut image = faults
        .crash_image()
        .unwrap_or_else(|| faults.crash(&model.model()));
    if let Some(at) = plan.recovery_crash_at {
        image = crash_during_recovery(&image, plan.off, u64::from(at) + 1, &model, plan.seed);
    }
    if let Some(h) = history {
        verify(&image, plan.off, &h);
    } else {
        // Setup never finished: anything but a panic goes.
        let _ = Database::open_with(Arc::new(image) as Arc<dyn Storage>, "db", opts(plan.off));
    }
});

/// Runs the operations until the power fails; `None` when setup did not complete.
fn run(faults: &FaultStorage, off: bool, ops: &[Op]) -> Option<History> {
    let storage = Arc::new(faults.clone()) as Arc<dyn Storage>;
    let db = Database::open_with(storage, "db", opts(off)).ok()?;
    let table = {
        let mut tx = db.begin_write().ok()?;
        let t = tx.create_table(TABLE).ok()?;
        tx.commit().ok()?;
        t
    };
    let mut h = History {
        states: vec![Model::new()],
        acked: 0,
        floor: 0,
        setup_durable: !off,
    };
    let mut tx: Option<(WriteTxn, Model)> = None;
    for op in ops {
        if faults.is_crashed() {
            break;
        }
        step(&db, table, off, op, &mut tx, &mut h);
    }
    Some(h)
}

fn step(
    db: &Database,
    table: Table,
    off: bool,
    op: &Op,
    tx: &mut Option<(WriteTxn, Model)>,
    h: &mut History,
) {
    match op {
        Op::Put { .. } | Op::Delete { .. } => {
            if tx.is_none() {
                let Ok(w) = db.begin_write() else { return };
                *tx = Some((w, h.states[h.acked].clone()));
            }
            let Some((w, pending)) = tx.as_mut() else {
                return;
            };
            let ok = match op {
                Op::Put { key, value } => {
                    let (k, v) = (key.bytes(), value.bytes(&key.bytes()));
                    let r = w.put(&table, &k, &v);
                    pending.insert(k, v);
                    r.is_ok()
                }
                Op::Delete { key } => {
                    let k = key.bytes();
                    let r = w.delete(&table, &k);
                    if let Ok(existed) = r {
                        assert_eq!(existed, pending.remove(&k).is_some(), "delete's answer");
                    }
                    r.is_ok()
                }
                _ => true,
            };
            if !ok {
                *tx = None; // a failed operation ends the transaction: roll back
            }
        }
        Op::Get { key } => {
            let k = key.bytes();
            let (got, want) = match tx.as_ref() {
                Some((w, pending)) => (w.get(&table, &k), pending.get(&k).cloned()),
                None => match db.begin_read() {
                    Ok(r) => (r.get(&table, &k), h.states[h.acked].get(&k).cloned()),
                    Err(_) => return,
                },
            };
            if let Ok(got) = got {
                assert_eq!(
                    got, want,
                    "a successful read returned the wrong value for {k:?}"
                );
            }
        }
        Op::Commit => {
            if let Some((w, pending)) = tx.take() {
                let acked = w.commit().is_ok();
                h.states.push(pending);
                if acked {
                    h.acked = h.states.len() - 1;
                    if !off {
                        h.floor = h.acked;
                    }
                }
            }
        }
        Op::Rollback => *tx = None,
        Op::Checkpoint | Op::Sync => {
            if tx.is_some() {
                return; // the writer lock is held by the open transaction
            }
            let r = if matches!(op, Op::Sync) {
                db.sync()
            } else {
                db.checkpoint()
            };
            if r.is_ok() {
                h.floor = h.acked;
                h.setup_durable = true;
            }
        }
    }
}

/// Reopens `image` over a second fault layer that loses power at I/O operation `at`, and
/// returns the image of that second crash.
fn crash_during_recovery(
    image: &MemStorage,
    off: bool,
    at: u64,
    model: &CrashSpec,
    seed: u64,
) -> MemStorage {
    let copy = image.deep_clone();
    let plan = FaultPlan {
        crash_at_op: Some(at),
        crash: model.clone(),
        ..FaultPlan::default()
    };
    let Ok(faults) = FaultStorage::over_mem(&copy, plan, seed ^ 0x005E_C04D) else {
        return image.deep_clone();
    };
    let opened = Database::open_with(
        Arc::new(faults.clone()) as Arc<dyn Storage>,
        "db",
        opts(off),
    );
    drop(opened);
    faults
        .crash_image()
        .unwrap_or_else(|| faults.crash(&model.model()))
}

/// The recovered database must open, pass its check, and hold an allowed state.
fn verify(image: &MemStorage, off: bool, h: &History) {
    let db = match Database::open_with(Arc::new(image.clone()) as Arc<dyn Storage>, "db", opts(off))
    {
        Ok(db) => db,
        Err(e) => panic!("recovery failed after a crash: {e}"),
    };
    let report = match db.check_integrity() {
        Ok(r) => r,
        Err(e) => panic!("integrity check failed to run after recovery: {e}"),
    };
    assert!(
        report.is_ok(),
        "integrity problems after recovery: {:?}",
        report.problems
    );
    let state = db.begin_read().and_then(|r| match r.table(TABLE) {
        Ok(t) => read_table(&r, &t).map(Some),
        Err(engine::Error::TableNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    });
    let state = match state {
        Ok(Some(s)) => s,
        // Off mode before any sync: even the commit that created the table may be lost.
        Ok(None) if !h.setup_durable => return,
        Ok(None) => panic!("table {TABLE:?} lost after recovery"),
        Err(e) => panic!("recovered database unreadable: {e}"),
    };
    let found = h
        .states
        .iter()
        .enumerate()
        .skip(h.floor)
        .any(|(_, s)| *s == state);
    assert!(
        found,
        "recovered state ({} keys) is not a state at or after the durable floor {} of {} states",
        state.len(),
        h.floor,
        h.states.len()
    );
}
