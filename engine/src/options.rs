//! Options, durability modes and metrics.

use crate::error::{Error, Result};
use crate::page::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_SIZE_MIN};

/// When a commit becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `commit` returns after its commit record is durable. At most one fsync per commit;
    /// committers that arrive while an fsync runs share the next one (group commit).
    Full,
    /// The WAL is synced every `commits` commits or `millis` milliseconds, whichever comes
    /// first (a background thread covers idle periods). A crash loses at most that window,
    /// always a suffix of the commit history, and never corrupts.
    Normal { commits: u32, millis: u32 },
    /// Commits are never synced; checkpoints still order their writes. A power loss may lose
    /// any suffix of the commits since the last checkpoint.
    Off,
}

/// Options for [`crate::Database::open`]. Build with `..Options::default()`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Page size in bytes for a new database: a power of two in
    /// [`PAGE_SIZE_MIN`]..=[`PAGE_SIZE_MAX`]. An existing database keeps its own.
    pub page_size: usize,
    /// Upper bound of the page cache in bytes.
    pub cache_bytes_max: usize,
    /// Commit durability.
    pub durability: Durability,
    /// A commit that leaves the WAL larger than this starts a checkpoint. The default,
    /// 16 MiB, balances two costs measured side by side with `SQLite`: a small WAL is
    /// restarted early and then overwritten in place, so durable commits stop growing the
    /// file (growing costs zero-fill writes and an fsync of the new size), while every
    /// checkpoint copies pages back and fsyncs the main file, which a write-heavy load pays
    /// for more often the smaller the WAL. At 4 MiB single-row commits gained ~8% and YCSB-A
    /// lost ~30%; at 64 MiB the reverse (docs/design.md).
    pub wal_checkpoint_bytes: u64,
    /// Run automatic checkpoints on a background thread: it copies pages into the main
    /// file beside the writer and holds the writer only for the last few frames and the
    /// WAL reset, so no commit waits for a whole checkpoint (unless the WAL reaches twice
    /// `wal_checkpoint_bytes`, when the committer checkpoints itself). `false` runs them
    /// inline in the commit that crossed the threshold: every I/O then happens on the
    /// calling thread in a fixed order, which the harness's seeded fault replays need.
    pub checkpoint_in_background: bool,
    /// A commit that would grow the WAL past this fails with [`Error::LimitExceeded`].
    pub wal_bytes_max: u64,
    /// A write transaction may dirty at most this many bytes of pages.
    pub txn_dirty_bytes_max: usize,
    /// Seed for WAL salts. `None` draws them from the OS; a seed makes the files of a run
    /// byte-for-byte reproducible (the harness sets it).
    pub salt_seed: Option<u64>,
    /// A deliberate defect for testing the harness; honoured only with the `seeded-bugs`
    /// feature and rejected by [`Options::validate`] without it.
    pub seeded_bug: Option<crate::SeededBug>,
}

/// Cache sizes below this starve a B+tree descent; above 1 TiB is surely a unit mistake.
const CACHE_BYTES_MIN: usize = 64 * 1024;
const CACHE_BYTES_MAX: usize = 1 << 40;
/// Dirty sets past 16 GiB would outgrow the machines this runs on.
const TXN_DIRTY_BYTES_MAX: usize = 16 << 30;
/// The WAL's frame indexes are u64 but its in-memory index costs ~40 bytes a frame: 64 GiB
/// of WAL is about 600 MB of index.
const WAL_BYTES_MAX: u64 = 64 << 30;

impl Default for Options {
    fn default() -> Options {
        Options {
            page_size: PAGE_SIZE_DEFAULT,
            cache_bytes_max: 64 << 20,
            durability: Durability::Full,
            wal_checkpoint_bytes: 16 << 20,
            checkpoint_in_background: true,
            wal_bytes_max: 16 << 30,
            txn_dirty_bytes_max: 4 << 30,
            salt_seed: None,
            seeded_bug: None,
        }
    }
}

impl Options {
    /// Checks every field against its limits.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(Error::InvalidArgument { detail });
        let ps = self.page_size;
        if !(PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&ps) || !ps.is_power_of_two() {
            return bad(format!(
                "page_size {ps}: a power of two in {PAGE_SIZE_MIN}..={PAGE_SIZE_MAX}"
            ));
        }
        if !(CACHE_BYTES_MIN..=CACHE_BYTES_MAX).contains(&self.cache_bytes_max) {
            return bad(format!("cache_bytes_max {}", self.cache_bytes_max));
        }
        if self.txn_dirty_bytes_max < 16 * ps || self.txn_dirty_bytes_max > TXN_DIRTY_BYTES_MAX {
            return bad(format!("txn_dirty_bytes_max {}", self.txn_dirty_bytes_max));
        }
        if self.wal_bytes_max > WAL_BYTES_MAX || self.wal_checkpoint_bytes > self.wal_bytes_max {
            return bad(format!(
                "wal_bytes_max {} / wal_checkpoint_bytes {}",
                self.wal_bytes_max, self.wal_checkpoint_bytes
            ));
        }
        if self.seeded_bug.is_some() && !cfg!(feature = "seeded-bugs") {
            return bad("seeded_bug needs the engine's `seeded-bugs` feature".into());
        }
        if let Durability::Normal { commits, millis } = self.durability {
            if commits == 0 || millis == 0 {
                return bad("Durability::Normal needs commits > 0 and millis > 0".into());
            }
        }
        Ok(())
    }
}

/// Counters and gauges of one open database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    pub durability: Durability,
    pub commits: u64,
    pub rollbacks: u64,
    pub fsyncs: u64,
    pub checkpoints: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_evictions: u64,
    pub cache_bytes: u64,
    pub cache_bytes_max: u64,
    pub pages_read: u64,
    pub pages_written: u64,
    /// Checkpoints a writer ran itself, before its transaction, because the WAL had passed
    /// its hard bound (four times `wal_checkpoint_bytes`); non-zero means the background
    /// checkpointer fell behind or checkpoints were failing.
    pub bound_checkpoints: u64,
    /// Checkpoints that could not restart the WAL because an open reader still needed old
    /// page versions: while a reader stays open, the WAL grows past its bound (the one
    /// documented exception to it, as in `SQLite`).
    pub checkpoints_blocked_by_reader: u64,
    /// Read transactions open now.
    pub readers_open: u64,
    /// Commits the oldest open reader's snapshot lags behind the newest commit (0 with no
    /// reader): how much history a long reader keeps the WAL holding.
    pub reader_lag_commits: u64,
    pub wal_frames: u64,
    pub wal_bytes: u64,
    pub page_count: u64,
    pub page_size: u64,
}
