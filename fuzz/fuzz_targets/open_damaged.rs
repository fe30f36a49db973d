//! Damaged files: a small valid database (built once, deterministically: a checkpointed main
//! file plus a WAL holding later commits and stale frames of an older generation) gets
//! arbitrary mutations of its main file and WAL, then is opened, read in full and checked.
//!
//! Every outcome must be an error (`Corruption` or I/O) or data equal to one of the states
//! the database went through at or after its checkpoint (damage at the end of the WAL can
//! drop a suffix of commits silently: a torn tail looks the same). Data equal to no such
//! state, without an error, is a finding: the mutations here cannot forge a CRC32C. The one
//! exception is `Reseal`, which forges a page checksum on purpose to feed structurally
//! hostile pages to the engine; after it only panics, hangs and wild allocations count.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use engine::{Database, Durability, Error, MemStorage, Options, Storage};
use engine_fuzz::{read_table, Model};
use libfuzzer_sys::fuzz_target;

/// Mutations per input: a few are enough to reach any combination of damaged structures.
const MUTATIONS_MAX: usize = 8;
/// Bytes one Extend or Zero or Copy touches: two 4 KiB pages and a frame header.
const SPAN_BYTES_MAX: usize = 8192 + 48;
const PAGE_SIZE: usize = 4096;
const FRAME_BYTES: usize = 48 + PAGE_SIZE;
const TABLES: [&str; 2] = ["alpha", "beta"];

#[derive(Arbitrary, Debug)]
enum Mutation {
    SetByte {
        wal: bool,
        at: u32,
        value: u8,
    },
    FlipBit {
        wal: bool,
        at: u32,
        bit: u8,
    },
    Truncate {
        wal: bool,
        at: u32,
    },
    Extend {
        wal: bool,
        len: u16,
        fill: u8,
    },
    Zero {
        wal: bool,
        at: u32,
        len: u16,
    },
    /// Bytes copied within one file (a misdirected write of real content).
    Copy {
        wal: bool,
        from: u32,
        to: u32,
        len: u16,
    },
    /// A whole page or frame copied over another one of the same file.
    CopyUnit {
        wal: bool,
        from: u8,
        to: u8,
    },
    /// Forge the checksum of main-file page `page` after other damage (hostile mode).
    Reseal {
        page: u8,
    },
}

/// The database before damage and every state it went through.
struct Base {
    main: Vec<u8>,
    wal: Vec<u8>,
    /// Table contents after each commit, oldest first.
    history: Vec<Vec<Model>>,
    /// The first state the files may show: the one checkpointed into the main file.
    floor: usize,
}

fn opts() -> Options {
    Options {
        cache_bytes_max: 64 << 10,
        wal_checkpoint_bytes: 64 << 20,
        checkpoint_in_background: false,
        durability: Durability::Full,
        salt_seed: Some(0xDA3A6E),
        ..Options::default()
    }
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| match build() {
        Ok(b) => b,
        Err(e) => panic!("building the base database failed: {e}"),
    })
}

/// Commits before the checkpoint are large (overflow values: many frames), commits after it
/// small, so the WAL keeps stale frames of the old generation past its live end.
fn build() -> engine::Result<Base> {
    let storage = MemStorage::new();
    let db = Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts())?;
    let mut tx = db.begin_write()?;
    let tables: Vec<_> = TABLES
        .iter()
        .map(|n| tx.create_table(n))
        .collect::<Result<_, _>>()?;
    tx.commit()?;
    let mut state = vec![Model::new(); TABLES.len()];
    let mut history = vec![state.clone()];
    let mut floor = 0;
    for round in 0u32..8 {
        let mut tx = db.begin_write()?;
        for i in 0..12u32 {
            let t = ((i + round) % 2) as usize;
            let key = format!("key{:03}", (i * 7 + round * 3) % 40).into_bytes();
            let len = if round < 3 {
                [10, 900, 5000, 40][(i % 4) as usize]
            } else {
                20 + (i as usize) * 3
            };
            if round >= 5 && i % 3 == 0 {
                tx.delete(&tables[t], &key)?;
                state[t].remove(&key);
                continue;
            }
            let value = vec![(round * 16 + i) as u8; len];
            tx.put(&tables[t], &key, &value)?;
            state[t].insert(key, value);
        }
        tx.commit()?;
        history.push(state.clone());
        if round == 2 {
            db.checkpoint()?;
            floor = history.len() - 1;
        }
    }
    let main = storage.snapshot("db").unwrap_or_default();
    let wal = storage.snapshot("db-wal").unwrap_or_default();
    drop(db);
    assert!(wal.len() > 64 + 8 * FRAME_BYTES, "the WAL must hold frames");
    Ok(Base {
        main,
        wal,
        history,
        floor,
    })
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let mut u = Unstructured::new(data);
    let (mut main, mut wal) = (base.main.clone(), base.wal.clone());
    let mut forged = false;
    for _ in 0..MUTATIONS_MAX {
        if u.is_empty() {
            break;
        }
        let Ok(m) = Mutation::arbitrary(&mut u) else {
            break;
        };
        if std::env::var_os("FUZZ_DEBUG").is_some() {
            eprintln!("{m:?}");
        }
        forged |= apply(&m, &mut main, &mut wal);
    }
    // Both files gone is a new, empty database, indistinguishable from a first open.
    let vanished = main.is_empty() && wal.is_empty();
    let storage = MemStorage::new();
    storage.put("db", main);
    storage.put("db-wal", wal);
    check(base, &storage, forged || vanished);
});

