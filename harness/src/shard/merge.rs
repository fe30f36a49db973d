//! `harness merge DIR... --out DIR`: the shard reports of one run become one report.
//!
//! The shards must agree on scenario, engine, commit, config hash, base seed and shard count,
//! and every index `0..N-1` must be there exactly once. Histograms merge exactly (each
//! shard's serialized HdrHistogram, decoded and added), counters add up, and a check fails
//! when any shard failed it, its failure text kept with the shard index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::{decode_histogram, encode_histogram, CheckCount, SectionShare, ShardInfo};
use crate::chaos::{REPORT_CYCLES_MAX, REPORT_SCHEDULE_MAX};
use crate::report::{
    self, Check, CrashCycles, FaultEvent, LatencySummary, PhaseReport, Report,
    REPORT_SCHEMA_VERSION,
};

/// Exit status: merged, every check passed.
pub const EXIT_PASS: u8 = 0;
/// Exit status: merged, a check failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: the shard reports cannot be merged (unreadable, mismatched, missing,
/// duplicated).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Failing shards whose failure text a merged check quotes: a few show what broke, and each
/// shard's own report keeps the rest.
const FAILED_SHARDS_QUOTED_MAX: usize = 10;
/// Shard indexes listed in a missing/duplicate message before "...": a message is read by a
/// person, and 10,000 numbers are not.
const INDEXES_LISTED_MAX: usize = 50;

/// Why shards cannot be merged (exit 2).
#[derive(Debug)]
pub struct MergeError(pub String);

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MergeError {}

fn bad(text: impl Into<String>) -> MergeError {
    MergeError(text.into())
}

/// A merged report with the histograms behind it (for the `.hgrm` files).
#[derive(Debug)]
pub struct Merged {
    pub report: Report,
    pub histograms: BTreeMap<String, Histogram<u64>>,
}

