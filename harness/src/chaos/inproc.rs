//! In-process storage-fault loops on the rig: power loss, crashes during recovery, corruption
//! at rest, ENOSPC, EIO and SQLite-style fail-at-N. Every decision derives from the seed; the
//! engine runs single-threaded with seeded WAL salts, so a run replays exactly.

use anyhow::{Context as _, Result};

use super::rig::{Rig, RigConfig, Step};
use super::spec::{CorruptionSpec, EioSpec, FailAtNSpec, PowerLossSpec};
use super::{names, ChaosOutcome, FaultsSection};
use crate::faults::{CrashPreset, CrashSpec, EnospcPlan, FailAt, FaultKind, FaultPlan, Trigger};

/// I/O operations one commit of the rig takes at most, for placing a crash inside a cycle.
const OPS_PER_COMMIT_EST: u64 = 12;
/// A disk-full episode gives up looking for ENOSPC after this many times its commit budget.
const ENOSPC_COMMITS_FACTOR: u64 = 20;
/// The WAL header ahead of the first frame (docs/design.md, "WAL file").
const WAL_HEADER_BYTES: u64 = 64;
/// A WAL frame's header ahead of its page (docs/design.md, "WAL file").
const WAL_FRAME_HEADER_BYTES: u64 = 48;
/// Commits of the bounded fail-at-N workload: each N reruns it from scratch.
const FAIL_AT_N_COMMITS: u64 = 6;
/// Keys of the fail-at-N workload: a couple of leaves.
const FAIL_AT_N_KEYS: u64 = 64;

/// What every in-process runner needs from the scenario.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub spec: FaultsSection,
    pub seed: u64,
    pub keys_n: u64,
    pub value_bytes: usize,
    /// Commits per cycle or episode.
    pub commits: u64,
}

impl Ctx {
    fn rig(&self, plan: FaultPlan, episode: u64) -> Result<Rig> {
        let seed = crate::gen::derive_seed(self.seed, episode);
        let cfg = RigConfig::from_spec(&self.spec, seed, self.keys_n, self.value_bytes)?;
        Rig::new(cfg, &self.spec, plan)
    }
}

/// Starts a fresh rig (a new database and oracle) carrying over what `old` found.
fn fresh(ctx: &Ctx, old: Rig, plan: FaultPlan, episode: u64) -> Result<Rig> {
    let mut rig = ctx.rig(plan, episode)?;
    rig.out = old.out;
    rig.setup_disarmed()
        .context("setting up a fresh database")?;
    Ok(rig)
}

/// Power loss every cycle with the presets in turn; some cycles crash again mid-recovery.
///
/// # Errors
/// Setup failures and oracle protocol errors (findings are in the outcome's checks).
pub fn run_power_loss(ctx: &Ctx, pl: &PowerLossSpec) -> Result<ChaosOutcome> {
    let base = ctx.spec.storage.clone().unwrap_or_default();
    let mut rig = ctx.rig(base.clone(), 0)?;
    rig.io_faults_expected = base.injects();
    rig.setup_disarmed().context("power loss: setup")?;
    let mut in_checkpoint = InCheckpoint::default();
    for c in 0..pl.cycles {
        let preset = pl.presets[(c as usize) % pl.presets.len()];
        let model = pl.model.clone().unwrap_or_else(|| preset.model());
        rig.label = format!("power_loss cycle {c} ({preset:?}, seed {})", ctx.seed);
        // Normal mode: a seeded cycle length puts the crash at every point of the sync
        // window, not always the same distance past the last count sync.
        let commits = match rig.cfg.durability {
            engine::Durability::Normal { commits, .. } => {
                ctx.commits + rig.below(u64::from(commits))
            }
            _ => ctx.commits,
        };
        rig.run(commits)?;
        if every_nth(c, pl.crash_in_checkpoint_every) {
            in_checkpoint.attempt(&mut rig);
        }
        let planned = rig
            .storage
            .crash_at_op()
            .filter(|_| rig.storage.is_crashed());
        let idle = every_nth(c, pl.idle_every);
        if idle && planned.is_none() {
            rig.idle_past_window();
        }
        let at_op = planned.unwrap_or_else(|| rig.storage.ops_total());
        let mut image = rig.crash(&model);
        let in_recovery = every_nth(c, pl.crash_in_recovery_every);
        let name = if pl.model.is_some() {
            "model".to_string()
        } else {
            preset_name(preset)
        };
        let mut kind = format!("power_loss_{name}");
        if idle {
            kind.push_str("+idle");
        }
        if in_recovery {
            image = rig.crash_during_recovery(image, &model)?;
            kind.push_str("+crash_in_recovery");
        }
        let plan = if pl.torn_tail {
            let next = pl.presets[((c + 1) as usize) % pl.presets.len()];
            let next = pl.model.clone().unwrap_or_else(|| next.model());
            FaultPlan {
                crash: CrashSpec::Model(next),
                ..base.clone()
            }
        } else {
            base.clone()
        };
        if !rig.reopen(&image, plan, &kind, at_op)? {
            rig = fresh(ctx, rig, base.clone(), c + 1)?;
            rig.io_faults_expected = base.injects();
        } else if pl.torn_tail {
            // The next cycle's crash lands at a seeded I/O inside its commits: often between a
            // commit's WAL append and its fsync, leaving a torn tail. It is armed only now,
            // after recovery and verification, so it never cuts the checks short (a crash
            // inside verification once read as "tables missing after recovery").
            let at = rig.storage.ops_total() + 1 + rig.below(ctx.commits * OPS_PER_COMMIT_EST);
            rig.storage.arm_crash_at(at);
        }
    }
    if pl.crash_in_checkpoint_every > 0 {
        in_checkpoint.judge(&mut rig);
    }
    if base.injects() {
        judge_read_faults(&mut rig);
    }
    finish_off_mode(&mut rig, pl.cycles);
    finish_normal_mode(&mut rig, pl.cycles);
    judge_free_list(&mut rig);
    Ok(rig.out)
}

