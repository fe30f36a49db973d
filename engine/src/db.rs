//! The database: shared state, opening and recovery, group commit, checkpoints.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard};

use crate::cache::{IntMap, Loc, PageCache};
use crate::error::{Error, Location, Result};
use crate::meta::Meta;
use crate::options::{Durability, Metrics, Options};
use crate::page::{PageBuf, PageNo, PageRef, PAGE_SIZE_MIN};
use crate::storage::{FileStorage, Storage, StorageFile};
use crate::txn::ReadTxn;
use crate::wal::{self, FrameHeader, WalHeader, WAL_HEADER_LEN};
use crate::write::WriteTxn;

/// Versions of pages in the WAL: page -> [(commit txn id, frame index)], oldest first.
pub(crate) struct WalIndex {
    pub generation: u64,
    pub salt: u64,
    pub pages: IntMap<PageNo, Vec<(u64, u64)>>,
    /// Commits with ids up to here are copied into the main file.
    pub backfilled_txn: u64,
}

impl WalIndex {
    /// Where snapshot `snap` finds page `no`: its newest committed frame, else the main file.
    pub(crate) fn loc(&self, no: PageNo, snap: u64) -> Loc {
        match self.lookup(no, snap) {
            Some(frame) => Loc::Wal {
                generation: self.generation,
                frame,
            },
            None => Loc::Main(no),
        }
    }

    /// The newest frame of `no` committed at or before `snap`.
    pub(crate) fn lookup(&self, no: PageNo, snap: u64) -> Option<u64> {
        newest_at(self.pages.get(&no)?, snap).map(|(_, frame)| frame)
    }
}

/// The newest of `versions` (ascending by commit id) committed at or before `snap`: the
/// last one when the snapshot is current (the usual case), else by binary search. A page
/// rewritten by every commit of a long generation has one version per commit, and a
/// linear scan per read then made a busy writer quadratic (`harness run scale/100m`).
pub(crate) fn newest_at(versions: &[(u64, u64)], snap: u64) -> Option<(u64, u64)> {
    match versions.last() {
        Some(&last) if last.0 <= snap => Some(last),
        _ => {
            let i = versions.partition_point(|&(txn, _)| txn <= snap);
            versions.get(i.checked_sub(1)?).copied()
        }
    }
}

/// Open read snapshots with their reader counts. Few distinct snapshots are open at once and
/// new ones are the newest, so a small Vec kept in order beats a map and, once warm, never
/// allocates on the read path.
#[derive(Default)]
pub(crate) struct Readers {
    snaps: Vec<(u64, u32)>,
}

impl Readers {
    pub(crate) fn add(&mut self, snap: u64) {
        match self.snaps.iter().rposition(|&(s, _)| s <= snap) {
            Some(i) if self.snaps[i].0 == snap => self.snaps[i].1 += 1,
            Some(i) => self.snaps.insert(i + 1, (snap, 1)),
            None => self.snaps.insert(0, (snap, 1)),
        }
        debug_assert!(self.snaps.windows(2).all(|w| w[0].0 < w[1].0));
    }

    pub(crate) fn remove(&mut self, snap: u64) {
        if let Some(i) = self.snaps.iter().rposition(|&(s, _)| s == snap) {
            self.snaps[i].1 -= 1;
            if self.snaps[i].1 == 0 {
                self.snaps.remove(i);
            }
        }
    }

    /// The oldest open snapshot.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.snaps.first().map(|&(s, _)| s)
    }

    /// Read transactions open.
    pub(crate) fn count(&self) -> u64 {
        self.snaps.iter().map(|&(_, n)| u64::from(n)).sum()
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
    /// Bytes of WAL file known to exist (written frames or zero fill); see `ensure_wal_space`.
    pub wal_allocated: u64,
    /// A writer past the WAL's hard bound checkpoints only from this `lsn` on: set when a
    /// reader kept the last such checkpoint from restarting the WAL.
    pub bound_retry_lsn: u64,
    /// Frames of the last commit: the size the bound check expects of the next one.
    pub last_txn_frames: u64,
}

