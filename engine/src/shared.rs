//! The state a database handle shares with its transactions and threads: the pager and the
//! WAL store (each owning its files), the writer's lock and state, the open readers, the
//! checkpoint lock and the background thread's mailbox. The protocols over it live above:
//! `write` (commit), `txn` (snapshots), `checkpoint`, `check`; `db` opens and closes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::meta::Meta;
use crate::options::Options;
use crate::page::{PageNo, PageRef};
use crate::pager::Pager;
use crate::stats::Stats;
use crate::wal_store::{WalStore, WalWriter};

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
    /// The writer's position in the WAL.
    pub wal: WalWriter,
    /// Id of the last commit written (durable or not).
    pub latest_txn: u64,
    pub next_txn_id: u64,
    /// The meta page as of `latest_txn`.
    pub meta: Meta,
    pub commits_since_sync: u32,
    pub last_sync: Instant,
    /// A writer past the WAL's hard bound checkpoints only from this `lsn` on: set when a
    /// reader kept the last such checkpoint from restarting the WAL.
    pub bound_retry_lsn: u64,
    /// Frames of the last commit: the size the bound check expects of the next one.
    pub last_txn_frames: u64,
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

/// State shared by the database handle and its transactions.
pub(crate) struct Shared {
    pub pager: Pager,
    pub wal: WalStore,
    pub opts: Options,
    pub writer: Arc<Mutex<WriterState>>,
    /// Open read snapshots and how many readers hold each.
    pub readers: Mutex<Readers>,
    pub stats: Arc<Stats>,
    /// Held by every checkpoint for its whole run, before the writer when it takes both:
    /// a background checkpoint reads WAL frames without the writer, so no other checkpoint
    /// may reset the WAL under it.
    pub checkpoint_serial: Mutex<()>,
    /// Requests to the background checkpointer.
    pub background: Mutex<Background>,
    pub background_cv: Condvar,
}

impl Shared {
    pub(crate) fn new(
        (pager, wal): (Pager, WalStore),
        opts: Options,
        meta: Meta,
        stats: Arc<Stats>,
    ) -> Shared {
        let writer = WriterState {
            wal: WalWriter::default(),
            latest_txn: meta.last_txn_id,
            next_txn_id: meta.last_txn_id + 1,
            meta,
            commits_since_sync: 0,
            last_sync: Instant::now(),
            bound_retry_lsn: 0,
            last_txn_frames: 0,
        };
        Shared {
            pager,
            wal,
            opts,
            writer: Arc::new(Mutex::new(writer)),
            readers: Mutex::new(Readers::default()),
            stats,
            checkpoint_serial: Mutex::new(()),
            background: Mutex::new(Background::default()),
            background_cv: Condvar::new(),
        }
    }

    pub(crate) fn page_size(&self) -> usize {
        self.pager.page_size()
    }

    /// The page `no` as of commit `snap`.
    pub(crate) fn read_page(&self, no: PageNo, snap: u64) -> Result<PageRef> {
        self.pager.read_page(&self.wal, no, snap)
    }

    /// [`Shared::read_page`] for a caller that only looks (see [`Pager::with_page`]).
    pub(crate) fn with_page<R>(
        &self,
        no: PageNo,
        snap: u64,
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        self.pager.with_page(&self.wal, no, snap, f)
    }

    pub(crate) fn prefetch_page(&self, no: PageNo, snap: u64) {
        self.pager.prefetch_page(&self.wal, no, snap);
    }

    /// True when the seeded bug `b` is configured and honoured.
    pub(crate) fn bug(&self, b: crate::SeededBug) -> bool {
        crate::bugs::active(self.opts.seeded_bug, b)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.stats.is_poisoned()
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        self.stats.check_poisoned()
    }

    /// Publishes the page count and WAL length for `Database::metrics`.
    pub(crate) fn note_gauges(&self, w: &WriterState) {
        let s = &self.stats;
        s.page_count
            .store(u64::from(w.meta.page_count), Ordering::Relaxed);
        s.wal_frames.store(w.wal.frames(), Ordering::Relaxed);
    }

    /// Sets a request for the background thread with `set` and wakes it. False, with
    /// nothing set, when the thread does not run.
    pub(crate) fn ask_background(&self, set: impl FnOnce(&mut Background)) -> bool {
        let mut bg = self.background.lock();
        if !bg.running {
            return false;
        }
        set(&mut bg);
        drop(bg);
        self.background_cv.notify_one();
        true
    }
}
