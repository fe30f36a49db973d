//! The database: shared state, opening and recovery, group commit, checkpoints.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::cache::{IntMap, Loc, PageCache};
use crate::error::{Error, Location, Result};
use crate::meta::Meta;
use crate::options::{Durability, Metrics, Options};
use crate::page::{PageBuf, PageNo, PageRef, PAGE_SIZE_MIN};
use crate::storage::{FileStorage, Storage, StorageFile};
use crate::txn::ReadTxn;
use crate::write::WriteTxn;
use crate::wal::{self, FrameHeader, WalHeader, WAL_HEADER_LEN};

/// Versions of pages in the WAL: page -> [(commit txn id, frame index)], oldest first.
pub(crate) struct WalIndex {
    pub generation: u64,
    pub salt: u64,
    pub pages: IntMap<PageNo, Vec<(u64, u64)>>,
    /// Commits with ids up to here are copied into the main file.
    pub backfilled_txn: u64,
}

impl WalIndex {
    /// The newest frame of `no` committed at or before `snap`.
    pub(crate) fn lookup(&self, no: PageNo, snap: u64) -> Option<u64> {
        let versions = self.pages.get(&no)?;
        versions.iter().rev().find(|(txn, _)| *txn <= snap).map(|&(_, frame)| frame)
    }
}

/// What only the writer touches. Held for the life of a write transaction.
pub(crate) struct WriterState {
    /// Frames written since the database opened, over every WAL generation (a log sequence
    /// number that never goes back, so waiters survive a WAL reset).
    pub lsn: u64,
    /// `lsn` at the start of the current WAL generation.
    pub generation_lsn: u64,
    /// Id of the last commit written (durable or not).
    pub latest_txn: u64,
    pub next_txn_id: u64,
    /// The meta page as of `latest_txn`.
    pub meta: Meta,
    pub commits_since_sync: u32,
    pub last_sync: Instant,
    pub frame_buf: Vec<u8>,
}

#[derive(Default)]
struct SyncState {
    written_lsn: u64,
    written_txn: u64,
    synced_lsn: u64,
    syncing: bool,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub commits: AtomicU64,
    pub rollbacks: AtomicU64,
    pub fsyncs: AtomicU64,
    pub checkpoints: AtomicU64,
    pub pages_read: AtomicU64,
    pub pages_written: AtomicU64,
}

/// State shared by the database handle and its transactions.
pub(crate) struct Shared {
    pub main: Arc<dyn StorageFile>,
    pub wal: Arc<dyn StorageFile>,
    pub opts: Options,
    pub page_size: usize,
    pub cache: PageCache,
    pub index: RwLock<WalIndex>,
    pub writer: Arc<Mutex<WriterState>>,
    sync: Mutex<SyncState>,
    sync_cv: Condvar,
    /// Snapshot of new readers: the newest commit that is visible (durable in Full mode).
    pub visible: AtomicU64,
    /// Open read snapshots and how many readers hold each.
    pub readers: Mutex<BTreeMap<u64, u32>>,
    pub poisoned: AtomicBool,
    pub stats: Stats,
}

/// An open database. `Send + Sync`: share it between threads with an `Arc`.
pub struct Database {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("page_size", &self.shared.page_size).finish()
    }
}

fn wal_name(name: &str) -> String {
    format!("{name}-wal")
}

impl Database {
    /// Opens (or creates) the database whose main file is `path`; the WAL is `<path>-wal`.
    ///
    /// # Errors
    /// I/O errors, [`Error::Corruption`] for a damaged file, [`Error::InvalidArgument`].
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Database> {
        let path = path.as_ref();
        let bad = || Error::InvalidArgument { detail: format!("bad database path {path:?}") };
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        Database::open_with(Arc::new(FileStorage::new(dir)), name, opts)
    }

