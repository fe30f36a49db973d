//! ExpectedState (kill -9 survival, acceptance rules), PrefixChecker and the bank checker,
//! each shown to catch a seeded bug.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use harness::oracle::{
    check_bank, Bank, CheckMode, CommitWindow, ExpectedState, OracleError, PrefixChecker,
    PrefixViolation,
};

/// Keys the child writer acknowledges before it waits to be killed.
const CHILD_KEYS_ACKED: u64 = 1000;
/// Environment variable naming the state file; set only for the child process.
const CHILD_ENV: &str = "HARNESS_ORACLE_CHILD_STATE";
/// Polls of the parent for the child's progress (10 ms apart: a minute on a loaded machine).
const CHILD_POLLS_MAX: u32 = 6000;

fn put(state: &ExpectedState, key: u64) -> Result<u64> {
    let version = state.next_version(key)?;
    state.begin_put(key, version)?;
    state.ack_put(key, version)?;
    Ok(version)
}

#[test]
fn acks_survive_dropping_the_mapping_without_flush() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("expected");
    {
        let state = ExpectedState::create(&path, 1 << 20)?;
        for key in (0..1 << 20).step_by(4099) {
            put(&state, key)?;
            put(&state, key)?;
        }
        state.begin_put(7, 1)?;
        // Dropped without flush: the shared mapping's pages belong to the kernel.
    }
    let state = ExpectedState::open(&path)?;
    ensure!(state.keys_n() == 1 << 20);
    for key in (0..1 << 20).step_by(4099) {
        state.check(key, Some(2), CheckMode::Full)?;
    }
    ensure!(state.state(7)?.pending_put, "pending bit survives");
    state.check(7, None, CheckMode::Full)?;
    state.check(7, Some(1), CheckMode::Full)?;
    Ok(())
}

#[test]
fn creation_is_sparse_for_a_billion_keys() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big");
    let state = ExpectedState::create(&path, 1_000_000_000)?;
    put(&state, 999_999_999)?;
    let meta = std::fs::metadata(&path)?;
    ensure!(
        meta.len() == 4096 + 4_000_000_000,
        "file length {}",
        meta.len()
    );
    let blocks_bytes = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    ensure!(
        blocks_bytes < 1 << 20,
        "{blocks_bytes} bytes allocated: not sparse"
    );
    ensure!(state.check(999_999_999, Some(1), CheckMode::Full).is_ok());
    ensure!(matches!(
        state.begin_put(1_000_000_000, 1),
        Err(OracleError::KeyOutOfRange { .. })
    ));
    Ok(())
}

/// The child side: runs only when spawned by `acks_survive_kill_9_of_the_writer_process`.
#[test]
fn child_writer_helper() -> Result<()> {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return Ok(());
    };
    let state = ExpectedState::open(Path::new(&path))?;
    for key in 0..CHILD_KEYS_ACKED {
        put(&state, key)?;
        put(&state, key)?;
    }
    // One write in flight when the kill comes, then a last ack the parent polls for.
    state.begin_put(CHILD_KEYS_ACKED, 1)?;
    put(&state, CHILD_KEYS_ACKED + 1)?;
    // Wait to be killed; bounded so an orphan cannot live forever.
    std::thread::sleep(Duration::from_secs(600));
    bail!("child was not killed")
}

