//! Insert and update: in place when the cell fits, else split up the path.

use crate::error::{Error, Result};
use crate::page::{PageNo, PageWrite};

use super::node::{
    self, branch_cell_len, choose_split, encode_branch_cell, encode_leaf_cell, leaf_cell_len,
    separator, write_node, CellList, Fill, Node, NodeKind, Value,
};
use super::{check_key, check_value, descend, needs_overflow, overflow, Path, DEPTH_MAX};

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
    check_key(key)?;
    check_value(value)?;
    let path = descend(tx, root, key)?;
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
    let mut cells = {
        let page = tx.page(no)?;
        CellList::from_node(&Node::open_as(&page, no, NodeKind::Leaf)?)?
    };
    // Appends at the right edge of the tree leave the left page full; the mirror for
    // descending inserts at the left edge; anything else splits evenly by bytes.
    let fill = if path.rightmost && idx == cells.len() {
        Fill::LeftFull
    } else if path.leftmost && idx == 0 {
        Fill::RightFull
    } else {
        Fill::Even
    };
    let mut cell = vec![0u8; leaf_cell_len(key.len(), value)];
    encode_leaf_cell(&mut cell, key, value);
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
