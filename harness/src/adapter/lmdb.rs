//! `lmdb-full`, `lmdb-normal`, `lmdb-off`: LMDB (heed 0.23, which compiles LMDB's `mdb.c`)
//! with its unnamed database of byte keys and byte values, in a directory `lmdb/`
//! (`data.mdb`, `lock.mdb`).
//!
//! Durability: `full` is LMDB's default (each commit syncs the data file and the meta page),
//! `normal` is `MDB_NOMETASYNC` (data synced at commit, the meta page at the next commit or
//! `sync`: a system crash may undo the last transaction, never corrupt), `off` is
//! `MDB_NOSYNC` (nothing synced until `sync`; a kill -9 loses nothing, the OS still holds the
//! writes). Reads use LMDB's default thread-local reader slots, as its users do.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CompactionOption, Env, EnvFlags, EnvOpenOptions, MdbError};

use super::{AdapterError, AdapterResult, Engine, EngineOptions, ErrorKind, Session, Txn};

/// The memory map's size, which is also the largest the data file may grow (LMDB returns
/// `MDB_MAP_FULL` beyond it, counted as `limit`). 64 GiB: `scale/sweep` runs peers to 10M
/// records of 100-byte values (about 1.3 GB of user data, 2-4 GB of LMDB file at its
/// half-full random-insert pages), `scale/10m` the same, `bench/redb-suite` at redb's 5M
/// about 2.6 GiB; 64 GiB leaves room for `scale/100m` (14 GB of data) too. The map is
/// virtual address space only: the file grows as pages are written (no `MDB_WRITEMAP`).
pub const MAP_BYTES: usize = 64 << 30;

/// Reader slots: the concurrency scenarios run 100 threads and `bench/redb-suite` 32
/// reader threads, each holding one slot (LMDB's default is 126); 512 leaves room for the
/// kill -9 children's threads and sessions that outlive a phase.
const READERS_MAX: u32 = 512;

/// The directory under the data dir that holds LMDB's two files.
pub const DIR: &str = "lmdb";

type Db<'e> = heed::Database<'e, Bytes, Bytes>;

/// LMDB behind the adapter trait.
pub struct LmdbEngine {
    name: &'static str,
    path: PathBuf,
    flags: EnvFlags,
    env: Option<Env>,
}

impl LmdbEngine {
    /// Opens or creates the environment in directory `path`; `mode` is `full`, `normal` or
    /// `off`.
    ///
    /// # Errors
    /// Unknown modes and LMDB's open errors.
    pub fn open(path: &Path, mode: &str, _options: &EngineOptions) -> AdapterResult<LmdbEngine> {
        let (name, flags) = match mode {
            "full" => ("lmdb-full", EnvFlags::empty()),
            "normal" => ("lmdb-normal", EnvFlags::NO_META_SYNC),
            "off" => ("lmdb-off", EnvFlags::NO_SYNC),
            other => {
                return Err(AdapterError::new(
                    ErrorKind::Invalid,
                    format!("lmdb mode `{other}`"),
                ))
            }
        };
        std::fs::create_dir_all(path).map_err(|e| super::io_error("create", path, &e))?;
        let mut engine = LmdbEngine {
            name,
            path: path.to_path_buf(),
            flags,
            env: None,
        };
        engine.reopen()?;
        Ok(engine)
    }

    fn env(&self) -> AdapterResult<&Env> {
        self.env
            .as_ref()
            .ok_or_else(|| AdapterError::new(ErrorKind::Other, "lmdb is closed"))
    }

    /// The unnamed database, which exists in every environment.
    fn db(&self) -> AdapterResult<Db<'_>> {
        let env = self.env()?;
        let rtxn = env.read_txn().map_err(map_err)?;
        let opened = env
            .open_databases_and_commit(rtxn, |opener, rtxn| {
                opener
                    .open_database::<Bytes, Bytes>(rtxn, None)
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(map_err)?;
        match opened {
            heed::CommitOrAbort::Commit(Some(db)) => Ok(db),
            _ => Err(AdapterError::new(
                ErrorKind::Corruption,
                "lmdb: the unnamed database is missing",
            )),
        }
    }

    fn open_env(&self) -> AdapterResult<Env> {
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_BYTES).max_readers(READERS_MAX);
        // SAFETY: heed marks opening unsafe because the memory map is undefined behaviour if
        // another process or this one modifies the file behind LMDB's back. Only this
        // adapter opens `path` (one handle at a time: `reopen` drops the old one first).
        unsafe {
            options.flags(self.flags);
            options.open(&self.path)
        }
        .map_err(map_err)
    }

