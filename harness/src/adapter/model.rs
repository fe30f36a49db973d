//! `model`: a `BTreeMap` behind a lock, the reference the other engines are compared with.
//! Everything is in memory; `reopen` keeps the contents (the model never loses data).

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use super::{AdapterResult, Engine, Session, Txn};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The in-memory reference engine.
pub struct ModelEngine {
    map: RwLock<Map>,
}

impl ModelEngine {
    #[must_use]
    pub fn new() -> ModelEngine {
        ModelEngine {
            map: RwLock::new(BTreeMap::new()),
        }
    }

    /// Number of keys (tests).
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// True when empty (tests).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }
}

impl Default for ModelEngine {
    fn default() -> ModelEngine {
        ModelEngine::new()
    }
}

impl Engine for ModelEngine {
    fn name(&self) -> &str {
        "model"
    }
    fn durable_commits(&self) -> bool {
        false
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        Ok(Box::new(ModelSession { map: &self.map }))
    }
    fn sync(&self) -> AdapterResult<()> {
        Ok(())
    }
    fn reopen(&mut self) -> AdapterResult<()> {
        Ok(())
    }
    fn close(self: Box<Self>) -> AdapterResult<()> {
        Ok(())
    }
}

struct ModelSession<'a> {
    map: &'a RwLock<Map>,
}

fn copy_into(found: Option<&Vec<u8>>, value_out: &mut Vec<u8>) -> bool {
    value_out.clear();
    match found {
        Some(v) => {
            value_out.extend_from_slice(v);
            true
        }
        None => false,
    }
}

impl Session for ModelSession<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        Ok(copy_into(self.map.read().get(key), value_out))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.map.write().insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        Ok(self.map.write().remove(key).is_some())
    }

    fn scan(
        &mut self,
        start: &[u8],
        count_max: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        let map = self.map.read();
        let mut count = 0;
        let range = map.range::<[u8], _>((Bound::Included(start), Bound::Unbounded));
        for (k, v) in range.take(count_max) {
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
        // Hold the write lock for the whole transaction (serializable), and stage writes so an
        // error leaves the map untouched.
        let mut map = self.map.write();
        let mut txn = ModelTxn {
            map: &map,
            staged: BTreeMap::new(),
        };
        body(&mut txn)?;
        let staged = txn.staged;
        for (k, v) in staged {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }
}

struct ModelTxn<'a> {
    map: &'a Map,
    staged: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl ModelTxn<'_> {
    fn current(&self, key: &[u8]) -> Option<&Vec<u8>> {
        match self.staged.get(key) {
            Some(staged) => staged.as_ref(),
            None => self.map.get(key),
        }
    }
}

impl Txn for ModelTxn<'_> {
    fn get(&mut self, key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        Ok(copy_into(self.current(key), value_out))
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> AdapterResult<()> {
        self.staged.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> AdapterResult<bool> {
        let existed = self.current(key).is_some();
        self.staged.insert(key.to_vec(), None);
        Ok(existed)
    }
}