#[derive(Default)]
pub(crate) struct SyncState {
    pub(crate) written_lsn: u64,
    pub(crate) written_txn: u64,
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
    /// Checkpoints a writer ran because the WAL passed its hard bound.
    pub bound_checkpoints: AtomicU64,
    /// Checkpoints that could not restart the WAL because of an open reader.
    pub checkpoints_blocked_by_reader: AtomicU64,
    /// Gauges kept beside the writer's state so `metrics` never waits for the writer.
    pub page_count: AtomicU64,
    pub wal_frames: AtomicU64,
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
    pub(crate) sync: Mutex<SyncState>,
    sync_cv: Condvar,
    /// Snapshot of new readers: the newest commit that is visible (durable in Full mode).
    pub visible: AtomicU64,
    /// Open read snapshots and how many readers hold each.
    pub readers: Mutex<Readers>,
    pub poisoned: AtomicBool,
    pub stats: Stats,
    /// Held by every checkpoint for its whole run, before the writer when it takes both:
    /// a background checkpoint reads WAL frames without the writer, so no other checkpoint
    /// may reset the WAL under it.
    pub checkpoint_serial: Mutex<()>,
    /// Requests to the background checkpointer.
    pub(crate) background: Mutex<Background>,
    pub(crate) background_cv: Condvar,
}

/// The background thread's mailbox: independent flags, so plain bools.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Default)]
pub(crate) struct Background {
    /// The thread is running and takes requests.
    pub running: bool,
    /// A commit crossed `wal_checkpoint_bytes`.
    pub requested: bool,
    /// The WAL's zero-filled space ahead of the last frame is running out.
    pub grow_requested: bool,
    pub stop: bool,
}

/// An open database. `Send + Sync`: share it between threads with an `Arc`.
pub struct Database {
    pub(crate) shared: Arc<Shared>,
    /// The background checkpointer, stopped and joined on drop so that no thread touches
    /// the files once the handle is gone (a reopen may follow at once).
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some(handle) = self.checkpointer.take() else {
            return;
        };
        let mut bg = self.shared.background.lock();
        bg.stop = true;
        bg.running = false;
        drop(bg);
        self.shared.background_cv.notify_all();
        // A panic in the checkpointer has nothing to hand back here; its effects on the
        // files are covered by recovery like any crash.
        let _ = handle.join();
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("page_size", &self.shared.page_size)
            .field("checkpointer", &self.checkpointer.is_some())
            .finish()
    }
}

/// True when the first `len` bytes of `main` are a prefix of a new database's image. Zeros
/// do not count: they are as likely a database whose blocks were lost, and refusing to open
/// beats silently starting over (the `open_damaged` fuzzer found both cases).
fn interrupted_creation(main: &dyn StorageFile, len: u64, page_size: usize) -> Result<bool> {
    let mut bytes = vec![0u8; len as usize];
    main.read_at(&mut bytes, 0)
        .map_err(|e| Error::io("open", e))?;
    let image = crate::write::bootstrap_image(page_size)?;
    Ok(image.starts_with(&bytes))
}

