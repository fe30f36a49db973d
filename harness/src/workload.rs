//! Workloads: what operations a run issues, on which key indexes, in what proportions.
//!
//! A [`WorkloadSpec`] is deserialised from a TOML table (e.g. `[workload]`, with
//! `[workload.distribution]`, `[workload.value_size]`, `[workload.key_encoding]`,
//! `[workload.mix]`, `[workload.scan_len]` sub-tables) and resolved into a validated
//! [`Workload`]. Each worker thread draws operations from its own [`OpStream`], seeded from
//! `(seed, thread)`; load-phase indexes come from [`LoadStream`].
//!
//! Determinism: a thread's stream of operation kinds, sampled keys and scan lengths depends only
//! on `(seed, thread)`. Insert indexes come from the shared [`KeySpace`] counter and `latest`
//! follows acknowledged inserts, so with several threads those depend on interleaving; with one
//! thread the whole run is a function of the seed.
//!
//! API stability: the public items below are what the driver builds on; changes are noted here.
//! Changes since the first commit (9f00682): additive only (`gen::value_key_index`).

use crate::gen::dist::KEYS_MAX;
use crate::gen::{
    derive_seed, mix64, DistributionSpec, GenError, HarnessRng, KeyEncoder, KeyEncodingSpec,
    KeySampler, KeySpace, ValueGen, ValueSizeSpec,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Longest scan: a million rows per operation already dwarfs every other operation.
pub const SCAN_LEN_MAX: u64 = 1_000_000;
/// Most keys in one multi-key transaction: engines bound transaction size, and a transaction
/// buffer of this many keys stays small.
pub const TXN_KEYS_MAX: u64 = 1024;
/// Longest run duration: one week; a longer soak should be split into runs.
pub const DURATION_S_MAX: f64 = 7.0 * 24.0 * 3600.0;

/// One operation with its key indexes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    /// Point read.
    Read { key: u64 },
    /// Overwrite of an existing key with a new version.
    Update { key: u64 },
    /// Write of a fresh key (index from the shared insert counter); acknowledge it in the
    /// key space once it succeeded.
    Insert { key: u64 },
    /// Range read of up to `len` keys starting at `start`.
    Scan { start: u64, len: u64 },
    /// Read a key, then write a new version of it (in one transaction where supported).
    ReadModifyWrite { key: u64 },
    /// Point delete.
    Delete { key: u64 },
    /// Read then write every key in one transaction. Keys are distinct and ascending (a
    /// global order, so lock-based engines cannot deadlock on them).
    Txn { keys: Vec<u64> },
}

/// The kind of an [`Op`], for counters and histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Read,
    Update,
    Insert,
    Scan,
    ReadModifyWrite,
    Delete,
    Txn,
}

impl OpKind {
    /// Every kind, in [`Mix`] field order.
    pub const ALL: [OpKind; 7] = [
        OpKind::Read,
        OpKind::Update,
        OpKind::Insert,
        OpKind::Scan,
        OpKind::ReadModifyWrite,
        OpKind::Delete,
        OpKind::Txn,
    ];

    /// Upper-case name as YCSB prints it (`READ`, `UPDATE`, ..., `READ-MODIFY-WRITE`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "READ",
            OpKind::Update => "UPDATE",
            OpKind::Insert => "INSERT",
            OpKind::Scan => "SCAN",
            OpKind::ReadModifyWrite => "READ-MODIFY-WRITE",
            OpKind::Delete => "DELETE",
            OpKind::Txn => "TXN",
        }
    }
}

impl Op {
    /// This operation's kind.
    #[must_use]
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Update { .. } => OpKind::Update,
            Op::Insert { .. } => OpKind::Insert,
            Op::Scan { .. } => OpKind::Scan,
            Op::ReadModifyWrite { .. } => OpKind::ReadModifyWrite,
            Op::Delete { .. } => OpKind::Delete,
            Op::Txn { .. } => OpKind::Txn,
        }
    }
}

/// Relative operation weights (need not sum to 1; at least one must be positive).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    pub read: f64,
    pub update: f64,
    pub insert: f64,
    pub scan: f64,
    pub read_modify_write: f64,
    pub delete: f64,
    pub txn: f64,
}