    /// Opens (or creates) the database `name` inside `storage`, recovering from the WAL.
    ///
    /// # Errors
    /// As [`Database::open`].
    pub fn open_with(storage: Arc<dyn Storage>, name: &str, opts: Options) -> Result<Database> {
        opts.validate()?;
        let main = storage.open(name, true).map_err(|e| Error::io("open", e))?;
        let wal = storage.open(&wal_name(name), true).map_err(|e| Error::io("open", e))?;
        if main.len().map_err(|e| Error::io("open", e))? == 0 {
            // The WAL is first written after the new main file is durable: a WAL beside an
            // empty main file means the main file was lost, and replaying the WAL onto a
            // fresh database would fabricate one.
            if wal.len().map_err(|e| Error::io("open", e))? > 0 {
                let detail = "main file is empty but its WAL is not".into();
                return Err(Error::Corruption { location: Location::Meta, detail });
            }
            crate::write::bootstrap(main.as_ref(), opts.page_size)?;
            storage.sync_dir().map_err(|e| Error::io("sync dir", e))?;
        }
        let meta = read_meta(main.as_ref())?;
        let page_size = meta.page_size as usize;
        let header = open_wal_header(wal.as_ref(), &meta, &opts)?;
        let lax = crate::bugs::active(opts.seeded_bug, crate::SeededBug::AcceptBadFrameChecksum);
        let recovered = wal::recover(wal.as_ref(), &header, meta.last_txn_id, lax)?;
        let shared = Arc::new(Shared::new(main, wal, opts, meta, header, page_size));
        shared.replay(&recovered)?;
        // Also when every frame was already checkpointed: that generation's salt is the
        // checkpointed salt, which must never carry new commits (see the torn-header rule).
        if !recovered.txns.is_empty() || recovered.torn_tail || recovered.end_frame > 0 {
            // Fold the log into the main file and start a new generation, so frames of a
            // torn tail can never be mistaken for frames of a later transaction.
            let mut w = shared.writer.lock();
            shared.checkpoint_locked(&mut w, true)?;
        }
        if let Durability::Normal { millis, .. } = shared.opts.durability {
            spawn_flusher(Arc::downgrade(&shared), Duration::from_millis(u64::from(millis)));
        }
        Ok(Database { shared })
    }

    /// Starts a read transaction on the newest visible commit. Never blocks on the writer.
    ///
    /// # Errors
    /// None today; reserved for limits on open readers.
    pub fn begin_read(&self) -> Result<ReadTxn> {
        Ok(ReadTxn::new(self.shared.clone()))
    }

    /// Starts the write transaction, waiting for the previous one to finish.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after a failed fsync.
    pub fn begin_write(&self) -> Result<WriteTxn> {
        WriteTxn::new(self.shared.clone())
    }

    /// Copies committed pages into the main file and, when no reader needs the old
    /// versions, restarts the WAL.
    ///
    /// # Errors
    /// I/O errors; [`Error::Poisoned`].
    pub fn checkpoint(&self) -> Result<()> {
        let mut w = self.shared.writer.lock();
        self.shared.checkpoint_locked(&mut w, false)
    }

    /// Makes every commit so far durable (useful in Normal and Off modes).
    ///
    /// # Errors
    /// I/O errors; [`Error::Poisoned`].
    pub fn sync(&self) -> Result<()> {
        let lsn = self.shared.writer.lock().lsn;
        self.shared.wait_durable(lsn)
    }

    /// Counters and gauges.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
    }

    /// Walks every table and page; see [`crate::IntegrityReport`].
    ///
    /// # Errors
    /// I/O errors. Damage is reported inside the report, not as an error.
    pub fn check_integrity(&self) -> Result<crate::IntegrityReport> {
        crate::check::run(&self.begin_read()?)
    }

    /// Syncs, checkpoints and closes.
    ///
    /// # Errors
    /// I/O errors; [`Error::Poisoned`].
    pub fn close(self) -> Result<()> {
        self.sync()?;
        self.checkpoint()
    }
}

/// Reads and validates page 0.
fn read_meta(main: &dyn StorageFile) -> Result<Meta> {
    let bad = |detail: &str| Error::Corruption { location: Location::Meta, detail: detail.into() };
    let mut first = vec![0u8; PAGE_SIZE_MIN];
    main.read_at(&mut first, 0).map_err(|_| bad("main file shorter than one page"))?;
    let page_size = Meta::peek_page_size(&first).ok_or_else(|| bad("no valid page size"))?;
    let mut buf = vec![0u8; page_size].into_boxed_slice();
    main.read_at(&mut buf, 0).map_err(|_| bad("main file shorter than its page size"))?;
    let page = PageBuf::from_bytes(buf);
    page.verify(0).map_err(|e| bad(&format!("meta page: {e}")))?;
    Meta::decode(page.body(), page_size)
}

