//! Regression tests for bugs the fuzz targets found (fuzz/). Each names its target and the
//! seed kept under fuzz/corpus/<target>/. Public API only, so they run in the normal suite.

use std::sync::Arc;

use engine::{Database, Error, MemStorage, Options, Storage};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn opts() -> Options {
    Options {
        salt_seed: Some(0x5EED),
        ..Options::default()
    }
}

fn open(storage: &MemStorage) -> engine::Result<Database> {
    Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts())
}

/// btree_ops (seed-partial-checkpoint-reopen): a checkpoint limited by an open reader
/// copied the meta page of an older commit into the main file; reopening then refused the
/// log's first frames (their ids were not above the main file's last id) and, seeing a later
/// frame vouch for them, reported WAL corruption: the database no longer opened.
#[test]
fn reopen_after_a_checkpoint_held_back_by_a_reader() -> TestResult {
    let storage = MemStorage::new();
    let db = open(&storage)?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("alpha")?;
    tx.commit()?;
    let reader = db.begin_read()?;
    let mut tx = db.begin_write()?;
    tx.put(&t, b"k00000", b"")?;
    tx.commit()?;
    db.checkpoint()?; // partial: the reader holds the first commit
    drop(reader);
    drop(db);
    let db = open(&storage)?;
    let r = db.begin_read()?;
    assert_eq!(r.get(&r.table("alpha")?, b"k00000")?, Some(Vec::new()));
    assert!(db.check_integrity()?.is_ok());
    Ok(())
}

/// The same state reached by a crash between a full checkpoint's main-file fsync and its
/// WAL reset: the WAL still holds a valid header and frames that are all in the main file.
#[test]
fn reopen_when_the_wal_reset_did_not_happen() -> TestResult {
    let storage = MemStorage::new();
    let db = open(&storage)?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("alpha")?;
    for i in 0..50u32 {
        tx.put(&t, format!("key{i:03}").as_bytes(), &[i as u8; 100])?;
    }
    tx.commit()?;
    // A second commit: its frames vouch (synced_upto) for the first commit's frames.
    let mut tx = db.begin_write()?;
    tx.put(&t, b"key050", b"last")?;
    tx.commit()?;
    let wal_before = storage.snapshot("db-wal").ok_or("no wal")?;
    db.checkpoint()?;
    drop(db);
    // Undo step 4 of the checkpoint: the old header and frames are back.
    storage.put("db-wal", wal_before);
    let db = open(&storage)?;
    let r = db.begin_read()?;
    let t = r.table("alpha")?;
    assert_eq!(r.get(&t, b"key049")?, Some(vec![49; 100]));
    assert_eq!(r.get(&t, b"key050")?, Some(b"last".to_vec()));
    assert!(db.check_integrity()?.is_ok());
    Ok(())
}

/// open_damaged (seed-main-truncated): with the main file truncated to zero bytes, open
/// created a new empty database and replayed the old WAL onto it: tables vanished without an
/// error. A WAL beside an empty main file is now corruption.
#[test]
fn empty_main_file_beside_a_wal_is_corruption() -> TestResult {
    let storage = MemStorage::new();
    let db = open(&storage)?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("alpha")?;
    tx.put(&t, b"k", b"v")?;
    tx.commit()?;
    drop(db);
    storage.put("db", Vec::new());
    match open(&storage) {
        Err(Error::Corruption { .. }) => {}
        Err(e) => return Err(format!("expected corruption, got {e}").into()),
        Ok(_) => return Err("opened a database whose main file is gone".into()),
    }
    // A brand-new database (both files empty) still opens.
    let fresh = MemStorage::new();
    fresh.put("db", Vec::new());
    fresh.put("db-wal", Vec::new());
    open(&fresh)?;
    Ok(())
}