impl Mix {
    /// Weights in [`OpKind::ALL`] order.
    #[must_use]
    pub fn weights(&self) -> [f64; 7] {
        [
            self.read,
            self.update,
            self.insert,
            self.scan,
            self.read_modify_write,
            self.delete,
            self.txn,
        ]
    }

    /// The weight of `kind` divided by the total.
    #[must_use]
    pub fn fraction(&self, kind: OpKind) -> f64 {
        let w = self.weights();
        let total: f64 = w.iter().sum();
        let at = OpKind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
        if total > 0.0 {
            w[at] / total
        } else {
            0.0
        }
    }

    fn validate(&self) -> Result<(), GenError> {
        let w = self.weights();
        if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(GenError::param("mix", "weights must be finite and >= 0"));
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(GenError::param(
                "mix",
                "at least one weight must be positive",
            ));
        }
        Ok(())
    }
}

/// The YCSB core workloads (workloads/workloada..f).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 50% read, 50% update, zipfian.
    #[serde(alias = "A")]
    A,
    /// 95% read, 5% update, zipfian.
    #[serde(alias = "B")]
    B,
    /// 100% read, zipfian.
    #[serde(alias = "C")]
    C,
    /// 95% read, 5% insert, latest.
    #[serde(alias = "D")]
    D,
    /// 95% scan (length uniform 1..=100), 5% insert, zipfian.
    #[serde(alias = "E")]
    E,
    /// 50% read, 50% read-modify-write, zipfian.
    #[serde(alias = "F")]
    F,
}

impl Preset {
    /// The preset's operation mix.
    #[must_use]
    pub fn mix(self) -> Mix {
        let m = Mix::default();
        match self {
            Preset::A => Mix {
                read: 0.5,
                update: 0.5,
                ..m
            },
            Preset::B => Mix {
                read: 0.95,
                update: 0.05,
                ..m
            },
            Preset::C => Mix { read: 1.0, ..m },
            Preset::D => Mix {
                read: 0.95,
                insert: 0.05,
                ..m
            },
            Preset::E => Mix {
                scan: 0.95,
                insert: 0.05,
                ..m
            },
            Preset::F => Mix {
                read: 0.5,
                read_modify_write: 0.5,
                ..m
            },
        }
    }

    /// The preset's key distribution: `latest` for D, otherwise `zipfian` (theta 0.99, exact
    /// method; set `distribution = { name = "scrambled_zipfian" }` for YCSB's exact key choice).
    #[must_use]
    pub fn distribution(self) -> DistributionSpec {
        match self {
            Preset::D => DistributionSpec::Latest {
                theta: 0.99,
                method: crate::gen::ZipfMethod::Exact,
            },
            _ => DistributionSpec::default(),
        }
    }
}

/// Scan length, uniform in `min..=max` (defaults 1 and 100, as YCSB workload E).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanLenSpec {
    pub min: u64,
    pub max: u64,
}

impl Default for ScanLenSpec {
    fn default() -> Self {
        Self { min: 1, max: 100 }
    }
}

/// Order of the load phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadOrder {
    /// `0, 1, 2, ...` (each thread a contiguous slice).
    #[default]
    Sequential,
    /// A seeded pseudo-random permutation of `0..record_count`, O(1) memory.
    Shuffled,
}

const fn record_count_default() -> u64 {
    1000
}
const fn txn_keys_default() -> u64 {
    4
}

