//! Executes operations against one session, with reusable key and value buffers, and checks
//! every read when `verify_reads` is on.

use std::sync::Arc;

use crate::adapter::{AdapterResult, Session, Txn};
use crate::gen::value::VALUE_HEADER_BYTES;
use crate::gen::{KeyEncoder, KeySpace, ValueGen};
use crate::workload::Op;

/// Most verification failures kept verbatim per thread; the rest are only counted.
pub const VERIFY_DETAILS_MAX: usize = 10;

/// Shared, read-only inputs of every worker of a phase.
pub struct DataCtx {
    pub keys: KeyEncoder,
    pub values: ValueGen,
    pub keyspace: Arc<KeySpace>,
    /// Check every value read (and every key that must exist).
    pub verify_reads: bool,
    /// The workload deletes keys, so a missing key is not by itself a failure.
    pub deletes_possible: bool,
}

/// Outcome of read verification in one thread.
#[derive(Debug, Default, Clone)]
pub struct VerifyLog {
    /// Values (and required keys) checked.
    pub checked: u64,
    /// Checks that failed.
    pub failed: u64,
    /// The first failures, in detail.
    pub details: Vec<String>,
}

impl VerifyLog {
    fn fail(&mut self, detail: String) {
        self.failed += 1;
        if self.details.len() < VERIFY_DETAILS_MAX {
            self.details.push(detail);
        }
    }

    /// Adds another thread's log.
    pub fn merge(&mut self, other: VerifyLog) {
        self.checked += other.checked;
        self.failed += other.failed;
        for d in other.details {
            if self.details.len() < VERIFY_DETAILS_MAX {
                self.details.push(d);
            }
        }
    }
}

/// One thread's executor.
pub struct Worker<'e, 'c> {
    session: Box<dyn Session + 'e>,
    ctx: &'c DataCtx,
    key: Vec<u8>,
    value: Vec<u8>,
    read: Vec<u8>,
    version_next: u64,
    pub verify: VerifyLog,
}

/// Bits of a version that count writes within a thread; the thread number sits above them so
/// versions written by different threads never collide.
const VERSION_THREAD_SHIFT: u32 = 40;

impl<'e, 'c> Worker<'e, 'c> {
    #[must_use]
    pub fn new(session: Box<dyn Session + 'e>, ctx: &'c DataCtx, thread: usize) -> Self {
        let key_bytes_max = ctx.keys.key_bytes_max();
        Worker {
            session,
            ctx,
            key: Vec::with_capacity(key_bytes_max),
            value: Vec::new(),
            read: Vec::new(),
            version_next: ((thread as u64) + 1) << VERSION_THREAD_SHIFT,
            verify: VerifyLog::default(),
        }
    }

    /// Runs `op`; returns its weight (1). Insert acknowledgement happens here.
    ///
    /// # Errors
    /// The adapter's error; verification failures are logged, not returned.
    pub fn execute(&mut self, op: &Op) -> AdapterResult<u64> {
        match op {
            Op::Read { key } => self.read(*key),
            Op::Update { key } => self.write(*key),
            Op::Insert { key } => {
                let outcome = self.write(*key);
                match outcome {
                    Ok(_) => self.ctx.keyspace.acknowledge_insert(*key),
                    Err(_) => self.ctx.keyspace.abandon_insert(*key),
                }
                outcome
            }
            Op::Scan { start, len } => self.scan(*start, *len),
            Op::ReadModifyWrite { key } => self.transaction(std::slice::from_ref(key)),
            Op::Delete { key } => {
                self.ctx.keys.encode(*key, &mut self.key);
                self.session.delete(&self.key).map(|_| 1)
            }
            Op::Txn { keys } => self.transaction(keys),
        }
    }

    /// Writes records `indexes` (version 0) in one transaction (load phase); returns how many.
    ///
    /// # Errors
    /// The adapter's error (the batch is rolled back).
    pub fn load(&mut self, indexes: &[u64]) -> AdapterResult<u64> {
        let Worker {
            session,
            ctx,
            key,
            value,
            ..
        } = self;
        if let [index] = indexes {
            ctx.keys.encode(*index, key);
            ctx.values.generate(*index, 0, value);
            return session.put(key, value).map(|()| 1);
        }
        session.transaction(&mut |txn: &mut dyn Txn| {
            for &index in indexes {
                ctx.keys.encode(index, key);
                ctx.values.generate(index, 0, value);
                txn.put(key, value)?;
            }
            Ok(())
        })?;
        Ok(indexes.len() as u64)
    }

    fn next_version(&mut self) -> u64 {
        let v = self.version_next;
        self.version_next += 1;
        v
    }

    fn read(&mut self, index: u64) -> AdapterResult<u64> {
        // Read the frontier before the read: every index below it was acknowledged earlier.
        let must_exist = self.must_exist(index);
        self.ctx.keys.encode(index, &mut self.key);
        let found = self.session.get(&self.key, &mut self.read)?;
        if self.ctx.verify_reads {
            check_read(
                self.ctx,
                &mut self.verify,
                index,
                must_exist,
                found,
                &self.read,
            );
        }
        Ok(1)
    }

