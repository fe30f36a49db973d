//! Page memory: chunks of anonymous memory advised for transparent huge pages, cut into
//! page-sized slots.
//!
//! Why: a page cache of a few hundred MiB read at random misses the TLB on nearly every
//! page it touches when each page is its own heap allocation (4 KiB mappings; one page image
//! plus its reference count even straddles two). A 2 MiB huge page covers 512 pages with one
//! TLB entry. Measured on 1M keys: +10% random gets (`quick_perf`, HUGE on vs off).
//!
//! The pool is process-wide and per page size: slots are taken on a cache miss or a
//! copy-on-write and given back when the last holder drops them; a chunk whose slots are all
//! free is unmapped once more than [`CHUNKS_IDLE_MAX`] such chunks sit idle. Where a chunk
//! cannot be mapped, or past [`CHUNKS_MAX`], pages come from the heap as before.
//!
//! Turning a slot's address into a slice is one of the engine's two `unsafe` spots (the other
//! is the prefetch hint in the node search).

use std::ptr::NonNull;
use std::sync::Arc;

use parking_lot::Mutex;

/// Bytes per chunk: two huge pages, so at least one aligned 2 MiB page lies inside even where
/// the kernel does not align the mapping (Linux 6.7+ aligns mappings of whole huge pages).
const CHUNK_BYTES: usize = 4 << 20;

/// Wholly free chunks kept mapped per page size, so a cache that empties and refills does
/// not map and unmap on every swing.
const CHUNKS_IDLE_MAX: usize = 2;

/// Chunks mapped at once per page size: 64 GiB. Past it pages come from the heap; the bound
/// keeps the chunk table and its scans small.
const CHUNKS_MAX: usize = 16 * 1024;

/// One mapping. `base` points into `_map`, which lives as long as the chunk.
struct Chunk {
    base: NonNull<u8>,
    _map: memmap2::MmapMut,
}

// SAFETY: `Chunk` only owns a mapping (plain memory, like a `Box<[u8]>`); which slot of it
// each thread may touch is decided by the pool under its lock.
unsafe impl Send for Chunk {}
// SAFETY: as above; `Chunk` itself offers no access to the memory.
unsafe impl Sync for Chunk {}

struct ChunkState {
    chunk: Arc<Chunk>,
    /// Slots not handed out.
    free: Vec<u32>,
}

/// The chunks of one page size.
struct Pool {
    page_size: usize,
    chunks: Vec<Option<ChunkState>>,
    /// Indices into `chunks` of chunks with at least one free slot.
    partial: Vec<usize>,
    /// Chunks all of whose slots are free.
    idle: usize,
}

static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// A page-sized piece of memory: a pooled slot, or a heap buffer when no slot was had.
pub(crate) enum PageMem {
    Heap(Box<[u8]>),
    Pooled(Slot),
}

/// A slot owned by exactly one `Slot` until it is dropped.
pub(crate) struct Slot {
    ptr: NonNull<u8>,
    len: usize,
    chunk_index: u32,
    index: u32,
    /// Keeps the mapping alive (the pool unmaps only wholly free chunks; this is the backstop).
    _chunk: Arc<Chunk>,
}

// SAFETY: a `Slot` owns its bytes exclusively, as a `Box<[u8]>` does.
unsafe impl Send for Slot {}
// SAFETY: shared access only reads, through `&self`.
unsafe impl Sync for Slot {}

impl PageMem {
    /// Memory for one page of `page_size` bytes. Its contents are unspecified (a reused slot
    /// holds an old page): the caller overwrites all of it.
    pub(crate) fn new(page_size: usize) -> PageMem {
        match take_slot(page_size) {
            Some(slot) => PageMem::Pooled(slot),
            None => PageMem::Heap(vec![0u8; page_size].into_boxed_slice()),
        }
    }

    /// A copy of `bytes`.
    pub(crate) fn copy_of(bytes: &[u8]) -> PageMem {
        let mut mem = PageMem::new(bytes.len());
        mem.copy_from_slice(bytes);
        mem
    }
}

impl Clone for PageMem {
    fn clone(&self) -> PageMem {
        PageMem::copy_of(self)
    }
}

impl std::ops::Deref for PageMem {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            PageMem::Heap(b) => b,
            PageMem::Pooled(s) => {
                // SAFETY: `ptr..ptr + len` is this slot, inside the mapping `_chunk` keeps
                // alive; the pool hands each slot to one `Slot` at a time, so nothing else
                // writes it while this borrow of `self` lasts.
                unsafe { std::slice::from_raw_parts(s.ptr.as_ptr(), s.len) }
            }
        }
    }
}

