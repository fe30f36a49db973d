//! End to end: a toy append-only log store on `FaultStorage`, crashed with the FoundationDB
//! model, recovered from the crash image and judged by `ExpectedState` and `PrefixChecker`.
//! The correct store passes on every seed; each seeded bug (no fsync at commit; recovery that
//! skips a torn record instead of stopping) is caught on some seed.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use engine::{MemStorage, Storage, StorageFile};
use harness::faults::rng::{hash_bytes, SplitMix64};
use harness::faults::{CrashPreset, FaultPlan, FaultStorage};
use harness::oracle::{CheckMode, CommitWindow, ExpectedState, PrefixChecker};

/// key, version, seq, checksum: four little-endian u64.
const RECORD_BYTES: usize = 32;
/// Keys of the toy workloads: few, so keys are overwritten often.
const KEYS_N: u64 = 8;
/// Commits per run; the last is in flight (written, not synced, not acknowledged) at the
/// crash. Not a multiple of the Buffered sync interval, so several commits are unsynced.
const COMMITS_N: u64 = 153;
/// Seeds tried per configuration.
const SEEDS_N: u64 = 24;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    NoSyncAtCommit,
    SkipTornRecords,
}

struct ToyLog {
    file: Arc<dyn StorageFile>,
    len_bytes: u64,
}

fn encode(key: u64, version: u64, seq: u64) -> Vec<u8> {
    let mut record = Vec::with_capacity(RECORD_BYTES);
    for word in [key, version, seq] {
        record.extend_from_slice(&word.to_le_bytes());
    }
    let sum = hash_bytes(&record);
    record.extend_from_slice(&sum.to_le_bytes());
    debug_assert_eq!(record.len(), RECORD_BYTES);
    record
}

fn decode(record: &[u8]) -> Option<(u64, u64, u64)> {
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            record.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    (hash_bytes(record.get(..24)?) == word(3)?).then_some((word(0)?, word(1)?, word(2)?))
}

impl ToyLog {
    fn commit(&mut self, key: u64, version: u64, seq: u64, sync: bool) -> Result<()> {
        self.file
            .write_at(&encode(key, version, seq), self.len_bytes)?;
        if sync {
            self.file.sync()?;
        }
        self.len_bytes += RECORD_BYTES as u64;
        Ok(())
    }
}

/// Replays the log of `image`: key -> (version, seq) of its last record.
fn recover(image: &MemStorage, bug: Bug) -> HashMap<u64, (u64, u64)> {
    let bytes = image.snapshot("log").unwrap_or_default();
    let mut state = HashMap::new();
    for record in bytes.chunks(RECORD_BYTES) {
        match decode(record) {
            Some((key, version, seq)) => {
                state.insert(key, (version, seq));
            }
            None if bug == Bug::SkipTornRecords => continue,
            None => break,
        }
    }
    state
}

struct Run {
    image: MemStorage,
    window: CommitWindow,
}

/// Runs the workload under the expected-state protocol, syncing every `sync_every` commits
/// (1 = Full durability), leaves one commit in flight and crashes.
fn run(seed: u64, bug: Bug, sync_every: u64, oracle: &ExpectedState) -> Result<Run> {
    let mem = MemStorage::new();
    let faults = FaultStorage::new(Arc::new(mem), FaultPlan::default(), seed);
    let file = faults.open("log", true)?;
    faults.sync_dir()?;
    let mut log = ToyLog { file, len_bytes: 0 };
    let mut rng = SplitMix64::new(seed);
    let mut window = CommitWindow {
        durable_through: 0,
        acked_through: 0,
        issued_through: 0,
    };
    for seq in 1..=COMMITS_N {
        let key = if sync_every == 1 {
            rng.below(KEYS_N)
        } else {
            seq % KEYS_N
        };
        let version = oracle.next_version(key)?;
        oracle.begin_put(key, version)?;
        window.issued_through = seq;
        let in_flight = seq == COMMITS_N;
        let sync_now = seq % sync_every == 0 && bug != Bug::NoSyncAtCommit && !in_flight;
        let token = sync_now.then(|| oracle.sync_begin());
        log.commit(key, version, seq, sync_now)?;
        if in_flight {
            break; // the power fails before its sync: never acknowledged
        }
        oracle.ack_put(key, version)?;
        window.acked_through = seq;
        if let Some(token) = token {
            oracle.sync_end(token);
            window.durable_through = seq;
        }
    }
    Ok(Run {
        image: faults.crash(&CrashPreset::Fdb.model()),
        window,
    })
}

/// Mismatches of the recovered state against the oracle.
fn oracle_mismatches(seed: u64, bug: Bug, sync_every: u64, mode: CheckMode) -> Result<usize> {
    let dir = tempfile::tempdir()?;
    let oracle = ExpectedState::create(dir.path().join("expected"), KEYS_N)?;
    let run = run(seed, bug, sync_every, &oracle)?;
    let recovered = recover(&run.image, bug);
    let mut mismatches = 0;
    for key in 0..KEYS_N {
        let observed = recovered.get(&key).map(|(version, _)| *version);
        mismatches += usize::from(oracle.check(key, observed, mode).is_err());
    }
    Ok(mismatches)
}

fn prefix_violation(seed: u64, bug: Bug) -> Result<bool> {
    let dir = tempfile::tempdir()?;
    let oracle = ExpectedState::create(dir.path().join("expected"), KEYS_N)?;
    let run = run(seed, bug, 5, &oracle)?;
    let recovered = recover(&run.image, bug);
    let observed: Vec<Option<u64>> = (0..KEYS_N)
        .map(|key| recovered.get(&key).map(|(_, seq)| *seq))
        .collect();
    Ok(PrefixChecker::new(KEYS_N)
        .check(run.window, &observed)
        .is_err())
}

#[test]
fn correct_store_passes_full_and_buffered_checks_on_every_seed() -> Result<()> {
    for seed in 0..SEEDS_N {
        let full = oracle_mismatches(seed, Bug::None, 1, CheckMode::Full)?;
        ensure!(full == 0, "seed {seed}: {full} false alarms in Full mode");
        let buffered = oracle_mismatches(seed, Bug::None, 5, CheckMode::Buffered)?;
        ensure!(
            buffered == 0,
            "seed {seed}: {buffered} false alarms in Buffered mode"
        );
        ensure!(
            !prefix_violation(seed, Bug::None)?,
            "seed {seed}: false prefix hole"
        );
    }
    Ok(())
}

#[test]
fn missing_fsync_is_caught_as_lost_acknowledged_writes() -> Result<()> {
    let mut caught = Vec::new();
    for seed in 0..SEEDS_N {
        if oracle_mismatches(seed, Bug::NoSyncAtCommit, 1, CheckMode::Full)? > 0 {
            caught.push(seed);
        }
    }
    ensure!(!caught.is_empty(), "no seed caught the missing fsync");
    Ok(())
}

#[test]
fn skipping_torn_records_is_caught_as_a_prefix_hole() -> Result<()> {
    let caught = (0..SEEDS_N)
        .map(|seed| prefix_violation(seed, Bug::SkipTornRecords))
        .collect::<Result<Vec<bool>>>()?;
    let first = caught
        .iter()
        .position(|c| *c)
        .context("no seed caught the skipped record")?;
    ensure!(first < usize::try_from(SEEDS_N)?);
    Ok(())
}
