//! Insert and update: in place when the cell fits, else split up the path.

use crate::error::{Error, Result};
use crate::page::{PageNo, PageRead, PageWrite};

use super::node::{
    self, branch_cell_len, choose_split, encode_branch_cell, encode_leaf_cell, leaf_cell_len,
    separator, write_node, CellList, Fill, Node, NodeKind, Value,
};
use super::{check_key, check_value, needs_overflow, overflow, InsertHint, Path, DEPTH_MAX};

/// Stores `value` under `key`. Returns true when it replaced an existing value.
///
/// # Errors
/// [`Error::KeyTooLarge`], [`Error::ValueTooLarge`] (before any page is touched);
/// corruption and errors of the page store, after which the transaction must roll back.
pub(crate) fn insert(
    tx: &mut impl PageWrite,
    root: PageNo,
    key: &[u8],
    value: &[u8],
) -> Result<bool> {
    insert_hinted(tx, &mut InsertHint::default(), root, key, value)
}

/// [`insert`], starting at the leaf `hint` remembers when it covers `key`, and leaving in
/// `hint` the path taken (cleared when the insert split a page).
///
/// # Errors
/// As [`insert`].
pub(crate) fn insert_hinted(
    tx: &mut impl PageWrite,
    hint: &mut InsertHint,
    root: PageNo,
    key: &[u8],
    value: &[u8],
) -> Result<bool> {
    check_key(key)?;
    check_value(value)?;
    // No assertion compares the hinted leaf with a fresh descent: in a hostile file whose
    // separators are out of order the two may differ, and that must not panic (the
    // integrity check reports such a tree).
    let path = match hint.path_for(root, key) {
        Some(path) => path,
        None => hint.descend(tx, root, key)?,
    };
    let cell_value = if needs_overflow(tx.body_len(), key.len(), value.len()) {
        Value::Overflow {
            len: value.len(),
            head: overflow::write(tx, value)?,
        }
    } else {
        Value::Inline(value)
    };
    let put = leaf_put(tx, path.leaf, key, &cell_value)?;
    if let Some(idx) = put.split_at {
        hint.clear();
        split_leaf(tx, &path, idx, key, &cell_value)?;
    }
    if let Some((head, len)) = put.old_chain {
        overflow::free(tx, path.leaf, head, len)?;
    }
    Ok(put.replaced)
}

/// What [`leaf_put`] did.
struct Put {
    replaced: bool,
    /// The overflow chain of the replaced value, to free once the new cell is in.
    old_chain: Option<(PageNo, usize)>,
    /// The cell did not fit: split with the new cell at this index.
    split_at: Option<usize>,
}

/// Puts the cell into leaf `no` in place when it fits (overwriting the old cell if the new
/// one is no larger, else re-inserting it, compacting when that helps).
fn leaf_put(tx: &mut impl PageWrite, no: PageNo, key: &[u8], value: &Value) -> Result<Put> {
    let size = leaf_cell_len(key.len(), value);
    let body = tx.page_mut(no)?;
    let node = Node::open_as(body, no, NodeKind::Leaf)?;
    let (idx, found) = node.search(key)?;
    let mut put = Put {
        replaced: found,
        old_chain: None,
        split_at: None,
    };
    if found {
        let old = node.leaf_cell(idx)?;
        if let Value::Overflow { len, head } = old.value {
            put.old_chain = Some((head, len));
        }
        let (off, old_size) = (node.offset(idx)?, old.size);
        if size <= old_size {
            encode_leaf_cell(&mut body[off..off + size], key, value);
            if size < old_size {
                node::add_frag(body, no, old_size - size)?;
            }
            return Ok(put);
        }
        node::remove(body, no, NodeKind::Leaf, idx)?;
    }
    match node::reserve(body, no, NodeKind::Leaf, idx, size)? {
        Some(off) => encode_leaf_cell(&mut body[off..off + size], key, value),
        None => put.split_at = Some(idx),
    }
    Ok(put)
}