#[test]
fn acks_survive_kill_9_of_the_writer_process() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("expected");
    drop(ExpectedState::create(&path, 4096)?);
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "child_writer_helper",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .spawn()?;
    let state = ExpectedState::open(&path)?;
    let mut polls = 0;
    while state.state(CHILD_KEYS_ACKED + 1)?.version != 1 {
        if let Some(status) = child.try_wait()? {
            bail!("child exited early with {status}");
        }
        polls += 1;
        ensure!(polls < CHILD_POLLS_MAX, "child made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill()?; // SIGKILL
    let status = child.wait()?;
    ensure!(!status.success(), "child must die of the signal");
    drop(state);
    let state = ExpectedState::open(&path)?;
    for key in 0..CHILD_KEYS_ACKED {
        state.check(key, Some(2), CheckMode::Full)?;
        ensure!(
            state.check(key, Some(1), CheckMode::Full).is_err(),
            "lost ack accepted"
        );
    }
    state.check(CHILD_KEYS_ACKED, None, CheckMode::Full)?;
    state.check(CHILD_KEYS_ACKED, Some(1), CheckMode::Full)?;
    Ok(())
}

#[test]
fn full_mode_rejects_lost_and_phantom_writes_and_accepts_both_pending_outcomes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let state = ExpectedState::create(dir.path().join("s"), 16)?;
    put(&state, 1)?;
    put(&state, 1)?;
    state.check(1, Some(2), CheckMode::Full)?;
    let lost = state
        .check(1, Some(1), CheckMode::Full)
        .err()
        .context("lost ack accepted")?;
    ensure!(
        lost.to_string().contains("allowed version 2"),
        "message: {lost}"
    );
    ensure!(
        state.check(1, None, CheckMode::Full).is_err(),
        "vanished key accepted"
    );
    ensure!(
        state.check(1, Some(3), CheckMode::Full).is_err(),
        "never-issued version accepted"
    );
    state.begin_put(1, 3)?;
    state.check(1, Some(2), CheckMode::Full)?;
    state.check(1, Some(3), CheckMode::Full)?;
    ensure!(
        state.check(1, Some(1), CheckMode::Full).is_err(),
        "pending key: older version"
    );
    ensure!(
        state.check(1, None, CheckMode::Full).is_err(),
        "pending put: absent"
    );
    ensure!(matches!(
        state.begin_put(1, 3),
        Err(OracleError::AlreadyPending { .. })
    ));
    state.abort(1)?;
    ensure!(
        state.check(1, Some(3), CheckMode::Full).is_err(),
        "aborted put accepted"
    );
    ensure!(matches!(
        state.begin_put(1, 5),
        Err(OracleError::WrongVersion { expected: 3, .. })
    ));
    // Deletes.
    state.begin_delete(1)?;
    state.check(1, None, CheckMode::Full)?;
    state.check(1, Some(2), CheckMode::Full)?;
    state.ack_delete(1)?;
    state.check(1, None, CheckMode::Full)?;
    ensure!(
        state.check(1, Some(2), CheckMode::Full).is_err(),
        "resurrected delete accepted"
    );
    // Never-written keys must stay absent.
    state.check(9, None, CheckMode::Full)?;
    ensure!(
        state.check(9, Some(1), CheckMode::Full).is_err(),
        "phantom key accepted"
    );
    Ok(())
}

#[test]
fn buffered_mode_accepts_the_window_since_the_last_sync_only() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let state = ExpectedState::create(dir.path().join("s"), 16)?;
    put(&state, 2)?; // version 1, never synced: absent is allowed
    state.check(2, None, CheckMode::Buffered)?;
    ensure!(state.check(2, None, CheckMode::Full).is_err());
    let token = state.sync_begin();
    state.sync_end(token);
    state.check(2, Some(1), CheckMode::Buffered)?;
    ensure!(
        state.check(2, None, CheckMode::Buffered).is_err(),
        "synced put lost"
    );
    put(&state, 2)?; // 2
    put(&state, 2)?; // 3
    for v in 1..=3 {
        state.check(2, Some(v), CheckMode::Buffered)?;
    }
    ensure!(
        state.check(2, Some(4), CheckMode::Buffered).is_err(),
        "future version"
    );
    ensure!(
        state.check(2, Some(0), CheckMode::Buffered).is_err(),
        "older than the sync"
    );
    ensure!(
        state.check(2, None, CheckMode::Buffered).is_err(),
        "synced key vanished"
    );
    ensure!(
        state.check(2, Some(1), CheckMode::Full).is_err(),
        "Full mode stays exact"
    );
    // A sync in progress does not yet make the acks durable; its end does.
    let token = state.sync_begin();
    state.check(2, Some(1), CheckMode::Buffered)?;
    state.sync_end(token);
    ensure!(
        state.check(2, Some(1), CheckMode::Buffered).is_err(),
        "sync completed: exact"
    );
    state.check(2, Some(3), CheckMode::Buffered)?;
    // An unsynced delete after a synced put: both are allowed.
    state.begin_delete(2)?;
    state.ack_delete(2)?;
    state.check(2, None, CheckMode::Buffered)?;
    state.check(2, Some(3), CheckMode::Buffered)?;
    Ok(())
}

