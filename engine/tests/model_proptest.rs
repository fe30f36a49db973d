//! State-machine property test: random operation sequences against a `BTreeMap` model,
//! with commit, rollback, reopen, checkpoint and crash images (a copy of the files taken
//! mid-transaction, as a kill -9 would leave them).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use engine::{Database, MemStorage, Options, Storage, Table, WriteTxn};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u16, u16),
    Delete(u16),
    Get(u16),
    Scan(u16, u16, bool),
    Commit,
    Rollback,
    Reopen,
    Checkpoint,
    CrashImage,
}

fn op() -> impl Strategy<Value = Op> {
    // A small key space forces overwrites and deletes of existing keys.
    let key = 0u16..600;
    prop_oneof![
        40 => (key.clone(), any::<u16>()).prop_map(|(k, v)| Op::Put(k, v)),
        15 => key.clone().prop_map(Op::Delete),
        10 => key.clone().prop_map(Op::Get),
        5 => (key.clone(), key, any::<bool>()).prop_map(|(a, b, r)| Op::Scan(a, b, r)),
        8 => Just(Op::Commit),
        3 => Just(Op::Rollback),
        2 => Just(Op::Reopen),
        2 => Just(Op::Checkpoint),
        2 => Just(Op::CrashImage),
    ]
}

fn key(k: u16) -> Vec<u8> {
    format!("k{k:05}").into_bytes()
}

/// Values of varied size, some large enough for overflow pages.
fn value(k: u16, v: u16) -> Vec<u8> {
    let len = match v % 16 {
        0 => 3000 + usize::from(v % 7) * 1000,
        1..=3 => 0,
        _ => usize::from(v % 300),
    };
    let mut out = format!("{k}:{v}:").into_bytes();
    out.resize(out.len() + len, (v % 251) as u8);
    out
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

struct Sut {
    storage: MemStorage,
    db: Database,
    table: Table,
    tx: Option<WriteTxn>,
}

fn opts() -> Options {
    // A tiny cache and checkpoint threshold exercise eviction and auto-checkpoints.
    Options {
        cache_bytes_max: 64 << 10,
        wal_checkpoint_bytes: 128 << 10,
        // Crash images are cut between operations: no thread may write meanwhile.
        checkpoint_in_background: false,
        ..Options::default()
    }
}

impl Sut {
    fn open(storage: MemStorage) -> engine::Result<Sut> {
        let db = Database::open_with(Arc::new(storage.clone()) as Arc<dyn Storage>, "db", opts())?;
        let mut tx = db.begin_write()?;
        let table = tx.open_or_create_table("t")?;
        tx.commit()?;
        Ok(Sut {
            storage,
            db,
            table,
            tx: None,
        })
    }

    fn tx(&mut self) -> engine::Result<&mut WriteTxn> {
        if self.tx.is_none() {
            self.tx = Some(self.db.begin_write()?);
        }
        self.tx.as_mut().ok_or(engine::Error::TransactionClosed)
    }
}

fn check_all(db: &Database, table: &Table, model: &Model) -> Result<(), TestCaseError> {
    let r = db.begin_read().map_err(err)?;
    let all: Vec<(Vec<u8>, Vec<u8>)> = r
        .range(table, Bound::Unbounded, Bound::Unbounded, false)
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let expected: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
    prop_assert_eq!(all, expected);
    let report = db.check_integrity().map_err(err)?;
    prop_assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

fn err(e: engine::Error) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn step(
    sut: &mut Sut,
    committed: &mut Model,
    pending: &mut Model,
    op: &Op,
) -> Result<(), TestCaseError> {
    match *op {
        Op::Put(k, v) => {
            let t = sut.table;
            sut.tx()
                .map_err(err)?
                .put(&t, &key(k), &value(k, v))
                .map_err(err)?;
            pending.insert(key(k), value(k, v));
        }
        Op::Delete(k) => {
            let t = sut.table;
            let existed = sut.tx().map_err(err)?.delete(&t, &key(k)).map_err(err)?;
            prop_assert_eq!(existed, pending.remove(&key(k)).is_some());
        }
        Op::Get(k) => {
            let got = match &sut.tx {
                Some(tx) => tx.get(&sut.table, &key(k)).map_err(err)?,
                None => sut
                    .db
                    .begin_read()
                    .map_err(err)?
                    .get(&sut.table, &key(k))
                    .map_err(err)?,
            };
            prop_assert_eq!(got.as_ref(), pending.get(&key(k)));
        }
        Op::Scan(a, b, rev) => {
            let (lo, hi) = (key(a.min(b)), key(a.max(b)));
            let r = sut.db.begin_read().map_err(err)?;
            let got: Vec<_> = r
                .range(
                    &sut.table,
                    Bound::Included(&lo[..]),
                    Bound::Excluded(&hi[..]),
                    rev,
                )
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut want: Vec<_> = committed
                .range(lo..hi)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if rev {
                want.reverse();
            }
            prop_assert_eq!(got, want);
        }
        Op::Commit => {
            if let Some(tx) = sut.tx.take() {
                tx.commit().map_err(err)?;
            }
            *committed = pending.clone();
        }
        Op::Rollback => {
            sut.tx = None;
            *pending = committed.clone();
            check_all(&sut.db, &sut.table, committed)?;
        }
        Op::Reopen => {
            sut.tx = None;
            *pending = committed.clone();
            let storage = sut.storage.clone();
            *sut = Sut::open(storage).map_err(err)?;
            check_all(&sut.db, &sut.table, committed)?;
        }
        Op::Checkpoint => {
            if sut.tx.is_none() {
                sut.db.checkpoint().map_err(err)?;
            }
        }
        Op::CrashImage => {
            // The files as a kill -9 right now would leave them: committed state only.
            let image = sut.storage.deep_clone();
            let crashed = Sut::open(image).map_err(err)?;
            check_all(&crashed.db, &crashed.table, committed)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_btreemap_model(ops in proptest::collection::vec(op(), 1..300)) {
        let mut sut = Sut::open(MemStorage::new()).map_err(err)?;
        let mut committed = Model::new();
        let mut pending = Model::new();
        for op in &ops {
            step(&mut sut, &mut committed, &mut pending, op)?;
        }
        sut.tx = None;
        check_all(&sut.db, &sut.table, &committed)?;
    }
}
