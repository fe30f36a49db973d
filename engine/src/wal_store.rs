//! The WAL store: the WAL file, the index of which frame holds each page version, appending
//! a commit's frames, loading frames, restarting the log (a new generation), and group
//! commit (one fsync covering every committer waiting for it).
//!
//! It decides what a crash may tear in the log; what a commit or a checkpoint means is
//! decided above it (`write`, `checkpoint`). Frames never change within a generation, so a
//! frame read under the index's read lock is always the version the index named.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard};

use crate::bugs::SeededBug;
use crate::cache::{IntMap, Loc};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::page::{PageBuf, PageNo};
use crate::stats::Stats;
use crate::storage::StorageFile;
use crate::wal::{self, FrameHeader, WalHeader, WAL_HEADER_LEN};

/// Bytes per WAL write during commit; large transactions are written in pieces this big.
const COMMIT_WRITE_BYTES_MAX: usize = 4 << 20;
/// The WAL file grows in zero-filled steps of this size (see `ensure_space`): large enough
/// that growth is rare, small enough to be cheap on a nearly full disk.
const GROW_BYTES: u64 = 1 << 20;
/// With the background thread, the WAL is grown (zeros written and synced off the commit
/// path) once less than this is left ahead of the last frame.
const GROW_AHEAD_BYTES: u64 = GROW_BYTES / 2;
/// The commit buffer is kept between commits up to this size, and freed above it.
const FRAME_BUF_KEEP_BYTES_MAX: usize = 8 << 20;

/// The WAL's hard bound, as a multiple of `wal_checkpoint_bytes`: past it a new write
/// transaction first runs the checkpoint itself, waiting for the writer in turn, so neither
/// busy committers (whose `try_lock`s the background thread can lose forever) nor a failing
/// checkpoint (a full disk) can let the WAL grow toward `wal_bytes_max`. Four leaves the
/// background thread room to finish first under any steady load.
pub(crate) const WAL_BOUND_FACTOR: u64 = 4;

/// Versions of pages in the WAL: page -> [(commit txn id, frame index)], oldest first.
struct WalIndex {
    generation: u64,
    salt: u64,
    pages: IntMap<PageNo, Vec<(u64, u64)>>,
    /// Commits with ids up to here are copied into the main file.
    backfilled_txn: u64,
}

impl WalIndex {
    /// Where snapshot `snap` finds page `no`: its newest committed frame, else the main file.
    fn loc(&self, no: PageNo, snap: u64) -> Loc {
        match self.pages.get(&no).and_then(|v| newest_at(v, snap)) {
            Some((_, frame)) => Loc::Wal {
                generation: self.generation,
                frame,
            },
            None => Loc::Main(no),
        }
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

/// A read view of the WAL index: while it lives no reset can reuse a frame it names.
pub(crate) struct WalView<'a> {
    store: &'a WalStore,
    index: RwLockReadGuard<'a, WalIndex>,
}

impl WalView<'_> {
    /// Where snapshot `snap` finds page `no`.
    pub(crate) fn loc(&self, no: PageNo, snap: u64) -> Loc {
        self.index.loc(no, snap)
    }

    /// Page `no` from frame `frame` of this view's generation, checked whole.
    pub(crate) fn load_frame(&self, frame: u64, no: PageNo) -> Result<PageBuf> {
        let page = self.store.load_frame(frame, no, self.index.salt)?;
        Stats::add(&self.store.stats.pages_read, 1);
        Ok(page)
    }
}

/// The writer's position in the log. Lives inside the writer's state, so only the holder
/// of the writer lock appends.
#[derive(Default)]
pub(crate) struct WalWriter {
    /// Frames written since the database opened, over every WAL generation (a log sequence
    /// number that never goes back, so waiters survive a WAL reset).
    lsn: u64,
    /// `lsn` at the start of the current WAL generation.
    generation_lsn: u64,
    frame_buf: Vec<u8>,
    /// Bytes of WAL file known to exist (written frames or zero fill); see `ensure_space`.
    allocated: u64,
}

impl WalWriter {
    /// Frames written since the database opened.
    pub(crate) fn lsn(&self) -> u64 {
        self.lsn
    }

    /// Frames in the current generation.
    pub(crate) fn frames(&self) -> u64 {
        self.lsn - self.generation_lsn
    }
}

#[derive(Default)]
struct SyncState {
    written_lsn: u64,
    written_txn: u64,
    synced_lsn: u64,
    syncing: bool,
}

