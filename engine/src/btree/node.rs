//! Slotted leaf and branch page bodies: parsing with bounds checks, and in-place edits.
//!
//! Every number read from a body is checked before use and turned into
//! [`Error::page`] when it is out of range; see `docs/btree-format.md` for the layout.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::page::{PageKind, PageNo};
use crate::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// Bytes of one slot: the u16 offset of a cell inside the body.
pub(super) const SLOT_LEN: usize = 2;
/// Leaf header: kind, reserved, cell count, content start, fragmented bytes.
pub(super) const LEAF_HEADER_LEN: usize = 8;
/// Branch header: the leaf header plus the rightmost child.
pub(super) const BRANCH_HEADER_LEN: usize = 12;
/// Every cell starts with its key length (u16) and a u32 (value word or child).
pub(super) const CELL_HEADER_LEN: usize = 6;
/// Bytes of the first-overflow-page pointer that stands in for an inline value.
pub(super) const OVERFLOW_PTR_LEN: usize = 4;
/// Bit 31 of a leaf cell's value word: the value lives in an overflow chain.
pub(super) const OVERFLOW_FLAG: u32 = 1 << 31;

const OFF_COUNT: usize = 2;
const OFF_CONTENT: usize = 4;
const OFF_FRAG: usize = 6;
const OFF_RIGHTMOST: usize = 8;

#[inline]
pub(super) fn get_u16(b: &[u8], at: usize) -> Option<usize> {
    let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(usize::from(u16::from_le_bytes(s)))
}

pub(super) fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

/// Writes a u16 at a position the caller has validated.
pub(super) fn put_u16(b: &mut [u8], at: usize, v: usize) {
    debug_assert!(u16::try_from(v).is_ok(), "{v} does not fit a u16");
    b[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
}

/// Writes a u32 at a position the caller has validated.
pub(super) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The two kinds of tree page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeKind {
    Leaf,
    Branch,
}

impl NodeKind {
    pub(super) fn header_len(self) -> usize {
        match self {
            NodeKind::Leaf => LEAF_HEADER_LEN,
            NodeKind::Branch => BRANCH_HEADER_LEN,
        }
    }

    pub(super) fn page_kind(self) -> PageKind {
        match self {
            NodeKind::Leaf => PageKind::Leaf,
            NodeKind::Branch => PageKind::Branch,
        }
    }

    /// Bytes available to slots and cells in a body of `body_len` bytes.
    pub(super) fn capacity(self, body_len: usize) -> usize {
        body_len - self.header_len()
    }
}

/// Where a leaf cell's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Inline(&'a [u8]),
    /// `len` bytes in the overflow chain starting at `head`.
    Overflow {
        len: usize,
        head: PageNo,
    },
}

impl Value<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            Value::Inline(v) => v.len(),
            Value::Overflow { len, .. } => *len,
        }
    }
}

/// A parsed leaf cell.
#[derive(Clone, Copy, Debug)]
pub(super) struct LeafCell<'a> {
    pub(super) key: &'a [u8],
    pub(super) value: Value<'a>,
    /// Bytes of the cell, without its slot.
    pub(super) size: usize,
}

/// Bytes of a leaf cell holding `key_len` and `value`.
pub(super) fn leaf_cell_len(key_len: usize, value: &Value) -> usize {
    CELL_HEADER_LEN
        + key_len
        + match value {
            Value::Inline(v) => v.len(),
            Value::Overflow { .. } => OVERFLOW_PTR_LEN,
        }
}

/// Bytes of a branch cell holding a key of `key_len`.
pub(super) fn branch_cell_len(key_len: usize) -> usize {
    CELL_HEADER_LEN + key_len
}

/// Writes a leaf cell into `dst`, which is exactly [`leaf_cell_len`] bytes.
pub(super) fn encode_leaf_cell(dst: &mut [u8], key: &[u8], value: &Value) {
    debug_assert_eq!(dst.len(), leaf_cell_len(key.len(), value));
    debug_assert!(key.len() <= KEY_BYTES_MAX && value.len() <= VALUE_BYTES_MAX);
    put_u16(dst, 0, key.len());
    let key_end = CELL_HEADER_LEN + key.len();
    dst[CELL_HEADER_LEN..key_end].copy_from_slice(key);
    match value {
        Value::Inline(v) => {
            put_u32(dst, 2, v.len() as u32);
            dst[key_end..].copy_from_slice(v);
        }
        Value::Overflow { len, head } => {
            put_u32(dst, 2, *len as u32 | OVERFLOW_FLAG);
            put_u32(dst, key_end, *head);
        }
    }
}

