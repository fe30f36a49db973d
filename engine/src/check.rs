//! The integrity check: every table, every page, the free list, and page accounting.

use crate::btree;
use crate::catalog::CATALOG_ROOT;
use crate::error::{Error, Result};
use crate::freelist;
use crate::page::{PageKind, PageNo, PageRead};
use crate::txn::ReadTxn;

/// Problems listed in a report stop here; a badly damaged file would otherwise list millions.
const PROBLEMS_MAX: usize = 100;

/// What the integrity check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Pages in the database, meta page included.
    pub pages_total: u64,
    /// Pages on the free list (trunks included).
    pub pages_free: u64,
    /// Trunk pages of the free list (each lists up to a page's worth of free pages).
    pub free_trunks: u64,
    /// Every table with its entry count, by name.
    pub tables: Vec<(String, u64)>,
    /// Entries over all tables.
    pub entries: u64,
    /// Damage found, at most 100 lines. Empty means the database is sound.
    pub problems: Vec<String>,
}

impl IntegrityReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < PROBLEMS_MAX {
            self.problems.push(p);
        }
    }
}

/// Marks pages seen; a page seen twice or never is a problem.
struct Seen {
    bits: Vec<u64>,
    page_count: u32,
}

impl Seen {
    fn mark(&mut self, no: PageNo, what: &str) -> Result<()> {
        if no == 0 || no >= self.page_count {
            return Err(Error::page(
                no,
                format!("{what} page out of range 1..{}", self.page_count),
            ));
        }
        let (word, bit) = ((no / 64) as usize, no % 64);
        if self.bits[word] & (1 << bit) != 0 {
            return Err(Error::page(no, format!("{what} page used twice")));
        }
        self.bits[word] |= 1 << bit;
        Ok(())
    }
}

pub(crate) fn run(tx: &ReadTxn) -> Result<crate::IntegrityReport> {
    let mut report = IntegrityReport::default();
    let meta = match tx.meta() {
        Ok(m) => m,
        Err(e) if e.is_corruption() => {
            report.problem(format!("meta: {e}"));
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    report.pages_total = u64::from(meta.page_count);
    let words = (meta.page_count as usize).div_ceil(64);
    let mut seen = Seen {
        bits: vec![0; words],
        page_count: meta.page_count,
    };
    seen.bits[0] |= 1; // the meta page
    check_tree(tx, &mut seen, &mut report, "catalog", CATALOG_ROOT);
    match tx.tables() {
        Ok(tables) => {
            for (name, table) in tables {
                let entries = check_tree(tx, &mut seen, &mut report, &name, table.root());
                report.entries += entries;
                report.tables.push((name, entries));
            }
        }
        Err(e) => report.problem(format!("catalog listing: {e}")),
    }
    check_free_list(tx, &meta, &mut seen, &mut report);
    let leaked: Vec<PageNo> = (1..meta.page_count)
        .filter(|&p| seen.bits[(p / 64) as usize] & (1 << (p % 64)) == 0)
        .collect();
    if !leaked.is_empty() {
        let first: Vec<String> = leaked.iter().take(10).map(ToString::to_string).collect();
        report.problem(format!(
            "{} pages leaked (neither used nor free): {}",
            leaked.len(),
            first.join(", ")
        ));
    }
    debug_assert!(report.problems.len() <= PROBLEMS_MAX);
    Ok(report)
}

fn check_tree(
    tx: &impl PageRead,
    seen: &mut Seen,
    report: &mut IntegrityReport,
    name: &str,
    root: PageNo,
) -> u64 {
    let mut visit = |no: PageNo, _kind: PageKind| seen.mark(no, name);
    match btree::check(tx, root, &mut visit) {
        Ok(stats) => stats.entries,
        Err(e) => {
            report.problem(format!("table {name:?}: {e}"));
            0
        }
    }
}

fn check_free_list(
    tx: &ReadTxn,
    meta: &crate::meta::Meta,
    seen: &mut Seen,
    report: &mut IntegrityReport,
) {
    let mut trunk = meta.free_head;
    let mut count = 0u64;
    // Every trunk is itself a free page, so a chain longer than the page count is a cycle.
    for _ in 0..meta.page_count {
        if trunk == 0 {
            break;
        }
        let result = (|| -> Result<PageNo> {
            seen.mark(trunk, "free list trunk")?;
            let body = tx.page(trunk)?;
            let (next, _) = freelist::read_trunk(&body, trunk, meta)?;
            for p in freelist::trunk_entries(&body, trunk, meta)? {
                seen.mark(p, "free")?;
                count += 1;
            }
            Ok(next)
        })();
        count += 1;
        report.free_trunks += 1;
        match result {
            Ok(next) => trunk = next,
            Err(e) => {
                report.problem(format!("free list: {e}"));
                break;
            }
        }
    }
    report.pages_free = count;
    if count != u64::from(meta.free_count) {
        report.problem(format!(
            "free list holds {count} pages, meta says {}",
            meta.free_count
        ));
    }
}
