//! Hooks into private codecs for the fuzz targets in `fuzz/` and the codec property tests.
//!
//! **Unstable, for fuzzing and tests only.** Compiled only with the `fuzzing` feature and
//! hidden from the documentation; names and signatures change without notice. Each function
//! is a thin wrapper that turns arbitrary bytes into a call of the engine's own decoder, so a
//! fuzzer reaches the code the engine runs on bytes read from disk.
//!
//! Wrappers check the preconditions the engine guarantees before it calls a decoder (a
//! buffer of a valid page size, for example) and return [`Error::InvalidArgument`] instead,
//! so a fuzz input never trips a debug assertion that real callers cannot reach.

use std::collections::HashMap;
use std::ops::Bound;

use crate::btree;
use crate::error::{Error, Result};
use crate::freelist;
use crate::meta::Meta;
use crate::page::{
    PageBuf, PageKind, PageNo, PageRead, PageRef, PageWrite, PAGE_HEADER_LEN, PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
};
use crate::storage::{MemStorage, Storage};
use crate::wal::{self, FrameHeader, WalHeader};

/// Bytes of the WAL header.
pub const WAL_HEADER_LEN: usize = wal::WAL_HEADER_LEN as usize;
/// Bytes of a WAL frame header (the page image follows).
pub const FRAME_HEADER_LEN: usize = wal::FRAME_HEADER_LEN;
/// Bytes of the page header (checksum, page number, transaction id).
pub const PAGE_HEADER_BYTES: usize = PAGE_HEADER_LEN;

/// Pages a fuzz page store holds: enough for a two-level tree with overflow chains, few
/// enough that one input is checked in microseconds.
pub const STORE_PAGES_MAX: usize = 16;
/// Entries a cursor scan over a fuzz store yields before the wrapper stops it. A store of
/// [`STORE_PAGES_MAX`] 64 KiB pages holds fewer cells than this.
pub const SCAN_ENTRIES_MAX: usize = 1 << 16;

/// True for a page size the engine accepts: a power of two in 4 KiB..=64 KiB.
#[must_use]
pub fn page_size_ok(page_size: usize) -> bool {
    (PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&page_size) && page_size.is_power_of_two()
}

fn need_page(bytes: &[u8]) -> Result<()> {
    if page_size_ok(bytes.len()) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            detail: format!("{} bytes is not a page size", bytes.len()),
        })
    }
}

/// Seals `page` (a whole page of a valid size) as page `page_no` written by `txn_id`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `page.len()` is not a page size.
pub fn seal_page(page: &mut [u8], page_no: u32, txn_id: u64) -> Result<()> {
    need_page(page)?;
    let mut buf = PageBuf::from_bytes(page);
    buf.seal(page_no, txn_id);
    page.copy_from_slice(buf.bytes());
    Ok(())
}

/// The id of the transaction that sealed `page` (not verified).
///
/// # Errors
/// [`Error::InvalidArgument`] when `page.len()` is not a page size.
pub fn page_txn_id(page: &[u8]) -> Result<u64> {
    need_page(page)?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&page[8..16]);
    Ok(u64::from_le_bytes(id))
}

/// Verifies a page's checksum and page number, as every read from storage does.
///
/// # Errors
/// [`Error::Corruption`]; [`Error::InvalidArgument`] when `page.len()` is not a page size.
pub fn verify_page(page: &[u8], page_no: u32) -> Result<()> {
    need_page(page)?;
    PageBuf::from_bytes(page).verify(page_no)
}

/// The meta page's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaFields {
    pub page_size: u32,
    pub page_count: u32,
    pub free_head: u32,
    pub free_count: u32,
    pub catalog_root: u32,
    pub last_txn_id: u64,
    pub checkpointed_salt: u64,
}

impl From<Meta> for MetaFields {
    fn from(m: Meta) -> MetaFields {
        MetaFields {
            page_size: m.page_size,
            page_count: m.page_count,
            free_head: m.free_head,
            free_count: m.free_count,
            catalog_root: m.catalog_root,
            last_txn_id: m.last_txn_id,
            checkpointed_salt: m.checkpointed_salt,
        }
    }
}

/// A sealed page 0 holding `m`.
///
/// # Errors
/// [`Error::InvalidArgument`] for a page size or field the encoder's contract excludes
/// (page count below 2, catalog root past the page count).
pub fn encode_meta_page(m: &MetaFields, txn_id: u64) -> Result<Vec<u8>> {
    if !page_size_ok(m.page_size as usize) || m.page_count < 2 || m.catalog_root >= m.page_count {
        return Err(Error::InvalidArgument {
            detail: format!("meta {m:?}"),
        });
    }
    let meta = Meta {
        page_size: m.page_size,
        page_count: m.page_count,
        free_head: m.free_head,
        free_count: m.free_count,
        catalog_root: m.catalog_root,
        last_txn_id: m.last_txn_id,
        checkpointed_salt: m.checkpointed_salt,
    };
    Ok(meta.to_page(txn_id).bytes().to_vec())
}