impl std::ops::DerefMut for PageMem {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            PageMem::Heap(b) => b,
            PageMem::Pooled(s) => {
                // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
                unsafe { std::slice::from_raw_parts_mut(s.ptr.as_ptr(), s.len) }
            }
        }
    }
}

/// A shared, immutable page image that reads its bytes without touching the reference count's
/// allocation: the data pointer is kept beside the `Arc`, so a reader goes straight to the
/// page (one cache miss fewer per page on a large cache). Writing copies when shared.
#[derive(Clone)]
pub(crate) struct SharedPage {
    mem: Arc<PageMem>,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `SharedPage` is an `Arc<PageMem>` (Send and Sync) plus a pointer into that same
// memory, which it only reads through `&self` and writes through `&mut self` when unique.
unsafe impl Send for SharedPage {}
// SAFETY: as above.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    pub(crate) fn new(mem: PageMem) -> SharedPage {
        let mem = Arc::new(mem);
        let len = mem.len();
        // Derived from a shared borrow: only ever read through (see `make_mut`).
        let ptr = NonNull::from(&**mem).cast::<u8>();
        SharedPage { mem, ptr, len }
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is the memory of `self.mem` (a heap buffer or a pool slot,
        // neither of which moves while the `PageMem` lives), kept alive by the `Arc`. It is
        // only written through `make_mut`, which needs `&mut self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Starts loading the page's first two lines and its reference count, for a page that
    /// will be used soon.
    #[inline]
    pub(crate) fn prefetch(&self) {
        prefetch(Arc::as_ptr(&self.mem).cast());
        prefetch(self.ptr.as_ptr());
        prefetch(self.ptr.as_ptr().wrapping_add(64));
    }

    /// The bytes for writing, copied first when another holder shares them.
    pub(crate) fn make_mut(&mut self) -> &mut [u8] {
        let mem: &mut PageMem = Arc::make_mut(&mut self.mem);
        let mem: &mut [u8] = mem;
        debug_assert_eq!(mem.len(), self.len);
        // A copy lives elsewhere: from now on point at whatever `mem` holds, and hand out
        // the bytes through that same pointer so later reads through it stay valid.
        self.ptr = NonNull::from(mem).cast::<u8>();
        // SAFETY: the pointer was just taken from the unique `&mut` borrow of the `Arc`'s
        // contents, which `&mut self` keeps unique for the returned lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        give_back(self.len, self.chunk_index as usize, self.index);
    }
}

/// Hints the CPU to start loading the cache line at `ptr`; a no-op off x86-64.
#[inline]
pub(crate) fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults (not even on an invalid address),
    // reads nothing into the program and writes nothing; SSE is in the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Maps a chunk advised for huge pages; `None` when the system refuses.
fn map_chunk() -> Option<Arc<Chunk>> {
    let mut map = memmap2::MmapMut::map_anon(CHUNK_BYTES).ok()?;
    // Only a hint: without it the chunk still works, on 4 KiB pages. (Miri cannot run it.)
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    let base = NonNull::new(map.as_mut_ptr())?;
    Some(Arc::new(Chunk { base, _map: map }))
}

fn take_slot(page_size: usize) -> Option<Slot> {
    if page_size == 0 || !CHUNK_BYTES.is_multiple_of(page_size) {
        return None;
    }
    let mut pools = POOLS.lock();
    let i = if let Some(i) = pools.iter().position(|p| p.page_size == page_size) {
        i
    } else {
        pools.push(Pool::new(page_size));
        pools.len() - 1
    };
    pools[i].take()
}

fn give_back(page_size: usize, chunk_index: usize, slot: u32) {
    let mut pools = POOLS.lock();
    let unmapped = pools
        .iter_mut()
        .find(|p| p.page_size == page_size)
        .and_then(|pool| pool.give_back(chunk_index, slot));
    // Unmap after unlocking: other threads' pages need not wait for the system call.
    drop(pools);
    drop(unmapped);
}

impl Pool {
    fn new(page_size: usize) -> Pool {
        Pool {
            page_size,
            chunks: Vec::new(),
            partial: Vec::new(),
            idle: 0,
        }
    }

    fn slots_per_chunk(&self) -> usize {
        CHUNK_BYTES / self.page_size
    }

