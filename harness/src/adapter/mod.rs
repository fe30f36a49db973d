//! Engine adapters: one trait in front of every database the harness drives.
//!
//! An [`Engine`] is shared by all driver threads (`Send + Sync`). Each thread opens its own
//! [`Session`] (SQLite needs a connection per thread; others just borrow the engine). Sessions
//! borrow the engine, so `reopen` and `close`, which take `&mut self` / `self`, can only run
//! once every session is gone: the borrow checker enforces the quiescence they need.
//!
//! Engine names (see [`ENGINE_NAMES`]) carry the durability mode: `sqlite-normal`,
//! `redb-none`, ... A bare family name takes the mode from the scenario's `[durability]`
//! table, or the family's strictest mode.

mod engine;
mod fjall;
mod lmdb;
mod model;
mod null;
mod redb;
pub mod slow_sync;
mod sqlite;

use std::fmt;
use std::path::{Path, PathBuf};

pub use engine::{OurEngine, SEEDED_BUG_ENV};
pub use fjall::FjallEngine;
pub use lmdb::LmdbEngine;
pub use model::ModelEngine;
pub use null::NullEngine;
pub use redb::RedbEngine;
pub use sqlite::SqliteEngine;

/// Every engine name `open_engine` accepts, in the order `harness list` shows them.
pub const ENGINE_NAMES: &[&str] = &[
    "engine-full",
    "engine-normal",
    "engine-off",
    "model",
    "null",
    "sqlite-full",
    "sqlite-normal",
    "sqlite-off",
    "sqlite-journal-full",
    "sqlite-journal-extra",
    "sqlite-journal-normal",
    "redb-immediate",
    "redb-none",
    "lmdb-full",
    "lmdb-normal",
    "lmdb-off",
    "fjall-full",
    "fjall-off",
];

/// Family names that expand to a durability mode (`sqlite` -> `sqlite-full` by default).
pub const ENGINE_FAMILIES: &[&str] = &["engine", "sqlite", "redb", "lmdb", "fjall"];

/// What went wrong, coarse enough to count per kind in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// I/O failure other than a full disk.
    Io,
    /// No space left.
    DiskFull,
    /// The engine reported corrupted data.
    Corruption,
    /// Lock contention that outlived the engine's own wait (SQLITE_BUSY).
    Busy,
    /// A size or count limit of the engine.
    Limit,
    /// The engine refuses work until reopened (after a failed fsync).
    Poisoned,
    /// Bad arguments or options.
    Invalid,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The stable snake_case name used in reports and terminal output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::DiskFull => "disk_full",
            ErrorKind::Corruption => "corruption",
            ErrorKind::Busy => "busy",
            ErrorKind::Limit => "limit",
            ErrorKind::Poisoned => "poisoned",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Other => "other",
        }
    }
}

