//! `fjall-full`, `fjall-off`: fjall 3.1 (a pure-Rust LSM tree) as a single-writer
//! transactional database with one keyspace "kv", in a directory `fjall/`.
//!
//! Durability: `full` commits each write transaction with `PersistMode::SyncAll` (the
//! journal is fsynced before the commit returns); `off` is fjall's default, a commit that
//! reaches the OS's buffers (`PersistMode::Buffer`): a kill -9 loses nothing, a power loss
//! what was not yet persisted. fjall has no mode between the two that bounds the loss, so
//! there is no `fjall-normal`.

use std::path::{Path, PathBuf};

use fjall::{
    KeyspaceCreateOptions, PersistMode, Readable, SingleWriterTxDatabase, SingleWriterTxKeyspace,
};

use super::{AdapterError, AdapterResult, Engine, EngineOptions, ErrorKind, Session, Txn};

/// The directory under the data dir that holds fjall's files.
pub const DIR: &str = "fjall";

/// The one keyspace every harness run uses.
const KEYSPACE: &str = "kv";

/// fjall behind the adapter trait.
pub struct FjallEngine {
    name: &'static str,
    path: PathBuf,
    durable: bool,
    cache_bytes: u64,
    open: Option<(SingleWriterTxDatabase, SingleWriterTxKeyspace)>,
}

impl FjallEngine {
    /// Opens or creates the database in directory `path`; `durable` picks a synced commit.
    ///
    /// # Errors
    /// fjall's open and recovery errors.
    pub fn open(path: &Path, durable: bool, options: &EngineOptions) -> AdapterResult<FjallEngine> {
        let mut engine = FjallEngine {
            name: if durable { "fjall-full" } else { "fjall-off" },
            path: path.to_path_buf(),
            durable,
            cache_bytes: u64::try_from(options.cache_bytes).unwrap_or(u64::MAX),
            open: None,
        };
        engine.reopen()?;
        Ok(engine)
    }

    fn handles(&self) -> AdapterResult<&(SingleWriterTxDatabase, SingleWriterTxKeyspace)> {
        self.open
            .as_ref()
            .ok_or_else(|| AdapterError::new(ErrorKind::Other, "fjall is closed"))
    }
}

fn map_err(e: fjall::Error) -> AdapterError {
    let kind = match &e {
        fjall::Error::Io(io) if io.raw_os_error() == Some(28) => ErrorKind::DiskFull,
        fjall::Error::Io(_) => ErrorKind::Io,
        fjall::Error::Poisoned => ErrorKind::Poisoned,
        fjall::Error::JournalRecovery(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::Decompress(_) => ErrorKind::Corruption,
        _ => ErrorKind::Other,
    };
    AdapterError::new(kind, format!("fjall: {e}"))
}

impl Engine for FjallEngine {
    fn name(&self) -> &str {
        self.name
    }
    fn durable_commits(&self) -> bool {
        self.durable
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        let (db, keyspace) = self.handles()?;
        Ok(Box::new(FjallSession {
            db,
            keyspace,
            durable: self.durable,
        }))
    }
    fn sync(&self) -> AdapterResult<()> {
        let (db, _) = self.handles()?;
        db.persist(PersistMode::SyncAll).map_err(map_err)
    }
    fn reopen(&mut self) -> AdapterResult<()> {
        // Dropping the last handle stops fjall's background threads and unlocks the folder.
        drop(self.open.take());
        let db = SingleWriterTxDatabase::builder(&self.path)
            .cache_size(self.cache_bytes)
            .open()
            .map_err(map_err)?;
        let keyspace = db
            .keyspace(KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(map_err)?;
        self.open = Some((db, keyspace));
        Ok(())
    }
    fn close(mut self: Box<Self>) -> AdapterResult<()> {
        if self.open.is_some() {
            self.sync()?;
        }
        drop(self.open.take());
        Ok(())
    }
    fn key_count(&self) -> Option<AdapterResult<u64>> {
        let count = || {
            let (_, keyspace) = self.handles()?;
            let n = keyspace.inner().len().map_err(map_err)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        };
        Some(count())
    }
    fn compact(&mut self) -> Option<AdapterResult<()>> {
        let major = || {
            let (_, keyspace) = self.handles()?;
            keyspace.inner().major_compact().map_err(map_err)
        };
        Some(major())
    }
}

struct FjallSession<'a> {
    db: &'a SingleWriterTxDatabase,
    keyspace: &'a SingleWriterTxKeyspace,
    durable: bool,
}

impl FjallSession<'_> {
    fn write<T>(
        &mut self,
        body: impl FnOnce(&mut fjall::SingleWriterWriteTx<'_>) -> AdapterResult<T>,
    ) -> AdapterResult<T> {
        let mut tx = self.db.write_tx();
        if self.durable {
            tx = tx.durability(Some(PersistMode::SyncAll));
        }
        match body(&mut tx) {
            Ok(value) => {
                tx.commit().map_err(map_err)?;
                Ok(value)
            }
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }
}

impl Session for FjallSession<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        match self.keyspace.get(key).map_err(map_err)? {
            Some(v) => {
                value_out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        let keyspace = self.keyspace;
        self.write(|tx| {
            tx.insert(keyspace, key, value);
            Ok(())
        })
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        let keyspace = self.keyspace;
        self.write(|tx| {
            tx.take(keyspace, key)
                .map(|old| old.is_some())
                .map_err(map_err)
        })
    }
    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        let mut count = 0;
        for guard in self.keyspace.inner().range(start..).take(count_max) {
            let (k, v) = guard.into_inner().map_err(map_err)?;
            visit(&k, &v);
            count += 1;
        }
        debug_assert!(count <= count_max);
        Ok(count)
    }
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        let keyspace = self.keyspace;
        self.write(|tx| body(&mut FjallTxn { tx, keyspace }))
    }
}

struct FjallTxn<'t, 'tx> {
    tx: &'t mut fjall::SingleWriterWriteTx<'tx>,
    keyspace: &'t SingleWriterTxKeyspace,
}

impl Txn for FjallTxn<'_, '_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        match self.tx.get(self.keyspace.inner(), key).map_err(map_err)? {
            Some(v) => {
                value_out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.tx.insert(self.keyspace, key, value);
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.tx
            .take(self.keyspace, key)
            .map(|old| old.is_some())
            .map_err(map_err)
    }
}
