//! Regression tests for bugs the fuzz targets found (fuzz/). Each names its target and the
//! seed kept under fuzz/corpus/<target>/. Public API only, so they run in the normal suite.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use engine::{Database, Error, MemStorage, Options, Storage, StorageFile};

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

/// A storage whose main file keeps a durable image and the writes since its last sync, and
/// whose main-file sync can be made to fail: a power loss then keeps only the unsynced
/// writes a test chooses.
#[derive(Debug)]
struct MainFile {
    inner: Arc<dyn StorageFile>,
    durable: Mutex<Vec<u8>>,
    pending: Mutex<Vec<(u64, Vec<u8>)>>,
    fail_sync: AtomicBool,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MainFile {
    fn contents(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.inner.len()? as usize];
        self.inner.read_at(&mut buf, 0)?;
        Ok(buf)
    }

    /// The file after a power loss that kept only the first `len` bytes of the unsynced
    /// writes at offset 0 (a write of several pages may reach the disk in part).
    fn crash_keeping_head(&self, len: usize) -> Vec<u8> {
        let mut image = locked(&self.durable).clone();
        for (at, bytes) in locked(&self.pending).iter().filter(|(at, _)| *at == 0) {
            let bytes = &bytes[..bytes.len().min(len)];
            let end = *at as usize + bytes.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[*at as usize..end].copy_from_slice(bytes);
        }
        image
    }
}

impl StorageFile for MainFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_at(buf, offset)?;
        locked(&self.pending).push((offset, buf.to_vec()));
        Ok(())
    }
    fn sync(&self) -> std::io::Result<()> {
        if self.fail_sync.load(Ordering::Acquire) {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        *locked(&self.durable) = self.contents()?;
        locked(&self.pending).clear();
        Ok(())
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
}

#[derive(Debug)]
struct LossyMain {
    mem: MemStorage,
    main: Arc<MainFile>,
}

impl Storage for LossyMain {
    fn open(&self, name: &str, create: bool) -> std::io::Result<Arc<dyn StorageFile>> {
        if name == "db" {
            Ok(self.main.clone())
        } else {
            self.mem.open(name, create)
        }
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.mem.remove(name)
    }
    fn exists(&self, name: &str) -> std::io::Result<bool> {
        self.mem.exists(name)
    }
    fn sync_dir(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// crash_schedule (seed-meta-page-before-pages): a checkpoint wrote the meta page together
/// with the pages it copied, before one fsync. A power loss that kept the new meta page but
/// not the pages made recovery skip the WAL's commits (the meta page said they were in the
/// main file): acknowledged commits were lost without an error. The meta page is now
/// written only after the other pages are durable.
#[test]
fn meta_page_never_reaches_the_disk_before_the_pages() -> TestResult {
    let mem = MemStorage::new();
    let inner = mem.open("db", true)?;
    let main = Arc::new(MainFile {
        inner,
        durable: Mutex::new(Vec::new()),
        pending: Mutex::new(Vec::new()),
        fail_sync: AtomicBool::new(false),
    });
    let storage = Arc::new(LossyMain {
        mem: mem.clone(),
        main: main.clone(),
    });
    let db = Database::open_with(storage as Arc<dyn Storage>, "db", opts())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("alpha")?;
    for i in 0..200u32 {
        tx.put(&t, format!("key{i:03}").as_bytes(), &[i as u8; 64])?;
    }
    tx.commit()?;
    // Power fails at the checkpoint's main-file fsync.
    main.fail_sync.store(true, Ordering::Release);
    assert!(
        db.checkpoint().is_err(),
        "the checkpoint's fsync was made to fail"
    );
    drop(db);
    // The disk kept the first page of an unsynced write at offset 0 (the meta page), if
    // there was one, and nothing else.
    let image = MemStorage::new();
    image.put("db", main.crash_keeping_head(4096));
    image.put("db-wal", mem.snapshot("db-wal").ok_or("no wal")?);
    let db = open(&image)?;
    let r = db.begin_read()?;
    let t = r.table("alpha")?;
    assert_eq!(
        r.get(&t, b"key199")?,
        Some(vec![199; 64]),
        "an acknowledged commit was lost"
    );
    assert!(db.check_integrity()?.is_ok());
    Ok(())
}

/// CRC32C (Castagnoli), bitwise, to forge a page checksum the way a hostile file would.
fn crc32c(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &byte in b {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// open_damaged (seed-meta-last-txn-max): a meta page with a valid (forged) checksum and a
/// last transaction id of u64::MAX made open overflow computing the next id (a panic in
/// debug builds, a wrapped id in release). Such a meta page is now corruption.
#[test]
fn meta_page_with_the_largest_txn_id_is_corruption() -> TestResult {
    let storage = MemStorage::new();
    let db = open(&storage)?;
    db.close()?;
    let mut main = storage.snapshot("db").ok_or("no main file")?;
    // Body bytes 32..40 of page 0 (after the 16-byte page header): the last txn id.
    main[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
    let crc = crc32c(&main[4..4096]);
    main[0..4].copy_from_slice(&crc.to_le_bytes());
    storage.put("db", main);
    storage.put("db-wal", Vec::new());
    match open(&storage) {
        Err(Error::Corruption { .. }) => Ok(()),
        Err(e) => Err(format!("expected corruption, got {e}").into()),
        Ok(_) => Err("opened a database whose next transaction id overflows".into()),
    }
}
