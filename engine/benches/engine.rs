//! Criterion benchmarks after redb's benchmark: 24-byte random keys, 150-byte values.
//!
//! `cargo bench -p engine --bench engine` (set `ENGINE_BENCH_KEYS` to change the 1M default).
//! Side-by-side comparisons with SQLite and redb run through the harness (`--engine all`).

use std::ops::Bound;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::{Database, Durability, Options, Table};
use rand::rngs::SmallRng;
use rand::{Rng, RngExt, SeedableRng};

const SEED: u64 = 0x5EED;
const VALUE_BYTES: usize = 150;

fn keys_n() -> usize {
    std::env::var("ENGINE_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn random_keys(n: usize, seed: u64) -> Vec<[u8; 24]> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut k = [0u8; 24];
            rng.fill_bytes(&mut k);
            k
        })
        .collect()
}

struct Loaded {
    _dir: tempfile::TempDir,
    db: Database,
    table: Table,
    keys: Vec<[u8; 24]>,
}

fn open(dir: &std::path::Path, durability: Durability) -> engine::Result<Database> {
    let opts = Options {
        durability,
        cache_bytes_max: 1 << 30,
        ..Options::default()
    };
    Database::open(dir.join("bench.db"), opts)
}

fn load(n: usize) -> engine::Result<Loaded> {
    let dir = tempfile::tempdir().map_err(|e| engine::Error::Io {
        op: "tempdir",
        source: e,
    })?;
    let db = open(dir.path(), Durability::Full)?;
    let keys = random_keys(n, SEED);
    let value = [7u8; VALUE_BYTES];
    let mut tx = db.begin_write()?;
    let table = tx.create_table("bench")?;
    for k in &keys {
        tx.put(&table, k, &value)?;
    }
    tx.commit()?;
    db.checkpoint()?;
    Ok(Loaded {
        _dir: dir,
        db,
        table,
        keys,
    })
}

fn bench_reads(c: &mut Criterion, l: &Loaded) {
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(1));
    let mut rng = SmallRng::seed_from_u64(SEED + 1);
    // The zero-copy calls a hot loop would use (`get_into` with a reused buffer,
    // `Range::visit`), and the allocating conveniences beside them.
    let mut buf = Vec::new();
    g.bench_function("point_get", |b| {
        b.iter(|| {
            let k = &l.keys[rng.random_range(0..l.keys.len())];
            let r = l.db.begin_read().ok()?;
            r.get_into(&l.table, k, &mut buf).ok()
        });
    });
    g.bench_function("point_get_alloc", |b| {
        b.iter(|| {
            let k = &l.keys[rng.random_range(0..l.keys.len())];
            let r = l.db.begin_read().ok()?;
            r.get(&l.table, k).ok()?
        });
    });
    g.throughput(Throughput::Elements(10));
    g.bench_function("range_scan_10", |b| {
        b.iter(|| {
            let k = &l.keys[rng.random_range(0..l.keys.len())];
            let r = l.db.begin_read().ok()?;
            let mut range = r
                .range(&l.table, Bound::Included(&k[..]), Bound::Unbounded, false)
                .ok()?;
            let mut bytes = 0;
            range
                .visit(10, &mut |k, v| bytes += k.len() + v.len())
                .ok()?;
            Some(bytes)
        });
    });
    g.bench_function("range_scan_10_iter", |b| {
        b.iter(|| {
            let k = &l.keys[rng.random_range(0..l.keys.len())];
            let r = l.db.begin_read().ok()?;
            let it = r
                .range(&l.table, Bound::Included(&k[..]), Bound::Unbounded, false)
                .ok()?;
            Some(it.take(10).count())
        });
    });
    g.finish();
}

fn bench_writes(c: &mut Criterion, l: &Loaded) {
    let mut g = c.benchmark_group("write_txn_of_1000");
    g.throughput(Throughput::Elements(1000));
    let mut rng = SmallRng::seed_from_u64(SEED + 2);
    let value = [9u8; VALUE_BYTES];
    g.bench_function("update", |b| {
        b.iter(|| -> engine::Result<()> {
            let mut tx = l.db.begin_write()?;
            for _ in 0..1000 {
                let k = &l.keys[rng.random_range(0..l.keys.len())];
                tx.put(&l.table, k, &value)?;
            }
            tx.commit()
        });
    });
    g.bench_function("insert", |b| {
        b.iter_batched(
            || random_keys(1000, rng.random()),
            |fresh| -> engine::Result<()> {
                let mut tx = l.db.begin_write()?;
                for k in &fresh {
                    tx.put(&l.table, k, &value)?;
                }
                tx.commit()
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("delete", |b| {
        b.iter_batched(
            // Setup (not timed): 1000 fresh keys inserted and committed.
            || {
                let fresh = random_keys(1000, rng.random());
                let inserted = (|| -> engine::Result<()> {
                    let mut tx = l.db.begin_write()?;
                    for k in &fresh {
                        tx.put(&l.table, k, &value)?;
                    }
                    tx.commit()
                })();
                if let Err(e) = inserted {
                    eprintln!("delete setup failed: {e}");
                }
                fresh
            },
            |fresh| -> engine::Result<()> {
                let mut tx = l.db.begin_write()?;
                for k in &fresh {
                    tx.delete(&l.table, k)?;
                }
                tx.commit()
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("insert_delete", |b| {
        b.iter(|| -> engine::Result<()> {
            let fresh = random_keys(1000, rng.random());
            let mut tx = l.db.begin_write()?;
            for k in &fresh {
                tx.put(&l.table, k, &value)?;
            }
            for k in &fresh {
                tx.delete(&l.table, k)?;
            }
            tx.commit()
        });
    });
    g.finish();
}

fn bench_commits(c: &mut Criterion) {
    let mut g = c.benchmark_group("single_row_commit");
    g.throughput(Throughput::Elements(1));
    let modes = [
        ("full", Durability::Full),
        (
            "normal",
            Durability::Normal {
                commits: 100,
                millis: 10,
            },
        ),
        ("off", Durability::Off),
    ];
    for (name, mode) in modes {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(db) = open(dir.path(), mode) else {
            return;
        };
        let Ok(table) = db.begin_write().and_then(|mut tx| {
            let t = tx.create_table("c")?;
            tx.commit().map(|()| t)
        }) else {
            return;
        };
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| -> engine::Result<()> {
                i += 1;
                let mut tx = db.begin_write()?;
                tx.put(&table, &i.to_be_bytes(), &[1u8; VALUE_BYTES])?;
                tx.commit()
            });
        });
    }
    g.finish();
}

fn bench_bulk_load(c: &mut Criterion) {
    let n = (keys_n() / 10).max(1000);
    let mut g = c.benchmark_group("bulk_load");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("{n}_keys_one_txn"), |b| {
        b.iter_batched(
            || random_keys(n, SEED + 3),
            |keys| load_keys(&keys),
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn load_keys(keys: &[[u8; 24]]) -> engine::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| engine::Error::Io {
        op: "tempdir",
        source: e,
    })?;
    let db = open(dir.path(), Durability::Full)?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("bulk")?;
    for k in keys {
        tx.put(&t, k, &[3u8; VALUE_BYTES])?;
    }
    tx.commit()?;
    db.close()
}

fn all(c: &mut Criterion) {
    bench_commits(c);
    bench_bulk_load(c);
    match load(keys_n()) {
        Ok(l) => {
            bench_reads(c, &l);
            bench_writes(c, &l);
        }
        Err(e) => eprintln!("load failed: {e}"),
    }
}

criterion_group!(benches, all);
criterion_main!(benches);
