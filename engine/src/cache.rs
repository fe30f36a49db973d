//! A page cache bounded in bytes: sharded, CLOCK (second chance) eviction, with counters.
//!
//! Entries are immutable page images keyed by where they live: a main-file page or a WAL
//! frame of one WAL generation. Frames never change within a generation, and the checkpoint
//! refreshes the main-file entries it overwrites, so a hit is always the right bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

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

/// Main-file pages numbered below this are found through a direct index (4 bytes per page
/// number up to the highest one cached, so at most 64 MiB); higher ones through the hash map.
/// Most databases lie wholly below it: 16M pages is 64 GiB of 4 KiB pages.
const DIRECT_PAGES_MAX: usize = 16 << 20;

struct Slot {
    loc: Loc,
    page: PageBuf,
    /// Set by hits under the shared lock, cleared by the CLOCK hand under the exclusive one.
    referenced: AtomicBool,
}

/// Readers take a shard's lock shared; inserts and evictions take it exclusive.
#[derive(Default)]
struct Shard {
    /// `direct[no / SHARDS]` is the slot of main-file page `no` plus one; 0: not cached.
    direct: Vec<u32>,
    /// WAL frames, and main-file pages past [`DIRECT_PAGES_MAX`].
    map: IntMap<Loc, usize>,
    slots: Vec<Slot>,
    hand: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: u64,
}

impl Shard {
    fn find(&self, loc: Loc) -> Option<usize> {
        match loc {
            Loc::Main(no) if (no as usize) < DIRECT_PAGES_MAX => {
                let at = *self.direct.get(no as usize / SHARDS)?;
                at.checked_sub(1).map(|i| i as usize)
            }
            _ => self.map.get(&loc).copied(),
        }
    }

    fn set_index(&mut self, loc: Loc, slot: Option<usize>) {
        match loc {
            Loc::Main(no) if (no as usize) < DIRECT_PAGES_MAX => {
                let at = no as usize / SHARDS;
                if self.direct.len() <= at {
                    self.direct.resize(at + 1, 0);
                }
                // Slots per shard are far below u32::MAX (the cache is bounded in bytes).
                self.direct[at] = slot.map_or(0, |i| i as u32 + 1);
            }
            _ => match slot {
                Some(i) => {
                    self.map.insert(loc, i);
                }
                None => {
                    self.map.remove(&loc);
                }
            },
        }
    }
}

/// The page cache.
pub(crate) struct PageCache {
    shards: Vec<RwLock<Shard>>,
    slots_per_shard_max: usize,
}