/// Writes a branch cell into `dst`, which is exactly [`branch_cell_len`] bytes.
pub(super) fn encode_branch_cell(dst: &mut [u8], child: PageNo, key: &[u8]) {
    debug_assert_eq!(dst.len(), branch_cell_len(key.len()));
    debug_assert!(child != 0 && key.len() <= KEY_BYTES_MAX);
    put_u16(dst, 0, key.len());
    put_u32(dst, 2, child);
    dst[CELL_HEADER_LEN..].copy_from_slice(key);
}

/// The key of a cell that starts at `cell[0]`, checked against the slice.
/// The first eight bytes of `key` as a big-endian integer, zero-padded: ordering these is
/// ordering the keys' first eight bytes (a shorter key pads with zeros, so ties fall through
/// to the full compare, which puts the shorter key first).
#[inline]
fn key_head(key: &[u8]) -> u64 {
    // One 8-byte load for the usual key; the byte copy (a libc call) only for short keys.
    if let Some(b) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*b);
    }
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

#[inline]
fn cell_key(cell: &[u8]) -> Option<&[u8]> {
    let key_len = get_u16(cell, 0)?;
    if key_len > KEY_BYTES_MAX {
        return None;
    }
    cell.get(CELL_HEADER_LEN..CELL_HEADER_LEN + key_len)
}

/// Parses the leaf cell at the start of `cell` (which may run on past the cell).
#[inline]
pub(super) fn parse_leaf_cell(cell: &[u8], no: PageNo) -> Result<LeafCell<'_>> {
    let bad = |what: &str| Error::page(no, format!("leaf cell: {what}"));
    let key = cell_key(cell).ok_or_else(|| bad("key length past the body or the key limit"))?;
    let word = get_u32(cell, 2).ok_or_else(|| bad("truncated header"))?;
    let value_len = (word & !OVERFLOW_FLAG) as usize;
    if value_len > VALUE_BYTES_MAX {
        return Err(bad(&format!(
            "value length {value_len} exceeds {VALUE_BYTES_MAX}"
        )));
    }
    let key_end = CELL_HEADER_LEN + key.len();
    if word & OVERFLOW_FLAG == 0 {
        let v = cell.get(key_end..key_end + value_len).ok_or_else(|| {
            bad(&format!(
                "inline value of {value_len} bytes runs past the body"
            ))
        })?;
        Ok(LeafCell {
            key,
            value: Value::Inline(v),
            size: key_end + value_len,
        })
    } else {
        let head = get_u32(cell, key_end).ok_or_else(|| bad("overflow pointer past the body"))?;
        if head == 0 {
            return Err(bad("overflow pointer to page 0"));
        }
        let value = Value::Overflow {
            len: value_len,
            head,
        };
        Ok(LeafCell {
            key,
            value,
            size: key_end + OVERFLOW_PTR_LEN,
        })
    }
}

/// Parses the branch cell at the start of `cell`: (child, key, size).
#[inline]
pub(super) fn parse_branch_cell(cell: &[u8], no: PageNo) -> Result<(PageNo, &[u8], usize)> {
    let key = cell_key(cell)
        .ok_or_else(|| Error::page(no, "branch cell: key length past the body or the key limit"))?;
    let child = get_u32(cell, 2).ok_or_else(|| Error::page(no, "branch cell: truncated header"))?;
    check_child(child, no)?;
    Ok((child, key, CELL_HEADER_LEN + key.len()))
}

#[inline]
fn check_child(child: PageNo, no: PageNo) -> Result<()> {
    if child == 0 || child == no {
        return Err(Error::page(no, format!("child pointer to page {child}")));
    }
    Ok(())
}

/// A validated view of a leaf or branch body. Cells are checked when they are read.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node<'a> {
    body: &'a [u8],
    pub(super) no: PageNo,
    pub(super) kind: NodeKind,
    pub(super) count: usize,
    pub(super) content_start: usize,
    pub(super) frag: usize,
}

