//! Operation sequences on a `Database` over `MemStorage` against a model (committed tables
//! plus the open transaction's pending tables). Any difference, any engine error, and any
//! integrity problem after a reopen is a panic.
//!
//! Covers put, delete, get and range (both directions, all bound kinds) inside and outside
//! the write transaction, commit, rollback, reopen (recovery from the WAL), explicit and
//! automatic checkpoints (a small threshold), and snapshot readers held across later
//! commits and checkpoints (MVCC).
#![no_main]

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use engine::{Database, Durability, MemStorage, Options, ReadTxn, Storage, Table, WriteTxn};
use engine_fuzz::{bound, model_range, read_table, KeySel, Model, ValueSel};
use libfuzzer_sys::fuzz_target;

/// Operations per input: enough for splits, merges and a checkpoint or two; each op is
/// microseconds, a reopen about a millisecond.
const OPS_MAX: usize = 256;
/// Tables: two, so the catalog holds several roots and pages interleave between trees.
const TABLES: [&str; 2] = ["alpha", "beta"];
/// Snapshot readers held at once.
const READERS_MAX: usize = 3;
/// Entries a range read may return: more than any model holds (OPS_MAX puts at most).
const RANGE_ENTRIES_MAX: usize = 4 * OPS_MAX;

#[derive(Arbitrary, Debug)]
enum Op {
    Put {
        table: bool,
        key: KeySel,
        value: ValueSel,
    },
    Delete {
        table: bool,
        key: KeySel,
    },
    Get {
        table: bool,
        key: KeySel,
    },
    Range {
        table: bool,
        lo: KeySel,
        hi: KeySel,
        flags: u8,
    },
    Commit,
    Rollback,
    Reopen,
    Checkpoint,
    BeginRead,
    CheckReads,
    EndRead,
}

struct Sut {
    storage: MemStorage,
    opts: Options,
    db: Option<Database>,
    tables: Vec<Table>,
    tx: Option<WriteTxn>,
    committed: Vec<Model>,
    pending: Option<Vec<Model>>,
    readers: Vec<(ReadTxn, Vec<Model>)>,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(off), Ok(big_pages)) = (bool::arbitrary(&mut u), bool::arbitrary(&mut u)) else {
        return;
    };
    let opts = Options {
        page_size: if big_pages { 8192 } else { 4096 },
        cache_bytes_max: 64 << 10,
        wal_checkpoint_bytes: 256 << 10,
        // Deterministic: an input must replay the same way.
        checkpoint_in_background: false,
        durability: if off {
            Durability::Off
        } else {
            Durability::Full
        },
        salt_seed: Some(0x5EED),
        seeded_bug: engine_fuzz::seeded_bug(),
        ..Options::default()
    };
    let mut sut = Sut::open(opts);
    let mut ops = 0;
    while ops < OPS_MAX && !u.is_empty() {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if std::env::var_os("FUZZ_DEBUG").is_some() {
            eprintln!("op {ops}: {op:?}");
        }
        sut.apply(&op);
        ops += 1;
    }
    sut.reopen();
});

fn must<T>(r: engine::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected engine error: {e}"),
    }
}

impl Sut {
    fn open(opts: Options) -> Sut {
        let storage = MemStorage::new();
        let db = must(
            Database::open_with(
                Arc::new(storage.clone()) as Arc<dyn Storage>,
                "db",
                opts.clone(),
            ),
            "create",
        );
        let mut tx = must(db.begin_write(), "begin");
        let tables = TABLES
            .iter()
            .map(|n| must(tx.create_table(n), "create table"))
            .collect();
        must(tx.commit(), "commit tables");
        let committed = vec![Model::new(); TABLES.len()];
        Sut {
            storage,
            opts,
            db: Some(db),
            tables,
            tx: None,
            committed,
            pending: None,
            readers: Vec::new(),
        }
    }

    fn db(&self) -> &Database {
        match &self.db {
            Some(db) => db,
            None => panic!("database closed"),
        }
    }

