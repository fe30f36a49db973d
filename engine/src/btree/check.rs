//! Integrity check of one tree: structure, order, bounds, depth and overflow chains.

use crate::error::{Error, Result};
use crate::page::{PageKind, PageNo, PageRead};

use super::node::{Node, NodeKind, Value};
use super::{needs_overflow, overflow, DEPTH_MAX};

/// What [`check`] counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeStats {
    /// Key-value pairs.
    pub entries: u64,
    /// Levels, the leaf level included: 1 for a root leaf.
    pub depth: u32,
    pub leaf_pages: u64,
    pub branch_pages: u64,
    pub overflow_pages: u64,
    /// Body bytes in use: headers, slots and cells of tree pages, header and chunk of
    /// overflow pages.
    pub used_bytes: u64,
}

/// Verifies every page reachable from `root` and calls `visit` once per page (tree and
/// overflow pages), so the caller can find pages used twice or leaked.
///
/// # Errors
/// The first corruption found, errors of the page store, and errors from `visit`.
pub(crate) fn check(
    tx: &impl PageRead,
    root: PageNo,
    visit: &mut dyn FnMut(PageNo, PageKind) -> Result<()>,
) -> Result<TreeStats> {
    let mut checker = Checker {
        tx,
        visit,
        stats: TreeStats::default(),
        leaf_depth: None,
    };
    checker.node(root, 1, None, None)?;
    checker.stats.depth = checker.leaf_depth.unwrap_or(1);
    Ok(checker.stats)
}

struct Checker<'c, R: PageRead> {
    tx: &'c R,
    visit: &'c mut dyn FnMut(PageNo, PageKind) -> Result<()>,
    stats: TreeStats,
    leaf_depth: Option<u32>,
}

impl<R: PageRead> Checker<'_, R> {
    /// Checks node `no` at `depth` whose keys must lie in `[lower, upper)`. A subtree
    /// reached twice fails its bounds at its first key, so the walk stays linear.
    fn node(
        &mut self,
        no: PageNo,
        depth: u32,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Result<()> {
        if depth as usize > DEPTH_MAX {
            return Err(Error::page(
                no,
                format!("tree deeper than {DEPTH_MAX} levels"),
            ));
        }
        let page = self.tx.page(no)?;
        let node = Node::open(&page, no)?;
        (self.visit)(no, node.kind.page_kind())?;
        check_layout(&node)?;
        check_keys(&node, lower, upper)?;
        self.stats.used_bytes += node.used() as u64 + node.kind.header_len() as u64;
        match node.kind {
            NodeKind::Leaf => self.leaf(&node, depth),
            NodeKind::Branch => {
                self.stats.branch_pages += 1;
                if node.count == 0 {
                    return Err(Error::page(no, "branch without keys"));
                }
                for i in 0..=node.count {
                    let low = if i == 0 {
                        lower
                    } else {
                        Some(node.key(i - 1)?)
                    };
                    let high = if i == node.count {
                        upper
                    } else {
                        Some(node.key(i)?)
                    };
                    self.node(node.child(i)?, depth + 1, low, high)?;
                }
                Ok(())
            }
        }
    }

    fn leaf(&mut self, node: &Node, depth: u32) -> Result<()> {
        let no = node.no;
        match self.leaf_depth {
            None => self.leaf_depth = Some(depth),
            Some(d) if d != depth => {
                return Err(Error::page(
                    no,
                    format!("leaf at depth {depth}, others at {d}"),
                ));
            }
            Some(_) => {}
        }
        if node.count == 0 && depth > 1 {
            return Err(Error::page(no, "empty leaf below the root"));
        }
        self.stats.leaf_pages += 1;
        self.stats.entries += node.count as u64;
        let body_len = self.tx.body_len();
        for i in 0..node.count {
            let cell = node.leaf_cell(i)?;
            let overflowed = matches!(cell.value, Value::Overflow { .. });
            if overflowed != needs_overflow(body_len, cell.key.len(), cell.value.len()) {
                return Err(Error::page(
                    no,
                    format!(
                        "cell {i}: {} bytes stored {}",
                        cell.value.len(),
                        if overflowed { "in overflow" } else { "inline" }
                    ),
                ));
            }
            if let Value::Overflow { len, head } = cell.value {
                let (pages, used) = overflow::check(self.tx, no, head, len, self.visit)?;
                self.stats.overflow_pages += pages;
                self.stats.used_bytes += used;
            }
        }
        Ok(())
    }
}

/// Cells lie in the content area without overlapping, and the free-byte count is exact.
fn check_layout(node: &Node) -> Result<()> {
    let mut ranges = Vec::with_capacity(node.count);
    for i in 0..node.count {
        ranges.push(node.cell_range(i)?);
    }
    ranges.sort_by_key(|r| r.start);
    let mut end = node.content_start;
    let mut live = 0;
    for r in &ranges {
        if r.start < end {
            return Err(Error::page(
                node.no,
                format!("cell at {} overlaps the one before", r.start),
            ));
        }
        end = r.end;
        live += r.len();
    }
    let content = node.body().len() - node.content_start;
    if live + node.frag != content {
        return Err(Error::page(
            node.no,
            format!(
                "{live} live and {} fragmented bytes, content area is {content}",
                node.frag
            ),
        ));
    }
    Ok(())
}

/// Keys strictly ascend and lie in `[lower, upper)`; branch keys lie strictly inside.
fn check_keys(node: &Node, lower: Option<&[u8]>, upper: Option<&[u8]>) -> Result<()> {
    let mut prev: Option<&[u8]> = None;
    for i in 0..node.count {
        let key = node.key(i)?;
        if prev.is_some_and(|p| p >= key) {
            return Err(Error::page(
                node.no,
                format!("key {i} not above key {}", i - 1),
            ));
        }
        let low_ok = match lower {
            None => true,
            Some(l) if node.kind == NodeKind::Branch => key > l,
            Some(l) => key >= l,
        };
        if !low_ok || upper.is_some_and(|u| key >= u) {
            return Err(Error::page(
                node.no,
                format!("key {i} outside the bounds set by the parent"),
            ));
        }
        prev = Some(key);
    }
    Ok(())
}