    /// The compacting copy (`mdb_env_copy2` with `MDB_CP_COMPACT`) replaces the data file.
    fn compact_now(&mut self) -> AdapterResult<()> {
        let copy = self.path.join("compact.mdb");
        {
            let env = self.env()?;
            drop(
                env.copy_to_path(&copy, CompactionOption::Enabled)
                    .map_err(map_err)?,
            );
        }
        drop(self.env.take());
        let data = self.path.join("data.mdb");
        std::fs::rename(&copy, &data).map_err(|e| super::io_error("rename", &data, &e))?;
        self.reopen()
    }
}

fn map_err(e: heed::Error) -> AdapterError {
    let kind = match &e {
        heed::Error::Io(io) if io.raw_os_error() == Some(28) => ErrorKind::DiskFull,
        heed::Error::Io(_) => ErrorKind::Io,
        heed::Error::Mdb(MdbError::MapFull | MdbError::TxnFull | MdbError::ReadersFull) => {
            ErrorKind::Limit
        }
        heed::Error::Mdb(
            MdbError::Corrupted | MdbError::PageNotFound | MdbError::Invalid | MdbError::Panic,
        ) => ErrorKind::Corruption,
        heed::Error::Mdb(MdbError::BadValSize) => ErrorKind::Limit,
        _ => ErrorKind::Other,
    };
    AdapterError::new(kind, format!("lmdb: {e}"))
}

impl Engine for LmdbEngine {
    fn name(&self) -> &str {
        self.name
    }
    fn durable_commits(&self) -> bool {
        self.flags.is_empty()
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        Ok(Box::new(LmdbSession {
            env: self.env()?,
            db: self.db()?,
        }))
    }
    fn sync(&self) -> AdapterResult<()> {
        self.env()?.force_sync().map_err(map_err)
    }
    fn reopen(&mut self) -> AdapterResult<()> {
        // The only handle: dropping it closes the environment (heed refuses a second open
        // of a path that is still open).
        drop(self.env.take());
        let env = self.open_env()?;
        self.env = Some(env);
        Ok(())
    }
    fn close(mut self: Box<Self>) -> AdapterResult<()> {
        if self.env.is_some() {
            self.sync()?;
        }
        drop(self.env.take());
        Ok(())
    }
    fn key_count(&self) -> Option<AdapterResult<u64>> {
        let count = || {
            let db = self.db()?;
            let rtxn = self.env()?.read_txn().map_err(map_err)?;
            db.len(&rtxn).map_err(map_err)
        };
        Some(count())
    }
    fn compact(&mut self) -> Option<AdapterResult<()>> {
        Some(self.compact_now())
    }
}

struct LmdbSession<'e> {
    env: &'e Env,
    db: Db<'e>,
}

impl<'e> LmdbSession<'e> {
    fn write<T>(
        &mut self,
        body: impl FnOnce(&mut heed::RwTxn<'e>, Db<'e>) -> AdapterResult<T>,
    ) -> AdapterResult<T> {
        let mut txn = self.env.write_txn().map_err(map_err)?;
        match body(&mut txn, self.db) {
            Ok(value) => {
                txn.commit().map_err(map_err)?;
                Ok(value)
            }
            Err(e) => {
                txn.abort();
                Err(e)
            }
        }
    }
}

impl Session for LmdbSession<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        if key.is_empty() {
            return Ok(false); // LMDB cannot store an empty key, and refuses to look one up.
        }
        let txn = self.env.read_txn().map_err(map_err)?;
        match self.db.get(&txn, key).map_err(map_err)? {
            Some(v) => {
                value_out.extend_from_slice(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.write(|t, db| db.put(t, key, value).map_err(map_err))
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.write(|t, db| db.delete(t, key).map_err(map_err))
    }
    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        let txn = self.env.read_txn().map_err(map_err)?;
        // LMDB refuses an empty key (MDB_BAD_VALSIZE), even as a bound: none sorts lower.
        let lower = if start.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Included(start)
        };
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (lower, Bound::Unbounded);
        let mut count = 0;
        for entry in self
            .db
            .range(&txn, &bounds)
            .map_err(map_err)?
            .take(count_max)
        {
            let (k, v) = entry.map_err(map_err)?;
            visit(k, v);
            count += 1;
        }
        debug_assert!(count <= count_max);
        Ok(count)
    }
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        self.write(|txn, db| body(&mut LmdbTxn { txn, db }))
    }
}

struct LmdbTxn<'t, 'e> {
    txn: &'t mut heed::RwTxn<'e>,
    db: Db<'e>,
}

impl Txn for LmdbTxn<'_, '_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        match self.db.get(self.txn, key).map_err(map_err)? {
            Some(v) => {
                value_out.extend_from_slice(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.db.put(self.txn, key, value).map_err(map_err)
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.db.delete(self.txn, key).map_err(map_err)
    }
}