impl PageCache {
    /// A cache of at most `bytes_max` bytes of pages of `page_size` (at least one per shard).
    pub(crate) fn new(bytes_max: usize, page_size: usize) -> PageCache {
        let slots_per_shard_max = (bytes_max / page_size / SHARDS).clamp(1, u32::MAX as usize / 2);
        let shards = (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect();
        PageCache {
            shards,
            slots_per_shard_max,
        }
    }

    fn shard(&self, loc: Loc) -> &RwLock<Shard> {
        // Main pages by number, so each shard's direct index stays dense.
        let h = match loc {
            Loc::Main(no) => no as usize,
            Loc::Wal { .. } => (loc.mix().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize,
        };
        &self.shards[h % SHARDS]
    }

    /// The cached image at `loc`, marking it recently used.
    pub(crate) fn get(&self, loc: Loc) -> Option<PageBuf> {
        self.with(loc, PageBuf::clone)
    }

    /// Runs `f` on the cached image at `loc` under the shard's shared lock, marking it
    /// recently used: a hit then takes no reference to the page. `f` must not use the cache.
    pub(crate) fn with<R>(&self, loc: Loc, f: impl FnOnce(&PageBuf) -> R) -> Option<R> {
        let shard = self.shard(loc).read();
        let Some(i) = shard.find(loc) else {
            shard.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let slot = &shard.slots[i];
        debug_assert_eq!(slot.loc, loc);
        // Only write the flag when it changes: the line stays shared between readers.
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        shard.hits.fetch_add(1, Ordering::Relaxed);
        Some(f(&slot.page))
    }

    /// Runs `f` on the cached image at `loc`, if any, without counting a hit or marking it
    /// used: for hints such as prefetching.
    pub(crate) fn peek(&self, loc: Loc, f: impl FnOnce(&PageBuf)) {
        let shard = self.shard(loc).read();
        if let Some(i) = shard.find(loc) {
            f(&shard.slots[i].page);
        }
    }

    /// Inserts or replaces the image at `loc`, evicting by CLOCK when the shard is full.
    pub(crate) fn insert(&self, loc: Loc, page: PageBuf) {
        let mut shard = self.shard(loc).write();
        if let Some(i) = shard.find(loc) {
            shard.slots[i].page = page;
            return;
        }
        let fresh = Slot {
            loc,
            page,
            referenced: AtomicBool::new(false),
        };
        if shard.slots.len() < self.slots_per_shard_max {
            let i = shard.slots.len();
            shard.slots.push(fresh);
            shard.set_index(loc, Some(i));
            return;
        }
        let victim = Self::clock_victim(&mut shard);
        let old = std::mem::replace(&mut shard.slots[victim], fresh);
        shard.set_index(old.loc, None);
        shard.set_index(loc, Some(victim));
        debug_assert_eq!(shard.find(loc), Some(victim));
        shard.evictions += 1;
    }

    /// Advances the hand past recently used slots; two sweeps at most.
    fn clock_victim(shard: &mut Shard) -> usize {
        let n = shard.slots.len();
        debug_assert!(n > 0);
        for _ in 0..2 * n {
            let i = shard.hand % n;
            shard.hand = (i + 1) % n;
            if !shard.slots[i].referenced.swap(false, Ordering::Relaxed) {
                return i;
            }
        }
        shard.hand % n
    }

    /// Drops every WAL-frame entry (after a WAL reset they name frames that no longer exist).
    pub(crate) fn purge_wal(&self) {
        for shard in &self.shards {
            let mut shard = shard.write();
            shard.slots.retain(|s| matches!(s.loc, Loc::Main(_)));
            shard.map.clear();
            shard.direct.iter_mut().for_each(|d| *d = 0);
            let locs: Vec<Loc> = shard.slots.iter().map(|s| s.loc).collect();
            for (i, loc) in locs.into_iter().enumerate() {
                shard.set_index(loc, Some(i));
            }
            shard.hand = 0;
        }
    }

    /// Hits, misses and evictions so far, over all shards.
    pub(crate) fn counters(&self) -> CacheCounters {
        let mut sum = CacheCounters::default();
        for shard in &self.shards {
            let shard = shard.read();
            sum.hits += shard.hits.load(Ordering::Relaxed);
            sum.misses += shard.misses.load(Ordering::Relaxed);
            sum.evictions += shard.evictions;
        }
        sum
    }

    /// Bytes of pages held now.
    pub(crate) fn bytes(&self, page_size: usize) -> u64 {
        let pages: usize = self.shards.iter().map(|s| s.read().slots.len()).sum();
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

    #[test]
    fn direct_index_and_map_agree() {
        let ps = 4096;
        let cache = PageCache::new(ps * SHARDS * 4, ps);
        let far = DIRECT_PAGES_MAX as u32 + 17;
        let locs = [
            Loc::Main(3),
            Loc::Main(far),
            Loc::Wal {
                generation: 2,
                frame: 3,
            },
        ];
        for (i, loc) in locs.iter().enumerate() {
            let mut page = PageBuf::zeroed(ps);
            page.body_mut()[0] = i as u8 + 1;
            cache.insert(*loc, page);
        }
        for (i, loc) in locs.iter().enumerate() {
            let first = cache.with(*loc, |p| p.body()[0]);
            assert_eq!(first, Some(i as u8 + 1), "{loc:?}");
        }
        assert!(cache.get(Loc::Main(far + 1)).is_none());
        assert!(cache.get(Loc::Main(3 + SHARDS as u32)).is_none());
        cache.purge_wal();
        assert_eq!(cache.with(Loc::Main(far), |p| p.body()[0]), Some(2));
        assert_eq!(cache.with(Loc::Main(3), |p| p.body()[0]), Some(1));
        assert!(cache.get(locs[2]).is_none());
    }
}
