//! The `[faults]` table of a chaos scenario.
//!
//! ```toml
//! [faults]
//! durability = "full"                 # in-process engine mode: "full", "normal" or "off"
//! normal_commits = 8                  # Normal mode: sync every N commits ...
//! normal_millis = 50                  # ... or every M ms (the engine's flusher thread)
//! seeded_bug = "skip-commit-fsync"    # optional; needs `--features seeded-bugs`
//! read_per_mille = 200                # verified point reads per 1000 commits
//! rollback_per_mille = 0              # write transactions rolled back per 1000
//! swarm = false                       # each seed draws page size, cache, checkpoints,
//!                                     # durability, value sizes and the op mix
//! page_size = 4096                    # in-process engine page size (optional)
//! cache_bytes = 131072                # in-process engine cache (optional)
//! delete_per_mille = 0                # writes that delete their key, per 1000
//! bulk_delete_every = 0               # every Nth commit deletes a run of up to 4096 keys
//!                                     # at once (free lists over several trunk pages)
//! scan_per_mille = 0                  # verified range/prefix scans per 1000 commits
//! long_reader_every = 0               # every Nth commit a read snapshot is held ...
//! long_reader_commits = 50            # ... across this many commits, then closed
//! delete_put_every = 0                # every Nth commit deletes a run, puts half back
//! value_bytes_max = 0                 # values drawn up to this long (0: the fixed size)
//! checkpoint_every = 0                # explicit checkpoint every N commits (0: never)
//! sync_every = 0                      # Off mode: `Database::sync` every N commits (0: never)
//! wal_checkpoint_bytes = 1048576      # automatic checkpoint threshold of the engine
//! accounts = 0                        # bank accounts beside the key-value table (0: none)
//! writers = 0                         # power loss: threads committing beside the workload
//!                                     # (group commits; interleavings not replayed by seed)
//! recovery_bound_base_ms = 2000       # recovery_time_bound: base + per 64 MiB of WAL
//! recovery_bound_ms_per_64mib = 1000
//!
//! [faults.storage]                    # read-side faults under the power-loss cycles
//! eio_read = { probability = 0.0005 } # see faults::FaultPlan
//! latent = [{ file = "db", offset = 16384, len = 4096 }]
//!
//! [faults.kill9]                      # child process killed with SIGKILL, then verified
//! cycles = 20
//! delay_ms = { min = 10, max = 150 }
//! recovery_kill_every = 5             # every 5th cycle also kills the next child mid-open
//! workload = "kv"                     # "kv", "ycsb-a" or "bank"
//! threads = 1                         # threads in the child (writers on disjoint keys)
//!
//! [faults.power_loss]                 # in-process power loss on FaultStorage
//! cycles = 12
//! presets = ["sqlite", "fdb", "tigerbeetle", "drop_all"]
//! crash_in_recovery_every = 3         # every 3rd cycle crashes again during recovery
//! crash_in_checkpoint_every = 2       # every 2nd cycle loses power inside a checkpoint
//! idle_every = 2                      # Normal mode: every 2nd cycle idles past the time
//!                                     # window before the crash (then nothing may be lost)
//!
//! [faults.corruption]                 # bit flips and misdirected writes in synced data
//! episodes = 6
//! bit_flips = 8
//! misdirect_probability = 0.002
//!
//! [faults.enospc]
//! episodes = 4
//!
//! [faults.eio]
//! kinds = ["sync_once", "sync_persistent", "write_once", "read_once"]
//!
//! [faults.fail_at_n]
//! n_max = 5000
//!
//! [faults.fs]                         # with [faults.kill9]: the data directory on faultfs,
//! torn = ["drop", "sqlite", "fdb"]    # power cut after each kill, torn models drawn per cut
//! mount = true                        # false: the same loop on the real disk, no cut
//! names = "posix"                     # names durable on a directory fsync only; "ext4":
//!                                     # also on any fsync (its journal commit)
//!
//! [faults.tmpfs]                      # real ENOSPC on a small tmpfs (root only)
//! size_mib = 24
//! ballast_mib = 8
//! ```
//!
//! The scenario's `[workload] record_count` is the number of keys, `[run] ops` the number of
//! commits per cycle (per episode), and a fixed `value_size` the value length.

