//! The database: opening and recovery, the background threads (checkpointer, Normal-mode
//! flusher), handing out transactions, metrics, close.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::checkpoint;
use crate::error::{Error, Location, Result};
use crate::meta::Meta;
use crate::options::{Durability, Metrics, Options};
use crate::page::{PageBuf, PAGE_SIZE_MIN};
use crate::pager::Pager;
use crate::shared::{Shared, WriterState};
use crate::stats::Stats;
use crate::storage::{FileStorage, Storage, StorageFile};
use crate::txn::ReadTxn;
use crate::wal::{self, WalHeader, WAL_HEADER_LEN};
use crate::wal_store::{make_salt, WalStore};
use crate::write::WriteTxn;

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
            .field("page_size", &self.shared.page_size())
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
    let image = crate::catalog::bootstrap_image(page_size)?;
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
            crate::catalog::bootstrap(main.as_ref(), opts.page_size)?;
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
        let stats = Arc::new(Stats::default());
        // The pager refuses pages past this count; replay raises it to the WAL's.
        stats
            .page_count
            .store(u64::from(meta.page_count), Ordering::Relaxed);
        let pager = Pager::new(main, page_size, opts.cache_bytes_max, stats.clone());
        let last_txn = meta.last_txn_id;
        let wal = WalStore::new(wal, &header, page_size, &opts, stats.clone(), last_txn);
        let shared = Arc::new(Shared::new((pager, wal), opts, meta, stats));
        replay(&shared, &recovered)?;
        if adopted || !recovered.txns.is_empty() || recovered.torn_tail {
            // Fold the log into the main file and start a new generation, so frames of a
            // torn tail can never be mistaken for frames of a later transaction.
            let mut w = shared.writer.lock();
            match checkpoint::checkpoint_locked(&shared, &mut w, true) {
                Ok(()) => {}
                // A full disk must not make the database unopenable: go on in the replayed
                // generation and leave the checkpoint to a later commit.
                Err(Error::DiskFull { .. }) if !shared.is_poisoned() => {
                    continue_generation(&mut w, &recovered);
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
        let (_serial, mut w) = checkpoint::writer_after_serial(&self.shared, serial);
        checkpoint::checkpoint_locked(&self.shared, &mut w, false)
    }

    /// Makes every commit so far durable (useful in Normal and Off modes).
    ///
    /// # Errors
    /// I/O errors; [`Error::Poisoned`].
    pub fn sync(&self) -> Result<()> {
        // From the sync state, not the writer: a thread holding a write transaction may call
        // this without deadlocking on its own writer lock.
        let lsn = self.shared.wal.written().0;
        self.shared.wal.wait_durable(lsn)
    }

    /// Counters and gauges.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        metrics(&self.shared)
    }

    /// The same counters and gauges as [`Database::metrics`], in the Prometheus text
    /// exposition format (counters end in `_total`; every name starts with `engine_`).
    #[must_use]
    pub fn metrics_prometheus(&self) -> String {
        crate::metrics::prometheus_text(&metrics(&self.shared))
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

/// Starts the background checkpointer: it waits for a request from a commit that crossed
/// `wal_checkpoint_bytes` and runs [`checkpoint::checkpoint_background`], until the handle
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
                let _ = crate::write::grow_wal_ahead(&shared);
            }
            if checkpoint {
                let _ = checkpoint::checkpoint_background(&shared);
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
        if shared.is_poisoned() {
            return;
        }
        if shared.bug(crate::SeededBug::NormalFlusherNeverSyncs) {
            continue;
        }
        let written = shared.wal.written().0;
        // Errors poison the database; committers see them.
        let _ = shared.wal.wait_durable(written);
    });
}

/// Loads the recovered transactions into the WAL store and the writer's state.
fn replay(shared: &Shared, rec: &wal::Recovered) -> Result<()> {
    let mut w = shared.writer.lock();
    let w = &mut *w;
    w.latest_txn = shared.wal.replay(&mut w.wal, rec, w.latest_txn)?;
    w.next_txn_id = w.latest_txn + 1;
    if rec.txns.is_empty() {
        return Ok(());
    }
    let meta_page = shared.read_page(0, w.latest_txn)?;
    w.meta = Meta::decode(&meta_page, shared.page_size())?;
    w.meta.last_txn_id = w.latest_txn;
    shared.note_gauges(w);
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

/// Counters and gauges, read without waiting for the writer.
fn metrics(shared: &Shared) -> Metrics {
    let c = shared.pager.cache_counters();
    let (readers_open, oldest) = {
        let r = shared.readers.lock();
        (r.count(), r.oldest())
    };
    let latest = shared.wal.visible();
    let s = &shared.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let frames = load(&s.wal_frames);
    Metrics {
        durability: shared.opts.durability,
        commits: load(&s.commits),
        rollbacks: load(&s.rollbacks),
        fsyncs: load(&s.fsyncs),
        checkpoints: load(&s.checkpoints),
        cache_hits: c.hits,
        cache_misses: c.misses,
        cache_evictions: c.evictions,
        cache_bytes: shared.pager.cache_bytes(),
        cache_bytes_max: shared.opts.cache_bytes_max as u64,
        pages_read: load(&s.pages_read),
        pages_written: load(&s.pages_written),
        bound_checkpoints: load(&s.bound_checkpoints),
        checkpoints_blocked_by_reader: load(&s.checkpoints_blocked_by_reader),
        readers_open,
        reader_lag_commits: oldest.map_or(0, |o| latest.saturating_sub(o)),
        wal_frames: frames,
        wal_bytes: WAL_HEADER_LEN + frames * shared.wal.frame_bytes(),
        page_count: load(&s.page_count),
        page_size: shared.page_size() as u64,
    }
}

#[cfg(test)]
mod tests {
    use crate::wal_store::make_salt;

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
        use crate::wal_store::newest_at;
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
