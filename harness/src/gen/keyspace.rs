//! The key space shared by all worker threads: the initial record count, the counter that hands
//! out fresh insert indexes, and the acknowledged-insert frontier read by `latest`.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Acknowledgements held above the contiguous frontier. A gap this wide means an insert was
/// allocated and never acknowledged nor abandoned (a driver bug or a hung thread); past it the
/// frontier jumps over the oldest gap so memory stays bounded (8 bytes per held index, ~0.5 MiB
/// at this limit in a BTreeSet).
pub const ACKS_PENDING_MAX: usize = 1 << 16;

/// Shared key-space state. Indexes `0..record_count` are loaded; inserts take fresh indexes from
/// `record_count` upwards. [`KeySpace::acked_count`] is the largest `c` such that every index
/// below `c` is loaded, acknowledged or abandoned: unlike a plain "highest acknowledged insert"
/// it never points `latest` at a key whose insert is still in flight.
#[derive(Debug)]
pub struct KeySpace {
    record_count: u64,
    next_insert: AtomicU64,
    acked_count: AtomicU64,
    acked_above: Mutex<BTreeSet<u64>>,
}

impl KeySpace {
    /// A key space whose first `record_count` keys are (or will be) loaded.
    #[must_use]
    pub fn new(record_count: u64) -> Self {
        Self {
            record_count,
            next_insert: AtomicU64::new(record_count),
            acked_count: AtomicU64::new(record_count),
            acked_above: Mutex::new(BTreeSet::new()),
        }
    }

    /// Number of keys loaded before the run phase.
    #[must_use]
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// A fresh, never-before-returned index for an insert.
    pub fn allocate_insert(&self) -> u64 {
        let index = self.next_insert.fetch_add(1, Ordering::Relaxed);
        assert!(index < u64::MAX, "key space exhausted");
        index
    }

    /// Number of indexes handed out so far (loaded plus allocated inserts).
    #[must_use]
    pub fn allocated_count(&self) -> u64 {
        self.next_insert.load(Ordering::Relaxed)
    }

    /// Every index below this is present (loaded or acknowledged) or abandoned.
    #[must_use]
    pub fn acked_count(&self) -> u64 {
        self.acked_count.load(Ordering::Acquire)
    }

    /// Records that the insert of `index` (from [`KeySpace::allocate_insert`]) was acknowledged.
    pub fn acknowledge_insert(&self, index: u64) {
        assert!(
            index < self.allocated_count(),
            "index {index} was never allocated"
        );
        let mut above = self.acked_above.lock();
        let mut frontier = self.acked_count.load(Ordering::Relaxed);
        if index < frontier {
            return; // Already covered (acknowledged twice, or skipped by an overflow jump).
        }
        above.insert(index);
        if above.len() > ACKS_PENDING_MAX {
            if let Some(&lowest) = above.iter().next() {
                frontier = frontier.max(lowest);
            }
        }
        while above.remove(&frontier) {
            frontier += 1;
        }
        debug_assert!(above.iter().all(|&i| i > frontier));
        self.acked_count.store(frontier, Ordering::Release);
    }

    /// Records that the insert of `index` failed for good; it no longer holds back the frontier
    /// (`latest` may then pick it and find it missing, which readers must tolerate).
    pub fn abandon_insert(&self, index: u64) {
        self.acknowledge_insert(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_advances_only_over_contiguous_acks() {
        let space = KeySpace::new(10);
        let a = space.allocate_insert();
        let b = space.allocate_insert();
        let c = space.allocate_insert();
        assert_eq!((a, b, c), (10, 11, 12));
        space.acknowledge_insert(c);
        assert_eq!(space.acked_count(), 10);
        space.acknowledge_insert(a);
        assert_eq!(space.acked_count(), 11);
        space.abandon_insert(b);
        assert_eq!(space.acked_count(), 13);
        space.acknowledge_insert(b);
        assert_eq!(space.acked_count(), 13);
    }
}
