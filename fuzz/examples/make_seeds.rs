//! Writes the committed seed corpora under fuzz/corpus/<target>/seed-*: real pages and WAL
//! files from small databases built deterministically, the scenario files, and pseudo-random
//! inputs for the structured targets. Run from the repository root:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//!
//! Existing seeds with the same names are overwritten; seeds kept from crashes (other names)
//! are left alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::fuzzing as fz;
use engine::{Database, MemStorage, Options, Storage};

/// Pseudo-random seeds per structured target, and their sizes in bytes.
const RANDOM_SEED_BYTES: [usize; 4] = [32, 128, 512, 2048];
/// Scenario files copied as seeds: enough to cover every section kind, few enough to keep
/// the corpus small.
const SCENARIOS_MAX: usize = 12;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let root = PathBuf::from("fuzz/corpus");
    let (main, wal) = small_database()?;
    wal_seeds(&root.join("wal_decode"), &wal)?;
    page_seeds(&root.join("page_decode"), &main)?;
    for t in ["btree_ops", "open_damaged", "crash_schedule", "wal_decode"] {
        random_seeds(&root.join(t), t)?;
    }
    scenario_seeds(&root.join("scenario_parse"))?;
    println!("seeds written under {}", root.display());
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    Ok(())
}

/// A database with two tables and an overflow value, its last commits still in the WAL.
fn small_database() -> Res<(Vec<u8>, Vec<u8>)> {
    let storage = MemStorage::new();
    let opts = Options {
        salt_seed: Some(42),
        checkpoint_in_background: false,
        ..Options::default()
    };
    let db = Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts)?;
    let mut tx = db.begin_write()?;
    let a = tx.create_table("alpha")?;
    let b = tx.create_table("beta")?;
    for i in 0..60u32 {
        tx.put(
            &a,
            format!("k{i:05}").as_bytes(),
            &vec![i as u8; (i as usize * 13) % 200],
        )?;
    }
    tx.put(&b, b"big", &vec![7u8; 9000])?;
    tx.commit()?;
    db.checkpoint()?;
    let mut tx = db.begin_write()?;
    tx.put(&a, b"k00001", b"changed")?;
    tx.delete(&a, b"k00002")?;
    tx.commit()?;
    let main = storage.snapshot("db").ok_or("no main file")?;
    let wal = storage.snapshot("db-wal").ok_or("no wal")?;
    Ok((main, wal))
}

fn wal_seeds(dir: &Path, wal: &[u8]) -> Res<()> {
    let frame = fz::FRAME_HEADER_LEN + 4096;
    write(
        dir,
        "real-wal",
        &wal[..wal.len().min(fz::WAL_HEADER_LEN + 3 * frame)],
    )?;
    write(dir, "header-only", &wal[..fz::WAL_HEADER_LEN])?;
    Ok(())
}

/// page_decode input: [page count][key count] (len, key)* then the pages.
fn page_input(pages: &[Vec<u8>], keys: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![(pages.len() - 1) as u8, keys.len() as u8];
    for k in keys {
        out.push(k.len() as u8);
        out.extend_from_slice(k);
    }
    for p in pages {
        out.extend_from_slice(p);
    }
    out
}

fn page_seeds(dir: &Path, main: &[u8]) -> Res<()> {
    let keys: [&[u8]; 3] = [b"key010", b"key999", b"a"];
    let small: Vec<(Vec<u8>, Vec<u8>)> = (0..40u32)
        .map(|i| {
            (
                format!("key{i:03}").into_bytes(),
                vec![i as u8; (i as usize * 37) % 300],
            )
        })
        .collect();
    write(
        dir,
        "tree-leaves",
        &page_input(&fz::build_tree_pages(4096, &small)?, &keys),
    )?;
    let big = vec![
        (b"big".to_vec(), vec![9u8; 6000]),
        (b"small".to_vec(), b"v".to_vec()),
    ];
    write(
        dir,
        "tree-overflow",
        &page_input(&fz::build_tree_pages(4096, &big)?, &keys),
    )?;
    let root_leaf = fz::build_tree_pages(4096, &small[..5])?;
    write(dir, "tree-one-leaf", &page_input(&root_leaf, &keys))?;
    // The main file's first pages: the meta page, then the catalog.
    let pages: Vec<Vec<u8>> = main.chunks(4096).take(3).map(<[u8]>::to_vec).collect();
    write(dir, "main-file-head", &page_input(&pages, &keys))?;
    Ok(())
}

/// Bytes from a fixed xorshift stream, distinct per target.
fn random_seeds(dir: &Path, target: &str) -> Res<()> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ target.len() as u64;
    for (i, len) in RANDOM_SEED_BYTES.iter().enumerate() {
        let bytes: Vec<u8> = (0..*len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        write(dir, &format!("random-{i}"), &bytes)?;
    }
    Ok(())
}

fn scenario_seeds(dir: &Path) -> Res<()> {
    let mut files = Vec::new();
    collect_toml(Path::new("scenarios"), &mut files)?;
    files.sort();
    for f in files.iter().take(SCENARIOS_MAX) {
        let name = f
            .strip_prefix("scenarios")?
            .to_string_lossy()
            .trim_start_matches('/')
            .replace(['/', '.'], "-");
        write(dir, &name, &std::fs::read(f)?)?;
    }
    if let Some(f) = files.first() {
        let mut with_overrides = std::fs::read(f)?;
        with_overrides.extend_from_slice(b"\0threads=2\nrun.ops=10\nworkload.keys=100\n");
        write(dir, "with-overrides", &with_overrides)?;
    }
    Ok(())
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> Res<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}
