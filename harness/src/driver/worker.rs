//! Executes operations against one session, with reusable key and value buffers, and checks
//! every read when `verify_reads` is on.

use std::sync::Arc;

use super::history::VersionBook;
use super::keyorder::KeyOrder;
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
    /// Every thread's writes, to judge reads for freshness (and hand out versions).
    pub book: VersionBook,
    /// The loaded keys in key order, to check scans for skipped keys (None: not checked).
    pub key_order: Option<KeyOrder>,
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
    /// Reads judged against the version book (see `history`).
    pub fresh_checked: u64,
    /// Reads that returned a stale or never-written version.
    pub fresh_failed: u64,
    /// The first stale reads, in detail.
    pub fresh_details: Vec<String>,
    /// Scans checked against the loaded keys for keys they skipped.
    pub scans_checked: u64,
    /// Scans that skipped a loaded key.
    pub scans_failed: u64,
    /// The first incomplete scans, in detail.
    pub scans_details: Vec<String>,
}

fn push_detail(details: &mut Vec<String>, detail: String) {
    if details.len() < VERIFY_DETAILS_MAX {
        details.push(detail);
    }
}

impl VerifyLog {
    fn fail(&mut self, detail: String) {
        self.failed += 1;
        push_detail(&mut self.details, detail);
    }

    fn judged(&mut self, verdict: Result<(), String>) {
        self.fresh_checked += 1;
        if let Err(detail) = verdict {
            self.fresh_failed += 1;
            push_detail(&mut self.fresh_details, detail);
        }
    }

    fn scanned(&mut self, verdict: Result<(), String>) {
        self.scans_checked += 1;
        if let Err(detail) = verdict {
            self.scans_failed += 1;
            push_detail(&mut self.scans_details, detail);
        }
    }

    /// Adds another thread's log.
    pub fn merge(&mut self, other: VerifyLog) {
        self.checked += other.checked;
        self.failed += other.failed;
        self.fresh_checked += other.fresh_checked;
        self.fresh_failed += other.fresh_failed;
        self.scans_checked += other.scans_checked;
        self.scans_failed += other.scans_failed;
        for (mine, theirs) in [
            (&mut self.details, other.details),
            (&mut self.fresh_details, other.fresh_details),
            (&mut self.scans_details, other.scans_details),
        ] {
            for d in theirs {
                push_detail(mine, d);
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
    thread: usize,
    pub verify: VerifyLog,
}

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
            thread,
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
                let stamp = self.ctx.book.begin_delete();
                let outcome = self.session.delete(&self.key);
                if outcome.is_ok() {
                    self.ctx.book.acknowledged(stamp, std::slice::from_ref(key));
                }
                outcome.map(|_| 1)
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

    fn read(&mut self, index: u64) -> AdapterResult<u64> {
        // Read the frontier and the book before the read: both describe writes acknowledged
        // before it began.
        let must_exist = self.must_exist(index);
        let floor = self.ctx.book.before_read(index);
        self.ctx.keys.encode(index, &mut self.key);
        let found = self.session.get(&self.key, &mut self.read)?;
        if self.ctx.verify_reads {
            check_read(
                self.ctx,
                &mut self.verify,
                (index, floor),
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
        let begun = self.ctx.book.begin(self.thread, 1);
        self.ctx.keys.encode(index, &mut self.key);
        self.ctx
            .values
            .generate(index, begun.version, &mut self.value);
        let outcome = self.session.put(&self.key, &self.value);
        let keys = std::slice::from_ref(&index);
        self.ctx
            .book
            .finish(self.thread, begun, keys, outcome.is_ok());
        outcome.map(|()| 1)
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
        let order = ctx.key_order.as_ref().filter(|_| ctx.verify_reads);
        let mut cursor = order.map(|o| o.cursor(key));
        let mut skipped = Ok(());
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
            if let (Some(o), Some(c)) = (order, cursor.as_mut()) {
                if skipped.is_ok() {
                    skipped = o.step(c, k);
                }
            }
        })?;
        debug_assert!(count <= count_max);
        if let (Some(o), Some(c)) = (order, cursor.as_ref()) {
            verify.scanned(skipped.and_then(|()| o.end(c, count, count_max)));
        }
        Ok(1)
    }

    /// Reads then writes every key of `indexes` in one transaction.
    fn transaction(&mut self, indexes: &[u64]) -> AdapterResult<u64> {
        // Every index below the frontier read now was committed before this transaction
        // began, and so was every write the book's floors stand for.
        let acked = self.ctx.keyspace.acked_count();
        let required = self.ctx.verify_reads && !self.ctx.deletes_possible;
        let floors: Vec<u64> = indexes
            .iter()
            .map(|&i| self.ctx.book.before_read(i))
            .collect();
        let begun = self.ctx.book.begin(self.thread, indexes.len() as u64);
        let Worker {
            session,
            ctx,
            key,
            value,
            read,
            verify,
            ..
        } = self;
        let outcome = session.transaction(&mut |txn: &mut dyn Txn| {
            for (n, (&index, &floor)) in indexes.iter().zip(&floors).enumerate() {
                ctx.keys.encode(index, key);
                let found = txn.get(key, read)?;
                if ctx.verify_reads {
                    let must_exist = required && index < acked;
                    check_read(ctx, verify, (index, floor), must_exist, found, read);
                }
                ctx.values.generate(index, begun.version + n as u64, value);
                txn.put(key, value)?;
            }
            Ok(())
        });
        let ok = outcome.is_ok();
        self.ctx.book.finish(self.thread, begun, indexes, ok);
        outcome.map(|()| 1)
    }
}

/// Checks one read of key `index` whose book floor was `floor` (taken before the read).
fn check_read(
    ctx: &DataCtx,
    log: &mut VerifyLog,
    (index, floor): (u64, u64),
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
    match ctx.values.verify(index, bytes) {
        Err(e) => log.fail(format!(
            "read of key {index} ({}): {e} ({} bytes, starting {})",
            hex_prefix(&ctx.keys.key(index)),
            bytes.len(),
            hex_prefix(bytes)
        )),
        Ok(version) if ctx.book.tracks(index) => log.judged(
            ctx.book
                .judge(version, floor)
                .map_err(|e| format!("read of key {index}: {e}")),
        ),
        Ok(_) => {}
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
    match ctx.values.verify(index, v) {
        Err(e) => {
            log.fail(format!("scan: value under {}: {e}", hex_prefix(k)));
            return;
        }
        // A scan's snapshot may predate writes acknowledged during it: only "never written".
        Ok(version) => {
            if let Err(e) = ctx.book.judge(version, 0) {
                log.fail(format!("scan: value under {}: {e}", hex_prefix(k)));
                return;
            }
        }
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
pub(super) fn header_index(v: &[u8]) -> Option<u64> {
    if v.len() < VALUE_HEADER_BYTES {
        return None;
    }
    let bytes: [u8; 8] = v.get(8..16)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Hex of the first bytes, enough to recognize a key or a value header in a failure message.
pub(super) fn hex_prefix(bytes: &[u8]) -> String {
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
