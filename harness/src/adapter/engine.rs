//! `engine-full`, `engine-normal`, `engine-off`: our engine (engine/), one table "kv".
//!
//! Written against ENGINE_API.md. Sessions are stateless (the engine's transactions own what
//! they need), so a session just borrows the shared `Database`.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::{Database, Durability, Options};

use super::{AdapterError, AdapterResult, Engine, EngineOptions, ErrorKind, Session, Txn};

/// The one table every harness run uses.
const TABLE: &str = "kv";

/// Durability::Normal's loss window: commits and milliseconds between group syncs. 100 ms
/// and 1000 commits bound the loss like SQLite's synchronous=NORMAL bounds it to the WAL
/// since the last checkpoint, without an fsync per commit.
const NORMAL_COMMITS: u32 = 1000;
const NORMAL_MILLIS: u32 = 100;

/// Our engine behind the adapter trait.
pub struct OurEngine {
    name: &'static str,
    path: PathBuf,
    options: Options,
    db: Option<Database>,
    /// The "kv" table: handles stay valid across transactions until the table is dropped,
    /// so sessions skip the catalog lookup (as a real application would).
    table: Option<engine::Table>,
    /// [`COMMIT_DELAY_ENV`]: a deliberate slowdown after each commit.
    commit_delay: Duration,
    /// Set when `fsync_delay_us` asks for a slower disk: the files go through it.
    storage: Option<Arc<dyn engine::Storage>>,
}

/// Nanoseconds of busy waiting added after every commit through this adapter: a
/// deliberate, known slowdown that proves `harness compare` catches one (see
/// `scripts/compare-selftest.sh`). Unset or 0: none.
pub const COMMIT_DELAY_ENV: &str = "HARNESS_COMMIT_DELAY_NS";
/// Longest delay accepted from the environment (a typo must not stall a run for hours).
const COMMIT_DELAY_NS_MAX: u64 = 100_000_000;

fn commit_delay_from_env() -> Duration {
    let ns = std::env::var(COMMIT_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns.min(COMMIT_DELAY_NS_MAX))
}

/// Names a seeded engine bug (`engine::SeededBug::name`) for every database this adapter
/// opens, child processes included: the kill -9 loop and the soak use it to prove their
/// checks fail. Only a build with `--features seeded-bugs` honours it; any other build
/// refuses to open (the engine rejects the option), so it never passes silently.
pub const SEEDED_BUG_ENV: &str = "HARNESS_SEEDED_BUG";
// One more test hook lives with the code that reads it: the kill -9 worker's
// `HARNESS_KILL9_ANNOUNCE_OPEN_LATE` (`chaos::kill9::ANNOUNCE_OPEN_LATE_ENV`).

fn seeded_bug_from_env() -> AdapterResult<Option<engine::SeededBug>> {
    let Ok(name) = std::env::var(SEEDED_BUG_ENV) else {
        return Ok(None);
    };
    engine::SeededBug::from_name(&name)
        .map(Some)
        .ok_or_else(|| {
            AdapterError::new(
                ErrorKind::Invalid,
                format!("{SEEDED_BUG_ENV}={name:?}: unknown bug"),
            )
        })
}

