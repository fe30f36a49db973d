//! Tests of the B+tree on an in-memory page store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use super::node::{self, Node, NodeKind};
use super::{check, create, delete, destroy, get, insert, leaf_cell_inline_max, Cursor, TreeStats};
use crate::error::{Error, Result};
use crate::page::{PageBuf, PageKind, PageNo, PageRead, PageRef, PageWrite, PAGE_HEADER_LEN};
use crate::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// A page store in memory: page 0 is never handed out (it is the meta page).
#[derive(Clone, Debug)]
pub(super) struct MemPages {
    page_size: usize,
    pages: HashMap<PageNo, Arc<PageBuf>>,
    free: Vec<PageNo>,
    next: PageNo,
}

impl MemPages {
    pub(super) fn new(page_size: usize) -> MemPages {
        MemPages {
            page_size,
            pages: HashMap::new(),
            free: Vec::new(),
            next: 1,
        }
    }

    pub(super) fn live(&self) -> usize {
        self.pages.len()
    }

    /// Raw access for corruption tests: the whole body, bypassing copy-on-write rules.
    fn body_raw(&mut self, no: PageNo) -> Result<&mut [u8]> {
        self.page_mut(no)
    }

    fn page_numbers(&self) -> Vec<PageNo> {
        let mut v: Vec<PageNo> = self.pages.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl PageRead for MemPages {
    fn body_len(&self) -> usize {
        self.page_size - PAGE_HEADER_LEN
    }

    fn page(&self, no: PageNo) -> Result<PageRef> {
        self.pages
            .get(&no)
            .cloned()
            .map(PageRef)
            .ok_or_else(|| Error::page(no, "not allocated"))
    }
}

impl PageWrite for MemPages {
    fn page_mut(&mut self, no: PageNo) -> Result<&mut [u8]> {
        let page = self
            .pages
            .get_mut(&no)
            .ok_or_else(|| Error::page(no, "not allocated"))?;
        Ok(Arc::make_mut(page).body_mut())
    }

    fn allocate(&mut self) -> Result<PageNo> {
        let no = match self.free.pop() {
            Some(no) => no,
            None => {
                self.next += 1;
                self.next - 1
            }
        };
        self.pages
            .insert(no, Arc::new(PageBuf::zeroed(self.page_size)));
        Ok(no)
    }

    fn free(&mut self, no: PageNo) -> Result<()> {
        if self.pages.remove(&no).is_none() {
            return Err(Error::page(no, "freed twice"));
        }
        self.free.push(no);
        Ok(())
    }
}

/// Runs `check`, requiring every live page of the store to be visited exactly once (the
/// store holds one tree, so anything else is a leak or a double use).
fn check_all(tx: &MemPages, root: PageNo) -> Result<TreeStats> {
    let mut seen = HashSet::new();
    let stats = check(tx, root, &mut |no, kind| {
        if !seen.insert(no) {
            return Err(Error::page(no, format!("{kind:?} page visited twice")));
        }
        Ok(())
    })?;
    if seen.len() != tx.live() {
        return Err(Error::page(
            root,
            format!("{} pages visited, {} live", seen.len(), tx.live()),
        ));
    }
    Ok(stats)
}

fn scan(
    tx: &MemPages,
    root: PageNo,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut cursor = Cursor::new(root, lower, upper, reverse);
    let mut out = Vec::new();
    while let Some(entry) = cursor.next(tx)? {
        out.push(entry);
    }
    Ok(out)
}

/// A value whose bytes depend on their position, so misordered chunks show.
fn value_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn model_range(
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    lower: &Bound<Vec<u8>>,
    upper: &Bound<Vec<u8>>,
    reverse: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let in_range = |k: &Vec<u8>| {
        let above = match lower {
            Bound::Included(l) => k >= l,
            Bound::Excluded(l) => k > l,
            Bound::Unbounded => true,
        };
        let below = match upper {
            Bound::Included(u) => k <= u,
            Bound::Excluded(u) => k < u,
            Bound::Unbounded => true,
        };
        above && below
    };
    let mut v: Vec<_> = model
        .iter()
        .filter(|(k, _)| in_range(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if reverse {
        v.reverse();
    }
    v
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Vec<u8>, usize, u8),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Scan(Bound<Vec<u8>>, Bound<Vec<u8>>, bool),
}

/// Keys from a four-letter alphabet (many collisions), some padded long to deepen trees.
fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(b'a'..b'e', 0..5),
        prop::sample::select(vec![0usize, 0, 0, 40, 300, 1019]),
    )
        .prop_map(|(mut k, pad)| {
            k.resize(k.len() + pad, b'z');
            k.truncate(KEY_BYTES_MAX);
            k
        })
}

fn value_len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..40,
        2 => 100usize..1100,
        1 => 1000usize..20_000,
    ]
}

