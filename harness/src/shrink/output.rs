//! What a shrink prints and the scenario file it writes: the original scenario with the
//! shrink's overrides applied, its `seed` key set, and header comments naming the check, the
//! original command and the operation counts. `harness/tests/shrunk_replay.rs` reads the
//! `# expect-check:` line.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{ShrinkArgs, Shrinker, Trial};
use crate::run::reproduce_command;

/// The header line naming the check a shrunk case must fail.
pub const EXPECT_CHECK_PREFIX: &str = "# expect-check: ";

/// The check a shrunk scenario file expects to fail (its `# expect-check:` line).
#[must_use]
pub fn expected_check(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(EXPECT_CHECK_PREFIX))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
}

/// `harness/tests/shrunk/<scenario, / as ->-<seed>.toml`.
#[must_use]
pub fn default_path(name: &str, seed: u64) -> PathBuf {
    PathBuf::from("harness")
        .join("tests")
        .join("shrunk")
        .join(format!("{}-{seed}.toml", name.replace('/', "-")))
}

/// The outcome of a shrink, as printed and as written into the file's header.
pub(super) struct Summary {
    original_cmd: String,
    reproduce: String,
    before: u64,
    after: u64,
    failed: Vec<String>,
    trials: u64,
    seconds: f64,
}

impl Summary {
    pub(super) fn new(s: &Shrinker, args: &ShrinkArgs, original: &Trial, last: &Trial) -> Self {
        Summary {
            original_cmd: reproduce_command(&s.name, s.seed, None, &args.set),
            reproduce: reproduce_command(&s.name, s.seed, None, &s.sets.items()),
            before: original.commits,
            after: last.commits,
            failed: last.failed.clone(),
            trials: s.trials,
            seconds: s.started.elapsed().as_secs_f64(),
        }
    }

    /// `after / before` as a percentage (0 when nothing ran before).
    fn percent(&self) -> f64 {
        if self.before == 0 {
            return 0.0;
        }
        100.0 * self.after as f64 / self.before as f64
    }

    pub(super) fn print(&self) {
        println!("minimal reproduce command:\n  {}", self.reproduce);
        println!(
            "operations (commits of the seeded workload): {} -> {} ({:.2}% of the original)",
            self.before,
            self.after,
            self.percent()
        );
        println!(
            "shrunk case fails {:?}; {} trials in {:.1} s",
            self.failed, self.trials, self.seconds
        );
    }

    fn header(&self, s: &Shrinker) -> String {
        let mut h = String::new();
        h.push_str("# Shrunk by `harness shrink` from:\n");
        h.push_str(&format!("#   {}\n", self.original_cmd));
        h.push_str("# Minimal reproduce command:\n");
        h.push_str(&format!("#   {}\n", self.reproduce));
        h.push_str(&format!(
            "# Seed {} (the `seed` key below); operations (commits of the seeded workload): \
             {} -> {} ({:.2}%); {} trials.\n",
            s.seed,
            self.before,
            self.after,
            self.percent(),
            self.trials
        ));
        for (i, step) in s.steps.iter().enumerate() {
            h.push_str(&format!("# step {}: {step}\n", i + 1));
        }
        h.push_str(&format!("{EXPECT_CHECK_PREFIX}{}\n", s.target));
        h
    }
}

/// Writes the shrunk case to `path` (creating its folder).
pub(super) fn write_case(s: &Shrinker, summary: &Summary, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(&s.file)
        .with_context(|| format!("reading {}", s.file.display()))?;
    let mut table: toml::Table = text.parse().context("parsing the scenario")?;
    for item in s.sets.items() {
        crate::scenario::apply_override(&mut table, &item).map_err(anyhow::Error::msg)?;
    }
    table.insert("seed".into(), toml::Value::Integer(seed_value(s.seed)?));
    let description = format!("Shrunk from {} seed {}: fails {}", s.name, s.seed, s.target);
    table.insert("description".into(), toml::Value::String(description));
    let body = toml::to_string(&table).context("writing the scenario as TOML")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = format!("{}\n{body}", summary.header(s));
    std::fs::write(path, file).with_context(|| format!("writing {}", path.display()))?;
    // The file must load as a scenario as written, or the replay would not be this case.
    crate::scenario::load(path, &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// TOML integers are signed: a seed past i64::MAX cannot be a `seed` key.
fn seed_value(seed: u64) -> Result<i64> {
    i64::try_from(seed).with_context(|| {
        format!("seed {seed} is past i64::MAX, which a TOML `seed` key cannot hold")
    })
}