/// A new database is two pages of at least this size: meta and catalog root.
const BOOTSTRAP_BYTES_MIN: u64 = 2 * PAGE_SIZE_MIN as u64;

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
        let bad = || Error::InvalidArgument {
            detail: format!("bad database path {}", path.display()),
        };
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
    // Taking the Arc by value keeps callers from juggling borrows of a trait object.
    #[allow(clippy::needless_pass_by_value)]
    pub fn open_with(storage: Arc<dyn Storage>, name: &str, opts: Options) -> Result<Database> {
        opts.validate()?;
        let main = storage.open(name, true).map_err(|e| Error::io("open", e))?;
        let wal = storage
            .open(&wal_name(name), true)
            .map_err(|e| Error::io("open", e))?;
        let main_len = main.len().map_err(|e| Error::io("open", e))?;
        let wal_len = wal.len().map_err(|e| Error::io("open", e))?;
        // The WAL is first written after the new main file is durable, so a WAL beside an
        // empty main file means the main file was lost: replaying the WAL onto a fresh
        // database would fabricate one.
        if main_len == 0 && wal_len > 0 {
            let detail = "main file is empty but its WAL is not".into();
            return Err(Error::Corruption {
                location: Location::Meta,
                detail,
            });
        }
        // Bootstrap writes its two pages in one write; a shorter file holding a prefix of
        // that image (or zeros), with no WAL yet, is a creation that crashed before anything
        // was committed: start it again. Anything else that short is a truncated database
        // (the open_damaged fuzzer found that treating it as new silently lost tables).
        if main_len < BOOTSTRAP_BYTES_MIN && wal_len == 0 {
            if !interrupted_creation(main.as_ref(), main_len, opts.page_size)? {
                let detail = format!("main file truncated to {main_len} bytes");
                return Err(Error::Corruption {
                    location: Location::Meta,
                    detail,
                });
            }
            main.set_len(0).map_err(|e| Error::io("create", e))?;
            crate::write::bootstrap(main.as_ref(), opts.page_size)?;
            if !crate::bugs::active(opts.seeded_bug, crate::SeededBug::SkipDirSyncOnCreate) {
                storage.sync_dir().map_err(|e| Error::io("sync dir", e))?;
            }
        }
        // A torn meta page (power loss during a checkpoint) is recovered from the WAL, which
        // still holds the page until the checkpoint that wrote it has completed.
        let meta = match read_meta(main.as_ref()) {
            // The device failed the read: nothing is known of the file, so nothing to recover.
            Err(e @ Error::Io { .. }) => return Err(e),
            meta => meta,
        };
        // The WAL's answers are needed only when the meta page is damaged; a read error
        // while asking is the device's, reported as such (not as the meta page's damage).
        let page_size = match &meta {
            Ok(m) => m.page_size as usize,
            Err(e) => match wal_page_size(wal.as_ref())? {
                Some(ps) => ps,
                None => wal::frame_page_size(wal.as_ref())?.ok_or_else(|| clone_corruption(e))?,
            },
        };
        let last_txn = meta.as_ref().map_or(0, |m| m.last_txn_id);
        let (header, adopted) = open_wal_header(wal.as_ref(), page_size, last_txn, &opts)?;
        let active = |b| crate::bugs::active(opts.seeded_bug, b);
        let bugs = wal::ScanBugs {
            accept_bad_checksum: active(crate::SeededBug::AcceptBadFrameChecksum),
            ignore_vouching: active(crate::SeededBug::CorruptWalReadAsTornTail),
            skip_invalid_txn: active(crate::SeededBug::SkipInvalidWalTxn),
        };
        // Every valid frame of the generation is replayed, even if an earlier checkpoint
        // already copied it: copying again is idempotent, and trusting the main file's meta
        // page to say what was copied is unsafe when that checkpoint died part-way (found by
        // the kill -9 test).
        let recovered = wal::recover(wal.as_ref(), &header, bugs)?;
        let meta = match meta {
            Ok(m) => m,
            Err(e) => meta_from_wal(
                wal.as_ref(),
                &recovered,
                page_size,
                header.salt,
                bugs.accept_bad_checksum,
            )?
            .ok_or(e)?,
        };
        let shared = Arc::new(Shared::new((main, wal), opts, meta, header, page_size));
        shared.replay(&recovered)?;
        if adopted || !recovered.txns.is_empty() || recovered.torn_tail {
            // Fold the log into the main file and start a new generation, so frames of a
            // torn tail can never be mistaken for frames of a later transaction.
            let mut w = shared.writer.lock();
            match shared.checkpoint_locked(&mut w, true) {
                Ok(()) => {}
                // A full disk must not make the database unopenable: go on in the replayed
                // generation and leave the checkpoint to a later commit.
                Err(Error::DiskFull { .. }) if !shared.is_poisoned() => {
                    Shared::continue_generation(&mut w, &recovered);
                }
                Err(e) => return Err(e),
            }
        }
        shared.note_gauges(&shared.writer.lock());
        if let Durability::Normal { millis, .. } = shared.opts.durability {
            spawn_flusher(
                Arc::downgrade(&shared),
                Duration::from_millis(u64::from(millis)),
            );
        }
        let checkpointer = if shared.opts.checkpoint_in_background {
            Some(spawn_checkpointer(shared.clone())?)
        } else {
            None
        };
        Ok(Database {
            shared,
            checkpointer,
        })
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
    /// versions, restarts the WAL. Waits for the write transaction in progress, so a thread
    /// must not call it while holding a [`WriteTxn`].
    ///
    /// # Errors
    /// I/O errors; [`Error::Poisoned`].
    pub fn checkpoint(&self) -> Result<()> {
        let serial = self.shared.checkpoint_serial.lock();
        let (_serial, mut w) = self.shared.writer_after_serial(serial);
        self.shared.checkpoint_locked(&mut w, false)
    }

    /// Makes every commit so far durable (useful in Normal and Off modes).
    ///
    /// # Errors
    /// I/O errors; [`Error::Poisoned`].
    pub fn sync(&self) -> Result<()> {
        // From the sync state, not the writer: a thread holding a write transaction may call
        // this without deadlocking on its own writer lock.
        let lsn = self.shared.sync.lock().written_lsn;
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
    let bad = |detail: &str| Error::Corruption {
        location: Location::Meta,
        detail: detail.into(),
    };
    // A short file is damage; any other read error is the device's, reported as I/O (an
    // EIO here once read as "corruption in database header").
    let read_err = |e: std::io::Error, short: &str| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(short)
        } else {
            Error::io("read meta page", e)
        }
    };
    let mut first = vec![0u8; PAGE_SIZE_MIN];
    main.read_at(&mut first, 0)
        .map_err(|e| read_err(e, "main file shorter than one page"))?;
    let page_size = Meta::peek_page_size(&first).ok_or_else(|| bad("no valid page size"))?;
    let mut buf = vec![0u8; page_size].into_boxed_slice();
    main.read_at(&mut buf, 0)
        .map_err(|e| read_err(e, "main file shorter than its page size"))?;
    let page = PageBuf::from_bytes(&buf);
    page.verify(0)
        .map_err(|e| bad(&format!("meta page: {e}")))?;
    Meta::decode(page.body(), page_size)
}

