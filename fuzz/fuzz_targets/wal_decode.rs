//! WAL codecs and the recovery scan.
//!
//! Each input is used twice:
//! 1. as raw bytes: the header decoder, the frame decoder on every frame-sized window, and the
//!    recovery scan over the bytes as a WAL file. Whatever decodes must re-encode to the same
//!    bytes.
//! 2. as a description of a log (frames with valid checksums but chosen fields, some damaged,
//!    the file cut somewhere): the recovery scan must return exactly what a reference
//!    implementation of docs/design.md's recovery rules returns.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use engine::fuzzing::{self as fz, FrameFields, WalHeaderFields};
use libfuzzer_sys::fuzz_target;

/// Page size of built logs: the smallest, so a frame costs 4 KiB of checksumming.
const PAGE_SIZE: usize = 4096;
/// Frames in a built log: several transactions with room for damage between them.
const FRAMES_MAX: usize = 12;
const FRAME_BYTES: usize = fz::FRAME_HEADER_LEN + PAGE_SIZE;

#[derive(Arbitrary, Debug)]
struct FrameSpec {
    page_no: u8,
    /// Ends a transaction (commit page count non-zero).
    commit: bool,
    /// 0: the header's salt; else another one (a stale generation).
    salt_other: u8,
    /// Frame index off by this much from the position.
    index_skew: u8,
    /// Transaction id step from the previous frame's: 0 keeps it, else adds (wrapping i8).
    txn_step: i8,
    synced_upto: u8,
    /// Non-zero: flip this bit (mod frame bits) after encoding.
    damage: u16,
    /// Seal the page image for another page number than the header says.
    misdirected: bool,
    fill: u8,
}

#[derive(Arbitrary, Debug)]
struct LogSpec {
    salt: u64,
    min_txn: u8,
    frames: Vec<FrameSpec>,
    /// Cut the file this many bytes before its end (mod a frame).
    cut: u16,
}

fuzz_target!(|data: &[u8]| {
    raw(data);
    let mut u = Unstructured::new(data);
    if let Ok(spec) = LogSpec::arbitrary(&mut u) {
        built(&spec);
    }
});

fn raw(data: &[u8]) {
    if let Some(h) = fz::decode_wal_header(data) {
        let again = fz::encode_wal_header(&h);
        assert_eq!(&again[..36], &data[..36], "header does not re-encode");
    }
    for window in data
        .get(fz::WAL_HEADER_LEN..)
        .unwrap_or(&[])
        .chunks(FRAME_BYTES)
    {
        if let Some(f) = fz::decode_wal_frame(window) {
            let page = &window[fz::FRAME_HEADER_LEN..];
            let sealed = fz::verify_page(page, f.page_no).is_ok()
                && fz::page_txn_id(page).ok() == Some(f.txn_id);
            if sealed {
                let again = fz::encode_wal_frame(&f, page).unwrap_or_default();
                assert_eq!(
                    &again[..44],
                    &window[..44],
                    "frame header does not re-encode"
                );
                assert_eq!(&again[48..], page, "frame image does not re-encode");
            }
        }
    }
    let _ = fz::recover_wal(data);
}

/// One built frame: its fields, whether its checksum still holds, and whether its page
/// image carries the seal of the page it claims.
struct Built {
    f: FrameFields,
    checksum_ok: bool,
    seal_ok: bool,
}