/// Verifies `page` as page 0 and decodes its meta fields, as `open` does.
///
/// # Errors
/// [`Error::Corruption`]; [`Error::InvalidArgument`] when `page.len()` is not a page size.
pub fn decode_meta_page(page: &[u8]) -> Result<MetaFields> {
    verify_page(page, 0)?;
    decode_meta_body(&page[PAGE_HEADER_LEN..], page.len()).map(MetaFields::from)
}

fn decode_meta_body(body: &[u8], page_size: usize) -> Result<Meta> {
    Meta::decode(body, page_size)
}

/// The page size announced by the first bytes of a main file, if valid.
#[must_use]
pub fn peek_page_size(first: &[u8]) -> Option<usize> {
    Meta::peek_page_size(first)
}

/// The WAL header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeaderFields {
    pub page_size: u32,
    pub salt: u64,
    pub generation: u64,
}

/// The 64-byte WAL header for `h`.
#[must_use]
pub fn encode_wal_header(h: &WalHeaderFields) -> Vec<u8> {
    WalHeader {
        page_size: h.page_size,
        salt: h.salt,
        generation: h.generation,
    }
    .encode()
    .to_vec()
}

/// Decodes a WAL header; `None` for a wrong magic, version or checksum.
#[must_use]
pub fn decode_wal_header(bytes: &[u8]) -> Option<WalHeaderFields> {
    WalHeader::decode(bytes).map(|h| WalHeaderFields {
        page_size: h.page_size,
        salt: h.salt,
        generation: h.generation,
    })
}

/// A WAL frame header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFields {
    pub page_no: u32,
    pub commit_page_count: u32,
    pub salt: u64,
    pub index: u64,
    pub txn_id: u64,
    pub synced_upto: u64,
}

/// One frame: `f`'s header and `page` sealed as `f.page_no` by `f.txn_id`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `page.len()` is not a page size.
pub fn encode_wal_frame(f: &FrameFields, page: &[u8]) -> Result<Vec<u8>> {
    need_page(page)?;
    let mut buf = PageBuf::from_bytes(page);
    buf.seal(f.page_no, f.txn_id);
    let h = FrameHeader {
        page_no: f.page_no,
        commit_page_count: f.commit_page_count,
        salt: f.salt,
        index: f.index,
        txn_id: f.txn_id,
        synced_upto: f.synced_upto,
    };
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + page.len());
    wal::encode_frame(&h, &buf, &mut out);
    Ok(out)
}

/// Decodes one frame (exactly one frame long) if its checksum holds.
#[must_use]
pub fn decode_wal_frame(bytes: &[u8]) -> Option<FrameFields> {
    wal::decode_frame(bytes).map(|h| FrameFields {
        page_no: h.page_no,
        commit_page_count: h.commit_page_count,
        salt: h.salt,
        index: h.index,
        txn_id: h.txn_id,
        synced_upto: h.synced_upto,
    })
}

/// One recovered transaction: (transaction id, page count after it, its frames as (page,
/// frame index)).
pub type RecoveredTxn = (u64, u32, Vec<(u32, u64)>);

/// What the recovery scan accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredWal {
    pub txns: Vec<RecoveredTxn>,
    pub end_frame: u64,
    pub torn_tail: bool,
}

/// Runs the recovery scan over `wal_bytes` as a WAL file in a [`MemStorage`]. Every
/// committed transaction of the generation is returned (recovery replays them all, even those
/// an earlier checkpoint already copied). `Ok(None)` when the header does not
/// decode or names a page size the engine would have refused against its meta page.
///
/// # Errors
/// As recovery: [`Error::Corruption`] for an invalid frame that a later frame vouches for.
pub fn recover_wal(wal_bytes: &[u8]) -> Result<Option<RecoveredWal>> {
    let Some(h) = WalHeader::decode(wal_bytes) else {
        return Ok(None);
    };
    if !page_size_ok(h.page_size as usize) {
        return Ok(None);
    }
    let storage = MemStorage::new();
    storage.put("wal", wal_bytes.to_vec());
    let file = storage
        .open("wal", false)
        .map_err(|e| Error::io("fuzz wal", e))?;
    let r = wal::recover(file.as_ref(), &h, wal::ScanBugs::default())?;
    debug_assert!(r.end_frame <= wal_bytes.len() as u64);
    let txns = r
        .txns
        .into_iter()
        .map(|t| (t.txn_id, t.page_count, t.frames))
        .collect();
    Ok(Some(RecoveredWal {
        txns,
        end_frame: r.end_frame,
        torn_tail: r.torn_tail,
    }))
}

