//! `harness compare BASELINE CANDIDATE`: two history files (see `report::history`) judged
//! against each other.
//!
//! * A candidate run whose verdict failed is a correctness failure, whatever the speed.
//! * Speed is judged per (scenario, engine, phase) on the samples of both sides: each round
//!   of each run is one sample of its throughput. For durable engines (`*-full`,
//!   `*-immediate`) a sample is divided by the same round's fsync probe, so a slower disk on
//!   one side does not read as a regression.
//! * A regression is flagged only when it is both significant and large: a two-sided
//!   Mann–Whitney U test (normal approximation with tie correction) gives p < 0.05 **and**
//!   the medians differ by more than the larger of 2% and the baseline's own noise band
//!   (twice its median absolute deviation, relative to its median). Fewer than
//!   [`SAMPLES_MIN`] samples on a side make that comparison inconclusive.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Samples per side a comparison needs (nine interleaved repetitions).
pub const SAMPLES_MIN: usize = 9;
/// Significance level of the U test.
pub const P_MAX: f64 = 0.05;
/// Smallest relative change ever flagged.
pub const CHANGE_MIN: f64 = 0.02;
/// Longest history line read: a line is a few KiB; a damaged file must not make the reader
/// allocate without bound.
pub const LINE_BYTES_MAX: usize = 1 << 20;
/// Lines read from one history file.
pub const LINES_MAX: usize = 1_000_000;

/// Exit status: every metric compared and none regressed.
pub const EXIT_PASS: u8 = 0;
/// Exit status: a candidate run failed a correctness check.
pub const EXIT_CORRECTNESS: u8 = 1;
/// Exit status: bad input (unreadable file, no line in common).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status: a confirmed regression.
pub const EXIT_REGRESSION: u8 = 3;
/// Exit status: no regression, but some metric had too few samples to judge.
pub const EXIT_INCONCLUSIVE: u8 = 4;

/// (scenario, engine, phase).
pub type MetricKey = (String, String, String);

/// What one metric's comparison found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Same,
    Regression,
    Improvement,
    Inconclusive,
}

/// One metric compared.
#[derive(Debug, Clone)]
pub struct Row {
    pub key: MetricKey,
    pub baseline_n: usize,
    pub candidate_n: usize,
    pub baseline_median: f64,
    pub candidate_median: f64,
    /// Relative change of the medians, candidate against baseline.
    pub change: f64,
    pub p_value: f64,
    /// The change a flag needs: the larger of 2% and the baseline's noise band.
    pub threshold: f64,
    pub verdict: Verdict,
}

/// Everything `compare` found.
#[derive(Debug, Default)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Failed candidate runs: (scenario, seed, failed checks).
    pub correctness: Vec<String>,
}

impl Comparison {
    /// The documented exit status.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        if !self.correctness.is_empty() {
            EXIT_CORRECTNESS
        } else if self.rows.iter().any(|r| r.verdict == Verdict::Regression) {
            EXIT_REGRESSION
        } else if self.rows.is_empty()
            || self.rows.iter().any(|r| r.verdict == Verdict::Inconclusive)
        {
            EXIT_INCONCLUSIVE
        } else {
            EXIT_PASS
        }
    }
}

/// Reads a history file's lines.
///
/// # Errors
/// Unreadable files, over-long lines, and lines that are not JSON objects.
pub fn read_history(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate().take(LINES_MAX) {
        if line.trim().is_empty() {
            continue;
        }
        anyhow::ensure!(
            line.len() <= LINE_BYTES_MAX,
            "{}:{}: line longer than {LINE_BYTES_MAX} bytes",
            path.display(),
            n + 1
        );
        let v: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        anyhow::ensure!(v.is_object(), "{}:{}: not an object", path.display(), n + 1);
        lines.push(v);
    }
    Ok(lines)
}

fn durable(engine: &str) -> bool {
    engine.ends_with("-full") || engine.ends_with("-immediate")
}

