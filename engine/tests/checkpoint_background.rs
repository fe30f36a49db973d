//! The background checkpointer: it copies pages beside the writer and resets the WAL, while
//! readers keep their snapshots and every commit survives a reopen.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Database, MemStorage, Options, Storage};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Small enough that a few hundred commits cross it many times.
const THRESHOLD_BYTES: u64 = 256 << 10;
const KEYS_N: u32 = 400;
const ROUNDS_N: u32 = 60;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-round-{round}-{}", "x".repeat(100)).into_bytes()
}

fn options(background: bool) -> Options {
    Options {
        wal_checkpoint_bytes: THRESHOLD_BYTES,
        checkpoint_in_background: background,
        ..Options::default()
    }
}

fn open(storage: &MemStorage, opts: Options) -> engine::Result<Database> {
    Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts)
}

/// Rewrites every key `ROUNDS_N` times in transactions of 20 keys; a reader thread checks
/// all along that a snapshot taken after round 0 still sees round 0 exactly.
fn churn(db: &Arc<Database>) -> TestResult {
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    for i in 0..KEYS_N {
        tx.put(&t, &key(i), &value(i, 0))?;
    }
    tx.commit()?;
    // Round 0 moves into the main file, so the old snapshot below reads the main file: a
    // checkpoint that copied a page version newer than the snapshot would show there.
    db.checkpoint()?;
    // Held for the first third of the rounds: checkpoints meanwhile may copy nothing it
    // needs; after it goes, they copy everything and reset the WAL.
    let mut old = Some(db.begin_read()?);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || -> Result<u64, String> {
            let mut checks = 0;
            while !stop.load(Ordering::Acquire) {
                let r = db.begin_read().map_err(|e| e.to_string())?;
                let t = r.table("kv").map_err(|e| e.to_string())?;
                let first = r.get(&t, &key(0)).map_err(|e| e.to_string())?;
                let last = r.get(&t, &key(KEYS_N - 1)).map_err(|e| e.to_string())?;
                // Transactions go in key order, so a snapshot that sees the last key of a
                // round sees the first key of that round too.
                if first.is_none() || last.is_none() {
                    return Err("a key vanished".into());
                }
                checks += 1;
            }
            Ok(checks)
        })
    };
    for round in 1..=ROUNDS_N {
        for chunk in (0..KEYS_N).collect::<Vec<_>>().chunks(20) {
            let mut tx = db.begin_write()?;
            for &i in chunk {
                tx.put(&t, &key(i), &value(i, round))?;
            }
            tx.commit()?;
        }
        if let Some(snap) = &old {
            for i in (0..KEYS_N).step_by(37) {
                assert_eq!(
                    snap.get(&t, &key(i))?,
                    Some(value(i, 0)),
                    "old snapshot, key {i}"
                );
            }
        }
        if round == ROUNDS_N / 3 {
            old = None;
        }
    }
    stop.store(true, Ordering::Release);
    let checks = reader.join().map_err(|_| "reader panicked")??;
    assert!(checks > 0);
    Ok(())
}

/// Waits (bounded) for the background thread to bring the WAL under the threshold.
fn wait_wal_below_threshold(db: &Database) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = db.metrics();
        if m.wal_frames * (m.page_size + 48) <= THRESHOLD_BYTES {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("WAL still {} frames after 10 s: {m:?}", m.wal_frames).into());
        }
        // Another commit nudges the checkpointer, as a real workload would.
        let mut tx = db.begin_write()?;
        let t = tx.table("kv")?;
        tx.put(&t, b"nudge", b"1")?;
        tx.commit()?;
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn check_final(storage: &MemStorage, opts: Options) -> TestResult {
    let db = open(storage, opts)?;
    let r = db.begin_read()?;
    let t = r.table("kv")?;
    for i in 0..KEYS_N {
        assert_eq!(r.get(&t, &key(i))?, Some(value(i, ROUNDS_N)), "key {i}");
    }
    let report = db.check_integrity()?;
    assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

/// Churns, waits for the WAL to come back under the threshold (while the reader thread ran,
/// checkpoints were mostly partial: its snapshot lags the newest commit), then reopens and
/// checks every key.
fn churn_and_check(background: bool) -> TestResult {
    let storage = MemStorage::new();
    let db = Arc::new(open(&storage, options(background))?);
    churn(&db)?;
    wait_wal_below_threshold(&db)?;
    let m = db.metrics();
    assert!(m.checkpoints >= 5, "{m:?}");
    drop(db);
    check_final(&storage, options(background))
}

#[test]
fn background_checkpoints_keep_snapshots_and_bound_the_wal() -> TestResult {
    churn_and_check(true)
}

#[test]
fn inline_checkpoints_behave_the_same() -> TestResult {
    churn_and_check(false)
}

#[test]
fn dropping_the_handle_stops_the_checkpointer() -> TestResult {
    let storage = MemStorage::new();
    for round in 0..20 {
        let db = open(&storage, options(true))?;
        let mut tx = db.begin_write()?;
        let t = match tx.table("kv") {
            Ok(t) => t,
            Err(_) => tx.create_table("kv")?,
        };
        for i in 0..KEYS_N {
            tx.put(&t, &key(i), &value(i, round))?;
        }
        tx.commit()?;
        // Dropped right after a commit that may have woken the checkpointer: the next
        // open must find consistent files, with no thread still writing them.
    }
    let db = open(&storage, options(true))?;
    let r = db.begin_read()?;
    let t = r.table("kv")?;
    assert_eq!(r.get(&t, &key(1))?, Some(value(1, 19)));
    Ok(())
}