/// `[faults.storage]` read faults must have fired (else the run tested nothing of them);
/// that every one surfaced as an error, never as data, is what the other checks judge.
fn judge_read_faults(rig: &mut Rig) {
    rig.collect_schedule();
    let fired = (rig.out.schedule.iter())
        .filter(|e| e.kind == "eio_read" || e.kind == "latent_sector")
        .count() as u64;
    if fired > 0 {
        rig.out.tally.pass(names::READ_FAULTS_FIRED, fired);
    } else {
        let d = "no planned read error or latent sector fired".to_string();
        rig.out.tally.fail(names::READ_FAULTS_FIRED, d);
    }
}

/// True on every `n`th cycle (the last of each group of `n`; never when `n` is 0).
fn every_nth(c: u64, n: u64) -> bool {
    n > 0 && c % n == n - 1
}

/// I/Os the first checkpoint is assumed to take, before one has been measured.
const CHECKPOINT_OPS_FIRST: u64 = 8;
/// The widest range a crash inside a checkpoint is drawn from: the rig's checkpoints copy
/// at most a few hundred pages.
const CHECKPOINT_OPS_MAX: u64 = 4096;

/// Power losses placed inside explicit checkpoints.
#[derive(Debug, Default)]
struct InCheckpoint {
    /// I/Os of the last checkpoint that completed: the range a crash is drawn from.
    ops_last: u64,
    tries: u64,
    landed: u64,
}

impl InCheckpoint {
    /// Arms the power loss at a seeded I/O of the checkpoint it then starts; a checkpoint
    /// that finishes first (a shorter one) cancels it, and the cycle loses power after.
    fn attempt(&mut self, rig: &mut Rig) {
        let before = rig.storage.ops_total();
        let range = if self.ops_last == 0 {
            CHECKPOINT_OPS_FIRST
        } else {
            self.ops_last
        };
        let at = before + 1 + rig.below(range);
        let Some(db) = rig.db.as_ref() else {
            return;
        };
        rig.storage.arm_crash_at(at);
        self.tries += 1;
        // The crash fails the checkpoint with an I/O error: that is the point.
        let _ = db.checkpoint();
        if rig.storage.is_crashed() {
            // The checkpoint may be longer than the range: widen it until one completes
            // and is measured, so crashes reach its last steps too.
            self.landed += 1;
            self.ops_last = range.saturating_mul(2).min(CHECKPOINT_OPS_MAX);
        } else {
            self.ops_last = rig.storage.ops_total() - before;
            rig.storage.cancel_crash();
        }
    }

