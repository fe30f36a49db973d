//! `redb-immediate`, `redb-none`: redb 4.5 with one table of byte keys and byte values.
//! Durability::None commits are not persisted until a later Immediate commit (`sync`).

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::{AdapterError, AdapterResult, Engine, EngineOptions, ErrorKind, Session, Txn};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// redb behind the adapter trait.
pub struct RedbEngine {
    name: &'static str,
    path: PathBuf,
    durable: bool,
    cache_bytes: usize,
    db: Option<Database>,
}

impl RedbEngine {
    /// Opens or creates `path`; `durable` picks Durability::Immediate over None.
    ///
    /// # Errors
    /// redb's open errors.
    pub fn open(path: &Path, durable: bool, options: &EngineOptions) -> AdapterResult<RedbEngine> {
        let mut engine = RedbEngine {
            name: if durable {
                "redb-immediate"
            } else {
                "redb-none"
            },
            path: path.to_path_buf(),
            durable,
            cache_bytes: options.cache_bytes,
            db: None,
        };
        engine.reopen()?;
        Ok(engine)
    }

    fn db(&self) -> AdapterResult<&Database> {
        self.db
            .as_ref()
            .ok_or_else(|| AdapterError::new(ErrorKind::Other, "redb is closed"))
    }

    fn durability(&self) -> Durability {
        if self.durable {
            Durability::Immediate
        } else {
            Durability::None
        }
    }
}

fn map_err<E: Into<redb::Error>>(e: E) -> AdapterError {
    let e: redb::Error = e.into();
    let kind = match &e {
        redb::Error::Corrupted(_) => ErrorKind::Corruption,
        redb::Error::Io(io) if io.raw_os_error() == Some(28) => ErrorKind::DiskFull,
        redb::Error::Io(_) => ErrorKind::Io,
        redb::Error::ValueTooLarge(_) => ErrorKind::Limit,
        redb::Error::TransactionPoisoned => ErrorKind::Poisoned,
        _ => ErrorKind::Other,
    };
    AdapterError::new(kind, format!("redb: {e}"))
}

impl Engine for RedbEngine {
    fn name(&self) -> &str {
        self.name
    }
    fn durable_commits(&self) -> bool {
        self.durable
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        Ok(Box::new(RedbSession {
            db: self.db()?,
            durability: self.durability(),
        }))
    }
    fn sync(&self) -> AdapterResult<()> {
        // An empty Immediate commit persists every earlier None commit.
        let mut txn = self.db()?.begin_write().map_err(map_err)?;
        txn.set_durability(Durability::Immediate).map_err(map_err)?;
        txn.commit().map_err(map_err)
    }
    fn reopen(&mut self) -> AdapterResult<()> {
        drop(self.db.take());
        let db = Database::builder()
            .set_cache_size(self.cache_bytes)
            .create(&self.path)
            .map_err(map_err)?;
        let txn = db.begin_write().map_err(map_err)?;
        drop(txn.open_table(KV).map_err(map_err)?);
        txn.commit().map_err(map_err)?;
        self.db = Some(db);
        Ok(())
    }
    fn key_count(&self) -> Option<AdapterResult<u64>> {
        let count = || {
            let txn = self.db()?.begin_read().map_err(map_err)?;
            let table = txn.open_table(KV).map_err(map_err)?;
            table.len().map_err(map_err)
        };
        Some(count())
    }
    fn compact(&mut self) -> Option<AdapterResult<()>> {
        let db = self.db.as_mut()?;
        Some(db.compact().map(drop).map_err(map_err))
    }
    fn close(mut self: Box<Self>) -> AdapterResult<()> {
        if !self.durable {
            self.sync()?;
        }
        drop(self.db.take());
        Ok(())
    }
}

struct RedbSession<'a> {
    db: &'a Database,
    durability: Durability,
}

impl RedbSession<'_> {
    fn write<T>(
        &mut self,
        body: impl FnOnce(&mut redb::Table<'_, &'static [u8], &'static [u8]>) -> AdapterResult<T>,
    ) -> AdapterResult<T> {
        let mut txn = self.db.begin_write().map_err(map_err)?;
        txn.set_durability(self.durability).map_err(map_err)?;
        let outcome = {
            let mut table = txn.open_table(KV).map_err(map_err)?;
            body(&mut table)
        };
        match outcome {
            Ok(value) => {
                txn.commit().map_err(map_err)?;
                Ok(value)
            }
            Err(e) => {
                txn.abort().map_err(map_err)?;
                Err(e)
            }
        }
    }
}

impl Session for RedbSession<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        let txn = self.db.begin_read().map_err(map_err)?;
        let table = txn.open_table(KV).map_err(map_err)?;
        match table.get(key).map_err(map_err)? {
            Some(v) => {
                value_out.extend_from_slice(v.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.write(|t| t.insert(key, value).map(drop).map_err(map_err))
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.write(|t| t.remove(key).map(|old| old.is_some()).map_err(map_err))
    }
    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        let txn = self.db.begin_read().map_err(map_err)?;
        let table = txn.open_table(KV).map_err(map_err)?;
        let mut count = 0;
        for entry in table
            .range::<&[u8]>(start..)
            .map_err(map_err)?
            .take(count_max)
        {
            let (k, v) = entry.map_err(map_err)?;
            visit(k.value(), v.value());
            count += 1;
        }
        debug_assert!(count <= count_max);
        Ok(count)
    }
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        self.write(|table| body(&mut RedbTxn { table }))
    }
}

struct RedbTxn<'t, 'txn> {
    table: &'t mut redb::Table<'txn, &'static [u8], &'static [u8]>,
}

impl Txn for RedbTxn<'_, '_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        match self.table.get(key).map_err(map_err)? {
            Some(v) => {
                value_out.extend_from_slice(v.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.table.insert(key, value).map(drop).map_err(map_err)
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        self.table
            .remove(key)
            .map(|old| old.is_some())
            .map_err(map_err)
    }
}
