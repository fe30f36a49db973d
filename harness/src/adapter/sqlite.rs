//! `sqlite-full`, `sqlite-normal`, `sqlite-off`: bundled SQLite in WAL mode
//! (`sqlite-journal-full`, `sqlite-journal-extra`, `sqlite-journal-normal`: in rollback-journal
//! mode, DELETE), one
//! `WITHOUT ROWID` table keyed by a BLOB (range scans walk the primary-key b-tree directly),
//! one connection per session with its statements cached.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, ErrorCode};

use super::{AdapterError, AdapterResult, Engine, EngineOptions, ErrorKind, Session, Txn};

/// How long a connection waits on a writer lock before reporting `busy`. Long: with many
/// threads SQLite serializes writers and a short wait would count contention as errors.
const BUSY_TIMEOUT_MS: u64 = 30_000;

/// Smallest per-connection page cache. Large thread counts would otherwise give each
/// connection a uselessly small cache.
const CONNECTION_CACHE_BYTES_MIN: usize = 16 << 20;

const SQL_GET: &str = "SELECT v FROM kv WHERE k = ?1";
const SQL_PUT: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)";
const SQL_DELETE: &str = "DELETE FROM kv WHERE k = ?1";
const SQL_SCAN: &str = "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2";

/// SQLite behind the adapter trait.
pub struct SqliteEngine {
    name: String,
    path: PathBuf,
    synchronous: &'static str,
    /// `journal_mode`: WAL, or DELETE (the rollback journal, SQLite's default).
    journal: &'static str,
    cache_kib: i64,
    /// A connection for `sync`; also keeps the WAL open between sessions.
    control: Mutex<Option<Connection>>,
}

impl SqliteEngine {
    /// Opens or creates the database at `path`; `mode` is `full`, `normal` or `off` (WAL), or
    /// `journal-full`, `journal-extra`, `journal-normal` (rollback journal).
    ///
    /// # Errors
    /// Unknown modes and SQLite errors.
    pub fn open(path: &Path, mode: &str, options: &EngineOptions) -> AdapterResult<SqliteEngine> {
        let (journal, sync_mode) = match mode.strip_prefix("journal-") {
            Some(m) => ("DELETE", m),
            None => ("WAL", mode),
        };
        let synchronous = match sync_mode {
            "full" => "FULL",
            "extra" if journal == "DELETE" => "EXTRA",
            "normal" => "NORMAL",
            "off" if journal == "WAL" => "OFF",
            other => {
                return Err(AdapterError::new(
                    ErrorKind::Invalid,
                    format!("sqlite mode `{other}`"),
                ))
            }
        };
        let per_connection =
            (options.cache_bytes / options.threads.max(1)).max(CONNECTION_CACHE_BYTES_MIN);
        let engine = SqliteEngine {
            name: format!("sqlite-{mode}"),
            path: path.to_path_buf(),
            synchronous,
            journal,
            cache_kib: i64::try_from(per_connection / 1024).unwrap_or(i64::MAX),
            control: Mutex::new(None),
        };
        let conn = engine.connect()?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
        )
        .map_err(map_err)?;
        *engine.control.lock() = Some(conn);
        Ok(engine)
    }

    fn connect(&self) -> AdapterResult<Connection> {
        let conn = Connection::open(&self.path).map_err(map_err)?;
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(map_err)?;
        let pragmas = format!(
            "PRAGMA journal_mode = {}; PRAGMA synchronous = {}; PRAGMA cache_size = -{};",
            self.journal, self.synchronous, self.cache_kib
        );
        conn.execute_batch(&pragmas).map_err(map_err)?;
        Ok(conn)
    }
}

