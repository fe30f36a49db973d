//! The pager: the main file, the page cache, and reading the version of a page a snapshot
//! sees (from the WAL store's frames or the main file, through the cache).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cache::{CacheCounters, Loc, PageCache};
use crate::error::{Error, Result};
use crate::page::{PageBuf, PageNo, PageRef};
use crate::stats::Stats;
use crate::storage::StorageFile;
use crate::wal_store::{WalStore, WalView};

/// Bytes per main-file write when copying runs of adjacent pages.
const COPY_RUN_BYTES_MAX: usize = 1 << 20;

/// The main file and the cache of page images.
pub(crate) struct Pager {
    main: Arc<dyn StorageFile>,
    page_size: usize,
    cache: PageCache,
    stats: Arc<Stats>,
}

impl Pager {
    pub(crate) fn new(
        main: Arc<dyn StorageFile>,
        page_size: usize,
        cache_bytes_max: usize,
        stats: Arc<Stats>,
    ) -> Pager {
        Pager {
            main,
            page_size,
            cache: PageCache::new(cache_bytes_max, page_size),
            stats,
        }
    }

    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    /// The page `no` as of commit `snap`.
    pub(crate) fn read_page(&self, wal: &WalStore, no: PageNo, snap: u64) -> Result<PageRef> {
        self.check_page_no(no)?;
        // The view is held across the load so a WAL reset cannot reuse the frame between
        // the lookup and the read.
        let view = wal.view();
        let loc = view.loc(no, snap);
        if let Some(page) = self.cache.get(loc) {
            return Ok(PageRef(page));
        }
        self.load_and_cache(view, loc, no).map(PageRef)
    }

    /// [`Pager::read_page`] for a caller that only looks: `f` runs under the cache shard's
    /// shared lock on a hit.
    pub(crate) fn with_page<R>(
        &self,
        wal: &WalStore,
        no: PageNo,
        snap: u64,
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        self.check_page_no(no)?;
        let view = wal.view();
        let loc = view.loc(no, snap);
        let mut f = Some(f);
        let hit = self
            .cache
            .with(loc, |page| f.take().map(|f| f(page.body())));
        if let Some(Some(result)) = hit {
            return result;
        }
        let page = self.load_and_cache(view, loc, no)?;
        match f.take() {
            Some(f) => f(page.body()),
            None => Err(Error::page(no, "page visitor ran twice")),
        }
    }

    /// Starts loading page `no` as of `snap` into the CPU cache when it is in the page
    /// cache; nothing otherwise.
    pub(crate) fn prefetch_page(&self, wal: &WalStore, no: PageNo, snap: u64) {
        let loc = wal.view().loc(no, snap);
        self.cache.peek(loc, PageBuf::prefetch);
    }

    /// Refuses a page number at or past the newest commit's page count: no snapshot has
    /// such a page, so a pointer to it (a child, an overflow link, a free-list entry, a
    /// table root) is damage, which would otherwise read whatever stale page the file
    /// still holds there. The page count is the one the meta page is checked against.
    fn check_page_no(&self, no: PageNo) -> Result<()> {
        let count = self.stats.page_count.load(Ordering::Relaxed);
        if u64::from(no) >= count {
            return Err(Error::page(no, format!("past the page count {count}")));
        }
        Ok(())
    }

    /// A cache miss: reads `loc` while `view` is still held (so a WAL reset cannot reuse
    /// the frame meanwhile), then caches it.
    fn load_and_cache(&self, view: WalView<'_>, loc: Loc, no: PageNo) -> Result<PageBuf> {
        let page = match loc {
            Loc::Wal { frame, .. } => view.load_frame(frame, no)?,
            Loc::Main(p) => self.load_main(p, no)?,
        };
        drop(view);
        self.cache.insert(loc, page.clone());
        Ok(page)
    }

    /// Reads main-file page `p` (asked for as page `no`) and verifies it.
    fn load_main(&self, p: PageNo, no: PageNo) -> Result<PageBuf> {
        let offset = u64::from(p) * self.page_size as u64;
        let page = PageBuf::read_with(self.page_size, |buf| {
            self.main.read_at(buf, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::page(no, "beyond the end of the file")
                } else {
                    Error::io("read page", e)
                }
            })
        })?;
        Stats::add(&self.stats.pages_read, 1);
        page.verify(no)?;
        Ok(page)
    }

    /// The image of frame `frame` of `generation` (salted `salt`): from the cache, else
    /// from the WAL.
    pub(crate) fn frame(
        &self,
        wal: &WalStore,
        (generation, salt): (u64, u64),
        frame: u64,
        no: PageNo,
    ) -> Result<PageBuf> {
        match self.cache.get(Loc::Wal { generation, frame }) {
            Some(p) => Ok(p),
            None => wal.load_frame(frame, no, salt),
        }
    }

    /// Caches the frames of a commit just published, from `first` on in `generation`.
    pub(crate) fn cache_frames(&self, generation: u64, first: u64, pages: &[(PageNo, PageBuf)]) {
        for (i, (_, page)) in pages.iter().enumerate() {
            let loc = Loc::Wal {
                generation,
                frame: first + i as u64,
            };
            self.cache.insert(loc, page.clone());
        }
    }

    /// Caches `page` as main-file page `no` (only a seeded bug does this with pages that
    /// are not in the main file).
    pub(crate) fn cache_main(&self, no: PageNo, page: PageBuf) {
        self.cache.insert(Loc::Main(no), page);
    }

    /// Drops every cached WAL frame (after a WAL reset).
    pub(crate) fn purge_wal(&self) {
        self.cache.purge_wal();
    }

    /// Writes pages (sorted by number) into the main file, coalescing adjacent runs, and
    /// refreshes their main-file cache entries.
    pub(crate) fn write_main(&self, pages: &[(PageNo, PageBuf)]) -> Result<()> {
        debug_assert!(pages.windows(2).all(|p| p[0].0 < p[1].0));
        let ps = self.page_size;
        let mut run: Vec<u8> = Vec::with_capacity(COPY_RUN_BYTES_MAX);
        let mut run_start: PageNo = 0;
        for (i, (no, page)) in pages.iter().enumerate() {
            debug_assert!(page.verify(*no).is_ok());
            if run.is_empty() {
                run_start = *no;
            }
            run.extend_from_slice(page.bytes());
            let next_adjacent = pages.get(i + 1).is_some_and(|(n, _)| *n == *no + 1);
            if !next_adjacent || run.len() + ps > COPY_RUN_BYTES_MAX {
                let offset = u64::from(run_start) * ps as u64;
                self.main
                    .write_at(&run, offset)
                    .map_err(|e| Error::io("checkpoint write", e))?;
                run.clear();
            }
        }
        for (no, page) in pages {
            self.cache.insert(Loc::Main(*no), page.clone());
        }
        Stats::add(&self.stats.pages_written, pages.len() as u64);
        Ok(())
    }

    /// Syncs the main file, counting the fsync; a failure poisons the database.
    pub(crate) fn sync_main(&self) -> Result<()> {
        let r = self.main.sync();
        Stats::add(&self.stats.fsyncs, 1);
        r.map_err(|e| {
            self.stats.poison();
            Error::io("main sync", e)
        })
    }

    pub(crate) fn cache_counters(&self) -> CacheCounters {
        self.cache.counters()
    }

    pub(crate) fn cache_bytes(&self) -> u64 {
        self.cache.bytes(self.page_size)
    }
}
