//! What a metrics snapshot costs: `Database::metrics` and `Database::metrics_prometheus`,
//! each called many times on a loaded database with a reader open.
//!
//! `cargo run --release -p engine --example metrics_cost`

use std::sync::Arc;
use std::time::Instant;

use engine::{Database, MemStorage, Options, Storage};

/// Calls per measurement: enough that the clock's resolution does not matter.
const CALLS: u32 = 100_000;

fn main() -> engine::Result<()> {
    let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
    let db = Database::open_with(storage, "db", Options::default())?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("t")?;
    for i in 0..10_000u32 {
        tx.put(&t, &i.to_be_bytes(), &[1u8; 100])?;
    }
    tx.commit()?;
    let _reader = db.begin_read()?;
    let start = Instant::now();
    let mut sink = 0u64;
    for _ in 0..CALLS {
        sink = sink.wrapping_add(db.metrics().commits);
    }
    let snapshot_ns = start.elapsed().as_nanos() / u128::from(CALLS);
    let start = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..CALLS {
        bytes += db.metrics_prometheus().len();
    }
    let text_ns = start.elapsed().as_nanos() / u128::from(CALLS);
    println!("metrics(): {snapshot_ns} ns per call; metrics_prometheus(): {text_ns} ns per call");
    println!(
        "({} bytes of text; checksum {sink})",
        bytes / CALLS as usize
    );
    Ok(())
}
