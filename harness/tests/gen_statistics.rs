//! Statistical tests of the key generators against their theoretical distributions.
//!
//! Every test uses a fixed seed and a critical value at a false-alarm probability below 1e-6
//! (see `harness::gen::stats`), so a correct generator fails essentially never; the tests at
//! the end show the same checks reject wrong generators.

use anyhow::{ensure, Result};
use harness::gen::dist::SCRAMBLED_ITEMS_DEFAULT;
use harness::gen::stats::{chi_square, ks_critical, ks_distance, ChiSquare};
use harness::gen::{
    fnv1a64, zeta, DistributionSpec, HarnessRng, KeySampler, KeySpace, YcsbZipf, ZipfMethod,
};
use std::sync::Arc;

/// Samples per test: enough for every bin to expect well over 20 samples at n = 1000, and for
/// a 1% distortion of a 10% bin to stand out by more than 10 standard errors.
const SAMPLES: usize = 200_000;
const SEED: u64 = 0x5EED_0001;

fn counts(spec: &DistributionSpec, n: u64, samples: usize, seed: u64) -> Result<Vec<u64>> {
    let mut sampler = KeySampler::new(spec, n)?;
    let mut rng = HarnessRng::from_seed(seed);
    let mut counts = vec![0_u64; usize::try_from(n)?];
    for _ in 0..samples {
        let index = sampler.sample(&mut rng);
        ensure!(index < n, "index {index} >= n {n} (seed {seed})");
        counts[usize::try_from(index)?] += 1;
    }
    Ok(counts)
}

fn expect_pass(what: &str, result: &ChiSquare) -> Result<()> {
    eprintln!(
        "{what}: chi-square {:.1}, dof {}, critical {:.1}",
        result.statistic, result.dof, result.critical
    );
    ensure!(
        result.passes(),
        "{what}: chi-square {:.1} > critical {:.1} (dof {}, seed {SEED:#x})",
        result.statistic,
        result.critical,
        result.dof
    );
    Ok(())
}

fn zipf_pmf(n: u64, theta: f64) -> Vec<f64> {
    let z = zeta(n, theta);
    (1..=n).map(|i| (i as f64).powf(-theta) / z).collect()
}

/// P[rank < k] of the Gray et al. (YCSB) method, from its inverse: for k >= 2 the rank is
/// below k when u < ((k/n)^(1/alpha) - 1)/eta + 1, and u below (1 + 0.5^theta)/zeta already
/// gives ranks 0 and 1.
fn ycsb_cdf(n: u64, theta: f64, k: u64) -> f64 {
    let z = zeta(n, theta);
    match k {
        0 => 0.0,
        1 => 1.0 / z,
        _ if k >= n => 1.0,
        _ => {
            let alpha = 1.0 / (1.0 - theta);
            let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta(2, theta) / z);
            let u_k = (((k as f64) / n as f64).powf(1.0 / alpha) - 1.0) / eta + 1.0;
            u_k.max((1.0 + 0.5_f64.powf(theta)) / z).min(1.0)
        }
    }
}

/// Log-spaced rank bins over `0..n`: `[edges[i], edges[i+1])`.
fn log_edges(n: u64) -> Vec<u64> {
    let mut edges = vec![0_u64];
    let mut x = 1_u64;
    while x < n {
        edges.push(x);
        x = (x + 1).max((x as f64 * 1.3) as u64);
    }
    edges.push(n);
    edges
}

fn binned(samples: &[u64], edges: &[u64]) -> Vec<u64> {
    let mut out = vec![0_u64; edges.len() - 1];
    for &s in samples {
        let bin = edges.partition_point(|&e| e <= s) - 1;
        out[bin] += 1;
    }
    out
}

fn draw(spec: &DistributionSpec, n: u64, samples: usize, seed: u64) -> Result<Vec<u64>> {
    let mut sampler = KeySampler::new(spec, n)?;
    let mut rng = HarnessRng::from_seed(seed);
    let out: Vec<u64> = (0..samples).map(|_| sampler.sample(&mut rng)).collect();
    ensure!(out.iter().all(|&x| x < n), "sample >= n {n} (seed {seed})");
    Ok(out)
}

fn zipfian(theta: f64, method: ZipfMethod) -> DistributionSpec {
    DistributionSpec::Zipfian { theta, method }
}