/// Applies `m`; true when it forged a checksum.
fn apply(m: &Mutation, main: &mut Vec<u8>, wal: &mut Vec<u8>) -> bool {
    if let Mutation::Reseal { page } = *m {
        return reseal(main, page);
    }
    let f: &mut Vec<u8> = if m_wal(m) { wal } else { main };
    let len = f.len();
    let at = |x: u32| if len == 0 { 0 } else { x as usize % len };
    match *m {
        Mutation::SetByte { at: a, value, .. } if len > 0 => f[at(a)] = value,
        Mutation::FlipBit { at: a, bit, .. } if len > 0 => f[at(a)] ^= 1 << (bit % 8),
        Mutation::Truncate { at: a, .. } => {
            f.truncate(if len == 0 { 0 } else { a as usize % (len + 1) })
        }
        Mutation::Extend { len: n, fill, .. } => {
            f.resize(len + usize::from(n) % SPAN_BYTES_MAX, fill)
        }
        Mutation::Zero { at: a, len: n, .. } if len > 0 => {
            let start = at(a);
            let end = (start + usize::from(n) % SPAN_BYTES_MAX).min(len);
            f[start..end].fill(0);
        }
        Mutation::Copy {
            from, to, len: n, ..
        } if len > 0 => {
            let (from, to) = (at(from), at(to));
            let n = (usize::from(n) % SPAN_BYTES_MAX)
                .min(len - from)
                .min(len - to);
            f.copy_within(from..from + n, to);
        }
        Mutation::CopyUnit { wal: w, from, to } => {
            let (head, unit) = if w { (64, FRAME_BYTES) } else { (0, PAGE_SIZE) };
            let units = len.saturating_sub(head) / unit;
            if units > 0 {
                let from = head + usize::from(from) % units * unit;
                let to = head + usize::from(to) % units * unit;
                f.copy_within(from..from + unit, to);
            }
        }
        _ => {}
    }
    false
}

/// Forges the checksum of main-file page `page` (mod the page count); true when it did.
fn reseal(main: &mut [u8], page: u8) -> bool {
    let pages = main.len() / PAGE_SIZE;
    if pages == 0 {
        return false;
    }
    let no = usize::from(page) % pages;
    let bytes = &mut main[no * PAGE_SIZE..(no + 1) * PAGE_SIZE];
    let txn = engine::fuzzing::page_txn_id(bytes).unwrap_or(0);
    engine::fuzzing::seal_page(bytes, no as u32, txn).is_ok()
}

fn m_wal(m: &Mutation) -> bool {
    match *m {
        Mutation::SetByte { wal, .. }
        | Mutation::FlipBit { wal, .. }
        | Mutation::Truncate { wal, .. }
        | Mutation::Extend { wal, .. }
        | Mutation::Zero { wal, .. }
        | Mutation::Copy { wal, .. }
        | Mutation::CopyUnit { wal, .. } => wal,
        Mutation::Reseal { .. } => false,
    }
}

/// An error the engine may return for a damaged file.
fn acceptable(e: &Error) -> bool {
    matches!(e, Error::Corruption { .. } | Error::Io { .. })
}

/// Opens, reads everything, runs the integrity check, and judges the outcome.
fn check(base: &Base, storage: &MemStorage, forged: bool) {
    let db = match Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts())
    {
        Ok(db) => db,
        Err(e) => {
            assert!(
                forged || acceptable(&e),
                "open failed with an unexpected error: {e}"
            );
            return;
        }
    };
    let read = read_all(&db);
    let report = db.check_integrity();
    if forged {
        return;
    }
    match &read {
        Ok(state) => {
            let k = base.history.iter().rposition(|s| s == state);
            assert!(
                k.is_some_and(|k| k >= base.floor),
                "read a state that never existed at or after the checkpoint (matches {k:?}, floor {})",
                base.floor
            );
        }
        Err(e) => assert!(acceptable(e), "read failed with an unexpected error: {e}"),
    }
    match report {
        Ok(r) => {
            // Damage a read ran into must show in the check too.
            let read_hit_corruption = matches!(&read, Err(e) if e.is_corruption());
            assert!(
                !read_hit_corruption || !r.is_ok(),
                "reads found corruption, the check found none: {read:?}"
            );
        }
        Err(e) => assert!(
            acceptable(&e),
            "check_integrity failed with an unexpected error: {e}"
        ),
    }
}

fn read_all(db: &Database) -> engine::Result<Vec<Model>> {
    let r = db.begin_read()?;
    let mut out = Vec::with_capacity(TABLES.len());
    for name in TABLES {
        let table = r.table(name)?;
        out.push(read_table(&r, &table)?);
    }
    Ok(out)
}
