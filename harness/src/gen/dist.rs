//! Key distributions: each samples an index in `0..n` (64-bit throughout, O(1) memory and O(1)
//! set-up for any `n`) from a [`HarnessRng`] passed in.
//!
//! A distribution is described by a [`DistributionSpec`], deserialised from a TOML table such
//! as `{ name = "zipfian", theta = 0.99 }`, and built with [`KeySampler::new`] (or
//! [`KeySampler::with_key_space`] so `latest` follows inserts made by other threads).

use super::keyspace::KeySpace;
use super::rng::HarnessRng;
use super::zeta::{zeta, zeta_increment};
use super::GenError;
use rand::RngExt;
use rand_distr::Zipf;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// YCSB's item count for the inner zipfian of the scrambled zipfian generator.
pub const SCRAMBLED_ITEMS_DEFAULT: u64 = 10_000_000_000;
/// Largest `n` a distribution accepts. 2^62 keeps `n as f64` arithmetic and u128 products
/// comfortably exact in range and leaves headroom for inserts above `n`.
pub const KEYS_MAX: u64 = 1 << 62;
/// Largest cluster count: more clusters than this is indistinguishable from uniform and the
/// per-sample arithmetic assumes it fits comfortably in 64 bits with the segment length.
pub const CLUSTERS_MAX: u64 = 1 << 32;

/// FNV-1a 64 over the 8 little-endian bytes of `x`, as YCSB's `fnvhash64`, with the sign bit
/// masked instead of Java's `Math.abs` (which maps i64::MIN to itself).
#[inline]
#[must_use]
pub fn fnv1a64(x: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in x.to_le_bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(1_099_511_628_211);
    }
    h & (i64::MAX as u64)
}

/// How a zipfian rank is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZipfMethod {
    /// Exact: `rand_distr::Zipf` rejection sampling (default). Any `theta >= 0`.
    #[default]
    Exact,
    /// Gray et al. (SIGMOD 1994) as YCSB's `ZipfianGenerator`: fast and YCSB-compatible, but
    /// over-weights ranks 3..10 (P[rank < 10] about 0.132 against the exact 0.125 at n = 1e9).
    /// Needs `0 < theta < 1`.
    Ycsb,
}

const fn theta_default() -> f64 {
    0.99
}
const fn scrambled_items_default() -> u64 {
    SCRAMBLED_ITEMS_DEFAULT
}
const fn ycsb_method() -> ZipfMethod {
    ZipfMethod::Ycsb
}
const fn hotspot_data_fraction_default() -> f64 {
    0.2
}
const fn hotspot_op_fraction_default() -> f64 {
    0.8
}
const fn exponential_percentile_default() -> f64 {
    95.0
}
const fn exponential_fraction_default() -> f64 {
    0.857_142_857_1
}
const fn skew_exponent_default() -> f64 {
    3.0
}
const fn clusters_default() -> u64 {
    16
}
const fn cluster_fill_default() -> f64 {
    0.5
}
const fn burst_len_mean_default() -> f64 {
    64.0
}
const fn gap_len_max_default() -> u64 {
    1024
}

