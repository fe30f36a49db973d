//! The write transaction and the commit path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::lock_api::ArcMutexGuard;
use parking_lot::RawMutex;

use crate::btree;
use crate::bugs::SeededBug;
use crate::cache::IntMap;
use crate::catalog::{self, Table, CATALOG_ROOT};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::freelist;
use crate::meta::Meta;
use crate::options::Durability;
use crate::page::{PageBuf, PageNo, PageRead, PageRef, PageWrite, PAGE_HEADER_LEN};
use crate::shared::{Shared, WriterState};
use crate::stats::Stats;
use crate::txn::Range;
use crate::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

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
            if !checkpoint::wal_past_bound(&shared, &w) {
                break;
            }
            // Checkpoints take `checkpoint_serial` before the writer: let go to take both.
            drop(w);
            checkpoint::checkpoint_past_bound(&shared)?;
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
        if !self.shared.bug(SeededBug::DeleteKeepsInsertHint) {
            self.hint.clear(); // a delete may merge pages
        }
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
            Stats::add(&shared.stats.commits, 1);
            return Ok(());
        }
        shared.check_poisoned()?;
        // Frames: the dirty pages, plus the meta page when it is not among them.
        let frames = dirty.len() as u64 + u64::from(!dirty.contains_key(&0));
        checkpoint::checkpoint_before_frames(&shared, &mut w, frames)?;
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
            // The check `open` applies to this page after reading it, before it is written.
            meta.validate(shared.page_size())?;
            pages.retain(|(no, _)| *no != 0);
            pages.push((0, meta.to_page(txn_id)));
        }
        pages.sort_unstable_by_key(|(no, _)| *no);
        let page_count = self.meta.page_count;
        let appended = shared
            .wal
            .append(&mut w.wal, &mut pages, txn_id, page_count);
        if matches!(appended, Err(Error::DiskFull { .. })) && shared.bug(SeededBug::DiskFullPoisons)
        {
            shared.stats.poison();
        }
        let first_frame = appended?;
        w.meta = self.meta;
        w.latest_txn = txn_id;
        w.last_txn_frames = pages.len() as u64;
        // The page count first: the pager refuses pages past it, and a reader may find
        // the new frames as soon as they are published.
        shared.note_gauges(&w);
        let generation = shared.wal.publish(&pages, txn_id, first_frame);
        shared.pager.cache_frames(generation, first_frame, &pages);
        shared.wal.note_written(&w.wal, txn_id);
        Stats::add(&shared.stats.commits, 1);
        finish_commit(&shared, w, txn_id)
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if self.shared.bug(SeededBug::KeepRolledBackPagesInCache) {
            // Only from a transaction that did not grow the file: its pages would point past
            // the page count, where the pager refuses to read, which turns the stale reads
            // this bug stands for into corruption errors.
            let count = self.w.as_ref().map_or(0, |w| w.meta.page_count);
            let dirty = std::mem::take(&mut self.dirty);
            for (no, page) in dirty.into_iter().filter(|_| self.meta.page_count <= count) {
                self.shared.pager.cache_main(no, page);
            }
        }
        if self.w.take().is_some() {
            Stats::add(&self.shared.stats.rollbacks, 1);
        }
    }
}

impl PageRead for WriteTxn {
    fn seeded_bug(&self, bug: SeededBug) -> bool {
        self.shared.bug(bug)
    }
    fn body_len(&self) -> usize {
        self.shared.page_size() - PAGE_HEADER_LEN
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
        let bytes = (self.dirty.len() + 1) * self.shared.page_size();
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
            .insert(no, PageBuf::zeroed(self.shared.page_size()));
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

/// Durability per mode, then an automatic checkpoint if the WAL is large.
fn finish_commit(
    shared: &Shared,
    mut w: ArcMutexGuard<RawMutex, WriterState>,
    txn_id: u64,
) -> Result<()> {
    let wait_for = match shared.opts.durability {
        Durability::Full if shared.bug(SeededBug::SkipCommitFsync) => {
            shared.wal.make_visible(txn_id);
            None
        }
        Durability::Full => Some(w.wal.lsn()),
        Durability::Normal { commits, millis } => {
            shared.wal.make_visible(txn_id);
            let commits = if shared.bug(SeededBug::NormalWindowTenfold) {
                commits.saturating_mul(10)
            } else {
                commits
            };
            w.commits_since_sync += 1;
            let due = w.last_sync.elapsed() >= Duration::from_millis(u64::from(millis));
            if w.commits_since_sync >= commits || due {
                w.commits_since_sync = 0;
                w.last_sync = Instant::now();
                Some(w.wal.lsn())
            } else {
                None
            }
        }
        Durability::Off => {
            shared.wal.make_visible(txn_id);
            None
        }
    };
    drop(w);
    if let Some(lsn) = wait_for {
        shared.wal.wait_durable(lsn)?;
    }
    maybe_checkpoint(shared);
    Ok(())
}

/// After a commit: past `wal_checkpoint_bytes`, asks the background checkpointer (when
/// it runs); past twice that, or without it, checkpoints here. The commit is done
/// either way: a failed checkpoint (say, disk full) is retried on a later commit, and a
/// failed fsync has poisoned the database already.
fn maybe_checkpoint(shared: &Shared) {
    let Some((frames_bytes, grow)) = shared
        .writer
        .try_lock()
        .map(|w| (shared.wal.bytes(&w.wal), shared.wal.grow_due(&w.wal)))
    else {
        return;
    };
    if grow {
        shared.ask_background(|bg| bg.grow_requested = true);
    }
    let threshold = shared.opts.wal_checkpoint_bytes;
    if frames_bytes <= threshold {
        return;
    }
    if frames_bytes <= threshold.saturating_mul(2)
        && shared.ask_background(|bg| bg.requested = true)
    {
        return;
    }
    // The background thread holds `checkpoint_serial` while it works: it is on it.
    let Some(_serial) = shared.checkpoint_serial.try_lock() else {
        return;
    };
    if let Some(mut w) = shared.writer.try_lock() {
        if checkpoint::wal_over_threshold(shared, &w) {
            let _ = checkpoint::checkpoint_locked(shared, &mut w, false);
        }
    }
}

/// For the background thread: extends the WAL by zeros past the space already allocated
/// and syncs it, so the commits that fill it never pay for a new file size in their fsync.
/// The zeros are written under the writer lock (never over a frame); the region counts as
/// allocated only once synced, and only if the file still reaches it (a checkpoint may
/// have truncated the WAL meanwhile).
pub(crate) fn grow_wal_ahead(shared: &Shared) -> Result<()> {
    let target = {
        let w = shared.writer.lock();
        match shared.wal.grow_ahead(&w.wal)? {
            Some(target) => target,
            None => return Ok(()),
        }
    };
    shared.wal.sync_or_poison("wal sync")?;
    let mut w = shared.writer.lock();
    shared.wal.claim_growth(&mut w.wal, target)
}
