//! `harness run SCENARIO --shard I/N` and `harness merge`: one chaos scenario's cycles spread
//! over N processes or machines, then put back together into one report.
//!
//! Shard `I` (from 0) of `N` runs its share of each sharded section's cycles or episodes
//! ([`share`]: shares differ by at most one and cover every cycle once) on its own database,
//! with a seed derived from the base seed and `I` ([`derive_seed`]), and records a
//! [`ShardInfo`] in its report. [`merge`] checks the shards belong together and merges them
//! exactly: histograms from their serialized form ([`encode_histogram`]), counters and checks
//! summed.
//!
//! Sharded sections: `[faults.kill9] cycles`, `[faults.power_loss] cycles`,
//! `[faults.corruption] episodes` and `[faults.enospc] episodes`. The others have no unit to
//! split (`eio` runs a list of kinds, `fail_at_n` searches N upwards, `tmpfs` is one
//! episode) and `swarm` draws a whole configuration per seed, so `--shard` rejects them.

pub mod merge;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::chaos::FaultsSection;
use crate::faults::rng::{hash, hash_bytes};

pub use merge::{merge, merge_dirs, MergeError, Merged};

/// Most shards of one run: a Kubernetes Indexed Job allows 100,000 completions, but 10,000
/// shards of even one cycle each is already past any useful spread, and the merge reads every
/// report into memory.
pub const SHARDS_MAX: u64 = 10_000;

/// Salt of the shard seed stream, so shard seeds never collide with the other streams a
/// run derives from its seed.
const SHARD_SEED_SALT: u64 = 0x5A4D_0001;

