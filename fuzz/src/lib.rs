//! Shared pieces of the fuzz targets: key and value builders, the model type, and reading a
//! whole table back for comparison.
//!
//! Every size is capped by a named constant so one input stays fast and bounded.

use std::collections::BTreeMap;
use std::ops::Bound;

use arbitrary::Arbitrary;
use engine::{ReadTxn, Table};

/// A table's expected content.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Distinct short keys: small enough that puts overwrite and deletes hit existing keys.
pub const KEYS_N: u16 = 512;
/// Longest key the targets build: the engine's own limit, to reach the largest cells.
pub const KEY_BYTES_MAX: usize = engine::KEY_BYTES_MAX;
/// Longest value the targets build: a few overflow pages, not 1 MiB, so one input runs in
/// milliseconds.
pub const VALUE_BYTES_MAX: usize = 24 * 1024;
/// Entries one scan may return before the target calls it a runaway cursor: far more than
/// any model holds (inputs are capped at a few hundred operations).
pub const SCAN_ENTRIES_MAX: usize = 100_000;

/// Which key an operation touches.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct KeySel(pub u16);

impl KeySel {
    /// Keys `k00000`..: one in eight is stretched to 100..=1024 bytes to reach big cells.
    #[must_use]
    pub fn bytes(self) -> Vec<u8> {
        let id = self.0 % KEYS_N;
        let mut k = format!("k{id:05}").into_bytes();
        if self.0 >> 13 == 0b111 {
            let len = (100 + usize::from((self.0 >> 9) & 0xF) * 62).min(KEY_BYTES_MAX);
            k.resize(len, b'x');
        }
        debug_assert!(k.len() <= KEY_BYTES_MAX);
        k
    }
}

/// Which value an operation writes: a size class and a fill byte.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct ValueSel {
    pub len: u8,
    pub fill: u8,
}

impl ValueSel {
    /// Sizes: empty and small (half), around the inline limit, and overflow chains.
    #[must_use]
    pub fn bytes(self, tag: &[u8]) -> Vec<u8> {
        let l = usize::from(self.len);
        let len = match self.len {
            0..=127 => l % 64,
            128..=199 => 400 + (l * 37) % 700,
            200..=239 => 950 + (l % 40) * 3,
            _ => 2000 + (l - 240) * 1400,
        };
        let mut v = tag.to_vec();
        v.truncate(len);
        v.resize(len.min(VALUE_BYTES_MAX), self.fill);
        v
    }
}

/// Every entry of `table` in `r`, by a forward scan checked against a reverse scan and
/// point reads.
///
/// # Errors
/// The first engine error (damage, I/O).
///
/// # Panics
/// When the scans disagree with each other or with point reads: a read path returned
/// wrong data without an error.
pub fn read_table(r: &ReadTxn, table: &Table) -> engine::Result<Model> {
    let mut forward = Model::new();
    for item in r.range(table, Bound::Unbounded, Bound::Unbounded, false)? {
        let (k, v) = item?;
        assert!(forward.len() < SCAN_ENTRIES_MAX, "runaway forward scan");
        forward.insert(k, v);
    }
    let mut reverse = Model::new();
    for item in r.range(table, Bound::Unbounded, Bound::Unbounded, true)? {
        let (k, v) = item?;
        assert!(reverse.len() < SCAN_ENTRIES_MAX, "runaway reverse scan");
        reverse.insert(k, v);
    }
    assert_eq!(forward, reverse, "forward and reverse scans disagree");
    for (k, v) in &forward {
        let got = r.get(table, k)?;
        assert_eq!(
            got.as_ref(),
            Some(v),
            "point read disagrees with the scan for key {k:?}"
        );
    }
    Ok(forward)
}

/// The entries of `model` between two bounds, in order (reversed when asked).
#[must_use]
pub fn model_range(
    model: &Model,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    reverse: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let above = |k: &[u8]| match lower {
        Bound::Included(b) => k >= b,
        Bound::Excluded(b) => k > b,
        Bound::Unbounded => true,
    };
    let below = |k: &[u8]| match upper {
        Bound::Included(b) => k <= b,
        Bound::Excluded(b) => k < b,
        Bound::Unbounded => true,
    };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = model
        .iter()
        .filter(|(k, _)| above(k) && below(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        out.reverse();
    }
    out
}

/// A bound built from a key and two flags.
#[must_use]
pub fn bound(key: &[u8], present: bool, inclusive: bool) -> Bound<&[u8]> {
    match (present, inclusive) {
        (false, _) => Bound::Unbounded,
        (true, true) => Bound::Included(key),
        (true, false) => Bound::Excluded(key),
    }
}

/// The engine bug named by `FUZZ_SEEDED_BUG` (see `engine::SeededBug::name`), when this crate
/// is built with the `seeded-bugs` feature; `None` otherwise. Used to show that a target's
/// checks fail on a known bug.
///
/// # Panics
/// When the variable names no seeded bug (a typo must not look like a clean run).
#[must_use]
pub fn seeded_bug() -> Option<engine::SeededBug> {
    if !cfg!(feature = "seeded-bugs") {
        return None;
    }
    let name = std::env::var("FUZZ_SEEDED_BUG").ok()?;
    match engine::SeededBug::from_name(&name) {
        Some(bug) => Some(bug),
        None => panic!("FUZZ_SEEDED_BUG={name} names no seeded bug"),
    }
}