use serde::{Deserialize, Serialize};

use crate::faults::CrashPreset;

/// Cycles of one crash section: each is a process start or a recovery, so thousands are
/// already a long soak.
pub const CYCLES_MAX: u64 = 100_000;
/// Longest kill delay: a child that lives a minute has long left the interesting moments.
pub const DELAY_MS_MAX: u64 = 60_000;

fn per_mille_reads() -> u32 {
    200
}
fn wal_checkpoint_bytes_default() -> u64 {
    1 << 20
}
fn bound_base_ms() -> u64 {
    2000
}
fn bound_per_64mib_ms() -> u64 {
    1000
}
fn normal_commits_default() -> u32 {
    8
}
fn normal_millis_default() -> u32 {
    50
}
/// In-process cache bytes: the engine's minimum, and a bound far past the rig's data.
const CACHE_BYTES_MIN: usize = 64 << 10;
const CACHE_BYTES_MAX: usize = 1 << 30;
/// Normal mode's time window at most: a scenario idles past it before some crashes.
pub const NORMAL_MILLIS_MAX: u32 = 10_000;
fn durability_default() -> String {
    "full".to_string()
}

fn long_reader_commits_default() -> u64 {
    50
}

/// `[faults]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsSection {
    /// Engine durability of the in-process runs: "full", "normal" or "off".
    #[serde(default = "durability_default")]
    pub durability: String,
    /// Normal mode: the WAL is synced every this many commits.
    #[serde(default = "normal_commits_default")]
    pub normal_commits: u32,
    /// Normal mode: ... or every this many milliseconds.
    #[serde(default = "normal_millis_default")]
    pub normal_millis: u32,
    /// A seeded engine bug (kebab-case name, see `engine::SeededBug::name`).
    #[serde(default)]
    pub seeded_bug: Option<String>,
    /// Verified point reads per 1000 commits of the in-process workload.
    #[serde(default = "per_mille_reads")]
    pub read_per_mille: u32,
    /// Write transactions that roll back instead of committing, per 1000.
    #[serde(default)]
    pub rollback_per_mille: u32,
    /// Each seed draws the engine configuration and workload knobs (`chaos::swarm`).
    #[serde(default)]
    pub swarm: bool,
    /// Page size of the in-process engine (default: the engine's).
    #[serde(default)]
    pub page_size: Option<usize>,
    /// Cache bytes of the in-process engine (default: 128 KiB, so pages are evicted).
    #[serde(default)]
    pub cache_bytes: Option<usize>,
    /// Writes that delete their key instead, per 1000.
    #[serde(default)]
    pub delete_per_mille: u32,
    /// Every this many commits, one commit deletes every present key of a run of up to
    /// `BULK_DELETE_KEYS_MAX` keys (0: never): it frees pages by the thousand, so the free
    /// list spans several trunk pages (check `free_list_beyond_one_trunk`).
    #[serde(default)]
    pub bulk_delete_every: u64,
    /// Verified range and prefix scans per 1000 commits.
    #[serde(default)]
    pub scan_per_mille: u32,
    /// Every this many commits a read snapshot opens and is held for `long_reader_commits`
    /// commits, checkpoints included, its reads checked against the state it opened on
    /// (0: never; `chaos/rig/held.rs`).
    #[serde(default)]
    pub long_reader_every: u64,
    /// Commits a held reader outlives (at most `rig::LONG_READER_COMMITS_MAX`).
    #[serde(default = "long_reader_commits_default")]
    pub long_reader_commits: u64,
    /// Every this many commits, one deletes a run of present keys and puts about half back
    /// in the same transaction (0: never).
    #[serde(default)]
    pub delete_put_every: u64,
    /// Values drawn up to this long, skewed short (0: the scenario's fixed `value_size`).
    #[serde(default)]
    pub value_bytes_max: usize,
    /// Explicit checkpoint every this many commits (0: only the engine's own).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Off mode: `Database::sync` every this many commits (0: never).
    #[serde(default)]
    pub sync_every: u64,
    /// The engine's automatic checkpoint threshold.
    #[serde(default = "wal_checkpoint_bytes_default")]
    pub wal_checkpoint_bytes: u64,
    /// Bank accounts kept beside the key-value table (0: no bank).
    #[serde(default)]
    pub accounts: u64,
    /// Power loss: threads committing to keys of their own beside the seeded workload, so
    /// crashes land among group commits (at most `chaos::crowd::WRITERS_MAX`).
    #[serde(default)]
    pub writers: usize,
    /// `recovery_time_bound`: base of the bound.
    #[serde(default = "bound_base_ms")]
    pub recovery_bound_base_ms: u64,
    /// `recovery_time_bound`: added per 64 MiB of WAL at the crash.
    #[serde(default = "bound_per_64mib_ms")]
    pub recovery_bound_ms_per_64mib: u64,
    /// Read-side storage faults under the in-process power-loss cycles: `eio_read` and
    /// `latent` (sector errors) of `faults::FaultPlan`. The other faults have sections.
    #[serde(default)]
    pub storage: Option<crate::faults::FaultPlan>,
    #[serde(default)]
    pub kill9: Option<Kill9Spec>,
    #[serde(default)]
    pub power_loss: Option<PowerLossSpec>,
    #[serde(default)]
    pub corruption: Option<CorruptionSpec>,
    #[serde(default)]
    pub enospc: Option<EpisodesSpec>,
    #[serde(default)]
    pub eio: Option<EioSpec>,
    #[serde(default)]
    pub fail_at_n: Option<FailAtNSpec>,
    #[serde(default)]
    pub tmpfs: Option<TmpfsSpec>,
    #[serde(default)]
    pub fs: Option<FsSpec>,
}

