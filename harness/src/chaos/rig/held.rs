//! Two workload shapes of the rig that plain commits never reach.
//!
//! - **A held reader** (`[faults] long_reader_every`): a read snapshot opened after a commit
//!   and held across `long_reader_commits` further commits, checkpoints included. Every
//!   commit it reads a few keys, and when it closes it reads them all: each must show the
//!   version the key had when the snapshot opened. Once it is closed, every key is read
//!   again through a fresh snapshot against the acknowledged state. A checkpoint that copies
//!   past a reader's snapshot, or resets the WAL it still reads, shows here.
//! - **Delete, then put, in one transaction** (`[faults] delete_put_every`): a put, then a
//!   run of present keys deleted, then about half of them put back in the same transaction,
//!   so the puts land in leaves the deletes just merged or freed.

use anyhow::{anyhow, Result};

use super::{kv_key, names, Obs, Rig, KV};

/// Keys the held reader reads after each commit while it is open.
const HELD_READS_PER_COMMIT: u64 = 4;
/// Commits a reader is held at most: its WAL generation cannot be reset while it lives, so
/// the WAL grows with every commit it outlives.
pub const LONG_READER_COMMITS_MAX: u64 = 10_000;
/// Keys one delete-then-put transaction covers at most: enough to empty several leaves of
/// the smallest page size, few enough to stay one transaction's worth of frames.
pub const DELETE_PUT_KEYS_MAX: u64 = 512;

/// A read snapshot held across commits, with what each key held when it opened.
pub(super) struct HeldReader {
    txn: engine::ReadTxn,
    /// Per key: its version when the snapshot opened (`None` inside: absent), or `None`
    /// when its last write's outcome was unknown then (not judged).
    expected: Vec<Option<Option<u64>>>,
    /// The commit count at which the reader closes.
    closes_at: u64,
    opened_at: u64,
}

impl Rig {
    /// After each commit: opens, exercises or closes the held reader.
    pub(super) fn held_reader_step(&mut self) -> Result<()> {
        let every = self.cfg.long_reader_every;
        if every == 0 {
            return Ok(());
        }
        if self.held.is_none() {
            if self.commits.is_multiple_of(every) {
                self.open_held_reader()?;
            }
            return Ok(());
        }
        for _ in 0..HELD_READS_PER_COMMIT {
            let key = self.rng.below(self.cfg.keys_n);
            self.held_read(key);
        }
        if self
            .held
            .as_ref()
            .is_some_and(|h| self.commits >= h.closes_at)
        {
            for key in 0..self.cfg.keys_n {
                self.held_read(key);
            }
            self.held = None;
            self.verify_live()?;
        }
        Ok(())
    }

    fn open_held_reader(&mut self) -> Result<()> {
        let txn = match self.db()?.begin_read() {
            Ok(txn) => txn,
            // The power went out, or an I/O fault was planned: the crash step judges.
            Err(_) if self.io_faults_expected || self.storage.is_crashed() => return Ok(()),
            Err(e) => return Err(anyhow!("held reader: begin_read: {e}")),
        };
        let mut expected = Vec::with_capacity(usize::try_from(self.cfg.keys_n)?);
        for key in 0..self.cfg.keys_n {
            let s = self.oracle.state(key)?;
            let settled = !(s.pending_put || s.pending_delete);
            expected.push(settled.then_some(s.present.then_some(u64::from(s.version))));
        }
        self.held = Some(HeldReader {
            txn,
            expected,
            closes_at: self.commits + self.cfg.long_reader_commits,
            opened_at: self.commits,
        });
        Ok(())
    }

    /// One read through the held snapshot: the version `key` had when it opened.
    fn held_read(&mut self, key: u64) {
        let Some(held) = self.held.take() else {
            return;
        };
        let want = held
            .expected
            .get(usize::try_from(key).unwrap_or(usize::MAX));
        let Some(&Some(want)) = want else {
            self.held = Some(held);
            return;
        };
        let kv = match held.txn.table(KV) {
            Ok(t) => t,
            Err(_) if self.io_faults_expected || self.storage.is_crashed() => {
                self.held = Some(held);
                return;
            }
            Err(e) => {
                let d = format!("{}: held reader: table: {e}", self.label);
                self.out.tally.fail(names::VERIFIED_READS, d);
                self.held = Some(held);
                return;
            }
        };
        if let Obs::Known(seen) = self.observe(&held.txn, &kv, key, key, true) {
            if seen == want {
                self.out.tally.pass(names::VERIFIED_READS, 1);
            } else {
                let d = format!(
                    "{}: held reader opened after commit {} (now {}): key {key} shows {seen:?}, \
                     its snapshot held {want:?}",
                    self.label, held.opened_at, self.commits
                );
                self.out.tally.fail(names::VERIFIED_READS, d);
            }
        }
        self.held = Some(held);
    }

    /// The keys of a delete-then-put transaction: a run of present, settled keys from a
    /// drawn start, and the about half of them put back (`true`) after all are deleted.
    pub(super) fn delete_put_keys(&mut self) -> Vec<(u64, bool)> {
        let start = self.rng.below(self.cfg.keys_n);
        let end = (start + DELETE_PUT_KEYS_MAX).min(self.cfg.keys_n);
        let settled_present = |rig: &Rig, k: u64| {
            rig.oracle
                .state(k)
                .is_ok_and(|s| s.present && !s.pending_put && !s.pending_delete)
        };
        let keys: Vec<u64> = (start..end).filter(|&k| settled_present(self, k)).collect();
        keys.into_iter()
            .map(|k| (k, self.rng.below(2) == 0))
            .collect()
    }
}

/// Puts the run's first key that is put back, deletes every key of the run, then puts
/// those with a value back: the puts land in leaves the deletes merged or freed, the first
/// of them after a put of the same transaction already found its leaf.
pub(super) fn delete_then_put(
    tx: &mut engine::WriteTxn,
    kv: &engine::Table,
    writes: &[(u64, Option<Vec<u8>>)],
) -> engine::Result<()> {
    if let Some((k, Some(value))) = writes.iter().find(|w| w.1.is_some()) {
        tx.put(kv, &kv_key(*k), value)?;
    }
    for (k, _) in writes {
        tx.delete(kv, &kv_key(*k))?;
    }
    for (k, value) in writes {
        if let Some(value) = value {
            tx.put(kv, &kv_key(*k), value)?;
        }
    }
    Ok(())
}