impl<'a> Node<'a> {
    /// Checks the header of page `no`: its kind and that slots and cells fit the body.
    #[inline]
    pub(super) fn open(body: &'a [u8], no: PageNo) -> Result<Node<'a>> {
        let kind = match body.first().copied().and_then(PageKind::from_byte) {
            Some(PageKind::Leaf) => NodeKind::Leaf,
            Some(PageKind::Branch) => NodeKind::Branch,
            other => {
                return Err(Error::page(
                    no,
                    format!("{other:?} page where a B+tree node belongs"),
                ))
            }
        };
        let short = || Error::page(no, "body shorter than a node header");
        let count = get_u16(body, OFF_COUNT).ok_or_else(short)?;
        let content_start = get_u16(body, OFF_CONTENT).ok_or_else(short)?;
        let frag = get_u16(body, OFF_FRAG).ok_or_else(short)?;
        let slots_end = kind.header_len() + count * SLOT_LEN;
        if slots_end > content_start || content_start > body.len() {
            return Err(Error::page(
                no,
                format!(
                    "{count} cells and content start {content_start} do not fit {} bytes",
                    body.len()
                ),
            ));
        }
        if frag > body.len() - content_start {
            return Err(Error::page(
                no,
                format!("fragmented byte count {frag} exceeds the content area"),
            ));
        }
        Ok(Node {
            body,
            no,
            kind,
            count,
            content_start,
            frag,
        })
    }

    /// Opens page `no` and requires it to be of `kind`.
    #[inline]
    pub(super) fn open_as(body: &'a [u8], no: PageNo, kind: NodeKind) -> Result<Node<'a>> {
        let node = Node::open(body, no)?;
        if node.kind != kind {
            return Err(Error::page(
                no,
                format!("{:?} where a {kind:?} belongs", node.kind),
            ));
        }
        Ok(node)
    }

    pub(super) fn body(&self) -> &'a [u8] {
        self.body
    }

    pub(super) fn slots_end(&self) -> usize {
        self.kind.header_len() + self.count * SLOT_LEN
    }

    /// Bytes between the slot array and the content area.
    pub(super) fn free_contiguous(&self) -> usize {
        self.content_start - self.slots_end()
    }

    /// Bytes free after a compaction.
    pub(super) fn free_total(&self) -> usize {
        self.free_contiguous() + self.frag
    }

    /// Bytes of slots and live cells.
    pub(super) fn used(&self) -> usize {
        self.kind
            .capacity(self.body.len())
            .saturating_sub(self.free_total())
    }

    /// The rightmost child of a branch.
    #[inline]
    pub(super) fn rightmost(&self) -> Result<PageNo> {
        debug_assert_eq!(self.kind, NodeKind::Branch);
        let child = get_u32(self.body, OFF_RIGHTMOST)
            .ok_or_else(|| Error::page(self.no, "body shorter than a branch header"))?;
        check_child(child, self.no)?;
        Ok(child)
    }

    /// The offset of cell `i`, checked to lie in the content area.
    #[inline]
    pub(super) fn offset(&self, i: usize) -> Result<usize> {
        // In bounds: the header check put the slot array below `content_start`.
        let off = if i < self.count {
            get_u16(self.body, self.kind.header_len() + i * SLOT_LEN).unwrap_or(0)
        } else {
            0
        };
        if i >= self.count || off < self.content_start || off + CELL_HEADER_LEN > self.body.len() {
            return Err(self.bad_offset(i, off));
        }
        Ok(off)
    }

    /// The error for [`Node::offset`], out of the hot path.
    #[cold]
    #[inline(never)]
    fn bad_offset(&self, i: usize, off: usize) -> Error {
        if i >= self.count {
            Error::page(self.no, format!("cell {i} of {} requested", self.count))
        } else {
            Error::page(
                self.no,
                format!("cell {i} at offset {off} outside the content area"),
            )
        }
    }

    /// The key of cell `i`.
    #[inline]
    pub(super) fn key(&self, i: usize) -> Result<&'a [u8]> {
        let off = self.offset(i)?;
        self.body
            .get(off..)
            .and_then(cell_key)
            .ok_or_else(|| Error::page(self.no, format!("key of cell {i} runs past the body")))
    }

