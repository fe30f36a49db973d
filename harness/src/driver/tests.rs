//! Driver unit tests that need no workload module: a fixed-mix op source.

use std::time::Duration;

use super::{run_phase, DataCtx, OpSource, PhaseBound, PhaseSpec, PhaseWork};
use crate::adapter::{open_engine, EngineOptions};
use crate::gen::{KeyEncoder, KeyEncodingSpec, KeySpace, ValueGen, ValueSizeSpec};
use crate::workload::{LoadOrder, LoadStream, Op};

struct Alternate {
    n: u64,
    keys: u64,
}

impl OpSource for Alternate {
    fn next_op(&mut self) -> Op {
        self.n += 1;
        let key = self.n % self.keys;
        if self.n.is_multiple_of(2) {
            Op::Read { key }
        } else {
            Op::Update { key }
        }
    }
}

fn ctx(records: u64) -> anyhow::Result<DataCtx> {
    Ok(DataCtx {
        keys: KeyEncoder::new(&KeyEncodingSpec::default(), 7)?,
        values: ValueGen::new(&ValueSizeSpec::default(), 7)?,
        keyspace: std::sync::Arc::new(KeySpace::new(records)),
        verify_reads: true,
        deletes_possible: false,
        book: super::VersionBook::new(super::THREADS_MAX, records),
        key_order: None,
    })
}

fn spec(name: &str, threads: usize, ops: u64) -> PhaseSpec {
    PhaseSpec {
        name: name.into(),
        threads,
        bound: PhaseBound::ops(ops),
        warmup_ops: 0,
        target_ops_s: None,
    }
}

#[test]
fn load_then_run_counts_every_op_and_verifies() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = open_engine("model", dir.path(), &EngineOptions::default())?;
    let ctx = ctx(1000)?;
    let mut quiet = |_: &str, _: u64, _: Duration| {};
    let streams = (0..3)
        .map(|t| LoadStream::new(1000, LoadOrder::Shuffled, 7, t, 3))
        .collect();
    let load = PhaseWork::Load { streams, batch: 64 };
    let loaded = run_phase(engine.as_ref(), &ctx, &spec("load", 3, 0), load, &mut quiet)?;
    assert_eq!(loaded.ops, 1000);
    let sources: Vec<Box<dyn OpSource>> = (0..3)
        .map(|_| Box::new(Alternate { n: 0, keys: 1000 }) as Box<dyn OpSource>)
        .collect();
    let mut run_spec = spec("run", 3, 3000);
    run_spec.warmup_ops = 30;
    let ran = run_phase(
        engine.as_ref(),
        &ctx,
        &run_spec,
        PhaseWork::Run { sources },
        &mut quiet,
    )?;
    assert_eq!(ran.ops, 3000);
    assert_eq!(ran.kind_ops.values().sum::<u64>(), 3000);
    assert_eq!(
        ran.response
            .values()
            .map(hdrhistogram::Histogram::len)
            .sum::<u64>(),
        3000
    );
    assert_eq!(ran.verify.failed, 0, "{:?}", ran.verify.details);
    assert!(ran.verify.checked >= 1400);
    assert_eq!(ran.timeline.iter().map(|p| p.ops).sum::<u64>(), 3000);
    Ok(())
}
