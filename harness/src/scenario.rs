//! Scenario files: one TOML file per scenario under `scenarios/`; the scenario's name is its
//! path there without `.toml` (`smoke`, `ycsb/a`).
//!
//! ```toml
//! description = "YCSB A: 50% read, 50% update, zipfian"  # one line, shown by `harness list`
//! engine = "engine"            # default engine (`--engine` overrides; "all" = `engines`)
//! engines = ["engine", "sqlite-full", "redb-immediate"]  # for --engine all
//! rounds = 3                   # --engine all: round r runs every engine once, rotating
//! seed = 42                    # optional; else --seed, else random (always printed)
//! threads = 2                  # driver threads (load and run, unless overridden there)
//! verify_reads = true          # check every value read with the value generator
//! fsync_probe = true           # optional; default: on when an engine is in a durable mode
//! cache_bytes = 1073741824     # page cache for engines that take one
//!
//! [durability]                 # mode for bare family names: engine-<mode>, sqlite-<mode>, ...
//! sqlite = "normal"
//!
//! [workload]                   # crate::workload::WorkloadSpec (mix, distribution, sizes, ...)
//! preset = "a"
//! record_count = 100000
//!
//! [load]
//! batch = 1000                 # records per write transaction
//! threads = 1                  # optional override
//!
//! [run]                        # the measured phase
//! ops = 200000                 # or duration_s = 30 (the first reached ends the phase)
//! warmup_ops = 1000            # run but not recorded
//! target_ops_s = 50000         # optional: open loop at this total rate
//!
//! [[then]]                     # optional further phases, same fields as [run] plus
//! name = "scan"                # a name and overrides of the workload's mix, distribution
//! mix = { scan = 1.0 }         # and scan_len
//! scan_len = { min = 10, max = 10 }
//! ops = 100000
//! ```
//!
//! Every table denies unknown fields. Errors name the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gen::DistributionSpec;
use crate::workload::{Mix, ScanLenSpec, WorkloadSpec};

/// Largest scenario file read: scenarios are a few dozen lines.
pub const SCENARIO_BYTES_MAX: u64 = 1 << 20;
/// Most phases after `[run]`: a sweep over every distribution needs about a dozen.
pub const THEN_PHASES_MAX: usize = 64;
/// Most rounds of an `--engine all` comparison.
pub const ROUNDS_MAX: u32 = 100;
/// Most `--set` overrides on one command line.
pub const OVERRIDES_MAX: usize = 64;

fn one() -> usize {
    1
}
fn one_u32() -> u32 {
    1
}
fn batch_default() -> u64 {
    1000
}
fn final_verify_default() -> String {
    "none".to_string()
}
fn cache_bytes_default() -> usize {
    crate::adapter::CACHE_BYTES_DEFAULT
}

/// A scenario file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line shown by `harness list`.
    pub description: String,
    /// Default engine.
    pub engine: String,
    /// Engines of `--engine all`, the first being "ours" in the ratio table.
    #[serde(default)]
    pub engines: Option<Vec<String>>,
    /// Rounds of `--engine all`.
    #[serde(default = "one_u32")]
    pub rounds: u32,
    /// Fixed seed (else `--seed`, else random).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Driver threads.
    #[serde(default = "one")]
    pub threads: usize,
    /// Verify every read value and every key that must exist.
    #[serde(default)]
    pub verify_reads: bool,
    /// Run the fsync probe each round (default: when an engine runs in a durable mode).
    #[serde(default)]
    pub fsync_probe: Option<bool>,
    /// Page cache, bytes.
    #[serde(default = "cache_bytes_default")]
    pub cache_bytes: usize,
    /// Durability mode per engine family for bare names ("sqlite" -> "sqlite-<mode>").
    #[serde(default)]
    pub durability: BTreeMap<String, String>,
    /// What the operations are.
    pub workload: WorkloadSpec,
    /// The load phase.
    #[serde(default)]
    pub load: LoadSection,
    /// The measured phase.
    pub run: RunSection,
    /// Further measured phases, in order, on the same data.
    #[serde(default)]
    pub then: Vec<RunSection>,
    /// After the last phase: "scan" reads back every acknowledged key and verifies it
    /// (check `final_verification`); "none" (the default) does not.
    #[serde(default = "final_verify_default")]
    pub final_verify: String,
    /// Chaos: crash loops and storage faults (see `crate::chaos::spec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::chaos::FaultsSection>,
    /// Cost as the data grows: the whole scenario (load and every phase, on a fresh database)
    /// runs once per record count, and the report charts each phase against it. Empty: once,
    /// at `workload.record_count`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_counts: Vec<u64>,
    /// With `record_counts`: the largest count peer engines run (the first engine runs all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers_record_count_max: Option<u64>,
    /// Our engine only: each fsync also waits this long, microseconds (a slower disk, for
    /// measuring group commit where fsync dominates a commit). Other engines refuse it.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub fsync_delay_us: u64,
    /// A fixed benchmark suite instead of phases (see `crate::bench`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<crate::bench::BenchSection>,
}

