//! Delete with merge and rebalance, and destroy.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::page::{PageNo, PageWrite};

use super::insert::replace_separator;
use super::node::{
    self, branch_cell_len, choose_split, encode_branch_cell, separator, write_node, CellList, Fill,
    Node, NodeKind, Value,
};
use super::{check_key, descend, overflow, Path, DEPTH_MAX};

/// Removes `key`. Returns true when it existed.
///
/// # Errors
/// [`Error::KeyTooLarge`]; corruption and errors of the page store, after which the
/// transaction must roll back.
pub(crate) fn delete(tx: &mut impl PageWrite, root: PageNo, key: &[u8]) -> Result<bool> {
    check_key(key)?;
    let path = descend(tx, root, key)?;
    let (idx, chain) = {
        let page = tx.page(path.leaf)?;
        let node = Node::open_as(&page, path.leaf, NodeKind::Leaf)?;
        let (idx, found) = node.search(key)?;
        if !found {
            return Ok(false);
        }
        match node.leaf_cell(idx)?.value {
            Value::Overflow { len, head } => (idx, Some((head, len))),
            Value::Inline(_) => (idx, None),
        }
    };
    node::remove(tx.page_mut(path.leaf)?, path.leaf, NodeKind::Leaf, idx)?;
    if let Some((head, len)) = chain {
        overflow::free(tx, path.leaf, head, len)?;
    }
    rebalance(tx, &path)?;
    Ok(true)
}

/// Below this share of its capacity a non-root node is merged with or refilled from a
/// sibling: a quarter keeps pages reasonably full without moving cells on every delete.
fn underfull(tx: &impl crate::page::PageRead, no: PageNo) -> Result<bool> {
    let page = tx.page(no)?;
    let node = Node::open(&page, no)?;
    Ok(node.used() < node.kind.capacity(page.len()) / 4)
}

/// After a delete from the leaf of `path`: merges or refills underfull nodes bottom-up and
/// shrinks the root when it is a branch with a single child.
fn rebalance(tx: &mut impl PageWrite, path: &Path) -> Result<()> {
    let mut child = path.leaf;
    for level in (0..path.branches()).rev() {
        if !underfull(tx, child)? {
            return Ok(());
        }
        if !fix_underflow(tx, path, level, child)? {
            return Ok(());
        }
        child = path.at(level).0;
    }
    collapse_root(tx, path.root())
}

/// Merges `child` (a child of the branch at `path` level `level`) with a sibling when both
/// fit one page, else shares cells evenly between them. Returns true when the parent lost
/// a cell (a merge).
fn fix_underflow(
    tx: &mut impl PageWrite,
    path: &Path,
    level: usize,
    child: PageNo,
) -> Result<bool> {
    let (parent, i) = path.at(level);
    let (j, left, right, sep) = {
        let page = tx.page(parent)?;
        let node = Node::open_as(&page, parent, NodeKind::Branch)?;
        if node.count == 0 || i > node.count {
            return Err(Error::page(
                parent,
                format!("branch with {} cells, child {i}", node.count),
            ));
        }
        // Siblings `j` and `j + 1` around separator `j`; the left one when there is one.
        let j = i.saturating_sub(1);
        (j, node.child(j)?, node.child(j + 1)?, node.key(j)?.to_vec())
    };
    if child != left && child != right {
        return Err(Error::page(
            parent,
            format!("child {child} moved during a delete"),
        ));
    }
    let (kind, cells, left_count, left_rightmost, right_rightmost) = {
        let (lpage, rpage) = (tx.page(left)?, tx.page(right)?);
        let l = Node::open(&lpage, left)?;
        let r = Node::open_as(&rpage, right, l.kind)?;
        let mut cells = CellList::from_node(&l)?;
        let (mut lrm, mut rrm) = (0, 0);
        if l.kind == NodeKind::Branch {
            (lrm, rrm) = (l.rightmost()?, r.rightmost()?);
            // The parent's separator comes down between the two halves.
            let mut cell = vec![0u8; branch_cell_len(sep.len())];
            encode_branch_cell(&mut cell, lrm, &sep);
            cells.push(&cell);
        }
        cells.extend_from_node(&r)?;
        (l.kind, cells, l.count, lrm, rrm)
    };
    let capacity = kind.capacity(tx.body_len());
    if cells.cost_of(0..cells.len()) <= capacity {
        let bug = kind == NodeKind::Leaf
            && cells.len() > 1
            && tx.seeded_bug(crate::SeededBug::LoseLastKeyOfMerge);
        let kept = if bug { cells.len() - 1 } else { cells.len() };
        write_node(
            tx.page_mut(right)?,
            right,
            kind,
            right_rightmost,
            &cells,
            0..kept,
        )?;
        tx.free(left)?;
        node::remove(tx.page_mut(parent)?, parent, NodeKind::Branch, j)?;
        return Ok(true);
    }
    let promote = kind == NodeKind::Branch;
    let k = choose_split(&cells, capacity, Fill::Even, promote)
        .ok_or_else(|| Error::page(left, "cells of two siblings cannot be shared"))?;
    if k == left_count {
        return Ok(false);
    }
    let (new_sep, new_left_rightmost, right_start) = if promote {
        (cells.key(k).to_vec(), cells.child(k), k + 1)
    } else {
        (
            separator(cells.key(k - 1), cells.key(k)).to_vec(),
            left_rightmost,
            k,
        )
    };
    write_node(
        tx.page_mut(left)?,
        left,
        kind,
        new_left_rightmost,
        &cells,
        0..k,
    )?;
    write_node(
        tx.page_mut(right)?,
        right,
        kind,
        right_rightmost,
        &cells,
        right_start..cells.len(),
    )?;
    replace_separator(tx, path, level, j, left, new_sep)?;
    Ok(false)
}

