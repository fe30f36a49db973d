//! Concurrent writers beside the rig's seeded workload (`[faults] writers = N`): N threads
//! commit to keys of their own in the `crowd` table as fast as the engine lets them, so the
//! rig's commits and theirs meet in group commits, and a power loss lands while commits are
//! in flight, acknowledged but not yet synced, or inside a checkpoint one of them started.
//! When the rig keeps a bank, each of their commits also moves money between two accounts:
//! the rig's live bank checks, each one read transaction, then run while transfers commit
//! beside them, so a read that strays from its snapshot sees a total that is off.
//!
//! Each writer's key holds its latest version. The power loss is judged like any other: a
//! version acknowledged before the crash must be recovered (or a newer one that was begun),
//! and nothing newer than the last version begun may appear. The acknowledged versions are
//! read *before* the storage is cut, the begun versions *after*, so neither bound can admit a
//! false alarm.
//!
//! The threads make a run's interleaving depend on the scheduler: the seed reproduces the
//! configuration and the rig's own stream, not which commit met which fsync.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use engine::Database;

use super::rig::{bank_balance, bank_value, kv_key, BANK, TRANSFER_MAX};
use crate::faults::rng::{hash, SplitMix64};
use crate::gen::{generate_value, verify_value};

/// Salt of the writers' random streams (transfers).
const SALT_CROWD: u64 = 0xC4A0_5003;

/// Most concurrent writers: enough to fill group commits on any machine the harness meets,
/// few enough that the rig's own thread still gets its turns at the writer lock.
pub const WRITERS_MAX: usize = 64;
/// The crowd's table.
pub const CROWD: &str = "crowd";
/// Writer key indexes sit far above kv and marker indexes, so a crowd value under another
/// key (or the reverse) fails verification as a wrong key.
const CROWD_INDEX_BASE: u64 = 1 << 41;
const CROWD_VALUE_BYTES: usize = 64;

/// One writer's progress, shared with the rig.
#[derive(Debug, Default)]
struct Progress {
    begun: AtomicU64,
    acked: AtomicU64,
}

/// The running writers of one episode (between an open and a crash).
pub struct Crowd {
    stop: Arc<AtomicBool>,
    progress: Arc<[Progress]>,
    handles: Vec<JoinHandle<()>>,
}

/// What the crowd had done when the power went: per writer, acknowledged and begun versions.
#[derive(Debug, Clone, Default)]
pub struct CrowdCut {
    pub acked: Vec<u64>,
    pub begun: Vec<u64>,
}

/// The key of writer `w`.
#[must_use]
pub fn crowd_key(w: usize) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'w';
    k[1..].copy_from_slice(&(w as u64).to_be_bytes());
    k
}

impl Crowd {
    /// Starts `first_versions.len()` writers on `db`; writer `w` writes versions from
    /// `first_versions[w]` up.
    #[must_use]
    pub fn start(db: &Arc<Database>, seed: u64, accounts: u64, first_versions: &[u64]) -> Crowd {
        let stop = Arc::new(AtomicBool::new(false));
        let progress: Arc<[Progress]> = first_versions
            .iter()
            .map(|&v| Progress {
                begun: AtomicU64::new(v.saturating_sub(1)),
                acked: AtomicU64::new(0),
            })
            .collect();
        let handles = (0..first_versions.len())
            .map(|w| {
                let (db, stop, progress) = (Arc::clone(db), stop.clone(), progress.clone());
                let me = Writer { w, seed, accounts };
                std::thread::spawn(move || write_loop(&db, me, &stop, &progress[w]))
            })
            .collect();
        Crowd {
            stop,
            progress,
            handles,
        }
    }

    /// Versions acknowledged so far; read before the storage is cut.
    #[must_use]
    pub fn acked(&self) -> Vec<u64> {
        let acked = self.progress.iter();
        acked.map(|p| p.acked.load(Ordering::SeqCst)).collect()
    }

    /// Stops and joins the writers (after the cut: what they do now is lost with the power);
    /// returns the cut with the versions begun.
    #[must_use]
    pub fn stop(mut self, acked: Vec<u64>) -> CrowdCut {
        self.stop.store(true, Ordering::SeqCst);
        for h in std::mem::take(&mut self.handles) {
            // A writer that panicked has begun no version past what it published.
            let _ = h.join();
        }
        let begun = self.progress.iter();
        let begun = begun.map(|p| p.begun.load(Ordering::SeqCst)).collect();
        CrowdCut { acked, begun }
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in std::mem::take(&mut self.handles) {
            let _ = h.join();
        }
    }
}

impl CrowdCut {
    /// Each writer's first version after the reopen: past every version it began, so no
    /// version is ever written twice.
    #[must_use]
    pub fn next_versions(&self) -> Vec<u64> {
        self.begun.iter().map(|b| b + 1).collect()
    }
}

