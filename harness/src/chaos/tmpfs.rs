//! A real full disk: the engine on a small tmpfs (`mount -t tmpfs -o size=16m`), written until
//! commits fail with `Error::DiskFull`. Every committed transaction must still read back, the
//! same open database must commit again once a ballast file is deleted, and a reopen must show
//! the same state. The mount is removed at the end, also on failure.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use engine::{Database, Durability, Options};

use super::spec::TmpfsSpec;
use super::{judge_recovery, names, nanos, ChaosOutcome, FaultsSection};
use crate::gen::{generate_value, verify_value};
use crate::oracle::{CheckMode, ExpectedState};
use crate::report::CrashCycle;

/// Keys the oracle can track: 16 MiB of tmpfs holds far fewer values of 1 KiB.
const KEYS_CAPACITY: u64 = 1 << 20;
/// Keys per transaction.
const TXN_KEYS: u64 = 8;
/// Commits after the space was freed, to show the database goes on.
const COMMITS_AFTER_FREE: u64 = 32;
/// Value size: large enough to fill the disk in seconds.
const VALUE_BYTES: usize = 1024;
/// The mount is at most this big: it lives in RAM.
const SIZE_MIB_MAX: u64 = 1024;
/// The engine's checkpoint threshold here: small, so the disk fills with a WAL near its bound.
const WAL_CHECKPOINT_BYTES: u64 = 1 << 20;
/// Space the engine needs, once the disk is full, to fold its WAL into the main file: up to
/// its hard bound (four times the threshold) of new pages, plus one 1 MiB step of WAL grown
/// ahead. A ballast smaller than this cannot prove anything: freeing it cannot let any
/// engine with this WAL bound checkpoint.
const FREE_BYTES_NEEDED: u64 = 4 * WAL_CHECKPOINT_BYTES + (1 << 20);

/// The run needs root; the command line exits 2 with this message.
#[derive(Debug)]
pub struct NeedsRoot;

impl std::fmt::Display for NeedsRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "faults/disk-full-tmpfs mounts a tmpfs and needs root (run it as root, e.g. in a container)")
    }
}

impl std::error::Error for NeedsRoot {}

/// Unmounts on drop, so a failed run does not leave the mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn key(i: u64) -> [u8; 9] {
    super::records::record_key(b'k', i)
}

/// The effective user is root (`/proc/self` belongs to the process's effective uid).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs the scenario under `dir`.
///
/// # Errors
/// [`NeedsRoot`] without root; mount and I/O failures.
pub fn run(
    spec: &TmpfsSpec,
    faults: &FaultsSection,
    seed: u64,
    dir: &Path,
) -> Result<ChaosOutcome> {
    if !is_root() {
        return Err(NeedsRoot.into());
    }
    anyhow::ensure!(
        spec.size_mib > 0 && spec.size_mib <= SIZE_MIB_MAX && spec.ballast_mib < spec.size_mib,
        "faults.tmpfs: sizes"
    );
    anyhow::ensure!(
        spec.ballast_mib << 20 > FREE_BYTES_NEEDED,
        "faults.tmpfs.ballast_mib must exceed {} MiB, the space the engine needs to fold its \
         WAL in after a full disk",
        FREE_BYTES_NEEDED >> 20
    );
    let mnt = dir.join("tmpfs");
    std::fs::create_dir_all(&mnt)?;
    let data = format!("size={}m", spec.size_mib);
    nix::mount::mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .with_context(|| format!("mount -t tmpfs -o {data} tmpfs {}", mnt.display()))?;
    let guard = Mounted(mnt.clone());
    let outcome = fill_and_free(spec, faults, seed, &mnt, dir);
    drop(guard);
    outcome
}

fn fill_and_free(
    spec: &TmpfsSpec,
    faults: &FaultsSection,
    seed: u64,
    mnt: &Path,
    dir: &Path,
) -> Result<ChaosOutcome> {
    let ballast = mnt.join("ballast");
    std::fs::write(&ballast, vec![0xBAu8; (spec.ballast_mib << 20) as usize])
        .context("writing the ballast file")?;
    let oracle = ExpectedState::create(dir.join("tmpfs-expected"), KEYS_CAPACITY)?;
    let opts = Options {
        durability: Durability::Full,
        salt_seed: Some(seed),
        wal_checkpoint_bytes: WAL_CHECKPOINT_BYTES,
        ..Options::default()
    };
    let path = mnt.join("db");
    let db = Database::open(&path, opts.clone()).map_err(|e| anyhow!("open on tmpfs: {e}"))?;
    let mut out = ChaosOutcome::default();
    let mut next_key = 0;
    let full = fill(&db, &oracle, seed, &mut next_key, &mut out)?;
    let Some(error) = full else {
        out.tally.fail(
            names::DISK_FULL_RECOVERY,
            format!("{} keys written and the disk never filled", next_key),
        );
        return Ok(out);
    };
    out.notes.push(format!(
        "tmpfs {} MiB full after {next_key} keys: {error} ({})",
        spec.size_mib,
        space(mnt)
    ));
    verify(&db, &oracle, seed, next_key, &mut out, "at disk full")?;
    std::fs::remove_file(&ballast).context("removing the ballast")?;
    let mut committed = 0;
    for _ in 0..COMMITS_AFTER_FREE {
        match commit(&db, &oracle, seed, &mut next_key) {
            Ok(()) => committed += 1,
            Err(e) => {
                out.tally.fail(
                    names::DISK_FULL_RECOVERY,
                    format!(
                        "after freeing {} MiB the open database failed after {committed} commits: {e} ({})",
                        spec.ballast_mib,
                        space(mnt)
                    ),
                );
                break;
            }
        }
    }
    if committed == COMMITS_AFTER_FREE {
        out.tally.pass(names::DISK_FULL_RECOVERY, 1);
        out.tally.note(names::DISK_FULL_RECOVERY, format!("the same open database committed {committed} more transactions after the ballast was deleted"));
    }
    drop(db);
    let wal_bytes = std::fs::metadata(mnt.join("db-wal")).map_or(0, |m| m.len());
    let (db, took) = super::timed(|| Database::open(&path, opts));
    let db = db.map_err(|e| anyhow!("reopen on tmpfs: {e}"))?;
    let reopen = took.wall;
    judge_recovery(&mut out.tally, faults, wal_bytes, took);
    let v0 = Instant::now();
    verify(&db, &oracle, seed, next_key, &mut out, "after reopen")?;
    match db.check_integrity() {
        Ok(r) if r.is_ok() => out.tally.pass(names::INTEGRITY, 1),
        Ok(r) => out.tally.fail(names::INTEGRITY, r.problems.join("; ")),
        Err(e) => out.tally.fail(names::INTEGRITY, e.to_string()),
    }
    out.reopen_ns.push(nanos(reopen));
    out.verify_ns.push(nanos(v0.elapsed()));
    out.cycles.push(CrashCycle {
        cycle: 0,
        at_op: next_key,
        kind: "disk_full_reopen".into(),
        reopen_us: reopen.as_secs_f64() * 1e6,
        verify_us: v0.elapsed().as_secs_f64() * 1e6,
        passed: out.tally.total_failures() == 0,
    });
    Ok(out)
}