/// What a verified page holds, for [`decode_page`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageSummary {
    Meta(MetaFields),
    /// A tree node: entries reached by `check` from it as a one-page tree.
    Node {
        entries: u64,
    },
    Overflow,
    FreeTrunk {
        next: u32,
        entries: usize,
    },
    Free,
}

/// Verifies `page` as page `page_no`, then decodes it by its kind the way the engine would:
/// meta fields, a one-page tree check, or a free-list trunk (against a meta page that makes
/// every page number up to `u32::MAX - 1` valid).
///
/// # Errors
/// [`Error::Corruption`]; [`Error::InvalidArgument`] when `page.len()` is not a page size.
pub fn decode_page(page: &[u8], page_no: u32) -> Result<PageSummary> {
    verify_page(page, page_no)?;
    let body = &page[PAGE_HEADER_LEN..];
    let kind = PageKind::from_byte(body[0])
        .ok_or_else(|| Error::page(page_no, format!("kind {}", body[0])))?;
    match kind {
        PageKind::Meta => decode_meta_body(body, page.len()).map(|m| PageSummary::Meta(m.into())),
        PageKind::Leaf | PageKind::Branch => {
            let store = PageStore::from_pages(page.len(), vec![(page_no, page.to_vec())]);
            let stats = store.check_tree(page_no)?;
            Ok(PageSummary::Node {
                entries: stats.entries,
            })
        }
        PageKind::FreeTrunk => {
            let meta = wide_meta(page.len());
            let (next, _) = freelist::read_trunk(body, page_no, &meta)?;
            let entries = freelist::trunk_entries(body, page_no, &meta)?.len();
            Ok(PageSummary::FreeTrunk { next, entries })
        }
        PageKind::Overflow => Ok(PageSummary::Overflow),
        PageKind::Free => Ok(PageSummary::Free),
    }
}

/// A meta page under which every page number is in range.
fn wide_meta(page_size: usize) -> Meta {
    Meta {
        page_size: page_size as u32,
        page_count: crate::meta::PAGE_COUNT_MAX,
        free_head: 0,
        free_count: 0,
        catalog_root: 1,
        last_txn_id: 0,
        checkpointed_salt: 0,
    }
}

/// What [`btree_pages`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOutcome {
    /// `check` from the root: `Ok(entries)` or the error's text.
    pub check: std::result::Result<u64, String>,
    /// Entries of a forward and a reverse full scan until the end or the first error.
    pub scanned_forward: usize,
    pub scanned_reverse: usize,
    /// Insert and delete results on a private copy of the store.
    pub mutations_ok: usize,
}

/// Treats `pages` (each a whole page of `page_size` bytes, numbered 1, 2, ...) as a B+tree
/// rooted at page 1: seals them (so the structure, not the checksum, is what gets tested),
/// then runs the integrity check, point reads of `keys`, full scans both ways, and inserts
/// and deletes of `keys` on a copy. Also decodes each page as a free-list trunk. Any outcome
/// is fine except a panic, a hang or a wild allocation; when `check` passes, the scans must
/// agree with it.
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad page size or more than [`STORE_PAGES_MAX`] pages.
pub fn btree_pages(page_size: usize, pages: &[Vec<u8>], keys: &[Vec<u8>]) -> Result<TreeOutcome> {
    if !page_size_ok(page_size) || pages.is_empty() || pages.len() > STORE_PAGES_MAX {
        return Err(Error::InvalidArgument {
            detail: format!("{} pages of {page_size}", pages.len()),
        });
    }
    let mut sealed = Vec::with_capacity(pages.len());
    for (i, p) in pages.iter().enumerate() {
        let mut page = p.clone();
        page.resize(page_size, 0);
        let no = i as u32 + 1;
        seal_page(&mut page, no, 1)?;
        sealed.push((no, page));
    }
    let meta = Meta {
        page_count: pages.len() as u32 + 1,
        ..wide_meta(page_size)
    };
    for (no, page) in &sealed {
        let body = &page[PAGE_HEADER_LEN..];
        if body[0] == PageKind::FreeTrunk as u8 {
            let _ = freelist::trunk_entries(body, *no, &meta);
        }
    }
    let mut store = PageStore::from_pages(page_size, sealed);
    let check = store
        .check_tree(1)
        .map(|s| s.entries)
        .map_err(|e| e.to_string());
    for key in keys {
        let _ = btree::get(&store, 1, key);
    }
    let scanned_forward = store.scan(1, false);
    let scanned_reverse = store.scan(1, true);
    if let Ok(entries) = check {
        // A tree that passes the check must scan completely, both ways.
        assert_eq!(
            scanned_forward as u64, entries,
            "forward scan of a checked tree"
        );
        assert_eq!(
            scanned_reverse as u64, entries,
            "reverse scan of a checked tree"
        );
    }
    let mut mutations_ok = 0;
    for (i, key) in keys.iter().enumerate() {
        let r = if i % 3 == 2 {
            btree::delete(&mut store, 1, key)
        } else {
            btree::insert(&mut store, 1, key, key)
        };
        match r {
            Ok(_) => mutations_ok += 1,
            // An error may leave the tree half-changed: the engine rolls back; so do we.
            Err(_) => break,
        }
    }
    Ok(TreeOutcome {
        check,
        scanned_forward,
        scanned_reverse,
        mutations_ok,
    })
}