/// A key distribution and its parameters. TOML: `{ name = "<snake_case variant>", ... }`;
/// every parameter has the default shown.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum DistributionSpec {
    /// Every index in `0..n` equally likely.
    Uniform {},
    /// `start, start+1, ..., n-1, 0, 1, ...` (wrapping); each sampler has its own cursor.
    /// `start` (default 0) is reduced modulo `n`.
    Sequential {
        #[serde(default)]
        start: u64,
    },
    /// Rank `r` (0-based, index = rank) with probability proportional to `(r+1)^-theta`.
    /// `theta` default 0.99; `method` "exact" (default) or "ycsb".
    Zipfian {
        #[serde(default = "theta_default")]
        theta: f64,
        #[serde(default)]
        method: ZipfMethod,
    },
    /// YCSB's scrambled zipfian: a zipfian rank over `items` (default 1e10) items, then
    /// `index = fnv1a64(rank) mod n`, spreading the hot keys over the key space. `method`
    /// defaults to "ycsb" for compatibility; `theta` default 0.99.
    ScrambledZipfian {
        #[serde(default = "theta_default")]
        theta: f64,
        #[serde(default = "ycsb_method")]
        method: ZipfMethod,
        #[serde(default = "scrambled_items_default")]
        items: u64,
    },
    /// Recent keys are hot: `index = max - zipf(max)` where `max` is the highest acknowledged
    /// index (contiguously, see `KeySpace::acked_count`). `theta` default 0.99, `method` exact.
    Latest {
        #[serde(default = "theta_default")]
        theta: f64,
        #[serde(default)]
        method: ZipfMethod,
    },
    /// With probability `op_fraction` (default 0.8) uniform in the first
    /// `floor(data_fraction * n)` keys (default 0.2), otherwise uniform in the rest.
    Hotspot {
        #[serde(default = "hotspot_data_fraction_default")]
        data_fraction: f64,
        #[serde(default = "hotspot_op_fraction_default")]
        op_fraction: f64,
    },
    /// Exponential decay from index 0, truncated to `0..n`: `percentile`% (default 95) of the
    /// untruncated mass lies in the first `fraction * n` keys (default 0.8571428571, YCSB's).
    Exponential {
        #[serde(default = "exponential_percentile_default")]
        percentile: f64,
        #[serde(default = "exponential_fraction_default")]
        fraction: f64,
    },
    /// Mass piled at the high end with a long tail towards 0:
    /// `index = n - 1 - floor(n * u^exponent)`, `exponent >= 1` (default 3; 1 is uniform).
    LeftSkewed {
        #[serde(default = "skew_exponent_default")]
        exponent: f64,
    },
    /// Mass piled at the low end with a long tail towards `n`: `index = floor(n * u^exponent)`.
    RightSkewed {
        #[serde(default = "skew_exponent_default")]
        exponent: f64,
    },
    /// `0..n` cut into `clusters` (default 16) equal segments; only the first `fill` (default
    /// 0.5, in (0, 1]) of each segment is used, the rest is a gap. A cluster is picked
    /// uniformly, then an index uniformly within its used part.
    Clustered {
        #[serde(default = "clusters_default")]
        clusters: u64,
        #[serde(default = "cluster_fill_default")]
        fill: f64,
    },
    /// Time-ordered keys arriving in bursts: consecutive indexes, and after each key the burst
    /// ends with probability `1 / burst_len_mean` (default 64) and the next key skips a gap of
    /// `1..=gap_len_max` (default 1024, uniform) indexes. Wraps at `n`; cursor per sampler.
    TimeSeries {
        #[serde(default = "burst_len_mean_default")]
        burst_len_mean: f64,
        #[serde(default = "gap_len_max_default")]
        gap_len_max: u64,
    },
}

impl Default for DistributionSpec {
    fn default() -> Self {
        Self::Zipfian {
            theta: theta_default(),
            method: ZipfMethod::Exact,
        }
    }
}

impl DistributionSpec {
    /// The spec's `name` as written in TOML.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Uniform {} => "uniform",
            Self::Sequential { .. } => "sequential",
            Self::Zipfian { .. } => "zipfian",
            Self::ScrambledZipfian { .. } => "scrambled_zipfian",
            Self::Latest { .. } => "latest",
            Self::Hotspot { .. } => "hotspot",
            Self::Exponential { .. } => "exponential",
            Self::LeftSkewed { .. } => "left_skewed",
            Self::RightSkewed { .. } => "right_skewed",
            Self::Clustered { .. } => "clustered",
            Self::TimeSeries { .. } => "time_series",
        }
    }
}

/// Gray et al.'s zipfian over ranks `0..items` with an incrementally growable item count.
/// Unlike YCSB, `eta` is always recomputed from the current count (YCSB issue 1495).
#[derive(Clone, Debug)]
pub struct YcsbZipf {
    items: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    zeta2: f64,
    eta: f64,
    rank1_bound: f64,
}