    /// Leaf cell `i`.
    #[inline]
    pub(super) fn leaf_cell(&self, i: usize) -> Result<LeafCell<'a>> {
        debug_assert_eq!(self.kind, NodeKind::Leaf);
        let off = self.offset(i)?;
        parse_leaf_cell(&self.body[off..], self.no)
    }

    /// The byte range of cell `i`.
    pub(super) fn cell_range(&self, i: usize) -> Result<Range<usize>> {
        let off = self.offset(i)?;
        let size = match self.kind {
            NodeKind::Leaf => parse_leaf_cell(&self.body[off..], self.no)?.size,
            NodeKind::Branch => parse_branch_cell(&self.body[off..], self.no)?.2,
        };
        Ok(off..off + size)
    }

    /// Child `i` of a branch: cell `i`'s child, or the rightmost child when `i == count`.
    #[inline]
    pub(super) fn child(&self, i: usize) -> Result<PageNo> {
        debug_assert_eq!(self.kind, NodeKind::Branch);
        if i == self.count {
            return self.rightmost();
        }
        let off = self.offset(i)?;
        Ok(parse_branch_cell(&self.body[off..], self.no)?.0)
    }

    /// Hints the CPU to load the start of cell `i` (nothing when `i` is out of range).
    #[inline]
    fn prefetch_cell(&self, i: usize) {
        if i < self.count {
            let off = get_u16(self.body, self.kind.header_len() + i * SLOT_LEN).unwrap_or(0);
            prefetch(self.body, off);
        }
    }

    /// The first cell whose key is `>= key`, and whether it is equal.
    pub(super) fn search(&self, key: &[u8]) -> Result<(usize, bool)> {
        let (mut lo, mut hi) = (0, self.count);
        let head = key_head(key);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // Start loading both possible next probes while this one's line arrives: on a
            // page not in cache, the probes' misses then overlap instead of queueing.
            self.prefetch_cell(lo + (mid - lo) / 2);
            self.prefetch_cell(mid + 1 + (hi - mid - 1) / 2);
            let probe = self.key(mid)?;
            // Most probes differ in their first eight bytes: compare those as one integer
            // and leave the byte-wise compare for ties.
            let order = key_head(probe).cmp(&head).then_with(|| probe.cmp(key));
            match order {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return Ok((mid, true)),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok((lo, false))
    }

    /// The child of a branch that covers `key`: the first cell whose key is `> key`.
    #[inline]
    pub(super) fn child_index(&self, key: &[u8]) -> Result<usize> {
        let (i, found) = self.search(key)?;
        Ok(i + usize::from(found))
    }
}

/// Hints the CPU to start loading the cache line holding `body[at]` (nothing past the end).
#[inline]
fn prefetch(body: &[u8], at: usize) {
    if let Some(byte) = body.get(at) {
        crate::arena::prefetch(std::ptr::from_ref(byte));
    }
}

fn set_header(body: &mut [u8], count: usize, content_start: usize, frag: usize) {
    put_u16(body, OFF_COUNT, count);
    put_u16(body, OFF_CONTENT, content_start);
    put_u16(body, OFF_FRAG, frag);
}

/// Formats `body` as an empty node.
pub(super) fn init_node(body: &mut [u8], kind: NodeKind, rightmost: PageNo) {
    debug_assert!(u16::try_from(body.len()).is_ok());
    debug_assert!(kind == NodeKind::Leaf || rightmost != 0);
    body.fill(0);
    body[0] = kind.page_kind() as u8;
    set_header(body, 0, body.len(), 0);
    if kind == NodeKind::Branch {
        put_u32(body, OFF_RIGHTMOST, rightmost);
    }
}

/// Makes room for a cell of `size` bytes at slot `idx` of page `no`, compacting when that
/// helps. Returns the offset to write the cell at, or `None` when the page is too full.
pub(super) fn reserve(
    body: &mut [u8],
    no: PageNo,
    kind: NodeKind,
    idx: usize,
    size: usize,
) -> Result<Option<usize>> {
    let mut node = Node::open_as(body, no, kind)?;
    if idx > node.count {
        return Err(Error::page(
            no,
            format!("insert at slot {idx} of {}", node.count),
        ));
    }
    let need = size + SLOT_LEN;
    if node.free_contiguous() < need {
        if node.free_total() < need {
            return Ok(None);
        }
        compact(body, no)?;
        node = Node::open(body, no)?;
        if node.free_contiguous() < need {
            return Ok(None);
        }
    }
    let (count, hdr) = (node.count, kind.header_len());
    let off = node.content_start - size;
    let frag = node.frag;
    let slot = hdr + idx * SLOT_LEN;
    body.copy_within(slot..hdr + count * SLOT_LEN, slot + SLOT_LEN);
    put_u16(body, slot, off);
    set_header(body, count + 1, off, frag);
    debug_assert!(hdr + (count + 1) * SLOT_LEN <= off);
    Ok(Some(off))
}