/// A workload as written in TOML. Unset fields take the preset's value, then the defaults.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// YCSB preset "a".."f" supplying mix and distribution unless given explicitly.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Keys loaded before the run phase (default 1000, YCSB's recordcount).
    #[serde(default = "record_count_default")]
    pub record_count: u64,
    /// Operation weights; overrides the preset's.
    #[serde(default)]
    pub mix: Option<Mix>,
    /// Key distribution; overrides the preset's (default zipfian, theta 0.99).
    #[serde(default)]
    pub distribution: Option<DistributionSpec>,
    /// Scan lengths.
    #[serde(default)]
    pub scan_len: ScanLenSpec,
    /// Keys per multi-key transaction (default 4; duplicates drawn are merged).
    #[serde(default = "txn_keys_default")]
    pub txn_keys: u64,
    /// Value sizes (default fixed 100 bytes).
    #[serde(default)]
    pub value_size: ValueSizeSpec,
    /// Key bytes (default big-endian u64).
    #[serde(default)]
    pub key_encoding: KeyEncodingSpec,
    /// Load phase order.
    #[serde(default)]
    pub load_order: LoadOrder,
    /// Run-phase operations over all threads (warm-up excluded). The run stops at whichever
    /// of `op_count` and `duration_s` comes first; at least one must be set.
    #[serde(default)]
    pub op_count: Option<u64>,
    /// Run-phase wall time in seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Operations over all threads run before measuring starts, not recorded.
    #[serde(default)]
    pub warmup_ops: u64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            preset: None,
            record_count: record_count_default(),
            mix: None,
            distribution: None,
            scan_len: ScanLenSpec::default(),
            txn_keys: txn_keys_default(),
            value_size: ValueSizeSpec::default(),
            key_encoding: KeyEncodingSpec::default(),
            load_order: LoadOrder::default(),
            op_count: None,
            duration_s: None,
            warmup_ops: 0,
        }
    }
}

impl WorkloadSpec {
    /// The YCSB preset with `record_count` keys and `op_count` operations.
    #[must_use]
    pub fn ycsb(preset: Preset, record_count: u64, op_count: u64) -> Self {
        Self {
            preset: Some(preset),
            record_count,
            op_count: Some(op_count),
            ..Self::default()
        }
    }
}

/// A validated workload with the preset resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    spec: WorkloadSpec,
    mix: Mix,
    distribution: DistributionSpec,
}

impl Workload {
    /// Resolves the preset and checks every field and generator spec.
    pub fn from_spec(spec: &WorkloadSpec) -> Result<Self, GenError> {
        let mix = match (&spec.mix, spec.preset) {
            (Some(mix), _) => mix.clone(),
            (None, Some(preset)) => preset.mix(),
            (None, None) => return Err(GenError::param("mix", "give a preset or a mix")),
        };
        mix.validate()?;
        let distribution = match (&spec.distribution, spec.preset) {
            (Some(d), _) => d.clone(),
            (None, Some(preset)) => preset.distribution(),
            (None, None) => DistributionSpec::default(),
        };
        if spec.record_count == 0 || spec.record_count > KEYS_MAX {
            return Err(GenError::param(
                "record_count",
                format!("must be in 1..={KEYS_MAX}"),
            ));
        }
        let scan = &spec.scan_len;
        if scan.min == 0 || scan.min > scan.max || scan.max > SCAN_LEN_MAX {
            return Err(GenError::param(
                "scan_len",
                format!("need 1 <= min <= max <= {SCAN_LEN_MAX}"),
            ));
        }
        if spec.txn_keys == 0 || spec.txn_keys > TXN_KEYS_MAX {
            return Err(GenError::param(
                "txn_keys",
                format!("must be in 1..={TXN_KEYS_MAX}"),
            ));
        }
        match (spec.op_count, spec.duration_s) {
            (None, None) => return Err(GenError::param("op_count", "set op_count or duration_s")),
            (_, Some(d)) if !(d > 0.0 && d <= DURATION_S_MAX) => {
                return Err(GenError::param(
                    "duration_s",
                    format!("must be in (0, {DURATION_S_MAX}]"),
                ));
            }
            _ => {}
        }
        // Build every generator once so a bad spec fails here, not in a worker thread.
        KeySampler::new(&distribution, spec.record_count)?;
        ValueGen::new(&spec.value_size, 0)?;
        KeyEncoder::new(&spec.key_encoding, 0)?;
        Ok(Self {
            spec: spec.clone(),
            mix,
            distribution,
        })
    }

    /// The spec as given.
    #[must_use]
    pub fn spec(&self) -> &WorkloadSpec {
        &self.spec
    }

    /// The resolved operation mix.
    #[must_use]
    pub fn mix(&self) -> &Mix {
        &self.mix
    }

    /// The resolved key distribution.
    #[must_use]
    pub fn distribution(&self) -> &DistributionSpec {
        &self.distribution
    }

    /// Keys loaded before the run.
    #[must_use]
    pub fn record_count(&self) -> u64 {
        self.spec.record_count
    }

    /// Run duration bound, if any.
    #[must_use]
    pub fn duration(&self) -> Option<Duration> {
        self.spec.duration_s.map(Duration::from_secs_f64)
    }

