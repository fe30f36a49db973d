//! Round trips of every on-disk codec reachable through `engine::fuzzing`: page seal and
//! verify, the meta page, the WAL header and WAL frames; and detection of every single bit
//! flip in a frame and a page. Needs the `fuzzing` feature (`cargo test -p engine
//! --features fuzzing`); scripts/test.sh runs it.
#![cfg(feature = "fuzzing")]

use engine::fuzzing::{self as fz, FrameFields, MetaFields, WalHeaderFields};
use proptest::prelude::*;

fn page_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(4096usize),
        Just(8192),
        Just(16384),
        Just(32768),
        Just(65536)
    ]
}

/// A page image: a few bytes set at random places over a fill byte (cheap to generate at
/// 64 KiB, yet every position matters).
fn page(page_size: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop::collection::vec((0..page_size, any::<u8>()), 0..32),
    )
        .prop_map(move |(fill, sets)| {
            let mut p = vec![fill; page_size];
            for (at, b) in sets {
                p[at] = b;
            }
            p
        })
}

fn sized_page() -> impl Strategy<Value = Vec<u8>> {
    page_size().prop_flat_map(page)
}

fn frame_fields() -> impl Strategy<Value = FrameFields> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(page_no, commit_page_count, salt, index, txn_id, synced_upto)| FrameFields {
                page_no,
                commit_page_count,
                salt,
                index,
                txn_id,
                synced_upto,
            },
        )
}