/// Reads the WAL header, or writes a fresh one when the WAL is empty or its header was torn
/// after a completed checkpoint.
fn open_wal_header(wal: &dyn StorageFile, meta: &Meta, opts: &Options) -> Result<WalHeader> {
    let len = wal.len().map_err(|e| Error::io("open wal", e))?;
    let fresh = |generation: u64| -> Result<WalHeader> {
        let salt = make_salt(opts.salt_seed, generation, meta.checkpointed_salt);
        let h = WalHeader { page_size: meta.page_size, salt, generation };
        wal.write_at(&h.encode(), 0).map_err(|e| Error::io("wal header", e))?;
        wal.sync().map_err(|e| Error::io("wal sync", e))?;
        Ok(h)
    };
    if len < WAL_HEADER_LEN {
        return fresh(1);
    }
    let mut buf = [0u8; WAL_HEADER_LEN as usize];
    wal.read_at(&mut buf, 0).map_err(|e| Error::io("wal header", e))?;
    if let Some(h) = WalHeader::decode(&buf) {
        if h.page_size != meta.page_size {
            let detail = format!("page size {} != {}", h.page_size, meta.page_size);
            return Err(Error::Corruption { location: Location::WalHeader, detail });
        }
        return Ok(h);
    }
    // A torn header is harmless only if no frame of a live generation follows it.
    if let Some(salt) = first_frame_salt(wal, meta.page_size as usize, len)? {
        if salt != meta.checkpointed_salt {
            let detail = "header invalid but frame 0 belongs to an uncheckpointed log".into();
            return Err(Error::Corruption { location: Location::WalHeader, detail });
        }
    }
    fresh(1)
}

fn first_frame_salt(wal: &dyn StorageFile, page_size: usize, len: u64) -> Result<Option<u64>> {
    let size = wal::frame_size(page_size);
    if len < WAL_HEADER_LEN + size {
        return Ok(None);
    }
    let mut buf = vec![0u8; size as usize];
    wal.read_at(&mut buf, WAL_HEADER_LEN).map_err(|e| Error::io("wal scan", e))?;
    Ok(wal::decode_frame(&buf).filter(|f| f.index == 0).map(|f| f.salt))
}

/// A salt for a WAL generation: seeded (reproducible) or from the OS, never 0 and never
/// equal to the salt of the last checkpointed generation.
pub(crate) fn make_salt(seed: Option<u64>, generation: u64, avoid: u64) -> u64 {
    let mut x = match seed {
        Some(s) => s ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        None => rand::random::<u64>(),
    };
    loop {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if z != 0 && z != avoid {
            return z;
        }
    }
}

/// Syncs the WAL of a Normal-mode database at least every `period` while it is open.
fn spawn_flusher(shared: Weak<Shared>, period: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(period);
        let Some(shared) = shared.upgrade() else { return };
        if shared.poisoned.load(Ordering::Acquire) {
            return;
        }
        let written = shared.sync.lock().written_lsn;
        // Errors poison the database; committers see them.
        let _ = shared.wait_durable(written);
    });
}

impl Shared {
    fn new(
        main: Arc<dyn StorageFile>,
        wal: Arc<dyn StorageFile>,
        opts: Options,
        meta: Meta,
        header: WalHeader,
        page_size: usize,
    ) -> Shared {
        let cache = PageCache::new(opts.cache_bytes_max, page_size);
        let index = WalIndex {
            generation: header.generation,
            salt: header.salt,
            pages: IntMap::default(),
            backfilled_txn: meta.last_txn_id,
        };
        let writer = WriterState {
            lsn: 0,
            generation_lsn: 0,
            latest_txn: meta.last_txn_id,
            next_txn_id: meta.last_txn_id + 1,
            meta,
            commits_since_sync: 0,
            last_sync: Instant::now(),
            frame_buf: Vec::new(),
        };
        Shared {
            main,
            wal,
            opts,
            page_size,
            cache,
            index: RwLock::new(index),
            writer: Arc::new(Mutex::new(writer)),
            sync: Mutex::new(SyncState::default()),
            sync_cv: Condvar::new(),
            visible: AtomicU64::new(meta.last_txn_id),
            readers: Mutex::new(BTreeMap::new()),
            poisoned: AtomicBool::new(false),
            stats: Stats::default(),
        }
    }

