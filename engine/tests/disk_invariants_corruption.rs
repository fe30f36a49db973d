//! On-disk invariants checked in release builds: a file whose pages pass their checksums
//! but break an invariant (a forged checksum, as a hostile file or a buggy writer would
//! leave) is `Error::Corruption`, never a panic, and never data read from a stale page.
//! Each test damages one field the way nothing else would catch.

use std::sync::Arc;

use engine::{Database, Error, MemStorage, Options, Storage};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PS: usize = 4096;
/// The page header before the body: CRC32C, page number, transaction id.
const HEADER: usize = 16;

fn open(storage: &MemStorage) -> engine::Result<Database> {
    let opts = Options {
        salt_seed: Some(0x5EED),
        checkpoint_in_background: false,
        ..Options::default()
    };
    Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts)
}

/// CRC32C (Castagnoli), bitwise, to forge a page checksum.
fn crc32c(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &byte in b {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Edits page `no` of the closed database's main file with `f` and reseals its checksum.
fn forge(storage: &MemStorage, no: usize, f: impl FnOnce(&mut [u8])) -> TestResult {
    let mut main = storage.snapshot("db").ok_or("no main file")?;
    let page = main
        .get_mut(no * PS..(no + 1) * PS)
        .ok_or("page past the file")?;
    f(page);
    let crc = crc32c(&page[4..]);
    page[0..4].copy_from_slice(&crc.to_le_bytes());
    storage.put("db", main);
    storage.put("db-wal", Vec::new());
    Ok(())
}

/// Sets the meta page's u32 field at body offset `at` (page count 16, free head 20, free
/// count 24, catalog root 28).
fn set_meta_u32(storage: &MemStorage, at: usize, v: u32) -> TestResult {
    forge(storage, 0, |p| {
        p[HEADER + at..HEADER + at + 4].copy_from_slice(&v.to_le_bytes());
    })
}

fn expect_corruption<T>(what: &str, r: engine::Result<T>) -> TestResult {
    match r {
        Err(Error::Corruption { .. }) => Ok(()),
        Err(e) => Err(format!("{what}: expected corruption, got {e}").into()),
        Ok(_) => Err(format!("{what}: no error").into()),
    }
}

/// A table "tbl" (root page 2) of `n` entries with `value_len`-byte values, checkpointed
/// into the main file.
fn table_of(storage: &MemStorage, n: u32, value_len: usize) -> TestResult {
    let db = open(storage)?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("tbl")?;
    for i in 0..n {
        tx.put(&t, &i.to_be_bytes(), &vec![i as u8; value_len])?;
    }
    tx.commit()?;
    db.close()?;
    Ok(())
}

/// Meta field: the catalog is page 1, and a meta page naming another root was accepted
/// and then ignored (every reader took page 1).
#[test]
fn meta_page_naming_another_catalog_root_is_corruption() -> TestResult {
    let storage = MemStorage::new();
    table_of(&storage, 1, 8)?;
    set_meta_u32(&storage, 28, 2)?;
    expect_corruption("catalog root 2", open(&storage))
}

/// Node bounds: a child pointer at or past the page count read whatever stale page the
/// file still held there. Here the meta page's count is cut below the tree's leaves.
#[test]
fn child_pointer_past_the_page_count_is_corruption() -> TestResult {
    let storage = MemStorage::new();
    table_of(&storage, 400, 100)?;
    set_meta_u32(&storage, 16, 4)?;
    let db = open(&storage)?;
    let r = db.begin_read()?;
    let t = r.table("tbl")?;
    let mut corrupt = 0;
    for i in 0..400u32 {
        match r.get(&t, &i.to_be_bytes()) {
            Err(Error::Corruption { .. }) => corrupt += 1,
            Err(e) => return Err(format!("key {i}: expected corruption, got {e}").into()),
            Ok(_) => {}
        }
    }
    if corrupt == 0 {
        return Err("every key read through pages past the page count".into());
    }
    Ok(())
}

/// Overflow chains: a chain running past the page count is damage, not a value.
#[test]
fn overflow_chain_past_the_page_count_is_corruption() -> TestResult {
    let storage = MemStorage::new();
    // One 20 000-byte value: leaf root 2, its chain on pages 3 to 7.
    table_of(&storage, 1, 20_000)?;
    set_meta_u32(&storage, 16, 5)?;
    let db = open(&storage)?;
    let r = db.begin_read()?;
    let t = r.table("tbl")?;
    expect_corruption("overflow chain", r.get(&t, &0u32.to_be_bytes()))
}

/// Free-list ranges: a free-list head past the page count.
#[test]
fn free_list_head_past_the_page_count_is_corruption() -> TestResult {
    let storage = MemStorage::new();
    table_of(&storage, 1, 8)?;
    // Page count 3 (meta, catalog, the table's root), free head 3 with one free page.
    set_meta_u32(&storage, 20, 3)?;
    set_meta_u32(&storage, 24, 1)?;
    expect_corruption("free head 3 of 3 pages", open(&storage))
}

/// Catalog entries: a table whose root is the meta or catalog page would have its tree
/// writes land on them.
#[test]
fn table_root_naming_the_catalog_page_is_corruption() -> TestResult {
    let storage = MemStorage::new();
    table_of(&storage, 1, 8)?;
    forge(&storage, 1, |p| {
        let at = p.windows(7).position(|w| w == b"tbl\x02\x00\x00\x00");
        if let Some(at) = at {
            p[at + 3] = 1;
        }
    })?;
    let db = open(&storage)?;
    let r = db.begin_read()?;
    expect_corruption("table root 1", r.table("tbl"))?;
    let mut tx = db.begin_write()?;
    expect_corruption("table root 1 in a write", tx.open_or_create_table("tbl"))
}