#[test]
fn uniform_matches_flat_pmf() -> Result<()> {
    let n = 1000;
    let observed = counts(&DistributionSpec::Uniform {}, n, SAMPLES, SEED)?;
    expect_pass(
        "uniform",
        &chi_square(&observed, &vec![1.0 / n as f64; 1000]),
    )
}

#[test]
fn exact_zipfian_matches_pmf_for_several_thetas() -> Result<()> {
    let n = 1000;
    for theta in [0.5, 0.99, 1.2] {
        let observed = counts(&zipfian(theta, ZipfMethod::Exact), n, SAMPLES, SEED)?;
        expect_pass(
            &format!("zipfian theta {theta}"),
            &chi_square(&observed, &zipf_pmf(n, theta)),
        )?;
    }
    Ok(())
}

#[test]
fn exact_zipfian_at_1e9_matches_binned_pmf() -> Result<()> {
    let n = 1_000_000_000;
    let theta = 0.99;
    let samples = draw(&zipfian(theta, ZipfMethod::Exact), n, SAMPLES, SEED)?;
    let edges = log_edges(n);
    let z = zeta(n, theta);
    let probs: Vec<f64> = edges
        .windows(2)
        .map(|w| (zeta(w[1], theta) - zeta(w[0], theta)) / z)
        .collect();
    expect_pass(
        "zipfian 1e9",
        &chi_square(&binned(&samples, &edges), &probs),
    )
}

#[test]
fn ycsb_zipfian_matches_its_own_cdf() -> Result<()> {
    for n in [1000_u64, 1_000_000_000] {
        let theta = 0.99;
        let samples = draw(&zipfian(theta, ZipfMethod::Ycsb), n, SAMPLES, SEED)?;
        let edges = log_edges(n);
        let probs: Vec<f64> = edges
            .windows(2)
            .map(|w| ycsb_cdf(n, theta, w[1]) - ycsb_cdf(n, theta, w[0]))
            .collect();
        expect_pass(
            &format!("ycsb zipfian n={n}"),
            &chi_square(&binned(&samples, &edges), &probs),
        )?;
    }
    Ok(())
}

#[test]
fn ycsb_zipfian_overweights_ranks_below_10() -> Result<()> {
    let n = 1_000_000_000;
    let samples_count = 1_000_000;
    let share = |method| -> Result<f64> {
        let samples = draw(&zipfian(0.99, method), n, samples_count, SEED)?;
        Ok(samples.iter().filter(|&&r| r < 10).count() as f64 / samples_count as f64)
    };
    let (exact, ycsb) = (share(ZipfMethod::Exact)?, share(ZipfMethod::Ycsb)?);
    let exact_theory = zeta(10, 0.99) / zeta(n, 0.99);
    // Standard error at p = 0.13 and 1e6 samples is 3.4e-4; allow 6 of them.
    ensure!(
        (exact_theory - 0.125).abs() < 0.001,
        "exact theory {exact_theory}"
    );
    ensure!(
        (exact - exact_theory).abs() < 0.002,
        "exact P[rank<10] = {exact}"
    );
    ensure!((ycsb - 0.132).abs() < 0.002, "ycsb P[rank<10] = {ycsb}");
    ensure!((ycsb_cdf(n, 0.99, 10) - 0.132).abs() < 0.001, "ycsb theory");
    Ok(())
}

#[test]
fn scrambled_zipfian_matches_enumerated_pmf() -> Result<()> {
    // Small inner item count so the pmf can be enumerated: key j collects every rank r with
    // fnv1a64(r) mod n == j.
    let (n, items, theta) = (1000_u64, 20_000_u64, 0.99);
    let spec = DistributionSpec::ScrambledZipfian {
        theta,
        method: ZipfMethod::Ycsb,
        items,
    };
    let observed = counts(&spec, n, SAMPLES, SEED)?;
    let mut probs = vec![0.0; 1000];
    for r in 0..items {
        let p = ycsb_cdf(items, theta, r + 1) - ycsb_cdf(items, theta, r);
        probs[usize::try_from(fnv1a64(r) % n)?] += p;
    }
    expect_pass("scrambled zipfian", &chi_square(&observed, &probs))
}