fn built(spec: &LogSpec) {
    let salt = spec.salt | 1;
    let header = WalHeaderFields {
        page_size: PAGE_SIZE as u32,
        salt,
        generation: 1,
    };
    let mut file = fz::encode_wal_header(&header);
    let mut frames = Vec::new();
    let mut txn = u64::from(spec.min_txn) + 1;
    for (i, s) in spec.frames.iter().take(FRAMES_MAX).enumerate() {
        txn = txn.wrapping_add(s.txn_step as i64 as u64);
        let f = FrameFields {
            page_no: u32::from(s.page_no),
            commit_page_count: if s.commit { 100 } else { 0 },
            salt: if s.salt_other == 0 {
                salt
            } else {
                salt ^ u64::from(s.salt_other)
            },
            index: (i as u64).wrapping_add(u64::from(s.index_skew)),
            txn_id: txn,
            synced_upto: u64::from(s.synced_upto),
        };
        let mut page = vec![s.fill; PAGE_SIZE];
        let seal_as = if s.misdirected {
            f.page_no ^ 1
        } else {
            f.page_no
        };
        if fz::seal_page(&mut page, seal_as, f.txn_id).is_err() {
            return;
        }
        let mut bytes = frame_around(&f, &page);
        if !s.misdirected {
            let Ok(encoded) = fz::encode_wal_frame(&f, &page) else {
                return;
            };
            assert_eq!(
                encoded, bytes,
                "engine frame encoder differs from the reference"
            );
        }
        let mut checksum_ok = true;
        if s.damage != 0 {
            let bit = usize::from(s.damage) % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            // Bytes 44..48 are padding, outside the checksum.
            checksum_ok = (44..48).contains(&(bit / 8));
        }
        file.extend_from_slice(&bytes);
        frames.push(Built {
            f,
            checksum_ok,
            seal_ok: !s.misdirected,
        });
    }
    let cut = usize::from(spec.cut) % FRAME_BYTES;
    let len = file.len().saturating_sub(cut).max(fz::WAL_HEADER_LEN);
    file.truncate(len);
    // A frame cut short is invisible to recovery, as is everything after it.
    frames.truncate((len - fz::WAL_HEADER_LEN) / FRAME_BYTES);
    let expected = reference(&frames, salt, 0);
    let got = fz::recover_wal(&file);
    match (&expected, &got) {
        (Ok(e), Ok(Some(g))) => {
            let ids: Vec<u64> = g.txns.iter().map(|t| t.0).collect();
            assert_eq!(ids, e.0, "recovered transactions differ from the reference");
            assert_eq!(g.end_frame, e.1, "end frame differs from the reference");
        }
        (Err(()), Err(err)) => assert!(err.is_corruption(), "{err}"),
        _ => panic!("recovery {got:?} but the reference says {expected:?}"),
    }
}

/// A frame whose header checksum is valid for `page` as given (not re-sealed).
fn frame_around(f: &FrameFields, page: &[u8]) -> Vec<u8> {
    // The engine's encoder re-seals the image, so a misdirected one is built here, by the
    // format in docs/design.md: crc32c(header[0..40] ++ image).
    let mut out = Vec::with_capacity(FRAME_BYTES);
    out.extend_from_slice(&f.page_no.to_le_bytes());
    out.extend_from_slice(&f.commit_page_count.to_le_bytes());
    out.extend_from_slice(&f.salt.to_le_bytes());
    out.extend_from_slice(&f.index.to_le_bytes());
    out.extend_from_slice(&f.txn_id.to_le_bytes());
    out.extend_from_slice(&f.synced_upto.to_le_bytes());
    let crc = crc32c_append(crc32c(&out[..40]), page);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(page);
    out
}

/// CRC32C (Castagnoli), bitwise: independent of the engine's implementation on purpose.
fn crc32c(b: &[u8]) -> u32 {
    crc32c_append(0, b)
}

fn crc32c_append(crc: u32, b: &[u8]) -> u32 {
    let mut c = !crc;
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

/// Recovery per docs/design.md: accept whole transactions of valid frames in order; at the
/// first failure, a later valid frame (of this salt, at its position) whose `synced_upto`
/// passes the end of the accepted log makes it corruption. Returns (txn ids, end frame).
fn reference(frames: &[Built], salt: u64, min_txn: u64) -> Result<(Vec<u64>, u64), ()> {
    let mut txns = Vec::new();
    // Ids must rise from 0; transactions up to `min_txn` are valid but already in the main
    // file, so they are not returned (they still move the end of the log).
    let (mut end, mut last, mut pending) = (0u64, 0u64, None::<u64>);
    let mut stop = frames.len();
    for (i, b) in frames.iter().enumerate() {
        let f = &b.f;
        let ok = b.checksum_ok
            && b.seal_ok
            && f.salt == salt
            && f.index == i as u64
            && pending.map_or(f.txn_id > last, |t| t == f.txn_id);
        if !ok {
            stop = i;
            break;
        }
        pending = Some(f.txn_id);
        if f.commit_page_count != 0 {
            if f.txn_id > min_txn {
                txns.push(f.txn_id);
            }
            end = i as u64 + 1;
            last = f.txn_id;
            pending = None;
        }
    }
    if (end as usize) < frames.len() {
        let vouched = frames.iter().enumerate().skip(stop).any(|(i, b)| {
            // The tail check decodes the frame (its checksum) but not the page seal.
            b.checksum_ok && b.f.salt == salt && b.f.index == i as u64 && b.f.synced_upto > end
        });
        if vouched {
            return Err(());
        }
    }
    Ok((txns, end))
}
