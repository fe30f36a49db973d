//! `[faults.fs]`: the kill -9 loop ([`super::kill9`]) with the database directory on the
//! fault file system (`faultfs`), for any engine the adapters know.
//!
//! Per engine: mount `faultfs` in this process (a background thread serves it), run the
//! kill -9 loop with its data directory on the mount and its expected state on the real disk,
//! and after every kill — the child is dead, so nothing of its is in flight — cut the power:
//! every write, length and name not made durable by fsync is dropped, or torn by the cycle's
//! seeded model. The parent then reopens on what survived and judges it with the kill -9
//! loop's own judge against the engine-mode's promise:
//!
//! * a durable mode (`Engine::durable_commits`) loses nothing acknowledged;
//! * a relaxed mode may lose acknowledged commits back to its last sync (the expected state's
//!   Buffered rule, per key), never shows a version that was not written, and never corrupts
//!   (values verify, the engine's integrity check passes).
//!
//! Relaxed modes skip the kill during recovery: the child settles keys a killed child left in
//! flight under the durable rule, which a relaxed mode need not meet.
//!
//! Adding an engine-mode to `fs/*` is one line: its adapter name in the scenario's `engines`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::kill9::{self, Kill9Ctx};
use super::spec::FsSpec;
use super::{ChaosOutcome, Tally};
use crate::adapter::{open_engine, EngineOptions};
use crate::faults::rng::{hash, SplitMix64};

/// What the kill -9 loop needs to cut the power.
#[derive(Debug, Clone)]
pub struct FsHook {
    pub control: faultfs::Control,
    /// Where the expected state lives (the real disk).
    pub oracle_dir: PathBuf,
    /// The torn-write models cuts draw from.
    pub torn: Vec<faultfs::TornModel>,
    /// The engine-mode promises less than durability (see the module docs).
    pub relaxed: bool,
}

/// The run needs FUSE; the command line exits 2 with this message.
#[derive(Debug)]
pub struct NeedsFuse(pub String);

