//! Goodness-of-fit checks for the generator tests: chi-square over bins and Kolmogorov-Smirnov,
//! with critical values at a false-alarm probability of 1e-6 so fixed-seed tests of correct
//! generators essentially never fail, while wrong generators fail by a wide margin.

/// Bins with fewer expected samples than this are merged with their neighbours: the chi-square
/// approximation needs about 5 per bin; 20 keeps it accurate in the far tail we test at.
pub const EXPECTED_PER_BIN_MIN: f64 = 20.0;
/// Standard normal quantile used for the critical values: 5.199 is the 1 - 1e-7 quantile, one
/// decade beyond the 1e-6 we promise, to absorb the Wilson-Hilferty approximation's error.
const Z_CRITICAL: f64 = 5.199;
/// Upper-tail probability for the KS critical value.
pub const FALSE_ALARM_P: f64 = 1e-6;

/// Outcome of a chi-square test.
#[derive(Clone, Debug, PartialEq)]
pub struct ChiSquare {
    /// Sum of (observed - expected)^2 / expected over the merged bins.
    pub statistic: f64,
    /// Merged bins minus one.
    pub dof: usize,
    /// Critical value at p < 1e-6.
    pub critical: f64,
}

impl ChiSquare {
    /// True when the sample is consistent with the distribution.
    #[must_use]
    pub fn passes(&self) -> bool {
        self.statistic <= self.critical
    }
}

/// Upper critical value of chi-square with `dof` degrees of freedom at p < 1e-6
/// (Wilson-Hilferty cube approximation, conservative by one decade of p).
#[must_use]
pub fn chi_square_critical(dof: usize) -> f64 {
    assert!(dof >= 1, "chi-square needs at least two bins");
    let k = dof as f64;
    let h = 2.0 / (9.0 * k);
    k * (1.0 - h + Z_CRITICAL * h.sqrt()).powi(3)
}

/// Chi-square of `observed` counts against bin `probabilities` (same length, summing to 1
/// within 1e-6). Adjacent bins are merged until each expects at least
/// [`EXPECTED_PER_BIN_MIN`] samples.
#[must_use]
pub fn chi_square(observed: &[u64], probabilities: &[f64]) -> ChiSquare {
    assert_eq!(observed.len(), probabilities.len());
    let p_total: f64 = probabilities.iter().sum();
    assert!(
        (p_total - 1.0).abs() < 1e-6,
        "bin probabilities sum to {p_total}"
    );
    let total: u64 = observed.iter().sum();
    let total_f = total as f64;
    let mut merged: Vec<(f64, f64)> = Vec::new(); // (observed, expected)
    let mut acc = (0.0, 0.0);
    for (&o, &p) in observed.iter().zip(probabilities) {
        acc = (acc.0 + o as f64, acc.1 + p * total_f);
        if acc.1 >= EXPECTED_PER_BIN_MIN {
            merged.push(acc);
            acc = (0.0, 0.0);
        }
    }
    if acc.0 > 0.0 || acc.1 > 0.0 {
        match merged.last_mut() {
            Some(last) => *last = (last.0 + acc.0, last.1 + acc.1),
            None => merged.push(acc),
        }
    }
    let statistic = merged
        .iter()
        .map(|&(o, e)| {
            if e > 0.0 {
                (o - e) * (o - e) / e
            } else if o > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        })
        .sum();
    let dof = merged.len().saturating_sub(1).max(1);
    ChiSquare {
        statistic,
        dof,
        critical: chi_square_critical(dof),
    }
}

/// Kolmogorov-Smirnov distance between the empirical distribution of `samples` and `cdf`
/// (`cdf(x)` = P[X <= x]), evaluated at every distinct sample (exact for discrete `cdf`).
#[must_use]
pub fn ks_distance(samples: &mut [u64], cdf: impl Fn(u64) -> f64) -> f64 {
    samples.sort_unstable();
    let n = samples.len() as f64;
    let mut d: f64 = 0.0;
    let mut i = 0;
    while i < samples.len() {
        let x = samples[i];
        let below = i as f64 / n;
        while i < samples.len() && samples[i] == x {
            i += 1;
        }
        let at_or_below = i as f64 / n;
        let f = cdf(x);
        let f_before = if x == 0 { 0.0 } else { cdf(x - 1) };
        d = d.max((at_or_below - f).abs()).max((below - f_before).abs());
    }
    d
}

/// KS critical distance for `n` samples at p = [`FALSE_ALARM_P`] (asymptotic; conservative for
/// discrete distributions).
#[must_use]
pub fn ks_critical(n: usize) -> f64 {
    (-(FALSE_ALARM_P / 2.0).ln() / (2.0 * n as f64)).sqrt()
}