/// Pages in memory for the tree code: a one-transaction page store.
struct PageStore {
    page_size: usize,
    pages: HashMap<PageNo, PageBuf>,
    next: PageNo,
}

impl PageStore {
    fn from_pages(page_size: usize, pages: Vec<(PageNo, Vec<u8>)>) -> PageStore {
        let next = pages.iter().map(|(no, _)| *no).max().unwrap_or(0) + 1;
        let pages = pages
            .into_iter()
            .map(|(no, p)| (no, PageBuf::from_bytes(&p)))
            .collect();
        PageStore {
            page_size,
            pages,
            next,
        }
    }

    fn check_tree(&self, root: PageNo) -> Result<btree::TreeStats> {
        let mut seen = std::collections::HashSet::new();
        let mut visit = |no: PageNo, _kind: PageKind| {
            if seen.insert(no) {
                Ok(())
            } else {
                Err(Error::page(no, "reached twice"))
            }
        };
        btree::check(self, root, &mut visit)
    }

    fn scan(&self, root: PageNo, reverse: bool) -> usize {
        let mut cursor = btree::Cursor::new(root, Bound::Unbounded, Bound::Unbounded, reverse);
        let mut n = 0;
        while n < SCAN_ENTRIES_MAX {
            match cursor.next(self) {
                Ok(Some(_)) => n += 1,
                Ok(None) | Err(_) => break,
            }
        }
        n
    }
}

impl PageRead for PageStore {
    fn body_len(&self) -> usize {
        self.page_size - PAGE_HEADER_LEN
    }
    fn page(&self, no: PageNo) -> Result<PageRef> {
        self.pages
            .get(&no)
            .map(|p| PageRef(p.clone()))
            .ok_or_else(|| Error::page(no, "not in the fuzz store"))
    }
}

impl PageWrite for PageStore {
    fn page_mut(&mut self, no: PageNo) -> Result<&mut [u8]> {
        let page = self
            .pages
            .get_mut(&no)
            .ok_or_else(|| Error::page(no, "not in the fuzz store"))?;
        Ok(page.body_mut())
    }
    fn allocate(&mut self) -> Result<PageNo> {
        // Bounded like a transaction's dirty set: a runaway split loop fails, not grows.
        if self.pages.len() >= 4 * STORE_PAGES_MAX {
            return Err(Error::LimitExceeded {
                what: "fuzz store pages",
                value: self.pages.len() as u64,
                max: 4 * STORE_PAGES_MAX as u64,
            });
        }
        let no = self.next;
        self.next += 1;
        self.pages.insert(no, PageBuf::zeroed(self.page_size));
        Ok(no)
    }
    fn free(&mut self, no: PageNo) -> Result<()> {
        self.pages
            .remove(&no)
            .map(|_| ())
            .ok_or_else(|| Error::page(no, "freeing a page not in the store"))
    }
}

/// Builds a B+tree in memory from `entries` (inserted in order) and returns its pages,
/// numbered 1 (the root), 2, ... as whole unsealed pages: realistic seeds for fuzzing
/// [`btree_pages`].
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad page size; errors of the tree code (such as
/// [`Error::LimitExceeded`] past `4 * STORE_PAGES_MAX` pages).
pub fn build_tree_pages(page_size: usize, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<Vec<u8>>> {
    if !page_size_ok(page_size) {
        return Err(Error::InvalidArgument {
            detail: format!("page size {page_size}"),
        });
    }
    let mut store = PageStore::from_pages(page_size, Vec::new());
    let root = btree::create(&mut store)?;
    debug_assert_eq!(root, 1);
    for (k, v) in entries {
        btree::insert(&mut store, root, k, v)?;
    }
    let mut out = Vec::with_capacity(store.pages.len());
    for no in 1..store.next {
        let page = store
            .pages
            .get(&no)
            .ok_or_else(|| Error::page(no, "hole in a built tree"))?;
        out.push(page.bytes().to_vec());
    }
    Ok(out)
}