    fn judge(&self, rig: &mut Rig) {
        let name = names::CRASHES_IN_CHECKPOINT;
        if self.landed > 0 {
            rig.out.tally.pass(name, self.landed);
            let note = format!(
                "{} of {} tries landed inside a checkpoint",
                self.landed, self.tries
            );
            rig.out.tally.note(name, note);
        } else {
            let d = format!(
                "none of {} power losses aimed at a checkpoint landed in one",
                self.tries
            );
            rig.out.tally.fail(name, d);
        }
    }
}

fn preset_name(p: CrashPreset) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The free list's reach: noted on the integrity check; with bulk deletes it must span
/// several trunk pages, else those deletes tested nothing.
fn judge_free_list(rig: &mut Rig) {
    let (trunks, pages) = (rig.free_trunks_max, rig.free_pages_max);
    let note = format!("the free list reached {pages} pages on {trunks} trunk pages at most");
    rig.out.tally.note(names::INTEGRITY, note);
    if rig.cfg.bulk_delete_every == 0 {
        return;
    }
    let note = format!("the free list spanned up to {trunks} trunk pages");
    let d = format!("bulk deletes never grew the free list to two trunk pages (at most {trunks}, {pages} free pages)");
    rig.out
        .tally
        .control(names::FREE_LIST_TRUNKS, trunks >= 2, note, d);
}

/// The control of Off mode: a power loss loses acknowledged writes, which is what the mode
/// promises; the check fails only if no loss was ever seen (then the fault model or the
/// checker is blind).
fn finish_off_mode(rig: &mut Rig, cycles: u64) {
    if rig.cfg.durability != engine::Durability::Off {
        return;
    }
    let lost = rig.lost_acked;
    let note = format!(
        "lost {lost} acknowledged writes over {cycles} power losses: expected for durability=off"
    );
    let d = format!("no acknowledged write lost over {cycles} power losses in durability=off: the fault model or the checker is blind");
    rig.out
        .tally
        .control(names::OFF_MODE_LOSS, lost > 0, note, d);
}

/// Normal mode's window is judged at every recovery (`Rig::verify_markers`); this adds its
/// control: some cycle must have lost commits, else the window was never put to the test.
fn finish_normal_mode(rig: &mut Rig, cycles: u64) {
    let engine::Durability::Normal { commits, millis } = rig.cfg.durability else {
        return;
    };
    let (lost, max) = (rig.lost_commits, rig.lost_commits_max);
    if lost == 0 && rig.spec.swarm {
        // A drawn configuration can sync every commit (a checkpoint threshold below one
        // commit's frames): the control belongs to faults/power-loss-normal, not the swarm.
        let note = format!(
            "{cycles} power losses lost nothing: this drawn configuration syncs every commit"
        );
        rig.out.tally.note(names::NORMAL_WINDOW, note);
    } else if lost > 0 {
        let note = format!(
            "{cycles} power losses lost {lost} acknowledged commits, at most {max} at once \
             (window: {commits} commits or {millis} ms)"
        );
        rig.out.tally.note(names::NORMAL_WINDOW, note);
    } else {
        let d = format!("no acknowledged commit lost over {cycles} power losses in Normal mode: the window was never tested");
        rig.out.tally.fail(names::NORMAL_WINDOW, d);
    }
}

/// Bit flips in synced data and misdirected writes: every read must be the acknowledged
/// value or `Error::Corruption`, before and after recovery.
///
/// # Errors
/// Setup failures and oracle protocol errors.
pub fn run_corruption(ctx: &Ctx, cs: &CorruptionSpec) -> Result<ChaosOutcome> {
    let mut out = ChaosOutcome::default();
    let mut stale_reads = 0;
    for e in 0..cs.episodes {
        let misdirect = (cs.misdirect_probability > 0.0).then(|| Trigger {
            probability: cs.misdirect_probability,
            ..Trigger::default()
        });
        let plan = FaultPlan {
            misdirect,
            ..FaultPlan::default()
        };
        let mut rig = ctx.rig(plan, 1000 + e)?;
        rig.label = format!("corruption episode {e} (seed {})", ctx.seed);
        rig.corruption_injected = cs.misdirect_probability > 0.0;
        // Writes are misdirected only once the tables exist.
        rig.setup_disarmed()?;
        rig.run(ctx.commits)?;
        // A clean power loss first: durability is judged in every episode, even one whose
        // damage then makes every key read as corruption.
        let at_op = rig.storage.ops_total();
        let image = rig.crash(&CrashPreset::Sqlite.model());
        let plan = rig.plan.clone();
        if !rig.reopen(&image, plan, "power_loss", at_op)? {
            out.absorb(rig.out);
            continue;
        }
        rig.run(ctx.commits)?;
        if cs.bit_flips > 0 {
            flip_episode(ctx, &mut rig, e % 2 == 1, cs.bit_flips)?;
            rig.verify_live()?;
        }
        stale_reads += rig.take_stale_reads();
        let at_op = rig.storage.ops_total();
        let image = rig.crash(&CrashPreset::Sqlite.model());
        rig.reopen(&image, FaultPlan::default(), "corruption+power_loss", at_op)?;
        rig.collect_schedule();
        out.absorb(rig.out);
    }
    if stale_reads > 0 {
        let note = format!(
            "{stale_reads} live reads returned an older version after a misdirected write left \
             a stale main-file page (a lost write: page checksums cannot see it; docs/design.md)"
        );
        out.tally.note(names::VERIFIED_READS, note);
    }
    Ok(out)
}