    fn begin(&mut self) {
        if self.tx.is_none() {
            self.tx = Some(must(self.db().begin_write(), "begin_write"));
            self.pending = Some(self.committed.clone());
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Put { table, key, value } => {
                let (t, k) = (usize::from(table), key.bytes());
                let v = value.bytes(&k);
                self.begin();
                if let (Some(tx), Some(p)) = (self.tx.as_mut(), self.pending.as_mut()) {
                    must(tx.put(&self.tables[t], &k, &v), "put");
                    p[t].insert(k, v);
                }
            }
            Op::Delete { table, key } => {
                let (t, k) = (usize::from(table), key.bytes());
                self.begin();
                if let (Some(tx), Some(p)) = (self.tx.as_mut(), self.pending.as_mut()) {
                    let existed = must(tx.delete(&self.tables[t], &k), "delete");
                    assert_eq!(
                        existed,
                        p[t].remove(&k).is_some(),
                        "delete's answer for {k:?}"
                    );
                }
            }
            Op::Get { table, key } => self.get(usize::from(table), &key.bytes()),
            Op::Range {
                table,
                lo,
                hi,
                flags,
            } => self.range(usize::from(table), &lo.bytes(), &hi.bytes(), flags),
            Op::Commit => self.commit(),
            Op::Rollback => {
                self.tx = None;
                self.pending = None;
            }
            Op::Reopen => self.reopen(),
            Op::Checkpoint => {
                // The writer lock is held by an open transaction: finish it first.
                self.commit();
                must(self.db().checkpoint(), "checkpoint");
            }
            Op::BeginRead => {
                if self.readers.len() < READERS_MAX {
                    let r = must(self.db().begin_read(), "begin_read");
                    self.readers.push((r, self.committed.clone()));
                }
            }
            Op::CheckReads => self.check_readers(),
            Op::EndRead => {
                self.readers.pop();
            }
        }
    }

    fn commit(&mut self) {
        if let (Some(tx), Some(p)) = (self.tx.take(), self.pending.take()) {
            must(tx.commit(), "commit");
            self.committed = p;
        }
    }

    fn get(&self, t: usize, k: &[u8]) {
        let (got, want) = match (&self.tx, &self.pending) {
            (Some(tx), Some(p)) => (must(tx.get(&self.tables[t], k), "tx get"), p[t].get(k)),
            _ => {
                let r = must(self.db().begin_read(), "begin_read");
                (
                    must(r.get(&self.tables[t], k), "get"),
                    self.committed[t].get(k),
                )
            }
        };
        assert_eq!(got.as_ref(), want, "get {k:?} in table {t}");
    }

    fn range(&self, t: usize, lo: &[u8], hi: &[u8], flags: u8) {
        let lower = bound(lo, flags & 1 != 0, flags & 2 != 0);
        let upper = bound(hi, flags & 4 != 0, flags & 8 != 0);
        let reverse = flags & 16 != 0;
        let table = &self.tables[t];
        let got: Vec<(Vec<u8>, Vec<u8>)> = match (&self.tx, &self.pending) {
            (Some(tx), Some(p)) => {
                let want = model_range(&p[t], lower, upper, reverse);
                let got = collect(must(tx.range(table, lower, upper, reverse), "tx range"));
                assert_eq!(got, want, "tx range in table {t}");
                return;
            }
            _ => {
                let r = must(self.db().begin_read(), "begin_read");
                collect(must(r.range(table, lower, upper, reverse), "range"))
            }
        };
        assert_eq!(
            got,
            model_range(&self.committed[t], lower, upper, reverse),
            "range in table {t}"
        );
    }

    fn check_readers(&self) {
        for (r, snapshot) in &self.readers {
            for (t, table) in self.tables.iter().enumerate() {
                let got = must(read_table(r, table), "snapshot read");
                assert_eq!(
                    &got, &snapshot[t],
                    "snapshot reader of table {t} sees another state"
                );
            }
        }
    }

    fn reopen(&mut self) {
        self.check_readers();
        self.readers.clear();
        self.tx = None;
        self.pending = None;
        self.db = None;
        let storage = Arc::new(self.storage.clone()) as Arc<dyn Storage>;
        let db = must(
            Database::open_with(storage, "db", self.opts.clone()),
            "reopen",
        );
        let report = must(db.check_integrity(), "check_integrity");
        assert!(
            report.is_ok(),
            "integrity problems after reopen: {:?}",
            report.problems
        );
        let r = must(db.begin_read(), "begin_read");
        for (t, name) in TABLES.iter().enumerate() {
            let table = must(r.table(name), "table");
            assert_eq!(table, self.tables[t], "table root moved");
            let got = must(read_table(&r, &table), "read after reopen");
            assert_eq!(got, self.committed[t], "table {name} after reopen");
        }
        drop(r);
        self.db = Some(db);
    }
}

fn collect(range: engine::Range<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for item in range.take(RANGE_ENTRIES_MAX) {
        out.push(must(item, "range item"));
    }
    out
}
