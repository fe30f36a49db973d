//! Quick single-thread throughput check: `cargo run --release -p engine --example quick_perf -- 1000000`.
//! For numbers to quote, use the criterion benches or the harness's `--engine all` scenarios.

use std::ops::Bound;
use std::time::Instant;

use engine::{Database, Durability, Options};
use rand::rngs::SmallRng;
use rand::{Rng, RngExt, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let opts = Options {
        durability: match std::env::var("DURABILITY").as_deref() {
            Ok("off") => Durability::Off,
            _ => Durability::Full,
        },
        cache_bytes_max: 1 << 30,
        page_size: std::env::var("PAGE_SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(Options::default().page_size),
        ..Options::default()
    };
    let db = Database::open(dir.path().join("perf.db"), opts)?;
    let mut rng = SmallRng::seed_from_u64(42);
    let keys: Vec<[u8; 24]> = (0..n)
        .map(|_| {
            let mut k = [0u8; 24];
            rng.fill_bytes(&mut k);
            k
        })
        .collect();
    let value = [7u8; 150];
    let t = Instant::now();
    let mut tx = db.begin_write()?;
    let table = tx.create_table("t")?;
    for k in &keys {
        tx.put(&table, k, &value)?;
    }
    let put_s = t.elapsed().as_secs_f64();
    tx.commit()?;
    let commit_s = t.elapsed().as_secs_f64() - put_s;
    db.checkpoint()?;
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "bulk load {n}: {:.0} keys/s ({load_s:.2} s: puts {put_s:.2} s, commit {commit_s:.2} s, checkpoint {:.2} s)",
        n as f64 / load_s,
        load_s - put_s - commit_s
    );
    let gets: usize = std::env::var("GETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(n.min(1_000_000));
    let t = Instant::now();
    let mut found = 0usize;
    let mut buf = Vec::new();
    for _ in 0..gets {
        let k = &keys[rng.random_range(0..n)];
        let r = db.begin_read()?;
        found += usize::from(r.get_into(&table, k, &mut buf)?);
    }
    let s = t.elapsed().as_secs_f64();
    println!("random get: {:.0}/s ({found} found)", gets as f64 / s);
    let scans: usize = std::env::var("SCANS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(gets / 4);
    let t = Instant::now();
    let mut seen = 0usize;
    for _ in 0..scans {
        let k = &keys[rng.random_range(0..n)];
        let r = db.begin_read()?;
        seen += r
            .range(&table, Bound::Included(&k[..]), Bound::Unbounded, false)?
            .visit(10, &mut |_, _| {})?;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "range scan 10: {:.0} scans/s ({seen} rows)",
        scans as f64 / s
    );
    let commits: usize = std::env::var("COMMITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let t = Instant::now();
    for i in 0..commits {
        let mut tx = db.begin_write()?;
        tx.put(&table, &keys[rng.random_range(0..n)], &[i as u8; 150])?;
        tx.commit()?;
    }
    if commits > 0 {
        let s = t.elapsed().as_secs_f64();
        println!(
            "single-row commits: {:.0}/s ({:.1} us each)",
            commits as f64 / s,
            s * 1e6 / commits as f64
        );
    }
    let size = std::fs::metadata(dir.path().join("perf.db"))?.len();
    println!(
        "file size: {:.1} MB; metrics: {:?}",
        size as f64 / 1e6,
        db.metrics()
    );
    Ok(())
}
