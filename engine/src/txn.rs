//! Transactions: snapshot readers and the single writer.

use std::ops::Bound;
use std::sync::Arc;

use crate::btree;
use crate::catalog::{self, Table};
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::page::{PageNo, PageRead, PageRef, PAGE_HEADER_LEN};
use crate::shared::Shared;

/// A read-only snapshot. Sees every commit visible when it began and nothing after.
pub struct ReadTxn {
    shared: Arc<Shared>,
    snap: u64,
}

impl std::fmt::Debug for ReadTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTxn")
            .field("snapshot", &self.snap)
            .finish_non_exhaustive()
    }
}

impl ReadTxn {
    pub(crate) fn new(shared: Arc<Shared>) -> ReadTxn {
        // Register under the readers lock so a checkpoint never misses this snapshot.
        let mut readers = shared.readers.lock();
        let snap = shared.wal.visible();
        readers.add(snap);
        drop(readers);
        ReadTxn { shared, snap }
    }

    /// The table `name`.
    ///
    /// # Errors
    /// [`Error::TableNotFound`]; I/O errors; corruption.
    pub fn table(&self, name: &str) -> Result<Table> {
        catalog::lookup(self, name)
    }

    /// The value of `key`, if present.
    ///
    /// # Errors
    /// I/O errors; corruption.
    pub fn get(&self, table: &Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match btree::get(self, table.root(), key) {
            Err(Error::Io { .. }) if self.shared.bug(crate::SeededBug::ReadErrorAsAbsent) => {
                Ok(None)
            }
            got => got,
        }
    }

    /// The value of `key` written into `out` (cleared first); true when the key exists.
    /// Reusing `out` across calls saves an allocation per read.
    ///
    /// # Errors
    /// I/O errors; corruption.
    pub fn get_into(&self, table: &Table, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        btree::get_into(self, table.root(), key, out)
    }

    /// Entries with keys in (`lower`, `upper`), ascending or, with `reverse`, descending.
    ///
    /// # Errors
    /// None at creation; the iterator yields I/O errors and corruption.
    pub fn range(
        &self,
        table: &Table,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<Range<'_>> {
        Ok(Range::new(self, *table, lower, upper, reverse))
    }

    /// Entries whose keys start with `prefix`, ascending.
    ///
    /// # Errors
    /// As [`ReadTxn::range`].
    pub fn prefix(&self, table: &Table, prefix: &[u8]) -> Result<Range<'_>> {
        let upper = prefix_end(prefix);
        let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        Ok(Range::new(
            self,
            *table,
            Bound::Included(prefix),
            upper,
            false,
        ))
    }

    /// Names and handles of every table, sorted by name.
    ///
    /// # Errors
    /// I/O errors; corruption.
    pub fn tables(&self) -> Result<Vec<(String, Table)>> {
        catalog::list(self)
    }

    pub(crate) fn meta(&self) -> Result<Meta> {
        let page = self.page(0)?;
        Meta::decode(&page, self.shared.page_size())
    }
}

impl ReadTxn {
    /// The snapshot pages are looked up at (the newest commit under a seeded bug).
    fn page_snap(&self) -> u64 {
        if self.shared.bug(crate::SeededBug::SnapshotReadsLatest) {
            u64::MAX
        } else {
            self.snap
        }
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        self.shared.readers.lock().remove(self.snap);
    }
}

impl PageRead for ReadTxn {
    fn seeded_bug(&self, bug: crate::SeededBug) -> bool {
        self.shared.bug(bug)
    }
    fn body_len(&self) -> usize {
        self.shared.page_size() - PAGE_HEADER_LEN
    }
    fn page(&self, no: PageNo) -> Result<PageRef> {
        self.shared.read_page(no, self.page_snap())
    }
    fn with_page<R>(&self, no: PageNo, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        self.shared.with_page(no, self.page_snap(), f)
    }
    fn prefetch(&self, no: PageNo) {
        self.shared.prefetch_page(no, self.page_snap());
    }
}

/// The smallest key greater than every key starting with `prefix` (None: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// An iterator over a range of one table.
pub struct Range<'a> {
    src: &'a dyn PageReadDyn,
    cursor: btree::Cursor,
    done: bool,
}

/// Object-safe page reading so one `Range` type serves both transaction kinds.
trait PageReadDyn {
    fn next_entry(&self, cursor: &mut btree::Cursor) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
    fn visit_n(
        &self,
        cursor: &mut btree::Cursor,
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize>;
}

impl<T: PageRead> PageReadDyn for T {
    fn next_entry(&self, cursor: &mut btree::Cursor) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        cursor.next(self)
    }
    fn visit_n(
        &self,
        cursor: &mut btree::Cursor,
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        cursor.visit_n(self, count_max, visit)
    }
}

impl<'a> Range<'a> {
    pub(crate) fn new<T: PageRead>(
        src: &'a T,
        t: Table,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> Range<'a> {
        let own = |b: Bound<&[u8]>| b.map(<[u8]>::to_vec);
        let cursor = btree::Cursor::new(t.root(), own(lower), own(upper), reverse);
        Range {
            src,
            cursor,
            done: false,
        }
    }
}

impl Range<'_> {
    /// Calls `visit` with up to `count_max` entries, in order, borrowing each key and value
    /// from its page instead of copying it. Returns how many entries were visited.
    ///
    /// # Errors
    /// I/O errors and corruption; the range is finished after an error.
    pub fn visit(
        &mut self,
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        if self.done {
            return Ok(0);
        }
        let result = self.src.visit_n(&mut self.cursor, count_max, visit);
        if !matches!(result, Ok(n) if n == count_max) {
            self.done = true;
        }
        result
    }
}

impl Iterator for Range<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.src.next_entry(&mut self.cursor) {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
