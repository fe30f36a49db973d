//! Range cursor: ascending or descending, over a stack of (page, index) from root to leaf.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::page::{PageNo, PageRead, PageRef};

use super::node::{Node, NodeKind, Value};
use super::DEPTH_MAX;

/// One level of the cursor's path: in a branch, the child index descended into; in the
/// leaf, the next cell to yield (ascending) or one past it (descending).
#[derive(Debug)]
struct Frame {
    /// The leaf's page, held while the cursor is on it. Branches are looked up again when
    /// the cursor leaves a leaf (rarely), so a seek holds no reference to them.
    page: Option<PageRef>,
    no: PageNo,
    idx: usize,
    /// In the leaf: the cell yielded last, so the next key is checked against it in place.
    prev: Option<usize>,
}

/// Iterates the entries of a tree within bounds, in key order or reversed.
///
/// The cursor holds page references between calls: the tree must not change while a cursor
/// is in use (the results would be unspecified, though never unsafe).
#[derive(Debug)]
pub(crate) struct Cursor {
    root: PageNo,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    started: bool,
    done: bool,
    stack: Vec<Frame>,
    /// The leaf left last and the index of the last key yielded from it: the next leaf's
    /// first key must come after that key (progress on a damaged tree). Held, not copied.
    last_leaf: Option<(PageRef, PageNo, usize)>,
    /// How many branch levels lie above the leaves, once a descent has found out: a later
    /// descent then fetches the leaf directly instead of looking at it first.
    leaf_depth: Option<usize>,
}

impl Cursor {
    pub(crate) fn new(
        root: PageNo,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Cursor {
        Cursor {
            root,
            lower,
            upper,
            reverse,
            started: false,
            done: false,
            // Typical trees are 3-4 levels deep; the stack grows if a tree is deeper.
            stack: Vec::with_capacity(4),
            last_leaf: None,
            leaf_depth: None,
        }
    }

    /// The next entry, or `None` at the end of the range. After an error the cursor is
    /// finished and returns `None`.
    ///
    /// # Errors
    /// Corruption and errors of the page store.
    pub(crate) fn next(&mut self, tx: &impl PageRead) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut out = None;
        self.next_with(tx, &mut |k, v| out = Some((k.to_vec(), v.to_vec())))?;
        Ok(out)
    }

    /// Calls `visit` with the next entry's key and value, borrowed from the page (no copy
    /// for inline values). Returns false at the end of the range.
    ///
    /// # Errors
    /// As [`Cursor::next`].
    pub(crate) fn next_with(
        &mut self,
        tx: &impl PageRead,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let result = self.step(tx, visit);
        if !matches!(result, Ok(true)) {
            self.done = true;
            self.stack.clear();
        }
        result
    }

    /// Calls `visit` with up to `count_max` next entries; returns how many. Runs through
    /// each leaf in one tight loop ([`Cursor::leaf_run`]) and takes the general step only
    /// to seek, to change leaves, for overflow values and for reverse scans.
    ///
    /// # Errors
    /// As [`Cursor::next`]; the cursor is finished after an error.
    pub(crate) fn visit_n(
        &mut self,
        tx: &impl PageRead,
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        let mut count = 0;
        let mut prefetched = false;
        while count < count_max && !self.done {
            if self.started && !self.reverse {
                if !prefetched {
                    prefetched = true;
                    self.prefetch_next_leaf(tx, count_max - count);
                }
                match self.leaf_run(count_max - count, visit) {
                    Ok(n) => count += n,
                    Err(e) => {
                        self.done = true;
                        self.stack.clear();
                        return Err(e);
                    }
                }
                if count >= count_max || self.done {
                    break;
                }
            }
            if !self.next_with(tx, visit)? {
                break;
            }
            count += 1;
        }
        debug_assert!(count <= count_max);
        Ok(count)
    }

    /// When the current leaf holds fewer than `wanted` more entries, starts loading the next
    /// leaf, so its cache misses overlap the work on this one. Only a hint: errors are left
    /// for the step that really moves there.
    fn prefetch_next_leaf(&self, tx: &impl PageRead, wanted: usize) {
        let [.., parent, leaf] = self.stack.as_slice() else {
            return;
        };
        let Some(page) = &leaf.page else {
            return;
        };
        let Ok(node) = Node::open_as(page, leaf.no, NodeKind::Leaf) else {
            return;
        };
        if node.count.saturating_sub(leaf.idx) >= wanted {
            return;
        }
        let (no, idx) = (parent.no, parent.idx);
        let next = tx.with_page(no, |body| {
            let node = Node::open_as(body, no, NodeKind::Branch)?;
            (idx < node.count).then(|| node.child(idx + 1)).transpose()
        });
        if let Ok(Some(next)) = next {
            tx.prefetch(next);
        }
    }

