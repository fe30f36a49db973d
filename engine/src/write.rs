//! The write transaction and the commit path.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::lock_api::ArcMutexGuard;
use parking_lot::RawMutex;

use crate::btree;
use crate::bugs::SeededBug;
use crate::cache::{IntMap, Loc};
use crate::catalog::{self, Table, CATALOG_ROOT};
use crate::db::{Background, Shared, WriterState};
use crate::error::{Error, Result};
use crate::freelist;
use crate::meta::Meta;
use crate::options::Durability;
use crate::page::{PageBuf, PageNo, PageRead, PageRef, PageWrite, PAGE_HEADER_LEN};
use crate::txn::Range;
use crate::wal::{self, WAL_HEADER_LEN};
use crate::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// Bytes per WAL write during commit; large transactions are written in pieces this big.
const COMMIT_WRITE_BYTES_MAX: usize = 4 << 20;
/// The WAL file grows in zero-filled steps of this size (see `ensure_wal_space`): large
/// enough that growth is rare, small enough to be cheap on a nearly full disk.
const WAL_GROW_BYTES: u64 = 1 << 20;
/// With the background thread, the WAL is grown (zeros written and synced off the commit
/// path) once less than this is left ahead of the last frame.
const WAL_GROW_AHEAD_BYTES: u64 = WAL_GROW_BYTES / 2;
/// The commit buffer is kept between commits up to this size, and freed above it.
const FRAME_BUF_KEEP_BYTES_MAX: usize = 8 << 20;

/// Checkpoints a new writer runs for the WAL's bound before it starts anyway: each try
/// either resets the WAL or finds that another writer committed meanwhile, so a few cover
/// any fair interleaving, and the limit keeps a writer from looping behind the others.
const BOUND_CHECKPOINT_TRIES_MAX: usize = 4;

/// The one write transaction. Sees its own writes; invisible to others until commit.
/// Dropping it without [`WriteTxn::commit`] rolls it back.
pub struct WriteTxn {
    shared: Arc<Shared>,
    w: Option<ArcMutexGuard<RawMutex, WriterState>>,
    dirty: IntMap<PageNo, PageBuf>,
    meta: Meta,
    snap: u64,
    failed: bool,
    /// Where the last put landed (see [`btree::InsertHint`]).
    hint: btree::InsertHint,
}

impl std::fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("base", &self.snap)
            .field("dirty", &self.dirty.len())
            .finish_non_exhaustive()
    }
}

impl WriteTxn {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<WriteTxn> {
        shared.check_poisoned()?;
        let mut w = shared.writer.lock_arc();
        // Another writer may commit between the checkpoint and taking the writer back: look
        // again, a bounded number of times (the commit checks once more).
        for _ in 0..BOUND_CHECKPOINT_TRIES_MAX {
            if !shared.wal_past_bound(&w) {
                break;
            }
            // Checkpoints take `checkpoint_serial` before the writer: let go to take both.
            drop(w);
            shared.checkpoint_past_bound()?;
            w = shared.writer.lock_arc();
        }
        shared.check_poisoned()?;
        let (meta, snap) = (w.meta, w.latest_txn);
        Ok(WriteTxn {
            shared,
            w: Some(w),
            dirty: IntMap::default(),
            meta,
            snap,
            failed: false,
            hint: btree::InsertHint::default(),
        })
    }

