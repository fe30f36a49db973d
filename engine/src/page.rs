//! Pages: fixed-size buffers with a checksummed header, and the traits through which the
//! B+tree reads and writes them.
//!
//! Page layout (all integers little-endian):
//! ```text
//! 0..4    crc32c of bytes 4..page_size
//! 4..8    page number (catches misdirected writes)
//! 8..16   id of the transaction that last wrote the page
//! 16..    body: owned by the B+tree, the free list or the meta page
//! ```
//! The body's first byte is its [`PageKind`].

use std::ops::Deref;

use crate::arena::{PageMem, SharedPage};
use crate::error::{Error, Result};

/// A page number. Page 0 is the meta page; the main file holds pages `0..page_count`.
pub(crate) type PageNo = u32;

/// Bytes of the page header that precedes the body.
pub(crate) const PAGE_HEADER_LEN: usize = 16;

/// Smallest page size: keys of [`crate::KEY_BYTES_MAX`] must fit four to a page.
pub const PAGE_SIZE_MIN: usize = 4096;
/// Largest page size: offsets inside a page are 16-bit... plus one, so 64 KiB is the end.
pub const PAGE_SIZE_MAX: usize = 65536;
/// The default page size.
pub const PAGE_SIZE_DEFAULT: usize = 4096;

/// What a page body holds: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PageKind {
    /// Never written, or freed and zeroed.
    Free = 0,
    /// A B+tree leaf.
    Leaf = 1,
    /// A B+tree interior node.
    Branch = 2,
    /// One link of an overflow chain for a large value.
    Overflow = 3,
    /// A trunk page of the free list.
    FreeTrunk = 4,
    /// The meta page (page 0).
    Meta = 5,
}

impl PageKind {
    pub(crate) fn from_byte(b: u8) -> Option<PageKind> {
        Some(match b {
            0 => PageKind::Free,
            1 => PageKind::Leaf,
            2 => PageKind::Branch,
            3 => PageKind::Overflow,
            4 => PageKind::FreeTrunk,
            5 => PageKind::Meta,
            _ => return None,
        })
    }
}

/// A whole page: header and body, in pooled page memory (see [`crate::arena`]). Cloning
/// shares the bytes; writing copies them first when they are shared.
#[derive(Clone)]
pub(crate) struct PageBuf {
    buf: SharedPage,
}

impl std::fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageBuf")
            .field("len", &self.buf.bytes().len())
            .field(
                "head",
                &&self.bytes()[..PAGE_HEADER_LEN.min(self.bytes().len())],
            )
            .finish_non_exhaustive()
    }
}

impl PartialEq for PageBuf {
    fn eq(&self, other: &PageBuf) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for PageBuf {}

impl PageBuf {
    /// A zeroed page of `page_size` bytes.
    pub(crate) fn zeroed(page_size: usize) -> PageBuf {
        debug_assert!((PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&page_size));
        let mut mem = PageMem::new(page_size);
        mem.fill(0);
        PageBuf {
            buf: SharedPage::new(mem),
        }
    }

    /// A copy of raw bytes read from storage (not yet verified).
    pub(crate) fn from_bytes(bytes: &[u8]) -> PageBuf {
        PageBuf {
            buf: SharedPage::new(PageMem::copy_of(bytes)),
        }
    }

    /// A page of `page_size` bytes filled by `read`, which must write all of them (a
    /// reused buffer holds an older page until then).
    ///
    /// # Errors
    /// Whatever `read` returns.
    pub(crate) fn read_with<E>(
        page_size: usize,
        read: impl FnOnce(&mut [u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<PageBuf, E> {
        let mut mem = PageMem::new(page_size);
        read(&mut mem)?;
        Ok(PageBuf {
            buf: SharedPage::new(mem),
        })
    }

    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.bytes()
    }

    #[inline]
    pub(crate) fn body(&self) -> &[u8] {
        &self.buf.bytes()[PAGE_HEADER_LEN..]
    }

    /// Starts loading the page's first lines (see [`SharedPage::prefetch`]).
    #[inline]
    pub(crate) fn prefetch(&self) {
        self.buf.prefetch();
    }

    /// The body, copied first if another holder shares it.
    pub(crate) fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buf.make_mut()[PAGE_HEADER_LEN..]
    }

    /// Stamps the header (page number, transaction id, checksum) before a write to storage.
    pub(crate) fn seal(&mut self, no: PageNo, txn_id: u64) {
        let buf = self.buf.make_mut();
        buf[4..8].copy_from_slice(&no.to_le_bytes());
        buf[8..16].copy_from_slice(&txn_id.to_le_bytes());
        let crc = crc32c::crc32c(&buf[4..]);
        buf[0..4].copy_from_slice(&crc.to_le_bytes());
        debug_assert!(self.verify(no).is_ok());
    }

    /// Checks the checksum and page number after a read from storage.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming page `no`.
    pub(crate) fn verify(&self, no: PageNo) -> Result<()> {
        let buf = self.bytes();
        let stored = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let actual = crc32c::crc32c(&buf[4..]);
        if stored != actual {
            return Err(Error::page(
                no,
                format!("checksum {stored:#010x} != {actual:#010x}"),
            ));
        }
        let at = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        if at != no {
            return Err(Error::page(
                no,
                format!("holds page {at} (misdirected write)"),
            ));
        }
        Ok(())
    }
}

/// A shared, immutable view of a page's body.
#[derive(Clone, Debug)]
pub(crate) struct PageRef(pub(crate) PageBuf);

impl Deref for PageRef {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.body()
    }
}

/// Read access to pages as one transaction sees them.
pub(crate) trait PageRead {
    /// Bytes in a page body: page size less [`PAGE_HEADER_LEN`].
    /// True when the seeded bug `bug` is configured (see [`crate::SeededBug`]).
    fn seeded_bug(&self, bug: crate::SeededBug) -> bool {
        let _ = bug;
        false
    }
    fn body_len(&self) -> usize;
    /// The body of page `no` as this transaction sees it.
    ///
    /// # Errors
    /// I/O errors; [`Error::Corruption`] when the page fails its checksum or is out of range.
    fn page(&self, no: PageNo) -> Result<PageRef>;

    /// Runs `f` on the body of page `no` as this transaction sees it, without keeping the
    /// page: from the cache, that saves taking and dropping a reference (a cache miss on a
    /// random page). `f` must not read pages itself.
    ///
    /// # Errors
    /// As [`PageRead::page`], and whatever `f` returns.
    fn with_page<R>(&self, no: PageNo, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R>
    where
        Self: Sized,
    {
        f(&self.page(no)?)
    }

    /// A hint that page `no` will be read soon: starts loading it when it is cached.
    fn prefetch(&self, no: PageNo) {
        let _ = no;
    }
}

/// Write access for the one write transaction. Pages changed here are private to the
/// transaction until it commits.
pub(crate) trait PageWrite: PageRead {
    /// The body of page `no`, copied into the transaction's dirty set on first use.
    ///
    /// # Errors
    /// As [`PageRead::page`], and limits on the dirty set.
    fn page_mut(&mut self, no: PageNo) -> Result<&mut [u8]>;
    /// A fresh page, zeroed and already dirty.
    ///
    /// # Errors
    /// I/O errors, corruption of the free list, or the page count limit.
    fn allocate(&mut self) -> Result<PageNo>;
    /// Gives page `no` back for reuse. The caller must hold no reference to it in the tree.
    ///
    /// # Errors
    /// I/O errors or corruption of the free list.
    fn free(&mut self, no: PageNo) -> Result<()>;
}
