//! Checkpoint: copy committed page versions from the WAL into the main file, then restart
//! the WAL when no reader needs the old versions. The numbered steps match docs/design.md.

use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::MutexGuard;

use crate::cache::Loc;
use crate::db::{Shared, WriterState};
use crate::error::{Error, Result};
use crate::options::Metrics;
use crate::page::{PageBuf, PageNo};
use crate::storage::StorageFile;
use crate::wal::{self, WalHeader, WAL_HEADER_LEN};

/// Rounds of copying beside the writer before a background checkpoint takes the writer to
/// finish: under a steady write load each round has less to copy; four bound the time a
/// checkpoint can lag behind a writer that never lets up.
const PRECOPY_ROUNDS_MAX: usize = 4;

/// How long a holder of `checkpoint_serial` waits for the writer before it hands the serial
/// lock to a committer that may be waiting for it (see [`Shared::writer_after_serial`]).
const HANDOFF_WAIT: Duration = Duration::from_millis(1);

/// Handoffs before a holder of `checkpoint_serial` waits for the writer outright: each one
/// waits out one write transaction, so a crowd of writers cannot keep a checkpoint from the
/// writer for long, and the committer's own wait ([`BOUND_WAIT_MAX`]) ends it at worst.
const HANDOFF_TRIES_MAX: usize = 16;

/// How long a committer whose frames would cross the WAL's bound waits for the checkpoint
/// lock: long enough for a background checkpoint to finish copying a bounded WAL (it then
/// hands the lock over), short enough that a wedged one only lets this commit pass the bound.
const BOUND_WAIT_MAX: Duration = Duration::from_secs(10);

/// The WAL's hard bound, as a multiple of `wal_checkpoint_bytes`: past it a new write
/// transaction first runs the checkpoint itself, waiting for the writer in turn, so neither
/// busy committers (whose `try_lock`s the background thread can lose forever) nor a failing
/// checkpoint (a full disk) can let the WAL grow toward `wal_bytes_max`. Four leaves the
/// background thread room to finish first under any steady load.
pub(crate) const WAL_BOUND_FACTOR: u64 = 4;

/// Bytes per main-file write when copying runs of adjacent pages.
const COPY_RUN_BYTES_MAX: usize = 1 << 20;