#[test]
fn buffered_mode_stays_sound_when_epoch_tags_alias() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let state = ExpectedState::create(dir.path().join("s"), 4)?;
    put(&state, 0)?;
    for _ in 0..40 {
        let token = state.sync_begin();
        put(&state, 1)?;
        state.sync_end(token);
        // The old synced key must always accept its exact state, whatever the tag residue.
        state.check(0, Some(1), CheckMode::Buffered)?;
    }
    Ok(())
}

/// A live read racing the key's one writer: any version from the one acknowledged before
/// the read began to the newest begun since passes; an older one (a stale read) or a newer
/// one (never written) fails, though the plain check at the end would reject the first.
#[test]
fn a_racing_read_may_see_any_version_begun_since_it_started_but_no_older() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let s = ExpectedState::create(dir.path().join("e"), 4)?;
    for _ in 0..3 {
        put(&s, 1)?;
    }
    let before = s.state(1)?; // version 3 acknowledged
    put(&s, 1)?; // 4 committed and acknowledged while the read ran
    s.begin_put(1, 5)?; // 5 in flight
    ensure!(
        s.check(1, Some(3), CheckMode::Full).is_err(),
        "the plain check admits 3"
    );
    for ok in [3, 4, 5] {
        ensure!(
            s.check_read(1, before, Some(ok)).is_ok(),
            "version {ok} refused"
        );
    }
    for bad in [Some(2), Some(6), None] {
        ensure!(s.check_read(1, before, bad).is_err(), "{bad:?} admitted");
    }
    // A key absent when the read began may read absent or any version begun since.
    let before = s.state(2)?;
    put(&s, 2)?;
    ensure!(s.check_read(2, before, None).is_ok());
    ensure!(s.check_read(2, before, Some(1)).is_ok());
    ensure!(s.check_read(2, before, Some(2)).is_err());
    Ok(())
}

#[test]
fn settle_and_adopt_after_recovery() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let state = ExpectedState::create(dir.path().join("s"), 4)?;
    put(&state, 0)?;
    state.begin_put(0, 2)?; // error of unknown outcome: stays pending
    ensure!(
        state.settle(0, Some(5)).is_err(),
        "settle must reject an impossible value"
    );
    state.settle(0, Some(2))?;
    ensure!(!state.state(0)?.pending_put && state.state(0)?.version == 2);
    // Recovery in Buffered mode lost version 2; the state adopts version 1.
    state.check(0, Some(1), CheckMode::Buffered)?;
    state.adopt(0, Some(1))?;
    state.mark_recovered();
    state.check(0, Some(1), CheckMode::Buffered)?;
    ensure!(
        state.check(0, Some(2), CheckMode::Buffered).is_err(),
        "adopted state is exact"
    );
    ensure!(state.next_version(0)? == 2);
    Ok(())
}

fn markers(checker: &PrefixChecker, keys_n: u64, prefix: u64) -> Vec<Option<u64>> {
    let mut observed = vec![None; usize::try_from(keys_n).unwrap_or(0)];
    for seq in 1..=prefix {
        if let Some(slot) = usize::try_from(checker.key_of(seq))
            .ok()
            .and_then(|k| observed.get_mut(k))
        {
            *slot = Some(seq);
        }
    }
    observed
}

#[test]
fn prefix_checker_accepts_prefixes_and_finds_the_first_hole() -> Result<()> {
    let checker = PrefixChecker::new(4);
    let window = CommitWindow {
        durable_through: 5,
        acked_through: 10,
        issued_through: 11,
    };
    for prefix in 5..=11 {
        let found = checker.check(window, &markers(&checker, 4, prefix))?;
        ensure!(found == prefix, "prefix {prefix} reported as {found}");
    }
    // Seeded bug: commit 6 (key 2) lost while 7 survived.
    let mut holed = markers(&checker, 4, 7);
    holed[2] = Some(2);
    let hole = checker
        .check(window, &holed)
        .err()
        .context("hole not found")?;
    ensure!(
        hole == PrefixViolation::Hole {
            missing_seq: 6,
            present_seq: 7,
            key: 2
        },
        "{hole}"
    );
    let mut never = markers(&checker, 4, 3);
    never[0] = Some(8); // commit 4 (key 0) skipped: 8 present, 1..3 present, 5..7 missing
    let first = checker
        .check(window, &never)
        .err()
        .context("hole not found")?;
    ensure!(
        matches!(first, PrefixViolation::Hole { missing_seq: 5, .. }),
        "{first}"
    );
    let mut phantom = markers(&checker, 4, 8);
    phantom[0] = Some(12);
    ensure!(matches!(
        checker.check(window, &phantom),
        Err(PrefixViolation::Phantom { seq: 12, .. })
    ));
    let short = checker.check(window, &markers(&checker, 4, 4));
    ensure!(
        matches!(
            short,
            Err(PrefixViolation::LostDurable { prefix_seq: 4, .. })
        ),
        "{short:?}"
    );
    Ok(())
}