/// The throughput samples of every metric in `lines`.
#[must_use]
pub fn samples(lines: &[Value]) -> BTreeMap<MetricKey, Vec<f64>> {
    let mut out: BTreeMap<MetricKey, Vec<f64>> = BTreeMap::new();
    for line in lines {
        let scenario = line["scenario"].as_str().unwrap_or_default().to_string();
        let probes: Vec<f64> = line["fsync_probe"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["fsyncs_per_s"].as_f64())
                    .collect()
            })
            .unwrap_or_default();
        for e in line["engines"].as_array().into_iter().flatten() {
            let engine = e["engine"].as_str().unwrap_or_default().to_string();
            let per_round = e["round_samples"].as_array().filter(|r| !r.is_empty());
            let mut add = |phase: &str, rate: f64, round: usize| {
                let probe = probes.get(round).copied().filter(|p| *p > 0.0);
                let value = match probe {
                    Some(p) if durable(&engine) => rate / p,
                    _ => rate,
                };
                let key = (scenario.clone(), engine.clone(), phase.to_string());
                out.entry(key).or_default().push(value);
            };
            match per_round {
                Some(rounds) => {
                    for (i, r) in rounds.iter().enumerate() {
                        let round = r["round"].as_u64().map_or(i, |x| x as usize);
                        for (phase, rate) in r["ops_per_s"].as_object().into_iter().flatten() {
                            add(phase, rate.as_f64().unwrap_or(0.0), round);
                        }
                    }
                }
                None => {
                    for p in e["phases"].as_array().into_iter().flatten() {
                        let phase = p["name"].as_str().unwrap_or_default();
                        add(phase, p["ops_per_s"].as_f64().unwrap_or(0.0), 0);
                    }
                }
            }
        }
    }
    out
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The baseline's noise band: twice the median absolute deviation, relative to the median.
fn noise_band(v: &[f64]) -> f64 {
    let m = median(v);
    if m <= 0.0 {
        return 0.0;
    }
    let deviations: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    2.0 * median(&deviations) / m
}

/// Two-sided Mann–Whitney U p-value (normal approximation, tie-corrected, continuity).
#[must_use]
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let mut all: Vec<(f64, usize)> = a
        .iter()
        .map(|&x| (x, 0))
        .chain(b.iter().map(|&x| (x, 1)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut ranks = vec![0.0; n];
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for r in ranks.iter_mut().take(j + 1).skip(i) {
            *r = rank;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let r1: f64 = all
        .iter()
        .zip(&ranks)
        .filter(|((_, side), _)| *side == 0)
        .map(|(_, r)| r)
        .sum();
    let u = r1 - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let var = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0)
}

/// Standard normal CDF (Abramowitz and Stegun 7.1.26 for erf; error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    let erf = if x >= 0.0 { erf } else { -erf };
    0.5 * (1.0 + erf)
}

/// Judges one metric (throughput: higher is better).
#[must_use]
pub fn judge(key: MetricKey, base: &[f64], cand: &[f64]) -> Row {
    let (bm, cm) = (median(base), median(cand));
    let change = if bm > 0.0 { (cm - bm) / bm } else { 0.0 };
    let p_value = mann_whitney_p(base, cand);
    let threshold = CHANGE_MIN.max(noise_band(base));
    let verdict = if base.len() < SAMPLES_MIN || cand.len() < SAMPLES_MIN {
        Verdict::Inconclusive
    } else if p_value < P_MAX && change < -threshold {
        Verdict::Regression
    } else if p_value < P_MAX && change > threshold {
        Verdict::Improvement
    } else {
        Verdict::Same
    };
    Row {
        key,
        baseline_n: base.len(),
        candidate_n: cand.len(),
        baseline_median: bm,
        candidate_median: cm,
        change,
        p_value,
        threshold,
        verdict,
    }
}