/// The environment variable of `--shard env/N`: Kubernetes sets it in each pod of an
/// Indexed Job to the pod's completion index.
pub const SHARD_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Shard `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses `--shard I/N`, or `env/N` with `I` from `env_index` (the value of
/// [`SHARD_INDEX_ENV`], `None` when unset).
///
/// # Errors
/// A message for the user: bad syntax, `N = 0`, `N` over [`SHARDS_MAX`], `I >= N`, or
/// `env/N` without the variable.
pub fn parse_shard(text: &str, env_index: Option<&str>) -> Result<Shard, String> {
    let bad = || format!("--shard {text}: expected I/N (I from 0 to N-1) or env/N");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let count: u64 = n.trim().parse().map_err(|_| bad())?;
    let index: u64 = if i.trim() == "env" {
        let v = env_index.ok_or_else(|| format!("--shard {text}: {SHARD_INDEX_ENV} is not set"))?;
        v.trim()
            .parse()
            .map_err(|_| format!("--shard {text}: {SHARD_INDEX_ENV}={v:?} is not an index"))?
    } else {
        i.trim().parse().map_err(|_| bad())?
    };
    if count == 0 || count > SHARDS_MAX {
        return Err(format!(
            "--shard {text}: the shard count must be 1..={SHARDS_MAX}"
        ));
    }
    if index >= count {
        return Err(format!(
            "--shard {text}: shard index {index} is not below the count {count} (indexes \
             start at 0)"
        ));
    }
    Ok(Shard { index, count })
}

/// The cycles of shard `shard` out of `total`: `(first, len)`. The first `total % count`
/// shards take one more, so shares differ by at most one and tile `0..total` in index order.
#[must_use]
pub fn share(total: u64, shard: Shard) -> (u64, u64) {
    let count = shard.count.max(1);
    let (base, rem) = (total / count, total % count);
    let first = shard.index * base + shard.index.min(rem);
    (first, base + u64::from(shard.index < rem))
}

/// The seed shard `index` runs with: a function of the base seed and the index only, so a
/// shard replays alone and no two shards of one base seed share a stream.
#[must_use]
pub fn derive_seed(base_seed: u64, index: u64) -> u64 {
    hash(base_seed, SHARD_SEED_SALT, index)
}

/// The hash of a report's resolved configuration (the same as the history line's
/// `config_hash`): shards of one run must agree on it.
#[must_use]
pub fn config_hash(config: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(config).unwrap_or_default();
    format!("{:016x}", hash_bytes(&bytes))
}

/// One sharded section's split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SectionShare {
    /// The split key, e.g. `"faults.kill9.cycles"`.
    pub unit: String,
    /// First cycle of this shard, counted over the whole section.
    pub first: u64,
    /// Cycles this shard ran (in a merged report: all of them).
    pub share: u64,
    /// Cycles of the whole section.
    pub total: u64,
}

/// Observations and failures of one named check, as counted before they became text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckCount {
    pub name: String,
    pub observations: u64,
    pub failures: u64,
}

/// `report.json`'s `shard`: what a shard ran, and what ties it to its siblings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard's index from 0; absent in a merged report (it holds every shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Shards the run was split into.
    pub count: u64,
    /// The seed given to `--seed`; each shard's `seed` derives from it and the index.
    pub base_seed: u64,
    /// [`config_hash`] of the whole scenario (overrides included, not yet split).
    pub config_hash: String,
    /// Cycles and episodes this report covers, over every sharded section.
    pub cycles: u64,
    /// Cycles and episodes of the whole scenario.
    pub cycles_total: u64,
    /// Each sharded section.
    #[serde(default)]
    pub sections: Vec<SectionShare>,
    /// Per check, its observations and failures (what the merge adds up).
    #[serde(default)]
    pub check_counts: Vec<CheckCount>,
}

/// What `harness run --shard` hands the chaos runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRun {
    pub shard: Shard,
    /// The user's seed; the run's own seed is [`derive_seed`] of it.
    pub base_seed: u64,
}

/// Resolves `--shard TEXT` for `scenario` run with `base_seed` (`env/N` reads
/// [`SHARD_INDEX_ENV`]), refusing what cannot be sharded before anything runs.
///
/// # Errors
/// A message for the user (exit 2): a bad `--shard`, a benchmark scenario, or a fault
/// section that cannot be split.
pub fn plan(
    scenario: &crate::scenario::Scenario,
    name: &str,
    text: &str,
    base_seed: u64,
) -> Result<ShardRun, String> {
    let env = std::env::var(SHARD_INDEX_ENV).ok();
    let shard = parse_shard(text, env.as_deref())?;
    let Some(faults) = &scenario.faults else {
        return Err(format!(
            "--shard: {name} is a benchmark scenario; --shard splits the cycles of chaos \
             scenarios (scenarios/crash, scenarios/faults) only"
        ));
    };
    split_faults(faults, shard).map_err(|e| format!("{name}: {e}"))?;
    Ok(ShardRun { shard, base_seed })
}

/// The sections `--shard` cannot split, named for the error message.
fn unsplittable(faults: &FaultsSection) -> Vec<&'static str> {
    let mut out = Vec::new();
    if faults.eio.is_some() {
        out.push("[faults.eio] (a list of kinds, not cycles)");
    }
    if faults.fail_at_n.is_some() {
        out.push("[faults.fail_at_n] (a search over N, not cycles)");
    }
    if faults.tmpfs.is_some() {
        out.push("[faults.tmpfs] (one episode)");
    }
    if faults.swarm {
        out.push("faults.swarm (each seed draws its own configuration; sweep seeds instead)");
    }
    out
}

/// `faults` with each sharded section cut to `shard`'s share, and the shares.
///
/// # Errors
/// A message for the user: a section that cannot be split, no section that can, or fewer
/// cycles than shards in a section (a shard would run nothing and observe nothing).
pub fn split_faults(
    faults: &FaultsSection,
    shard: Shard,
) -> Result<(FaultsSection, Vec<SectionShare>), String> {
    let refused = unsplittable(faults);
    if !refused.is_empty() {
        return Err(format!(
            "--shard splits kill9 and power-loss cycles and corruption and ENOSPC episodes; \
             this scenario has {}",
            refused.join(", ")
        ));
    }
    let mut out = faults.clone();
    let mut units: Vec<(&str, &mut u64)> = Vec::new();
    if let Some(k) = out.kill9.as_mut() {
        units.push(("faults.kill9.cycles", &mut k.cycles));
    }
    if let Some(p) = out.power_loss.as_mut() {
        units.push(("faults.power_loss.cycles", &mut p.cycles));
    }
    if let Some(c) = out.corruption.as_mut() {
        units.push(("faults.corruption.episodes", &mut c.episodes));
    }
    if let Some(e) = out.enospc.as_mut() {
        units.push(("faults.enospc.episodes", &mut e.episodes));
    }
    if units.is_empty() {
        return Err("--shard: the scenario has no cycles or episodes to split".to_string());
    }
    let mut sections = Vec::new();
    for (unit, n) in units {
        let total = *n;
        if total < shard.count {
            return Err(format!(
                "--shard {shard}: {unit} = {total} is fewer than {} shards; a shard would \
                 run nothing",
                shard.count
            ));
        }
        let (first, len) = share(total, shard);
        *n = len;
        sections.push(SectionShare {
            unit: unit.to_string(),
            first,
            share: len,
            total,
        });
    }
    Ok((out, sections))
}

/// A histogram as HdrHistogram's V2 deflate encoding in base64 (what its interval logs
/// hold); `None` when it cannot be serialized.
#[must_use]
pub fn encode_histogram(h: &Histogram<u64>) -> Option<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The histogram of [`encode_histogram`]'s text.
///
/// # Errors
/// Text that is not base64 of a V2 (deflate) histogram.
pub fn decode_histogram(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
    let h: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice())?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shards_and_rejects_bad_ones() {
        assert_eq!(parse_shard("3/4", None), Ok(Shard { index: 3, count: 4 }));
        assert_eq!(
            parse_shard("env/100", Some("7")),
            Ok(Shard {
                index: 7,
                count: 100
            })
        );
        for bad in ["4/4", "0/0", "x/2", "1", "env/3"] {
            assert!(parse_shard(bad, None).is_err(), "{bad}");
        }
        assert!(parse_shard("env/3", Some("3")).is_err());
        assert!(parse_shard("env/3", Some("a")).is_err());
    }

    #[test]
    fn shard_seeds_differ_and_repeat() {
        assert_eq!(derive_seed(7, 1), derive_seed(7, 1));
        assert_ne!(derive_seed(7, 0), derive_seed(7, 1));
        assert_ne!(derive_seed(7, 0), derive_seed(8, 0));
    }

    #[test]
    fn a_histogram_survives_its_encoding() -> anyhow::Result<()> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
        for v in [1, 500, 12_345, 9_999_999, 2_000_000_000] {
            h.record(v)?;
        }
        let text = encode_histogram(&h).ok_or_else(|| anyhow::anyhow!("not encoded"))?;
        let back = decode_histogram(&text)?;
        anyhow::ensure!(back == h, "decoded histogram differs");
        Ok(())
    }
}