    /// A fresh key space for a run (share it, in an `Arc`, between all threads).
    #[must_use]
    pub fn key_space(&self) -> Arc<KeySpace> {
        Arc::new(KeySpace::new(self.spec.record_count))
    }

    /// The key encoder for `seed`.
    pub fn key_encoder(&self, seed: u64) -> Result<KeyEncoder, GenError> {
        KeyEncoder::new(&self.spec.key_encoding, seed)
    }

    /// The value generator for `seed`.
    pub fn value_gen(&self, seed: u64) -> Result<ValueGen, GenError> {
        ValueGen::new(&self.spec.value_size, seed)
    }

    /// Thread `thread`'s share of `op_count` over `threads` threads (shares differ by at most
    /// one and sum to `op_count`); `None` when the run is bound by duration only.
    #[must_use]
    pub fn ops_for_thread(&self, thread: u64, threads: u64) -> Option<u64> {
        self.spec
            .op_count
            .map(|total| share(total, thread, threads))
    }

    /// Thread `thread`'s share of the warm-up operations.
    #[must_use]
    pub fn warmup_ops_for_thread(&self, thread: u64, threads: u64) -> u64 {
        share(self.spec.warmup_ops, thread, threads)
    }

    /// Thread `thread`'s operation stream for a run seeded with `seed`.
    pub fn op_stream(
        &self,
        seed: u64,
        thread: u64,
        space: &Arc<KeySpace>,
    ) -> Result<OpStream, GenError> {
        OpStream::new(self, seed, thread, space)
    }

    /// Thread `thread`'s slice of the load phase (of `threads`), in the configured order.
    #[must_use]
    pub fn load_stream(&self, seed: u64, thread: u64, threads: u64) -> LoadStream {
        LoadStream::new(
            self.spec.record_count,
            self.spec.load_order,
            seed,
            thread,
            threads,
        )
    }
}

/// `thread`'s part of `total` split over `threads`: the first `total % threads` get one extra.
fn share(total: u64, thread: u64, threads: u64) -> u64 {
    assert!(
        threads > 0 && thread < threads,
        "thread {thread} of {threads}"
    );
    total / threads + u64::from(thread < total % threads)
}

/// `thread`'s range of positions `[start, end)` in `0..n` split over `threads`.
fn slice(n: u64, thread: u64, threads: u64) -> (u64, u64) {
    assert!(
        threads > 0 && thread < threads,
        "thread {thread} of {threads}"
    );
    let at = |t: u64| (u128::from(n) * u128::from(t) / u128::from(threads)) as u64;
    (at(thread), at(thread + 1))
}

/// Deterministic per-thread operation generator; also an endless `Iterator<Item = Op>`.
#[derive(Clone, Debug)]
pub struct OpStream {
    rng: HarnessRng,
    sampler: KeySampler,
    space: Arc<KeySpace>,
    /// Cumulative fractions in [`OpKind::ALL`] order, the last exactly 1.
    cumulative: [f64; 7],
    scan_len_min: u64,
    scan_len_span: u64,
    txn_keys: u64,
}

impl OpStream {
    /// The stream of thread `thread` for `seed`; inserts draw from `space`.
    pub fn new(
        workload: &Workload,
        seed: u64,
        thread: u64,
        space: &Arc<KeySpace>,
    ) -> Result<Self, GenError> {
        let weights = workload.mix.weights();
        let total: f64 = weights.iter().sum();
        let mut cumulative = [0.0; 7];
        let mut acc = 0.0;
        for (c, w) in cumulative.iter_mut().zip(weights) {
            acc += w / total;
            *c = acc;
        }
        // Kinds with zero weight after the last positive one must never be chosen: pin the
        // tail to exactly 1 from the last positive weight on.
        let last = weights.iter().rposition(|&w| w > 0.0).unwrap_or(6);
        for c in &mut cumulative[last..] {
            *c = 1.0;
        }
        let scan = &workload.spec.scan_len;
        Ok(Self {
            rng: HarnessRng::for_thread(seed, thread),
            sampler: KeySampler::with_key_space(&workload.distribution, space)?,
            space: Arc::clone(space),
            cumulative,
            scan_len_min: scan.min,
            scan_len_span: scan.max - scan.min + 1,
            txn_keys: workload.spec.txn_keys,
        })
    }