#[test]
fn bank_checker_catches_changed_total_negative_and_missing() -> Result<()> {
    let bank = Bank::new(4, 100);
    bank.check(&[Some(100), Some(50), Some(150), Some(100)])
        .map_err(anyhow::Error::msg)?;
    let changed = bank.check(&[Some(100), Some(50), Some(100), Some(100)]);
    ensure!(
        changed.is_err_and(|e| e.contains("total is 350")),
        "changed total accepted"
    );
    ensure!(
        bank.check(&[Some(-1), Some(101), Some(100), Some(100)])
            .is_err(),
        "negative"
    );
    ensure!(
        bank.check(&[Some(100), None, Some(200), Some(100)])
            .is_err(),
        "missing"
    );
    ensure!(bank.check(&[Some(400)]).is_err(), "wrong account count");
    ensure!(
        check_bank(&[Some(i64::MAX), Some(i64::MAX)], -2).is_err(),
        "overflow-safe sum"
    );
    Ok(())
}

/// One step of the model history in the soundness property.
#[derive(Debug, Clone, Copy)]
enum Step {
    Put(u64),
    Delete(u64),
    Sync,
}

fn step_strategy() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0u64..4).prop_map(Step::Put),
        1 => (0u64..4).prop_map(Step::Delete),
        1 => Just(Step::Sync),
    ]
}

/// Per key, the states it held (None: absent), and the index of the last durable one.
struct History {
    states: Vec<Vec<Option<u64>>>,
    durable: Vec<usize>,
}

fn replay(state: &ExpectedState, steps: &[Step]) -> Result<History> {
    let mut history = History {
        states: vec![vec![None]; 4],
        durable: vec![0; 4],
    };
    for step in steps {
        match *step {
            Step::Put(key) => {
                let version = put(state, key)?;
                history.states[key as usize].push(Some(version));
            }
            Step::Delete(key) => {
                state.begin_delete(key)?;
                state.ack_delete(key)?;
                history.states[key as usize].push(None);
            }
            Step::Sync => {
                let token = state.sync_begin();
                state.sync_end(token);
                for (key, states) in history.states.iter().enumerate() {
                    history.durable[key] = states.len() - 1;
                }
            }
        }
    }
    Ok(history)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Soundness: every state a key held since its last durable point passes the Buffered
    /// check, the final state passes the Full check, and no version above the last issued
    /// one passes either.
    #[test]
    fn check_accepts_every_legal_recovered_state(steps in proptest::collection::vec(step_strategy(), 1..80)) {
        let dir = tempfile::tempdir().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        let fail = |e: anyhow::Error| proptest::test_runner::TestCaseError::fail(e.to_string());
        let state = ExpectedState::create(dir.path().join("s"), 4).map_err(|e| fail(e.into()))?;
        let history = replay(&state, &steps).map_err(fail)?;
        for key in 0..4u64 {
            let states = &history.states[key as usize];
            for observed in &states[history.durable[key as usize]..] {
                let verdict = state.check(key, *observed, CheckMode::Buffered);
                proptest::prop_assert!(verdict.is_ok(), "false alarm: {:?}", verdict);
            }
            let last = states.last().copied().flatten();
            proptest::prop_assert!(state.check(key, last, CheckMode::Full).is_ok());
            let issued = states.iter().flatten().max().copied().unwrap_or(0);
            proptest::prop_assert!(state.check(key, Some(issued + 1), CheckMode::Buffered).is_err());
        }
    }
}
