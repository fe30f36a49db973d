//! The meta page (page 0): the database's root of trust.
//!
//! Body layout (after the 16-byte page header, little-endian):
//! ```text
//! 0       kind = PageKind::Meta
//! 1..8    magic b"ENGINE1"
//! 8..12   format version
//! 12..16  page size in bytes
//! 16..20  page count (pages 0..page_count exist)
//! 20..24  free list head trunk page (0 = empty)
//! 24..28  free pages in the list (trunks included)
//! 28..32  catalog root page
//! 32..40  id of the last committed transaction folded into this page
//! 40..48  reserved (zero)
//! ```

use crate::error::{Error, Location, Result};
use crate::le::{u32_at, u64_at};
use crate::page::{PageBuf, PageKind, PageNo, PAGE_SIZE_MAX, PAGE_SIZE_MIN};

const MAGIC: &[u8; 7] = b"ENGINE1";
const FORMAT_VERSION: u32 = 1;

/// Transaction ids stop here: at a billion commits a second that is 292 years, and the
/// headroom above it keeps every `+ 1` on ids (commits, renumbered recovery) from overflowing.
pub(crate) const TXN_ID_MAX: u64 = u64::MAX / 2;

/// Pages beyond this never get allocated: page numbers are u32 and 0 is the meta page.
pub(crate) const PAGE_COUNT_MAX: u32 = u32::MAX - 1;

/// The catalog's root never moves: it is page 1, and the meta page names no other.
pub(crate) const CATALOG_ROOT: PageNo = 1;

/// The decoded meta page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub page_size: u32,
    pub page_count: u32,
    pub free_head: PageNo,
    pub free_count: u32,
    pub catalog_root: PageNo,
    pub last_txn_id: u64,
    pub checkpointed_salt: u64,
}

impl Meta {
    /// Writes the fields into a meta page body. A commit checks them first with
    /// [`Meta::validate`], the check `decode` applies after the read.
    pub(crate) fn encode(&self, body: &mut [u8]) {
        debug_assert!(self.validate(self.page_size as usize).is_ok());
        body[0] = PageKind::Meta as u8;
        body[1..8].copy_from_slice(MAGIC);
        body[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        body[12..16].copy_from_slice(&self.page_size.to_le_bytes());
        body[16..20].copy_from_slice(&self.page_count.to_le_bytes());
        body[20..24].copy_from_slice(&self.free_head.to_le_bytes());
        body[24..28].copy_from_slice(&self.free_count.to_le_bytes());
        body[28..32].copy_from_slice(&self.catalog_root.to_le_bytes());
        body[32..40].copy_from_slice(&self.last_txn_id.to_le_bytes());
        body[40..48].copy_from_slice(&self.checkpointed_salt.to_le_bytes());
    }

    /// Decodes and sanity-checks a meta page body (its checksum is already verified).
    ///
    /// # Errors
    /// [`Error::Corruption`] at [`Location::Meta`] for a wrong magic, version or field.
    pub(crate) fn decode(body: &[u8], page_size: usize) -> Result<Meta> {
        let bad = |detail: String| Error::Corruption {
            location: Location::Meta,
            detail,
        };
        if body.len() < 48 || body[0] != PageKind::Meta as u8 || &body[1..8] != MAGIC {
            return Err(bad("bad magic: not an engine database".into()));
        }
        let version = u32_at(body, 8);
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version}, expected {FORMAT_VERSION}"
            )));
        }
        let meta = Meta {
            page_size: u32_at(body, 12),
            page_count: u32_at(body, 16),
            free_head: u32_at(body, 20),
            free_count: u32_at(body, 24),
            catalog_root: u32_at(body, 28),
            last_txn_id: u64_at(body, 32),
            checkpointed_salt: u64_at(body, 40),
        };
        meta.validate(page_size)?;
        Ok(meta)
    }

    /// The meta page's invariants, checked after every read ([`Meta::decode`]) and before
    /// every commit writes the page (`WriteTxn::commit`), in release builds too.
    ///
    /// # Errors
    /// [`Error::Corruption`] at [`Location::Meta`] naming the first field that breaks one.
    pub(crate) fn validate(&self, page_size: usize) -> Result<()> {
        let bad = |detail: String| Error::Corruption {
            location: Location::Meta,
            detail,
        };
        if self.page_size as usize != page_size {
            return Err(bad(format!("page size {} != {page_size}", self.page_size)));
        }
        if self.page_count < 2 || self.page_count > PAGE_COUNT_MAX {
            return Err(bad(format!("page count {}", self.page_count)));
        }
        if self.catalog_root != CATALOG_ROOT {
            // Every reader takes the catalog from page 1: another root would be ignored.
            return Err(bad(format!("catalog root {}", self.catalog_root)));
        }
        if self.free_head != 0 && self.free_head >= self.page_count {
            return Err(bad(format!(
                "free list head {} out of range",
                self.free_head
            )));
        }
        if self.last_txn_id > TXN_ID_MAX {
            // Ids are incremented from here (and recovered commits renumbered after it).
            return Err(bad(format!("last transaction id {}", self.last_txn_id)));
        }
        if self.free_count >= self.page_count || (self.free_head == 0) != (self.free_count == 0) {
            return Err(bad(format!("free count {}", self.free_count)));
        }
        Ok(())
    }

    /// Reads the page size out of the first bytes of a main file before its size is known.
    pub(crate) fn peek_page_size(first: &[u8]) -> Option<usize> {
        let at = crate::page::PAGE_HEADER_LEN + 12;
        let size = u32_at(first.get(..at + 4)?, at) as usize;
        let ok = (PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&size) && size.is_power_of_two();
        ok.then_some(size)
    }

    /// A sealed page 0 holding this meta.
    pub(crate) fn to_page(self, txn_id: u64) -> PageBuf {
        let mut page = PageBuf::zeroed(self.page_size as usize);
        self.encode(page.body_mut());
        page.seal(0, txn_id);
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trip_and_rejects_garbage() -> Result<()> {
        let meta = Meta {
            page_size: 4096,
            page_count: 10,
            free_head: 3,
            free_count: 2,
            catalog_root: 1,
            last_txn_id: 42,
            checkpointed_salt: 7,
        };
        let page = meta.to_page(42);
        page.verify(0)?;
        assert_eq!(Meta::decode(page.body(), 4096)?, meta);
        assert_eq!(Meta::peek_page_size(page.bytes()), Some(4096));
        let mut bad = page.body().to_vec();
        bad[16] = 0; // page count 0
        bad[17] = 0;
        assert!(Meta::decode(&bad, 4096).is_err());
        assert!(Meta::decode(&[0u8; 64], 4096).is_err());
        Ok(())
    }
}