/// Splits the leaf at the end of `path`, the new cell going to index `idx`.
fn split_leaf(
    tx: &mut impl PageWrite,
    path: &Path,
    idx: usize,
    key: &[u8],
    value: &Value,
) -> Result<()> {
    let no = path.leaf;
    let count = {
        let page = tx.page(no)?;
        Node::open_as(&page, no, NodeKind::Leaf)?.count
    };
    // Appends at the right edge of the tree leave the left page full; the mirror for
    // descending inserts at the left edge; anything else is shared with a sibling or
    // split evenly by bytes.
    let fill = if path.rightmost && idx == count {
        Fill::LeftFull
    } else if path.leftmost && idx == 0 {
        Fill::RightFull
    } else {
        Fill::Even
    };
    let mut cell = vec![0u8; leaf_cell_len(key.len(), value)];
    encode_leaf_cell(&mut cell, key, value);
    if fill == Fill::Even && path.branches() > 0 && share_with_sibling(tx, path, idx, &cell)? {
        return Ok(());
    }
    let mut cells = {
        let page = tx.page(no)?;
        CellList::from_node(&Node::open_as(&page, no, NodeKind::Leaf)?)?
    };
    cells.insert(idx, &cell);
    let depth = path.branches() + 1;
    match split_node(
        tx,
        no,
        NodeKind::Leaf,
        0,
        &cells,
        fill,
        path.branches() == 0,
        depth,
    )? {
        Some((left, sep)) => insert_separator(tx, path, path.branches() - 1, left, sep, fill),
        None => Ok(()),
    }
}

/// A sibling takes part of an overflowing leaf's cells only when at least this share of
/// its capacity is free (1/`SHARE_FREE_DIVISOR`): sharing with a nearly full sibling would
/// move a cell or two on almost every insert. With a quarter, random inserts fill leaves
/// to about 80 % instead of the 70 % of plain 50/50 splits (B*-tree style deferred
/// splitting) for ~5 % more insert time; an eighth reaches 83 % but costs ~12 % (1M random
/// 24-byte keys, `quick_perf`).
const SHARE_FREE_DIVISOR: usize = 4;

/// Instead of splitting the leaf at the end of `path`, moves some of its cells (the new
/// one, at `idx`, included) to the adjacent sibling under the same parent that has the
/// most free space, so both end about equally full, and replaces their separator in the
/// parent. Cells move directly between the two pages: no page is rebuilt. Returns false,
/// having changed nothing, when neither sibling has room to spare.
fn share_with_sibling(
    tx: &mut impl PageWrite,
    path: &Path,
    idx: usize,
    cell: &[u8],
) -> Result<bool> {
    let level = path.branches() - 1;
    let (parent, i) = path.at(level);
    let leaf = path.leaf;
    let capacity = NodeKind::Leaf.capacity(tx.body_len());
    let (left_sib, right_sib) = {
        let page = tx.page(parent)?;
        let node = Node::open_as(&page, parent, NodeKind::Branch)?;
        if i > node.count || node.child(i)? != leaf {
            return Err(Error::page(parent, format!("child {i} is not leaf {leaf}")));
        }
        let left = if i > 0 {
            Some(node.child(i - 1)?)
        } else {
            None
        };
        let right = if i < node.count {
            Some(node.child(i + 1)?)
        } else {
            None
        };
        (left, right)
    };
    // The left sibling first, the right one only when the left has no room: each look
    // at a sibling is a page touched (often a cache miss).
    let min_free = capacity / SHARE_FREE_DIVISOR;
    let free_left = leaf_free(tx, left_sib)?;
    let (to_left, sibling, sep_idx, free) = match (left_sib, right_sib) {
        (Some(no), _) if free_left >= min_free => (true, no, i - 1, free_left),
        (_, Some(no)) => (false, no, i, leaf_free(tx, right_sib)?),
        _ => return Ok(false),
    };
    if free < min_free {
        return Ok(false);
    }
    let sibling_used = capacity - free;
    // The leaf's cells with the new one in place, as (cost, bytes) in key order.
    let page = tx.page(leaf)?;
    let node = Node::open_as(&page, leaf, NodeKind::Leaf)?;
    let mut costs = Vec::with_capacity(node.count + 1);
    for j in 0..node.count {
        costs.push(node.cell_range(j)?.len() + node::SLOT_LEN);
    }
    costs.insert(idx.min(costs.len()), cell.len() + node::SLOT_LEN);
    let Some(moved) = share_count(&costs, sibling_used, capacity, to_left) else {
        return Ok(false);
    };
    // Positions (in `costs`) that move: a prefix to the left sibling, a suffix to the right.
    let range = if to_left {
        0..moved
    } else {
        costs.len() - moved..costs.len()
    };
    let new_moves = range.contains(&idx);
    let old = |pos: usize| if pos > idx { pos - 1 } else { pos };
    let mut cells = CellList::default();
    for pos in range.clone() {
        if pos == idx {
            cells.push(cell);
        } else {
            cells.push(&node.body()[node.cell_range(old(pos))?]);
        }
    }
    let old_range = old(range.start)..old(range.end - 1) + usize::from(range.end - 1 != idx);
    drop(page);
    debug_assert_eq!(old_range.len() + usize::from(new_moves), cells.len());
    let at = if to_left { usize::MAX } else { 0 };
    put_cells(tx, sibling, at, &cells)?;
    node::remove_range(tx.page_mut(leaf)?, leaf, NodeKind::Leaf, old_range.clone())?;
    if !new_moves {
        let at = if to_left { idx - moved } else { idx };
        put_cells(tx, leaf, at, &CellList::single(cell))?;
    }
    let (left, right) = if to_left {
        (sibling, leaf)
    } else {
        (leaf, sibling)
    };
    let sep = boundary_separator(tx, left, right)?;
    replace_separator(tx, path, level, sep_idx, left, sep)?;
    Ok(true)
}

