//! Swarm configurations, after TigerBeetle's VOPR and RocksDB's crash test: with
//! `[faults] swarm = true` each seed draws the engine's configuration and the workload's
//! knobs within bounds, so a bug that needs an unusual configuration is found without a
//! scenario written for it. The draw derives from the run's seed (so `--seed` replays it)
//! and is printed with the run and kept in its report notes.
//!
//! In-process sections only. One draw in four (in Full mode) adds concurrent writers, which
//! turn the background checkpointer on: those seeds replay their configuration and the
//! rig's stream, not the threads' interleaving.

use super::FaultsSection;
use crate::faults::rng::{hash, SplitMix64};

const SALT_SWARM: u64 = 0x5A_5A_4D;

/// Page sizes drawn: the engine's bounds and two between.
const PAGE_SIZES: [usize; 4] = [4096, 8192, 16384, 65536];
/// Cache bytes drawn log-uniformly from this range: from the engine's minimum (every
/// transaction evicts) to well past the rig's working set.
const CACHE_BYTES_RANGE: (u64, u64) = (64 << 10, 8 << 20);
/// Automatic checkpoint thresholds drawn log-uniformly: a checkpoint every few commits to
/// none in a cycle.
const WAL_CHECKPOINT_BYTES_RANGE: (u64, u64) = (32 << 10, 8 << 20);
/// Explicit checkpoints every 1..=this many commits, or none.
const CHECKPOINT_EVERY_MAX: u64 = 16;

/// `spec` with the swarmed fields drawn for `seed`, and a line describing the draw.
#[must_use]
pub fn draw(spec: &FaultsSection, seed: u64) -> (FaultsSection, String) {
    let mut rng = SplitMix64::new(hash(seed, SALT_SWARM, 0));
    let mut s = spec.clone();
    s.page_size = Some(PAGE_SIZES[rng.below(PAGE_SIZES.len() as u64) as usize]);
    s.cache_bytes = Some(log_uniform(&mut rng, CACHE_BYTES_RANGE) as usize);
    s.wal_checkpoint_bytes = log_uniform(&mut rng, WAL_CHECKPOINT_BYTES_RANGE);
    s.checkpoint_every = rng.below(CHECKPOINT_EVERY_MAX + 1);
    // Normal mode keeps its window wide enough that some power loss falls inside it (its
    // check fails when none does); Off mode's control needs many more cycles, so not here.
    if rng.below(10) < 3 {
        s.durability = "normal".to_string();
        s.normal_commits = 4 + rng.below(13) as u32;
        s.normal_millis = 200 + rng.below(801) as u32;
    } else {
        s.durability = "full".to_string();
    }
    s.value_bytes_max = [0, 4096, 49152][rng.below(3) as usize];
    s.delete_per_mille = [0, 100, 300][rng.below(3) as usize];
    s.rollback_per_mille = [0, 50, 150][rng.below(3) as usize];
    s.scan_per_mille = [0, 100, 300][rng.below(3) as usize];
    s.read_per_mille = [100, 300][rng.below(2) as usize];
    // Drawn last, so the draws above stay what they were for every seed.
    let crowd = rng.below(4) == 0 && s.durability == "full";
    s.writers = if crowd { 1 + rng.below(8) as usize } else { 0 };
    // After the writers, for the same reason: held readers and delete-then-put commits.
    if rng.below(3) == 0 {
        s.long_reader_every = 10 + rng.below(41);
        s.long_reader_commits = 10 + rng.below(91);
    }
    s.delete_put_every = [0, 0, 5, 13][rng.below(4) as usize];
    let line = format!(
        "swarm (seed {seed}): page_size {} cache_bytes {} wal_checkpoint_bytes {} \
         checkpoint_every {} durability {}{} value_bytes_max {} delete/rollback/scan/read \
         per mille {}/{}/{}/{} writers {} long_reader {}x{} delete_put_every {}",
        s.page_size.unwrap_or_default(),
        s.cache_bytes.unwrap_or_default(),
        s.wal_checkpoint_bytes,
        s.checkpoint_every,
        s.durability,
        if s.durability == "normal" {
            format!(" ({} commits, {} ms)", s.normal_commits, s.normal_millis)
        } else {
            String::new()
        },
        s.value_bytes_max,
        s.delete_per_mille,
        s.rollback_per_mille,
        s.scan_per_mille,
        s.read_per_mille,
        s.writers,
        s.long_reader_every,
        s.long_reader_commits,
        s.delete_put_every
    );
    (s, line)
}

/// A draw from `lo..=hi` uniform in the logarithm.
fn log_uniform(rng: &mut SplitMix64, (lo, hi): (u64, u64)) -> u64 {
    debug_assert!(0 < lo && lo <= hi);
    let u = rng.below(1 << 20) as f64 / f64::from(1 << 20);
    let x = (lo as f64).ln() + u * ((hi as f64).ln() - (lo as f64).ln());
    (x.exp() as u64).clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::{draw, CACHE_BYTES_RANGE, PAGE_SIZES};
    use crate::chaos::FaultsSection;

    /// Every draw is a valid scenario and engine configuration, and seeds differ.
    #[test]
    fn draws_are_valid_and_vary() -> anyhow::Result<()> {
        let spec: FaultsSection = toml::from_str("swarm = true")?;
        let mut pages = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let (s, line) = draw(&spec, seed);
            s.validate().map_err(anyhow::Error::msg)?;
            let cache = s.cache_bytes.unwrap_or_default() as u64;
            anyhow::ensure!((CACHE_BYTES_RANGE.0..=CACHE_BYTES_RANGE.1).contains(&cache));
            anyhow::ensure!(
                PAGE_SIZES.contains(&s.page_size.unwrap_or_default()),
                "{line}"
            );
            pages.insert(s.page_size);
            anyhow::ensure!(draw(&spec, seed).1 == line, "a seed replays its draw");
        }
        anyhow::ensure!(pages.len() == PAGE_SIZES.len(), "{pages:?}");
        Ok(())
    }
}