/// The page size named by a valid WAL header, if any.
/// The page size the WAL header names; None for a WAL too short or a header that does not
/// decode.
///
/// # Errors
/// A read error other than a short file ([`Error::Io`]).
fn wal_page_size(wal: &dyn StorageFile) -> Result<Option<usize>> {
    let mut buf = [0u8; WAL_HEADER_LEN as usize];
    match wal.read_at(&mut buf, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::io("wal header", e)),
    }
    let Some(h) = WalHeader::decode(&buf) else {
        return Ok(None);
    };
    let ps = h.page_size as usize;
    let valid = (PAGE_SIZE_MIN..=crate::PAGE_SIZE_MAX).contains(&ps) && ps.is_power_of_two();
    Ok(valid.then_some(ps))
}

/// The newest committed version of page 0 in the recovered WAL, decoded.
fn meta_from_wal(
    wal: &dyn StorageFile,
    rec: &wal::Recovered,
    page_size: usize,
    salt: u64,
    lax: bool,
) -> Result<Option<Meta>> {
    let frame = rec
        .txns
        .iter()
        .rev()
        .flat_map(|t| t.frames.iter().rev())
        .find(|(p, _)| *p == 0);
    let Some(&(_, frame)) = frame else {
        return Ok(None);
    };
    // Recovery validated this frame a moment ago: read it back whole all the same. A read
    // error is the device's and is returned as one: taken for "no meta page in the WAL", it
    // once turned an EIO into "corruption in database header" (`faults/read-errors`).
    match wal::read_frame_page(wal, frame, page_size, salt, 0, lax) {
        Ok(page) => Ok(Meta::decode(page.body(), page_size).ok()),
        Err(e @ Error::Io { .. }) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Errors are not `Clone` (they may hold an `io::Error`); corruption is what matters here.
fn clone_corruption(e: &Error) -> Error {
    match e {
        Error::Corruption { location, detail } => Error::Corruption {
            location: location.clone(),
            detail: detail.clone(),
        },
        other => Error::Corruption {
            location: Location::Meta,
            detail: other.to_string(),
        },
    }
}

/// Reads the WAL header. When it is missing or invalid: if frame 0 validates, its salt names
/// the generation to replay (the header was torn by a reset after a completed checkpoint,
/// or damaged later; replaying is right either way), and `true` says a new header is due.
/// Otherwise a fresh header is written.
fn open_wal_header(
    wal: &dyn StorageFile,
    page_size: usize,
    last_txn: u64,
    opts: &Options,
) -> Result<(WalHeader, bool)> {
    let len = wal.len().map_err(|e| Error::io("open wal", e))?;
    // `entropy` tells apart two fresh headers written at the same transaction id and WAL
    // length (the bytes of the damaged header they replace), so seeded salts do not repeat.
    let fresh = |generation: u64, entropy: u64| -> Result<(WalHeader, bool)> {
        let seed = opts
            .salt_seed
            .map(|s| s ^ last_txn.rotate_left(32) ^ len ^ entropy.rotate_left(48));
        let salt = make_salt(seed, generation, 0);
        let h = WalHeader {
            page_size: page_size as u32,
            salt,
            generation,
        };
        wal.write_at(&h.encode(), 0)
            .map_err(|e| Error::io("wal header", e))?;
        wal.sync().map_err(|e| Error::io("wal sync", e))?;
        Ok((h, false))
    };
    if len < WAL_HEADER_LEN {
        return fresh(1, 0);
    }
    let mut buf = [0u8; WAL_HEADER_LEN as usize];
    wal.read_at(&mut buf, 0)
        .map_err(|e| Error::io("wal header", e))?;
    if let Some(h) = WalHeader::decode(&buf) {
        if h.page_size != page_size as u32 {
            let detail = format!("page size {} != {}", h.page_size, page_size as u32);
            return Err(Error::Corruption {
                location: Location::WalHeader,
                detail,
            });
        }
        return Ok((h, false));
    }
    if let Some(salt) = first_frame_salt(wal, page_size, len)? {
        let h = WalHeader {
            page_size: page_size as u32,
            salt,
            generation: 0,
        };
        return Ok((h, true));
    }
    fresh(1, u64::from(crc32c::crc32c(&buf)))
}

fn first_frame_salt(wal: &dyn StorageFile, page_size: usize, len: u64) -> Result<Option<u64>> {
    let size = wal::frame_size(page_size);
    if len < WAL_HEADER_LEN + size {
        return Ok(None);
    }
    let mut buf = vec![0u8; size as usize];
    wal.read_at(&mut buf, WAL_HEADER_LEN)
        .map_err(|e| Error::io("wal scan", e))?;
    Ok(wal::decode_frame(&buf)
        .filter(|f| f.index == 0)
        .map(|f| f.salt))
}

/// A salt for a WAL generation: seeded (reproducible) or from the OS, never 0 and never
/// equal to `previous`, the salt of the generation it replaces.
///
/// A seeded salt mixes in `previous` as well as the generation number: generation numbers
/// can repeat (a torn header restarts them from the salt of frame 0), and a salt derived
/// from the number alone would then repeat too, letting frames of an old generation left
/// further along in the file validate as part of the new one. Recovery then took them
/// for frames that vouch for a synced prefix and refused an undamaged WAL as corrupt
/// (found by `harness run faults/power-loss-fdb --seed 1007`). Chaining through the
/// previous salt makes a repeat as unlikely as for salts drawn from the OS.
pub(crate) fn make_salt(seed: Option<u64>, generation: u64, previous: u64) -> u64 {
    let mut x = match seed {
        Some(s) => {
            s ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ previous.rotate_left(29).wrapping_mul(0xD6E8_FEB8_6659_FD93)
        }
        None => rand::random::<u64>(),
    };
    loop {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if z != 0 && z != previous {
            return z;
        }
    }
}

/// Starts the background checkpointer: it waits for a request from a commit that crossed
/// `wal_checkpoint_bytes` and runs [`Shared::checkpoint_background`], until the handle
/// drops. Errors are not lost: a failed fsync poisons the database, and anything else
/// (say, disk full) leaves the WAL to the next request or to the committer's own
/// checkpoint at twice the threshold.
fn spawn_checkpointer(shared: Arc<Shared>) -> Result<std::thread::JoinHandle<()>> {
    shared.background.lock().running = true;
    std::thread::Builder::new()
        .name("engine-checkpoint".into())
        .spawn(move || loop {
            let mut bg = shared.background.lock();
            while !bg.requested && !bg.grow_requested && !bg.stop {
                shared.background_cv.wait(&mut bg);
            }
            if bg.stop {
                return;
            }
            let (checkpoint, grow) = (bg.requested, bg.grow_requested);
            bg.requested = false;
            bg.grow_requested = false;
            drop(bg);
            if grow {
                let _ = shared.grow_wal_ahead();
            }
            if checkpoint {
                let _ = shared.checkpoint_background();
            }
        })
        .map_err(|e| Error::io("spawn checkpointer", e))
}

/// Syncs the WAL of a Normal-mode database at least every `period` while it is open.
fn spawn_flusher(shared: Weak<Shared>, period: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(period);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.poisoned.load(Ordering::Acquire) {
            return;
        }
        if shared.bug(crate::SeededBug::NormalFlusherNeverSyncs) {
            continue;
        }
        let written = shared.sync.lock().written_lsn;
        // Errors poison the database; committers see them.
        let _ = shared.wait_durable(written);
    });
}