/// For `skip_serializing_if` on counts that default to zero (here and in reports).
#[allow(clippy::trivially_copy_pass_by_ref)]
pub(crate) fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Record counts of one `record_counts` sweep at most (each is a whole run).
pub const RECORD_COUNTS_MAX: usize = 16;

/// `[load]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    /// Records per write transaction.
    #[serde(default = "batch_default")]
    pub batch: u64,
    /// Threads (default: the scenario's).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Skip the load phase (the run starts on an empty database).
    #[serde(default)]
    pub skip: bool,
}

impl Default for LoadSection {
    fn default() -> LoadSection {
        LoadSection {
            batch: batch_default(),
            threads: None,
            skip: false,
        }
    }
}

/// `[run]` and each `[[then]]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Phase name (default "run", "then1", ...).
    #[serde(default)]
    pub name: Option<String>,
    /// Recorded operations over all threads.
    #[serde(default)]
    pub ops: Option<u64>,
    /// Wall-time bound in seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Operations run before recording.
    #[serde(default)]
    pub warmup_ops: u64,
    /// Open loop at this total rate (operations per second).
    #[serde(default)]
    pub target_ops_s: Option<f64>,
    /// Threads (default: the scenario's).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Overrides of the workload's mix for this phase.
    #[serde(default)]
    pub mix: Option<Mix>,
    /// Overrides of the workload's distribution for this phase.
    #[serde(default)]
    pub distribution: Option<DistributionSpec>,
    /// Overrides of the workload's scan lengths for this phase.
    #[serde(default)]
    pub scan_len: Option<ScanLenSpec>,
}

/// A scenario file that cannot be used: the file and what is wrong (serde/toml text with the
/// line, the key and what was expected).
#[derive(Debug)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scenario {}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Directories searched for scenario names: `./scenarios`, then the workspace's.
#[must_use]
pub fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("scenarios")];
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scenarios");
    if !dirs.iter().any(|d| same_dir(d, &workspace)) {
        dirs.push(workspace);
    }
    dirs
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Finds a scenario by path or by name; returns (name, file).
///
/// # Errors
/// Neither an existing file nor a known name, with the directories searched.
pub fn resolve(arg: &str) -> Result<(String, PathBuf), ScenarioError> {
    let as_path = Path::new(arg);
    if as_path.is_file() {
        return Ok((name_of_file(as_path), as_path.to_path_buf()));
    }
    let name = arg.trim_end_matches(".toml");
    for dir in scenario_dirs() {
        let file = dir.join(format!("{name}.toml"));
        if file.is_file() {
            return Ok((name.to_string(), file));
        }
    }
    let searched: Vec<String> = scenario_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    Err(ScenarioError {
        file: PathBuf::from(arg),
        message: format!(
            "no such file, and no scenario of that name in {} (see `harness list`)",
            searched.join(", ")
        ),
    })
}

/// The scenario name of a file: its path under a scenarios directory without `.toml`, else
/// its file stem.
fn name_of_file(file: &Path) -> String {
    let Ok(file_abs) = file.canonicalize() else {
        return file.display().to_string();
    };
    for dir in scenario_dirs() {
        if let Ok(dir_abs) = dir.canonicalize() {
            if let Ok(rel) = file_abs.strip_prefix(&dir_abs) {
                return rel.with_extension("").to_string_lossy().replace('\\', "/");
            }
        }
    }
    file.file_stem().map_or_else(
        || file.display().to_string(),
        |s| s.to_string_lossy().into(),
    )
}

/// Every scenario (name, file) in the first scenarios directory that exists, sorted by name.
#[must_use]
pub fn list() -> Vec<(String, PathBuf)> {
    let Some(dir) = scenario_dirs().into_iter().find(|d| d.is_dir()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk(&dir, &dir, &mut found, 0);
    found.sort();
    found
}

/// Deepest directory nesting under `scenarios/` that `list` descends into.
const SCENARIO_DEPTH_MAX: usize = 8;

fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, PathBuf)>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth < SCENARIO_DEPTH_MAX {
            walk(root, &path, found, depth + 1);
        } else if path.extension().is_some_and(|e| e == "toml") {
            if let Ok(rel) = path.strip_prefix(root) {
                let name = rel.with_extension("").to_string_lossy().replace('\\', "/");
                found.push((name, path));
            }
        }
    }
}