/// Who a writer thread is.
#[derive(Debug, Clone, Copy)]
struct Writer {
    w: usize,
    seed: u64,
    /// Bank accounts of the rig (0 or 1: no transfers).
    accounts: u64,
}

/// Moves a seeded amount between two accounts inside `tx`, when the payer can pay.
fn transfer(tx: &mut engine::WriteTxn, accounts: u64, rng: &mut SplitMix64) -> engine::Result<()> {
    let bank = tx.table(BANK)?;
    let from = rng.below(accounts);
    let to = (from + 1 + rng.below(accounts - 1)) % accounts;
    let amount = (1 + rng.below(TRANSFER_MAX)) as i64;
    let balance = |tx: &engine::WriteTxn, a: u64| -> engine::Result<Option<i64>> {
        Ok(tx.get(&bank, &kv_key(a))?.and_then(|b| bank_balance(a, &b)))
    };
    if let (Some(bf), Some(bt)) = (balance(tx, from)?, balance(tx, to)?) {
        if bf >= amount {
            tx.put(&bank, &kv_key(from), &bank_value(from, bf - amount))?;
            tx.put(&bank, &kv_key(to), &bank_value(to, bt + amount))?;
        }
    }
    Ok(())
}

/// Commits version after version of the writer's key until told to stop or a commit fails
/// (the power went, or the fault layer failed it: the rig judges that elsewhere).
fn write_loop(db: &Database, me: Writer, stop: &AtomicBool, progress: &Progress) {
    let Writer { w, seed, accounts } = me;
    let mut rng = SplitMix64::new(hash(seed, SALT_CROWD, w as u64));
    let mut value = Vec::with_capacity(CROWD_VALUE_BYTES);
    while !stop.load(Ordering::SeqCst) {
        let version = progress.begun.load(Ordering::SeqCst) + 1;
        progress.begun.store(version, Ordering::SeqCst);
        generate_value(
            CROWD_INDEX_BASE + w as u64,
            version,
            seed,
            CROWD_VALUE_BYTES,
            &mut value,
        );
        let committed = (|| {
            let mut tx = db.begin_write()?;
            let table = tx.table(CROWD)?;
            tx.put(&table, &crowd_key(w), &value)?;
            if accounts > 1 {
                transfer(&mut tx, accounts, &mut rng)?;
            }
            tx.commit()
        })();
        if committed.is_err() {
            return;
        }
        progress.acked.store(version, Ordering::SeqCst);
    }
}

/// Judges writer `w`'s recovered value against the cut: `Ok(version)` when it is one the
/// writer began and no older than its last acknowledged one.
///
/// # Errors
/// What is wrong, for the durability check's detail.
pub fn judge(w: usize, seed: u64, recovered: Option<&[u8]>, cut: &CrowdCut) -> Result<u64, String> {
    let (acked, begun) = (cut.acked[w], cut.begun[w]);
    let Some(bytes) = recovered else {
        return if acked == 0 {
            Ok(0)
        } else {
            Err(format!(
                "concurrent writer {w}: key missing, though version {acked} was acknowledged"
            ))
        };
    };
    let version = verify_value(CROWD_INDEX_BASE + w as u64, seed, bytes)
        .map_err(|e| format!("concurrent writer {w}: recovered value damaged: {e}"))?;
    if version < acked {
        return Err(format!(
            "concurrent writer {w}: recovered version {version}, though version {acked} was \
             acknowledged before the power loss"
        ));
    }
    if version > begun {
        return Err(format!(
            "concurrent writer {w}: recovered version {version}, never written (last begun \
             {begun})"
        ));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_holds_the_value_between_acknowledged_and_begun() {
        let cut = CrowdCut {
            acked: vec![3, 0],
            begun: vec![5, 0],
        };
        let mut v = Vec::new();
        let at = |version: u64, v: &mut Vec<u8>| {
            generate_value(CROWD_INDEX_BASE, version, 9, CROWD_VALUE_BYTES, v);
            v.clone()
        };
        assert_eq!(judge(0, 9, Some(&at(4, &mut v)), &cut), Ok(4));
        assert!(
            judge(0, 9, Some(&at(2, &mut v)), &cut).is_err(),
            "lost an ack"
        );
        assert!(
            judge(0, 9, Some(&at(6, &mut v)), &cut).is_err(),
            "never begun"
        );
        assert!(judge(0, 9, None, &cut).is_err(), "missing");
        assert_eq!(judge(1, 9, None, &cut), Ok(0));
        assert!(
            judge(1, 9, Some(&at(1, &mut v)), &cut).is_err(),
            "another key"
        );
    }
}
