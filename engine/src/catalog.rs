//! The catalog: named tables and their root pages, kept in a B+tree rooted at page 1.
//!
//! Transactions read it (`lookup`, `list`) and the write transaction changes it (`create`,
//! `drop`); a new database starts from [`bootstrap_image`]. Catalog values are the table's
//! root page, little-endian.

use std::ops::Bound;

use crate::btree;
use crate::cache::IntMap;
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::page::{PageBuf, PageNo, PageRead, PageRef, PageWrite, PAGE_HEADER_LEN};
use crate::storage::StorageFile;
use crate::TABLE_NAME_BYTES_MAX;

pub(crate) use crate::meta::CATALOG_ROOT;

/// A handle to a table: cheap to copy, valid in any transaction until the table is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    root: PageNo,
}

impl Table {
    pub(crate) fn root(self) -> PageNo {
        self.root
    }
}

/// The table `name` as `tx` sees it.
pub(crate) fn lookup(tx: &impl PageRead, name: &str) -> Result<Table> {
    let value = btree::get(tx, CATALOG_ROOT, name.as_bytes())?;
    let value = value.ok_or_else(|| Error::TableNotFound {
        name: name.to_string(),
    })?;
    decode_root(&value)
}

/// Names and handles of every table, sorted by name.
pub(crate) fn list(tx: &impl PageRead) -> Result<Vec<(String, Table)>> {
    let mut cursor = btree::Cursor::new(CATALOG_ROOT, Bound::Unbounded, Bound::Unbounded, false);
    let mut out = Vec::new();
    while let Some((k, v)) = cursor.next(tx)? {
        let name =
            String::from_utf8(k).map_err(|_| Error::page(CATALOG_ROOT, "table name not UTF-8"))?;
        out.push((name, decode_root(&v)?));
    }
    Ok(out)
}

/// A root read from a catalog value: four bytes naming a page past the catalog's own.
fn decode_root(value: &[u8]) -> Result<Table> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| {
        Error::page(
            CATALOG_ROOT,
            format!("catalog value of {} bytes", value.len()),
        )
    })?;
    let root = u32::from_le_bytes(bytes);
    if root <= CATALOG_ROOT {
        let detail = format!("table root {root} is the meta or catalog page");
        return Err(Error::page(CATALOG_ROOT, detail));
    }
    Ok(Table { root })
}

/// Refuses an empty or too long table name.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > TABLE_NAME_BYTES_MAX {
        let detail = format!(
            "table name of {} bytes (1..={TABLE_NAME_BYTES_MAX})",
            name.len()
        );
        return Err(Error::InvalidArgument { detail });
    }
    Ok(())
}

/// Creates the table `name` in `tx`: a new empty tree and its catalog entry.
pub(crate) fn create(tx: &mut impl PageWrite, name: &str) -> Result<Table> {
    check_name(name)?;
    match lookup(tx, name) {
        Ok(_) => {
            return Err(Error::TableExists {
                name: name.to_string(),
            })
        }
        Err(Error::TableNotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let root = btree::create(tx)?;
    // Checked before the write as `decode_root` checks it after the read.
    assert!(root > CATALOG_ROOT, "a table root is past the catalog");
    btree::insert(tx, CATALOG_ROOT, name.as_bytes(), &root.to_le_bytes())?;
    Ok(Table { root })
}

/// Drops `table` (named `name`) in `tx`: frees its pages and removes its catalog entry.
pub(crate) fn drop(tx: &mut impl PageWrite, name: &str, table: Table) -> Result<()> {
    btree::destroy(tx, table.root)?;
    btree::delete(tx, CATALOG_ROOT, name.as_bytes())?;
    Ok(())
}

/// A page store for writing a new database's first pages.
struct Bootstrap {
    pages: IntMap<PageNo, PageBuf>,
    meta: Meta,
}

impl PageRead for Bootstrap {
    fn body_len(&self) -> usize {
        self.meta.page_size as usize - PAGE_HEADER_LEN
    }
    fn page(&self, no: PageNo) -> Result<PageRef> {
        self.pages
            .get(&no)
            .map(|p| PageRef(p.clone()))
            .ok_or_else(|| Error::page(no, "bootstrap"))
    }
}

impl PageWrite for Bootstrap {
    fn page_mut(&mut self, no: PageNo) -> Result<&mut [u8]> {
        let page = self
            .pages
            .get_mut(&no)
            .ok_or_else(|| Error::page(no, "bootstrap"))?;
        Ok(page.body_mut())
    }
    fn allocate(&mut self) -> Result<PageNo> {
        let no = self.meta.page_count;
        self.meta.page_count += 1;
        self.pages
            .insert(no, PageBuf::zeroed(self.meta.page_size as usize));
        Ok(no)
    }
    fn free(&mut self, no: PageNo) -> Result<()> {
        Err(Error::page(no, "bootstrap never frees"))
    }
}

/// Writes a new, empty database (meta page and catalog root) and syncs it.
pub(crate) fn bootstrap(main: &dyn StorageFile, page_size: usize) -> Result<()> {
    let buf = bootstrap_image(page_size)?;
    main.write_at(&buf, 0).map_err(|e| Error::io("create", e))?;
    main.sync().map_err(|e| Error::io("create sync", e))
}

/// The bytes of a new, empty database: the meta page and the catalog root (deterministic for
/// a page size, so a creation interrupted part-way can be recognised by its prefix).
pub(crate) fn bootstrap_image(page_size: usize) -> Result<Vec<u8>> {
    let meta = Meta {
        page_size: page_size as u32,
        page_count: 1,
        free_head: 0,
        free_count: 0,
        catalog_root: CATALOG_ROOT,
        last_txn_id: 0,
        checkpointed_salt: 0,
    };
    let mut boot = Bootstrap {
        pages: IntMap::default(),
        meta,
    };
    let root = btree::create(&mut boot)?;
    assert_eq!(
        root, CATALOG_ROOT,
        "the catalog is the first page allocated"
    );
    let mut buf = boot.meta.to_page(0).bytes().to_vec();
    let mut catalog = boot
        .pages
        .remove(&root)
        .ok_or_else(|| Error::page(root, "bootstrap"))?;
    catalog.seal(root, 0);
    buf.extend_from_slice(catalog.bytes());
    Ok(buf)
}