#[test]
fn scrambled_zipfian_default_hottest_key_is_hash_of_rank_0() -> Result<()> {
    let n = 1_000_000_000;
    let spec = DistributionSpec::ScrambledZipfian {
        theta: 0.99,
        method: ZipfMethod::Ycsb,
        items: SCRAMBLED_ITEMS_DEFAULT,
    };
    let samples = draw(&spec, n, SAMPLES, SEED)?;
    let hottest = fnv1a64(0) % n;
    let hits = samples.iter().filter(|&&k| k == hottest).count() as f64 / SAMPLES as f64;
    let expected = 1.0 / 26.469_028_201_783_02;
    // Binomial standard error at 3.8% and 2e5 samples is 4.3e-4; allow 6 of them.
    ensure!(
        (hits - expected).abs() < 0.0026,
        "hottest key share {hits}, expected {expected}"
    );
    Ok(())
}

#[test]
fn latest_is_reversed_zipfian_and_follows_acknowledged_inserts() -> Result<()> {
    let n = 1000_u64;
    for method in [ZipfMethod::Exact, ZipfMethod::Ycsb] {
        let space = Arc::new(KeySpace::new(n));
        let mut sampler = KeySampler::with_key_space(
            &DistributionSpec::Latest {
                theta: 0.99,
                method,
            },
            &space,
        )?;
        let mut rng = HarnessRng::from_seed(SEED);
        for _ in 0..1000 {
            let index = space.allocate_insert();
            space.acknowledge_insert(index);
            ensure!(sampler.sample(&mut rng) < space.acked_count());
        }
        let grown = space.acked_count();
        ensure!(grown == 2 * n);
        let mut observed = vec![0_u64; usize::try_from(grown)?];
        for _ in 0..SAMPLES {
            observed[usize::try_from(sampler.sample(&mut rng))?] += 1;
        }
        let mut probs = match method {
            ZipfMethod::Exact => zipf_pmf(grown, 0.99),
            ZipfMethod::Ycsb => (0..grown)
                .map(|k| ycsb_cdf(grown, 0.99, k + 1) - ycsb_cdf(grown, 0.99, k))
                .collect(),
        };
        probs.reverse();
        expect_pass(
            &format!("latest {method:?}"),
            &chi_square(&observed, &probs),
        )?;
    }
    Ok(())
}

#[test]
fn hotspot_splits_ops_between_hot_and_cold_sets() -> Result<()> {
    let n = 1000_u64;
    let spec = DistributionSpec::Hotspot {
        data_fraction: 0.2,
        op_fraction: 0.8,
    };
    let observed = counts(&spec, n, SAMPLES, SEED)?;
    let probs: Vec<f64> = (0..n)
        .map(|k| if k < 200 { 0.8 / 200.0 } else { 0.2 / 800.0 })
        .collect();
    expect_pass("hotspot", &chi_square(&observed, &probs))
}

#[test]
fn exponential_matches_truncated_pmf() -> Result<()> {
    let n = 1000_u64;
    let (percentile, fraction) = (95.0, 0.2);
    let spec = DistributionSpec::Exponential {
        percentile,
        fraction,
    };
    let observed = counts(&spec, n, SAMPLES, SEED)?;
    let gamma = -(1.0_f64 - percentile / 100.0).ln() / (n as f64 * fraction);
    let mass = 1.0 - (-gamma * n as f64).exp();
    let probs: Vec<f64> = (0..n)
        .map(|k| ((-gamma * k as f64).exp() - (-gamma * (k + 1) as f64).exp()) / mass)
        .collect();
    expect_pass("exponential", &chi_square(&observed, &probs))
}

#[test]
fn skewed_distributions_match_power_cdf() -> Result<()> {
    let n = 1000_u64;
    let exponent = 3.0;
    let cdf = |i: u64| (i as f64 / n as f64).powf(1.0 / exponent); // P[index < i], right
    let right: Vec<f64> = (0..n).map(|k| cdf(k + 1) - cdf(k)).collect();
    let left: Vec<f64> = right.iter().rev().copied().collect();
    let observed = counts(
        &DistributionSpec::RightSkewed { exponent },
        n,
        SAMPLES,
        SEED,
    )?;
    expect_pass("right skewed", &chi_square(&observed, &right))?;
    let observed = counts(&DistributionSpec::LeftSkewed { exponent }, n, SAMPLES, SEED)?;
    expect_pass("left skewed", &chi_square(&observed, &left))
}