impl Shared {
    /// Runs a checkpoint while holding the writer. `force_full` asks for a WAL reset even
    /// when nothing needs copying (used at open to start a fresh generation).
    pub(crate) fn checkpoint_locked(&self, w: &mut WriterState, force_full: bool) -> Result<()> {
        self.check_poisoned()?;
        if !force_full && self.pinned_by_reader(w.latest_txn) {
            self.stats
                .checkpoints_blocked_by_reader
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        // Step 1: every frame to be copied is durable in the WAL. It comes before the
        // reader limit: once the newest commit is visible, no new reader can start older.
        self.wait_durable(w.lsn)?;
        let limit = {
            let oldest = self.readers.lock().oldest();
            oldest.unwrap_or(u64::MAX).min(w.latest_txn)
        };
        let full = limit == w.latest_txn;
        let (mut copies, generation, salt) = self.collect_copies(limit);
        if self.bug(crate::SeededBug::DropPageAtCheckpoint) && copies.len() > 1 {
            copies.sort_unstable();
            copies.remove(copies.len() / 2);
        }
        if copies.is_empty() && !(full && (force_full || w.lsn > w.generation_lsn)) {
            return Ok(());
        }
        // Step 2: copy the newest version of each page. Only pages in the WAL are written,
        // so a torn main-file page is always still covered by its frame until step 4.
        let pages = self.load_copies(copies, generation, salt)?;
        self.write_main(&pages)?;
        if full && self.bug(crate::SeededBug::WalResetBeforeMainSync) {
            self.reset_wal(w, generation, salt)?;
            self.sync_main()?;
            self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        // Step 3: the main file is durable before the WAL may forget anything.
        self.sync_main()?;
        if full {
            // Step 4: a new generation; a torn header here is safe because step 3 is done.
            self.reset_wal(w, generation, salt)?;
        } else {
            self.index.write().backfilled_txn = limit;
            self.stats
                .checkpoints_blocked_by_reader
                .fetch_add(1, Ordering::Relaxed);
        }
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// True when a transaction the size of the last commit would take the WAL generation
    /// past its hard bound, [`WAL_BOUND_FACTOR`] times the checkpoint threshold: the next
    /// writer checkpoints before it starts. (A bulk load commits batches of one size, so
    /// the last commit predicts the next; [`Shared::checkpoint_before_frames`] catches the
    /// rest at commit.)
    pub(crate) fn wal_past_bound(&self, w: &WriterState) -> bool {
        self.wal_bound_crossed(w, w.last_txn_frames) && w.lsn >= w.bound_retry_lsn
    }

    /// True when `frames` more frames would take the current generation past its bound and
    /// it holds frames a checkpoint could retire. (A transaction larger than the bound on
    /// its own passes it in an empty generation: nothing can make room for it.)
    fn wal_bound_crossed(&self, w: &WriterState, frames: u64) -> bool {
        let frames_bytes = frames.saturating_mul(wal::frame_size(self.page_size));
        w.lsn > w.generation_lsn
            && self.wal_bytes(w).saturating_add(frames_bytes) > self.wal_bytes_bound()
    }

    /// At commit, holding the writer, before `frames` frames are appended: if they would
    /// take the WAL past its bound, checkpoint first. The lock order is `checkpoint_serial`
    /// then the writer, so a committer may not simply wait for the serial lock; it waits
    /// at most [`BOUND_WAIT_MAX`], and every holder of that lock hands it over rather than
    /// wait long for the writer ([`Shared::writer_after_serial`]). Only past that wait do
    /// this transaction's frames pass the bound.
    ///
    /// # Errors
    /// The checkpoint's (a full disk fails the transaction before it wrote anything).
    pub(crate) fn checkpoint_before_frames(&self, w: &mut WriterState, frames: u64) -> Result<()> {
        if !self.wal_bound_crossed(w, frames) || w.lsn < w.bound_retry_lsn {
            return Ok(());
        }
        let Some(_serial) = self.checkpoint_serial.try_lock_for(BOUND_WAIT_MAX) else {
            return Ok(());
        };
        self.stats.bound_checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_locked(w, false)?;
        self.note_bound_retry(w);
        Ok(())
    }

    /// After a bound checkpoint: when a reader kept the WAL from restarting, the next try
    /// comes after another threshold of frames, not from every writer while the reader
    /// stays. (A failed checkpoint sets nothing: every writer meets the failure until it
    /// clears.)
    fn note_bound_retry(&self, w: &mut WriterState) {
        if self.wal_bound_crossed(w, w.last_txn_frames) {
            let frames = self.opts.wal_checkpoint_bytes / wal::frame_size(self.page_size);
            w.bound_retry_lsn = w.lsn + frames.max(1);
        }
    }

    fn wal_bytes_bound(&self) -> u64 {
        (self.opts.wal_checkpoint_bytes).saturating_mul(WAL_BOUND_FACTOR)
    }

    /// How far the WAL file may be grown with zeros ahead of its frames: to its bound, so
    /// the file passes the bound only by the frames of the transaction that crossed it.
    pub(crate) fn wal_grow_limit(&self) -> u64 {
        self.wal_bytes_bound().min(self.opts.wal_bytes_max)
    }

    /// The writer, for a holder of `checkpoint_serial`. A committer holding the writer may
    /// be waiting for the serial lock to keep the WAL within its bound
    /// ([`Shared::checkpoint_before_frames`]), so rather than wait for the writer while
    /// holding it, the holder hands the serial lock over (fairly: straight to a waiter),
    /// waits for the writer without it, and tries again. After [`HANDOFF_TRIES_MAX`] tries
    /// it waits outright; a committer then waits out its own bounded wait.
    pub(crate) fn writer_after_serial<'a>(
        &'a self,
        mut serial: MutexGuard<'a, ()>,
    ) -> (MutexGuard<'a, ()>, MutexGuard<'a, WriterState>) {
        for _ in 0..HANDOFF_TRIES_MAX {
            if let Some(w) = self.writer.try_lock_for(HANDOFF_WAIT) {
                return (serial, w);
            }
            MutexGuard::unlock_fair(serial);
            drop(self.writer.lock());
            serial = self.checkpoint_serial.lock();
        }
        let w = self.writer.lock();
        (serial, w)
    }

    /// Run by a writer that found the WAL past its bound, before its transaction, with the
    /// lock order of every checkpoint (serial, then writer). A checkpoint that cannot
    /// restart the WAL because a reader needs it returns at once and the WAL grows (the
    /// documented cost of a long reader); one that fails (a full disk) fails the
    /// transaction before it has written anything.
    pub(crate) fn checkpoint_past_bound(&self) -> Result<()> {
        let (_serial, mut w) = self.writer_after_serial(self.checkpoint_serial.lock());
        if !self.wal_past_bound(&w) {
            return Ok(());
        }
        self.stats.bound_checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_locked(&mut w, false)?;
        self.note_bound_retry(&mut w);
        Ok(())
    }

    /// A checkpoint in two phases, for the background thread. Phase 1, beside the writer:
    /// copy (steps 1-3) every page version committed, durable and not needed by a reader
    /// right now; frames never change within a generation and `checkpoint_serial` keeps
    /// the generation, so nothing here needs the writer. Phase 2, holding the writer:
    /// [`Shared::checkpoint_locked`] copies only the frames committed during phase 1 (they
    /// are past `backfilled_txn`) and resets the WAL when no reader needs it.
    pub(crate) fn checkpoint_background(&self) -> Result<()> {
        let serial = self.checkpoint_serial.lock();
        self.check_poisoned()?;
        // Phase 1 again while the frames committed during the last round exceed an eighth
        // of the threshold: phase 2 then holds the writer for little.
        let delta_bytes_max = self.opts.wal_checkpoint_bytes / 8;
        for _ in 0..PRECOPY_ROUNDS_MAX {
            let lsn_before = self.sync.lock().written_lsn;
            self.precopy()?;
            let lsn_after = self.sync.lock().written_lsn;
            debug_assert!(lsn_after >= lsn_before);
            let delta_bytes = (lsn_after - lsn_before) * wal::frame_size(self.page_size);
            if delta_bytes <= delta_bytes_max {
                break;
            }
        }
        let (serial, mut w) = self.writer_after_serial(serial);
        let result = self.checkpoint_locked(&mut w, false);
        drop(w);
        drop(serial);
        result
    }

    /// Phase 1 of [`Shared::checkpoint_background`]: steps 1-3 for every page version that
    /// is committed and durable now and not needed by an open reader.
    fn precopy(&self) -> Result<()> {
        let (lsn, txn) = {
            let s = self.sync.lock();
            (s.written_lsn, s.written_txn)
        };
        if self.pinned_by_reader(txn) {
            return Ok(());
        }
        self.wait_durable(lsn)?;
        let limit = {
            let oldest = self.readers.lock().oldest();
            oldest.unwrap_or(u64::MAX).min(txn)
        };
        let (copies, generation, salt) = self.collect_copies(limit);
        if copies.is_empty() {
            return Ok(());
        }
        let pages = self.load_copies(copies, generation, salt)?;
        self.write_main(&pages)?;
        self.sync_main()?;
        let mut index = self.index.write();
        debug_assert_eq!(index.generation, generation, "WAL reset under a checkpoint");
        index.backfilled_txn = index.backfilled_txn.max(limit);
        Ok(())
    }

    /// True when an open reader older than `latest_txn` holds the copy limit at or below
    /// what is already copied: a checkpoint now could copy nothing and could not reset the
    /// WAL, so it is skipped instead of scanning the WAL index (and, in Off mode, syncing)
    /// on every commit for as long as that reader stays. Skipping is always safe.
    fn pinned_by_reader(&self, latest_txn: u64) -> bool {
        let Some(oldest) = self.readers.lock().oldest() else {
            return false;
        };
        oldest < latest_txn && oldest <= self.index.read().backfilled_txn
    }

    /// The page images of `copies` (from the cache, else from the WAL), sorted by page.
    fn load_copies(
        &self,
        copies: Vec<(PageNo, u64)>,
        generation: u64,
        salt: u64,
    ) -> Result<Vec<(PageNo, PageBuf)>> {
        let mut pages = Vec::with_capacity(copies.len() + 1);
        for (no, frame) in copies {
            let loc = Loc::Wal { generation, frame };
            let page = match self.cache.get(loc) {
                Some(p) => p,
                None => self.load_frame(frame, no, salt)?,
            };
            pages.push((no, page));
        }
        pages.sort_by_key(|(no, _)| *no);
        Ok(pages)
    }

    /// (page, frame) of the newest version of each page committed at or before `limit` and
    /// not yet copied, plus the generation and salt.
    fn collect_copies(&self, limit: u64) -> (Vec<(PageNo, u64)>, u64, u64) {
        let index = self.index.read();
        let mut copies = Vec::new();
        for (&no, versions) in &index.pages {
            if let Some((txn, frame)) = crate::db::newest_at(versions, limit) {
                if txn > index.backfilled_txn {
                    copies.push((no, frame));
                }
            }
        }
        (copies, index.generation, index.salt)
    }

    /// Page `no` from WAL frame `frame` of the generation salted `salt`, the frame checked
    /// whole (see [`wal::read_frame_page`]).
    pub(crate) fn load_frame(&self, frame: u64, no: PageNo, salt: u64) -> Result<PageBuf> {
        let lax = self.bug(crate::SeededBug::AcceptBadFrameChecksum);
        wal::read_frame_page(self.wal.as_ref(), frame, self.page_size, salt, no, lax)
    }

    /// Writes pages (sorted by number) into the main file, coalescing adjacent runs, and
    /// refreshes their main-file cache entries.
    fn write_main(&self, pages: &[(PageNo, PageBuf)]) -> Result<()> {
        debug_assert!(pages.windows(2).all(|p| p[0].0 < p[1].0));
        let ps = self.page_size;
        let mut run: Vec<u8> = Vec::with_capacity(COPY_RUN_BYTES_MAX);
        let mut run_start: PageNo = 0;
        for (i, (no, page)) in pages.iter().enumerate() {
            debug_assert!(page.verify(*no).is_ok());
            if run.is_empty() {
                run_start = *no;
            }
            run.extend_from_slice(page.bytes());
            let next_adjacent = pages.get(i + 1).is_some_and(|(n, _)| *n == *no + 1);
            if !next_adjacent || run.len() + ps > COPY_RUN_BYTES_MAX {
                let offset = u64::from(run_start) * ps as u64;
                self.main
                    .write_at(&run, offset)
                    .map_err(|e| Error::io("checkpoint write", e))?;
                run.clear();
            }
        }
        for (no, page) in pages {
            self.cache.insert(Loc::Main(*no), page.clone());
        }
        self.stats
            .pages_written
            .fetch_add(pages.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn sync_main(&self) -> Result<()> {
        self.sync_or_poison(self.main.as_ref(), "main sync")
    }

    /// Syncs `file`, counting the fsync; a failure poisons the database (never retried).
    pub(crate) fn sync_or_poison(&self, file: &dyn StorageFile, op: &'static str) -> Result<()> {
        let r = file.sync();
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        r.map_err(|e| {
            self.poisoned.store(true, Ordering::Release);
            Error::io(op, e)
        })
    }

    /// Starts WAL generation `generation + 1` with a fresh salt.
    ///
    /// A header write that meets a full disk (copy-on-write file systems allocate even for
    /// an overwrite) leaves the old generation in force and the database usable: the index
    /// still names it, and the header on disk is either the old one or torn, which recovery
    /// reads through frame 0's salt. Any other failure poisons the database, because the
    /// header on disk may then name a generation the index does not.
    fn reset_wal(&self, w: &mut WriterState, generation: u64, old_salt: u64) -> Result<()> {
        let next = generation + 1;
        let salt = crate::db::make_salt(self.opts.salt_seed, next, old_salt);
        if w.lsn == w.generation_lsn {
            self.drop_stale_frames(w)?;
        }
        let header = WalHeader {
            page_size: self.page_size as u32,
            salt,
            generation: next,
        };
        let written = self.wal.write_at(&header.encode(), 0);
        if let Err(e) = written.map_err(|e| Error::io("wal reset", e)) {
            if !matches!(e, Error::DiskFull { .. }) {
                // An EIO may have landed all the same: the header could name a salt the
                // commits that follow would not carry.
                self.poisoned.store(true, Ordering::Release);
            }
            return Err(e);
        }
        // The index forgets the old generation before the WAL can shrink: a reader holds
        // the index across its frame read, so none reads past a truncated end.
        let mut index = self.index.write();
        index.generation = next;
        index.salt = salt;
        index.pages.clear();
        index.backfilled_txn = w.latest_txn;
        drop(index);
        self.cache.purge_wal();
        w.generation_lsn = w.lsn;
        self.note_gauges(w);
        self.finish_reset(w).inspect_err(|_| {
            self.poisoned.store(true, Ordering::Release);
        })
    }

    /// Before retiring a generation with no frames. What lies behind its header is an older,
    /// already checkpointed generation's frames (partly overwritten by writes this one lost
    /// at a crash). Should the new header tear, open would take frame 0's salt and replay
    /// that stale prefix over newer pages, or meet a stale frame vouching for an overwritten
    /// one (`harness run faults/power-loss-normal --seed 7060`). A durable truncation first
    /// leaves no frame 0 to adopt.
    fn drop_stale_frames(&self, w: &mut WriterState) -> Result<()> {
        w.wal_allocated = 0;
        self.wal
            .set_len(WAL_HEADER_LEN)
            .map_err(|e| Error::io("wal truncate", e))?;
        self.sync_or_poison(self.wal.as_ref(), "wal sync")
    }

    /// The steps of a WAL reset after the new header is written: truncate the WAL if it
    /// grew past its bound ([`WAL_BOUND_FACTOR`] times the checkpoint threshold), then make
    /// the header durable. Below the bound the file is reused: overwriting blocks in place
    /// spares the file system freeing and allocating them again every generation, which a
    /// load of large commits (each past twice the threshold) otherwise paid on every one.
    fn finish_reset(&self, w: &mut WriterState) -> Result<()> {
        let len = self.wal.len().map_err(|e| Error::io("wal reset", e))?;
        if len > self.wal_bytes_bound() {
            w.wal_allocated = 0;
            self.wal
                .set_len(WAL_HEADER_LEN)
                .map_err(|e| Error::io("wal truncate", e))?;
        }
        self.wal.sync().map_err(|e| Error::io("wal sync", e))?;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Publishes the page count and WAL length for [`Shared::metrics`].
    pub(crate) fn note_gauges(&self, w: &WriterState) {
        let s = &self.stats;
        s.page_count
            .store(u64::from(w.meta.page_count), Ordering::Relaxed);
        s.wal_frames
            .store(w.lsn - w.generation_lsn, Ordering::Relaxed);
    }

    /// True when the current WAL generation is past the auto-checkpoint size.
    pub(crate) fn wal_over_threshold(&self, w: &WriterState) -> bool {
        self.wal_bytes(w) > self.opts.wal_checkpoint_bytes
    }

    /// Bytes of frames in the current WAL generation.
    pub(crate) fn wal_bytes(&self, w: &WriterState) -> u64 {
        (w.lsn - w.generation_lsn) * wal::frame_size(self.page_size)
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let c = self.cache.counters();
        let (readers_open, oldest) = {
            let r = self.readers.lock();
            (r.count(), r.oldest())
        };
        let latest = self.visible.load(Ordering::Acquire);
        let s = &self.stats;
        let frames = s.wal_frames.load(Ordering::Relaxed);
        let page_count = s.page_count.load(Ordering::Relaxed);
        Metrics {
            durability: self.opts.durability,
            commits: s.commits.load(Ordering::Relaxed),
            rollbacks: s.rollbacks.load(Ordering::Relaxed),
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            cache_hits: c.hits,
            cache_misses: c.misses,
            cache_evictions: c.evictions,
            cache_bytes: self.cache.bytes(self.page_size),
            cache_bytes_max: self.opts.cache_bytes_max as u64,
            pages_read: s.pages_read.load(Ordering::Relaxed),
            pages_written: s.pages_written.load(Ordering::Relaxed),
            bound_checkpoints: s.bound_checkpoints.load(Ordering::Relaxed),
            checkpoints_blocked_by_reader: s.checkpoints_blocked_by_reader.load(Ordering::Relaxed),
            readers_open,
            reader_lag_commits: oldest.map_or(0, |o| latest.saturating_sub(o)),
            wal_frames: frames,
            wal_bytes: WAL_HEADER_LEN + frames * wal::frame_size(self.page_size),
            page_count,
            page_size: self.page_size as u64,
        }
    }
}
