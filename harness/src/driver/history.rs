//! What the driver's threads wrote and when, so a read can be judged for freshness: a read
//! must never return a version older than one acknowledged before the read began, nor a
//! version no thread ever began to write.
//!
//! One logical clock orders the events. A write takes a *begin* stamp before it calls the
//! engine and an *ack* stamp after the engine returns. Per key the book keeps the largest
//! begin stamp among the writes acknowledged so far. A read loads that figure (`B`) before it
//! calls the engine; if the version it gets back was acknowledged before `B`, that version
//! was superseded by a write that began after it ended and ended before the read began: the
//! read is stale (linearizability of a single register). Versions written in a previous
//! phase, by a write that failed (its outcome is unknown) or still in flight are never judged
//! stale.
//!
//! Versions are `(thread + 1) << 40 | n`, `n` counting the thread's writes over the whole run
//! (version 0 is the load). Each thread keeps the ack stamps of its last [`RING_LEN`] writes;
//! an older version was acknowledged before the oldest one kept (a thread writes in order), so
//! that ack is an upper bound that still proves staleness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Keys whose acknowledged writes the book tracks in a dense array (8 bytes each: 128 MiB at
/// this bound). Keys past it (the scale scenarios' 100M and 1B) go to the sparse part.
pub const BOOK_KEYS_MAX: u64 = 1 << 24;
/// Keys past the dense part whose acknowledged writes the sparse part can hold. Its memory
/// follows the keys *written*, not the key space: about 20 bytes a key in a hash map, so
/// 160 MiB at this bound, where a 1B-key scale run's ten minutes of YCSB B write a few
/// million keys. Past it a write is counted in `unjudged_keys`, and every check that
/// leans on the book fails rather than pass unseen.
pub const SPARSE_KEYS_MAX: usize = 1 << 23;
/// Locks of the sparse part: writers of different keys rarely meet on one.
const SPARSE_SHARDS: usize = 64;
/// Writes per thread whose ack stamps are kept exactly (16 bytes each).
pub const RING_LEN: usize = 1024;
/// Bits of a version that count one thread's writes; the thread number sits above them.
pub const VERSION_THREAD_SHIFT: u32 = 40;

const STATE_IN_FLIGHT: u64 = u64::MAX;
const STATE_FAILED: u64 = u64::MAX - 1;

/// A write the book has begun: its first version and its begin stamp.
#[derive(Debug, Clone, Copy)]
pub struct Begun {
    pub version: u64,
    pub stamp: u64,
    pub count: u64,
}

struct WriterLog {
    /// Versions this thread has begun (`n` of the next one).
    begun: u64,
    /// `(n, state)` of the last writes, at `n % RING_LEN`.
    ring: Box<[(u64, u64)]>,
}

/// The shared record of every driver thread's writes.
pub struct VersionBook {
    clock: AtomicU64,
    acked_begin_max: Box<[AtomicU64]>,
    /// `acked_begin_max` of keys past the dense part, sharded by key.
    sparse: Box<[Mutex<HashMap<u64, u64>>]>,
    /// Acknowledged writes of keys the sparse part had no room for.
    unjudged: AtomicU64,
    writers: Box<[Mutex<WriterLog>]>,
}

impl VersionBook {
    /// A book for `threads` writer threads over keys `0..keys` held densely (up to
    /// [`BOOK_KEYS_MAX`]); every other key is held sparsely once written.
    #[must_use]
    pub fn new(threads: usize, keys: u64) -> VersionBook {
        let dense = usize::try_from(keys.min(BOOK_KEYS_MAX)).unwrap_or(0);
        VersionBook {
            clock: AtomicU64::new(1),
            acked_begin_max: (0..dense).map(|_| AtomicU64::new(0)).collect(),
            sparse: (0..SPARSE_SHARDS).map(|_| Mutex::default()).collect(),
            unjudged: AtomicU64::new(0),
            writers: (0..threads)
                .map(|_| {
                    Mutex::new(WriterLog {
                        begun: 0,
                        ring: vec![(u64::MAX, STATE_FAILED); RING_LEN].into_boxed_slice(),
                    })
                })
                .collect(),
        }
    }