impl Engine for SqliteEngine {
    fn name(&self) -> &str {
        &self.name
    }
    fn durable_commits(&self) -> bool {
        self.synchronous == "FULL" || self.synchronous == "EXTRA"
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        Ok(Box::new(SqliteSession {
            conn: self.connect()?,
        }))
    }
    fn sync(&self) -> AdapterResult<()> {
        // A full checkpoint on a synchronous=FULL connection fsyncs the WAL and the database.
        let guard = self.control.lock();
        let conn = guard
            .as_ref()
            .ok_or_else(|| AdapterError::new(ErrorKind::Other, "sqlite engine is closed"))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_checkpoint(FULL);")
            .map_err(map_err)?;
        conn.execute_batch(&format!("PRAGMA synchronous = {};", self.synchronous))
            .map_err(map_err)
    }
    fn reopen(&mut self) -> AdapterResult<()> {
        let old = self.control.lock().take();
        if let Some(conn) = old {
            conn.close().map_err(|(_, e)| map_err(e))?;
        }
        let conn = self.connect()?;
        *self.control.lock() = Some(conn);
        Ok(())
    }
    fn check_integrity(&self) -> Option<Result<(), String>> {
        let guard = self.control.lock();
        let conn = guard.as_ref()?;
        let verdict = conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0));
        Some(match verdict {
            Ok(v) if v == "ok" => Ok(()),
            Ok(v) => Err(v),
            Err(e) => Err(e.to_string()),
        })
    }
    fn key_count(&self) -> Option<AdapterResult<u64>> {
        let guard = self.control.lock();
        let conn = guard.as_ref()?;
        let n = conn.query_row("SELECT count(*) FROM kv", [], |r| r.get::<_, i64>(0));
        Some(n.map(|n| u64::try_from(n).unwrap_or(0)).map_err(map_err))
    }
    fn compact(&mut self) -> Option<AdapterResult<()>> {
        let guard = self.control.lock();
        let conn = guard.as_ref()?;
        Some(conn.execute_batch("VACUUM").map_err(map_err))
    }
    fn close(self: Box<Self>) -> AdapterResult<()> {
        match self.control.lock().take() {
            Some(conn) => conn.close().map_err(|(_, e)| map_err(e)),
            None => Ok(()),
        }
    }
}

fn map_err(e: rusqlite::Error) -> AdapterError {
    let kind = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::Busy,
        Some(ErrorCode::DiskFull) => ErrorKind::DiskFull,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => ErrorKind::Corruption,
        Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => ErrorKind::Io,
        Some(ErrorCode::TooBig) => ErrorKind::Limit,
        _ => ErrorKind::Other,
    };
    AdapterError::new(kind, format!("sqlite: {e}"))
}

struct SqliteSession {
    conn: Connection,
}

fn get_on(conn: &Connection, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
    value_out.clear();
    let mut stmt = conn.prepare_cached(SQL_GET).map_err(map_err)?;
    let mut rows = stmt.query(params![key]).map_err(map_err)?;
    match rows.next().map_err(map_err)? {
        Some(row) => {
            let v = row.get_ref(0).map_err(map_err)?;
            let blob = v
                .as_blob()
                .map_err(|e| AdapterError::new(ErrorKind::Other, e.to_string()))?;
            value_out.extend_from_slice(blob);
            Ok(true)
        }
        None => Ok(false),
    }
}

fn put_on(conn: &Connection, key: &[u8], value: &[u8]) -> AdapterResult<()> {
    let mut stmt = conn.prepare_cached(SQL_PUT).map_err(map_err)?;
    let changed = stmt.execute(params![key, value]).map_err(map_err)?;
    debug_assert_eq!(changed, 1);
    Ok(())
}

fn delete_on(conn: &Connection, key: &[u8]) -> AdapterResult<bool> {
    let mut stmt = conn.prepare_cached(SQL_DELETE).map_err(map_err)?;
    Ok(stmt.execute(params![key]).map_err(map_err)? > 0)
}

impl Session for SqliteSession {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        get_on(&self.conn, key, value_out)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        put_on(&self.conn, key, value)
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        delete_on(&self.conn, key)
    }
    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        let limit = i64::try_from(count_max).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(SQL_SCAN).map_err(map_err)?;
        let mut rows = stmt.query(params![start, limit]).map_err(map_err)?;
        let mut count = 0;
        while let Some(row) = rows.next().map_err(map_err)? {
            let k = row.get_ref(0).map_err(map_err)?;
            let v = row.get_ref(1).map_err(map_err)?;
            let other = |e: rusqlite::types::FromSqlError| {
                AdapterError::new(ErrorKind::Other, e.to_string())
            };
            visit(k.as_blob().map_err(other)?, v.as_blob().map_err(other)?);
            count += 1;
        }
        debug_assert!(count <= count_max);
        Ok(count)
    }
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        // IMMEDIATE takes the write lock up front, so the commit cannot fail with BUSY after
        // the body ran.
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(map_err)?;
        let outcome = body(&mut SqliteTxn { conn: &self.conn });
        match outcome {
            Ok(()) => self.conn.execute_batch("COMMIT").map_err(map_err),
            Err(e) => {
                self.conn.execute_batch("ROLLBACK").map_err(map_err)?;
                Err(e)
            }
        }
    }
}

struct SqliteTxn<'a> {
    conn: &'a Connection,
}

impl Txn for SqliteTxn<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        get_on(self.conn, key, value_out)
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        put_on(self.conn, key, value)
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        delete_on(self.conn, key)
    }
}
