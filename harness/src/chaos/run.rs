//! `harness run` of a scenario with a `[faults]` table: every fault section in turn, one
//! report with the named checks, the crash cycles and the fault schedule.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::inproc::{self, Ctx};
use super::kill9::{self, Kill9Ctx};
use super::{tmpfs, ChaosOutcome, FaultsSection};
use crate::gen::ValueSizeSpec;
use crate::report::{self, Report};
use crate::run::{RunOutcome, RunRequest};
use crate::scenario::Scenario;

/// Commits per cycle when the scenario's `[run]` has no `ops`.
const COMMITS_DEFAULT: u64 = 50;

fn value_bytes(s: &Scenario) -> usize {
    match s.workload.value_size {
        ValueSizeSpec::Fixed { bytes } => bytes,
        _ => 100,
    }
}

/// Runs every fault section of `faults` on the engine of `req` (the in-process sections always
/// run our engine on the fault layer) and writes the report into `req.out_dir`.
///
/// # Errors
/// Setup failures, a child that cannot start, [`tmpfs::NeedsRoot`], report I/O.
pub fn execute(req: &RunRequest, faults: &FaultsSection) -> Result<RunOutcome> {
    std::fs::create_dir_all(&req.out_dir)
        .with_context(|| format!("creating {}", req.out_dir.display()))?;
    let engine = req
        .engines
        .first()
        .cloned()
        .unwrap_or_else(|| "engine-full".to_string());
    // A shard runs its share of each section's cycles (the report's config stays whole).
    let (faults, sections) = match &req.shard {
        Some(s) => crate::shard::split_faults(faults, s.shard).map_err(anyhow::Error::msg)?,
        None => (faults.clone(), Vec::new()),
    };
    let faults = &faults;
    let outcome = run_sections(req, faults, &engine)?;
    // The in-process sections run our engine in the scenario's durability mode, whatever
    // the adapter name says.
    let engine = if faults.fs.is_some() && req.engines.len() > 1 {
        "all".to_string()
    } else if faults.kill9.is_none() && engine.starts_with("engine") {
        format!("engine-{}", faults.durability)
    } else {
        engine
    };
    let config = serde_json::to_value(&req.scenario).context("scenario to JSON")?;
    let mut report = Report::new(&req.scenario_name, &engine, req.seed, config);
    report.reproduce = Some(req.reproduce.clone());
    let label = match &req.shard {
        Some(s) => format!(
            "{} shard {} of base seed {} (seed {})",
            req.scenario_name, s.shard, s.base_seed, req.seed
        ),
        None => format!("{} seed {}", req.scenario_name, req.seed),
    };
    report.checks = outcome.tally.to_checks(&label);
    report.require_checks();
    report.shard = req
        .shard
        .map(|s| shard_info(s, sections, &outcome.tally, &report.config));
    report.crash_cycles = Some(outcome.crash_cycles());
    report.phases.extend(outcome.workload_phase());
    let histograms: BTreeMap<String, _> = outcome
        .latency
        .iter()
        .map(|(k, h)| (format!("workload.{k}"), h.clone()))
        .collect();
    report.fault_schedule = Some(outcome.schedule.clone());
    for note in &outcome.notes {
        println!("{note}");
    }
    if !req.keep_data {
        let _ = std::fs::remove_dir_all(req.out_dir.join("data"));
    }
    let paths = report::write_all(&report, &histograms, &req.out_dir)?;
    Ok(RunOutcome { report, paths })
}

/// What a shard's report records: its slice, and what ties it to its siblings.
fn shard_info(
    run: crate::shard::ShardRun,
    sections: Vec<crate::shard::SectionShare>,
    tally: &super::Tally,
    config: &serde_json::Value,
) -> crate::shard::ShardInfo {
    crate::shard::ShardInfo {
        index: Some(run.shard.index),
        count: run.shard.count,
        base_seed: run.base_seed,
        config_hash: crate::shard::config_hash(config),
        cycles: sections.iter().map(|s| s.share).sum(),
        cycles_total: sections.iter().map(|s| s.total).sum(),
        sections,
        check_counts: tally
            .counts()
            .into_iter()
            .map(|(name, observations, failures)| crate::shard::CheckCount {
                name: name.to_string(),
                observations,
                failures,
            })
            .collect(),
    }
}