/// An error from an adapter: a kind to count and a detail to show.
#[derive(Debug, Clone)]
pub struct AdapterError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl AdapterError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> AdapterError {
        AdapterError {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

impl std::error::Error for AdapterError {}

/// Result of adapter calls.
pub type AdapterResult<T> = Result<T, AdapterError>;

/// A database shared by every driver thread.
pub trait Engine: Send + Sync {
    /// The full name, durability included (`sqlite-full`).
    fn name(&self) -> &str;
    /// False for engines that keep nothing (`null`): reads cannot be verified against them.
    fn stores_data(&self) -> bool {
        true
    }
    /// True when a commit is durable on return (the fsync probe is meaningful beside it).
    fn durable_commits(&self) -> bool;
    /// A per-thread handle. Cheap for most engines; SQLite opens a connection.
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>>;
    /// Makes every commit so far durable.
    fn sync(&self) -> AdapterResult<()>;
    /// Closes and opens the same files again (sessions are gone: `&mut self`).
    fn reopen(&mut self) -> AdapterResult<()>;
    /// Closes the database, flushing what the durability mode promises.
    fn close(self: Box<Self>) -> AdapterResult<()>;
    /// The engine's own running counters, when it keeps them (None: it keeps none).
    fn counters(&self) -> Option<EngineCounters> {
        None
    }
    /// The engine's own integrity check of its files (ours: `check_integrity`; SQLite:
    /// `PRAGMA quick_check`), or None when the adapter has none. Err holds the problems.
    fn check_integrity(&self) -> Option<Result<(), String>> {
        None
    }
    /// The number of keys, by the engine's own count (redb's `len()`), or None when the
    /// adapter has none (`bench/redb-suite` then counts by a scan, and says so).
    fn key_count(&self) -> Option<AdapterResult<u64>> {
        None
    }
    /// The engine's own compaction (redb `compact`, LMDB's compacting copy, SQLite
    /// `VACUUM`, fjall's major compaction), or None when it has none. Sessions are gone.
    fn compact(&mut self) -> Option<AdapterResult<()>> {
        None
    }
}

/// Counters an engine keeps about itself since it was opened (soaks chart them per second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounters {
    pub fsyncs: u64,
    /// Bytes the page cache holds now (memory the engine is allowed to keep).
    pub cache_bytes: u64,
}

/// One thread's handle on an engine. Every call is its own transaction except
/// [`Session::transaction`].
pub trait Session {
    /// Reads `key` into `value_out` (cleared first). Returns false when the key is absent.
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool>;
    /// Inserts or replaces.
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()>;
    /// Removes; returns whether the key existed.
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool>;
    /// Visits up to `count_max` pairs with key >= `start` in ascending order; returns the count.
    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize>;
    /// Runs `body` in one atomic write transaction: committed when `body` returns Ok, rolled
    /// back when it returns Err (that error is returned).
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()>;
}

/// Operations inside a multi-key write transaction; reads see the transaction's own writes.
pub trait Txn {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool>;
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()>;
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool>;
}

/// Settings every adapter understands.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Page cache for the whole engine (split across SQLite connections).
    pub cache_bytes: usize,
    /// Threads that will open sessions (SQLite sizes its per-connection cache by it).
    pub threads: usize,
    /// The run's seed, for engines whose files contain random bytes (our WAL salts): with it
    /// a run's files are reproducible.
    pub seed: Option<u64>,
    /// Our engine only: each fsync also waits this long (a slower disk; see
    /// [`slow_sync`]). Other adapters refuse a nonzero value.
    pub fsync_delay_us: u64,
}

/// 1 GiB, the cache the reference measurements used for SQLite and redb.
pub const CACHE_BYTES_DEFAULT: usize = 1 << 30;

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            cache_bytes: CACHE_BYTES_DEFAULT,
            threads: 1,
            seed: None,
            fsync_delay_us: 0,
        }
    }
}

/// Expands a family name to its full name using `mode` (or the family's strictest mode) and
/// checks that the result is an engine this build knows.
///
/// # Errors
/// An unknown name or mode, with the list of valid names.
pub fn resolve_name(name: &str, mode: Option<&str>) -> Result<String, String> {
    let full = match (name, mode) {
        ("engine" | "sqlite" | "redb" | "lmdb" | "fjall", Some(mode)) => format!("{name}-{mode}"),
        ("sqlite", None) => "sqlite-full".to_string(),
        ("redb", None) => "redb-immediate".to_string(),
        ("engine", None) => "engine-full".to_string(),
        ("lmdb", None) => "lmdb-full".to_string(),
        ("fjall", None) => "fjall-full".to_string(),
        _ => name.to_string(),
    };
    if ENGINE_NAMES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(format!(
            "unknown engine `{full}`; known engines: {}",
            ENGINE_NAMES.join(", ")
        ))
    }
}