    fn must_exist(&self, index: u64) -> bool {
        self.ctx.verify_reads
            && !self.ctx.deletes_possible
            && index < self.ctx.keyspace.acked_count()
    }

    fn write(&mut self, index: u64) -> AdapterResult<u64> {
        let version = self.next_version();
        self.ctx.keys.encode(index, &mut self.key);
        self.ctx.values.generate(index, version, &mut self.value);
        self.session.put(&self.key, &self.value).map(|()| 1)
    }

    fn scan(&mut self, start: u64, len: u64) -> AdapterResult<u64> {
        self.ctx.keys.encode(start, &mut self.key);
        let count_max = usize::try_from(len).unwrap_or(usize::MAX);
        // `value` holds the previous scanned key (reused buffer; no allocation per row).
        let Worker {
            session,
            ctx,
            key,
            value: previous,
            read,
            verify,
            ..
        } = self;
        previous.clear();
        let mut first = true;
        let count = session.scan(key, count_max, &mut |k, v| {
            if ctx.verify_reads {
                let prev = if first {
                    None
                } else {
                    Some(previous.as_slice())
                };
                check_scanned(ctx, verify, key, prev, k, v, read);
                previous.clear();
                previous.extend_from_slice(k);
                first = false;
            }
        })?;
        debug_assert!(count <= count_max);
        Ok(1)
    }

    /// Reads then writes every key of `indexes` in one transaction.
    fn transaction(&mut self, indexes: &[u64]) -> AdapterResult<u64> {
        let first_version = self.version_next;
        self.version_next += indexes.len() as u64;
        // Every index below the frontier read now was committed before this transaction began.
        let acked = self.ctx.keyspace.acked_count();
        let required = self.ctx.verify_reads && !self.ctx.deletes_possible;
        let Worker {
            session,
            ctx,
            key,
            value,
            read,
            verify,
            ..
        } = self;
        session.transaction(&mut |txn: &mut dyn Txn| {
            for (n, &index) in indexes.iter().enumerate() {
                ctx.keys.encode(index, key);
                let found = txn.get(key, read)?;
                if ctx.verify_reads {
                    check_read(ctx, verify, index, required && index < acked, found, read);
                }
                ctx.values.generate(index, first_version + n as u64, value);
                txn.put(key, value)?;
            }
            Ok(())
        })?;
        Ok(1)
    }
}

fn check_read(
    ctx: &DataCtx,
    log: &mut VerifyLog,
    index: u64,
    must_exist: bool,
    found: bool,
    bytes: &[u8],
) {
    log.checked += 1;
    if !found {
        if must_exist {
            log.fail(format!(
                "key {index} ({}) is missing",
                hex_prefix(&ctx.keys.key(index))
            ));
        }
        return;
    }
    if let Err(e) = ctx.values.verify(index, bytes) {
        log.fail(format!(
            "read of key {index} ({}): {e} ({} bytes, starting {})",
            hex_prefix(&ctx.keys.key(index)),
            bytes.len(),
            hex_prefix(bytes)
        ));
    }
}

/// Checks one pair of a scan: ascending keys from the start key, and a value that verifies
/// against the index stored in its own header and re-encodes to the scanned key.
fn check_scanned(
    ctx: &DataCtx,
    log: &mut VerifyLog,
    start_key: &[u8],
    previous: Option<&[u8]>,
    k: &[u8],
    v: &[u8],
    key_buf: &mut Vec<u8>,
) {
    log.checked += 1;
    if k < start_key || previous.is_some_and(|p| k <= p) {
        log.fail(format!(
            "scan from {} returned {} out of order",
            hex_prefix(start_key),
            hex_prefix(k)
        ));
        return;
    }
    let Some(index) = header_index(v) else {
        log.fail(format!(
            "scan: value under {} too short ({} bytes)",
            hex_prefix(k),
            v.len()
        ));
        return;
    };
    if let Err(e) = ctx.values.verify(index, v) {
        log.fail(format!("scan: value under {}: {e}", hex_prefix(k)));
        return;
    }
    ctx.keys.encode(index, key_buf);
    if key_buf.as_slice() != k {
        log.fail(format!(
            "scan: value of key {index} found under {}",
            hex_prefix(k)
        ));
    }
}

/// The key index a harness value carries in its header (bytes 8..16, little-endian; see
/// `gen::value`'s layout). None for values shorter than a header.
fn header_index(v: &[u8]) -> Option<u64> {
    if v.len() < VALUE_HEADER_BYTES {
        return None;
    }
    let bytes: [u8; 8] = v.get(8..16)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Hex of the first bytes, enough to recognize a key or a value header in a failure message.
fn hex_prefix(bytes: &[u8]) -> String {
    const HEX_PREFIX_BYTES_MAX: usize = 24;
    let mut s: String = bytes
        .iter()
        .take(HEX_PREFIX_BYTES_MAX)
        .map(|b| format!("{b:02x}"))
        .collect();
    if bytes.len() > HEX_PREFIX_BYTES_MAX {
        s.push_str("..");
    }
    s
}