    /// Runs a mutation; a failure part-way leaves the dirty pages unknown, so the
    /// transaction refuses everything after it.
    fn mutate<T>(&mut self, f: impl FnOnce(&mut WriteTxn) -> Result<T>) -> Result<T> {
        if self.failed || self.w.is_none() {
            return Err(Error::TransactionClosed);
        }
        let r = f(self);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// The table `name`.
    ///
    /// # Errors
    /// [`Error::TableNotFound`]; I/O errors; corruption.
    pub fn table(&self, name: &str) -> Result<Table> {
        catalog::lookup(self, name)
    }

    /// Creates the table `name`.
    ///
    /// # Errors
    /// [`Error::TableExists`]; [`Error::InvalidArgument`] for an empty or too long name.
    pub fn create_table(&mut self, name: &str) -> Result<Table> {
        // Refused before `mutate`: a bad or taken name leaves the transaction usable.
        catalog::check_name(name)?;
        match self.table(name) {
            Ok(_) => {
                return Err(Error::TableExists {
                    name: name.to_string(),
                })
            }
            Err(Error::TableNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.hint.clear(); // the new root may be a page the hint's table freed
        self.mutate(|tx| catalog::create(tx, name))
    }

    /// The table `name`, created if missing.
    ///
    /// # Errors
    /// As [`WriteTxn::create_table`].
    pub fn open_or_create_table(&mut self, name: &str) -> Result<Table> {
        match self.table(name) {
            Err(Error::TableNotFound { .. }) => self.create_table(name),
            other => other,
        }
    }

    /// Drops the table `name` and frees its pages. Its handles become invalid.
    ///
    /// # Errors
    /// [`Error::TableNotFound`]; I/O errors; corruption.
    pub fn drop_table(&mut self, name: &str) -> Result<()> {
        let table = self.table(name)?;
        self.hint.clear(); // the hint's pages may be this table's
        self.mutate(|tx| catalog::drop(tx, name, table))
    }

    /// Inserts or replaces `key`.
    ///
    /// # Errors
    /// [`Error::KeyTooLarge`], [`Error::ValueTooLarge`] (the transaction stays usable); I/O
    /// errors, corruption and limits (the transaction must then be dropped).
    pub fn put(&mut self, table: &Table, key: &[u8], value: &[u8]) -> Result<()> {
        if key.len() > KEY_BYTES_MAX {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: KEY_BYTES_MAX,
            });
        }
        if value.len() > VALUE_BYTES_MAX {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: VALUE_BYTES_MAX,
            });
        }
        let mut hint = std::mem::take(&mut self.hint);
        let put = self.mutate(|tx| btree::insert_hinted(tx, &mut hint, table.root(), key, value));
        self.hint = hint;
        put.map(|_| ())
    }

    /// Deletes `key`; true when it existed.
    ///
    /// # Errors
    /// As [`WriteTxn::put`].
    pub fn delete(&mut self, table: &Table, key: &[u8]) -> Result<bool> {
        if key.len() > KEY_BYTES_MAX {
            return Ok(false);
        }
        self.hint.clear(); // a delete may merge pages
        self.mutate(|tx| btree::delete(tx, table.root(), key))
    }

    /// The value of `key` as this transaction sees it.
    ///
    /// # Errors
    /// I/O errors; corruption.
    pub fn get(&self, table: &Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        btree::get(self, table.root(), key)
    }

    /// A range of `table` as this transaction sees it; see [`crate::ReadTxn::range`].
    ///
    /// # Errors
    /// None at creation; the iterator yields I/O errors and corruption.
    pub fn range(
        &self,
        table: &Table,
        lower: std::ops::Bound<&[u8]>,
        upper: std::ops::Bound<&[u8]>,
        reverse: bool,
    ) -> Result<Range<'_>> {
        Ok(Range::new(self, *table, lower, upper, reverse))
    }

    /// Discards every change.
    pub fn rollback(self) {
        drop(self);
    }

    /// Makes the changes visible and, in [`Durability::Full`], durable before returning.
    ///
    /// # Errors
    /// [`Error::TransactionClosed`] after a failed operation; I/O errors ([`Error::DiskFull`]
    /// leaves the database usable: the transaction is rolled back); [`Error::Poisoned`] when
    /// an fsync failed (the commit may or may not survive a crash; reopen to find out).
    pub fn commit(mut self) -> Result<()> {
        if self.failed {
            return Err(Error::TransactionClosed);
        }
        let mut w = self.w.take().ok_or(Error::TransactionClosed)?;
        let shared = self.shared.clone();
        let dirty = std::mem::take(&mut self.dirty);
        if dirty.is_empty() && self.meta == w.meta {
            shared.stats.commits.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        shared.check_poisoned()?;
        // Frames: the dirty pages, plus the meta page when it is not among them.
        let frames = dirty.len() as u64 + u64::from(!dirty.contains_key(&0));
        shared.checkpoint_before_frames(&mut w, frames)?;
        let txn_id = w.next_txn_id;
        if txn_id > crate::meta::TXN_ID_MAX {
            let max = crate::meta::TXN_ID_MAX;
            return Err(Error::LimitExceeded {
                what: "transaction id",
                value: txn_id,
                max,
            });
        }
        w.next_txn_id += 1; // burnt even on failure: ids never repeat within a WAL generation
        let mut pages: Vec<(PageNo, PageBuf)> = dirty.into_iter().collect();
        if self.meta != w.meta {
            let mut meta = self.meta;
            meta.last_txn_id = txn_id;
            pages.retain(|(no, _)| *no != 0);
            pages.push((0, meta.to_page(txn_id)));
        }
        pages.sort_unstable_by_key(|(no, _)| *no);
        let first_frame = w.lsn - w.generation_lsn;
        let appended = shared.append_frames(&mut w, &mut pages, txn_id, self.meta.page_count);
        if matches!(appended, Err(Error::DiskFull { .. })) && shared.bug(SeededBug::DiskFullPoisons)
        {
            shared.poisoned.store(true, Ordering::Release);
        }
        appended?;
        shared.publish(&pages, txn_id, first_frame);
        w.meta = self.meta;
        w.latest_txn = txn_id;
        w.last_txn_frames = pages.len() as u64;
        shared.note_written(w.lsn, txn_id);
        shared.note_gauges(&w);
        shared.stats.commits.fetch_add(1, Ordering::Relaxed);
        shared.finish_commit(w, txn_id)
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if self.shared.bug(SeededBug::KeepRolledBackPagesInCache) {
            for (no, page) in self.dirty.drain() {
                self.shared.cache.insert(Loc::Main(no), page);
            }
        }
        if self.w.take().is_some() {
            self.shared.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl PageRead for WriteTxn {
    fn seeded_bug(&self, bug: SeededBug) -> bool {
        self.shared.bug(bug)
    }
    fn body_len(&self) -> usize {
        self.shared.page_size - PAGE_HEADER_LEN
    }
    fn page(&self, no: PageNo) -> Result<PageRef> {
        match self.dirty.get(&no) {
            Some(page) => Ok(PageRef(page.clone())),
            None => self.shared.read_page(no, self.snap),
        }
    }
}

impl WriteTxn {
    fn reserve_dirty(&self) -> Result<()> {
        let bytes = (self.dirty.len() + 1) * self.shared.page_size;
        let max = self.shared.opts.txn_dirty_bytes_max;
        if bytes > max {
            return Err(Error::LimitExceeded {
                what: "txn dirty bytes",
                value: bytes as u64,
                max: max as u64,
            });
        }
        Ok(())
    }
}

impl PageWrite for WriteTxn {
    fn page_mut(&mut self, no: PageNo) -> Result<&mut [u8]> {
        if no == 0 || no >= self.meta.page_count {
            return Err(Error::page(
                no,
                format!("write outside 1..{}", self.meta.page_count),
            ));
        }
        if !self.dirty.contains_key(&no) {
            self.reserve_dirty()?;
            let page = self.shared.read_page(no, self.snap)?;
            self.dirty.insert(no, page.0);
        }
        let page = self
            .dirty
            .get_mut(&no)
            .ok_or_else(|| Error::page(no, "dirty page vanished"))?;
        Ok(page.body_mut())
    }

    fn allocate(&mut self) -> Result<PageNo> {
        self.reserve_dirty()?;
        let mut meta = self.meta;
        let no = freelist::allocate(self, &mut meta)?;
        self.meta = meta;
        self.dirty
            .insert(no, PageBuf::zeroed(self.shared.page_size));
        debug_assert!(no > 0 && no < self.meta.page_count);
        Ok(no)
    }

    fn free(&mut self, no: PageNo) -> Result<()> {
        if no <= CATALOG_ROOT || no >= self.meta.page_count {
            return Err(Error::page(no, "freeing a page out of range"));
        }
        if self.shared.bug(SeededBug::FreedPageLeaked) {
            return Ok(());
        }
        let mut meta = self.meta;
        freelist::free(self, &mut meta, no)?;
        self.meta = meta;
        Ok(())
    }
}

impl Shared {
    /// Seals the pages and appends them to the WAL as one transaction's frames.
    fn append_frames(
        &self,
        w: &mut WriterState,
        pages: &mut [(PageNo, PageBuf)],
        txn_id: u64,
        page_count: u32,
    ) -> Result<()> {
        assert!(!pages.is_empty());
        let frame_bytes = wal::frame_size(self.page_size);
        let first = w.lsn - w.generation_lsn;
        let end = WAL_HEADER_LEN + (first + pages.len() as u64) * frame_bytes;
        if end > self.opts.wal_bytes_max {
            return Err(Error::LimitExceeded {
                what: "wal bytes",
                value: end,
                max: self.opts.wal_bytes_max,
            });
        }
        self.ensure_wal_space(w, end)?;
        let mut header = self.frame_header(w, 0, txn_id);
        let mut buf = std::mem::take(&mut w.frame_buf);
        buf.clear();
        let mut offset = wal::frame_offset(first, self.page_size);
        let last = pages.len() - 1;
        let commit_at = if self.bug(SeededBug::CommitRecordFirst) {
            0
        } else {
            last
        };
        for (i, (no, page)) in pages.iter_mut().enumerate() {
            page.seal(*no, txn_id);
            header.page_no = *no;
            header.index = first + i as u64;
            header.commit_page_count = if i == commit_at { page_count } else { 0 };
            wal::encode_frame(&header, page, &mut buf);
            if buf.len() >= COMMIT_WRITE_BYTES_MAX || i == last {
                self.wal
                    .write_at(&buf, offset)
                    .map_err(|e| Error::io("wal append", e))?;
                offset += buf.len() as u64;
                buf.clear();
            }
        }
        if buf.capacity() <= FRAME_BUF_KEEP_BYTES_MAX {
            w.frame_buf = buf;
        }
        w.lsn += pages.len() as u64;
        Ok(())
    }

    /// Grows the WAL file ahead of the frames, in zero-filled steps, so that a commit's fsync
    /// rarely has to persist a new file size as well (on ext4 that is a journal commit on
    /// every sync, which doubled the cost of a single-row durable commit). Zero frames fail
    /// their checksum, so recovery reads the fill as the end of the log.
    fn ensure_wal_space(&self, w: &mut WriterState, end: u64) -> Result<()> {
        if end <= w.wal_allocated {
            return Ok(());
        }
        let len = self.wal.len().map_err(|e| Error::io("wal grow", e))?;
        // Never grown ahead past the WAL's bound: only frames may take the file beyond it.
        let target = end
            .max(len)
            .next_multiple_of(WAL_GROW_BYTES)
            .min(self.wal_grow_limit().max(end));
        // Only the space past the frames is zero-filled: the frames themselves are written
        // next, and zeroing them first doubled the WAL bytes of every large commit (a
        // shuffled bulk load writes a frame per key). Until then `len..end` reads as zeros,
        // which recovery takes for the end of the log, exactly like the fill.
        match self.zero_fill_wal(len.max(end), target) {
            Ok(()) => {}
            // Too little space to grow ahead: let the frames claim exactly what they need
            // (they fail on their own if even that is missing).
            Err(Error::DiskFull { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        w.wal_allocated = target.max(len);
        debug_assert!(w.wal_allocated >= end);
        Ok(())
    }

    /// Writes zeros over WAL bytes `from..to`, in [`WAL_GROW_BYTES`] pieces.
    fn zero_fill_wal(&self, from: u64, to: u64) -> Result<()> {
        let zeros = vec![0u8; (to.saturating_sub(from)).min(WAL_GROW_BYTES) as usize];
        let mut at = from;
        while at < to {
            let n = (to - at).min(WAL_GROW_BYTES) as usize;
            self.wal
                .write_at(&zeros[..n], at)
                .map_err(|e| Error::io("wal grow", e))?;
            at += n as u64;
        }
        Ok(())
    }

    /// Makes committed frames findable by later snapshots.
    fn publish(&self, pages: &[(PageNo, PageBuf)], txn_id: u64, first_frame: u64) {
        let mut index = self.index.write();
        let generation = index.generation;
        for (i, (no, _)) in pages.iter().enumerate() {
            let versions = index.pages.entry(*no).or_default();
            // Ascending commit ids: `newest_at` searches them.
            debug_assert!(versions.last().is_none_or(|&(t, _)| t < txn_id));
            versions.push((txn_id, first_frame + i as u64));
        }
        drop(index);
        for (i, (_, page)) in pages.iter().enumerate() {
            let loc = Loc::Wal {
                generation,
                frame: first_frame + i as u64,
            };
            self.cache.insert(loc, page.clone());
        }
    }

    /// Durability per mode, then an automatic checkpoint if the WAL is large.
    fn finish_commit(
        &self,
        mut w: ArcMutexGuard<RawMutex, WriterState>,
        txn_id: u64,
    ) -> Result<()> {
        let wait_for = match self.opts.durability {
            Durability::Full if self.bug(SeededBug::SkipCommitFsync) => {
                self.visible.fetch_max(txn_id, Ordering::AcqRel);
                None
            }
            Durability::Full => Some(w.lsn),
            Durability::Normal { commits, millis } => {
                self.visible.fetch_max(txn_id, Ordering::AcqRel);
                let commits = if self.bug(SeededBug::NormalWindowTenfold) {
                    commits.saturating_mul(10)
                } else {
                    commits
                };
                w.commits_since_sync += 1;
                let due = w.last_sync.elapsed() >= Duration::from_millis(u64::from(millis));
                if w.commits_since_sync >= commits || due {
                    w.commits_since_sync = 0;
                    w.last_sync = Instant::now();
                    Some(w.lsn)
                } else {
                    None
                }
            }
            Durability::Off => {
                self.visible.fetch_max(txn_id, Ordering::AcqRel);
                None
            }
        };
        drop(w);
        if let Some(lsn) = wait_for {
            self.wait_durable(lsn)?;
        }
        self.maybe_checkpoint();
        Ok(())
    }

    /// After a commit: past `wal_checkpoint_bytes`, asks the background checkpointer (when
    /// it runs); past twice that, or without it, checkpoints here. The commit is done
    /// either way: a failed checkpoint (say, disk full) is retried on a later commit, and a
    /// failed fsync has poisoned the database already.
    fn maybe_checkpoint(&self) {
        let Some((frames_bytes, headroom, end)) = self.writer.try_lock().map(|w| {
            let end = wal::frame_offset(w.lsn - w.generation_lsn, self.page_size);
            (self.wal_bytes(&w), w.wal_allocated.saturating_sub(end), end)
        }) else {
            return;
        };
        if headroom < WAL_GROW_AHEAD_BYTES && end + WAL_GROW_BYTES <= self.wal_grow_limit() {
            self.ask_background(|bg| bg.grow_requested = true);
        }
        let threshold = self.opts.wal_checkpoint_bytes;
        if frames_bytes <= threshold {
            return;
        }
        if frames_bytes <= threshold.saturating_mul(2)
            && self.ask_background(|bg| bg.requested = true)
        {
            return;
        }
        // The background thread holds `checkpoint_serial` while it works: it is on it.
        let Some(_serial) = self.checkpoint_serial.try_lock() else {
            return;
        };
        if let Some(mut w) = self.writer.try_lock() {
            if self.wal_over_threshold(&w) {
                let _ = self.checkpoint_locked(&mut w, false);
            }
        }
    }

    /// Sets a request for the background thread with `set` and wakes it. False, with
    /// nothing set, when the thread does not run.
    fn ask_background(&self, set: impl FnOnce(&mut Background)) -> bool {
        let mut bg = self.background.lock();
        if !bg.running {
            return false;
        }
        set(&mut bg);
        drop(bg);
        self.background_cv.notify_one();
        true
    }

    /// For the background thread: extends the WAL by [`WAL_GROW_BYTES`] of zeros past the
    /// space already allocated and syncs it, so the commits that fill it never pay for a
    /// new file size in their fsync. The zeros are written under the writer lock (never
    /// over a frame); the region counts as allocated only once synced, and only if the file
    /// still reaches it (a checkpoint may have truncated the WAL meanwhile).
    pub(crate) fn grow_wal_ahead(&self) -> Result<()> {
        let target = {
            let w = self.writer.lock();
            let len = self.wal.len().map_err(|e| Error::io("wal grow", e))?;
            let end = wal::frame_offset(w.lsn - w.generation_lsn, self.page_size);
            if w.wal_allocated.saturating_sub(end) >= WAL_GROW_AHEAD_BYTES {
                return Ok(());
            }
            let start = len.max(w.wal_allocated);
            let target = (start + 1).next_multiple_of(WAL_GROW_BYTES);
            if target > self.wal_grow_limit() {
                return Ok(());
            }
            self.zero_fill_wal(start, target)?;
            target
        };
        self.sync_or_poison(self.wal.as_ref(), "wal sync")?;
        let mut w = self.writer.lock();
        if self.wal.len().map_err(|e| Error::io("wal grow", e))? >= target {
            w.wal_allocated = w.wal_allocated.max(target);
        }
        Ok(())
    }
}