/// Compares two histories: every metric present in both, and the candidate's verdicts.
#[must_use]
pub fn compare(baseline: &[Value], candidate: &[Value]) -> Comparison {
    let correctness = candidate
        .iter()
        .filter(|l| l["verdict"].as_str() == Some("fail"))
        .map(|l| {
            format!(
                "{} seed {}: failed {}",
                l["scenario"].as_str().unwrap_or_default(),
                l["seed"],
                l["failed_checks"]
            )
        })
        .collect();
    let (base, cand) = (samples(baseline), samples(candidate));
    let rows = base
        .iter()
        .filter_map(|(k, b)| cand.get(k).map(|c| judge(k.clone(), b, c)))
        .collect();
    Comparison { rows, correctness }
}

/// The comparison as an aligned table.
#[must_use]
pub fn table(c: &Comparison) -> String {
    let mut out = format!(
        "{:<28} {:<16} {:<10} {:>4} {:>4} {:>14} {:>14} {:>8} {:>8} {:>7}  verdict\n",
        "scenario", "engine", "phase", "nb", "nc", "baseline", "candidate", "change", "p", "band"
    );
    for r in &c.rows {
        out.push_str(&format!(
            "{:<28} {:<16} {:<10} {:>4} {:>4} {:>14.3} {:>14.3} {:>7.1}% {:>8.4} {:>6.1}%  {:?}\n",
            r.key.0,
            r.key.1,
            r.key.2,
            r.baseline_n,
            r.candidate_n,
            r.baseline_median,
            r.candidate_median,
            r.change * 100.0,
            r.p_value,
            r.threshold * 100.0,
            r.verdict
        ));
    }
    for f in &c.correctness {
        out.push_str(&format!("correctness failure: {f}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::rng::SplitMix64;

    fn noisy(rng: &mut SplitMix64, n: usize, mean: f64, spread: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let u = (0..4)
                    .map(|_| rng.below(1 << 20) as f64 / f64::from(1 << 20))
                    .sum::<f64>()
                    / 4.0;
                mean * (1.0 + spread * (u - 0.5) * 2.0)
            })
            .collect()
    }

    fn key() -> MetricKey {
        ("s".into(), "e".into(), "run".into())
    }

    #[test]
    fn the_u_test_matches_a_known_case() {
        // Completely separated samples of 9 and 9: U = 0, p about 0.0003 (normal approx.).
        let a: Vec<f64> = (0..9).map(f64::from).collect();
        let b: Vec<f64> = (10..19).map(f64::from).collect();
        let p = mann_whitney_p(&a, &b);
        assert!(p < 0.001, "{p}");
        assert!(mann_whitney_p(&a, &a) > 0.9);
    }

    #[test]
    fn a_ten_percent_slowdown_is_caught_and_equal_samples_raise_no_alarm() {
        let mut rng = SplitMix64::new(42);
        let (mut caught, mut false_alarms) = (0, 0);
        for _ in 0..500 {
            let base = noisy(&mut rng, 9, 1000.0, 0.04);
            let slow = noisy(&mut rng, 9, 900.0, 0.04);
            let same = noisy(&mut rng, 9, 1000.0, 0.04);
            caught += usize::from(judge(key(), &base, &slow).verdict == Verdict::Regression);
            false_alarms += usize::from(judge(key(), &base, &same).verdict == Verdict::Regression);
        }
        assert!(caught >= 490, "caught {caught} of 500");
        assert!(false_alarms <= 5, "{false_alarms} false alarms in 500");
    }

    #[test]
    fn too_few_samples_are_inconclusive_and_failures_win() {
        let row = judge(key(), &[1.0, 2.0], &[1.0, 2.0]);
        assert_eq!(row.verdict, Verdict::Inconclusive);
        let c = Comparison {
            rows: vec![row],
            correctness: vec!["x".into()],
        };
        assert_eq!(c.exit_code(), EXIT_CORRECTNESS);
    }
}
