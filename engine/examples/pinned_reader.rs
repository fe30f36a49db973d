//! Commit rate while an old reader pins the WAL: `cargo run --release -p engine --example pinned_reader`.
use std::time::Instant;

use engine::{Database, Durability, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options {
        durability: Durability::Off,
        wal_checkpoint_bytes: 1 << 20,
        ..Options::default()
    };
    let db = Database::open(dir.path().join("p.db"), opts)?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("t")?;
    for i in 0..20_000u32 {
        tx.put(&t, &i.to_be_bytes(), &[1u8; 100])?;
    }
    tx.commit()?;
    let pin = db.begin_read()?;
    let n = 20_000u32;
    let start = Instant::now();
    for i in 0..n {
        let mut tx = db.begin_write()?;
        tx.put(&t, &(i * 7 % 20_000).to_be_bytes(), &[2u8; 100])?;
        tx.commit()?;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{n} Off-mode commits with a pinned reader: {:.0}/s; {:?}",
        f64::from(n) / s,
        db.metrics()
    );
    drop(pin);
    Ok(())
}