/// While the root is a branch with no keys, moves its only child's content into it.
fn collapse_root(tx: &mut impl PageWrite, root: PageNo) -> Result<()> {
    for _ in 0..DEPTH_MAX {
        let child = {
            let page = tx.page(root)?;
            let node = Node::open(&page, root)?;
            if node.kind == NodeKind::Leaf || node.count > 0 {
                return Ok(());
            }
            node.rightmost()?
        };
        let content = {
            let page = tx.page(child)?;
            Node::open(&page, child)?;
            page.to_vec()
        };
        let body = tx.page_mut(root)?;
        if body.len() != content.len() {
            return Err(Error::page(child, "body size differs from the root's"));
        }
        body.copy_from_slice(&content);
        tx.free(child)?;
    }
    Err(Error::page(
        root,
        format!("root collapsed {DEPTH_MAX} times (a cycle?)"),
    ))
}

/// Frees every page of the tree at `root`: root, branches, leaves and overflow chains.
///
/// # Errors
/// Corruption (including a page reached twice) and errors of the page store.
pub(crate) fn destroy(tx: &mut impl PageWrite, root: PageNo) -> Result<()> {
    let mut seen: HashSet<PageNo> = HashSet::new();
    let mut claim = |no: PageNo| {
        if seen.insert(no) {
            Ok(())
        } else {
            Err(Error::page(
                no,
                "page reached twice while destroying a tree",
            ))
        }
    };
    let mut stack = vec![(root, 1usize)];
    while let Some((no, depth)) = stack.pop() {
        if depth > DEPTH_MAX {
            return Err(Error::page(
                no,
                format!("tree deeper than {DEPTH_MAX} levels"),
            ));
        }
        claim(no)?;
        let mut chains = Vec::new();
        {
            let page = tx.page(no)?;
            let node = Node::open(&page, no)?;
            match node.kind {
                NodeKind::Branch => {
                    for i in 0..=node.count {
                        stack.push((node.child(i)?, depth + 1));
                    }
                }
                NodeKind::Leaf => {
                    for i in 0..node.count {
                        if let Value::Overflow { len, head } = node.leaf_cell(i)?.value {
                            chains.push((head, len));
                        }
                    }
                }
            }
        }
        for (head, len) in chains {
            for page in overflow::pages(tx, no, head, len)? {
                claim(page)?;
                tx.free(page)?;
            }
        }
        tx.free(no)?;
    }
    Ok(())
}