/// Reads `dir/report.json` of every directory and merges them.
///
/// # Errors
/// An unreadable report, or any [`merge`] error.
pub fn merge_dirs(dirs: &[PathBuf]) -> Result<Merged, MergeError> {
    let mut shards = Vec::new();
    for dir in dirs {
        let path = dir.join("report.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let report =
            report::from_json_str(&text).map_err(|e| bad(format!("{}: {e:#}", path.display())))?;
        shards.push((dir.display().to_string(), report));
    }
    merge(&shards)
}

/// Merges shard reports, each labelled (its directory) for the messages.
///
/// # Errors
/// A report that is not a shard's, shards that disagree, a missing or duplicate index, or a
/// histogram that cannot be decoded.
pub fn merge(shards: &[(String, Report)]) -> Result<Merged, MergeError> {
    let first = shards.first().ok_or_else(|| bad("no shard report given"))?;
    let mut infos = Vec::new();
    for (label, r) in shards {
        let info = r.shard.as_ref().filter(|s| s.index.is_some());
        let info =
            info.ok_or_else(|| bad(format!("{label}: not a shard report (no shard index)")))?;
        infos.push(info);
    }
    agree(shards)?;
    let count = infos[0].count;
    let order = complete(shards, count)?;
    let sorted: Vec<&(String, Report)> = order.iter().map(|&i| &shards[i]).collect();
    genuine(&sorted)?;
    let mut histograms = BTreeMap::new();
    let crash_cycles = merge_cycles(&sorted, &mut histograms)?;
    let phases = merge_phases(&sorted, &mut histograms)?;
    let base = &first.1;
    let info0 = infos[0];
    let mut report = Report {
        schema_version: REPORT_SCHEMA_VERSION,
        scenario: base.scenario.clone(),
        engine: base.engine.clone(),
        seed: info0.base_seed,
        git_rev: base.git_rev.clone(),
        started_at: sorted
            .iter()
            .map(|(_, r)| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        config: base.config.clone(),
        phases,
        errors: merge_errors(&sorted),
        crash_cycles,
        fault_schedule: merge_schedule(&sorted),
        ..Report::default()
    };
    let (checks, counts) = merge_checks(&sorted, &report.scenario, info0);
    report.checks = checks;
    report.require_checks();
    report.reproduce = Some(reproduce(&sorted, count));
    report.shard = Some(merged_info(&sorted, counts));
    Ok(Merged { report, histograms })
}

/// The shard info of each report (present: [`merge`] checked).
fn info(r: &Report) -> ShardInfo {
    r.shard.clone().unwrap_or_default()
}

/// Every report against the first on what must be shared; every disagreement in one message.
fn agree(shards: &[(String, Report)]) -> Result<(), MergeError> {
    let key = |r: &Report| {
        let s = info(r);
        [
            ("scenario", r.scenario.clone()),
            ("engine", r.engine.clone()),
            ("commit", r.git_rev.clone()),
            ("config hash", s.config_hash),
            ("base seed", s.base_seed.to_string()),
            ("shard count", s.count.to_string()),
        ]
    };
    let (label0, r0) = &shards[0];
    let want = key(r0);
    let mut problems = Vec::new();
    for (label, r) in &shards[1..] {
        for ((what, a), (_, b)) in want.iter().zip(key(r)) {
            if *a != b {
                problems.push(format!("{what}: {a} in {label0} but {b} in {label}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(bad(format!(
            "the shards are not of one run: {}",
            problems.join("; ")
        )))
    }
}

/// Positions of the shards in index order, when every index `0..count` is there once.
fn complete(shards: &[(String, Report)], count: u64) -> Result<Vec<usize>, MergeError> {
    let mut by_index: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, (_, r)) in shards.iter().enumerate() {
        let index = info(r).index.unwrap_or(u64::MAX);
        by_index.entry(index).or_default().push(i);
    }
    let missing: Vec<u64> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} of {count} shards missing: index {}",
            missing.len(),
            listed(&missing)
        ));
    }
    for (index, at) in &by_index {
        if *index >= count {
            problems.push(format!(
                "shard index {index} is not below the count {count}"
            ));
        } else if at.len() > 1 {
            let dirs: Vec<&str> = at.iter().map(|&i| shards[i].0.as_str()).collect();
            problems.push(format!(
                "shard {index} given {} times: {}",
                at.len(),
                dirs.join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    Ok(by_index.into_values().flatten().collect())
}

/// Each shard is the one its index says: its seed is `derive_seed(base seed, index)` and each
/// section's offset and share are what [`super::share`] gives that index, with the same
/// sections and totals as shard 0. A copy of one shard relabelled as another fails here
/// (every disagreement in one message).
fn genuine(sorted: &[&(String, Report)]) -> Result<(), MergeError> {
    let mut problems = Vec::new();
    let sections0 = info(&sorted[0].1).sections;
    for (label, r) in sorted {
        let s = info(r);
        let index = s.index.unwrap_or(u64::MAX);
        let shard = super::Shard {
            index,
            count: s.count,
        };
        let seed = super::derive_seed(s.base_seed, index);
        if r.seed != seed {
            problems.push(format!(
                "{label}: seed {} is not shard {index}'s (derived from base seed {}: {seed})",
                r.seed, s.base_seed
            ));
        }
        let units = |v: &[SectionShare]| -> Vec<(String, u64)> {
            v.iter().map(|x| (x.unit.clone(), x.total)).collect()
        };
        if units(&s.sections) != units(&sections0) {
            problems.push(format!(
                "{label}: sections {:?} differ from shard 0's {:?}",
                units(&s.sections),
                units(&sections0)
            ));
        }
        for sec in &s.sections {
            let (first, len) = super::share(sec.total, shard);
            if (sec.first, sec.share) != (first, len) {
                problems.push(format!(
                    "{label}: {} {}..{} is not shard {shard}'s share {first}..{} of {}",
                    sec.unit,
                    sec.first,
                    sec.first + sec.share,
                    first + len,
                    sec.total
                ));
            }
        }
        let ran: u64 = s.sections.iter().map(|x| x.share).sum();
        if !s.sections.is_empty() && s.cycles != ran {
            problems.push(format!(
                "{label}: {} cycles reported, but its sections' shares sum to {ran}",
                s.cycles
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(bad(format!(
            "shards are not what their indexes say: {}",
            problems.join("; ")
        )))
    }
}

fn listed(indexes: &[u64]) -> String {
    let mut text: Vec<String> = indexes
        .iter()
        .take(INDEXES_LISTED_MAX)
        .map(u64::to_string)
        .collect();
    if indexes.len() > INDEXES_LISTED_MAX {
        text.push("...".to_string());
    }
    text.join(", ")
}

/// The exact sum of one summary per shard (each must carry its histogram when it counted
/// anything); the merged summary carries the merged histogram.
fn merge_summaries<'a>(
    what: &str,
    parts: impl Iterator<Item = (&'a str, &'a LatencySummary)>,
) -> Result<(LatencySummary, Option<Histogram<u64>>), MergeError> {
    let mut merged: Option<Histogram<u64>> = None;
    let mut errors = 0u64;
    for (label, s) in parts {
        errors += s.errors;
        let Some(text) = &s.histogram_b64 else {
            if s.count == 0 {
                continue;
            }
            return Err(bad(format!(
                "{label}: {what} has {} samples but no histogram_b64 (a report from before \
                 sharding, or not a shard's): it cannot be merged exactly",
                s.count
            )));
        };
        let h = decode_histogram(text).map_err(|e| bad(format!("{label}: {what}: {e:#}")))?;
        match merged.as_mut() {
            Some(m) => {
                // Auto-resize: a shard's histogram may reach past the first one's range.
                m.auto(true);
                m.add(&h)
                    .map_err(|e| bad(format!("{label}: {what}: {e:?}")))?;
            }
            None => merged = Some(h),
        }
    }
    let summary = match &merged {
        Some(h) => LatencySummary {
            histogram_b64: encode_histogram(h),
            ..LatencySummary::from_histogram(h, errors)
        },
        None => LatencySummary {
            errors,
            ..LatencySummary::default()
        },
    };
    Ok((summary, merged))
}

/// Crash cycles: counts added, reopen and verify merged, the cycles listed in shard order
/// and numbered on from the shards before (shard I's cycle c is cycle c + the cycles of
/// shards 0..I).
fn merge_cycles(
    sorted: &[&(String, Report)],
    histograms: &mut BTreeMap<String, Histogram<u64>>,
) -> Result<Option<CrashCycles>, MergeError> {
    let parts: Vec<(&str, &CrashCycles)> = sorted
        .iter()
        .filter_map(|(l, r)| r.crash_cycles.as_ref().map(|c| (l.as_str(), c)))
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    let mut out = CrashCycles::default();
    let (reopen, h) = merge_summaries(
        "crash_cycles.reopen",
        parts.iter().map(|(l, c)| (*l, &c.reopen)),
    )?;
    out.reopen = reopen;
    histograms.extend(h.map(|h| ("crash_cycles.reopen".to_string(), h)));
    let (verify, h) = merge_summaries(
        "crash_cycles.verify",
        parts.iter().map(|(l, c)| (*l, &c.verify)),
    )?;
    out.verify = verify;
    histograms.extend(h.map(|h| ("crash_cycles.verify".to_string(), h)));
    for (_, c) in &parts {
        let room = REPORT_CYCLES_MAX.saturating_sub(out.cycles.len());
        out.cycles.extend(c.cycles.iter().take(room).map(|cycle| {
            let mut cycle = cycle.clone();
            cycle.cycle += out.count;
            cycle
        }));
        out.count += c.count;
    }
    Ok(Some(out))
}

/// Phases by name in first-seen order: operations and time added (a chaos workload phase's
/// duration is time spent inside operations, so the sum is the merged run's), latencies
/// merged exactly.
fn merge_phases(
    sorted: &[&(String, Report)],
    histograms: &mut BTreeMap<String, Histogram<u64>>,
) -> Result<Vec<PhaseReport>, MergeError> {
    let mut names: Vec<&str> = Vec::new();
    for (_, r) in sorted {
        for p in &r.phases {
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        let parts: Vec<(&str, &PhaseReport)> = sorted
            .iter()
            .flat_map(|(l, r)| {
                r.phases
                    .iter()
                    .filter(|p| p.name == name)
                    .map(|p| (l.as_str(), p))
            })
            .collect();
        let mut phase = PhaseReport {
            name: name.to_string(),
            ..PhaseReport::default()
        };
        for (_, p) in &parts {
            phase.ops += p.ops;
            phase.duration_s += p.duration_s;
            phase.threads = phase.threads.max(p.threads);
        }
        phase.throughput_ops_s = phase.ops as f64 / phase.duration_s.max(f64::EPSILON);
        let ops: Vec<&String> = parts.iter().flat_map(|(_, p)| p.latency.keys()).collect();
        for op in ops {
            if phase.latency.contains_key(op) {
                continue;
            }
            let what = format!("phase {name} op {op}");
            let each = parts
                .iter()
                .filter_map(|(l, p)| p.latency.get(op).map(|s| (*l, s)));
            let (summary, h) = merge_summaries(&what, each)?;
            histograms.extend(h.map(|h| (format!("{name}.{op}"), h)));
            phase.latency.insert(op.clone(), summary);
        }
        out.push(phase);
    }
    Ok(out)
}

fn merge_errors(sorted: &[&(String, Report)]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (_, r) in sorted {
        for (kind, n) in &r.errors {
            *out.entry(kind.clone()).or_insert(0) += n;
        }
    }
    out
}

/// The fault schedules one after another, each event's detail naming its shard.
fn merge_schedule(sorted: &[&(String, Report)]) -> Option<Vec<FaultEvent>> {
    if sorted.iter().all(|(_, r)| r.fault_schedule.is_none()) {
        return None;
    }
    let mut out = Vec::new();
    for (_, r) in sorted {
        let index = info(r).index.unwrap_or_default();
        for e in r.fault_schedule.iter().flatten() {
            if out.len() >= REPORT_SCHEDULE_MAX {
                return Some(out);
            }
            let mut e = e.clone();
            e.detail = format!("shard {index}; {}", e.detail);
            out.push(e);
        }
    }
    Some(out)
}

/// One merged check per name (first-seen order): observations and failures added; failed
/// when any shard failed it, quoting the failing shards' details with their indexes.
fn merge_checks(
    sorted: &[&(String, Report)],
    scenario: &str,
    info0: &ShardInfo,
) -> (Vec<Check>, Vec<CheckCount>) {
    let mut counts: Vec<CheckCount> = Vec::new();
    let mut failed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, r) in sorted {
        let s = info(r);
        let index = s.index.unwrap_or_default();
        for check in &r.checks {
            let known = s.check_counts.iter().find(|c| c.name == check.name);
            // A check without counts (none today) counts as one observation.
            let (obs, fails) = known.map_or((1, u64::from(!check.passed)), |c| {
                (c.observations, c.failures)
            });
            let at = match counts.iter().position(|c| c.name == check.name) {
                Some(at) => at,
                None => {
                    counts.push(CheckCount {
                        name: check.name.clone(),
                        ..CheckCount::default()
                    });
                    counts.len() - 1
                }
            };
            counts[at].observations += obs;
            counts[at].failures += fails;
            if !check.passed {
                let quotes = failed.entry(check.name.clone()).or_default();
                quotes.push(format!("shard {index}: {}", check.detail));
            }
        }
    }
    let label = format!(
        "{scenario} merged from {} shards, base seed {}",
        info0.count, info0.base_seed
    );
    let checks = counts
        .iter()
        .map(|c| merged_check(c, failed.get(&c.name), &label))
        .collect();
    (checks, counts)
}

fn merged_check(c: &CheckCount, failed: Option<&Vec<String>>, label: &str) -> Check {
    let Some(quotes) = failed else {
        return Check {
            name: c.name.clone(),
            passed: true,
            detail: format!("{label}: {} observations held", c.observations),
        };
    };
    let mut shown: Vec<&str> = quotes
        .iter()
        .take(FAILED_SHARDS_QUOTED_MAX)
        .map(String::as_str)
        .collect();
    let more = quotes.len().saturating_sub(FAILED_SHARDS_QUOTED_MAX);
    let tail = format!("and {more} more failing shards");
    if more > 0 {
        shown.push(&tail);
    }
    Check {
        name: c.name.clone(),
        passed: false,
        detail: format!(
            "{label}: {} of {} observations failed in {} shards; {}",
            c.failures,
            c.observations,
            quotes.len(),
            shown.join(" | ")
        ),
    }
}

/// The first failing shard's command, else the loop that reruns every shard and merges.
fn reproduce(sorted: &[&(String, Report)], count: u64) -> String {
    let failing = sorted
        .iter()
        .find(|(_, r)| r.failed_checks().next().is_some());
    if let Some(cmd) = failing.and_then(|(_, r)| r.reproduce.clone()) {
        return cmd;
    }
    let cmd = sorted
        .first()
        .and_then(|(_, r)| r.reproduce.clone())
        .unwrap_or_default();
    let each = cmd.replace(
        &format!(" --shard 0/{count}"),
        &format!(" --shard \"$i/{count}\""),
    );
    format!(
        "for i in $(seq 0 {}); do {each} --out \"shard-$i\" || true; done; harness merge shard-* --out merged",
        count.saturating_sub(1)
    )
}

/// The merged report's shard info: no index, the shares added up.
fn merged_info(sorted: &[&(String, Report)], check_counts: Vec<CheckCount>) -> ShardInfo {
    let mut out = ShardInfo {
        index: None,
        check_counts,
        ..sorted.first().map(|(_, r)| info(r)).unwrap_or_default()
    };
    out.cycles = 0;
    out.sections = Vec::new();
    for (_, r) in sorted {
        let s = info(r);
        out.cycles += s.cycles;
        for sec in &s.sections {
            match out.sections.iter_mut().find(|m| m.unit == sec.unit) {
                Some(m) => m.share += sec.share,
                None => out.sections.push(SectionShare {
                    first: 0,
                    ..sec.clone()
                }),
            }
        }
    }
    out
}

/// `harness merge`: merges, writes report.json, report.html and the merged `.hgrm` files
/// into `out`, prints the summary; returns the exit status.
#[must_use]
pub fn cmd_merge(dirs: &[PathBuf], out: &Path) -> u8 {
    let merged = match merge_dirs(dirs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    if let Err(e) = report::write_all(&merged.report, &merged.histograms, out) {
        eprintln!("error: writing {}: {e:#}", out.display());
        return EXIT_BAD_INPUT;
    }
    let r = &merged.report;
    let cycles = r.crash_cycles.as_ref().map_or(0, |c| c.count);
    println!(
        "harness merge: {} shards of {} (base seed {}, commit {}): {cycles} crash cycles",
        dirs.len(),
        r.scenario,
        r.seed,
        r.git_rev
    );
    if let Some(c) = &r.crash_cycles {
        println!(
            "recovery (reopen) us: p50 {:.1}  p99 {:.1}  max {:.1}",
            c.reopen.p50_us, c.reopen.p99_us, c.reopen.max_us
        );
    }
    print!("{}", report::summary_table(r));
    println!("report: {}", out.join("report.html").display());
    if r.failed_checks().next().is_some() {
        for check in r.failed_checks() {
            eprintln!("FAILED {}: {}", check.name, check.detail);
        }
        eprintln!(
            "reproduce with:\n  {}",
            r.reproduce.clone().unwrap_or_default()
        );
        EXIT_FAIL
    } else {
        EXIT_PASS
    }
}
