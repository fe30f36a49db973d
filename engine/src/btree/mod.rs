//! B+tree over [`PageRead`]/[`PageWrite`]: one tree per table, keys and values as bytes.
//!
//! * The root page number never changes: a root split moves the root's cells into two new
//!   children, and a branch root left with one child pulls that child's content up.
//! * Leaves and branches are slotted pages (u16 cell offsets in key order); values too large
//!   to fit four cells to a page live in chains of overflow pages.
//! * Pages come from disk and may be garbage that passed the checksum: every offset, length,
//!   count and pointer read from a page is checked and reported as [`Error::page`].
//!
//! The byte layout and the split/merge rules are in `docs/btree-format.md`.
//!
//! An `Err` from [`insert`] or [`delete`] may leave the tree half-changed inside the
//! transaction (for example a split done at one level but not the next): the caller must
//! roll the transaction back.

// Until the pager and the table layer land, only the tests call into this module.
#![cfg_attr(not(test), allow(dead_code, unused_imports))]

mod check;
mod cursor;
mod delete;
mod insert;
mod node;
mod overflow;
#[cfg(test)]
mod tests;

use crate::error::{Error, Result};
use crate::page::{PageNo, PageRead, PageWrite};
use crate::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

pub(crate) use check::{check, TreeStats};
pub(crate) use cursor::Cursor;
pub(crate) use delete::{delete, destroy};
pub(crate) use insert::{insert, insert_hinted};

use node::{LeafCell, Node, NodeKind, Value, LEAF_HEADER_LEN, SLOT_LEN};

/// Deepest tree, counting the leaf level. Every branch has at least two children, so a
/// tree of depth d has at least 2^(d-1) leaves; with u32 page numbers a valid tree is never
/// deeper than 32. A deeper path in a file is a cycle or garbage.
pub(crate) const DEPTH_MAX: usize = 32;

/// The largest leaf cell (header, key and inline value) kept inline: four such cells and
/// their slots fit one leaf. Larger values move to an overflow chain.
pub(crate) fn leaf_cell_inline_max(body_len: usize) -> usize {
    (body_len - LEAF_HEADER_LEN) / 4 - SLOT_LEN
}

/// Whether a value of `value_len` bytes under a key of `key_len` bytes goes to overflow:
/// when the inline cell would exceed [`leaf_cell_inline_max`], unless the value is no
/// longer than the overflow pointer that would replace it.
fn needs_overflow(body_len: usize, key_len: usize, value_len: usize) -> bool {
    value_len > node::OVERFLOW_PTR_LEN
        && node::CELL_HEADER_LEN + key_len + value_len > leaf_cell_inline_max(body_len)
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > KEY_BYTES_MAX {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: KEY_BYTES_MAX,
        });
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(Error::ValueTooLarge {
            len: value.len(),
            max: VALUE_BYTES_MAX,
        });
    }
    Ok(())
}

/// Creates an empty tree (one empty leaf) and returns its root page, fixed for its life.
///
/// # Errors
/// Errors of the page store.
pub(crate) fn create(tx: &mut impl PageWrite) -> Result<PageNo> {
    let no = tx.allocate()?;
    node::init_node(tx.page_mut(no)?, NodeKind::Leaf, 0);
    debug_assert!(no != 0);
    Ok(no)
}

/// The value stored under `key`. Allocates only the returned value.
///
/// # Errors
/// [`Error::KeyTooLarge`]; corruption and errors of the page store.
pub(crate) fn get(tx: &impl PageRead, root: PageNo, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    Ok(get_into(tx, root, key, &mut out)?.then_some(out))
}

/// Like [`get`], but writes the value into `out` (cleared first), so a caller that reuses
/// its buffer pays no allocation. Returns whether the key exists.
pub(crate) fn get_into(
    tx: &impl PageRead,
    root: PageNo,
    key: &[u8],
    out: &mut Vec<u8>,
) -> Result<bool> {
    /// Where one page sent the lookup.
    enum Step {
        Child(PageNo),
        Done(bool),
        Overflow { len: usize, head: PageNo },
    }
    check_key(key)?;
    out.clear();
    let mut no = root;
    for _ in 0..DEPTH_MAX {
        // Each page is only looked at, never kept: a cache hit takes no reference.
        let step = tx.with_page(no, |body| {
            let node = Node::open(body, no)?;
            if node.kind == NodeKind::Branch {
                return Ok(Step::Child(node.child(node.child_index(key)?)?));
            }
            let (i, found) = node.search(key)?;
            if !found {
                return Ok(Step::Done(false));
            }
            Ok(match node.leaf_cell(i)?.value {
                Value::Inline(v) => {
                    out.extend_from_slice(v);
                    Step::Done(true)
                }
                Value::Overflow { len, head } => Step::Overflow { len, head },
            })
        })?;
        match step {
            Step::Child(child) => no = child,
            Step::Done(found) => return Ok(found),
            Step::Overflow { len, head } => {
                *out = overflow::read(tx, no, head, len)?;
                return Ok(true);
            }
        }
    }
    Err(Error::page(
        no,
        format!("tree deeper than {DEPTH_MAX} levels (a cycle?)"),
    ))
}