fn bound_strategy() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Bound::Unbounded),
        key_strategy().prop_map(Bound::Included),
        key_strategy().prop_map(Bound::Excluded),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (key_strategy(), value_len_strategy(), any::<u8>()).prop_map(|(k, l, s)| Op::Insert(k, l, s)),
        4 => key_strategy().prop_map(Op::Delete),
        2 => key_strategy().prop_map(Op::Get),
        1 => (bound_strategy(), bound_strategy(), any::<bool>()).prop_map(|(l, u, r)| Op::Scan(l, u, r)),
    ]
}

fn run_ops(page_size: usize, ops: &[Op]) -> Result<()> {
    let mut tx = MemPages::new(page_size);
    let root = create(&mut tx)?;
    let mut model = BTreeMap::new();
    for op in ops {
        match op {
            Op::Insert(k, len, seed) => {
                let v = value_of(*len, *seed);
                let replaced = insert(&mut tx, root, k, &v)?;
                assert_eq!(replaced, model.insert(k.clone(), v).is_some());
            }
            Op::Delete(k) => assert_eq!(delete(&mut tx, root, k)?, model.remove(k).is_some()),
            Op::Get(k) => assert_eq!(get(&tx, root, k)?.as_ref(), model.get(k)),
            Op::Scan(l, u, r) => {
                let got = scan(&tx, root, l.clone(), u.clone(), *r)?;
                assert_eq!(got, model_range(&model, l, u, *r));
            }
        }
    }
    let stats = check_all(&tx, root)?;
    assert_eq!(stats.entries, model.len() as u64);
    assert_eq!(
        scan(&tx, root, Bound::Unbounded, Bound::Unbounded, false)?,
        model_range(&model, &Bound::Unbounded, &Bound::Unbounded, false)
    );
    for k in model.keys().cloned().collect::<Vec<_>>() {
        assert!(delete(&mut tx, root, &k)?);
    }
    let stats = check_all(&tx, root)?;
    assert_eq!((stats.entries, tx.live()), (0, 1));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn btree_matches_model_4k(ops in prop::collection::vec(op_strategy(), 1..400)) {
        prop_assert!(run_ops(4096, &ops).is_ok(), "{:?}", run_ops(4096, &ops));
    }

    #[test]
    fn btree_matches_model_16k(ops in prop::collection::vec(op_strategy(), 1..400)) {
        prop_assert!(run_ops(16384, &ops).is_ok(), "{:?}", run_ops(16384, &ops));
    }
}