/// Removes cell `idx` of page `no`; its bytes become free. Returns the cell's size.
pub(super) fn remove(body: &mut [u8], no: PageNo, kind: NodeKind, idx: usize) -> Result<usize> {
    let node = Node::open_as(body, no, kind)?;
    let range = node.cell_range(idx)?;
    let (count, hdr) = (node.count, kind.header_len());
    let (mut content_start, mut frag) = (node.content_start, node.frag);
    if range.start == content_start {
        content_start = range.end;
    } else {
        frag += range.len();
    }
    if frag > body.len() - content_start {
        return Err(Error::page(no, "cells overlap"));
    }
    let slot = hdr + idx * SLOT_LEN;
    body.copy_within(slot + SLOT_LEN..hdr + count * SLOT_LEN, slot);
    set_header(body, count - 1, content_start, frag);
    Ok(range.len())
}

/// Removes cells `range` of page `no`; their bytes become fragmented.
pub(super) fn remove_range(
    body: &mut [u8],
    no: PageNo,
    kind: NodeKind,
    range: Range<usize>,
) -> Result<()> {
    let node = Node::open_as(body, no, kind)?;
    if range.end > node.count || range.start > range.end {
        return Err(Error::page(
            no,
            format!("remove cells {range:?} of {}", node.count),
        ));
    }
    let mut frag = node.frag;
    for i in range.clone() {
        frag += node.cell_range(i)?.len();
    }
    if frag > body.len() - node.content_start {
        return Err(Error::page(no, "cells overlap"));
    }
    let (count, hdr, content_start) = (node.count, kind.header_len(), node.content_start);
    let slot = |i: usize| hdr + i * SLOT_LEN;
    body.copy_within(slot(range.end)..slot(count), slot(range.start));
    set_header(body, count - range.len(), content_start, frag);
    Ok(())
}

/// Records `bytes` more garbage in the content area (a cell shrank in place).
pub(super) fn add_frag(body: &mut [u8], no: PageNo, bytes: usize) -> Result<()> {
    let node = Node::open(body, no)?;
    let frag = node.frag + bytes;
    if frag > body.len() - node.content_start {
        return Err(Error::page(no, "fragmented bytes exceed the content area"));
    }
    let (count, content_start) = (node.count, node.content_start);
    set_header(body, count, content_start, frag);
    Ok(())
}

/// Moves all cells of page `no` to the end of the body, leaving one free gap.
pub(super) fn compact(body: &mut [u8], no: PageNo) -> Result<()> {
    let copy = body.to_vec();
    let node = Node::open(&copy, no)?;
    let slots_end = node.slots_end();
    let mut pos = copy.len();
    for i in 0..node.count {
        let range = node.cell_range(i)?;
        if pos < slots_end + range.len() {
            return Err(Error::page(
                no,
                "cells overlap: they do not fit after compaction",
            ));
        }
        pos -= range.len();
        body[pos..pos + range.len()].copy_from_slice(&copy[range]);
        put_u16(body, node.kind.header_len() + i * SLOT_LEN, pos);
    }
    body[slots_end..pos].fill(0);
    set_header(body, node.count, pos, 0);
    Ok(())
}