/// The WAL file and what is known of it.
pub(crate) struct WalStore {
    file: Arc<dyn StorageFile>,
    page_size: usize,
    index: RwLock<WalIndex>,
    sync: Mutex<SyncState>,
    sync_cv: Condvar,
    /// Snapshot of new readers: the newest commit that is visible (durable in Full mode).
    visible: AtomicU64,
    stats: Arc<Stats>,
    bytes_max: u64,
    checkpoint_bytes: u64,
    salt_seed: Option<u64>,
    seeded_bug: Option<SeededBug>,
}

impl WalStore {
    /// The store of `file`, whose header (generation and salt) is `header`; commits up to
    /// `last_txn` are visible.
    pub(crate) fn new(
        file: Arc<dyn StorageFile>,
        header: &WalHeader,
        page_size: usize,
        opts: &Options,
        stats: Arc<Stats>,
        last_txn: u64,
    ) -> WalStore {
        let index = WalIndex {
            generation: header.generation,
            salt: header.salt,
            pages: IntMap::default(),
            // Nothing of the WAL on disk is known to be in the main file.
            backfilled_txn: 0,
        };
        WalStore {
            file,
            page_size,
            index: RwLock::new(index),
            sync: Mutex::new(SyncState::default()),
            sync_cv: Condvar::new(),
            visible: AtomicU64::new(last_txn),
            stats,
            bytes_max: opts.wal_bytes_max,
            checkpoint_bytes: opts.wal_checkpoint_bytes,
            salt_seed: opts.salt_seed,
            seeded_bug: opts.seeded_bug,
        }
    }

    fn bug(&self, b: SeededBug) -> bool {
        crate::bugs::active(self.seeded_bug, b)
    }

    /// Loads the recovered transactions into the index, numbering them after `latest_txn`,
    /// and makes them durable. Returns the id of the last one.
    pub(crate) fn replay(
        &self,
        ww: &mut WalWriter,
        rec: &wal::Recovered,
        mut latest_txn: u64,
    ) -> Result<u64> {
        let mut index = self.index.write();
        // A replayed generation may have been checkpointed already, so its ids can be at or
        // below the meta page's: renumber its commits after the meta page's last id. Ids only
        // need to grow within one generation, and the open checkpoint starts a new one.
        for txn in &rec.txns {
            let id = latest_txn + 1;
            for &(page, frame) in &txn.frames {
                let versions = index.pages.entry(page).or_default();
                debug_assert!(versions.last().is_none_or(|&(t, _)| t < id));
                versions.push((id, frame));
            }
            latest_txn = id;
        }
        drop(index);
        // The replayed frames may still sit in the OS's cache only (a kill -9): make them
        // durable before anything counts on them, be it a checkpoint copying them into the
        // main file or a new frame vouching for them through `synced_upto`.
        if rec.end_frame > 0 {
            self.sync_or_poison("wal sync")?;
        }
        ww.lsn = rec.end_frame;
        let mut s = self.sync.lock();
        s.written_lsn = rec.end_frame;
        s.synced_lsn = rec.end_frame;
        s.written_txn = latest_txn;
        drop(s);
        self.visible.store(latest_txn, Ordering::Release);
        Ok(latest_txn)
    }