/// The sections, in a fixed order, with their outcomes merged.
///
/// # Errors
/// As [`execute`].
pub fn run_sections(
    req: &RunRequest,
    faults: &FaultsSection,
    engine: &str,
) -> Result<ChaosOutcome> {
    let s = &req.scenario;
    let data = req.out_dir.join("data");
    let mut out = ChaosOutcome::default();
    if let Some(k) = &faults.kill9 {
        let ctx = Kill9Ctx {
            engine: engine.to_string(),
            dir: data.join("kill9"),
            seed: req.seed,
            keys_n: s.workload.record_count,
            value_bytes: value_bytes(s),
            txn_keys: s.workload.txn_keys,
            spec: k.clone(),
            faults: faults.clone(),
            exe: std::env::current_exe().context("locating the harness binary")?,
            fs: None,
        };
        match &faults.fs {
            Some(f) => out.absorb(super::fsloop::run(
                &ctx,
                f,
                &req.engines,
                &req.scenario_name,
            )?),
            None => out.absorb(kill9::run(&ctx)?),
        }
        out.tally.expect(&faults.implied_kill9());
    }
    let in_process = faults.power_loss.is_some()
        || faults.corruption.is_some()
        || faults.enospc.is_some()
        || faults.eio.is_some()
        || faults.fail_at_n.is_some();
    if in_process {
        anyhow::ensure!(
            engine.starts_with("engine"),
            "the in-process fault sections run our engine on the fault layer; `{engine}` cannot run them"
        );
        let spec = if faults.swarm {
            let (spec, line) = super::swarm::draw(faults, req.seed);
            out.notes.push(line);
            spec
        } else {
            faults.clone()
        };
        let ctx = Ctx {
            spec: spec.clone(),
            seed: req.seed,
            keys_n: s.workload.record_count,
            value_bytes: value_bytes(s),
            commits: s.run.ops.unwrap_or(COMMITS_DEFAULT),
        };
        out.absorb(run_in_process(&ctx, &spec)?);
    }
    if let Some(t) = &faults.tmpfs {
        out.absorb(tmpfs::run(t, faults, req.seed, &data)?);
    }
    Ok(out)
}

/// The in-process sections only (deterministic from the seed): the library entry point of
/// the tests.
///
/// # Errors
/// Setup failures and oracle protocol errors.
pub fn run_in_process(ctx: &Ctx, faults: &FaultsSection) -> Result<ChaosOutcome> {
    let mut out = ChaosOutcome::default();
    if let Some(p) = &faults.power_loss {
        out.absorb(inproc::run_power_loss(ctx, p)?);
    }
    if let Some(c) = &faults.corruption {
        out.absorb(inproc::run_corruption(ctx, c)?);
    }
    if let Some(e) = &faults.enospc {
        out.absorb(inproc::run_enospc(ctx, e.episodes)?);
    }
    if let Some(e) = &faults.eio {
        out.absorb(inproc::run_eio(ctx, e)?);
    }
    if let Some(f) = &faults.fail_at_n {
        out.absorb(inproc::run_fail_at_n(ctx, f)?);
    }
    out.tally.expect(&faults.implied_in_process());
    Ok(out)
}

/// Loads a scenario file's `[faults]` table on its own (tests and tools).
///
/// # Errors
/// Unreadable or invalid files, or no `[faults]` table.
pub fn faults_of(file: &Path) -> Result<(Scenario, FaultsSection)> {
    let scenario = crate::scenario::load(file, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let faults = scenario
        .faults
        .clone()
        .context("scenario has no [faults] table")?;
    Ok((scenario, faults))
}
