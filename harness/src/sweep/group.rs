//! What one seed's run showed, and failures grouped so that one bug shows once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Characters of a group's message: enough to tell bugs apart, short enough for a table row.
pub const MESSAGE_CHARS_MAX: usize = 240;
/// Seeds listed per group in the report; the count covers all of them.
pub const GROUP_SEEDS_SHOWN_MAX: usize = 50;
/// The check name under which runs that ended without a verdict are grouped.
pub const ABORTED: &str = "aborted";

/// One failed observation of a run: the check, and its first observation's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: String,
    pub detail: String,
}

/// How one seed's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Checks failed (from the run's report.json).
    Fail(Vec<Finding>),
    /// No verdict: the harness itself errored, panicked, was killed or timed out. A harness
    /// bug, never a pass.
    Aborted(String),
}

/// Failures of one scenario that share a check and a message shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub scenario: String,
    pub check: String,
    /// The first observation with its numbers replaced by `N` (the grouping key).
    pub message: String,
    /// The first seed's observation, verbatim.
    pub example: String,
    pub count: u64,
    pub first_seed: u64,
    pub reproduce: String,
    /// Up to [`GROUP_SEEDS_SHOWN_MAX`] failing seeds, ascending.
    pub seeds: Vec<u64>,
}

/// The first observation of a check's detail: the text after "first: " up to the next
/// observation (" | "), or the whole detail.
#[must_use]
pub fn first_observation(detail: &str) -> &str {
    let first = detail
        .split_once("first: ")
        .map_or(detail, |(_, rest)| rest);
    first.split(" | ").next().unwrap_or(first).trim()
}

/// `text` with every number (decimal, or hex after `0x`) replaced by `N`, truncated to
/// [`MESSAGE_CHARS_MAX`] characters: "frame 49 at byte 203120" and "frame 27 at byte 111952"
/// are the same bug.
#[must_use]
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MESSAGE_CHARS_MAX * 4));
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() && out.chars().count() < MESSAGE_CHARS_MAX {
        let c = chars[i];
        let hex = c == '0'
            && chars.get(i + 1) == Some(&'x')
            && chars.get(i + 2).is_some_and(char::is_ascii_hexdigit);
        if hex {
            i += 2;
            while chars.get(i).is_some_and(char::is_ascii_hexdigit) {
                i += 1;
            }
            out.push('N');
        } else if c.is_ascii_digit() {
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            out.push('N');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The findings of one run as (check, first observation) pairs; an aborted run is one
/// finding under [`ABORTED`].
fn findings(outcome: &Outcome) -> Vec<(String, String)> {
    match outcome {
        Outcome::Pass => Vec::new(),
        Outcome::Fail(found) => found
            .iter()
            .map(|f| (f.check.clone(), first_observation(&f.detail).to_string()))
            .collect(),
        Outcome::Aborted(why) => vec![(ABORTED.to_string(), why.clone())],
    }
}

/// Groups the failures of `results` (seed and outcome, any order) of one scenario.
/// `reproduce` gives the command for a seed. Groups come largest first.
pub fn group(
    scenario: &str,
    results: &[(u64, Outcome)],
    reproduce: impl Fn(u64) -> String,
) -> Vec<Group> {
    let mut sorted: Vec<&(u64, Outcome)> = results.iter().collect();
    sorted.sort_by_key(|(seed, _)| *seed);
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for (seed, outcome) in sorted {
        for (check, text) in findings(outcome) {
            let message = normalize(&text);
            let g = groups
                .entry((check.clone(), message.clone()))
                .or_insert_with(|| Group {
                    scenario: scenario.to_string(),
                    check,
                    message,
                    example: text,
                    count: 0,
                    first_seed: *seed,
                    reproduce: reproduce(*seed),
                    seeds: Vec::new(),
                });
            g.count += 1;
            if g.seeds.len() < GROUP_SEEDS_SHOWN_MAX && g.seeds.last() != Some(seed) {
                g.seeds.push(*seed);
            }
        }
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_seed.cmp(&b.first_seed)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_hex_become_n() {
        assert_eq!(
            normalize("frame 49 at byte 203120 (salt 0xfb93dd74)"),
            "frame N at byte N (salt N)"
        );
        assert_eq!(normalize("no digits"), "no digits");
        assert_eq!(normalize(&"9".repeat(10_000)), "N");
        assert!(normalize(&"ab".repeat(10_000)).chars().count() <= MESSAGE_CHARS_MAX);
    }

    #[test]
    fn first_observation_cuts_prefix_and_later_ones() {
        let d = "s seed 7: 2 of 9 observations failed; first: cycle 3: lost key 4 | cycle 5: x";
        assert_eq!(first_observation(d), "cycle 3: lost key 4");
        assert_eq!(first_observation("plain"), "plain");
    }

    #[test]
    fn one_bug_groups_once_with_its_count_and_first_seed() {
        let fail = |n: u64| {
            Outcome::Fail(vec![Finding {
                check: "durability".into(),
                detail: format!("x seed {n}: 1 of 1 observations failed; first: cycle {n}: lost"),
            }])
        };
        let results = vec![
            (9, fail(9)),
            (3, fail(3)),
            (4, Outcome::Pass),
            (5, Outcome::Aborted("error: setup: disk full".into())),
        ];
        let groups = group("faults/x", &results, |s| {
            format!("harness run faults/x --seed {s}")
        });
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].check, "durability");
        assert_eq!(groups[0].count, 2);
        assert_eq!(groups[0].first_seed, 3);
        assert_eq!(groups[0].seeds, vec![3, 9]);
        assert_eq!(groups[0].reproduce, "harness run faults/x --seed 3");
        assert_eq!(groups[1].check, ABORTED);
    }
}