impl LeafCell<'_> {
    /// The cell's whole value, read from its overflow chain when it has one.
    fn load(&self, tx: &impl PageRead, owner: PageNo) -> Result<Vec<u8>> {
        match self.value {
            Value::Inline(v) => Ok(v.to_vec()),
            Value::Overflow { len, head } => overflow::read(tx, owner, head, len),
        }
    }
}

/// The branches walked from the root to a leaf, with the child index taken in each.
#[derive(Clone, Copy, Debug)]
pub(super) struct Path {
    levels: [(PageNo, usize); DEPTH_MAX],
    len: usize,
    leaf: PageNo,
    /// Every step took the rightmost child: the leaf is the last of the tree.
    rightmost: bool,
    /// Every step took child 0: the leaf is the first of the tree.
    leftmost: bool,
}

impl Path {
    fn root(&self) -> PageNo {
        if self.len == 0 {
            self.leaf
        } else {
            self.levels[0].0
        }
    }

    /// Branch `level` (0 = root) and the child index taken there.
    fn at(&self, level: usize) -> (PageNo, usize) {
        self.levels[level]
    }

    /// Whether the leaf has `len` branches above it.
    fn branches(&self) -> usize {
        self.len
    }

    fn with_index(&self, level: usize, idx: usize) -> Path {
        let mut path = *self;
        path.levels[level].1 = idx;
        path
    }
}

/// Walks from `root` to the leaf that covers `key`.
fn descend(tx: &impl PageRead, root: PageNo, key: &[u8]) -> Result<Path> {
    descend_noting(tx, root, key, |_, _| Ok(()))
}

/// [`descend`], showing `on_branch` each branch and the child index taken there.
#[inline]
fn descend_noting(
    tx: &impl PageRead,
    root: PageNo,
    key: &[u8],
    mut on_branch: impl FnMut(&Node<'_>, usize) -> Result<()>,
) -> Result<Path> {
    let mut path = Path {
        levels: [(0, 0); DEPTH_MAX],
        len: 0,
        leaf: 0,
        rightmost: true,
        leftmost: true,
    };
    let mut no = root;
    for depth in 0..DEPTH_MAX {
        let page = tx.page(no)?;
        let node = Node::open(&page, no)?;
        match node.kind {
            NodeKind::Leaf => {
                path.leaf = no;
                debug_assert_eq!(path.len, depth);
                return Ok(path);
            }
            NodeKind::Branch => {
                let idx = node.child_index(key)?;
                on_branch(&node, idx)?;
                path.levels[depth] = (no, idx);
                path.len = depth + 1;
                path.rightmost &= idx == node.count;
                path.leftmost &= idx == 0;
                no = node.child(idx)?;
            }
        }
    }
    Err(Error::page(
        no,
        format!("tree deeper than {DEPTH_MAX} levels (a cycle?)"),
    ))
}

/// The path of a transaction's last insert and the key range its leaf covers, so that the
/// next insert into the same range (a sequential load's next key) starts at the leaf
/// instead of descending again: the descent's binary searches were a third of a sequential
/// load's time. Valid only while the tree's shape is unchanged: the insert that splits
/// clears it, and the transaction clears it before any other change (delete, table create
/// or drop), since those may merge pages or reuse a freed root.
#[derive(Debug, Default)]
pub(crate) struct InsertHint {
    /// Table root and path, when the hint is set.
    path: Option<(PageNo, Path)>,
    /// Inclusive lower bound of the leaf's keys.
    lower: KeyBound,
    /// Exclusive upper bound.
    upper: KeyBound,
}

/// One side of the hint's key range; its buffer is kept across descents, so a descent
/// that misses the hint allocates nothing once the buffers have grown.
#[derive(Debug, Default)]
struct KeyBound {
    key: Vec<u8>,
    /// False: unbounded on this side.
    set: bool,
}

impl KeyBound {
    fn set(&mut self, key: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(key);
        self.set = true;
    }
}

impl InsertHint {
    /// Forgets the path.
    pub(crate) fn clear(&mut self) {
        self.path = None;
    }

    /// The remembered path when it leads to the leaf covering `key` in tree `root`.
    fn path_for(&self, root: PageNo, key: &[u8]) -> Option<Path> {
        let (hint_root, path) = self.path?;
        (hint_root == root && self.covers(key)).then_some(path)
    }

    /// Whether `key` lies in the remembered leaf's range.
    fn covers(&self, key: &[u8]) -> bool {
        (!self.lower.set || key >= self.lower.key.as_slice())
            && (!self.upper.set || key < self.upper.key.as_slice())
    }

    /// Descends to `key`'s leaf and remembers the path with its key range. A branch's
    /// child `idx` holds the keys from separator `idx - 1` (inclusive) to separator `idx`
    /// (exclusive); each level narrows the range of the one above.
    fn descend(&mut self, tx: &impl PageRead, root: PageNo, key: &[u8]) -> Result<Path> {
        self.path = None;
        let (lower, upper) = (&mut self.lower, &mut self.upper);
        lower.set = false;
        upper.set = false;
        let path = descend_noting(tx, root, key, |node, idx| {
            if idx > 0 {
                lower.set(node.key(idx - 1)?);
            }
            if idx < node.count {
                upper.set(node.key(idx)?);
            }
            Ok(())
        })?;
        debug_assert!(self.covers(key));
        self.path = Some((root, path));
        Ok(path)
    }
}