/// `[faults.fs]`: the `[faults.kill9]` loop with the data directory on the fault file system
/// (`faultfs`), the power cut after every kill (`chaos::fsloop`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FsSpec {
    /// Torn-write models the cuts cycle through, drawn per cut from the seed: `drop` (every
    /// unsynced write lost), `sqlite`, `fdb`, `half` (see `faultfs::TornModel::by_name`).
    #[serde(default = "torn_default")]
    pub torn: Vec<String>,
    /// False: the same loop on the real disk with no power cut (the baseline for the cost of
    /// the file system).
    #[serde(default = "mount_default")]
    pub mount: bool,
    /// When names become durable: "posix" (only on an fsync of their directory) or "ext4"
    /// (also on any fsync: ext4 commits its whole journal transaction, directory entries
    /// included).
    #[serde(default = "names_default")]
    pub names: String,
}

fn names_default() -> String {
    "posix".to_string()
}

/// Torn models one `[faults.fs]` draws from: there are four, and a repeat weights one.
pub const TORN_MODELS_MAX: usize = 8;

fn torn_default() -> Vec<String> {
    vec!["drop".to_string()]
}

fn mount_default() -> bool {
    true
}

/// A millisecond range.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MsRange {
    pub min: u64,
    pub max: u64,
}

/// `[faults.kill9]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Kill9Spec {
    pub cycles: u64,
    pub delay_ms: MsRange,
    /// Every Nth cycle, the next child is killed while it recovers (0: never).
    #[serde(default)]
    pub recovery_kill_every: u64,
    /// "kv" (multi-key update transactions), "ycsb-a" (50% verified reads, 50% updates) or
    /// "bank" (transfers).
    #[serde(default = "kv_default")]
    pub workload: String,
    /// Run the integrity check every Nth cycle and after the last (0: only the last).
    #[serde(default)]
    pub integrity_every: u64,
    /// Threads of the child, each with its own session: writers update disjoint keys
    /// (key % threads), reads and transfers go anywhere. With several, the kills land among
    /// group-commit waits, background checkpoints and readers beside the writers.
    #[serde(default = "threads_default")]
    pub threads: u64,
}