    /// A read view of the index (see [`WalView`]).
    pub(crate) fn view(&self) -> WalView<'_> {
        WalView {
            store: self,
            index: self.index.read(),
        }
    }

    /// Page `no` from WAL frame `frame` of the generation salted `salt`, the frame checked
    /// whole (see [`wal::read_frame_page`]).
    pub(crate) fn load_frame(&self, frame: u64, no: PageNo, salt: u64) -> Result<PageBuf> {
        let lax = self.bug(SeededBug::AcceptBadFrameChecksum);
        wal::read_frame_page(self.file.as_ref(), frame, self.page_size, salt, no, lax)
    }

    /// The newest commit new readers see.
    pub(crate) fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Makes commit `txn` (and every one before it) visible to new readers.
    pub(crate) fn make_visible(&self, txn: u64) {
        self.visible.fetch_max(txn, Ordering::AcqRel);
    }

    /// Bytes of one frame.
    pub(crate) fn frame_bytes(&self) -> u64 {
        wal::frame_size(self.page_size)
    }

    /// Bytes of frames in the current generation.
    pub(crate) fn bytes(&self, ww: &WalWriter) -> u64 {
        ww.frames() * self.frame_bytes()
    }

    /// The WAL's hard bound in bytes: [`WAL_BOUND_FACTOR`] times the checkpoint threshold.
    pub(crate) fn bound_bytes(&self) -> u64 {
        self.checkpoint_bytes.saturating_mul(WAL_BOUND_FACTOR)
    }

    /// How far the WAL file may be grown with zeros ahead of its frames: to its bound, so
    /// the file passes the bound only by the frames of the transaction that crossed it.
    fn grow_limit(&self) -> u64 {
        self.bound_bytes().min(self.bytes_max)
    }

    /// Seals the pages and appends them to the WAL as one transaction's frames; returns the
    /// index of the first frame in its generation.
    pub(crate) fn append(
        &self,
        ww: &mut WalWriter,
        pages: &mut [(PageNo, PageBuf)],
        txn_id: u64,
        page_count: u32,
    ) -> Result<u64> {
        assert!(!pages.is_empty());
        let first = ww.frames();
        let end = WAL_HEADER_LEN + (first + pages.len() as u64) * self.frame_bytes();
        if end > self.bytes_max {
            return Err(Error::LimitExceeded {
                what: "wal bytes",
                value: end,
                max: self.bytes_max,
            });
        }
        self.ensure_space(ww, end)?;
        let mut header = self.frame_header(ww, txn_id);
        let mut buf = std::mem::take(&mut ww.frame_buf);
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
                self.file
                    .write_at(&buf, offset)
                    .map_err(|e| Error::io("wal append", e))?;
                offset += buf.len() as u64;
                buf.clear();
            }
        }
        if buf.capacity() <= FRAME_BUF_KEEP_BYTES_MAX {
            ww.frame_buf = buf;
        }
        ww.lsn += pages.len() as u64;
        Ok(first)
    }

    /// A frame header for the writer's next frame.
    fn frame_header(&self, ww: &WalWriter, txn_id: u64) -> FrameHeader {
        let salt = self.index.read().salt;
        FrameHeader {
            page_no: 0,
            commit_page_count: 0,
            salt,
            index: ww.frames(),
            txn_id,
            synced_upto: self
                .sync
                .lock()
                .synced_lsn
                .saturating_sub(ww.generation_lsn),
        }
    }

    /// Grows the WAL file ahead of the frames, in zero-filled steps, so that a commit's fsync
    /// rarely has to persist a new file size as well (on ext4 that is a journal commit on
    /// every sync, which doubled the cost of a single-row durable commit). Zero frames fail
    /// their checksum, so recovery reads the fill as the end of the log.
    fn ensure_space(&self, ww: &mut WalWriter, end: u64) -> Result<()> {
        if end <= ww.allocated {
            return Ok(());
        }
        let len = self.file.len().map_err(|e| Error::io("wal grow", e))?;
        // Never grown ahead past the WAL's bound: only frames may take the file beyond it.
        let target = end
            .max(len)
            .next_multiple_of(GROW_BYTES)
            .min(self.grow_limit().max(end));
        // Only the space past the frames is zero-filled: the frames themselves are written
        // next, and zeroing them first doubled the WAL bytes of every large commit (a
        // shuffled bulk load writes a frame per key). Until then `len..end` reads as zeros,
        // which recovery takes for the end of the log, exactly like the fill.
        match self.zero_fill(len.max(end), target) {
            Ok(()) => {}
            // Too little space to grow ahead: let the frames claim exactly what they need
            // (they fail on their own if even that is missing).
            Err(Error::DiskFull { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        ww.allocated = target.max(len);
        debug_assert!(ww.allocated >= end);
        Ok(())
    }

    /// Writes zeros over WAL bytes `from..to`, in [`GROW_BYTES`] pieces.
    fn zero_fill(&self, from: u64, to: u64) -> Result<()> {
        let zeros = vec![0u8; (to.saturating_sub(from)).min(GROW_BYTES) as usize];
        let mut at = from;
        while at < to {
            let n = (to - at).min(GROW_BYTES) as usize;
            self.file
                .write_at(&zeros[..n], at)
                .map_err(|e| Error::io("wal grow", e))?;
            at += n as u64;
        }
        Ok(())
    }

    /// True when the zero-filled space ahead of the last frame is running out and the file
    /// may still grow: time to ask the background thread for [`WalStore::grow_ahead`].
    pub(crate) fn grow_due(&self, ww: &WalWriter) -> bool {
        let end = wal::frame_offset(ww.frames(), self.page_size);
        ww.allocated.saturating_sub(end) < GROW_AHEAD_BYTES && end + GROW_BYTES <= self.grow_limit()
    }

    /// For the background thread, holding the writer: zero-fills the next [`GROW_BYTES`]
    /// past the space already allocated (never over a frame). Returns the new end to sync
    /// and then claim with [`WalStore::claim_growth`], or None when nothing is due.
    pub(crate) fn grow_ahead(&self, ww: &WalWriter) -> Result<Option<u64>> {
        let len = self.file.len().map_err(|e| Error::io("wal grow", e))?;
        let end = wal::frame_offset(ww.frames(), self.page_size);
        if ww.allocated.saturating_sub(end) >= GROW_AHEAD_BYTES {
            return Ok(None);
        }
        let start = len.max(ww.allocated);
        let target = (start + 1).next_multiple_of(GROW_BYTES);
        if target > self.grow_limit() {
            return Ok(None);
        }
        self.zero_fill(start, target)?;
        Ok(Some(target))
    }

    /// After the growth to `target` was synced: it counts as allocated only if the file
    /// still reaches it (a checkpoint may have truncated the WAL meanwhile).
    pub(crate) fn claim_growth(&self, ww: &mut WalWriter, target: u64) -> Result<()> {
        if self.file.len().map_err(|e| Error::io("wal grow", e))? >= target {
            ww.allocated = ww.allocated.max(target);
        }
        Ok(())
    }

    /// Makes committed frames findable by later snapshots; returns their generation.
    pub(crate) fn publish(&self, pages: &[(PageNo, PageBuf)], txn_id: u64, first: u64) -> u64 {
        let mut index = self.index.write();
        for (i, (no, _)) in pages.iter().enumerate() {
            let versions = index.pages.entry(*no).or_default();
            // Ascending commit ids: `newest_at` searches them.
            debug_assert!(versions.last().is_none_or(|&(t, _)| t < txn_id));
            versions.push((txn_id, first + i as u64));
        }
        index.generation
    }

    /// Records frames written by the writer up to its position, for commit `txn`.
    pub(crate) fn note_written(&self, ww: &WalWriter, txn: u64) {
        let mut s = self.sync.lock();
        debug_assert!(ww.lsn >= s.written_lsn && txn >= s.written_txn);
        s.written_lsn = ww.lsn;
        s.written_txn = txn;
    }

    /// The log position and commit id of the last frames written (durable or not).
    pub(crate) fn written(&self) -> (u64, u64) {
        let s = self.sync.lock();
        (s.written_lsn, s.written_txn)
    }

    /// Returns once every frame below `lsn` is durable. One caller at a time runs the
    /// fsync; the others wait and usually find their frames covered (group commit).
    pub(crate) fn wait_durable(&self, lsn: u64) -> Result<()> {
        let mut s = self.sync.lock();
        loop {
            self.stats.check_poisoned()?;
            if s.synced_lsn >= lsn {
                return Ok(());
            }
            if s.syncing {
                self.sync_cv.wait(&mut s);
                if self.bug(SeededBug::GroupCommitEarlyAck) {
                    return Ok(());
                }
                continue;
            }
            s.syncing = true;
            let (goal_lsn, goal_txn) = (s.written_lsn, s.written_txn);
            debug_assert!(goal_lsn >= lsn);
            drop(s);
            let result = self.file.sync();
            Stats::add(&self.stats.fsyncs, 1);
            s = self.sync.lock();
            s.syncing = false;
            if let Err(e) = result {
                if !self.bug(SeededBug::FsyncErrorNotPoisoned) {
                    self.stats.poison();
                }
                self.sync_cv.notify_all();
                return Err(Error::io("wal sync", e));
            }
            s.synced_lsn = s.synced_lsn.max(goal_lsn);
            self.make_visible(goal_txn);
            self.sync_cv.notify_all();
        }
    }

    /// Syncs the WAL, counting the fsync; a failure poisons the database (never retried).
    pub(crate) fn sync_or_poison(&self, op: &'static str) -> Result<()> {
        let r = self.file.sync();
        Stats::add(&self.stats.fsyncs, 1);
        r.map_err(|e| {
            self.stats.poison();
            Error::io(op, e)
        })
    }

    /// (page, frame) of the newest version of each page committed at or before `limit` and
    /// not yet copied, plus the generation and salt.
    pub(crate) fn collect_copies(&self, limit: u64) -> (Vec<(PageNo, u64)>, u64, u64) {
        let index = self.index.read();
        let mut copies = Vec::new();
        for (&no, versions) in &index.pages {
            if let Some((txn, frame)) = newest_at(versions, limit) {
                if txn > index.backfilled_txn {
                    copies.push((no, frame));
                }
            }
        }
        (copies, index.generation, index.salt)
    }

    /// Commits up to here are copied into the main file.
    pub(crate) fn backfilled_txn(&self) -> u64 {
        self.index.read().backfilled_txn
    }

    /// Records that commits up to `limit` of `generation` are copied into the main file.
    pub(crate) fn note_backfilled(&self, generation: u64, limit: u64) {
        let mut index = self.index.write();
        debug_assert_eq!(index.generation, generation, "WAL reset under a checkpoint");
        index.backfilled_txn = index.backfilled_txn.max(limit);
    }

    /// Starts WAL generation `generation + 1` with a fresh salt; every commit up to
    /// `latest_txn` is in the main file. `forgotten` runs once the index has forgotten the
    /// old generation (the caller drops its cached frames there).
    ///
    /// A header write that meets a full disk (copy-on-write file systems allocate even for
    /// an overwrite) leaves the old generation in force and the database usable: the index
    /// still names it, and the header on disk is either the old one or torn, which recovery
    /// reads through frame 0's salt. Any other failure poisons the database, because the
    /// header on disk may then name a generation the index does not.
    pub(crate) fn reset(
        &self,
        ww: &mut WalWriter,
        (generation, old_salt): (u64, u64),
        latest_txn: u64,
        forgotten: impl FnOnce(),
    ) -> Result<()> {
        let next = generation + 1;
        let salt = make_salt(self.salt_seed, next, old_salt);
        if ww.lsn == ww.generation_lsn {
            self.drop_stale_frames(ww)?;
        }
        let header = WalHeader {
            page_size: self.page_size as u32,
            salt,
            generation: next,
        };
        let written = self.file.write_at(&header.encode(), 0);
        if let Err(e) = written.map_err(|e| Error::io("wal reset", e)) {
            if !matches!(e, Error::DiskFull { .. }) {
                // An EIO may have landed all the same: the header could name a salt the
                // commits that follow would not carry.
                self.stats.poison();
            }
            return Err(e);
        }
        // The index forgets the old generation before the WAL can shrink: a reader holds
        // the index across its frame read, so none reads past a truncated end.
        let mut index = self.index.write();
        index.generation = next;
        index.salt = salt;
        index.pages.clear();
        index.backfilled_txn = latest_txn;
        drop(index);
        ww.generation_lsn = ww.lsn;
        forgotten();
        self.finish_reset(ww).inspect_err(|_| self.stats.poison())
    }

    /// Before retiring a generation with no frames. What lies behind its header is an older,
    /// already checkpointed generation's frames (partly overwritten by writes this one lost
    /// at a crash). Should the new header tear, open would take frame 0's salt and replay
    /// that stale prefix over newer pages, or meet a stale frame vouching for an overwritten
    /// one (`harness run faults/power-loss-normal --seed 7060`). A durable truncation first
    /// leaves no frame 0 to adopt.
    fn drop_stale_frames(&self, ww: &mut WalWriter) -> Result<()> {
        ww.allocated = 0;
        self.file
            .set_len(WAL_HEADER_LEN)
            .map_err(|e| Error::io("wal truncate", e))?;
        self.sync_or_poison("wal sync")
    }

    /// The steps of a WAL reset after the new header is written: truncate the WAL if it
    /// grew past its bound ([`WAL_BOUND_FACTOR`] times the checkpoint threshold), then make
    /// the header durable. Below the bound the file is reused: overwriting blocks in place
    /// spares the file system freeing and allocating them again every generation, which a
    /// load of large commits (each past twice the threshold) otherwise paid on every one.
    fn finish_reset(&self, ww: &mut WalWriter) -> Result<()> {
        let len = self.file.len().map_err(|e| Error::io("wal reset", e))?;
        if len > self.bound_bytes() {
            ww.allocated = 0;
            self.file
                .set_len(WAL_HEADER_LEN)
                .map_err(|e| Error::io("wal truncate", e))?;
        }
        self.file.sync().map_err(|e| Error::io("wal sync", e))?;
        Stats::add(&self.stats.fsyncs, 1);
        Ok(())
    }
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
