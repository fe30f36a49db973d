//! `null`: accepts every operation and keeps nothing. Runs on it measure the harness's own
//! cost per operation (key generation, timing, recording).

use super::{AdapterResult, Engine, Session, Txn};

/// The engine that does nothing.
pub struct NullEngine;

impl NullEngine {
    #[must_use]
    pub fn new() -> NullEngine {
        NullEngine
    }
}

impl Default for NullEngine {
    fn default() -> NullEngine {
        NullEngine
    }
}

impl Engine for NullEngine {
    fn name(&self) -> &str {
        "null"
    }
    fn stores_data(&self) -> bool {
        false
    }
    fn durable_commits(&self) -> bool {
        false
    }
    fn session(&self) -> AdapterResult<Box<dyn Session + '_>> {
        Ok(Box::new(NullSession))
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

struct NullSession;

impl Session for NullSession {
    fn get(&mut self, _key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        Ok(false)
    }
    fn put(&mut self, _key: &[u8], _value: &[u8]) -> AdapterResult<()> {
        Ok(())
    }
    fn delete(&mut self, _key: &[u8]) -> AdapterResult<bool> {
        Ok(false)
    }
    fn scan(
        &mut self,
        _start: &[u8],
        _count_max: usize,
        _visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> AdapterResult<usize> {
        Ok(0)
    }
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Txn) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        body(&mut NullTxn)
    }
}

struct NullTxn;

impl Txn for NullTxn {
    fn get(&mut self, _key: &[u8], value_out: &mut Vec<u8>) -> AdapterResult<bool> {
        value_out.clear();
        Ok(false)
    }
    fn put(&mut self, _key: &[u8], _value: &[u8]) -> AdapterResult<()> {
        Ok(())
    }
    fn delete(&mut self, _key: &[u8]) -> AdapterResult<bool> {
        Ok(false)
    }
}
