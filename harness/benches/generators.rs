//! Generator throughput: key samples per second for every distribution, key encodings and
//! value generation/verification. Target: at least 20M key samples/s per thread.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use harness::gen::dist::SCRAMBLED_ITEMS_DEFAULT;
use harness::gen::{
    generate_value, verify_value, DistributionSpec, HarnessRng, KeyEncoder, KeyEncodingSpec,
    KeySampler, ZipfMethod,
};
use harness::workload::{Preset, Workload, WorkloadSpec};
use std::hint::black_box;

/// Samples per measured iteration: large enough that loop overhead is negligible.
const BATCH: u64 = 10_000;
const N: u64 = 1_000_000_000;

fn specs() -> Vec<(&'static str, DistributionSpec)> {
    vec![
        ("uniform", DistributionSpec::Uniform {}),
        ("sequential", DistributionSpec::Sequential { start: 0 }),
        (
            "zipfian_exact",
            DistributionSpec::Zipfian {
                theta: 0.99,
                method: ZipfMethod::Exact,
            },
        ),
        (
            "zipfian_ycsb",
            DistributionSpec::Zipfian {
                theta: 0.99,
                method: ZipfMethod::Ycsb,
            },
        ),
        (
            "scrambled_zipfian",
            DistributionSpec::ScrambledZipfian {
                theta: 0.99,
                method: ZipfMethod::Ycsb,
                items: SCRAMBLED_ITEMS_DEFAULT,
            },
        ),
        (
            "latest",
            DistributionSpec::Latest {
                theta: 0.99,
                method: ZipfMethod::Exact,
            },
        ),
        (
            "latest_ycsb",
            DistributionSpec::Latest {
                theta: 0.99,
                method: ZipfMethod::Ycsb,
            },
        ),
        (
            "hotspot",
            DistributionSpec::Hotspot {
                data_fraction: 0.2,
                op_fraction: 0.8,
            },
        ),
        (
            "exponential",
            DistributionSpec::Exponential {
                percentile: 95.0,
                fraction: 0.857_142_857_1,
            },
        ),
        (
            "right_skewed",
            DistributionSpec::RightSkewed { exponent: 3.0 },
        ),
        (
            "clustered",
            DistributionSpec::Clustered {
                clusters: 16,
                fill: 0.5,
            },
        ),
        (
            "time_series",
            DistributionSpec::TimeSeries {
                burst_len_mean: 64.0,
                gap_len_max: 1024,
            },
        ),
    ]
}

fn bench_distributions(c: &mut Criterion) {
    let mut group = c.benchmark_group("sample_1e9");
    group.throughput(Throughput::Elements(BATCH));
    for (name, spec) in specs() {
        let Ok(mut sampler) = KeySampler::new(&spec, N) else {
            eprintln!("skipping {name}: spec rejected");
            continue;
        };
        let mut rng = HarnessRng::from_seed(1);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut acc = 0_u64;
                for _ in 0..BATCH {
                    acc ^= sampler.sample(&mut rng);
                }
                black_box(acc)
            });
        });
    }
    group.finish();
}

fn bench_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_key");
    group.throughput(Throughput::Elements(BATCH));
    let encodings = [
        ("be_u64", KeyEncodingSpec::BeU64 {}),
        (
            "ycsb",
            KeyEncodingSpec::Ycsb {
                hashed: false,
                pad_digits: 20,
            },
        ),
        (
            "ycsb_hashed",
            KeyEncodingSpec::Ycsb {
                hashed: true,
                pad_digits: 0,
            },
        ),
        ("uuid_v4", KeyEncodingSpec::UuidV4 {}),
        ("uuid_v7", KeyEncodingSpec::UuidV7 {}),
        ("random_24", KeyEncodingSpec::Random { len: 24 }),
    ];
    for (name, spec) in encodings {
        let Ok(encoder) = KeyEncoder::new(&spec, 1) else {
            continue;
        };
        let mut out = Vec::with_capacity(encoder.key_bytes_max());
        group.bench_function(name, |b| {
            let mut index = 0_u64;
            b.iter(|| {
                for _ in 0..BATCH {
                    encoder.encode(index, &mut out);
                    index += 1;
                }
                black_box(out.len())
            });
        });
    }
    group.finish();
}

fn bench_values(c: &mut Criterion) {
    let mut group = c.benchmark_group("value");
    for len in [150_usize, 4096] {
        group.throughput(Throughput::Bytes(len as u64));
        let mut out = Vec::with_capacity(len);
        group.bench_with_input(BenchmarkId::new("generate", len), &len, |b, &len| {
            let mut index = 0_u64;
            b.iter(|| {
                generate_value(index, 1, 7, len, &mut out);
                index += 1;
                black_box(out.len())
            });
        });
        generate_value(3, 1, 7, len, &mut out);
        group.bench_with_input(BenchmarkId::new("verify", len), &out, |b, value| {
            b.iter(|| black_box(verify_value(3, 7, value).is_ok()));
        });
    }
    group.finish();
}

fn bench_op_stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("op_stream");
    group.throughput(Throughput::Elements(BATCH));
    let Ok(workload) = Workload::from_spec(&WorkloadSpec::ycsb(Preset::A, N, 1)) else {
        return;
    };
    let space = workload.key_space();
    let Ok(mut stream) = workload.op_stream(1, 0, &space) else {
        return;
    };
    group.bench_function("ycsb_a", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(stream.next_op());
            }
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_distributions,
    bench_keys,
    bench_values,
    bench_op_stream
);
criterion_main!(benches);