    fn take(&mut self) -> Option<Slot> {
        if self.partial.is_empty() {
            self.add_chunk()?;
        }
        let index = *self.partial.last()?;
        // Fallible steps first: once a slot leaves the free list it must reach a `Slot`.
        let chunk_index = u32::try_from(index).ok()?;
        let per_chunk = self.slots_per_chunk();
        let page_size = self.page_size;
        let state = self.chunks.get_mut(index)?.as_mut()?;
        let all_free = state.free.len() == per_chunk;
        let slot = state.free.pop()?;
        debug_assert!((slot as usize) < per_chunk);
        // `offset + page_size <= CHUNK_BYTES`: the slot lies inside the mapping, so the
        // address is inside it too (and not null, as the mapping's base is not).
        let offset = slot as usize * page_size;
        let ptr = state.chunk.base.as_ptr().wrapping_add(offset);
        let Some(ptr) = NonNull::new(ptr) else {
            state.free.push(slot);
            return None;
        };
        let taken = Slot {
            ptr,
            len: page_size,
            chunk_index,
            index: slot,
            _chunk: state.chunk.clone(),
        };
        if state.free.is_empty() {
            self.partial.pop();
        }
        if all_free {
            self.idle -= 1;
        }
        Some(taken)
    }

    /// Maps one more chunk into a vacant entry (or a new one), all of it free.
    fn add_chunk(&mut self) -> Option<()> {
        let vacant = self.chunks.iter().position(Option::is_none);
        if vacant.is_none() && self.chunks.len() >= CHUNKS_MAX {
            return None;
        }
        let chunk = map_chunk()?;
        // Pop order: low slots first, so a small cache stays within the first huge page.
        let free = (0..self.slots_per_chunk() as u32).rev().collect();
        let state = Some(ChunkState { chunk, free });
        let index = if let Some(i) = vacant {
            self.chunks[i] = state;
            i
        } else {
            self.chunks.push(state);
            self.chunks.len() - 1
        };
        self.partial.push(index);
        self.idle += 1;
        Some(())
    }

    /// Returns the slot; hands back a chunk that became idle past [`CHUNKS_IDLE_MAX`], for
    /// the caller to unmap once the pool is unlocked.
    fn give_back(&mut self, index: usize, slot: u32) -> Option<Arc<Chunk>> {
        let per_chunk = self.slots_per_chunk();
        let Some(Some(state)) = self.chunks.get_mut(index) else {
            debug_assert!(false, "slot returned to a chunk that is gone");
            return None;
        };
        debug_assert!(!state.free.contains(&slot), "slot {slot} freed twice");
        state.free.push(slot);
        if state.free.len() == 1 {
            self.partial.push(index);
        }
        let mut unmapped = None;
        if state.free.len() == per_chunk {
            self.idle += 1;
            if self.idle > CHUNKS_IDLE_MAX {
                unmapped = self.chunks[index].take().map(|s| s.chunk);
                self.partial.retain(|&i| i != index);
                self.idle -= 1;
            }
        }
        debug_assert!(self.idle <= CHUNKS_IDLE_MAX);
        unmapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Page sizes the rest of the engine does not use, so other tests' pages do not mix in.
    const PS: usize = 2048;

    fn chunks_mapped(page_size: usize) -> usize {
        let pools = POOLS.lock();
        pools
            .iter()
            .find(|p| p.page_size == page_size)
            .map_or(0, |p| p.chunks.iter().flatten().count())
    }

    #[test]
    fn slots_are_distinct_and_unmapped_when_idle() {
        let per_chunk = CHUNK_BYTES / PS;
        let mut pages: Vec<PageMem> = (0..per_chunk * 5)
            .map(|i| {
                let mut m = PageMem::new(PS);
                m.fill((i % 251) as u8);
                m
            })
            .collect();
        assert!(pages.iter().all(|p| matches!(p, PageMem::Pooled(_))));
        assert_eq!(chunks_mapped(PS), 5);
        // Every slot kept its own bytes: no two pages share memory.
        for (i, p) in pages.iter().enumerate() {
            assert!(
                p.iter().all(|&b| b == (i % 251) as u8),
                "page {i} overwritten"
            );
        }
        let copy = pages[7].clone();
        assert_eq!(&copy[..], &pages[7][..]);
        drop(copy);
        pages.clear();
        assert_eq!(chunks_mapped(PS), CHUNKS_IDLE_MAX);
        let again = PageMem::new(PS);
        assert!(matches!(again, PageMem::Pooled(_)));
        assert_eq!(chunks_mapped(PS), CHUNKS_IDLE_MAX);
    }

    #[test]
    fn shared_page_copies_on_write_when_shared() {
        let mut a = SharedPage::new(PageMem::copy_of(&[1u8; PS]));
        a.make_mut()[0] = 2;
        let mut b = a.clone();
        b.make_mut()[0] = 3;
        b.make_mut()[1] = 4;
        assert_eq!((a.bytes()[0], a.bytes()[1]), (2, 1));
        assert_eq!((b.bytes()[0], b.bytes()[1]), (3, 4));
        drop(a);
        b.make_mut()[2] = 5;
        assert_eq!(&b.bytes()[..4], &[3, 4, 5, 1]);
    }
}
