//! The final read-back of a run (`final_verify = "scan"`): every key the run acknowledged is
//! read back by scans and its value verified.
//!
//! With a key encoding that sorts like its index (`be_u64`, unhashed `ycsb`, `uuid_v7`), the
//! index range is split between threads; each scans its slice and requires exactly the keys
//! of its indexes, in order. Otherwise one thread scans the whole table and requires every
//! key to be distinct, valid and below the indexes handed out, and the keys below the
//! acknowledged frontier to number exactly that many: then none of them is missing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::worker::DataCtx;
use crate::adapter::Engine;
use crate::gen::KeyEncodingSpec;

/// Keys one thread reads between progress updates.
const PROGRESS_EVERY: u64 = 1 << 16;

/// What the read-back found.
#[derive(Debug, Clone, Default)]
pub struct ReadBack {
    /// Keys expected (every index below the acknowledged frontier).
    pub keys_expected: u64,
    /// Keys read and verified.
    pub keys_verified: u64,
    /// Problems found, counted.
    pub failures: u64,
    /// The first problems, in detail.
    pub details: Vec<String>,
    pub threads: usize,
    pub duration: Duration,
    /// "ordered slices" or "one full scan".
    pub method: &'static str,
}

impl ReadBack {
    fn fail(&mut self, detail: String) {
        self.failures += 1;
        if self.details.len() < super::VERIFY_DETAILS_MAX {
            self.details.push(detail);
        }
    }

    fn absorb(&mut self, other: ReadBack) {
        self.keys_verified += other.keys_verified;
        self.failures += other.failures;
        for d in other.details {
            if self.details.len() < super::VERIFY_DETAILS_MAX {
                self.details.push(d);
            }
        }
    }
}

fn sorts_like_index(spec: &KeyEncodingSpec) -> bool {
    matches!(
        spec,
        KeyEncodingSpec::BeU64 {}
            | KeyEncodingSpec::UuidV7 {}
            | KeyEncodingSpec::Ycsb { hashed: false, .. }
    )
}

/// Reads back every acknowledged key of `ctx` from `engine` on `threads` threads;
/// `progress(keys_verified)` is called about every 200 ms.
///
/// # Errors
/// A session or scan that fails (the run cannot be judged).
pub fn read_back(
    engine: &dyn Engine,
    ctx: &DataCtx,
    spec: &KeyEncodingSpec,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<ReadBack> {
    let t0 = Instant::now();
    let expected = ctx.keyspace.acked_count();
    let ordered = sorts_like_index(spec);
    let threads = if ordered { threads.clamp(1, 64) } else { 1 };
    let done = AtomicU64::new(0);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (lo, hi) = (
                    expected * t / threads as u64,
                    expected * (t + 1) / threads as u64,
                );
                let done = &done;
                scope.spawn(move || {
                    if ordered {
                        slice(engine, ctx, lo, hi, done)
                    } else {
                        whole(engine, ctx, expected, done)
                    }
                })
            })
            .collect();
        while handles.iter().any(|h| !h.is_finished()) {
            progress(done.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(200));
        }
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let mut total = ReadBack {
        keys_expected: expected,
        threads,
        method: if ordered {
            "ordered slices"
        } else {
            "one full scan"
        },
        ..ReadBack::default()
    };
    for r in results {
        match r {
            Ok(part) => total.absorb(part?),
            Err(_) => anyhow::bail!("a read-back thread panicked"),
        }
    }
    let unjudged = ctx.book.unjudged_keys();
    if unjudged > 0 {
        total.fail(format!(
            "the version book had no room for {unjudged} acknowledged writes (past {} keys \
             written): their versions could not be judged",
            super::history::SPARSE_KEYS_MAX
        ));
    }
    total.duration = t0.elapsed();
    Ok(total)
}

/// `value` is a valid value of key `index` and its version is the key's acknowledged one:
/// not one superseded by a write acknowledged later (a lost update), and not one never
/// written. Every write has ended, so the book's floor for the key is final.
fn acknowledged_version(ctx: &DataCtx, index: u64, value: &[u8]) -> Result<(), String> {
    let version = ctx
        .values
        .verify(index, value)
        .map_err(|e| format!("key {index}: {e}"))?;
    ctx.book
        .judge(version, ctx.book.before_read(index))
        .map_err(|e| format!("key {index}: {e}"))
}

/// Indexes `lo..hi` by one scan: each key in order, each value verified.
fn slice(
    engine: &dyn Engine,
    ctx: &DataCtx,
    lo: u64,
    hi: u64,
    done: &AtomicU64,
) -> anyhow::Result<ReadBack> {
    let mut out = ReadBack::default();
    if lo >= hi {
        return Ok(out);
    }
    let mut session = engine.session().map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = ctx.keys.key(lo);
    let mut next = lo;
    let mut key = Vec::new();
    let len = usize::try_from(hi - lo).unwrap_or(usize::MAX);
    let count = session
        .scan(&start, len, &mut |k, v| {
            ctx.keys.encode(next, &mut key);
            if k != key.as_slice() {
                out.fail(format!(
                    "key {next} missing: the scan found another key in its place ({} bytes)",
                    k.len()
                ));
            } else {
                match acknowledged_version(ctx, next, v) {
                    Err(e) => out.fail(e),
                    Ok(()) => out.keys_verified += 1,
                }
            }
            next += 1;
            if (next - lo).is_multiple_of(PROGRESS_EVERY) {
                done.fetch_add(PROGRESS_EVERY, Ordering::Relaxed);
            }
        })
        .map_err(|e| anyhow::anyhow!("read-back scan from key {lo}: {e}"))?;
    done.fetch_add((next - lo) % PROGRESS_EVERY, Ordering::Relaxed);
    if (count as u64) < hi - lo {
        out.fail(format!(
            "keys {}..{hi} missing: the scan from key {lo} ended after {count}",
            lo + count as u64
        ));
    }
    Ok(out)
}

/// The whole table by one scan, for encodings that do not sort like their index.
fn whole(
    engine: &dyn Engine,
    ctx: &DataCtx,
    expected: u64,
    done: &AtomicU64,
) -> anyhow::Result<ReadBack> {
    let mut out = ReadBack::default();
    let mut session = engine.session().map_err(|e| anyhow::anyhow!("{e}"))?;
    let allocated = ctx.keyspace.allocated_count();
    let (mut below, mut previous, mut key) = (0u64, Vec::new(), Vec::new());
    let count = session
        .scan(&[], usize::MAX, &mut |k, v| {
            done.fetch_add(1, Ordering::Relaxed);
            if !previous.is_empty() && k <= previous.as_slice() {
                out.fail("the scan returned keys out of order".to_string());
            }
            previous.clear();
            previous.extend_from_slice(k);
            let index = super::worker::header_index(v).filter(|&i| i < allocated);
            let Some(index) = index else {
                out.fail(format!("a value under a {}-byte key names no key", k.len()));
                return;
            };
            ctx.keys.encode(index, &mut key);
            match acknowledged_version(ctx, index, v) {
                Err(e) => out.fail(e),
                Ok(()) if key.as_slice() != k => {
                    out.fail(format!("key {index}'s value under another key"))
                }
                Ok(()) => {
                    out.keys_verified += u64::from(index < expected);
                    below += u64::from(index < expected);
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("read-back scan: {e}"))?;
    if below != expected {
        out.fail(format!(
            "{} of {expected} acknowledged keys missing ({count} keys scanned)",
            expected.saturating_sub(below)
        ));
    }
    Ok(out)
}