/// How many cells of `costs` (bytes with slot, in key order) to move to a sibling that
/// uses `sibling_used` bytes, taken from the front when `to_left` else from the back, so
/// the two pages end closest to equal with both within `capacity` and at least one cell
/// left behind. `None` when no count fits.
fn share_count(
    costs: &[usize],
    sibling_used: usize,
    capacity: usize,
    to_left: bool,
) -> Option<usize> {
    let total: usize = costs.iter().sum::<usize>() + sibling_used;
    let mut best: Option<(usize, usize)> = None;
    let mut moved_bytes = 0;
    for m in 1..costs.len() {
        moved_bytes += if to_left {
            costs[m - 1]
        } else {
            costs[costs.len() - m]
        };
        let there = sibling_used + moved_bytes;
        let here = total - there;
        if there > capacity {
            break;
        }
        if here <= capacity && best.is_none_or(|(_, d)| there.abs_diff(here) < d) {
            best = Some((m, there.abs_diff(here)));
        }
    }
    best.map(|(m, _)| m)
}

/// Inserts `cells` (in key order) into leaf `no` starting at slot `at` (`usize::MAX`:
/// after its last cell). The caller made sure they fit.
fn put_cells(tx: &mut impl PageWrite, no: PageNo, at: usize, cells: &CellList) -> Result<()> {
    let body = tx.page_mut(no)?;
    let at = if at == usize::MAX {
        Node::open_as(body, no, NodeKind::Leaf)?.count
    } else {
        at
    };
    for j in 0..cells.len() {
        let cell = cells.cell(j);
        let off = node::reserve(body, no, NodeKind::Leaf, at + j, cell.len())?
            .ok_or_else(|| Error::page(no, "a shared cell does not fit the sibling"))?;
        body[off..off + cell.len()].copy_from_slice(cell);
    }
    Ok(())
}

/// The separator between adjacent leaves `left` and `right` (neither empty).
fn boundary_separator(tx: &impl PageRead, left: PageNo, right: PageNo) -> Result<Vec<u8>> {
    let (lpage, rpage) = (tx.page(left)?, tx.page(right)?);
    let l = Node::open_as(&lpage, left, NodeKind::Leaf)?;
    let r = Node::open_as(&rpage, right, NodeKind::Leaf)?;
    if l.count == 0 || r.count == 0 {
        return Err(Error::page(
            left,
            "a leaf emptied by sharing with its sibling",
        ));
    }
    let (last, first) = (l.key(l.count - 1)?, r.key(0)?);
    // Out of order only when the tree was already damaged (pages that passed their
    // checksums but disagree): that is corruption to report, not a reason to panic.
    if last >= first {
        return Err(Error::page(left, "adjacent leaves out of key order"));
    }
    Ok(separator(last, first).to_vec())
}

/// Free bytes of leaf `no` (0 when there is no such sibling).
fn leaf_free(tx: &impl PageRead, no: Option<PageNo>) -> Result<usize> {
    let Some(no) = no else { return Ok(0) };
    let page = tx.page(no)?;
    Ok(Node::open_as(&page, no, NodeKind::Leaf)?.free_total())
}