    /// The next operation kind.
    #[inline]
    fn next_kind(&mut self) -> OpKind {
        let u = self.rng.unit_f64();
        let at = self.cumulative.iter().position(|&c| u < c).unwrap_or(6);
        debug_assert!(self.cumulative[at] > 0.0);
        OpKind::ALL[at]
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        match self.next_kind() {
            OpKind::Read => Op::Read {
                key: self.sampler.sample(&mut self.rng),
            },
            OpKind::Update => Op::Update {
                key: self.sampler.sample(&mut self.rng),
            },
            OpKind::Insert => Op::Insert {
                key: self.space.allocate_insert(),
            },
            OpKind::Scan => {
                let start = self.sampler.sample(&mut self.rng);
                let len = self.scan_len_min + self.rng.below(self.scan_len_span);
                Op::Scan { start, len }
            }
            OpKind::ReadModifyWrite => Op::ReadModifyWrite {
                key: self.sampler.sample(&mut self.rng),
            },
            OpKind::Delete => Op::Delete {
                key: self.sampler.sample(&mut self.rng),
            },
            OpKind::Txn => {
                let mut keys: Vec<u64> = (0..self.txn_keys)
                    .map(|_| self.sampler.sample(&mut self.rng))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                debug_assert!(!keys.is_empty());
                Op::Txn { keys }
            }
        }
    }

    /// The key space this stream inserts into (acknowledge inserts here).
    #[must_use]
    pub fn key_space(&self) -> &Arc<KeySpace> {
        &self.space
    }
}

impl Iterator for OpStream {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        Some(self.next_op())
    }
}

/// A seeded bijection on `0..n` with O(1) memory: a 4-round Feistel network on the smallest
/// even bit width covering `n`, cycle-walking values that land outside (fewer than 4 steps
/// on average, since the domain is less than 4n).
#[derive(Clone, Debug)]
pub struct IndexPermutation {
    n: u64,
    half_bits: u32,
    round_keys: [u64; 4],
}

/// Feistel rounds: 4 rounds of a strong round function make a good pseudo-random permutation.
const FEISTEL_ROUNDS: usize = 4;

