//! Basic behaviour of the public API: commit, rollback, reopen, scans, checkpoints.

use std::ops::Bound;
use std::sync::Arc;

use engine::{Database, Durability, Error, MemStorage, Options, Storage};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

fn open(storage: &MemStorage, opts: Options) -> engine::Result<Database> {
    Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts)
}

#[test]
fn commit_reopen_and_rollback() -> TestResult {
    let storage = MemStorage::new();
    let db = open(&storage, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    for i in 0..2000 {
        tx.put(&t, &key(i), format!("value{i}").as_bytes())?;
    }
    tx.commit()?;
    let mut tx = db.begin_write()?;
    tx.put(&t, &key(5), b"rolled back")?;
    tx.delete(&t, &key(6))?;
    tx.rollback();
    let r = db.begin_read()?;
    assert_eq!(r.get(&t, &key(5))?, Some(b"value5".to_vec()));
    assert_eq!(r.get(&t, &key(6))?, Some(b"value6".to_vec()));
    drop(r);
    drop(db);
    let db = open(&storage, Options::default())?;
    let r = db.begin_read()?;
    let t = r.table("kv")?;
    for i in 0..2000 {
        assert_eq!(
            r.get(&t, &key(i))?,
            Some(format!("value{i}").into_bytes()),
            "key {i}"
        );
    }
    let report = db.check_integrity()?;
    assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

#[test]
fn snapshot_isolation_beside_writer() -> TestResult {
    let storage = MemStorage::new();
    let db = open(&storage, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.put(&t, b"a", b"1")?;
    tx.commit()?;
    let before = db.begin_read()?;
    let mut tx = db.begin_write()?;
    tx.put(&t, b"a", b"2")?;
    assert_eq!(
        before.get(&t, b"a")?,
        Some(b"1".to_vec()),
        "uncommitted write leaked"
    );
    tx.commit()?;
    db.checkpoint()?;
    assert_eq!(before.get(&t, b"a")?, Some(b"1".to_vec()), "snapshot moved");
    assert_eq!(db.begin_read()?.get(&t, b"a")?, Some(b"2".to_vec()));
    drop(before);
    db.checkpoint()?;
    assert_eq!(db.begin_read()?.get(&t, b"a")?, Some(b"2".to_vec()));
    Ok(())
}

#[test]
fn range_scans_both_directions() -> TestResult {
    let db = open(&MemStorage::new(), Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    for i in 0..500 {
        tx.put(&t, &key(i), b"v")?;
    }
    tx.commit()?;
    let r = db.begin_read()?;
    let (lo, hi) = (key(100), key(110));
    let fwd: Vec<Vec<u8>> = r
        .range(
            &t,
            Bound::Included(&lo[..]),
            Bound::Excluded(&hi[..]),
            false,
        )?
        .map(|e| e.map(|(k, _)| k))
        .collect::<Result<_, _>>()?;
    assert_eq!(fwd, (100..110).map(key).collect::<Vec<_>>());
    let rev: Vec<Vec<u8>> = r
        .range(&t, Bound::Included(&lo[..]), Bound::Excluded(&hi[..]), true)?
        .map(|e| e.map(|(k, _)| k))
        .collect::<Result<_, _>>()?;
    assert_eq!(rev, (100..110).rev().map(key).collect::<Vec<_>>());
    let pre: usize = r.prefix(&t, b"key0000001")?.count();
    assert_eq!(pre, 10);
    Ok(())
}

#[test]
fn wal_checkpoint_and_modes() -> TestResult {
    for background in [false, true] {
        for durability in [
            Durability::Full,
            Durability::Normal {
                commits: 4,
                millis: 5,
            },
            Durability::Off,
        ] {
            let opts = Options {
                durability,
                wal_checkpoint_bytes: 256 << 10,
                checkpoint_in_background: background,
                ..Options::default()
            };
            checkpoints_on_their_own(&opts)?;
        }
    }
    Ok(())
}

/// 300 small commits past a 256 KiB threshold checkpoint without being asked. Inline
/// checkpoints have run when the last commit returns; the background thread may still be
/// at work then (it holds the checkpoint lock, so the committer leaves it be), so it gets
/// ten seconds.
fn checkpoints_on_their_own(opts: &Options) -> TestResult {
    let storage = MemStorage::new();
    let db = open(&storage, opts.clone())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.commit()?;
    for i in 0..300 {
        let mut tx = db.begin_write()?;
        tx.put(&t, &key(i), &[i as u8; 100])?;
        if i % 3 == 0 {
            tx.delete(&t, &key(i / 2))?;
        }
        tx.commit()?;
    }
    let wait_ms_max = if opts.checkpoint_in_background {
        10_000
    } else {
        0
    };
    let mut waited_ms = 0;
    while db.metrics().checkpoints == 0 && waited_ms < wait_ms_max {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited_ms += 10;
    }
    let m = db.metrics();
    assert!(m.checkpoints > 0, "{opts:?}: {m:?}");
    assert!(db.check_integrity()?.is_ok());
    drop(db);
    let db = open(&storage, opts.clone())?;
    assert!(db.check_integrity()?.is_ok());
    Ok(())
}

#[test]
fn limits_are_errors() -> TestResult {
    let db = open(&MemStorage::new(), Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    let big_key = vec![1u8; engine::KEY_BYTES_MAX + 1];
    assert!(matches!(
        tx.put(&t, &big_key, b"x"),
        Err(Error::KeyTooLarge { .. })
    ));
    let big_value = vec![1u8; engine::VALUE_BYTES_MAX + 1];
    assert!(matches!(
        tx.put(&t, b"k", &big_value),
        Err(Error::ValueTooLarge { .. })
    ));
    tx.put(&t, b"k", &vec![7u8; engine::VALUE_BYTES_MAX])?;
    tx.commit()?;
    assert_eq!(
        db.begin_read()?.get(&t, b"k")?.map(|v| v.len()),
        Some(engine::VALUE_BYTES_MAX)
    );
    assert!(matches!(
        db.begin_write()?.create_table("kv"),
        Err(Error::TableExists { .. })
    ));
    assert!(matches!(
        db.begin_read()?.table("nope"),
        Err(Error::TableNotFound { .. })
    ));
    Ok(())
}

#[test]
fn metrics_and_sync_do_not_wait_for_an_open_writer() -> TestResult {
    let db = open(&MemStorage::new(), Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.put(&t, b"k", b"v")?;
    tx.commit()?;
    let mut open_tx = db.begin_write()?;
    open_tx.put(&t, b"k2", b"v2")?;
    // Same thread, writer held: neither call may block on it.
    db.sync()?;
    let m = db.metrics();
    assert!(m.page_count >= 3, "{m:?}");
    assert!(m.wal_frames > 0, "{m:?}");
    assert_eq!(m.commits, 1);
    open_tx.commit()?;
    Ok(())
}