/// The description line of a scenario file, or what is wrong with it.
#[must_use]
pub fn description_of(file: &Path) -> String {
    match read_text(file).and_then(|text| text.parse::<toml::Table>().map_err(|e| e.to_string())) {
        Ok(table) => match table.get("description") {
            Some(toml::Value::String(s)) => s.lines().next().unwrap_or("").to_string(),
            _ => "(no description)".to_string(),
        },
        Err(e) => format!("(unreadable: {})", e.lines().next().unwrap_or("")),
    }
}

fn read_text(file: &Path) -> Result<String, String> {
    let len = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    if len > SCENARIO_BYTES_MAX {
        return Err(format!("{len} bytes, more than {SCENARIO_BYTES_MAX}"));
    }
    std::fs::read_to_string(file).map_err(|e| e.to_string())
}

/// Loads and validates a scenario file with `key=value` overrides applied.
///
/// # Errors
/// Unreadable files, TOML or schema errors (with line and key), bad overrides (naming the key).
pub fn load(file: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let err = |message: String| ScenarioError {
        file: file.to_path_buf(),
        message,
    };
    let text = read_text(file).map_err(err)?;
    // Parse as typed first: the error then points at the line in the file itself.
    let scenario: Scenario = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    if overrides.is_empty() {
        validate(&scenario).map_err(err)?;
        return Ok(scenario);
    }
    if overrides.len() > OVERRIDES_MAX {
        return Err(err(format!("more than {OVERRIDES_MAX} --set overrides")));
    }
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    for item in overrides {
        apply_override(&mut table, item).map_err(err)?;
    }
    let scenario = Scenario::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        err(format!(
            "after --set {}: {}",
            overrides.join(" --set "),
            one_line(&e.to_string())
        ))
    })?;
    validate(&scenario).map_err(err)?;
    Ok(scenario)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sets `key.path=value` in `table`; the value is TOML (`3`, `true`, `"x"`, `{ name = "uniform" }`)
/// or else taken as a string.
///
/// # Errors
/// A malformed item, or a path through a key that is not a table (naming the key).
pub fn apply_override(table: &mut toml::Table, item: &str) -> Result<(), String> {
    let Some((path, raw)) = item.split_once('=') else {
        return Err(format!("--set {item:?}: expected key=value"));
    };
    let path = path.trim();
    let raw = raw.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("--set {item:?}: empty key in `{path}`"));
    }
    let (last, parents) = parts
        .split_last()
        .ok_or_else(|| format!("--set {item:?}: no key"))?;
    let mut node = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = node
            .entry((*part).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "--set {path}: `{}` is not a table",
                    parts[..=depth].join(".")
                ))
            }
        };
    }
    node.insert((*last).to_string(), value);
    Ok(())
}

/// Checks the rules serde cannot express.
fn validate(s: &Scenario) -> Result<(), String> {
    if let Some(f) = &s.faults {
        f.validate()?;
    }
    if s.record_counts.len() > RECORD_COUNTS_MAX || s.record_counts.contains(&0) {
        return Err(format!(
            "record_counts: 1 to {RECORD_COUNTS_MAX} counts, none zero"
        ));
    }
    if s.record_counts.windows(2).any(|w| w[0] >= w[1]) {
        return Err("record_counts must ascend".to_string());
    }
    if !matches!(s.final_verify.as_str(), "none" | "scan") {
        return Err(format!(
            "final_verify = {:?}: \"scan\" or \"none\"",
            s.final_verify
        ));
    }
    let threads_ok = |t: usize| (1..=crate::driver::THREADS_MAX).contains(&t);
    if !threads_ok(s.threads) {
        return Err(format!(
            "threads = {}: must be in 1..={}",
            s.threads,
            crate::driver::THREADS_MAX
        ));
    }
    if !(1..=ROUNDS_MAX).contains(&s.rounds) {
        return Err(format!(
            "rounds = {}: must be in 1..={ROUNDS_MAX}",
            s.rounds
        ));
    }
    if s.then.len() > THEN_PHASES_MAX {
        return Err(format!(
            "then: {} phases, at most {THEN_PHASES_MAX}",
            s.then.len()
        ));
    }
    if s.load.batch == 0 {
        return Err("load.batch = 0: must be at least 1".into());
    }
    for (i, phase) in std::iter::once(&s.run).chain(&s.then).enumerate() {
        let key = if i == 0 {
            "run".to_string()
        } else {
            format!("then[{}]", i - 1)
        };
        if phase.ops.is_none() && phase.duration_s.is_none() {
            return Err(format!("{key}: set ops or duration_s"));
        }
        if let Some(d) = phase.duration_s {
            if !(d > 0.0 && d <= crate::workload::DURATION_S_MAX) {
                return Err(format!(
                    "{key}.duration_s = {d}: must be > 0 and at most one week"
                ));
            }
        }
        if let Some(rate) = phase.target_ops_s {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("{key}.target_ops_s = {rate}: must be > 0"));
            }
        }
        if phase.threads.is_some_and(|t| !threads_ok(t)) {
            return Err(format!(
                "{key}.threads: must be in 1..={}",
                crate::driver::THREADS_MAX
            ));
        }
    }
    if s.load.threads.is_some_and(|t| !threads_ok(t)) {
        return Err(format!(
            "load.threads: must be in 1..={}",
            crate::driver::THREADS_MAX
        ));
    }
    Ok(())
}