impl IndexPermutation {
    /// The permutation of `0..n` for `seed`.
    #[must_use]
    pub fn new(n: u64, seed: u64) -> Self {
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let half_bits = bits.div_ceil(2);
        let mut round_keys = [0; FEISTEL_ROUNDS];
        for (i, k) in round_keys.iter_mut().enumerate() {
            *k = derive_seed(seed, 0x7065_726D_0000 + i as u64); // "perm"
        }
        Self {
            n,
            half_bits,
            round_keys,
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1_u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.round_keys {
            let next = left ^ (mix64(right ^ key) & mask);
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }

    /// The image of `i` (`i < n`).
    #[must_use]
    pub fn apply(&self, i: u64) -> u64 {
        assert!(i < self.n, "{i} outside 0..{}", self.n);
        let mut x = self.feistel(i);
        while x >= self.n {
            x = self.feistel(x);
        }
        x
    }
}

/// Thread `thread`'s load-phase indexes: a contiguous slice of positions `0..record_count`,
/// mapped through the permutation when shuffled.
#[derive(Clone, Debug)]
pub struct LoadStream {
    next: u64,
    end: u64,
    permutation: Option<IndexPermutation>,
}

impl LoadStream {
    /// See [`Workload::load_stream`].
    #[must_use]
    pub fn new(record_count: u64, order: LoadOrder, seed: u64, thread: u64, threads: u64) -> Self {
        let (next, end) = slice(record_count, thread, threads);
        let permutation = match order {
            LoadOrder::Sequential => None,
            LoadOrder::Shuffled => Some(IndexPermutation::new(record_count, seed)),
        };
        Self {
            next,
            end,
            permutation,
        }
    }

    /// Indexes left in this slice.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.end - self.next
    }
}

impl Iterator for LoadStream {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let position = self.next;
        self.next += 1;
        Some(match &self.permutation {
            Some(p) => p.apply(position),
            None => position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn kind_fractions(workload: &Workload, ops: usize) -> Result<[f64; 7], GenError> {
        let space = workload.key_space();
        let mut stream = workload.op_stream(5, 0, &space)?;
        let mut counts = [0_usize; 7];
        for op in stream.by_ref().take(ops) {
            let at = OpKind::ALL
                .iter()
                .position(|&k| k == op.kind())
                .unwrap_or(0);
            counts[at] += 1;
        }
        Ok(counts.map(|c| c as f64 / ops as f64))
    }

    #[test]
    fn presets_match_ycsb() -> Result<(), GenError> {
        let expected: [(Preset, [f64; 7]); 6] = [
            (Preset::A, [0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]),
            (Preset::B, [0.95, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0]),
            (Preset::C, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            (Preset::D, [0.95, 0.0, 0.05, 0.0, 0.0, 0.0, 0.0]),
            (Preset::E, [0.0, 0.0, 0.05, 0.95, 0.0, 0.0, 0.0]),
            (Preset::F, [0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0]),
        ];
        for (preset, fractions) in expected {
            let workload = Workload::from_spec(&WorkloadSpec::ycsb(preset, 1000, 1000))?;
            assert_eq!(workload.mix().weights(), fractions);
            let measured = kind_fractions(&workload, 100_000)?;
            for (m, f) in measured.iter().zip(fractions) {
                // Binomial standard error at 1e5 ops is at most 0.0016; allow 6 of them.
                assert!((m - f).abs() < 0.01, "{preset:?}: {measured:?}");
                assert!(f > 0.0 || *m == 0.0, "{preset:?}: zero-weight kind drawn");
            }
        }
        let d = Workload::from_spec(&WorkloadSpec::ycsb(Preset::D, 10, 10))?;
        assert_eq!(d.distribution().name(), "latest");
        Ok(())
    }

    #[test]
    fn workload_e_scans_are_1_to_100_and_inserts_are_fresh() -> Result<(), GenError> {
        let workload = Workload::from_spec(&WorkloadSpec::ycsb(Preset::E, 1000, 1000))?;
        let space = workload.key_space();
        let mut lens = HashSet::new();
        let mut inserted = Vec::new();
        for op in workload.op_stream(9, 0, &space)?.take(50_000) {
            match op {
                Op::Scan { start, len } => {
                    assert!(start < 1000 && (1..=100).contains(&len));
                    lens.insert(len);
                }
                Op::Insert { key } => inserted.push(key),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(lens.len(), 100);
        let expected: Vec<u64> = (1000..1000 + inserted.len() as u64).collect();
        assert_eq!(inserted, expected);
        Ok(())
    }

    #[test]
    fn workload_d_reads_follow_acknowledged_inserts() -> Result<(), GenError> {
        let workload = Workload::from_spec(&WorkloadSpec::ycsb(Preset::D, 1000, 1000))?;
        let space = workload.key_space();
        let mut stream = workload.op_stream(11, 0, &space)?;
        let (mut reads_of_new, mut reads) = (0, 0);
        for _ in 0..20_000 {
            match stream.next_op() {
                Op::Insert { key } => space.acknowledge_insert(key),
                Op::Read { key } => {
                    assert!(key < space.acked_count(), "read of unacknowledged {key}");
                    reads += 1;
                    reads_of_new += u32::from(key >= 1000);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // About 1000 inserts: the newest keys take most reads (P[rank < 1000] > 0.7 here).
        assert!(space.acked_count() > 1500);
        assert!(
            f64::from(reads_of_new) > 0.5 * f64::from(reads),
            "{reads_of_new}/{reads}"
        );
        Ok(())
    }

    #[test]
    fn streams_are_deterministic_per_seed_and_thread() -> Result<(), GenError> {
        let spec: WorkloadSpec = toml::from_str(
            "record_count = 100000\nop_count = 10\n[mix]\nread = 1\nupdate = 1\nscan = 1\ntxn = 1\ndelete = 1",
        )
        .map_err(|e| GenError::param("toml", e.to_string()))?;
        let workload = Workload::from_spec(&spec)?;
        let run = |seed, thread| -> Result<Vec<Op>, GenError> {
            Ok(workload
                .op_stream(seed, thread, &workload.key_space())?
                .take(2000)
                .collect())
        };
        assert_eq!(run(1, 0)?, run(1, 0)?);
        assert_ne!(run(1, 0)?, run(1, 1)?);
        assert_ne!(run(1, 0)?, run(2, 0)?);
        for op in run(1, 0)? {
            if let Op::Txn { keys } = op {
                assert!(!keys.is_empty() && keys.len() <= 4);
                assert!(keys.windows(2).all(|w| w[0] < w[1]));
            }
        }
        Ok(())
    }

    #[test]
    fn toml_tables_embed_and_reject_unknown_fields() -> Result<(), toml::de::Error> {
        #[derive(Deserialize)]
        struct Scenario {
            workload: WorkloadSpec,
        }
        let text = r#"
            [workload]
            preset = "a"
            record_count = 1000000
            duration_s = 30
            warmup_ops = 1000
            load_order = "shuffled"
            [workload.distribution]
            name = "zipfian"
            theta = 0.8
            method = "ycsb"
            [workload.value_size]
            name = "uniform"
            min = 100
            max = 200
            [workload.key_encoding]
            name = "ycsb"
        "#;
        let scenario: Scenario = toml::from_str(text)?;
        let w = scenario.workload;
        assert_eq!(w.preset, Some(Preset::A));
        assert_eq!(w.value_size, ValueSizeSpec::Uniform { min: 100, max: 200 });
        assert_eq!(w.load_order, LoadOrder::Shuffled);
        assert!(Workload::from_spec(&w).is_ok());
        assert!(toml::from_str::<Scenario>("[workload]\npreset = \"a\"\nrecords = 5").is_err());
        assert!(toml::from_str::<Scenario>("[workload]\n[workload.mix]\nreed = 1").is_err());
        Ok(())
    }

    #[test]
    fn invalid_workloads_are_rejected() {
        let base = WorkloadSpec::ycsb(Preset::A, 1000, 1000);
        let bad = [
            WorkloadSpec {
                preset: None,
                ..base.clone()
            },
            WorkloadSpec {
                record_count: 0,
                ..base.clone()
            },
            WorkloadSpec {
                op_count: None,
                ..base.clone()
            },
            WorkloadSpec {
                duration_s: Some(-1.0),
                ..base.clone()
            },
            WorkloadSpec {
                txn_keys: 0,
                ..base.clone()
            },
            WorkloadSpec {
                scan_len: ScanLenSpec { min: 0, max: 5 },
                ..base.clone()
            },
            WorkloadSpec {
                mix: Some(Mix::default()),
                ..base.clone()
            },
            WorkloadSpec {
                mix: Some(Mix {
                    read: f64::NAN,
                    ..Mix::default()
                }),
                ..base.clone()
            },
            WorkloadSpec {
                value_size: ValueSizeSpec::Fixed { bytes: 1 },
                ..base.clone()
            },
        ];
        for spec in bad {
            assert!(Workload::from_spec(&spec).is_err(), "{spec:?} accepted");
        }
    }

    #[test]
    fn load_streams_cover_every_index_once() -> Result<(), GenError> {
        for (n, threads) in [(1_u64, 1_u64), (1000, 3), (4097, 4), (10, 16)] {
            for order in [LoadOrder::Sequential, LoadOrder::Shuffled] {
                let mut seen = vec![false; n as usize];
                for thread in 0..threads {
                    for index in LoadStream::new(n, order, 77, thread, threads) {
                        assert!(!seen[index as usize], "{index} twice");
                        seen[index as usize] = true;
                    }
                }
                assert!(seen.iter().all(|&s| s), "n={n} {order:?}");
            }
        }
        let shuffled: Vec<u64> = LoadStream::new(1000, LoadOrder::Shuffled, 77, 0, 1).collect();
        let sorted_runs = shuffled.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(sorted_runs < 50, "shuffle looks sequential: {sorted_runs}");
        Ok(())
    }

    #[test]
    fn shares_sum_to_totals() -> Result<(), GenError> {
        let spec = WorkloadSpec {
            warmup_ops: 10,
            ..WorkloadSpec::ycsb(Preset::C, 10, 1001)
        };
        let w = Workload::from_spec(&spec)?;
        let ops: u64 = (0..4).filter_map(|t| w.ops_for_thread(t, 4)).sum();
        let warm: u64 = (0..4).map(|t| w.warmup_ops_for_thread(t, 4)).sum();
        assert_eq!((ops, warm), (1001, 10));
        Ok(())
    }
}