impl YcsbZipf {
    /// Set-up for `items >= 1` and `0 < theta < 1`, O(1) thanks to Euler-Maclaurin zeta.
    pub fn new(items: u64, theta: f64) -> Result<Self, GenError> {
        if !(theta > 0.0 && theta < 1.0) {
            return Err(GenError::param(
                "theta",
                "the ycsb method needs 0 < theta < 1",
            ));
        }
        check_n(items)?;
        let zeta2 = zeta(2, theta);
        let mut z = Self {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta_n: zeta(items, theta),
            zeta2,
            eta: 0.0,
            rank1_bound: 1.0 + 0.5_f64.powf(theta),
        };
        z.eta = z.eta_for(items);
        Ok(z)
    }

    fn eta_for(&self, items: u64) -> f64 {
        (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zeta_n)
    }

    /// Current item count.
    #[must_use]
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Grows the item count to `items` (never shrinks), adding the new zeta terms.
    pub fn grow_to(&mut self, items: u64) {
        if items <= self.items {
            return;
        }
        self.zeta_n += zeta_increment(self.items, items, self.theta);
        self.items = items;
        self.eta = self.eta_for(items);
        debug_assert!(self.zeta_n.is_finite() && self.eta.is_finite());
    }

    /// A rank in `0..items` from a uniform `u` in `[0, 1)`.
    #[inline]
    #[must_use]
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.rank1_bound {
            return 1.min(self.items - 1);
        }
        let x = self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        // Float rounding can land on `items` exactly as u approaches 1.
        (x as u64).min(self.items - 1)
    }
}

/// A zipfian rank source: exact or YCSB's.
#[derive(Clone, Debug)]
enum ZipfRank {
    Exact {
        zipf: Zipf<f64>,
        items: u64,
        theta: f64,
    },
    Ycsb(YcsbZipf),
}

impl ZipfRank {
    fn new(items: u64, theta: f64, method: ZipfMethod) -> Result<Self, GenError> {
        check_n(items)?;
        match method {
            ZipfMethod::Exact => {
                if !(theta.is_finite() && theta >= 0.0) {
                    return Err(GenError::param("theta", "must be finite and >= 0"));
                }
                let zipf = Zipf::new(items as f64, theta)
                    .map_err(|e| GenError::param("theta", e.to_string()))?;
                Ok(Self::Exact { zipf, items, theta })
            }
            ZipfMethod::Ycsb => Ok(Self::Ycsb(YcsbZipf::new(items, theta)?)),
        }
    }

    #[inline]
    fn sample(&self, rng: &mut HarnessRng) -> u64 {
        match self {
            Self::Exact { zipf, items, .. } => {
                let x: f64 = rng.sample(zipf);
                // Zipf returns a float in 1..=items.
                (x as u64).saturating_sub(1).min(items - 1)
            }
            Self::Ycsb(z) => z.rank(rng.unit_f64()),
        }
    }

    fn items(&self) -> u64 {
        match self {
            Self::Exact { items, .. } => *items,
            Self::Ycsb(z) => z.items(),
        }
    }

    fn grow_to(&mut self, items: u64) -> Result<(), GenError> {
        match self {
            Self::Exact { theta, .. } => {
                *self = Self::new(items, *theta, ZipfMethod::Exact)?;
            }
            Self::Ycsb(z) => z.grow_to(items),
        }
        Ok(())
    }
}

fn check_n(n: u64) -> Result<(), GenError> {
    if n == 0 || n > KEYS_MAX {
        return Err(GenError::param(
            "n",
            format!("must be in 1..={KEYS_MAX}, got {n}"),
        ));
    }
    Ok(())
}

