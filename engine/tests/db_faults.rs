//! Behaviour under storage failures and concurrency: group commit, poisoning after a failed
//! fsync, disk full and recovery from it, corruption surfacing as errors, readers beside a
//! writer.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::{Database, Durability, Error, MemStorage, Options, Storage, StorageFile};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A storage wrapper with switches: slow syncs, failing syncs, a full disk.
#[derive(Debug, Default)]
struct Switches {
    sync_delay_ms: AtomicU64,
    fail_next_sync: AtomicBool,
    disk_full: AtomicBool,
    /// Only the WAL header write (offset 0 of `db-wal`) meets a full disk.
    wal_header_full: AtomicBool,
    /// Reads of the main file fail with EIO.
    main_read_eio: AtomicBool,
    syncs: AtomicU64,
}

#[derive(Debug)]
struct Faulty {
    inner: MemStorage,
    sw: Arc<Switches>,
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    sw: Arc<Switches>,
    is_wal: bool,
}

impl Storage for Faulty {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let inner = self.inner.open(name, create)?;
        Ok(Arc::new(FaultyFile {
            inner,
            sw: self.sw.clone(),
            is_wal: name.ends_with("-wal"),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn exists(&self, name: &str) -> io::Result<bool> {
        self.inner.exists(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if !self.is_wal && self.sw.main_read_eio.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let header = self.is_wal && offset == 0 && self.sw.wal_header_full.load(Ordering::SeqCst);
        if self.sw.disk_full.load(Ordering::SeqCst) || header {
            return Err(io::Error::from_raw_os_error(28));
        }
        self.inner.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.sw.syncs.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(
            self.sw.sync_delay_ms.load(Ordering::SeqCst),
        ));
        if self.sw.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

/// Creates table `kv` and commits keys 0..50, one per transaction, with 300-byte values of
/// `byte`.
fn fifty_commits(db: &Database, byte: u8) -> engine::Result<engine::Table> {
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.commit()?;
    for i in 0..50u32 {
        let mut tx = db.begin_write()?;
        tx.put(&t, &i.to_be_bytes(), &[byte; 300])?;
        tx.commit()?;
    }
    Ok(t)
}

fn open(mem: &MemStorage, sw: &Arc<Switches>, opts: Options) -> engine::Result<Database> {
    let storage: Arc<dyn Storage> = Arc::new(Faulty {
        inner: mem.clone(),
        sw: sw.clone(),
    });
    Database::open_with(storage, "db", opts)
}

#[test]
fn group_commit_shares_fsyncs() -> TestResult {
    let (mem, sw) = (MemStorage::new(), Arc::new(Switches::default()));
    let db = Arc::new(open(&mem, &sw, Options::default())?);
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.commit()?;
    sw.sync_delay_ms.store(3, Ordering::SeqCst);
    let before = db.metrics();
    let (threads, per_thread) = (4u64, 25u64);
    std::thread::scope(|s| -> engine::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|id| {
                let db = db.clone();
                s.spawn(move || -> engine::Result<()> {
                    for i in 0..per_thread {
                        let mut tx = db.begin_write()?;
                        tx.put(&t, format!("{id}-{i}").as_bytes(), b"v")?;
                        tx.commit()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| Error::TransactionClosed)??;
        }
        Ok(())
    })?;
    let after = db.metrics();
    let commits = after.commits - before.commits;
    let fsyncs = after.fsyncs - before.fsyncs;
    assert_eq!(commits, threads * per_thread);
    // At most one fsync per commit, and with 3 ms fsyncs and 4 committers, far fewer.
    assert!(
        fsyncs < commits,
        "fsyncs {fsyncs} for {commits} commits: no group commit"
    );
    let r = db.begin_read()?;
    assert_eq!(
        r.range(
            &t,
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            false
        )?
        .count() as u64,
        commits
    );
    Ok(())
}

#[test]
fn failed_fsync_poisons_until_reopen() -> TestResult {
    let (mem, sw) = (MemStorage::new(), Arc::new(Switches::default()));
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.put(&t, b"a", b"1")?;
    tx.commit()?;
    sw.fail_next_sync.store(true, Ordering::SeqCst);
    let mut tx = db.begin_write()?;
    tx.put(&t, b"b", b"2")?;
    assert!(tx.commit().is_err(), "a failed fsync must fail the commit");
    assert!(matches!(db.begin_write(), Err(Error::Poisoned)));
    // Readers still work, and do not see the unacknowledged commit.
    assert_eq!(db.begin_read()?.get(&t, b"b")?, None);
    drop(db);
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    tx.put(&t, b"c", b"3")?;
    tx.commit()?;
    assert_eq!(db.begin_read()?.get(&t, b"a")?, Some(b"1".to_vec()));
    Ok(())
}

#[test]
fn disk_full_fails_commit_then_recovers_without_restart() -> TestResult {
    let (mem, sw) = (MemStorage::new(), Arc::new(Switches::default()));
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.put(&t, b"kept", b"1")?;
    tx.commit()?;
    sw.disk_full.store(true, Ordering::SeqCst);
    let mut tx = db.begin_write()?;
    tx.put(&t, b"lost", b"2")?;
    let err = tx.commit().err().ok_or("commit on a full disk succeeded")?;
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    sw.disk_full.store(false, Ordering::SeqCst);
    let mut tx = db.begin_write()?;
    tx.put(&t, b"after", b"3")?;
    tx.commit()?;
    let r = db.begin_read()?;
    assert_eq!(r.get(&t, b"kept")?, Some(b"1".to_vec()));
    assert_eq!(r.get(&t, b"lost")?, None);
    assert_eq!(r.get(&t, b"after")?, Some(b"3".to_vec()));
    drop(r);
    drop(db);
    let db = open(&mem, &sw, Options::default())?;
    assert!(db.check_integrity()?.is_ok());
    assert_eq!(db.begin_read()?.get(&t, b"after")?, Some(b"3".to_vec()));
    Ok(())
}

/// A full disk on the WAL header write of a checkpoint's reset (copy-on-write file systems
/// allocate even for overwrites) is `DiskFull`, not poison: the old generation stays in
/// force and the same open database commits on (`harness run faults/enospc --seed 1021`).
#[test]
fn disk_full_at_wal_reset_keeps_the_database_usable() -> TestResult {
    let (mem, sw) = (MemStorage::new(), Arc::new(Switches::default()));
    let opts = Options {
        checkpoint_in_background: false,
        ..Options::default()
    };
    let db = open(&mem, &sw, opts.clone())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.put(&t, b"before", b"1")?;
    tx.commit()?;
    sw.wal_header_full.store(true, Ordering::SeqCst);
    let err = db
        .checkpoint()
        .err()
        .ok_or("reset on a full disk succeeded")?;
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    let mut tx = db.begin_write()?;
    tx.put(&t, b"after", b"2")?;
    tx.commit()?;
    sw.wal_header_full.store(false, Ordering::SeqCst);
    db.checkpoint()?;
    let mut tx = db.begin_write()?;
    tx.put(&t, b"last", b"3")?;
    tx.commit()?;
    drop(db);
    let db = open(&mem, &sw, opts)?;
    assert!(db.check_integrity()?.is_ok());
    let r = db.begin_read()?;
    for (k, v) in [(&b"before"[..], b"1"), (b"after", b"2"), (b"last", b"3")] {
        assert_eq!(r.get(&t, k)?, Some(v.to_vec()));
    }
    Ok(())
}

/// A full disk does not make a database unopenable: recovery's checkpoint meets it, and
/// the open goes on in the replayed WAL generation; commits then continue in it, and a
/// later reopen with space replays both (`harness sweep faults/disk-full-tmpfs`).
#[test]
fn open_on_a_full_disk_continues_the_wal_generation() -> TestResult {
    let (mem, sw) = (MemStorage::new(), Arc::new(Switches::default()));
    let opts = Options {
        checkpoint_in_background: false,
        wal_checkpoint_bytes: 64 << 20,
        ..Options::default()
    };
    let db = open(&mem, &sw, opts.clone())?;
    let t = fifty_commits(&db, 1)?;
    drop(db);
    sw.disk_full.store(true, Ordering::SeqCst);
    let syncs = sw.syncs.load(Ordering::SeqCst);
    let db = open(&mem, &sw, opts.clone())?;
    // The replayed frames are made durable before new frames vouch for them.
    assert!(
        sw.syncs.load(Ordering::SeqCst) > syncs,
        "open did not sync the WAL"
    );
    assert_eq!(
        db.begin_read()?.get(&t, &7u32.to_be_bytes())?,
        Some(vec![1u8; 300])
    );
    sw.disk_full.store(false, Ordering::SeqCst);
    for i in 50..60u32 {
        let mut tx = db.begin_write()?;
        tx.put(&t, &i.to_be_bytes(), &[2u8; 300])?;
        tx.commit()?;
    }
    drop(db);
    let db = open(&mem, &sw, opts)?;
    assert!(db.check_integrity()?.is_ok());
    let r = db.begin_read()?;
    for i in 0..60u32 {
        let want = if i < 50 { 1u8 } else { 2 };
        assert_eq!(
            r.get(&t, &i.to_be_bytes())?,
            Some(vec![want; 300]),
            "key {i}"
        );
    }
    Ok(())
}

#[test]
fn flipped_byte_in_main_file_is_corruption_not_data() -> TestResult {
    let mem = MemStorage::new();
    let sw = Arc::new(Switches::default());
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    for i in 0..3000u32 {
        tx.put(&t, &i.to_be_bytes(), &[5u8; 64])?;
    }
    tx.commit()?;
    db.close()?;
    let mut bytes = mem.snapshot("db").ok_or("no main file")?;
    let page_size = 4096;
    for page in 2..(bytes.len() / page_size) {
        bytes[page * page_size + 100] ^= 0x40;
    }
    mem.put("db", bytes);
    let db = open(&mem, &sw, Options::default())?;
    let r = db.begin_read()?;
    let mut corruption = 0;
    for i in 0..3000u32 {
        match r.get(&t, &i.to_be_bytes()) {
            Ok(Some(v)) => assert_eq!(v, vec![5u8; 64]),
            Ok(None) => return Err(format!("key {i} vanished without an error").into()),
            Err(e) => {
                assert!(e.is_corruption(), "{e}");
                corruption += 1;
            }
        }
    }
    assert!(corruption > 0);
    assert!(!db.check_integrity()?.is_ok());
    Ok(())
}

/// An EIO reading the meta page at open is the device's error, not damage: it once came
/// back as "corruption in database header" (found by `faults/read-errors`).
#[test]
fn read_error_on_the_meta_page_at_open_is_io_not_corruption() -> TestResult {
    let mem = MemStorage::new();
    let sw = Arc::new(Switches::default());
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    tx.create_table("kv")?;
    tx.commit()?;
    db.close()?;
    sw.main_read_eio.store(true, Ordering::SeqCst);
    match open(&mem, &sw, Options::default()) {
        Err(Error::Io { .. }) => {}
        other => return Err(format!("expected an I/O error, got {other:?}").into()),
    }
    sw.main_read_eio.store(false, Ordering::SeqCst);
    open(&mem, &sw, Options::default())?.close()?;
    Ok(())
}

/// A torn meta page and a torn WAL header together, with whole frames behind the header:
/// the page size comes from frame 0 and every commit is recovered. (A crash inside a
/// recovery that had adopted a torn header, while its checkpoint rewrote the meta page,
/// left this; open once refused it as a corrupt header: `faults/power-loss-churn` seed 7106.)
#[test]
fn torn_meta_page_and_torn_wal_header_recover_from_the_frames() -> TestResult {
    let mem = MemStorage::new();
    let sw = Arc::new(Switches::default());
    let opts = Options {
        page_size: 8192,
        ..Options::default()
    };
    let db = open(&mem, &sw, opts.clone())?;
    fifty_commits(&db, 7)?;
    // The power goes out here: the image is what the disk holds (every commit synced).
    let image = mem.deep_clone();
    drop(db);
    let mut main = image.snapshot("db").ok_or("no main file")?;
    main[200] ^= 0x10;
    image.put("db", main);
    let mut wal = image.snapshot("db-wal").ok_or("no WAL")?;
    wal[20] ^= 0x10;
    image.put("db-wal", wal);
    let db = open(&image, &sw, Options::default())?;
    let r = db.begin_read()?;
    let t = r.table("kv")?;
    for i in 0..50u32 {
        let v = r.get(&t, &i.to_be_bytes())?;
        assert_eq!(v.as_deref(), Some(&[7u8; 300][..]), "key {i}");
    }
    assert!(db.check_integrity()?.is_ok());
    Ok(())
}

#[test]
fn readers_run_beside_a_writer() -> TestResult {
    let db = Arc::new(open(
        &MemStorage::new(),
        &Arc::new(Switches::default()),
        Options {
            durability: Durability::Off,
            wal_checkpoint_bytes: 1 << 20,
            ..Options::default()
        },
    )?);
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    for i in 0..1000u32 {
        tx.put(&t, &i.to_be_bytes(), &0u64.to_be_bytes())?;
    }
    tx.commit()?;
    // The writer bumps every key's counter in one transaction; each reader snapshot must
    // see one value for all keys (never a mix of two commits).
    std::thread::scope(|s| -> TestResult {
        let writer = s.spawn(|| -> engine::Result<()> {
            for round in 1..=30u64 {
                let mut tx = db.begin_write()?;
                for i in 0..1000u32 {
                    tx.put(&t, &i.to_be_bytes(), &round.to_be_bytes())?;
                }
                tx.commit()?;
            }
            Ok(())
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| -> Result<u64, String> {
                    let mut snapshots = 0;
                    while snapshots < 200 {
                        let r = db.begin_read().map_err(|e| e.to_string())?;
                        let first = r.get(&t, &0u32.to_be_bytes()).map_err(|e| e.to_string())?;
                        let last = r
                            .get(&t, &999u32.to_be_bytes())
                            .map_err(|e| e.to_string())?;
                        if first != last {
                            return Err(format!("torn snapshot: {first:?} vs {last:?}"));
                        }
                        snapshots += 1;
                    }
                    Ok(snapshots)
                })
            })
            .collect();
        writer.join().map_err(|_| "writer panicked")??;
        for r in readers {
            r.join().map_err(|_| "reader panicked")??;
        }
        Ok(())
    })?;
    Ok(())
}

/// Regression (found by the kill -9 test): a checkpoint that synced the main file and died
/// before writing the new WAL header must not make the next open report corruption.
#[test]
fn crash_between_checkpoint_sync_and_wal_reset() -> TestResult {
    let mem = MemStorage::new();
    let sw = Arc::new(Switches::default());
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.commit()?;
    for i in 0..20u32 {
        let mut tx = db.begin_write()?;
        tx.put(&t, &i.to_be_bytes(), b"v")?;
        tx.commit()?;
    }
    let old_wal = mem.snapshot("db-wal").ok_or("no wal")?;
    db.checkpoint()?;
    drop(db);
    // The reset "never happened": the old header and frames are back, the main file is new.
    mem.put("db-wal", old_wal);
    let db = open(&mem, &sw, Options::default())?;
    let r = db.begin_read()?;
    for i in 0..20u32 {
        assert_eq!(r.get(&t, &i.to_be_bytes())?, Some(b"v".to_vec()), "key {i}");
    }
    drop(r);
    assert!(db.check_integrity()?.is_ok());
    Ok(())
}

/// Regression (found by the kill -9 test): a checkpoint killed after writing the new meta
/// page but before the other pages must still recover every page from the WAL.
#[test]
fn crash_mid_checkpoint_after_meta_page() -> TestResult {
    let mem = MemStorage::new();
    let sw = Arc::new(Switches::default());
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.commit()?;
    for i in 0..50u32 {
        let mut tx = db.begin_write()?;
        tx.put(&t, &i.to_be_bytes(), &[i as u8; 300])?;
        tx.commit()?;
    }
    let (main_old, wal_old) = (
        mem.snapshot("db").ok_or("db")?,
        mem.snapshot("db-wal").ok_or("wal")?,
    );
    db.checkpoint()?;
    drop(db);
    let main_new = mem.snapshot("db").ok_or("db")?;
    let mut torn = main_old.clone();
    torn[..4096].copy_from_slice(&main_new[..4096]);
    mem.put("db", torn);
    mem.put("db-wal", wal_old);
    let db = open(&mem, &sw, Options::default())?;
    let report = db.check_integrity()?;
    assert!(report.is_ok(), "{:?}", report.problems);
    let r = db.begin_read()?;
    for i in 0..50u32 {
        assert_eq!(
            r.get(&t, &i.to_be_bytes())?,
            Some(vec![i as u8; 300]),
            "key {i}"
        );
    }
    Ok(())
}

/// A meta page torn by power loss during a checkpoint is recovered from its WAL frame.
#[test]
fn torn_meta_page_recovers_from_wal() -> TestResult {
    let mem = MemStorage::new();
    let sw = Arc::new(Switches::default());
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    for i in 0..500u32 {
        tx.put(&t, &i.to_be_bytes(), &[1u8; 100])?;
    }
    tx.commit()?;
    let wal_old = mem.snapshot("db-wal").ok_or("wal")?;
    db.checkpoint()?;
    drop(db);
    let mut main = mem.snapshot("db").ok_or("db")?;
    main[512..1024].fill(0xEE); // one torn sector of page 0
    mem.put("db", main);
    mem.put("db-wal", wal_old);
    let db = open(&mem, &sw, Options::default())?;
    assert!(db.check_integrity()?.is_ok());
    assert_eq!(
        db.begin_read()?.get(&t, &499u32.to_be_bytes())?,
        Some(vec![1u8; 100])
    );
    Ok(())
}

/// A creation that crashed part-way (a prefix of the new file's two pages, no WAL) opens as a
/// new database; a real database truncated that short, or an empty main file beside a WAL, is
/// refused as corruption (the open_damaged fuzzer found the truncated case opening as empty).
#[test]
fn crashed_creation_restarts_and_lost_main_file_is_refused() -> TestResult {
    let sw = Arc::new(Switches::default());
    let fresh = MemStorage::new();
    drop(open(&fresh, &sw, Options::default())?);
    let image = fresh.snapshot("db").ok_or("no main file")?;
    let mem = MemStorage::new();
    mem.put("db", image[..3000].to_vec());
    let db = open(&mem, &sw, Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("kv")?;
    tx.put(&t, b"k", b"v")?;
    tx.commit()?;
    db.close()?;
    let mut truncated = mem.snapshot("db").ok_or("no main file")?;
    truncated.truncate(5000);
    mem.put("db", truncated);
    mem.put("db-wal", Vec::new());
    let err = open(&mem, &sw, Options::default())
        .err()
        .ok_or("opened a truncated database")?;
    assert!(err.is_corruption(), "{err}");
    mem.put("db", vec![0u8; 5000]);
    let err = open(&mem, &sw, Options::default())
        .err()
        .ok_or("opened a zeroed database")?;
    assert!(err.is_corruption(), "{err}");
    mem.put("db", Vec::new());
    mem.put("db-wal", vec![1u8; 100]);
    let err = open(&mem, &sw, Options::default())
        .err()
        .ok_or("opened a database whose main file was lost")?;
    assert!(err.is_corruption(), "{err}");
    Ok(())
}
