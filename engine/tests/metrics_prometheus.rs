//! `Database::metrics_prometheus` read back by a real Prometheus text parser: every counter
//! and gauge of `Database::metrics` appears once, typed, with the snapshot's value.

use std::collections::HashMap;
use std::sync::Arc;

use engine::{Database, MemStorage, Metrics, Options, Storage};
use prometheus_parse::{Scrape, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn parse(text: &str) -> std::io::Result<Scrape> {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
}

/// The series the export must hold for `m`: name, counter (else gauge), value.
fn expected(m: &Metrics) -> Vec<(&'static str, bool, u64)> {
    vec![
        ("engine_commits_total", true, m.commits),
        ("engine_rollbacks_total", true, m.rollbacks),
        ("engine_fsyncs_total", true, m.fsyncs),
        ("engine_checkpoints_total", true, m.checkpoints),
        ("engine_bound_checkpoints_total", true, m.bound_checkpoints),
        (
            "engine_checkpoints_blocked_by_reader_total",
            true,
            m.checkpoints_blocked_by_reader,
        ),
        ("engine_cache_hits_total", true, m.cache_hits),
        ("engine_cache_misses_total", true, m.cache_misses),
        ("engine_cache_evictions_total", true, m.cache_evictions),
        ("engine_pages_read_total", true, m.pages_read),
        ("engine_pages_written_total", true, m.pages_written),
        ("engine_cache_bytes", false, m.cache_bytes),
        ("engine_cache_bytes_max", false, m.cache_bytes_max),
        ("engine_readers_open", false, m.readers_open),
        ("engine_reader_lag_commits", false, m.reader_lag_commits),
        ("engine_wal_frames", false, m.wal_frames),
        ("engine_wal_bytes", false, m.wal_bytes),
        ("engine_pages", false, m.page_count),
        ("engine_page_size_bytes", false, m.page_size),
    ]
}

/// Checks `text` against `m`: each series once, of its type, with its value and a help line.
fn check(text: &str, m: &Metrics) -> TestResult {
    let scrape = parse(text)?;
    let mut seen: HashMap<&str, &Value> = HashMap::new();
    for s in &scrape.samples {
        if seen.insert(s.metric.as_str(), &s.value).is_some() {
            return Err(format!("{} exported twice", s.metric).into());
        }
    }
    for (name, counter, value) in expected(m) {
        let got = seen
            .get(name)
            .ok_or(format!("{name} missing from:\n{text}"))?;
        let ok = match got {
            Value::Counter(v) if counter => *v == value as f64,
            Value::Gauge(v) if !counter => *v == value as f64,
            _ => false,
        };
        if !ok {
            return Err(format!("{name}: {got:?}, expected {value} (counter: {counter})").into());
        }
        if !scrape.docs.contains_key(name) {
            return Err(format!("{name} has no HELP line").into());
        }
    }
    let info = scrape
        .samples
        .iter()
        .find(|s| s.metric == "engine_durability_info")
        .ok_or("no durability info")?;
    if info.labels.get("mode") != Some("full") || info.value != Value::Gauge(1.0) {
        return Err(format!("durability info {info:?}").into());
    }
    if seen.len() != expected(m).len() + 1 {
        return Err(format!("{} series, expected {}", seen.len(), expected(m).len() + 1).into());
    }
    Ok(())
}

#[test]
fn prometheus_export_parses_and_matches_the_snapshot() -> TestResult {
    let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
    let opts = Options {
        checkpoint_in_background: false,
        ..Options::default()
    };
    let db = Database::open_with(storage, "db", opts)?;
    let mut tx = db.begin_write()?;
    let t = tx.create_table("t")?;
    for i in 0..500u32 {
        tx.put(&t, &i.to_be_bytes(), &[7u8; 64])?;
    }
    tx.commit()?;
    db.begin_write()?.rollback();
    db.checkpoint()?;
    let reader = db.begin_read()?;
    reader.get(&t, &7u32.to_be_bytes())?;
    let (m, text) = (db.metrics(), db.metrics_prometheus());
    check(&text, &m)?;
    // The values move with the database: the export is not a fixed text.
    if m.commits != 1 || m.rollbacks != 1 || m.readers_open != 1 || m.checkpoints == 0 {
        return Err(format!("unexpected snapshot {m:?}").into());
    }
    drop(reader);
    let mut tx = db.begin_write()?;
    tx.put(&t, b"k", b"v")?;
    tx.commit()?;
    let after = db.metrics();
    check(&db.metrics_prometheus(), &after)?;
    if after.commits != 2 || after.readers_open != 0 {
        return Err(format!("unexpected snapshot after a commit {after:?}").into());
    }
    // A stale export no longer matches: the check can fail.
    if check(&text, &after).is_ok() {
        return Err("the first export matched the later snapshot".into());
    }
    Ok(())
}
