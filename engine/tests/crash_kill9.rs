//! Kill -9 a child process in the middle of writing and find every acknowledged commit.
//!
//! The test re-runs its own binary as the child (selected by an environment variable). The
//! child commits in `Durability::Full` and prints each commit number after `commit`
//! returns; the parent SIGKILLs it at a random moment, reopens the database, and checks that
//! every printed commit survived and that the survivors form a prefix of the history.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::{Database, Durability, Options, Table};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CHILD_ENV: &str = "ENGINE_KILL9_CHILD_DIR";
/// Kill cycles per test run: enough to land kills in commits, fsyncs and checkpoints.
const CYCLES: u32 = 8;
/// Commits a child makes at most before exiting on its own (bounds a run if kill is late).
const CHILD_COMMITS_MAX: u64 = 1_000_000;

fn opts() -> Options {
    // A small checkpoint threshold makes kills land inside checkpoints too.
    Options {
        durability: Durability::Full,
        wal_checkpoint_bytes: 512 << 10,
        ..Options::default()
    }
}

fn marker(i: u64) -> Vec<u8> {
    format!("commit{i:010}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-of-{i}-").into_bytes();
    v.resize(100 + (i % 200) as usize, (i % 251) as u8);
    v
}

/// The highest commit present, after checking that all below it are present and intact.
fn recovered_prefix(db: &Database, t: &Table) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    let r = db.begin_read()?;
    let mut last = None;
    for (k, v) in r
        .prefix(t, b"commit")?
        .map(|e| e.map_err(Box::new))
        .collect::<Result<Vec<_>, _>>()?
    {
        let i: u64 = std::str::from_utf8(&k[6..])?.parse()?;
        let expected = last.map_or(0, |l: u64| l + 1);
        assert_eq!(
            i, expected,
            "hole in the commit history: {expected} missing, {i} present"
        );
        assert_eq!(v, value(i), "commit {i} has a wrong value");
        last = Some(i);
    }
    Ok(last)
}

fn child(dir: &Path) -> TestResult {
    let db = Database::open(dir.join("db"), opts())?;
    let mut tx = db.begin_write()?;
    let t = tx.open_or_create_table("kv")?;
    tx.commit()?;
    let mut next = recovered_prefix(&db, &t)?.map_or(0, |l| l + 1);
    let end = next + CHILD_COMMITS_MAX;
    while next < end {
        let mut tx = db.begin_write()?;
        tx.put(&t, &marker(next), &value(next))?;
        // Churn: overwrite and delete other keys so pages split, merge and move.
        tx.put(&t, format!("churn{}", next % 97).as_bytes(), &value(next))?;
        if next % 5 == 0 {
            tx.delete(&t, format!("churn{}", (next / 5) % 97).as_bytes())?;
        }
        tx.commit()?;
        println!("acked {next}");
        next += 1;
    }
    Ok(())
}

#[test]
fn kill9_loses_no_acknowledged_commit() -> TestResult {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    let dir = tempfile::tempdir()?;
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (reproduce: SEED={seed} cargo test -p engine --test crash_kill9)");
    let mut acked_max: Option<u64> = None;
    for cycle in 0..CYCLES {
        let delay_ms = 30 + (seed.wrapping_mul(u64::from(cycle) + 1).rotate_left(17) % 300);
        let last = run_child_and_kill(dir.path(), Duration::from_millis(delay_ms))?;
        acked_max = last.or(acked_max);
        let db = Database::open(dir.path().join("db"), opts())?;
        let report = db.check_integrity()?;
        assert!(
            report.is_ok(),
            "cycle {cycle} seed {seed}: {:?}",
            report.problems
        );
        let read = db.begin_read()?;
        let t = match read.table("kv") {
            Ok(t) => t,
            // A child killed before its first commit (a slow start on a loaded machine) left
            // no table: nothing was acknowledged, so nothing can be lost.
            Err(engine::Error::TableNotFound { .. }) if acked_max.is_none() => continue,
            Err(e) => return Err(e.into()),
        };
        let recovered = recovered_prefix(&db, &t)?;
        if let Some(a) = acked_max {
            let r = recovered.unwrap_or(0);
            assert!(
                recovered.is_some() && r >= a,
                "cycle {cycle} seed {seed}: acked {a}, recovered {recovered:?}"
            );
        }
        acked_max = recovered;
    }
    assert!(
        acked_max.is_some_and(|a| a > 0),
        "the child never committed"
    );
    Ok(())
}

/// Runs the child until `delay` has passed, SIGKILLs it, and returns its last acked commit.
fn run_child_and_kill(
    dir: &Path,
    delay: Duration,
) -> Result<Option<u64>, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "kill9_loses_no_acknowledged_commit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
    let reader = std::thread::spawn(move || {
        let mut last = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line
                .strip_prefix("acked ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                last = Some(n);
            }
        }
        last
    });
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)?;
    child.wait()?;
    reader.join().map_err(|_| "reader thread panicked".into())
}