    /// True when reads of key `index` can be judged for staleness: always, until the sparse
    /// part overflows (see [`VersionBook::unjudged_keys`]).
    #[must_use]
    pub fn tracks(&self, index: u64) -> bool {
        self.dense(index).is_some() || self.unjudged_keys() == 0
    }

    /// Acknowledged writes of keys the book had no room for (past [`SPARSE_KEYS_MAX`]):
    /// reads of such keys cannot be judged, so a check that needs them must fail.
    #[must_use]
    pub fn unjudged_keys(&self) -> u64 {
        self.unjudged.load(Ordering::SeqCst)
    }

    fn dense(&self, index: u64) -> Option<&AtomicU64> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.acked_begin_max.get(i))
    }

    fn shard(&self, index: u64) -> &Mutex<HashMap<u64, u64>> {
        let slot = (crate::gen::mix64(index) % SPARSE_SHARDS as u64) as usize;
        &self.sparse[slot]
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// Begins `count` consecutive versions of `thread` (one write or a transaction's writes).
    ///
    /// # Panics
    /// When `thread` is outside the book (a driver bug).
    pub fn begin(&self, thread: usize, count: u64) -> Begun {
        let stamp = self.tick();
        let mut log = self.writers[thread].lock();
        let first = log.begun;
        for n in first..first + count {
            log.ring[ring_slot(n)] = (n, STATE_IN_FLIGHT);
        }
        log.begun += count;
        assert!(
            log.begun < 1 << VERSION_THREAD_SHIFT,
            "thread {thread} ran out of versions"
        );
        Begun {
            version: ((thread as u64 + 1) << VERSION_THREAD_SHIFT) | first,
            stamp,
            count,
        }
    }

    /// Records the engine's answer to a write begun with [`VersionBook::begin`] that wrote
    /// `keys`. A failed write's outcome is unknown: its versions are never judged.
    pub fn finish(&self, thread: usize, begun: Begun, keys: &[u64], ok: bool) {
        let state = if ok { self.tick() } else { STATE_FAILED };
        {
            let mut log = self.writers[thread].lock();
            let first = begun.version & version_n_mask();
            for n in first..first + begun.count {
                let slot = &mut log.ring[ring_slot(n)];
                if slot.0 == n {
                    slot.1 = state;
                }
            }
        }
        if ok {
            self.acknowledged(begun.stamp, keys);
        }
    }

    /// A delete (a write of "absent") begins: its stamp.
    pub fn begin_delete(&self) -> u64 {
        self.tick()
    }

    /// Writes of `keys` begun at `stamp` were acknowledged.
    pub fn acknowledged(&self, stamp: u64, keys: &[u64]) {
        for &key in keys {
            if let Some(slot) = self.dense(key) {
                slot.fetch_max(stamp, Ordering::SeqCst);
                continue;
            }
            let mut shard = self.shard(key).lock();
            let room = shard.len() < SPARSE_KEYS_MAX / SPARSE_SHARDS;
            match shard.get_mut(&key) {
                Some(held) => *held = (*held).max(stamp),
                None if room => {
                    shard.insert(key, stamp);
                }
                None => {
                    self.unjudged.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// Taken before a read of key `index`: the stamp its answer must not predate.
    #[must_use]
    pub fn before_read(&self, index: u64) -> u64 {
        match self.dense(index) {
            Some(slot) => slot.load(Ordering::SeqCst),
            None => self.shard(index).lock().get(&index).copied().unwrap_or(0),
        }
    }

    /// Judges `version`, read after [`VersionBook::before_read`] returned `floor`.
    ///
    /// # Errors
    /// A message naming the stale or never-written version.
    pub fn judge(&self, version: u64, floor: u64) -> Result<(), String> {
        if version == 0 {
            // The load ended before any run write began.
            return if floor == 0 {
                Ok(())
            } else {
                Err(format!(
                    "stale read: the loaded version, though a write begun at stamp {floor} \
                     was acknowledged before the read began"
                ))
            };
        }
        let n = version & version_n_mask();
        let thread = (version >> VERSION_THREAD_SHIFT).wrapping_sub(1);
        let Some(log) = usize::try_from(thread)
            .ok()
            .and_then(|t| self.writers.get(t))
        else {
            return Err(format!("version {version:#x} names no driver thread"));
        };
        let log = log.lock();
        if n >= log.begun {
            return Err(format!(
                "version {version:#x} was never written (thread {thread} began {} writes)",
                log.begun
            ));
        }
        let (held, state) = log.ring[ring_slot(n)];
        let acked_by = if held == n {
            state
        } else {
            // Overwritten: `n` was acknowledged before the oldest write still held began.
            log.ring[ring_slot(log.begun)].1
        };
        if acked_by < STATE_FAILED && acked_by < floor {
            return Err(format!(
                "stale read: version {version:#x} (thread {thread}, write {n}) was acknowledged \
                 at stamp {acked_by}, before a write begun at stamp {floor} was acknowledged \
                 and before the read began"
            ));
        }
        Ok(())
    }
}

fn version_n_mask() -> u64 {
    (1 << VERSION_THREAD_SHIFT) - 1
}

fn ring_slot(n: u64) -> usize {
    (n % RING_LEN as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_superseded_version_is_stale_and_the_newest_is_not() {
        let book = VersionBook::new(2, 10);
        let first = book.begin(0, 1);
        book.finish(0, first, &[3], true);
        let second = book.begin(1, 1);
        book.finish(1, second, &[3], true);
        let floor = book.before_read(3);
        assert!(book.judge(second.version, floor).is_ok());
        let stale = book.judge(first.version, floor);
        assert!(stale.is_err_and(|e| e.contains("stale read")));
        assert!(book.judge(0, floor).is_err(), "the load is older still");
        assert!(book.judge(0, book.before_read(4)).is_ok());
    }

    #[test]
    fn overlapping_writes_are_both_allowed() {
        let book = VersionBook::new(2, 10);
        let a = book.begin(0, 1);
        let b = book.begin(1, 1);
        book.finish(1, b, &[5], true);
        book.finish(0, a, &[5], true);
        let floor = book.before_read(5);
        assert!(book.judge(a.version, floor).is_ok());
        assert!(book.judge(b.version, floor).is_ok());
    }

    #[test]
    fn never_begun_and_foreign_versions_fail() {
        let book = VersionBook::new(1, 10);
        let a = book.begin(0, 1);
        assert!(book.judge(a.version + 1, 0).is_err());
        assert!(book.judge(5 << VERSION_THREAD_SHIFT, 0).is_err());
        assert!(book.judge(a.version, 0).is_ok(), "in flight");
    }

    #[test]
    fn versions_older_than_the_ring_are_judged_by_its_oldest() {
        let book = VersionBook::new(2, 10);
        let old = book.begin(0, 1);
        book.finish(0, old, &[1], true);
        for _ in 0..RING_LEN + 3 {
            let b = book.begin(0, 1);
            book.finish(0, b, &[2], true);
        }
        let newer = book.begin(1, 1);
        book.finish(1, newer, &[1], true);
        assert!(book.judge(old.version, book.before_read(1)).is_err());
        // A failed write is never judged.
        let failed = book.begin(1, 1);
        book.finish(1, failed, &[1], false);
        assert!(book.judge(failed.version, book.before_read(1)).is_ok());
    }

    #[test]
    fn keys_past_the_dense_part_are_judged_too() {
        // A 1B-key space: nothing is allocated per key, only per key written.
        let book = VersionBook::new(1, 1 << 30);
        let key = (1 << 29) + 17;
        assert!(book.tracks(key));
        let a = book.begin(0, 1);
        book.finish(0, a, &[key], true);
        assert!(book.judge(0, book.before_read(key)).is_err(), "lost update");
        assert!(book.judge(a.version, book.before_read(key)).is_ok());
        assert!(book.judge(0, book.before_read(key + 1)).is_ok());
        assert_eq!(book.unjudged_keys(), 0);
    }

    #[test]
    fn deletes_supersede_what_was_acknowledged_before_them() {
        let book = VersionBook::new(1, 10);
        let a = book.begin(0, 1);
        book.finish(0, a, &[7], true);
        let stamp = book.begin_delete();
        book.acknowledged(stamp, &[7]);
        assert!(book.judge(a.version, book.before_read(7)).is_err());
    }
}
