//! Pages from disk: checksum and page-number verification, the meta decoder, free-list
//! trunks, and the B+tree's node accessors, `check`, point reads, cursors and edits over a
//! small store of pages.
//!
//! Input layout (so seeds can be real pages): byte 0 picks the page count `n`, byte 1 the key
//! count `k`; then `k` keys as (length byte, bytes); the rest is cut into `n` equal chunks,
//! each zero-padded or cut to one page. The first chunk is also verified raw as pages 0 and 1.
//! Chunks are then sealed, so the tree code sees structure, not checksum failures.
#![no_main]

use engine::fuzzing as fz;
use libfuzzer_sys::fuzz_target;

const PAGE_SIZE: usize = 4096;
/// Pages per input: a root, a few leaves and an overflow chain; more only slows each run.
const PAGES_MAX: usize = 6;
/// Keys read, inserted and deleted per input.
const KEYS_MAX: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let Some((&k, mut rest)) = rest.split_first() else {
        return;
    };
    let n = 1 + usize::from(n) % PAGES_MAX;
    let mut keys = Vec::new();
    for _ in 0..usize::from(k) % (KEYS_MAX + 1) {
        let Some((&len, tail)) = rest.split_first() else {
            break;
        };
        let len = usize::from(len).min(tail.len());
        keys.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    let chunk = rest.len().div_ceil(n).max(1);
    let mut pages: Vec<Vec<u8>> = rest.chunks(chunk).map(<[u8]>::to_vec).collect();
    pages.resize(n, Vec::new());
    for p in &mut pages {
        p.resize(PAGE_SIZE, 0);
    }
    raw(&pages[0]);
    for (i, p) in pages.iter().enumerate() {
        let mut sealed = p.clone();
        let no = i as u32 + 1;
        if fz::seal_page(&mut sealed, no, 7).is_ok() {
            assert!(
                fz::verify_page(&sealed, no).is_ok(),
                "a sealed page must verify"
            );
            assert!(
                fz::verify_page(&sealed, no + 1).is_err(),
                "page number is checked"
            );
            let _ = fz::decode_page(&sealed, no);
        }
    }
    let mut meta = pages[0].clone();
    if fz::seal_page(&mut meta, 0, 7).is_ok() {
        if let Ok(m) = fz::decode_meta_page(&meta) {
            assert_eq!(m.page_size as usize, PAGE_SIZE);
            assert!(m.catalog_root > 0 && m.catalog_root < m.page_count);
            assert_eq!(
                fz::encode_meta_page(&m, 7)
                    .ok()
                    .as_deref()
                    .map(|p| &p[16..64]),
                Some(&meta[16..64])
            );
        }
    }
    let _ = fz::btree_pages(PAGE_SIZE, &pages, &keys);
});

/// The unsealed bytes as they came: almost always a checksum error, never a panic.
fn raw(page: &[u8]) {
    for no in [0, 1] {
        let _ = fz::decode_page(page, no);
    }
    let _ = fz::peek_page_size(page);
}
