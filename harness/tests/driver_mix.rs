//! Operation counts follow the workload's mix within binomial tolerance.

use std::sync::Arc;

use harness::adapter::{open_engine, EngineOptions};
use harness::driver::{run_phase, DataCtx, OpSource, PhaseBound, PhaseSpec, PhaseWork};
use harness::workload::{Mix, Preset, Workload, WorkloadSpec};

fn counts(
    spec: &WorkloadSpec,
    threads: usize,
    ops: u64,
) -> anyhow::Result<harness::driver::PhaseResult> {
    let dir = tempfile::tempdir()?;
    let engine = open_engine("model", dir.path(), &EngineOptions::default())?;
    let workload = Workload::from_spec(spec).map_err(|e| anyhow::anyhow!("{e}"))?;
    let keyspace = workload.key_space();
    let ctx = DataCtx {
        keys: workload
            .key_encoder(3)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        values: workload.value_gen(3).map_err(|e| anyhow::anyhow!("{e}"))?,
        keyspace: Arc::clone(&keyspace),
        verify_reads: true,
        deletes_possible: workload.mix().delete > 0.0,
        book: harness::driver::VersionBook::new(threads, keyspace.record_count()),
        key_order: None,
    };
    let load_streams = (0..threads as u64)
        .map(|t| workload.load_stream(3, t, threads as u64))
        .collect();
    let load = PhaseSpec {
        name: "load".into(),
        threads,
        bound: PhaseBound::default(),
        warmup_ops: 0,
        target_ops_s: None,
    };
    run_phase(
        engine.as_ref(),
        &ctx,
        &load,
        PhaseWork::Load {
            streams: load_streams,
            batch: 100,
        },
        &mut |_, _, _| {},
    )?;
    let mut sources: Vec<Box<dyn OpSource>> = Vec::new();
    for t in 0..threads as u64 {
        sources.push(Box::new(
            workload
                .op_stream(5, t, &keyspace)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
    }
    let run = PhaseSpec {
        name: "run".into(),
        threads,
        bound: PhaseBound::ops(ops),
        warmup_ops: 100,
        target_ops_s: None,
    };
    let result = run_phase(
        engine.as_ref(),
        &ctx,
        &run,
        PhaseWork::Run { sources },
        &mut |_, _, _| {},
    )?;
    assert_eq!(result.ops, ops, "recorded ops (warm-up excluded)");
    assert_eq!(result.verify.failed, 0, "{:?}", result.verify.details);
    Ok(result)
}

fn assert_fraction(result: &harness::driver::PhaseResult, kind: &str, expected: f64) {
    let n = result.ops as f64;
    let got = result.kind_ops.get(kind).copied().unwrap_or(0) as f64 / n;
    // Five binomial standard deviations: a false alarm about once in 3.5 million runs.
    let tolerance = 5.0 * (expected * (1.0 - expected) / n).sqrt() + 1e-9;
    assert!(
        (got - expected).abs() <= tolerance,
        "{kind}: {got:.4} vs {expected} (+-{tolerance:.4})"
    );
}

#[test]
fn ycsb_a_is_half_reads_half_updates() -> anyhow::Result<()> {
    let spec = WorkloadSpec::ycsb(Preset::A, 2000, 20_000);
    let result = counts(&spec, 2, 20_000)?;
    assert_fraction(&result, "read", 0.5);
    assert_fraction(&result, "update", 0.5);
    assert_eq!(result.kind_ops.len(), 2);
    Ok(())
}

#[test]
fn every_kind_in_a_seven_way_mix() -> anyhow::Result<()> {
    let mix = Mix {
        read: 0.3,
        update: 0.2,
        insert: 0.1,
        scan: 0.1,
        read_modify_write: 0.1,
        delete: 0.1,
        txn: 0.1,
    };
    let spec = WorkloadSpec {
        record_count: 2000,
        mix: Some(mix.clone()),
        op_count: Some(10_000),
        ..WorkloadSpec::default()
    };
    let result = counts(&spec, 3, 10_000)?;
    for (kind, expected) in [
        ("read", 0.3),
        ("update", 0.2),
        ("insert", 0.1),
        ("scan", 0.1),
        ("read_modify_write", 0.1),
        ("delete", 0.1),
        ("txn", 0.1),
    ] {
        assert_fraction(&result, kind, expected);
    }
    Ok(())
}