#[test]
fn skewed_at_1e9_passes_ks() -> Result<()> {
    let n = 1_000_000_000_u64;
    let mut samples = draw(
        &DistributionSpec::RightSkewed { exponent: 2.0 },
        n,
        SAMPLES,
        SEED,
    )?;
    let cdf = |x: u64| ((x + 1) as f64 / n as f64).sqrt();
    let d = ks_distance(&mut samples, cdf);
    ensure!(
        d < ks_critical(SAMPLES),
        "KS distance {d} >= {} (seed {SEED:#x})",
        ks_critical(SAMPLES)
    );
    Ok(())
}

#[test]
fn clustered_is_uniform_over_clusters_and_never_in_gaps() -> Result<()> {
    let n = 1003_u64; // not a multiple of the cluster count: segments of two lengths
    let spec = DistributionSpec::Clustered {
        clusters: 7,
        fill: 0.3,
    };
    let sampler = KeySampler::new(&spec, n)?;
    let mut probs = vec![0.0; usize::try_from(n)?];
    for (start, width) in sampler.cluster_ranges() {
        for k in start..start + width {
            probs[usize::try_from(k)?] = 1.0 / 7.0 / width as f64;
        }
    }
    let observed = counts(&spec, n, SAMPLES, SEED)?;
    for (k, (&o, &p)) in observed.iter().zip(&probs).enumerate() {
        ensure!(p > 0.0 || o == 0, "sample in a gap at {k}");
    }
    expect_pass("clustered", &chi_square(&observed, &probs))
}

#[test]
fn time_series_steps_are_bursts_and_gaps() -> Result<()> {
    let n = 1_000_000_000_u64; // large enough never to wrap
    let (burst_len_mean, gap_len_max) = (16.0, 50_u64);
    let samples = draw(
        &DistributionSpec::TimeSeries {
            burst_len_mean,
            gap_len_max,
        },
        n,
        SAMPLES,
        SEED,
    )?;
    // step 1 inside a burst; 1 + g, g uniform in 1..=gap_len_max, after a burst ends.
    let mut observed = vec![0_u64; usize::try_from(gap_len_max + 2)?];
    for w in samples.windows(2) {
        let step = w[1] - w[0];
        ensure!((1..=gap_len_max + 1).contains(&step), "step {step}");
        observed[usize::try_from(step)?] += 1;
    }
    let p_end = 1.0 / burst_len_mean;
    let mut probs = vec![p_end / gap_len_max as f64; observed.len()];
    probs[0] = 0.0;
    probs[1] = 1.0 - p_end;
    expect_pass("time series steps", &chi_square(&observed, &probs))
}

#[test]
fn sequential_cycles_through_the_key_space() -> Result<()> {
    let samples = draw(&DistributionSpec::Sequential { start: 8 }, 10, 25, SEED)?;
    let expected: Vec<u64> = (8..33).map(|i| i % 10).collect();
    ensure!(samples == expected, "{samples:?}");
    Ok(())
}

#[test]
fn incremental_ycsb_zeta_equals_fresh_set_up() -> Result<()> {
    let mut grown = YcsbZipf::new(1000, 0.99)?;
    for items in [1001, 1500, 100_000, 100_001, 5_000_000] {
        grown.grow_to(items);
        let fresh = YcsbZipf::new(items, 0.99)?;
        for u in [0.01, 0.05, 0.3, 0.7, 0.999_999] {
            ensure!(grown.rank(u) == fresh.rank(u), "items {items} u {u}");
        }
    }
    Ok(())
}

