//! The free list: a chain of trunk pages, each listing free page numbers.
//!
//! Trunk body: kind (`FreeTrunk`) | 3 zero bytes | next trunk u32 | entry count u32 |
//! entries u32... Allocation pops from the head trunk, then reuses the trunk itself. Freed
//! pages can be reused at once: readers see old page versions through the WAL index, not
//! through the free list.

use crate::error::{Error, Result};
use crate::le::{put_u32, u32_at};
use crate::meta::{Meta, PAGE_COUNT_MAX};
use crate::page::{PageKind, PageNo, PageWrite};

const TRUNK_HEADER_LEN: usize = 12;

/// Entries one trunk page holds.
pub(crate) fn trunk_capacity(body_len: usize) -> usize {
    (body_len - TRUNK_HEADER_LEN) / 4
}

/// A trunk's next pointer and entry count, validated against `meta`.
pub(crate) fn read_trunk(body: &[u8], no: PageNo, meta: &Meta) -> Result<(PageNo, usize)> {
    if body[0] != PageKind::FreeTrunk as u8 {
        return Err(Error::page(
            no,
            format!("free list trunk has kind {}", body[0]),
        ));
    }
    let next = u32_at(body, 4);
    let count = u32_at(body, 8) as usize;
    if count > trunk_capacity(body.len()) || (next != 0 && next >= meta.page_count) {
        return Err(Error::page(
            no,
            format!("free list trunk: next {next}, count {count}"),
        ));
    }
    Ok((next, count))
}

/// The entries of a trunk, each checked to be in range.
pub(crate) fn trunk_entries(body: &[u8], no: PageNo, meta: &Meta) -> Result<Vec<PageNo>> {
    let (_, count) = read_trunk(body, no, meta)?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let p = u32_at(body, TRUNK_HEADER_LEN + 4 * i);
        if p == 0 || p >= meta.page_count {
            return Err(Error::page(no, format!("free list entry {p} out of range")));
        }
        out.push(p);
    }
    Ok(out)
}

/// Takes a page from the free list, or grows the file by one page. The page's content is
/// left to the caller (it zeroes it).
pub(crate) fn allocate(tx: &mut impl PageWrite, meta: &mut Meta) -> Result<PageNo> {
    let head = meta.free_head;
    if head == 0 {
        if meta.page_count >= PAGE_COUNT_MAX {
            let (value, max) = (u64::from(meta.page_count), u64::from(PAGE_COUNT_MAX));
            return Err(Error::LimitExceeded {
                what: "page count",
                value,
                max,
            });
        }
        meta.page_count += 1;
        return Ok(meta.page_count - 1);
    }
    let snapshot = *meta;
    let body = tx.page_mut(head)?;
    let (next, count) = read_trunk(body, head, &snapshot)?;
    if count > 0 {
        let at = TRUNK_HEADER_LEN + 4 * (count - 1);
        let p = u32_at(body, at);
        if p == 0 || p >= snapshot.page_count || p == head {
            return Err(Error::page(
                head,
                format!("free list entry {p} out of range"),
            ));
        }
        let reused = tx.seeded_bug(crate::SeededBug::FreeListEntryReused);
        let body = tx.page_mut(head)?;
        if !reused {
            put_u32(body, 8, (count - 1) as u32);
        }
        meta.free_count = meta.free_count.saturating_sub(1);
        return Ok(p);
    }
    meta.free_head = next;
    meta.free_count = meta.free_count.saturating_sub(1);
    if (meta.free_head == 0) != (meta.free_count == 0) {
        return Err(Error::page(
            head,
            "free list count disagrees with its chain",
        ));
    }
    Ok(head)
}

/// Puts `no` on the free list. The range checked here before the write is the one
/// `trunk_entries` and `allocate` check after the read.
pub(crate) fn free(tx: &mut impl PageWrite, meta: &mut Meta, no: PageNo) -> Result<()> {
    if no == 0 || no >= meta.page_count {
        return Err(Error::page(no, "freeing a page out of range"));
    }
    let head = meta.free_head;
    if head != 0 {
        let snapshot = *meta;
        let body = tx.page_mut(head)?;
        let (_, count) = read_trunk(body, head, &snapshot)?;
        if count < trunk_capacity(body.len()) {
            put_u32(body, TRUNK_HEADER_LEN + 4 * count, no);
            put_u32(body, 8, (count + 1) as u32);
            meta.free_count += 1;
            return Ok(());
        }
    }
    let body = tx.page_mut(no)?;
    body.fill(0);
    body[0] = PageKind::FreeTrunk as u8;
    put_u32(body, 4, head);
    put_u32(body, 8, 0);
    meta.free_head = no;
    meta.free_count += 1;
    Ok(())
}