/// Threads of one kill -9 child at most: each holds a session and a stack.
pub const KILL9_THREADS_MAX: u64 = 128;

fn threads_default() -> u64 {
    1
}

fn kv_default() -> String {
    "kv".to_string()
}

/// `[faults.power_loss]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PowerLossSpec {
    pub cycles: u64,
    pub presets: Vec<CrashPreset>,
    /// Every Nth cycle also crashes in the middle of recovery (0: never).
    #[serde(default)]
    pub crash_in_recovery_every: u64,
    /// Power loss lands right after a commit's WAL append, before its fsync returns.
    #[serde(default)]
    pub torn_tail: bool,
    /// Every Nth cycle loses power inside an explicit checkpoint, at a seeded I/O among
    /// those the last checkpoint took: in the page copy, between the main-file sync and the
    /// WAL reset, or in the reset (0: never).
    #[serde(default)]
    pub crash_in_checkpoint_every: u64,
    /// Normal mode: every Nth cycle idles past the time window before its crash, so every
    /// acknowledged commit must survive it (0: never).
    #[serde(default)]
    pub idle_every: u64,
    /// A power-loss model in full, used instead of the presets (e.g. a torn write: sector
    /// granularity, most sectors written, the rest garbage).
    #[serde(default)]
    pub model: Option<crate::faults::CrashModel>,
}

/// `[faults.corruption]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptionSpec {
    pub episodes: u64,
    /// Bits flipped at rest per episode (main file and WAL alternately).
    #[serde(default)]
    pub bit_flips: u32,
    /// Probability that a write lands at another offset (0: none).
    #[serde(default)]
    pub misdirect_probability: f64,
}

/// A number of episodes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodesSpec {
    pub episodes: u64,
}

/// `[faults.eio]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EioSpec {
    /// Among "sync_once", "sync_persistent", "write_once", "write_persistent",
    /// "write_partial_once", "write_partial_persistent" (a short write: a whole-sector
    /// prefix lands, then EIO) and "read_once".
    pub kinds: Vec<String>,
}

/// `[faults.fail_at_n]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FailAtNSpec {
    /// Give up (and fail the check) if the workload still faults at this N.
    pub n_max: u64,
}

/// `[faults.tmpfs]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsSpec {
    pub size_mib: u64,
    pub ballast_mib: u64,
}