fn every_spec() -> Vec<DistributionSpec> {
    vec![
        DistributionSpec::Uniform {},
        DistributionSpec::Sequential { start: 0 },
        zipfian(0.99, ZipfMethod::Exact),
        zipfian(0.99, ZipfMethod::Ycsb),
        DistributionSpec::ScrambledZipfian {
            theta: 0.99,
            method: ZipfMethod::Ycsb,
            items: SCRAMBLED_ITEMS_DEFAULT,
        },
        DistributionSpec::ScrambledZipfian {
            theta: 0.99,
            method: ZipfMethod::Exact,
            items: SCRAMBLED_ITEMS_DEFAULT,
        },
        DistributionSpec::Latest {
            theta: 0.99,
            method: ZipfMethod::Exact,
        },
        DistributionSpec::Latest {
            theta: 0.99,
            method: ZipfMethod::Ycsb,
        },
        DistributionSpec::Hotspot {
            data_fraction: 0.2,
            op_fraction: 0.8,
        },
        DistributionSpec::Exponential {
            percentile: 95.0,
            fraction: 0.857_142_857_1,
        },
        DistributionSpec::LeftSkewed { exponent: 3.0 },
        DistributionSpec::RightSkewed { exponent: 3.0 },
        DistributionSpec::Clustered {
            clusters: 16,
            fill: 0.5,
        },
        DistributionSpec::TimeSeries {
            burst_len_mean: 64.0,
            gap_len_max: 1024,
        },
    ]
}

#[test]
fn every_distribution_sets_up_at_1e9_and_stays_below_n() -> Result<()> {
    for n in [1_u64, 2, 1_000_000_000, 1 << 40] {
        for spec in every_spec() {
            if matches!(spec, DistributionSpec::Clustered { .. }) && n < 16 {
                continue; // more clusters than keys is rejected by design
            }
            draw(&spec, n, 10_000, SEED).map_err(|e| e.context(format!("{spec:?} n={n}")))?;
        }
    }
    Ok(())
}

#[test]
fn every_distribution_is_deterministic_per_seed() -> Result<()> {
    for spec in every_spec() {
        let a = draw(&spec, 1_000_000, 1000, SEED)?;
        let b = draw(&spec, 1_000_000, 1000, SEED)?;
        let c = draw(&spec, 1_000_000, 1000, SEED + 1)?;
        ensure!(a == b, "{spec:?} differs for one seed");
        if !matches!(spec, DistributionSpec::Sequential { .. }) {
            ensure!(a != c, "{spec:?} ignores the seed");
        }
    }
    Ok(())
}

// The checks above must be able to fail: each wrong generator below is rejected.

#[test]
fn checker_rejects_uniform_samples_as_zipfian() -> Result<()> {
    let n = 1000;
    let observed = counts(&DistributionSpec::Uniform {}, n, SAMPLES, SEED)?;
    ensure!(
        !chi_square(&observed, &zipf_pmf(n, 0.99)).passes(),
        "uniform accepted as zipfian"
    );
    Ok(())
}

#[test]
fn checker_rejects_ycsb_zipfian_as_exact() -> Result<()> {
    let n = 1_000_000_000;
    let samples = draw(&zipfian(0.99, ZipfMethod::Ycsb), n, SAMPLES, SEED)?;
    let edges = log_edges(n);
    let z = zeta(n, 0.99);
    let probs: Vec<f64> = edges
        .windows(2)
        .map(|w| (zeta(w[1], 0.99) - zeta(w[0], 0.99)) / z)
        .collect();
    ensure!(
        !chi_square(&binned(&samples, &edges), &probs).passes(),
        "ycsb accepted as exact"
    );
    Ok(())
}

#[test]
fn checker_rejects_a_slightly_wrong_theta_and_off_by_one() -> Result<()> {
    let n = 1000;
    let observed = counts(&zipfian(0.99, ZipfMethod::Exact), n, SAMPLES, SEED)?;
    ensure!(
        !chi_square(&observed, &zipf_pmf(n, 0.9)).passes(),
        "theta 0.99 accepted as 0.9"
    );
    let mut shifted = zipf_pmf(n, 0.99);
    shifted.rotate_right(1); // an off-by-one in rank -> index mapping
    ensure!(
        !chi_square(&observed, &shifted).passes(),
        "off-by-one accepted"
    );
    Ok(())
}

#[test]
fn ks_rejects_wrong_exponent() -> Result<()> {
    let n = 1_000_000_000_u64;
    let mut samples = draw(
        &DistributionSpec::RightSkewed { exponent: 2.1 },
        n,
        SAMPLES,
        SEED,
    )?;
    let cdf = |x: u64| ((x + 1) as f64 / n as f64).sqrt();
    ensure!(
        ks_distance(&mut samples, cdf) > ks_critical(SAMPLES),
        "exponent 2.1 accepted as 2"
    );
    Ok(())
}