/// Flips bits at rest: in the main file, or in the live frames of the WAL (the log a
/// recovery replays, not frames a checkpoint already made dead).
fn flip_episode(ctx: &Ctx, rig: &mut Rig, wal: bool, bits: u32) -> Result<()> {
    rig.corruption_injected = true;
    let every = ctx.spec.checkpoint_every;
    if wal && every > 1 {
        // Episodes end on a checkpoint when `commits` is a multiple of `checkpoint_every`:
        // commit past it so live frames follow the WAL header.
        let extra = 1 + rig.below(every - 1);
        rig.run(extra)?;
    }
    let live = rig.db.as_ref().map_or(0, |db| db.metrics().wal_bytes);
    if wal && live > 0 {
        let start = WAL_HEADER_BYTES;
        let flips = rig
            .storage
            .flip_bits_in("db-wal", start..start + live, bits)?;
        let frame_bytes = WAL_FRAME_HEADER_BYTES + rig.cfg.options().page_size as u64;
        let hits: Vec<u64> = (flips.iter())
            .filter(|f| !in_frame_padding(f.offset - start, frame_bytes))
            .map(|f| (f.offset - start) / frame_bytes)
            .collect();
        let wal_misdirected = (rig.storage.schedule().iter())
            .any(|e| e.kind == FaultKind::Misdirect && e.file == "db-wal");
        let wal = rig.live_image().snapshot("db-wal").unwrap_or_default();
        rig.wal_damage_vouched =
            !wal_misdirected && vouched(&wal, &hits, live / frame_bytes, frame_bytes);
    } else {
        rig.main_damaged = true;
        rig.storage.flip_bits("db", bits)?;
    }
    Ok(())
}

/// True for an offset (from the first frame) in a frame header's unchecked padding: the
/// frame CRC covers header bytes 0..40 and the page, so a flip at 44..48 damages nothing.
fn in_frame_padding(offset: u64, frame_bytes: u64) -> bool {
    (44..48).contains(&(offset % frame_bytes))
}

/// True when an intact frame after the first damaged one vouches, through its
/// `synced_upto` (docs/design.md, "WAL file"), that the damaged frame had been synced: a
/// correct recovery must then report the damage, not take it for a torn tail. `wal` is the
/// WAL file, `hits` the frames damaged, `frames` the live frames.
fn vouched(wal: &[u8], hits: &[u64], frames: u64, frame_bytes: u64) -> bool {
    let Some(&first) = hits.iter().min() else {
        return false;
    };
    let synced_upto = |f: u64| -> Option<u64> {
        let at = usize::try_from(WAL_HEADER_BYTES + f * frame_bytes + 32).ok()?;
        let bytes: [u8; 8] = wal.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    };
    (first + 1..frames)
        .filter(|f| !hits.contains(f))
        .any(|f| synced_upto(f).is_some_and(|s| s > first))
}

