//! report.json: serialization with the derived verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use super::{
    Check, CrashCycles, EngineReport, FaultEvent, FsyncProbe, LoadSummary, PhaseReport, Ratio,
    Report, ResourcePoint, TimelinePoint, Verdict,
};

/// The serialized shape of a [`Report`]: its fields by reference plus the derived verdict.
/// Kept field for field in step with `Report` (the round-trip test catches a missing field).
#[derive(Serialize)]
struct ReportJson<'a> {
    schema_version: u32,
    scenario: &'a str,
    engine: &'a str,
    seed: u64,
    git_rev: &'a str,
    started_at: &'a str,
    verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    reproduce: &'a Option<String>,
    config: &'a serde_json::Value,
    phases: &'a [PhaseReport],
    timeline: &'a [TimelinePoint],
    errors: &'a BTreeMap<String, u64>,
    checks: &'a [Check],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    engines: &'a [EngineReport],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    resources: &'a [ResourcePoint],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    loads: &'a [LoadSummary],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ratios: &'a [Ratio],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fsync_probe: &'a [FsyncProbe],
    #[serde(skip_serializing_if = "Option::is_none")]
    crash_cycles: &'a Option<CrashCycles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault_schedule: &'a Option<Vec<FaultEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: &'a Option<crate::shard::ShardInfo>,
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ReportJson {
            schema_version: self.schema_version,
            scenario: &self.scenario,
            engine: &self.engine,
            seed: self.seed,
            git_rev: &self.git_rev,
            started_at: &self.started_at,
            verdict: self.verdict(),
            reproduce: &self.reproduce,
            config: &self.config,
            phases: &self.phases,
            timeline: &self.timeline,
            errors: &self.errors,
            checks: &self.checks,
            engines: &self.engines,
            resources: &self.resources,
            loads: &self.loads,
            ratios: &self.ratios,
            fsync_probe: &self.fsync_probe,
            crash_cycles: &self.crash_cycles,
            fault_schedule: &self.fault_schedule,
            shard: &self.shard,
        }
        .serialize(serializer)
    }
}

pub(crate) fn to_json_string(report: &Report) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}

pub(crate) fn from_json_str(text: &str) -> anyhow::Result<Report> {
    Ok(serde_json::from_str(text)?)
}

pub(crate) fn write_json(report: &Report, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("report.json");
    std::fs::write(&path, to_json_string(report)?)?;
    Ok(path)
}