fn check_fraction(name: &'static str, x: f64, zero_ok: bool) -> Result<(), GenError> {
    let low_ok = if zero_ok { x >= 0.0 } else { x > 0.0 };
    if !(low_ok && x <= 1.0) {
        return Err(GenError::param(
            name,
            format!("must be a fraction in [0, 1], got {x}"),
        ));
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Sampler {
    Uniform,
    Sequential {
        cursor: u64,
    },
    Zipfian(ZipfRank),
    Scrambled(ZipfRank),
    Latest {
        rank: ZipfRank,
        space: Arc<KeySpace>,
    },
    Hotspot {
        hot: u64,
        op_fraction: f64,
    },
    Exponential {
        gamma: f64,
        mass: f64,
    },
    Skewed {
        exponent: f64,
        left: bool,
    },
    Clustered(Clusters),
    TimeSeries {
        cursor: u64,
        burst_end_p: f64,
        gap_len_max: u64,
    },
}

/// Cluster geometry: segment `c` starts at `c * base + min(c, extra)` and is `base + 1` long
/// for `c < extra`, else `base`; its first `width` indexes are used.
#[derive(Clone, Debug)]
struct Clusters {
    count: u64,
    base: u64,
    extra: u64,
    width_base: u64,
    width_long: u64,
}

/// A built key distribution: samples indexes in `0..n` (for `latest`, in `0..acked_count`).
#[derive(Clone, Debug)]
pub struct KeySampler {
    n: u64,
    sampler: Sampler,
}

impl KeySampler {
    /// Builds `spec` over `0..n`. For `latest`, `n` is a fixed count of present keys; use
    /// [`KeySampler::with_key_space`] to follow inserts.
    pub fn new(spec: &DistributionSpec, n: u64) -> Result<Self, GenError> {
        Self::with_key_space(spec, &Arc::new(KeySpace::new(n)))
    }

    /// Builds `spec` over `0..space.record_count()`; `latest` follows `space.acked_count()`.
    pub fn with_key_space(
        spec: &DistributionSpec,
        space: &Arc<KeySpace>,
    ) -> Result<Self, GenError> {
        let n = space.record_count();
        check_n(n)?;
        let sampler = match *spec {
            DistributionSpec::Uniform {} => Sampler::Uniform,
            DistributionSpec::Sequential { start } => Sampler::Sequential { cursor: start % n },
            DistributionSpec::Zipfian { theta, method } => {
                Sampler::Zipfian(ZipfRank::new(n, theta, method)?)
            }
            DistributionSpec::ScrambledZipfian {
                theta,
                method,
                items,
            } => Sampler::Scrambled(ZipfRank::new(items, theta, method)?),
            DistributionSpec::Latest { theta, method } => Sampler::Latest {
                rank: ZipfRank::new(space.acked_count().max(1), theta, method)?,
                space: Arc::clone(space),
            },
            DistributionSpec::Hotspot {
                data_fraction,
                op_fraction,
            } => {
                check_fraction("data_fraction", data_fraction, true)?;
                check_fraction("op_fraction", op_fraction, true)?;
                let hot = ((n as f64 * data_fraction) as u64).min(n);
                Sampler::Hotspot { hot, op_fraction }
            }
            DistributionSpec::Exponential {
                percentile,
                fraction,
            } => exponential(n, percentile, fraction)?,
            DistributionSpec::LeftSkewed { exponent } => skewed(exponent, true)?,
            DistributionSpec::RightSkewed { exponent } => skewed(exponent, false)?,
            DistributionSpec::Clustered { clusters, fill } => clustered(n, clusters, fill)?,
            DistributionSpec::TimeSeries {
                burst_len_mean,
                gap_len_max,
            } => {
                if !(burst_len_mean.is_finite() && burst_len_mean >= 1.0) {
                    return Err(GenError::param("burst_len_mean", "must be >= 1"));
                }
                if gap_len_max > KEYS_MAX {
                    return Err(GenError::param(
                        "gap_len_max",
                        format!("must be <= {KEYS_MAX}"),
                    ));
                }
                let burst_end_p = 1.0 / burst_len_mean;
                Sampler::TimeSeries {
                    cursor: 0,
                    burst_end_p,
                    gap_len_max,
                }
            }
        };
        Ok(Self { n, sampler })
    }

    /// The fixed key count `n` the sampler was built over.
    #[must_use]
    pub fn n(&self) -> u64 {
        self.n
    }

    /// One index. Below `n`, except `latest`, which stays below the key space's acked count.
    #[inline]
    pub fn sample(&mut self, rng: &mut HarnessRng) -> u64 {
        let n = self.n;
        let index = match &mut self.sampler {
            Sampler::Uniform => rng.below(n),
            Sampler::Sequential { cursor } => {
                let index = *cursor;
                *cursor = if index + 1 == n { 0 } else { index + 1 };
                index
            }
            Sampler::Zipfian(rank) => rank.sample(rng),
            Sampler::Scrambled(rank) => fnv1a64(rank.sample(rng)) % n,
            Sampler::Latest { rank, space } => return sample_latest(rank, space, rng),
            Sampler::Hotspot { hot, op_fraction } => {
                let cold = n - *hot;
                let pick_hot = rng.unit_f64() < *op_fraction;
                if (pick_hot && *hot > 0) || cold == 0 {
                    rng.below(*hot)
                } else {
                    *hot + rng.below(cold)
                }
            }
            Sampler::Exponential { gamma, mass } => {
                let x = -(-rng.unit_f64() * *mass).ln_1p() / *gamma;
                (x as u64).min(n - 1)
            }
            Sampler::Skewed { exponent, left } => {
                let x = ((n as f64 * rng.unit_f64().powf(*exponent)) as u64).min(n - 1);
                if *left {
                    n - 1 - x
                } else {
                    x
                }
            }
            Sampler::Clustered(c) => c.sample(rng),
            Sampler::TimeSeries {
                cursor,
                burst_end_p,
                gap_len_max,
            } => {
                let index = *cursor;
                let mut step = 1;
                if *gap_len_max > 0 && rng.unit_f64() < *burst_end_p {
                    step += 1 + rng.below(*gap_len_max);
                }
                *cursor = ((u128::from(index) + u128::from(step)) % u128::from(n)) as u64;
                index
            }
        };
        debug_assert!(index < n, "{index} >= {n}");
        index
    }
}

#[inline]
fn sample_latest(rank: &mut ZipfRank, space: &KeySpace, rng: &mut HarnessRng) -> u64 {
    let count = space.acked_count().max(1);
    if count > rank.items() {
        // Growth only fails for counts above KEYS_MAX; then keep the old (smaller) range.
        let _ = rank.grow_to(count.min(KEYS_MAX));
    }
    let items = rank.items();
    let index = items - 1 - rank.sample(rng);
    debug_assert!(index < count);
    index
}

fn exponential(n: u64, percentile: f64, fraction: f64) -> Result<Sampler, GenError> {
    if !(percentile > 0.0 && percentile < 100.0) {
        return Err(GenError::param("percentile", "must be in (0, 100)"));
    }
    if !(fraction.is_finite() && fraction > 0.0) {
        return Err(GenError::param("fraction", "must be > 0"));
    }
    let gamma = -(1.0 - percentile / 100.0).ln() / (n as f64 * fraction);
    // Mass of the untruncated exponential inside [0, n): 1 - e^(-gamma n).
    let mass = -(-gamma * n as f64).exp_m1();
    assert!(gamma > 0.0 && mass > 0.0 && mass <= 1.0);
    Ok(Sampler::Exponential { gamma, mass })
}

fn skewed(exponent: f64, left: bool) -> Result<Sampler, GenError> {
    if !(exponent.is_finite() && exponent >= 1.0) {
        return Err(GenError::param("exponent", "must be finite and >= 1"));
    }
    Ok(Sampler::Skewed { exponent, left })
}

fn clustered(n: u64, clusters: u64, fill: f64) -> Result<Sampler, GenError> {
    if clusters == 0 || clusters > n || clusters > CLUSTERS_MAX {
        return Err(GenError::param(
            "clusters",
            format!("must be in 1..=min(n, {CLUSTERS_MAX}), got {clusters}"),
        ));
    }
    check_fraction("fill", fill, false)?;
    let base = n / clusters;
    let width = |len: u64| ((len as f64 * fill) as u64).clamp(1, len.max(1));
    Ok(Sampler::Clustered(Clusters {
        count: clusters,
        base,
        extra: n % clusters,
        width_base: width(base),
        width_long: width(base + 1),
    }))
}

impl Clusters {
    #[inline]
    fn sample(&self, rng: &mut HarnessRng) -> u64 {
        let c = rng.below(self.count);
        let start = c * self.base + c.min(self.extra);
        let width = if c < self.extra {
            self.width_long
        } else {
            self.width_base
        };
        start + rng.below(width)
    }

    /// Used part of cluster `c` as `start..start + width`.
    #[must_use]
    fn range(&self, c: u64) -> (u64, u64) {
        let start = c * self.base + c.min(self.extra);
        let width = if c < self.extra {
            self.width_long
        } else {
            self.width_base
        };
        (start, width)
    }
}

impl KeySampler {
    /// For `clustered`: the used ranges `(start, width)` of every cluster (tests, reports).
    #[must_use]
    pub fn cluster_ranges(&self) -> Vec<(u64, u64)> {
        match &self.sampler {
            Sampler::Clustered(c) => (0..c.count).map(|i| c.range(i)).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_from_toml_with_defaults() -> Result<(), toml::de::Error> {
        let spec: DistributionSpec = toml::from_str("name = \"zipfian\"\ntheta = 0.9")?;
        assert_eq!(
            spec,
            DistributionSpec::Zipfian {
                theta: 0.9,
                method: ZipfMethod::Exact
            }
        );
        let spec: DistributionSpec = toml::from_str("name = \"scrambled_zipfian\"")?;
        assert_eq!(
            spec,
            DistributionSpec::ScrambledZipfian {
                theta: 0.99,
                method: ZipfMethod::Ycsb,
                items: SCRAMBLED_ITEMS_DEFAULT
            }
        );
        let spec: DistributionSpec = toml::from_str("name = \"hotspot\"")?;
        assert_eq!(
            spec,
            DistributionSpec::Hotspot {
                data_fraction: 0.2,
                op_fraction: 0.8
            }
        );
        let spec: DistributionSpec = toml::from_str("name = \"uniform\"")?;
        assert_eq!(spec.name(), "uniform");
        Ok(())
    }

    #[test]
    fn unknown_fields_and_names_are_rejected() {
        assert!(
            toml::from_str::<DistributionSpec>("name = \"zipfian\"\ntheta_typo = 0.9").is_err()
        );
        assert!(toml::from_str::<DistributionSpec>("name = \"uniform\"\nx = 1").is_err());
        assert!(toml::from_str::<DistributionSpec>("name = \"zipf\"").is_err());
        assert!(
            toml::from_str::<DistributionSpec>("name = \"zipfian\"\nmethod = \"gray\"").is_err()
        );
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let bad = [
            DistributionSpec::Zipfian {
                theta: 1.0,
                method: ZipfMethod::Ycsb,
            },
            DistributionSpec::Zipfian {
                theta: -1.0,
                method: ZipfMethod::Exact,
            },
            DistributionSpec::Hotspot {
                data_fraction: 1.5,
                op_fraction: 0.8,
            },
            DistributionSpec::Exponential {
                percentile: 100.0,
                fraction: 0.5,
            },
            DistributionSpec::LeftSkewed { exponent: 0.5 },
            DistributionSpec::Clustered {
                clusters: 0,
                fill: 0.5,
            },
            DistributionSpec::Clustered {
                clusters: 4,
                fill: 0.0,
            },
            DistributionSpec::TimeSeries {
                burst_len_mean: 0.5,
                gap_len_max: 10,
            },
        ];
        for spec in bad {
            assert!(KeySampler::new(&spec, 1000).is_err(), "{spec:?} accepted");
        }
        assert!(KeySampler::new(&DistributionSpec::Uniform {}, 0).is_err());
        assert!(KeySampler::new(&DistributionSpec::Uniform {}, KEYS_MAX + 1).is_err());
    }

    #[test]
    fn fnv_matches_reference_and_masks_sign() {
        // FNV-1a 64 of eight zero bytes, computed by hand from the definition.
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for _ in 0..8 {
            h = h.wrapping_mul(1_099_511_628_211);
        }
        assert_eq!(fnv1a64(0), h & (i64::MAX as u64));
        assert!((0..10_000).all(|x| fnv1a64(x) <= i64::MAX as u64));
    }

    #[test]
    fn hotspot_edges_fall_back_to_the_non_empty_set() {
        let mut rng = HarnessRng::from_seed(3);
        for (data_fraction, op_fraction) in [(0.0, 0.8), (1.0, 0.2), (0.2, 0.0), (0.2, 1.0)] {
            let spec = DistributionSpec::Hotspot {
                data_fraction,
                op_fraction,
            };
            let mut sampler = KeySampler::new(&spec, 10).ok();
            for _ in 0..100 {
                assert!(sampler.as_mut().map(|s| s.sample(&mut rng) < 10) == Some(true));
            }
        }
    }
}