/// Owned copies of cells, for rebuilding pages on split, merge and rebalance.
#[derive(Debug, Default)]
pub(super) struct CellList {
    bytes: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl CellList {
    /// Copies every cell of `node`, validating each.
    pub(super) fn from_node(node: &Node) -> Result<CellList> {
        // Room for one more cell of any size (at most half a body), so the split's insert
        // does not reallocate.
        let mut list = CellList {
            bytes: Vec::with_capacity(node.body().len() + node.body().len() / 2),
            spans: Vec::with_capacity(node.count + 1),
        };
        list.extend_from_node(node)?;
        Ok(list)
    }

    pub(super) fn extend_from_node(&mut self, node: &Node) -> Result<()> {
        for i in 0..node.count {
            let range = node.cell_range(i)?;
            self.push(&node.body()[range]);
        }
        Ok(())
    }

    /// A list of one cell.
    pub(super) fn single(cell: &[u8]) -> CellList {
        let mut list = CellList::default();
        list.push(cell);
        list
    }

    pub(super) fn push(&mut self, cell: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(cell);
        self.spans.push(start..self.bytes.len());
    }

    /// Inserts `cell` before position `idx` (at most `len`).
    pub(super) fn insert(&mut self, idx: usize, cell: &[u8]) {
        debug_assert!(idx <= self.spans.len());
        let start = self.bytes.len();
        self.bytes.extend_from_slice(cell);
        self.spans
            .insert(idx.min(self.spans.len()), start..self.bytes.len());
    }

    pub(super) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(super) fn cell(&self, i: usize) -> &[u8] {
        self.spans
            .get(i)
            .and_then(|s| self.bytes.get(s.clone()))
            .unwrap_or(&[])
    }

    /// Bytes cell `i` takes in a page, slot included.
    pub(super) fn cost(&self, i: usize) -> usize {
        self.cell(i).len() + SLOT_LEN
    }

    /// The key of cell `i` (cells were validated when copied in).
    pub(super) fn key(&self, i: usize) -> &[u8] {
        cell_key(self.cell(i)).unwrap_or(&[])
    }

    /// The child of branch cell `i`.
    pub(super) fn child(&self, i: usize) -> PageNo {
        get_u32(self.cell(i), 2).unwrap_or(0)
    }

    /// Total bytes of cells `range`, slots included.
    pub(super) fn cost_of(&self, range: Range<usize>) -> usize {
        range.map(|i| self.cost(i)).sum()
    }
}

/// Rewrites page `no` to hold exactly cells `range` of `cells`.
pub(super) fn write_node(
    body: &mut [u8],
    no: PageNo,
    kind: NodeKind,
    rightmost: PageNo,
    cells: &CellList,
    range: Range<usize>,
) -> Result<()> {
    let hdr = kind.header_len();
    let slots_end = hdr + range.len() * SLOT_LEN;
    if hdr + cells.cost_of(range.clone()) > body.len() {
        return Err(Error::page(
            no,
            "cells do not fit the page (bad sizes in a source page)",
        ));
    }
    init_node(body, kind, rightmost);
    let mut pos = body.len();
    for (slot, i) in range.clone().enumerate() {
        let cell = cells.cell(i);
        pos -= cell.len();
        body[pos..pos + cell.len()].copy_from_slice(cell);
        put_u16(body, hdr + slot * SLOT_LEN, pos);
    }
    set_header(body, range.len(), pos, 0);
    debug_assert!(slots_end <= pos);
    Ok(())
}

/// How a split shares cells between the two pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fill {
    /// Equal bytes on both sides: random inserts.
    Even,
    /// The left page as full as possible: ascending appends at the right edge of the tree.
    LeftFull,
    /// The right page as full as possible: descending inserts at the left edge.
    RightFull,
}

/// Chooses where to split `cells` into two pages of `capacity` bytes.
///
/// Leaves (`promote == false`): left gets `[..k]`, right `[k..]`, `1 <= k < len`.
/// Branches (`promote == true`): cell `k` moves up; left gets `[..k]`, right `[k + 1..]`,
/// each side keeps at least one cell. `None` when no split fits.
pub(super) fn choose_split(
    cells: &CellList,
    capacity: usize,
    fill: Fill,
    promote: bool,
) -> Option<usize> {
    let len = cells.len();
    let total = cells.cost_of(0..len);
    let (first, last) = if promote {
        (1, len.saturating_sub(2))
    } else {
        (1, len.saturating_sub(1))
    };
    let mut left = cells.cost_of(0..first.min(len));
    let mut best: Option<(usize, usize)> = None;
    for k in first..=last {
        if k > first {
            left += cells.cost(k - 1);
        }
        let right = total - left - if promote { cells.cost(k) } else { 0 };
        if left > capacity || right > capacity {
            continue;
        }
        let score = match fill {
            Fill::Even => left.abs_diff(right),
            Fill::LeftFull => len - k,
            Fill::RightFull => k,
        };
        if best.is_none_or(|(_, s)| score < s) {
            best = Some((k, score));
        }
    }
    best.map(|(k, _)| k)
}

/// The shortest key `s` with `left_last < s <= right_first`: a prefix of `right_first`.
pub(super) fn separator<'k>(left_last: &[u8], right_first: &'k [u8]) -> &'k [u8] {
    let common = left_last
        .iter()
        .zip(right_first)
        .take_while(|(a, b)| a == b)
        .count();
    right_first.get(..common + 1).unwrap_or(right_first)
}