impl Scenario {
    /// Name of phase `i` (0 = `[run]`).
    #[must_use]
    pub fn phase_name(&self, i: usize) -> String {
        let section = if i == 0 {
            Some(&self.run)
        } else {
            self.then.get(i - 1)
        };
        match section.and_then(|s| s.name.clone()) {
            Some(name) => name,
            None if i == 0 => "run".to_string(),
            None => format!("then{i}"),
        }
    }

    /// `[run]` then every `[[then]]`.
    pub fn run_phases(&self) -> impl Iterator<Item = &RunSection> {
        std::iter::once(&self.run).chain(self.then.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::{apply_override, list, load};

    #[test]
    fn every_shipped_scenario_loads_and_builds_its_workloads() -> anyhow::Result<()> {
        let scenarios = list();
        assert!(scenarios.len() >= 12, "found {}", scenarios.len());
        for (name, file) in scenarios {
            let scenario = load(&file, &[]).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            assert!(
                !scenario.description.contains('\n'),
                "{name}: description is one line"
            );
            if scenario.faults.is_some() {
                // Chaos scenarios drive their own workload from the [faults] table, which
                // `load` has validated.
                continue;
            }
            for section in scenario.run_phases() {
                let mut spec = scenario.workload.clone();
                spec.op_count = section.ops;
                spec.duration_s = section.duration_s;
                spec.mix = section.mix.clone().or(spec.mix);
                spec.distribution = section.distribution.clone().or(spec.distribution);
                crate::workload::Workload::from_spec(&spec)
                    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            }
        }
        Ok(())
    }

    #[test]
    fn overrides_set_nested_keys_and_name_bad_paths() -> anyhow::Result<()> {
        let mut table: toml::Table = "threads = 1\n[run]\nops = 5\n".parse()?;
        apply_override(&mut table, "run.ops=7").map_err(anyhow::Error::msg)?;
        apply_override(&mut table, "workload.distribution={ name = \"uniform\" }")
            .map_err(anyhow::Error::msg)?;
        apply_override(&mut table, "engine=sqlite-off").map_err(anyhow::Error::msg)?;
        assert_eq!(table["run"]["ops"].as_integer(), Some(7));
        assert_eq!(
            table["workload"]["distribution"]["name"].as_str(),
            Some("uniform")
        );
        assert_eq!(table["engine"].as_str(), Some("sqlite-off"));
        let err = apply_override(&mut table, "threads.x=1")
            .err()
            .unwrap_or_default();
        assert!(err.contains("`threads` is not a table"), "{err}");
        assert!(apply_override(&mut table, "no-equals-sign").is_err());
        assert!(apply_override(&mut table, "run..ops=1").is_err());
        Ok(())
    }

    #[test]
    fn bad_values_after_override_name_the_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("s.toml");
        let text =
            "description = \"d\"\nengine = \"model\"\n[workload]\npreset = \"a\"\n[run]\nops = 5\n";
        std::fs::write(&file, text)?;
        load(&file, &[])?;
        let err = load(&file, &["run.opss=3".into()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("opss"), "{err}");
        let err = load(&file, &["threads=0".into()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("threads"), "{err}");
        let err = load(&file, &["run.ops=\"x\"".into()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("run.ops") || err.contains("ops"), "{err}");
        Ok(())
    }
}