impl FaultsSection {
    /// The checks the in-process sections imply: each is registered before it can be
    /// observed, so one that never observes anything fails ("observed nothing") instead of
    /// being absent from the report.
    #[must_use]
    pub fn implied_in_process(&self) -> Vec<&'static str> {
        use super::names::*;
        let crashes = self.power_loss.is_some() || self.corruption.is_some();
        let mut out = Vec::new();
        let mut imply = |on: bool, name: &'static str| {
            if on {
                out.push(name);
            }
        };
        imply(crashes, DURABILITY);
        imply(crashes, INTEGRITY);
        let pl = self.power_loss.is_some();
        imply(pl && self.read_per_mille > 0, VERIFIED_READS);
        imply(pl && self.scan_per_mille > 0, VERIFIED_SCANS);
        imply(pl && self.accounts > 0, ATOMICITY);
        imply(pl && self.writers > 0, CONCURRENT_WRITERS);
        imply(pl && self.bulk_delete_every > 0, FREE_LIST_TRUNKS);
        let read_faults = self.storage.as_ref().is_some_and(|p| p.injects());
        imply(pl && read_faults, READ_FAULTS_FIRED);
        imply(self.corruption.is_some(), CHECKSUM_DETECTION);
        imply(self.enospc.is_some(), DISK_FULL_RECOVERY);
        imply(self.eio.is_some(), EIO_FIRED);
        imply(self.fail_at_n.is_some(), FAIL_AT_N_COMPLETES);
        out
    }

    /// The checks `[faults.kill9]` implies (see [`FaultsSection::implied_in_process`]).
    #[must_use]
    pub fn implied_kill9(&self) -> Vec<&'static str> {
        use super::names::*;
        let Some(k) = &self.kill9 else {
            return Vec::new();
        };
        // The bank's recovered state is judged by its total (atomicity), the others' key by
        // key (durability). Integrity is left out: a peer may have no integrity check (the
        // adapter says so only once open), and our engine's runs after the last cycle
        // anyway; kills during recovery register themselves once one is tried.
        match k.workload.as_str() {
            "bank" => vec![ATOMICITY],
            "ycsb-a" => vec![DURABILITY, VERIFIED_READS],
            _ => vec![DURABILITY],
        }
    }

    /// Checks ranges serde cannot.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.durability.as_str(), "full" | "normal" | "off") {
            return Err(format!(
                "faults.durability = {:?}: \"full\", \"normal\" or \"off\"",
                self.durability
            ));
        }
        if self.normal_commits == 0 || !(1..=NORMAL_MILLIS_MAX).contains(&self.normal_millis) {
            return Err(format!(
                "faults.normal_commits > 0 and faults.normal_millis in 1..={NORMAL_MILLIS_MAX}"
            ));
        }
        if self.writers > 0 && self.durability != "full" {
            return Err(format!(
                "faults.writers = {}: needs durability = \"full\" (the writers' acknowledged \
                 commits are judged as durable)",
                self.writers
            ));
        }
        if self.long_reader_commits == 0
            || self.long_reader_commits > super::rig::LONG_READER_COMMITS_MAX
        {
            return Err(format!(
                "faults.long_reader_commits = {}: must be in 1..={}",
                self.long_reader_commits,
                super::rig::LONG_READER_COMMITS_MAX
            ));
        }
        if self.writers > super::crowd::WRITERS_MAX {
            return Err(format!(
                "faults.writers = {}: at most {}",
                self.writers,
                super::crowd::WRITERS_MAX
            ));
        }
        if let Some(name) = &self.seeded_bug {
            if engine::SeededBug::from_name(name).is_none() {
                return Err(format!("faults.seeded_bug = {name:?}: unknown bug"));
            }
        }
        if let Some(ps) = self.page_size {
            let ok = ps.is_power_of_two()
                && (engine::PAGE_SIZE_MIN..=engine::PAGE_SIZE_MAX).contains(&ps);
            if !ok {
                return Err(format!(
                    "faults.page_size = {ps}: a power of two in {}..={}",
                    engine::PAGE_SIZE_MIN,
                    engine::PAGE_SIZE_MAX
                ));
            }
        }
        if self
            .cache_bytes
            .is_some_and(|c| !(CACHE_BYTES_MIN..=CACHE_BYTES_MAX).contains(&c))
        {
            return Err(format!(
                "faults.cache_bytes: in {CACHE_BYTES_MIN}..={CACHE_BYTES_MAX}"
            ));
        }
        let per_mille = [
            self.read_per_mille,
            self.rollback_per_mille,
            self.delete_per_mille,
            self.scan_per_mille,
        ];
        if per_mille.iter().any(|&p| p > 1000) {
            return Err("faults.*_per_mille: at most 1000".to_string());
        }
        if let Some(f) = &self.fs {
            if self.kill9.is_none() {
                return Err("faults.fs needs a [faults.kill9] section (its loop)".to_string());
            }
            if f.names != "posix" && f.names != "ext4" {
                return Err(format!("faults.fs.names = {:?}: posix or ext4", f.names));
            }
            if f.torn.is_empty() || f.torn.len() > TORN_MODELS_MAX {
                return Err(format!(
                    "faults.fs.torn: 1 to {TORN_MODELS_MAX} model names"
                ));
            }
            if let Some(bad) = f
                .torn
                .iter()
                .find(|t| faultfs::TornModel::by_name(t).is_none())
            {
                return Err(format!(
                    "faults.fs.torn: unknown model {bad:?} (drop, sqlite, fdb, half)"
                ));
            }
        }
        if let Some(k) = &self.kill9 {
            let ok = k.cycles <= CYCLES_MAX && k.delay_ms.min <= k.delay_ms.max;
            if !ok || k.delay_ms.max > DELAY_MS_MAX {
                return Err("faults.kill9: cycles or delay_ms out of range".to_string());
            }
            if !matches!(k.workload.as_str(), "kv" | "ycsb-a" | "bank") {
                return Err(format!("faults.kill9.workload = {:?}", k.workload));
            }
            if !(1..=KILL9_THREADS_MAX).contains(&k.threads) {
                return Err(format!("faults.kill9.threads: 1..={KILL9_THREADS_MAX}"));
            }
        }
        if let Some(plan) = &self.storage {
            plan.validate()?;
            let read_side_only = plan.enospc.is_none()
                && plan.eio_write.is_none()
                && plan.eio_sync.is_none()
                && plan.fail_at.is_none()
                && plan.misdirect.is_none()
                && plan.bit_flips.is_empty()
                && plan.crash_at_op.is_none();
            if !read_side_only || self.power_loss.is_none() {
                return Err(
                    "faults.storage: eio_read and latent only, under [faults.power_loss] \
                     (ENOSPC, write and sync EIO, fail-at-N, misdirects, bit flips and crashes \
                     have their own sections)"
                        .to_string(),
                );
            }
        }
        if let Some(p) = &self.power_loss {
            if p.cycles > CYCLES_MAX || p.presets.is_empty() {
                return Err("faults.power_loss: cycles <= 100000 and a preset".to_string());
            }
            if p.idle_every > 0 && self.durability != "normal" {
                return Err(
                    "faults.power_loss.idle_every: only with durability = \"normal\"".into(),
                );
            }
        }
        if let Some(c) = &self.corruption {
            if !(0.0..=1.0).contains(&c.misdirect_probability) || c.episodes > CYCLES_MAX {
                return Err("faults.corruption: misdirect_probability in [0, 1]".to_string());
            }
        }
        if let Some(e) = &self.eio {
            for kind in &e.kinds {
                if crate::chaos::inproc::eio_plan(kind).is_none() {
                    return Err(format!("faults.eio.kinds: unknown {kind:?}"));
                }
            }
        }
        Ok(())
    }

    /// The seeded bug, resolved.
    #[must_use]
    pub fn bug(&self) -> Option<engine::SeededBug> {
        self.seeded_bug
            .as_deref()
            .and_then(engine::SeededBug::from_name)
    }
}

#[cfg(test)]
mod tests {
    use super::FaultsSection;

    /// `[faults.storage]` takes read-side faults under power loss, and refuses the rest.
    #[test]
    fn storage_table_takes_read_faults_only() -> anyhow::Result<()> {
        let ok = "[storage]\neio_read = { probability = 0.01 }\nlatent = [{ file = \"db\", offset = 0, len = 512 }]\n[power_loss]\ncycles = 1\npresets = [\"sqlite\"]\n";
        let spec: FaultsSection = toml::from_str(ok)?;
        spec.validate().map_err(anyhow::Error::msg)?;
        let bad =
            "[storage]\neio_sync = { at = 1 }\n[power_loss]\ncycles = 1\npresets = [\"sqlite\"]\n";
        let spec: FaultsSection = toml::from_str(bad)?;
        anyhow::ensure!(spec.validate().is_err());
        let alone = "[storage]\neio_read = { probability = 0.01 }\n";
        let spec: FaultsSection = toml::from_str(alone)?;
        anyhow::ensure!(spec.validate().is_err(), "needs [faults.power_loss]");
        Ok(())
    }
}