/// Whether engine `name` (as resolved) can run with `fsync_delay_us`: only ours has the slow
/// disk, within [`slow_sync::FSYNC_DELAY_US_MAX`]. A run checks every engine up front.
///
/// # Errors
/// Why not, in a sentence.
pub fn check_fsync_delay(name: &str, fsync_delay_us: u64) -> Result<(), String> {
    if fsync_delay_us > 0 && !name.starts_with("engine-") {
        return Err(format!(
            "fsync_delay_us applies to our engine only, not `{name}`"
        ));
    }
    if fsync_delay_us > slow_sync::FSYNC_DELAY_US_MAX {
        let max = slow_sync::FSYNC_DELAY_US_MAX;
        return Err(format!("fsync_delay_us {fsync_delay_us} above {max}"));
    }
    Ok(())
}

/// Opens (creating if needed) the engine `name` with its files under `dir`.
///
/// # Errors
/// Unknown names and the engine's own open errors.
pub fn open_engine(
    name: &str,
    dir: &Path,
    options: &EngineOptions,
) -> AdapterResult<Box<dyn Engine>> {
    let full = resolve_name(name, None).map_err(|e| AdapterError::new(ErrorKind::Invalid, e))?;
    std::fs::create_dir_all(dir).map_err(|e| io_error("create data dir", dir, &e))?;
    check_fsync_delay(&full, options.fsync_delay_us)
        .map_err(|detail| AdapterError::new(ErrorKind::Invalid, detail))?;
    let engine: Box<dyn Engine> = match full.as_str() {
        "engine-full" | "engine-normal" | "engine-off" => {
            let mode = full.trim_start_matches("engine-");
            Box::new(OurEngine::open(
                &data_file(dir, "engine.db"),
                mode,
                options,
            )?)
        }
        "model" => Box::new(ModelEngine::new()),
        "null" => Box::new(NullEngine::new()),
        "sqlite-full"
        | "sqlite-normal"
        | "sqlite-off"
        | "sqlite-journal-full"
        | "sqlite-journal-extra"
        | "sqlite-journal-normal" => {
            let mode = full.trim_start_matches("sqlite-");
            Box::new(SqliteEngine::open(
                &data_file(dir, "sqlite.db"),
                mode,
                options,
            )?)
        }
        "redb-immediate" | "redb-none" => {
            let durable = full == "redb-immediate";
            Box::new(RedbEngine::open(
                &data_file(dir, "redb.db"),
                durable,
                options,
            )?)
        }
        "lmdb-full" | "lmdb-normal" | "lmdb-off" => {
            let mode = full.trim_start_matches("lmdb-");
            Box::new(LmdbEngine::open(&dir.join(lmdb::DIR), mode, options)?)
        }
        "fjall-full" | "fjall-off" => {
            let durable = full == "fjall-full";
            Box::new(FjallEngine::open(&dir.join(fjall::DIR), durable, options)?)
        }
        other => {
            return Err(AdapterError::new(
                ErrorKind::Invalid,
                format!("no adapter for `{other}`"),
            ))
        }
    };
    debug_assert_eq!(engine.name(), full);
    Ok(engine)
}

fn data_file(dir: &Path, file: &str) -> PathBuf {
    dir.join(file)
}

/// The write-ahead log `name` keeps in its data directory (None: it keeps none, or the
/// name is unknown). The crash loops measure what a crash left for recovery with it.
#[must_use]
pub fn wal_file(name: &str) -> Option<&'static str> {
    let full = resolve_name(name, None).ok()?;
    match full.split('-').next()? {
        "engine" => Some("engine.db-wal"),
        "sqlite" => Some("sqlite.db-wal"),
        _ => None,
    }
}

pub(crate) fn io_error(op: &str, path: &Path, e: &std::io::Error) -> AdapterError {
    let kind = if e.raw_os_error() == Some(28) {
        ErrorKind::DiskFull
    } else {
        ErrorKind::Io
    };
    AdapterError::new(kind, format!("{op} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