/// 24-byte big-endian-numbered keys, as in redb's benchmark.
fn key24(i: u64) -> Vec<u8> {
    let mut k = vec![b'k'; 24];
    k[16..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Builds a tree of `n` keys inserted in `order`, 150-byte values; returns (store, root).
fn build(page_size: usize, order: &[u64]) -> Result<(MemPages, PageNo)> {
    let mut tx = MemPages::new(page_size);
    let root = create(&mut tx)?;
    for &i in order {
        insert(&mut tx, root, &key24(i), &value_of(150, i as u8))?;
    }
    Ok((tx, root))
}

/// Leaves of 24-byte keys and 150-byte values hold at most this many cells.
fn leaf_cells_max(page_size: usize) -> u64 {
    let cell = node::CELL_HEADER_LEN + 24 + 150 + node::SLOT_LEN;
    ((page_size - PAGE_HEADER_LEN - node::LEAF_HEADER_LEN) / cell) as u64
}

#[test]
fn btree_sequential_inserts_fill_pages() -> Result<()> {
    const N: u64 = 20_000;
    for page_size in [4096, 16384] {
        let ascending: Vec<u64> = (0..N).collect();
        let descending: Vec<u64> = (0..N).rev().collect();
        for (name, order) in [("ascending", ascending), ("descending", descending)] {
            let (tx, root) = build(page_size, &order)?;
            let stats = check_all(&tx, root)?;
            let min = N.div_ceil(leaf_cells_max(page_size));
            println!(
                "{page_size} B pages, {name}: {} leaves (minimum {min}), {:.1} entries/leaf, depth {}",
                stats.leaf_pages,
                N as f64 / stats.leaf_pages as f64,
                stats.depth
            );
            assert_eq!(stats.entries, N);
            assert!(
                stats.leaf_pages <= min + min / 50 + 1,
                "{name}: {stats:?}, minimum {min}"
            );
        }
    }
    Ok(())
}

#[test]
fn btree_random_inserts_fill_pages() -> Result<()> {
    const N: u64 = 20_000;
    const SEED: u64 = 7;
    let mut order: Vec<u64> = (0..N).collect();
    order.shuffle(&mut StdRng::seed_from_u64(SEED));
    let (tx, root) = build(4096, &order)?;
    let stats = check_all(&tx, root)?;
    let per_leaf = N as f64 / stats.leaf_pages as f64;
    let fill = per_leaf / leaf_cells_max(4096) as f64;
    println!(
        "4096 B pages, random (seed {SEED}): {per_leaf:.1} entries/leaf, fill {fill:.2}, {stats:?}"
    );
    // A B-tree under random inserts settles near ln 2 = 0.69 full.
    assert!(fill > 0.6, "seed {SEED}: fill {fill:.2}");
    Ok(())
}

#[test]
fn btree_delete_all_returns_to_one_page() -> Result<()> {
    const N: u64 = 5_000;
    const SEED: u64 = 11;
    for page_size in [4096, 16384] {
        let mut order: Vec<u64> = (0..N).collect();
        let (mut tx, root) = build(page_size, &order)?;
        let big = value_of(50_000, 3);
        for i in (0..N).step_by(97) {
            insert(&mut tx, root, &key24(i), &big)?;
        }
        let depth = check_all(&tx, root)?.depth;
        assert!(
            depth >= if page_size == 4096 { 3 } else { 2 },
            "depth {depth}"
        );
        order.shuffle(&mut StdRng::seed_from_u64(SEED));
        for (n, &i) in order.iter().enumerate() {
            assert!(delete(&mut tx, root, &key24(i))?, "seed {SEED}: key {i}");
            if n % 500 == 0 {
                assert_eq!(check_all(&tx, root)?.entries, N - n as u64 - 1);
            }
        }
        let stats = check_all(&tx, root)?;
        assert_eq!(
            (stats.entries, stats.leaf_pages, stats.depth, tx.live()),
            (0, 1, 1, 1)
        );
        assert!(!delete(&mut tx, root, &key24(0))?);
        insert(&mut tx, root, b"again", b"works")?;
        assert_eq!(get(&tx, root, b"again")?, Some(b"works".to_vec()));
    }
    Ok(())
}

#[test]
fn btree_deletes_keep_pages_reasonably_full() -> Result<()> {
    const N: u64 = 20_000;
    const SEED: u64 = 5;
    let mut order: Vec<u64> = (0..N).collect();
    order.shuffle(&mut StdRng::seed_from_u64(SEED));
    let (mut tx, root) = build(4096, &order)?;
    // Delete 90%, leaving every tenth key.
    for &i in &order {
        if i % 10 != 0 {
            delete(&mut tx, root, &key24(i))?;
        }
    }
    let stats = check_all(&tx, root)?;
    let per_leaf = stats.entries as f64 / stats.leaf_pages as f64;
    println!("after deleting 90% (seed {SEED}): {per_leaf:.1} entries/leaf, {stats:?}");
    assert_eq!(stats.entries, N / 10);
    assert!(
        per_leaf >= leaf_cells_max(4096) as f64 / 4.0,
        "seed {SEED}: {stats:?}"
    );
    Ok(())
}

#[test]
fn btree_destroy_frees_every_page() -> Result<()> {
    let order: Vec<u64> = (0..3_000).collect();
    let (mut tx, root) = build(4096, &order)?;
    for i in (0..3_000).step_by(10) {
        insert(&mut tx, root, &key24(i), &value_of(9_000, 1))?;
    }
    let stats = check_all(&tx, root)?;
    assert!(
        stats.overflow_pages >= 300 * 3 && stats.depth >= 2,
        "{stats:?}"
    );
    destroy(&mut tx, root)?;
    assert_eq!(tx.live(), 0);
    Ok(())
}

#[test]
fn btree_limits_and_large_values() -> Result<()> {
    let mut tx = MemPages::new(4096);
    let root = create(&mut tx)?;
    let long_key = vec![7u8; KEY_BYTES_MAX + 1];
    assert!(matches!(
        insert(&mut tx, root, &long_key, b"v"),
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        get(&tx, root, &long_key),
        Err(Error::KeyTooLarge { .. })
    ));
    let huge = vec![1u8; VALUE_BYTES_MAX + 1];
    assert!(matches!(
        insert(&mut tx, root, b"k", &huge),
        Err(Error::ValueTooLarge { .. })
    ));
    assert_eq!(tx.live(), 1, "a rejected insert touched no page");

    let max_value = value_of(VALUE_BYTES_MAX, 9);
    let max_key = vec![b'm'; KEY_BYTES_MAX];
    insert(&mut tx, root, &max_key, &max_value)?;
    assert_eq!(get(&tx, root, &max_key)?, Some(max_value));
    // The inline threshold, both sides of it.
    let inline_max = leaf_cell_inline_max(tx.body_len()) - node::CELL_HEADER_LEN - 1;
    insert(&mut tx, root, b"a", &value_of(inline_max, 1))?;
    insert(&mut tx, root, b"b", &value_of(inline_max + 1, 2))?;
    let stats = check_all(&tx, root)?;
    let chain = VALUE_BYTES_MAX.div_ceil(tx.body_len() - super::overflow::OVERFLOW_HEADER_LEN);
    assert_eq!(stats.overflow_pages, chain as u64 + 1);
    // Overwriting the big value frees its chain; beside a maximum key even five bytes
    // exceed the inline limit and take one overflow page.
    assert!(insert(&mut tx, root, &max_key, b"small")?);
    assert_eq!(check_all(&tx, root)?.overflow_pages, 2);
    assert!(insert(&mut tx, root, &max_key, b"tiny")?);
    assert_eq!(check_all(&tx, root)?.overflow_pages, 1);
    assert_eq!(get(&tx, root, &max_key)?, Some(b"tiny".to_vec()));
    assert!(insert(&mut tx, root, &max_key, b"small")?);
    assert_eq!(get(&tx, root, &max_key)?, Some(b"small".to_vec()));
    // Four maximum keys with values that stay inline still split correctly.
    for i in 0..40u8 {
        let mut k = vec![i; KEY_BYTES_MAX];
        k[0] = b'q';
        insert(&mut tx, root, &k, &[i; 4])?;
    }
    assert_eq!(check_all(&tx, root)?.entries, 43);
    Ok(())
}

#[test]
fn btree_scan_bounds() -> Result<()> {
    let order: Vec<u64> = (0..2_000).map(|i| i * 2).collect();
    let (tx, root) = build(4096, &order)?;
    let keys =
        |v: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<Vec<u8>> { v.into_iter().map(|(k, _)| k).collect() };
    let inc = |i| Bound::Included(key24(i));
    let exc = |i| Bound::Excluded(key24(i));
    assert_eq!(
        keys(scan(&tx, root, inc(10), exc(16), false)?),
        vec![key24(10), key24(12), key24(14)]
    );
    assert_eq!(
        keys(scan(&tx, root, exc(10), inc(16), true)?),
        vec![key24(16), key24(14), key24(12)]
    );
    assert_eq!(
        keys(scan(&tx, root, inc(11), inc(13), false)?),
        vec![key24(12)]
    );
    assert_eq!(
        keys(scan(&tx, root, exc(3_998), Bound::Unbounded, false)?),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        keys(scan(&tx, root, Bound::Unbounded, exc(0), true)?),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(scan(&tx, root, inc(20), inc(10), false)?.len(), 0);
    assert_eq!(
        scan(&tx, root, Bound::Unbounded, Bound::Unbounded, true)?.len(),
        2_000
    );
    // A prefix scan is a range: every key starting with "kkkk" is below "kkkl".
    let all = scan(
        &tx,
        root,
        Bound::Included(b"kkkk".to_vec()),
        Bound::Excluded(b"kkkl".to_vec()),
        false,
    )?;
    assert_eq!(all.len(), 2_000);
    Ok(())
}