/// Free space of the mount and the sizes of the database files, for failure messages.
fn space(mnt: &Path) -> String {
    let free = nix::sys::statvfs::statvfs(mnt).map_or(0, |s| {
        s.blocks_available().saturating_mul(s.fragment_size())
    });
    let len = |name: &str| std::fs::metadata(mnt.join(name)).map_or(0, |m| m.len());
    format!(
        "free {} KiB, db {} KiB, db-wal {} KiB",
        free >> 10,
        len("db") >> 10,
        len("db-wal") >> 10
    )
}

/// Inserts new keys until a commit fails; returns that error (None: the key budget ran out).
fn fill(
    db: &Database,
    oracle: &ExpectedState,
    seed: u64,
    next_key: &mut u64,
    out: &mut ChaosOutcome,
) -> Result<Option<engine::Error>> {
    while *next_key + TXN_KEYS <= KEYS_CAPACITY {
        match commit(db, oracle, seed, next_key) {
            Ok(()) => {}
            Err(e @ engine::Error::DiskFull { .. }) => return Ok(Some(e)),
            Err(e) => {
                out.tally.fail(
                    names::DISK_FULL_RECOVERY,
                    format!("a full disk surfaced as {e}, not Error::DiskFull"),
                );
                return Ok(Some(e));
            }
        }
    }
    Ok(None)
}

/// One transaction of `TXN_KEYS` new keys; on failure the keys are settled from a read.
fn commit(
    db: &Database,
    oracle: &ExpectedState,
    seed: u64,
    next_key: &mut u64,
) -> engine::Result<()> {
    let keys: Vec<u64> = (*next_key..*next_key + TXN_KEYS).collect();
    for &k in &keys {
        oracle
            .begin_put(k, 1)
            .map_err(|e| engine::Error::InvalidArgument {
                detail: e.to_string(),
            })?;
    }
    let result = (|| {
        let mut tx = db.begin_write()?;
        let t = tx.open_or_create_table("kv")?;
        let mut value = Vec::new();
        for &k in &keys {
            generate_value(k, 1, seed, VALUE_BYTES, &mut value);
            tx.put(&t, &key(k), &value)?;
        }
        tx.commit()
    })();
    let landed = match &result {
        Ok(()) => true,
        Err(_) => db
            .begin_read()
            .and_then(|r| r.table("kv").and_then(|t| r.get(&t, &key(keys[0]))))
            .is_ok_and(|v| v.is_some()),
    };
    for &k in &keys {
        let done = if landed {
            oracle.ack_put(k, 1)
        } else {
            oracle.abort(k)
        };
        debug_assert!(done.is_ok());
    }
    *next_key += TXN_KEYS;
    result
}

fn verify(
    db: &Database,
    oracle: &ExpectedState,
    seed: u64,
    keys_n: u64,
    out: &mut ChaosOutcome,
    when: &str,
) -> Result<()> {
    let read = db.begin_read().map_err(|e| anyhow!("{e}"))?;
    let t = read.table("kv").map_err(|e| anyhow!("{e}"))?;
    let mut held = 0;
    for k in 0..keys_n {
        let observed = match read.get(&t, &key(k)) {
            Ok(Some(b)) => match verify_value(k, seed, &b) {
                Ok(v) => Some(v),
                Err(e) => {
                    out.tally
                        .fail(names::CHECKSUM_DETECTION, format!("{when}: key {k}: {e}"));
                    continue;
                }
            },
            Ok(None) => None,
            Err(e) => {
                out.tally.fail(
                    names::DURABILITY,
                    format!("{when}: key {k}: read failed: {e}"),
                );
                continue;
            }
        };
        match oracle.check(k, observed, CheckMode::Full) {
            Ok(()) => held += 1,
            Err(m) => out.tally.fail(names::DURABILITY, format!("{when}: {m}")),
        }
    }
    out.tally.pass(names::DURABILITY, held);
    Ok(())
}
