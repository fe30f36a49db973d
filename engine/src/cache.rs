//! A page cache bounded in bytes: sharded, CLOCK (second chance) eviction, with counters.
//!
//! Entries are immutable page images keyed by where they live: a main-file page or a WAL
//! frame of one WAL generation. Frames never change within a generation, and the checkpoint
//! refreshes the main-file entries it overwrites, so a hit is always the right bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;

use crate::page::{PageBuf, PageNo};

/// Shards cut lock contention between reader threads; 16 is plenty for the core counts an
/// embedded database sees and keeps each shard's share of a small cache above a few pages.
const SHARDS: usize = 16;

/// Where a cached page image lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loc {
    Main(PageNo),
    Wal { generation: u64, frame: u64 },
}

/// One `write_u64` per key: the derived `Hash` would also feed the enum's discriminant
/// through the byte-at-a-time `Hasher::write`, a measurable share of every cache lookup.
impl std::hash::Hash for Loc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.mix());
    }
}

impl Loc {
    fn mix(self) -> u64 {
        match self {
            Loc::Main(p) => u64::from(p),
            Loc::Wal { generation, frame } => (frame << 8) ^ generation ^ (1 << 63),
        }
    }
}

/// A multiply-shift hasher for the small integer keys of the cache and WAL index.
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Cache counters, summed over the shards.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CacheCounters {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

struct Slot {
    loc: Loc,
    page: PageBuf,
    referenced: bool,
}

/// Counters live inside each shard, under its lock: no shared atomic is touched per lookup.
#[derive(Default)]
struct Shard {
    map: IntMap<Loc, usize>,
    slots: Vec<Slot>,
    hand: usize,
    counters: CacheCounters,
}

/// The page cache.
pub(crate) struct PageCache {
    shards: Vec<Mutex<Shard>>,
    slots_per_shard_max: usize,
}

impl PageCache {
    /// A cache of at most `bytes_max` bytes of pages of `page_size` (at least one per shard).
    pub(crate) fn new(bytes_max: usize, page_size: usize) -> PageCache {
        let slots_per_shard_max = (bytes_max / page_size / SHARDS).max(1);
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        PageCache {
            shards,
            slots_per_shard_max,
        }
    }

    fn shard(&self, loc: Loc) -> &Mutex<Shard> {
        let h = loc.mix().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.shards[(h as usize) % SHARDS]
    }

    /// The cached image at `loc`, marking it recently used.
    pub(crate) fn get(&self, loc: Loc) -> Option<PageBuf> {
        let mut shard = self.shard(loc).lock();
        if let Some(&i) = shard.map.get(&loc) {
            let slot = &mut shard.slots[i];
            slot.referenced = true;
            let page = slot.page.clone();
            shard.counters.hits += 1;
            return Some(page);
        }
        shard.counters.misses += 1;
        None
    }

    /// Inserts or replaces the image at `loc`, evicting by CLOCK when the shard is full.
    pub(crate) fn insert(&self, loc: Loc, page: PageBuf) {
        let mut shard = self.shard(loc).lock();
        if let Some(&i) = shard.map.get(&loc) {
            shard.slots[i].page = page;
            return;
        }
        if shard.slots.len() < self.slots_per_shard_max {
            let i = shard.slots.len();
            shard.slots.push(Slot {
                loc,
                page,
                referenced: false,
            });
            shard.map.insert(loc, i);
            return;
        }
        let victim = Self::clock_victim(&mut shard);
        let old = std::mem::replace(
            &mut shard.slots[victim],
            Slot {
                loc,
                page,
                referenced: false,
            },
        );
        shard.map.remove(&old.loc);
        shard.map.insert(loc, victim);
        debug_assert_eq!(shard.map.len(), shard.slots.len());
        shard.counters.evictions += 1;
    }

    /// Advances the hand past recently used slots; two sweeps at most.
    fn clock_victim(shard: &mut Shard) -> usize {
        let n = shard.slots.len();
        debug_assert!(n > 0);
        for _ in 0..2 * n {
            let i = shard.hand % n;
            shard.hand = (i + 1) % n;
            if !shard.slots[i].referenced {
                return i;
            }
            shard.slots[i].referenced = false;
        }
        shard.hand % n
    }

    /// Drops every WAL-frame entry (after a WAL reset they name frames that no longer exist).
    pub(crate) fn purge_wal(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock();
            shard.slots.retain(|s| matches!(s.loc, Loc::Main(_)));
            let map = shard
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| (s.loc, i))
                .collect();
            shard.map = map;
            shard.hand = 0;
        }
    }

    /// Hits, misses and evictions so far, over all shards.
    pub(crate) fn counters(&self) -> CacheCounters {
        let mut sum = CacheCounters::default();
        for shard in &self.shards {
            let c = shard.lock().counters;
            sum.hits += c.hits;
            sum.misses += c.misses;
            sum.evictions += c.evictions;
        }
        sum
    }

    /// Bytes of pages held now.
    pub(crate) fn bytes(&self, page_size: usize) -> u64 {
        let pages: usize = self.shards.iter().map(|s| s.lock().slots.len()).sum();
        (pages * page_size) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_second_chance() {
        let ps = 4096;
        let cache = PageCache::new(ps * SHARDS * 2, ps);
        for p in 0..1000u32 {
            cache.insert(Loc::Main(p), PageBuf::zeroed(ps));
        }
        assert!(cache.bytes(ps) <= (ps * SHARDS * 2) as u64);
        assert!(cache.counters().evictions >= 1000 - 2 * SHARDS as u64);
        let hot = Loc::Main(999);
        assert!(cache.get(hot).is_some());
        assert!(cache.get(Loc::Main(0)).is_none());
        cache.insert(
            Loc::Wal {
                generation: 1,
                frame: 3,
            },
            PageBuf::zeroed(ps),
        );
        cache.purge_wal();
        assert!(cache
            .get(Loc::Wal {
                generation: 1,
                frame: 3
            })
            .is_none());
        assert!(cache.get(hot).is_some());
    }
}
