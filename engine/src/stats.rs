//! Counters every layer adds to, and the poisoned flag every layer honours.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Counters and gauges behind [`crate::Metrics`], plus the flag a failed fsync raises.
/// Shared (through an `Arc`) by the pager, the WAL store and the transactions.
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
    /// After a failed fsync nothing more is written until the database is reopened: the
    /// kernel may have dropped the dirty pages, and a retried fsync would report success.
    poisoned: AtomicBool,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        if self.is_poisoned() {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }
}