/// A full disk: committed transactions survive it, the same open database commits again once
/// space is freed, and a power loss afterwards recovers cleanly.
///
/// # Errors
/// Setup failures and oracle protocol errors.
pub fn run_enospc(ctx: &Ctx, episodes: u64) -> Result<ChaosOutcome> {
    let mut out = ChaosOutcome::default();
    for e in 0..episodes {
        let probe = crate::faults::rng::hash(ctx.seed, 0xE05, e);
        // Counted from the end of the setup, when the fault is armed.
        let enospc = if e % 2 == 0 {
            EnospcPlan {
                at_write: Some(1 + probe % (ctx.commits * 2).max(1)),
                bytes_max: None,
            }
        } else {
            EnospcPlan {
                at_write: None,
                bytes_max: Some((256 << 10) + probe % (1 << 20)),
            }
        };
        let what = format!("{enospc:?}");
        let mut rig = ctx.rig(FaultPlan::default(), 2000 + e)?;
        rig.label = format!("enospc episode {e} ({what}, seed {})", ctx.seed);
        // The disk fills only once the setup is done: the fault is for the workload, and a
        // setup that met it would abort the run instead of judging the engine.
        rig.setup()
            .with_context(|| format!("enospc episode {e}: setup"))?;
        rig.storage.arm_enospc(&enospc);
        let failed = rig.run(ctx.commits * ENOSPC_COMMITS_FACTOR)?;
        judge_disk_full(&mut rig, ctx, failed)?;
        let at_op = rig.storage.ops_total();
        let image = rig.crash(&CrashPreset::Fdb.model());
        rig.reopen(&image, FaultPlan::default(), "enospc+power_loss", at_op)?;
        out.absorb(rig.out);
    }
    Ok(out)
}

fn judge_disk_full(rig: &mut Rig, ctx: &Ctx, failed: Option<Step>) -> Result<()> {
    match failed {
        Some(Step::Failed {
            error: engine::Error::DiskFull { .. },
            ..
        }) => {
            rig.verify_live()?;
            rig.storage.free_space(u64::MAX / 4);
            match rig.run(ctx.commits)? {
                None => {
                    rig.out.tally.pass(names::DISK_FULL_RECOVERY, 1);
                    let note =
                        "the same open database committed again after space was freed".to_string();
                    rig.out.tally.note(names::DISK_FULL_RECOVERY, note);
                }
                Some(step) => {
                    let d = format!(
                        "{}: after freeing space the open database still fails: {step:?}",
                        rig.label
                    );
                    rig.out.tally.fail(names::DISK_FULL_RECOVERY, d);
                }
            }
        }
        Some(step) => {
            let d = format!(
                "{}: the full disk surfaced as {step:?}, not Error::DiskFull",
                rig.label
            );
            rig.out.tally.fail(names::DISK_FULL_RECOVERY, d);
        }
        None => {
            let d = format!(
                "{}: the disk never filled (raise the commits or lower the budget)",
                rig.label
            );
            rig.out.tally.fail(names::DISK_FULL_RECOVERY, d);
        }
    }
    Ok(())
}

/// The fault plan of an EIO kind, with its trigger at `at`.
#[must_use]
pub fn eio_plan(kind: &str) -> Option<FaultPlan> {
    let trig = |persistent: bool| {
        Some(Trigger {
            at: Some(1),
            persistent,
            ..Trigger::default()
        })
    };
    let mut plan = FaultPlan::default();
    match kind {
        "sync_once" => plan.eio_sync = trig(false),
        "sync_persistent" => plan.eio_sync = trig(true),
        "write_once" => plan.eio_write = trig(false),
        "write_persistent" => plan.eio_write = trig(true),
        "write_partial_once" => plan.partial_write = trig(false),
        "write_partial_persistent" => plan.partial_write = trig(true),
        "read_once" => plan.eio_read = trig(false),
        _ => return None,
    }
    Some(plan)
}

fn set_trigger_at(plan: &mut FaultPlan, at: u64) {
    for t in [
        &mut plan.eio_sync,
        &mut plan.eio_write,
        &mut plan.partial_write,
        &mut plan.eio_read,
    ]
    .into_iter()
    .flatten()
    {
        t.at = Some(at);
    }
}