impl std::fmt::Display for NeedsFuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SKIPPED: fs/* needs FUSE: {}", self.0)
    }
}

impl std::error::Error for NeedsFuse {}

/// Cuts the power after kill `k` of cycle `cycle` (0: the cycle's kill; 1..: the kills in
/// recovery), with a torn model drawn from the seed. A no-op without `[faults.fs]`.
///
/// # Errors
/// The file system's backing I/O.
pub(crate) fn cut(ctx: &Kill9Ctx, cycle: u64, k: u64) -> Result<()> {
    let Some(hook) = &ctx.fs else {
        return Ok(());
    };
    let mut rng = SplitMix64::new(hash(ctx.seed, 0xF5C0_7001, cycle * 16 + k));
    let torn = hook.torn[rng.below(hook.torn.len() as u64) as usize];
    hook.control.power_loss(torn).context("faultfs power loss")
}

/// The promise an engine-mode states, as a failure report shows it.
fn promise(relaxed: bool) -> &'static str {
    if relaxed {
        "relaxed: keeps a prefix of acknowledged history per key, never corrupts"
    } else {
        "durable: loses nothing acknowledged"
    }
}

/// Whether `engine` acknowledges commits durably, from its adapter.
fn durable(engine: &str, scratch: &Path) -> Result<bool> {
    let dir = scratch.join(format!("probe-{engine}"));
    let e = open_engine(engine, &dir, &EngineOptions::default()).map_err(kill9::adapter_err)?;
    let durable = e.durable_commits();
    e.close().map_err(kill9::adapter_err)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(durable)
}

/// Runs the loop once per engine in `engines`, each on a fresh mount; `base` carries the
/// loop's settings (its engine and directory are replaced per engine).
///
/// # Errors
/// [`NeedsFuse`] on a machine without FUSE; mount, load and child failures.
pub fn run(
    base: &Kill9Ctx,
    spec: &FsSpec,
    engines: &[String],
    scenario: &str,
) -> Result<ChaosOutcome> {
    if spec.mount {
        if let Some(why) = faultfs::unavailable() {
            return Err(NeedsFuse(why).into());
        }
    }
    if let Some(bug) = &base.faults.seeded_bug {
        // The kill -9 loop's engines (the parent's load and reopen, and every child) take a
        // seeded bug from the environment; set before any thread of this run exists.
        std::env::set_var(crate::adapter::SEEDED_BUG_ENV, bug);
    }
    let torn = spec
        .torn
        .iter()
        .filter_map(|t| faultfs::TornModel::by_name(t))
        .collect::<Vec<_>>();
    let mut out = ChaosOutcome::default();
    for engine in engines {
        let root = base.dir.join(format!("fs-{engine}"));
        let relaxed = !durable(engine, &root)?;
        let sets: Vec<String> = base
            .faults
            .seeded_bug
            .iter()
            .map(|b| format!("faults.seeded_bug={b}"))
            .collect();
        let reproduce = crate::run::reproduce_command(scenario, base.seed, Some(engine), &sets);
        let label = format!(
            "{engine} [{}] under power loss (torn models {:?}), seed {}; reproduce: {reproduce}",
            promise(relaxed),
            spec.torn,
            base.seed
        );
        let one = run_engine(base, spec, engine, &root, relaxed, &torn)
            .with_context(|| format!("fs loop on {engine}: reproduce with {reproduce}"))?;
        let mut one = one;
        one.notes
            .push(format!("{engine}: promise {}", promise(relaxed)));
        label_details(&mut one.tally, &label);
        out.absorb(one);
    }
    Ok(out)
}

fn run_engine(
    base: &Kill9Ctx,
    spec: &FsSpec,
    engine: &str,
    root: &Path,
    relaxed: bool,
    torn: &[faultfs::TornModel],
) -> Result<ChaosOutcome> {
    let mut ctx = base.clone();
    ctx.engine = engine.to_string();
    if relaxed {
        ctx.spec.recovery_kill_every = 0;
    }
    if !spec.mount {
        ctx.dir = root.join("disk");
        return kill9::run(&ctx);
    }
    let oracle_dir = root.join("oracle");
    std::fs::create_dir_all(&oracle_dir)?;
    let mount_seed = hash(base.seed, 0xF5C0_7002, 0);
    let mount = faultfs::mount(&root.join("backing"), &root.join("mnt"), mount_seed)
        .with_context(|| format!("mounting faultfs at {}", root.join("mnt").display()))?;
    ctx.dir = mount.mountpoint().to_path_buf();
    // The data directory exists durably before the engine starts, as on a deployed machine;
    // what the engine creates inside it is the engine's to sync.
    std::fs::create_dir_all(ctx.dir.join("data"))?;
    std::fs::File::open(&ctx.dir)?.sync_all()?;
    mount.control().set_journal_names(spec.names == "ext4");
    ctx.fs = Some(FsHook {
        control: mount.control().clone(),
        oracle_dir,
        torn: torn.to_vec(),
        relaxed,
    });
    let result = kill9::run(&ctx);
    let stats = mount.control().stats();
    mount.unmount().context("unmounting faultfs")?;
    let mut outcome = result?;
    outcome.notes.push(format!(
        "{engine} on faultfs: {} power cuts; at the cuts {} unsynced sectors landed, {} as garbage, {} dropped; {} fsyncs, {} directory fsyncs",
        stats.power_losses,
        stats.sectors_written_at_loss,
        stats.sectors_garbage_at_loss,
        stats.sectors_dropped_at_loss,
        stats.fsyncs,
        stats.dir_fsyncs
    ));
    Ok(outcome)
}

/// Prefixes every failure detail with the engine, its promise, the fault and the reproduce
/// command, so a report over several engines says whose failure each one is.
fn label_details(tally: &mut Tally, label: &str) {
    for t in tally.checks.values_mut() {
        for d in &mut t.details {
            *d = format!("{label}: {d}");
        }
    }
}
