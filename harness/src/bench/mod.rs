//! Fixed benchmark suites that do not fit the phase machinery: a scenario with a `[bench]`
//! table runs one of them instead of phases. Today one suite, `redb`
//! ([`redb_suite`]): redb's `lmdb_benchmark` workload, its table reproduced per engine.

pub mod redb_suite;

use serde::{Deserialize, Serialize};

/// Most keys a suite loads: the bulk load is one transaction, and a peer's transaction of
/// 100M pairs (17 GB) would not fit in this machine's memory or disk.
pub const N_MAX: u64 = 100_000_000;
/// Most reader threads in one step (each opens a session; LMDB's reader table is sized for
/// the harness's 100-thread phases).
pub const READ_THREADS_MAX: usize = 128;

/// The scenario's `[bench]` table. Every count can be overridden: `--set bench.n=5000000`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchSection {
    /// Which suite: `redb`.
    pub suite: String,
    /// Keys of the bulk load (redb's benchmark: 5M).
    #[serde(default = "n_default")]
    pub n: u64,
    /// Single-insert durable transactions after the load.
    #[serde(default = "individual_writes_default")]
    pub individual_writes: u64,
    /// Transactions of `batch_size` inserts after those.
    #[serde(default = "batches_default")]
    pub batches: u64,
    #[serde(default = "batch_size_default")]
    pub batch_size: u64,
    /// Point reads per pass (two passes).
    #[serde(default = "reads_default")]
    pub reads: u64,
    /// Range reads per pass (two passes).
    #[serde(default = "scans_default")]
    pub scans: u64,
    /// Pairs per range read.
    #[serde(default = "scan_len_default")]
    pub scan_len: usize,
    /// Thread counts of the threaded steps; each reads every key once, split among them.
    #[serde(default = "read_threads_default")]
    pub read_threads: Vec<usize>,
}

fn n_default() -> u64 {
    1_000_000
}
fn individual_writes_default() -> u64 {
    1_000
}
fn batches_default() -> u64 {
    100
}
fn batch_size_default() -> u64 {
    1_000
}
fn reads_default() -> u64 {
    1_000_000
}
fn scans_default() -> u64 {
    500_000
}
fn scan_len_default() -> usize {
    10
}
fn read_threads_default() -> Vec<usize> {
    vec![4, 8, 16, 32]
}

impl BenchSection {
    /// Refuses suites this build lacks and counts beyond the limits.
    ///
    /// # Errors
    /// What is wrong, in a sentence.
    pub fn validate(&self) -> Result<(), String> {
        if self.suite != "redb" {
            return Err(format!(
                "bench.suite `{}`: the one suite is `redb`",
                self.suite
            ));
        }
        if self.n == 0 || self.n > N_MAX {
            return Err(format!("bench.n {} outside 1..={N_MAX}", self.n));
        }
        if self.batch_size.saturating_mul(self.batches) > N_MAX {
            return Err(format!(
                "bench batches of {} above {N_MAX} keys",
                self.batch_size
            ));
        }
        if self
            .read_threads
            .iter()
            .any(|t| *t == 0 || *t > READ_THREADS_MAX)
        {
            return Err(format!("bench.read_threads outside 1..={READ_THREADS_MAX}"));
        }
        Ok(())
    }
}