    /// Visits up to `count_max` inline entries of the current leaf, forward, with the same
    /// bound and order checks as [`Cursor::step`]. Stops early (for the general step to
    /// handle) at the leaf's end or at an overflow value; marks the cursor done past the
    /// upper bound.
    fn leaf_run(&mut self, count_max: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<usize> {
        let Some(frame) = self.stack.last() else {
            return Ok(0);
        };
        let node = frame.leaf()?;
        let mut prev_key = match frame.prev {
            Some(p) => Some(node.key(p)?),
            None => last_leaf_key(self.last_leaf.as_ref())?,
        };
        let (start, no) = (frame.idx, frame.no);
        let mut i = start;
        let mut past_end = false;
        while i < node.count && i - start < count_max {
            let cell = node.leaf_cell(i)?;
            let Value::Inline(value) = cell.value else {
                break;
            };
            if self.past_end(cell.key) {
                past_end = true;
                break;
            }
            check_order(false, prev_key, cell.key, no)?;
            visit(cell.key, value);
            prev_key = Some(cell.key);
            i += 1;
        }
        if past_end {
            self.done = true;
            self.stack.clear();
        } else if i > start {
            if let Some(frame) = self.stack.last_mut() {
                frame.idx = i;
                frame.prev = Some(i - 1);
            }
        }
        Ok(i - start)
    }

    fn step(&mut self, tx: &impl PageRead, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<bool> {
        if !self.started {
            self.started = true;
            self.seek(tx)?;
        }
        // Leaves below the root are never empty, so after at most one move to the next
        // leaf there is a cell to yield or the range has ended.
        for _ in 0..2 {
            let Some(frame) = self.stack.last() else {
                return Ok(false);
            };
            let node = frame.leaf()?;
            let at = if self.reverse {
                frame.idx.checked_sub(1)
            } else {
                (frame.idx < node.count).then_some(frame.idx)
            };
            let Some(i) = at else {
                // Keep this leaf's last key: the next leaf's first key must come after it.
                if let (Some(p), Some(page)) = (frame.prev, frame.page.clone()) {
                    self.last_leaf = Some((page, frame.no, p));
                }
                if !self.move_leaf(tx)? {
                    return Ok(false);
                }
                continue;
            };
            let cell = node.leaf_cell(i)?;
            if self.past_end(cell.key) {
                return Ok(false);
            }
            let prev_key = match frame.prev {
                Some(p) => Some(node.key(p)?),
                None => last_leaf_key(self.last_leaf.as_ref())?,
            };
            check_order(self.reverse, prev_key, cell.key, frame.no)?;
            match cell.value {
                Value::Inline(v) => visit(cell.key, v),
                Value::Overflow { .. } => visit(cell.key, &cell.load(tx, frame.no)?),
            }
            let next_idx = if self.reverse { i } else { i + 1 };
            if let Some(frame) = self.stack.last_mut() {
                frame.idx = next_idx;
                frame.prev = Some(i);
            }
            return Ok(true);
        }
        let no = self.stack.last().map_or(self.root, |f| f.no);
        Err(Error::page(no, "cursor found an empty leaf"))
    }

    /// True when `key` lies beyond the far bound of the scan.
    fn past_end(&self, key: &[u8]) -> bool {
        if self.reverse {
            match &self.lower {
                Bound::Included(l) => key < l.as_slice(),
                Bound::Excluded(l) => key <= l.as_slice(),
                Bound::Unbounded => false,
            }
        } else {
            match &self.upper {
                Bound::Included(u) => key > u.as_slice(),
                Bound::Excluded(u) => key >= u.as_slice(),
                Bound::Unbounded => false,
            }
        }
    }

    /// Descends from the root to the first leaf position of the range.
    fn seek(&mut self, tx: &impl PageRead) -> Result<()> {
        self.descend(tx, self.root, true)
    }

    /// Descends from `no` to a leaf, pushing a frame per level: by the scan's starting
    /// bound when `by_bound`, else along first children (last when reversed).
    fn descend(&mut self, tx: &impl PageRead, mut no: PageNo, by_bound: bool) -> Result<()> {
        const UNBOUNDED: &Bound<Vec<u8>> = &Bound::Unbounded;
        let reverse = self.reverse;
        while self.stack.len() < DEPTH_MAX {
            let bound = match (by_bound, reverse) {
                (false, _) => UNBOUNDED,
                (true, true) => &self.upper,
                (true, false) => &self.lower,
            };
            let known_leaf = self.leaf_depth == Some(self.stack.len());
            let branch = if known_leaf {
                None
            } else {
                tx.with_page(no, |body| {
                    let node = Node::open(body, no)?;
                    if node.kind != NodeKind::Branch {
                        return Ok(None);
                    }
                    let idx = match bound {
                        Bound::Included(k) | Bound::Excluded(k) => node.child_index(k)?,
                        Bound::Unbounded if reverse => node.count,
                        Bound::Unbounded => 0,
                    };
                    Ok(Some((idx, node.child(idx)?)))
                })?
            };
            if let Some((idx, child)) = branch {
                self.stack.push(Frame {
                    page: None,
                    no,
                    idx,
                    prev: None,
                });
                no = child;
                continue;
            }
            let page = tx.page(no)?;
            let node = Node::open_as(&page, no, NodeKind::Leaf)?;
            if node.count == 0 && !self.stack.is_empty() {
                return Err(Error::page(no, "empty leaf below the root"));
            }
            let idx = leaf_start(&node, bound, reverse)?;
            self.leaf_depth = Some(self.stack.len());
            self.stack.push(Frame {
                page: Some(page),
                no,
                idx,
                prev: None,
            });
            return Ok(());
        }
        Err(Error::page(
            no,
            format!("tree deeper than {DEPTH_MAX} levels (a cycle?)"),
        ))
    }

    /// Leaves the current leaf for the next one in scan order. False at the end of the tree.
    fn move_leaf(&mut self, tx: &impl PageRead) -> Result<bool> {
        self.stack.pop();
        let reverse = self.reverse;
        while let Some(frame) = self.stack.last_mut() {
            let (no, idx) = (frame.no, frame.idx);
            let next = tx.with_page(no, |body| {
                let node = Node::open_as(body, no, NodeKind::Branch)?;
                let next = if reverse {
                    idx.checked_sub(1)
                } else {
                    (idx < node.count).then_some(idx + 1)
                };
                next.map(|i| Ok((i, node.child(i)?))).transpose()
            })?;
            if let Some((i, child)) = next {
                frame.idx = i;
                self.descend(tx, child, false)?;
                if !reverse && tx.seeded_bug(crate::SeededBug::ScanSkipsLeafStart) {
                    if let Some(leaf) = self.stack.last_mut() {
                        leaf.idx += 1;
                    }
                }
                return Ok(true);
            }
            self.stack.pop();
        }
        Ok(false)
    }
}

/// The key [`Cursor::last_leaf`] points at, if any.
fn last_leaf_key(last: Option<&(PageRef, PageNo, usize)>) -> Result<Option<&[u8]>> {
    let Some((page, no, i)) = last else {
        return Ok(None);
    };
    Ok(Some(Node::open_as(page, *no, NodeKind::Leaf)?.key(*i)?))
}

impl Frame {
    /// The leaf this frame holds.
    fn leaf(&self) -> Result<Node<'_>> {
        let page = self
            .page
            .as_ref()
            .ok_or_else(|| Error::page(self.no, "cursor frame without its leaf"))?;
        Node::open_as(page, self.no, NodeKind::Leaf)
    }
}

/// The starting index in the first leaf of a scan.
fn leaf_start(node: &Node, bound: &Bound<Vec<u8>>, reverse: bool) -> Result<usize> {
    Ok(match bound {
        Bound::Unbounded => {
            if reverse {
                node.count
            } else {
                0
            }
        }
        Bound::Included(k) => {
            let (i, found) = node.search(k)?;
            if reverse {
                i + usize::from(found)
            } else {
                i
            }
        }
        Bound::Excluded(k) => {
            let (i, found) = node.search(k)?;
            if reverse {
                i
            } else {
                i + usize::from(found)
            }
        }
    })
}

/// Keys must strictly rise (fall when reversed); anything else is a damaged tree, and this
/// check is what keeps a scan of one from looping.
fn check_order(reverse: bool, prev: Option<&[u8]>, key: &[u8], no: PageNo) -> Result<()> {
    let Some(prev) = prev else {
        return Ok(());
    };
    let ordered = if reverse { key < prev } else { key > prev };
    if ordered {
        Ok(())
    } else {
        Err(Error::page(no, "keys out of order"))
    }
}