impl Shared {
    fn new(
        (main, wal): (Arc<dyn StorageFile>, Arc<dyn StorageFile>),
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
            // Nothing of the WAL on disk is known to be in the main file.
            backfilled_txn: 0,
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
            wal_allocated: 0,
            bound_retry_lsn: 0,
            last_txn_frames: 0,
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
            readers: Mutex::new(Readers::default()),
            poisoned: AtomicBool::new(false),
            stats: Stats::default(),
            checkpoint_serial: Mutex::new(()),
            background: Mutex::new(Background::default()),
            background_cv: Condvar::new(),
        }
    }

    /// Loads the recovered transactions into the WAL index.
    fn replay(&self, rec: &wal::Recovered) -> Result<()> {
        let mut w = self.writer.lock();
        let mut index = self.index.write();
        // A replayed generation may have been checkpointed already, so its ids can be at or
        // below the meta page's: renumber its commits after the meta page's last id. Ids only
        // need to grow within one generation, and the open checkpoint starts a new one.
        for txn in &rec.txns {
            let id = w.latest_txn + 1;
            for &(page, frame) in &txn.frames {
                let versions = index.pages.entry(page).or_default();
                debug_assert!(versions.last().is_none_or(|&(t, _)| t < id));
                versions.push((id, frame));
            }
            w.latest_txn = id;
            w.next_txn_id = id + 1;
        }
        drop(index);
        // The replayed frames may still sit in the OS's cache only (a kill -9): make them
        // durable before anything counts on them, be it a checkpoint copying them into the
        // main file or a new frame vouching for them through `synced_upto`.
        if rec.end_frame > 0 {
            self.sync_or_poison(self.wal.as_ref(), "wal sync")?;
        }
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

    /// After an open whose checkpoint met a full disk: the writer appends to the replayed
    /// generation instead of a new one. Its commits take ids above every id of this
    /// generation in the file, the discarded tail included, so recovery never joins their
    /// frames to a stale transaction; they overwrite the tail from the end of the log on.
    fn continue_generation(w: &mut WriterState, rec: &wal::Recovered) {
        let next = (rec.txn_id_max + 1).max(w.next_txn_id);
        debug_assert!(next > w.latest_txn && next > rec.txn_id_max);
        w.next_txn_id = next;
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The page `no` as of commit `snap`.
    pub(crate) fn read_page(&self, no: PageNo, snap: u64) -> Result<PageRef> {
        // The read lock is held across the load so a WAL reset cannot reuse the frame
        // between the lookup and the read.
        let index = self.index.read();
        let loc = index.loc(no, snap);
        if let Some(page) = self.cache.get(loc) {
            return Ok(PageRef(page));
        }
        self.load_and_cache(index, loc, no).map(PageRef)
    }

    /// A cache miss: reads `loc` while `index` is still held (so a WAL reset cannot reuse
    /// the frame meanwhile), then caches it.
    fn load_and_cache(
        &self,
        index: RwLockReadGuard<'_, WalIndex>,
        loc: Loc,
        no: PageNo,
    ) -> Result<PageBuf> {
        let page = self.load(&index, loc, no)?;
        drop(index);
        self.cache.insert(loc, page.clone());
        Ok(page)
    }

    /// [`Shared::read_page`] for a caller that only looks: `f` runs under the cache shard's
    /// shared lock on a hit.
    pub(crate) fn with_page<R>(
        &self,
        no: PageNo,
        snap: u64,
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        let index = self.index.read();
        let loc = index.loc(no, snap);
        let mut f = Some(f);
        let hit = self
            .cache
            .with(loc, |page| f.take().map(|f| f(page.body())));
        if let Some(Some(result)) = hit {
            return result;
        }
        let page = self.load_and_cache(index, loc, no)?;
        match f.take() {
            Some(f) => f(page.body()),
            None => Err(Error::page(no, "page visitor ran twice")),
        }
    }

    /// Starts loading page `no` as of `snap` into the CPU cache when it is in the page
    /// cache; nothing otherwise.
    pub(crate) fn prefetch_page(&self, no: PageNo, snap: u64) {
        let index = self.index.read();
        let loc = index.loc(no, snap);
        self.cache.peek(loc, PageBuf::prefetch);
    }

    /// Reads a page image from storage and verifies it (a WAL frame whole, against the
    /// salt of the generation `index` holds).
    fn load(&self, index: &WalIndex, loc: Loc, no: PageNo) -> Result<PageBuf> {
        let p = match loc {
            Loc::Main(p) => p,
            Loc::Wal { frame, generation } => {
                debug_assert_eq!(generation, index.generation, "a frame of a past generation");
                let page = self.load_frame(frame, no, index.salt)?;
                self.stats.pages_read.fetch_add(1, Ordering::Relaxed);
                return Ok(page);
            }
        };
        let offset = u64::from(p) * self.page_size as u64;
        let page = PageBuf::read_with(self.page_size, |buf| {
            self.main.read_at(buf, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::page(no, "beyond the end of the file")
                } else {
                    Error::io("read page", e)
                }
            })
        })?;
        self.stats.pages_read.fetch_add(1, Ordering::Relaxed);
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
                if self.bug(crate::SeededBug::GroupCommitEarlyAck) {
                    return Ok(());
                }
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
                if !self.bug(crate::SeededBug::FsyncErrorNotPoisoned) {
                    self.poisoned.store(true, Ordering::Release);
                }
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
    pub(crate) fn frame_header(
        &self,
        w: &WriterState,
        page_no: PageNo,
        txn_id: u64,
    ) -> FrameHeader {
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

#[cfg(test)]
mod tests {
    use super::make_salt;

    /// A WAL whose every read fails with EIO (a dying device).
    #[derive(Debug)]
    struct Unreadable;

    impl crate::storage::StorageFile for Unreadable {
        fn read_at(&self, _: &mut [u8], _: u64) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(5))
        }
        fn write_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn set_len(&self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn len(&self) -> std::io::Result<u64> {
            Ok(1 << 20)
        }
    }

    /// With the meta page damaged, open asks the WAL for the page size and for page 0: a
    /// read error while asking is an I/O error, never "no meta page there" (which reported
    /// the meta page's damage instead: `faults/read-errors` seeds 1066, 1190, 1390, 1541,
    /// 1632 and 1923).
    #[test]
    fn wal_read_errors_while_repairing_the_meta_page_are_io_errors() {
        use crate::error::Error;
        let rec = crate::wal::Recovered {
            txns: vec![crate::wal::RecoveredTxn {
                txn_id: 5,
                page_count: 3,
                frames: vec![(2, 0), (0, 1)],
            }],
            ..crate::wal::Recovered::default()
        };
        let meta = super::meta_from_wal(&Unreadable, &rec, 4096, 7, false);
        assert!(matches!(meta, Err(Error::Io { .. })), "{meta:?}");
        let ps = super::wal_page_size(&Unreadable);
        assert!(matches!(ps, Err(Error::Io { .. })), "{ps:?}");
        let ps = crate::wal::frame_page_size(&Unreadable);
        assert!(matches!(ps, Err(Error::Io { .. })), "{ps:?}");
        // No frame of page 0: nothing to read, no error.
        let none = crate::wal::Recovered::default();
        assert!(matches!(
            super::meta_from_wal(&Unreadable, &none, 4096, 7, false),
            Ok(None)
        ));
    }

    /// A generation number reached twice (a torn header restarts the count) must not give
    /// the same seeded salt twice, or old frames validate in the new generation.
    #[test]
    fn seeded_salts_differ_when_a_generation_number_repeats() {
        let seed = Some(1007);
        let first = make_salt(seed, 1, 0xAAAA);
        let again = make_salt(seed, 1, 0xBBBB);
        assert_ne!(first, again);
        assert_eq!(first, make_salt(seed, 1, 0xAAAA), "seeded salts replay");
        assert_ne!(make_salt(seed, 2, first), first);
        assert_ne!(make_salt(None, 1, 0), 0);
    }

    #[test]
    fn newest_at_finds_the_version_of_every_snapshot() {
        use super::newest_at;
        let versions: Vec<(u64, u64)> = (1..=1000).map(|i| (i * 2, i)).collect();
        assert_eq!(newest_at(&versions, 1), None);
        assert_eq!(newest_at(&versions, 2), Some((2, 1)));
        assert_eq!(newest_at(&versions, 3), Some((2, 1)));
        assert_eq!(newest_at(&versions, 1001), Some((1000, 500)));
        assert_eq!(newest_at(&versions, u64::MAX), Some((2000, 1000)));
        assert_eq!(newest_at(&[], 5), None);
        for snap in 0..2100 {
            let linear = versions.iter().rev().find(|(t, _)| *t <= snap).copied();
            assert_eq!(newest_at(&versions, snap), linear, "snapshot {snap}");
        }
    }
}