/// Rewrites node `no` as the right half of `cells` and a new page as the left half.
/// Returns (new left page, separator) for the parent; a root instead moves both halves to
/// new pages and becomes their parent, so its page number stays (`None`).
#[allow(clippy::too_many_arguments)]
fn split_node(
    tx: &mut impl PageWrite,
    no: PageNo,
    kind: NodeKind,
    rightmost: PageNo,
    cells: &CellList,
    fill: Fill,
    is_root: bool,
    depth: usize,
) -> Result<Option<(PageNo, Vec<u8>)>> {
    if is_root && depth >= DEPTH_MAX {
        return Err(Error::LimitExceeded {
            what: "B+tree depth",
            value: depth as u64 + 1,
            max: DEPTH_MAX as u64,
        });
    }
    let promote = kind == NodeKind::Branch;
    let k = choose_split(cells, kind.capacity(tx.body_len()), fill, promote)
        .ok_or_else(|| Error::page(no, "cells cannot be split into two pages"))?;
    let (sep, left_rightmost, right_start) = if promote {
        (cells.key(k).to_vec(), cells.child(k), k + 1)
    } else {
        (separator(cells.key(k - 1), cells.key(k)).to_vec(), 0, k)
    };
    debug_assert!(!promote || left_rightmost != 0);
    let left = tx.allocate()?;
    let lose_last =
        kind == NodeKind::Leaf && k > 1 && tx.seeded_bug(crate::SeededBug::LoseLastKeyOfSplit);
    let left_end = if lose_last { k - 1 } else { k };
    write_node(
        tx.page_mut(left)?,
        left,
        kind,
        left_rightmost,
        cells,
        0..left_end,
    )?;
    if !is_root {
        write_node(
            tx.page_mut(no)?,
            no,
            kind,
            rightmost,
            cells,
            right_start..cells.len(),
        )?;
        return Ok(Some((left, sep)));
    }
    let right = tx.allocate()?;
    write_node(
        tx.page_mut(right)?,
        right,
        kind,
        rightmost,
        cells,
        right_start..cells.len(),
    )?;
    let body = tx.page_mut(no)?;
    node::init_node(body, NodeKind::Branch, right);
    let size = branch_cell_len(sep.len());
    let off = node::reserve(body, no, NodeKind::Branch, 0, size)?
        .ok_or_else(|| Error::page(no, "separator does not fit an empty root"))?;
    encode_branch_cell(&mut body[off..off + size], left, &sep);
    Ok(None)
}

/// Replaces separator `idx` of the branch at `path` level `level` with (`left`, `sep`)
/// after cells moved between two siblings: removes the old cell and inserts the new one,
/// which may split branches up to the root when the new separator is longer.
pub(super) fn replace_separator(
    tx: &mut impl PageWrite,
    path: &Path,
    level: usize,
    idx: usize,
    left: PageNo,
    sep: Vec<u8>,
) -> Result<()> {
    let (parent, _) = path.at(level);
    node::remove(tx.page_mut(parent)?, parent, NodeKind::Branch, idx)?;
    insert_separator(
        tx,
        &path.with_index(level, idx),
        level,
        left,
        sep,
        Fill::Even,
    )
}

/// Inserts the cell (`child`, `sep`) into the branch at `path` level `level`, at the child
/// index the path took there, splitting branches up to the root as needed.
pub(super) fn insert_separator(
    tx: &mut impl PageWrite,
    path: &Path,
    level: usize,
    child: PageNo,
    sep: Vec<u8>,
    fill: Fill,
) -> Result<()> {
    let (mut child, mut sep) = (child, sep);
    for level in (0..=level).rev() {
        let (no, idx) = path.at(level);
        let size = branch_cell_len(sep.len());
        let body = tx.page_mut(no)?;
        if let Some(off) = node::reserve(body, no, NodeKind::Branch, idx, size)? {
            encode_branch_cell(&mut body[off..off + size], child, &sep);
            return Ok(());
        }
        let (mut cells, rightmost) = {
            let page = tx.page(no)?;
            let node = Node::open_as(&page, no, NodeKind::Branch)?;
            (CellList::from_node(&node)?, node.rightmost()?)
        };
        let mut cell = vec![0u8; size];
        encode_branch_cell(&mut cell, child, &sep);
        cells.insert(idx, &cell);
        let split = split_node(
            tx,
            no,
            NodeKind::Branch,
            rightmost,
            &cells,
            fill,
            level == 0,
            path.branches() + 1,
        )?;
        match split {
            Some((left, up)) => (child, sep) = (left, up),
            None => return Ok(()),
        }
    }
    Err(Error::page(path.root(), "split did not stop at the root"))
}