/// EIO on sync, write or read: after a failed fsync the engine must refuse writes (poisoned);
/// reopening, after a process restart or a power loss, shows every acknowledged commit.
///
/// # Errors
/// Unknown kinds, setup failures and oracle protocol errors.
pub fn run_eio(ctx: &Ctx, es: &EioSpec) -> Result<ChaosOutcome> {
    let mut out = ChaosOutcome::default();
    for (i, kind) in es.kinds.iter().enumerate() {
        let mut plan = eio_plan(kind).with_context(|| format!("unknown EIO kind {kind}"))?;
        let at = 8 + crate::faults::rng::hash(ctx.seed, 0xE10, i as u64) % ctx.commits.max(1);
        set_trigger_at(&mut plan, at);
        let mut rig = ctx.rig(plan, 3000 + i as u64)?;
        rig.label = format!("eio {kind} at #{at} after setup (seed {})", ctx.seed);
        rig.io_faults_expected = true;
        // The trigger position counts from the arming, after the setup.
        rig.setup_disarmed()?;
        let failed = rig.run(ctx.commits * 4)?;
        let fired = rig.storage.schedule().iter().any(|e| {
            matches!(
                e.kind,
                FaultKind::EioSync
                    | FaultKind::EioWrite
                    | FaultKind::PartialWrite
                    | FaultKind::EioRead
            )
        });
        if fired {
            rig.out.tally.pass(names::EIO_FIRED, 1);
        } else {
            let d = format!("{}: the fault never fired in the workload", rig.label);
            rig.out.tally.fail(names::EIO_FIRED, d);
        }
        if kind.starts_with("sync") {
            judge_poison(&mut rig, fired, failed.is_some());
        }
        let at_op = rig.storage.ops_total();
        let (image, how) = if kind.starts_with("sync") {
            (rig.crash(&CrashPreset::DropAll.model()), "eio+power_loss")
        } else {
            rig.close(false);
            rig.collect_schedule();
            (rig.shared_mem(), "eio+restart")
        };
        rig.reopen(&image, FaultPlan::default(), how, at_op)?;
        out.absorb(rig.out);
    }
    Ok(out)
}

fn judge_poison(rig: &mut Rig, fired: bool, commit_failed: bool) {
    let Some(db) = rig.db.as_ref() else { return };
    if !fired || !commit_failed {
        let d = format!(
            "{}: the fsync fault never fired or no commit failed",
            rig.label
        );
        rig.out.tally.fail(names::FSYNC_POISON, d);
        return;
    }
    match db.begin_write().map(|tx| tx.commit()) {
        Err(engine::Error::Poisoned) | Ok(Err(engine::Error::Poisoned)) => {
            rig.out.tally.pass(names::FSYNC_POISON, 1)
        }
        other => {
            let d = format!(
                "{}: after a failed fsync a write returned {other:?}, not Poisoned",
                rig.label
            );
            rig.out.tally.fail(names::FSYNC_POISON, d);
        }
    }
}

/// SQLite's error loop: fail I/O number N for N = 1, 2, ... until the bounded workload runs
/// without a fault; once failing once, once failing persistently. After each, reopen on the
/// same memory without faults, verify against the oracle and run the integrity check.
///
/// # Errors
/// Oracle protocol errors.
pub fn run_fail_at_n(ctx: &Ctx, fs: &FailAtNSpec) -> Result<ChaosOutcome> {
    let mut out = ChaosOutcome::default();
    let small = Ctx {
        keys_n: ctx.keys_n.min(FAIL_AT_N_KEYS),
        commits: FAIL_AT_N_COMMITS,
        ..ctx.clone()
    };
    for persistent in [false, true] {
        let mut completed_at = None;
        for n in 1..=fs.n_max {
            let plan = FaultPlan {
                fail_at: Some(FailAt { op: n, persistent }),
                ..FaultPlan::default()
            };
            let mut rig = small.rig(plan, 4000)?;
            rig.label = format!(
                "fail_at_n N={n} persistent={persistent} (seed {})",
                ctx.seed
            );
            rig.io_faults_expected = true;
            if rig.setup().is_ok() && rig.run(small.commits)?.is_none() {
                if let Some(db) = rig.db.as_ref() {
                    let _ = db.checkpoint();
                }
            }
            let fired = rig
                .storage
                .schedule()
                .iter()
                .any(|e| e.kind == FaultKind::FailAt);
            rig.close(false);
            rig.collect_schedule();
            rig.io_faults_expected = false;
            let same = rig.shared_mem();
            rig.reopen(
                &same,
                FaultPlan {
                    track_durability: false,
                    ..FaultPlan::default()
                },
                "fail_at_n",
                n,
            )?;
            rig.close(false);
            out.absorb(rig.out);
            if !fired {
                completed_at = Some(n);
                break;
            }
        }
        match completed_at {
            Some(n) => {
                out.tally.pass(names::FAIL_AT_N_COMPLETES, 1);
                out.notes.push(format!("fail_at_n persistent={persistent}: workload completed without a fault at N = {n}"));
            }
            None => out.tally.fail(
                names::FAIL_AT_N_COMPLETES,
                format!(
                    "persistent={persistent}: still faulting at N = {}",
                    fs.n_max
                ),
            ),
        }
    }
    Ok(out)
}