    /// Loads the recovered transactions into the WAL index.
    fn replay(&self, rec: &wal::Recovered) -> Result<()> {
        let mut w = self.writer.lock();
        let mut index = self.index.write();
        for txn in &rec.txns {
            for &(page, frame) in &txn.frames {
                index.pages.entry(page).or_default().push((txn.txn_id, frame));
            }
            w.latest_txn = txn.txn_id;
            w.next_txn_id = txn.txn_id + 1;
        }
        drop(index);
        w.lsn = rec.end_frame;
        let mut s = self.sync.lock();
        s.written_lsn = rec.end_frame;
        s.synced_lsn = rec.end_frame;
        s.written_txn = w.latest_txn;
        drop(s);
        self.visible.store(w.latest_txn, Ordering::Release);
        if rec.txns.is_empty() {
            return Ok(());
        }
        let meta_page = self.read_page(0, w.latest_txn)?;
        w.meta = Meta::decode(&meta_page, self.page_size)?;
        w.meta.last_txn_id = w.latest_txn;
        Ok(())
    }

    /// The page `no` as of commit `snap`.
    pub(crate) fn read_page(&self, no: PageNo, snap: u64) -> Result<PageRef> {
        // The read lock is held across the load so a WAL reset cannot reuse the frame
        // between the lookup and the read.
        let index = self.index.read();
        let loc = match index.lookup(no, snap) {
            Some(frame) => Loc::Wal { generation: index.generation, frame },
            None => Loc::Main(no),
        };
        if let Some(page) = self.cache.get(loc) {
            return Ok(PageRef(page));
        }
        let page = Arc::new(self.load(loc, no)?);
        drop(index);
        self.cache.insert(loc, page.clone());
        Ok(PageRef(page))
    }

    /// Reads a page image from storage and verifies it.
    fn load(&self, loc: Loc, no: PageNo) -> Result<PageBuf> {
        let mut buf = vec![0u8; self.page_size].into_boxed_slice();
        let (file, offset) = match loc {
            Loc::Main(p) => (&self.main, u64::from(p) * self.page_size as u64),
            Loc::Wal { frame, .. } => {
                let at = wal::frame_offset(frame, self.page_size) + wal::FRAME_HEADER_LEN as u64;
                (&self.wal, at)
            }
        };
        file.read_at(&mut buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::page(no, "beyond the end of the file")
            } else {
                Error::io("read page", e)
            }
        })?;
        self.stats.pages_read.fetch_add(1, Ordering::Relaxed);
        let page = PageBuf::from_bytes(buf);
        page.verify(no)?;
        Ok(page)
    }

    /// True when the seeded bug `b` is configured and honoured.
    pub(crate) fn bug(&self, b: crate::SeededBug) -> bool {
        crate::bugs::active(self.opts.seeded_bug, b)
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Returns once every frame below `lsn` is durable. One caller at a time runs the
    /// fsync; the others wait and usually find their frames covered (group commit).
    pub(crate) fn wait_durable(&self, lsn: u64) -> Result<()> {
        let mut s = self.sync.lock();
        loop {
            self.check_poisoned()?;
            if s.synced_lsn >= lsn {
                return Ok(());
            }
            if s.syncing {
                self.sync_cv.wait(&mut s);
                continue;
            }
            s.syncing = true;
            let (goal_lsn, goal_txn) = (s.written_lsn, s.written_txn);
            debug_assert!(goal_lsn >= lsn);
            drop(s);
            let result = self.wal.sync();
            self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            s = self.sync.lock();
            s.syncing = false;
            if let Err(e) = result {
                self.poisoned.store(true, Ordering::Release);
                self.sync_cv.notify_all();
                return Err(Error::io("wal sync", e));
            }
            s.synced_lsn = s.synced_lsn.max(goal_lsn);
            self.visible.fetch_max(goal_txn, Ordering::AcqRel);
            self.sync_cv.notify_all();
        }
    }

    /// Frames of the current generation known durable (for `synced_upto`).
    pub(crate) fn synced_in_generation(&self, w: &WriterState) -> u64 {
        self.sync.lock().synced_lsn.saturating_sub(w.generation_lsn)
    }

    /// Records frames written by the writer up to `lsn`, for commit `txn`.
    pub(crate) fn note_written(&self, lsn: u64, txn: u64) {
        let mut s = self.sync.lock();
        debug_assert!(lsn >= s.written_lsn && txn >= s.written_txn);
        s.written_lsn = lsn;
        s.written_txn = txn;
    }

    /// A WAL frame header for the writer's next frame.
    pub(crate) fn frame_header(&self, w: &WriterState, page_no: PageNo, txn_id: u64) -> FrameHeader {
        let salt = self.index.read().salt;
        FrameHeader {
            page_no,
            commit_page_count: 0,
            salt,
            index: w.lsn - w.generation_lsn,
            txn_id,
            synced_upto: self.synced_in_generation(w),
        }
    }
}