/// The slow-fsync storage for `path`'s directory, when a delay is asked for.
fn slow_storage(path: &Path, delay_us: u64) -> Option<Arc<dyn engine::Storage>> {
    if delay_us == 0 {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let files = engine::FileStorage::new(dir);
    Some(Arc::new(super::slow_sync::SlowSyncStorage::new(
        files, delay_us,
    )))
}

impl OurEngine {
    /// Opens or creates `path` in durability `mode` ("full", "normal" or "off").
    ///
    /// # Errors
    /// Unknown modes and the engine's open errors.
    pub fn open(path: &Path, mode: &str, options: &EngineOptions) -> AdapterResult<OurEngine> {
        let (name, durability) = match mode {
            "full" => ("engine-full", Durability::Full),
            "normal" => (
                "engine-normal",
                Durability::Normal {
                    commits: NORMAL_COMMITS,
                    millis: NORMAL_MILLIS,
                },
            ),
            "off" => ("engine-off", Durability::Off),
            other => {
                return Err(AdapterError::new(
                    ErrorKind::Invalid,
                    format!("engine mode `{other}`"),
                ))
            }
        };
        let opts = Options {
            durability,
            cache_bytes_max: options.cache_bytes,
            salt_seed: options.seed,
            seeded_bug: seeded_bug_from_env()?,
            ..Options::default()
        };
        let mut engine = OurEngine {
            name,
            path: path.to_path_buf(),
            options: opts,
            db: None,
            table: None,
            commit_delay: commit_delay_from_env(),
            storage: slow_storage(path, options.fsync_delay_us),
        };
        engine.reopen()?;
        Ok(engine)
    }

    fn db(&self) -> AdapterResult<&Database> {
        self.db
            .as_ref()
            .ok_or_else(|| AdapterError::new(ErrorKind::Other, "engine is closed"))
    }
}

/// Maps the engine's error to a counted kind.
pub(crate) fn map_err(e: engine::Error) -> AdapterError {
    let kind = if e.is_corruption() {
        ErrorKind::Corruption
    } else {
        match &e {
            engine::Error::Io { .. } => ErrorKind::Io,
            engine::Error::DiskFull { .. } => ErrorKind::DiskFull,
            engine::Error::KeyTooLarge { .. }
            | engine::Error::ValueTooLarge { .. }
            | engine::Error::LimitExceeded { .. } => ErrorKind::Limit,
            engine::Error::Poisoned => ErrorKind::Poisoned,
            engine::Error::InvalidArgument { .. } => ErrorKind::Invalid,
            _ => ErrorKind::Other,
        }
    };
    AdapterError::new(kind, format!("engine: {e}"))
}

impl Engine for OurEngine {
    fn name(&self) -> &str {
        self.name
    }
    fn durable_commits(&self) -> bool {
        self.name == "engine-full"
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        let table = self
            .table
            .ok_or_else(|| AdapterError::new(ErrorKind::Other, "engine is closed"))?;
        Ok(Box::new(OurSession {
            db: self.db()?,
            table,
            commit_delay: self.commit_delay,
        }))
    }
    fn sync(&self) -> AdapterResult<()> {
        self.db()?.sync().map_err(map_err)
    }
    fn reopen(&mut self) -> AdapterResult<()> {
        if let Some(db) = self.db.take() {
            db.close().map_err(map_err)?;
        }
        let opened = match &self.storage {
            Some(storage) => {
                let name = self
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("engine.db");
                Database::open_with(Arc::clone(storage), name, self.options.clone())
            }
            None => Database::open(&self.path, self.options.clone()),
        };
        let db = opened.map_err(map_err)?;
        let mut txn = db.begin_write().map_err(map_err)?;
        let table = txn.open_or_create_table(TABLE).map_err(map_err)?;
        txn.commit().map_err(map_err)?;
        self.db = Some(db);
        self.table = Some(table);
        Ok(())
    }
    fn check_integrity(&self) -> Option<Result<(), String>> {
        let report = match self.db.as_ref()?.check_integrity() {
            Ok(report) => report,
            Err(e) => return Some(Err(e.to_string())),
        };
        Some(if report.is_ok() {
            Ok(())
        } else {
            Err(report.problems.join("; "))
        })
    }
    fn counters(&self) -> Option<super::EngineCounters> {
        let m = self.db.as_ref()?.metrics();
        Some(super::EngineCounters {
            fsyncs: m.fsyncs,
            cache_bytes: m.cache_bytes,
        })
    }
    fn close(mut self: Box<Self>) -> AdapterResult<()> {
        match self.db.take() {
            Some(db) => db.close().map_err(map_err),
            None => Ok(()),
        }
    }
}

struct OurSession<'a> {
    db: &'a Database,
    table: engine::Table,
    commit_delay: Duration,
}

impl OurSession<'_> {
    fn write<T>(
        &mut self,
        body: impl FnOnce(&mut engine::WriteTxn, &engine::Table) -> AdapterResult<T>,
    ) -> AdapterResult<T> {
        let mut txn = self.db.begin_write().map_err(map_err)?;
        let table = self.table;
        match body(&mut txn, &table) {
            Ok(value) => {
                txn.commit().map_err(map_err)?;
                if !self.commit_delay.is_zero() {
                    // Spin: a sleep this short overshoots by tens of microseconds.
                    let until = std::time::Instant::now() + self.commit_delay;
                    while std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
                Ok(value)
            }
            Err(e) => {
                txn.rollback();
                Err(e)
            }
        }
    }
}

fn copy_found(found: Option<Vec<u8>>, value_out: &mut Vec<u8>) -> bool {
    value_out.clear();
    match found {
        Some(v) => {
            value_out.extend_from_slice(&v);
            true
        }
        None => false,
    }
}

impl Session for OurSession<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        let txn = self.db.begin_read().map_err(map_err)?;
        txn.get_into(&self.table, key, value_out).map_err(map_err)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.write(|txn, table| txn.put(table, key, value).map_err(map_err))
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.write(|txn, table| txn.delete(table, key).map_err(map_err))
    }
    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        let txn = self.db.begin_read().map_err(map_err)?;
        let mut range = txn
            .range(&self.table, Bound::Included(start), Bound::Unbounded, false)
            .map_err(map_err)?;
        let count = range.visit(count_max, visit).map_err(map_err)?;
        debug_assert!(count <= count_max);
        Ok(count)
    }
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        self.write(|txn, table| body(&mut OurTxn { txn, table }))
    }
}

struct OurTxn<'t> {
    txn: &'t mut engine::WriteTxn,
    table: &'t engine::Table,
}

impl Txn for OurTxn<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        Ok(copy_found(
            self.txn.get(self.table, key).map_err(map_err)?,
            value_out,
        ))
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.txn.put(self.table, key, value).map_err(map_err)
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.txn.delete(self.table, key).map_err(map_err)
    }
}