fn meta_fields() -> impl Strategy<Value = MetaFields> {
    (
        page_size(),
        2u32..u32::MAX - 1,
        // Transaction ids above u64::MAX / 2 are corruption (the engine's TXN_ID_MAX).
        0..=u64::MAX / 2,
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ps, page_count, last_txn_id, checkpointed_salt, _, b, c)| {
                // The catalog is always page 1; any other root is corruption.
                let catalog_root = 1;
                let free_count = b % page_count;
                let free_head = if free_count == 0 {
                    0
                } else {
                    1 + c % (page_count - 1)
                };
                MetaFields {
                    page_size: ps as u32,
                    page_count,
                    free_head,
                    free_count,
                    catalog_root,
                    last_txn_id,
                    checkpointed_salt,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn page_seal_verifies_and_detects_flips(mut p in sized_page(), no in any::<u32>(), txn in any::<u64>(), bit in any::<usize>()) {
        fz::seal_page(&mut p, no, txn)?;
        fz::verify_page(&p, no)?;
        prop_assert_eq!(fz::page_txn_id(&p)?, txn);
        prop_assert!(fz::verify_page(&p, no.wrapping_add(1)).is_err(), "page number not checked");
        let bit = bit % (p.len() * 8);
        p[bit / 8] ^= 1 << (bit % 8);
        let err = fz::verify_page(&p, no).err();
        prop_assert!(err.as_ref().is_some_and(engine::Error::is_corruption), "flip of bit {} not detected", bit);
    }

    #[test]
    fn meta_round_trips(m in meta_fields(), txn in any::<u64>()) {
        let page = fz::encode_meta_page(&m, txn)?;
        prop_assert_eq!(page.len(), m.page_size as usize);
        prop_assert_eq!(fz::decode_meta_page(&page)?, m);
        prop_assert_eq!(fz::peek_page_size(&page), Some(m.page_size as usize));
    }

    #[test]
    fn meta_rejects_another_page_size(m in meta_fields()) {
        let page = fz::encode_meta_page(&m, 1)?;
        // The same body sealed into a page of another size must not decode.
        let mut other = page.clone();
        other.resize(if page.len() == 4096 { 8192 } else { page.len() / 2 }, 0);
        fz::seal_page(&mut other, 0, 1)?;
        prop_assert!(fz::decode_meta_page(&other).is_err());
    }

    #[test]
    fn wal_header_round_trips(page_size in any::<u32>(), salt in any::<u64>(), generation in any::<u64>(), bit in 0usize..36 * 8) {
        let h = WalHeaderFields { page_size, salt, generation };
        let mut bytes = fz::encode_wal_header(&h);
        prop_assert_eq!(bytes.len(), fz::WAL_HEADER_LEN);
        prop_assert_eq!(fz::decode_wal_header(&bytes), Some(h));
        // Bytes 0..36 are magic, fields and checksum: any flip there is refused.
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(fz::decode_wal_header(&bytes), None);
    }

    #[test]
    fn wal_frame_round_trips(f in frame_fields(), p in sized_page()) {
        let frame = fz::encode_wal_frame(&f, &p)?;
        prop_assert_eq!(frame.len(), fz::FRAME_HEADER_LEN + p.len());
        prop_assert_eq!(fz::decode_wal_frame(&frame), Some(f));
        let image = &frame[fz::FRAME_HEADER_LEN..];
        fz::verify_page(image, f.page_no)?;
        prop_assert_eq!(fz::page_txn_id(image)?, f.txn_id);
    }

    #[test]
    fn wal_frame_detects_any_single_bit_flip(f in frame_fields(), p in page(4096), bit in any::<usize>()) {
        let mut frame = fz::encode_wal_frame(&f, &p)?;
        let bit = bit % (frame.len() * 8);
        frame[bit / 8] ^= 1 << (bit % 8);
        let padding = (44..48).contains(&(bit / 8));
        // Bytes 44..48 are zero padding outside the checksum; every other bit is covered.
        prop_assert_eq!(fz::decode_wal_frame(&frame).is_some(), padding, "flip of bit {}", bit);
    }
}

/// Every bit of one frame, exhaustively: the property above samples, this proves it for a
/// fixed frame (4144 * 8 decodes).
#[test]
fn every_bit_flip_of_a_frame_is_detected() -> engine::Result<()> {
    let f = FrameFields {
        page_no: 9,
        commit_page_count: 12,
        salt: 0xABCD,
        index: 3,
        txn_id: 77,
        synced_upto: 2,
    };
    let frame = fz::encode_wal_frame(&f, &vec![0x5A; 4096])?;
    let mut undetected = Vec::new();
    for bit in 0..frame.len() * 8 {
        let mut damaged = frame.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        if fz::decode_wal_frame(&damaged).is_some() {
            undetected.push(bit / 8);
        }
    }
    undetected.dedup();
    assert_eq!(
        undetected,
        vec![44, 45, 46, 47],
        "only the padding bytes may change unnoticed"
    );
    Ok(())
}

/// A checker must fail on a seeded bug: a frame whose checksum field was recomputed by a
/// broken encoder (checksum over the header only) is refused.
#[test]
fn frame_with_header_only_checksum_is_refused() -> engine::Result<()> {
    let f = FrameFields {
        page_no: 1,
        commit_page_count: 0,
        salt: 5,
        index: 0,
        txn_id: 1,
        synced_upto: 0,
    };
    let mut frame = fz::encode_wal_frame(&f, &vec![1; 4096])?;
    let crc = crc32c_bitwise(&frame[..40]);
    frame[40..44].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(fz::decode_wal_frame(&frame), None);
    Ok(())
}

fn crc32c_bitwise(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &byte in b {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Pages that `build_tree_pages` produces decode as nodes with their entries.
#[test]
fn built_tree_pages_decode() -> engine::Result<()> {
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..40u32)
        .map(|i| {
            (
                format!("key{i:03}").into_bytes(),
                vec![i as u8; (i as usize * 37) % 300],
            )
        })
        .collect();
    let pages = fz::build_tree_pages(4096, &entries)?;
    assert!(
        pages.len() >= 2,
        "40 entries of up to 300 bytes need more than one leaf"
    );
    let keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| k.clone()).collect();
    let outcome = fz::btree_pages(4096, &pages, &keys)?;
    assert_eq!(outcome.check, Ok(40));
    assert_eq!(outcome.scanned_forward, 40);
    assert_eq!(outcome.scanned_reverse, 40);
    // Damage one leaf's cell count: the check must notice.
    let mut damaged = pages.clone();
    damaged[1][16 + 2] ^= 0x40;
    let outcome = fz::btree_pages(4096, &damaged, &keys)?;
    assert!(
        outcome.check.is_err(),
        "a damaged cell count passed the check"
    );
    Ok(())
}
