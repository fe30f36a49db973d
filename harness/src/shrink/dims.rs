//! The dimensions a shrink reduces and how: a bisection for a count, ddmin for a list, one
//! trial for a feature that can be turned off. Each accepted value is kept as an override
//! before the next dimension is tried, so every step is judged on the case as shrunk so far.

use super::{Shrinker, Trial};
use crate::chaos::FaultsSection;

/// Passes over every dimension at most: a later reduction (fewer keys) can make an earlier
/// one (fewer commits) possible again, and a pass that accepts nothing ends the shrink.
/// Past this many, each pass wins a step or two; `TRIALS_MAX` bounds them anyway.
const PASSES_MAX: u32 = 8;

/// How one scenario key is reduced.
#[derive(Debug, Clone, Copy)]
enum Dim {
    /// The smallest count in `min..=current` that still fails, by bisection (first `min`).
    Count { key: &'static str, min: u64 },
    /// A list, ddmin-style: chunks removed, halving the chunk size; never emptied.
    List { key: &'static str },
    /// A feature turned off: one trial with `value`.
    Off {
        key: &'static str,
        value: &'static str,
    },
    /// The power-loss cycles folded into one of all their commits: a failure that needed
    /// many cycles for its commits (not for its crashes) then shrinks by commits alone.
    Fold,
    /// An override dropped, so the key takes the scenario's value (a swarm draw written
    /// out sets page size, cache and thresholds that the case may not need).
    Unset { key: &'static str },
}

/// In order: the biggest reductions of run time first (cycles, then commits per cycle),
/// then keys, the fault presets and kinds, and the extras of the workload and faults.
const DIMS: &[Dim] = &[
    Dim::Count {
        key: "faults.power_loss.cycles",
        min: 1,
    },
    Dim::Fold,
    Dim::Count {
        key: "faults.corruption.episodes",
        min: 1,
    },
    Dim::Count {
        key: "faults.enospc.episodes",
        min: 1,
    },
    Dim::Count {
        key: "run.ops",
        min: 1,
    },
    Dim::Count {
        key: "workload.record_count",
        min: 1,
    },
    Dim::List {
        key: "faults.power_loss.presets",
    },
    Dim::List {
        key: "faults.eio.kinds",
    },
    Dim::List {
        key: "faults.storage.latent",
    },
    Dim::Count {
        key: "faults.writers",
        min: 0,
    },
    Dim::Off {
        key: "faults.power_loss.crash_in_recovery_every",
        value: "0",
    },
    Dim::Off {
        key: "faults.power_loss.crash_in_checkpoint_every",
        value: "0",
    },
    Dim::Off {
        key: "faults.power_loss.idle_every",
        value: "0",
    },
    Dim::Off {
        key: "faults.power_loss.torn_tail",
        value: "false",
    },
    Dim::Count {
        key: "faults.corruption.bit_flips",
        min: 0,
    },
    Dim::Off {
        key: "faults.corruption.misdirect_probability",
        value: "0.0",
    },
    Dim::Count {
        key: "faults.accounts",
        min: 0,
    },
    Dim::Off {
        key: "faults.checkpoint_every",
        value: "0",
    },
    Dim::Off {
        key: "faults.rollback_per_mille",
        value: "0",
    },
    Dim::Off {
        key: "faults.delete_per_mille",
        value: "0",
    },
    Dim::Off {
        key: "faults.scan_per_mille",
        value: "0",
    },
    Dim::Off {
        key: "faults.read_per_mille",
        value: "0",
    },
    Dim::Off {
        key: "faults.value_bytes_max",
        value: "0",
    },
    Dim::Off {
        key: "faults.durability",
        value: "\"full\"",
    },
    Dim::Unset {
        key: "faults.normal_commits",
    },
    Dim::Unset {
        key: "faults.normal_millis",
    },
    Dim::Unset {
        key: "faults.page_size",
    },
    Dim::Unset {
        key: "faults.cache_bytes",
    },
    Dim::Unset {
        key: "faults.wal_checkpoint_bytes",
    },
];

/// The keys `chaos::swarm::draw` sets from the seed: an override of them is drawn over.
const SWARM_DRAWN: &[&str] = &[
    "faults.page_size",
    "faults.cache_bytes",
    "faults.wal_checkpoint_bytes",
    "faults.checkpoint_every",
    "faults.durability",
    "faults.normal_commits",
    "faults.normal_millis",
    "faults.value_bytes_max",
    "faults.delete_per_mille",
    "faults.rollback_per_mille",
    "faults.scan_per_mille",
    "faults.read_per_mille",
    "faults.writers",
];

impl Dim {
    fn key(self) -> &'static str {
        match self {
            Dim::Count { key, .. }
            | Dim::List { key }
            | Dim::Off { key, .. }
            | Dim::Unset { key } => key,
            Dim::Fold => CYCLES,
        }
    }
}

/// Shrinks `s` until a pass changes nothing or the budget is spent.
pub(super) fn shrink(s: &mut Shrinker, original: &Trial, faults: &FaultsSection) {
    let swarm_on = faults.swarm && swarm_still_drawn(s, faults);
    let mut last = original.commits;
    for pass in 1..=PASSES_MAX {
        let mut changed = false;
        for &dim in DIMS {
            if !s.has_budget() {
                break;
            }
            if swarm_on && SWARM_DRAWN.contains(&dim.key()) {
                continue;
            }
            changed |= match dim {
                Dim::Count { key, min } => count(s, key, min, &mut last),
                Dim::List { key } => list(s, key, &mut last),
                Dim::Off { key, value } => off(s, key, value, &mut last),
                Dim::Unset { key } => unset(s, key, &mut last),
                Dim::Fold => fold(s, &mut last),
            };
        }
        if !s.has_budget() {
            println!(
                "budget spent ({} trials, {:.0} s): keeping the case shrunk so far",
                s.trials,
                s.started.elapsed().as_secs_f64()
            );
            return;
        }
        if !changed {
            println!("pass {pass} changed nothing: done");
            break;
        }
    }
    prune(s);
}

/// Drops every override that leaves the scenario as it is (a default written out, a
/// Normal-mode knob of a drawn Full-mode run): the same configuration, so no trial.
fn prune(s: &mut Shrinker) {
    let resolved = |sets: &super::Sets| {
        crate::scenario::load(&s.file, &sets.items())
            .ok()
            .and_then(|sc| toml::Value::try_from(&sc).ok())
    };
    let Some(now) = resolved(&s.sets) else {
        return;
    };
    for key in s.sets.items() {
        let key = key.split_once('=').map_or(key.as_str(), |(k, _)| k);
        let mut cand = s.sets.clone();
        cand.remove(key);
        if resolved(&cand).as_ref() == Some(&now) {
            s.sets = cand;
        }
    }
}

const CYCLES: &str = "faults.power_loss.cycles";
const OPS: &str = "run.ops";

/// One trial of one power-loss cycle running as many commits as every cycle did.
fn fold(s: &mut Shrinker, last: &mut u64) -> bool {
    let int = |v: Option<toml::Value>| v.and_then(|v| v.as_integer());
    let (Some(cycles), Some(ops)) = (int(current(s, CYCLES)), int(current(s, OPS))) else {
        return false;
    };
    if cycles <= 1 {
        return false;
    }
    let mut cand = s.sets.clone();
    cand.put(CYCLES, "1");
    cand.put(OPS, &cycles.saturating_mul(ops).to_string());
    let Some(t) = s.fails(&cand) else {
        return false;
    };
    s.sets = cand;
    let step = format!(
        "{CYCLES} {cycles} x {OPS} {ops} folded into 1 x {} ({} still fails; operations \
         {} -> {})",
        cycles.saturating_mul(ops),
        s.target,
        *last,
        t.commits
    );
    *last = t.commits;
    note(s, step);
    true
}

/// One trial without the override of `key`.
fn unset(s: &mut Shrinker, key: &str, last: &mut u64) -> bool {
    if !s.sets.has(key) {
        return false;
    }
    let mut cand = s.sets.clone();
    cand.remove(key);
    let Some(t) = s.fails(&cand) else {
        return false;
    };
    s.sets = cand;
    let step = format!(
        "{key} override dropped ({} still fails; operations {} -> {})",
        s.target, *last, t.commits
    );
    *last = t.commits;
    note(s, step);
    true
}

/// With `swarm = true`: writes the seed's draw out as overrides with the swarm off, so each
/// drawn knob can shrink. Returns true when that no longer fails and the swarm stays on
/// (its knobs then stay as drawn).
fn swarm_still_drawn(s: &mut Shrinker, faults: &FaultsSection) -> bool {
    let (drawn, line) = crate::chaos::swarm::draw(faults, s.seed);
    println!("{line}");
    let Ok(toml::Value::Table(table)) = toml::Value::try_from(&drawn) else {
        return true;
    };
    let mut cand = s.sets.clone();
    cand.put("faults.swarm", "false");
    for key in SWARM_DRAWN {
        let field = key.trim_start_matches("faults.");
        if let Some(v) = table.get(field) {
            cand.put(key, &text(v));
        }
    }
    if let Some(t) = s.fails(&cand) {
        s.sets = cand;
        let step = format!(
            "faults.swarm true -> false, its draw written out ({} still fails; {} operations)",
            s.target, t.commits
        );
        note(s, step);
        false
    } else {
        println!(
            "the draw written out with swarm = false no longer fails {}: swarm stays on, and \
             the drawn knobs ({}) are not shrunk",
            s.target,
            SWARM_DRAWN.join(", ")
        );
        true
    }
}

/// The scenario as shrunk so far, as TOML, and the value at a dotted `key`.
fn current(s: &Shrinker, key: &str) -> Option<toml::Value> {
    let scenario = crate::scenario::load(&s.file, &s.sets.items()).ok()?;
    let mut node = toml::Value::try_from(&scenario).ok()?;
    for part in key.split('.') {
        node = node.as_table_mut()?.remove(part)?;
    }
    Some(node)
}

/// Bisection for the smallest failing count in `min..=current`.
fn count(s: &mut Shrinker, key: &str, min: u64, last: &mut u64) -> bool {
    let Some(v) = current(s, key)
        .and_then(|v| v.as_integer())
        .and_then(|v| u64::try_from(v).ok())
    else {
        return false;
    };
    if v <= min {
        return false;
    }
    // The smallest first: a failure often needs far less than it was given.
    if attempt(s, key, &v.to_string(), &min.to_string(), last) {
        return true;
    }
    let (mut lo, mut hi, mut changed) = (min, v, false);
    while hi - lo > 1 && s.has_budget() {
        let mid = lo + (hi - lo) / 2;
        if attempt(s, key, &hi.to_string(), &mid.to_string(), last) {
            (hi, changed) = (mid, true);
        } else {
            lo = mid;
        }
    }
    changed
}

/// ddmin over a list: removes chunks of half its length, then quarters, down to single
/// items, keeping every removal that still fails; never the last item.
fn list(s: &mut Shrinker, key: &str, last: &mut u64) -> bool {
    let Some(toml::Value::Array(mut items)) = current(s, key) else {
        return false;
    };
    let (mut chunk, mut changed) = (items.len() / 2, false);
    while chunk >= 1 && items.len() > 1 && s.has_budget() {
        let mut start = 0;
        let mut removed = false;
        while start < items.len() && items.len() > 1 && s.has_budget() {
            let end = (start + chunk).min(items.len());
            let mut cand = items[..start].to_vec();
            cand.extend_from_slice(&items[end..]);
            let (from, to) = (array_text(&items), array_text(&cand));
            if !cand.is_empty() && attempt(s, key, &from, &to, last) {
                (items, removed, changed) = (cand, true, true);
            } else {
                start = end;
            }
        }
        if !removed {
            chunk /= 2;
        }
    }
    changed
}

/// One trial with the feature at `key` turned off.
fn off(s: &mut Shrinker, key: &str, value: &str, last: &mut u64) -> bool {
    let Some(now) = current(s, key) else {
        return false;
    };
    let off_value = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    if off_value.as_ref() == Some(&now) {
        return false;
    }
    attempt(s, key, &text(&now), value, last)
}

/// Tries `key = to`; keeps and prints it when the target check still fails.
fn attempt(s: &mut Shrinker, key: &str, from: &str, to: &str, last: &mut u64) -> bool {
    let mut cand = s.sets.clone();
    cand.put(key, to);
    let Some(t) = s.fails(&cand) else {
        return false;
    };
    s.sets = cand;
    let step = format!(
        "{key} {from} -> {to} ({} still fails; operations {} -> {})",
        s.target, *last, t.commits
    );
    *last = t.commits;
    note(s, step);
    true
}

fn note(s: &mut Shrinker, step: String) {
    let n = s.steps.len() + 1;
    println!("step {n} (trial {}): {step}", s.trials);
    s.steps.push(step);
}

/// A value as `--set` takes it: a string bare when it cannot be read as another TOML
/// value (`durability=normal`), else TOML.
fn text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) if format!("v = {s}").parse::<toml::Table>().is_err() => s.clone(),
        toml::Value::Array(items) => array_text(items),
        other => other.to_string(),
    }
}

fn array_text(items: &[toml::Value]) -> String {
    toml::Value::Array(items.to_vec()).to_string()
}
