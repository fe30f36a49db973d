//! Overflow chains: a large value split over a singly linked list of `Overflow` pages.

use crate::error::{Error, Result};
use crate::page::{PageKind, PageNo, PageRead, PageWrite};
use crate::VALUE_BYTES_MAX;

use super::node::{get_u16, get_u32, put_u16, put_u32};

/// Overflow header: kind, reserved, chunk length (u16), next page (u32, 0 ends the chain).
pub(super) const OVERFLOW_HEADER_LEN: usize = 8;

/// Value bytes one overflow page holds.
pub(super) fn chunk_max(body_len: usize) -> usize {
    body_len - OVERFLOW_HEADER_LEN
}

/// Pages in the chain of a value of `len` bytes.
pub(super) fn chain_len(body_len: usize, len: usize) -> usize {
    len.div_ceil(chunk_max(body_len))
}

/// Writes `value` to a new chain and returns its first page.
pub(super) fn write(tx: &mut impl PageWrite, value: &[u8]) -> Result<PageNo> {
    debug_assert!(!value.is_empty() && value.len() <= VALUE_BYTES_MAX);
    let chunk = chunk_max(tx.body_len());
    let mut next: PageNo = 0;
    // Back to front, so each page is written once, already knowing its successor.
    for part in value.chunks(chunk).rev() {
        let no = tx.allocate()?;
        let body = tx.page_mut(no)?;
        body.fill(0);
        body[0] = PageKind::Overflow as u8;
        put_u16(body, 2, part.len());
        put_u32(body, 4, next);
        body[OVERFLOW_HEADER_LEN..OVERFLOW_HEADER_LEN + part.len()].copy_from_slice(part);
        next = no;
    }
    debug_assert!(next != 0);
    Ok(next)
}

/// One validated page of a chain: its chunk and its successor.
fn link(body: &[u8], no: PageNo, owner: PageNo, expected: usize) -> Result<(&[u8], PageNo)> {
    if body.first().copied().and_then(PageKind::from_byte) != Some(PageKind::Overflow) {
        return Err(Error::page(
            no,
            format!(
                "{:?} page in the overflow chain of a cell in page {owner}",
                body.first()
            ),
        ));
    }
    let len = get_u16(body, 2).unwrap_or(usize::MAX);
    if len != expected {
        return Err(Error::page(
            no,
            format!("overflow chunk of {len} bytes, expected {expected}"),
        ));
    }
    let next = get_u32(body, 4).unwrap_or(0);
    let chunk = body
        .get(OVERFLOW_HEADER_LEN..OVERFLOW_HEADER_LEN + len)
        .ok_or_else(|| Error::page(no, "overflow chunk runs past the body"))?;
    Ok((chunk, next))
}

/// Walks the chain of a `len`-byte value from `head`, calling `each(page, chunk)` per page.
/// `owner` is the leaf holding the cell, named in errors about the chain's shape.
fn walk(
    tx: &impl PageRead,
    owner: PageNo,
    head: PageNo,
    len: usize,
    each: &mut dyn FnMut(PageNo, &[u8]) -> Result<()>,
) -> Result<()> {
    if len > VALUE_BYTES_MAX {
        return Err(Error::page(owner, format!("overflow value of {len} bytes")));
    }
    let chunk = chunk_max(tx.body_len());
    let pages = chain_len(tx.body_len(), len);
    let mut no = head;
    for i in 0..pages {
        if no == 0 || no == owner {
            return Err(Error::page(
                owner,
                format!("overflow chain broken after {i} of {pages} pages"),
            ));
        }
        let page = tx.page(no)?;
        let expected = chunk.min(len - i * chunk);
        let (bytes, next) = link(&page, no, owner, expected)?;
        each(no, bytes)?;
        no = next;
    }
    if no != 0 {
        return Err(Error::page(
            owner,
            format!("overflow chain longer than {pages} pages"),
        ));
    }
    Ok(())
}

/// Reads a whole value.
pub(super) fn read(tx: &impl PageRead, owner: PageNo, head: PageNo, len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(VALUE_BYTES_MAX));
    walk(tx, owner, head, len, &mut |_, bytes| {
        out.extend_from_slice(bytes);
        Ok(())
    })?;
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

/// The pages of a chain, in order, after checking every link.
pub(super) fn pages(
    tx: &impl PageRead,
    owner: PageNo,
    head: PageNo,
    len: usize,
) -> Result<Vec<PageNo>> {
    let mut out = Vec::with_capacity(chain_len(tx.body_len(), len.min(VALUE_BYTES_MAX)));
    walk(tx, owner, head, len, &mut |no, _| {
        out.push(no);
        Ok(())
    })?;
    Ok(out)
}

/// Frees every page of a chain (validated first, so a broken chain frees nothing).
pub(super) fn free(tx: &mut impl PageWrite, owner: PageNo, head: PageNo, len: usize) -> Result<()> {
    for no in pages(tx, owner, head, len)? {
        tx.free(no)?;
    }
    Ok(())
}

/// Checks a chain for `check`: calls `visit` per page, returns (pages, bytes used).
pub(super) fn check(
    tx: &impl PageRead,
    owner: PageNo,
    head: PageNo,
    len: usize,
    visit: &mut dyn FnMut(PageNo, PageKind) -> Result<()>,
) -> Result<(u64, u64)> {
    let (mut pages, mut used) = (0u64, 0u64);
    walk(tx, owner, head, len, &mut |no, bytes| {
        pages += 1;
        used += (OVERFLOW_HEADER_LEN + bytes.len()) as u64;
        visit(no, PageKind::Overflow)
    })?;
    Ok((pages, used))
}
