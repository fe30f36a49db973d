//! The write-ahead log: its on-disk format and the recovery scan.
//!
//! ```text
//! header (64 bytes): magic "ENGWAL1\0" | version u32 | page size u32 | salt u64 |
//!                    generation u64 | crc32c of bytes 0..32 u32 | zero padding
//! frame i at 64 + i * (48 + page_size):
//!   page_no u32 | commit_page_count u32 (non-zero only on a transaction's last frame) |
//!   salt u64 | frame index u64 | txn id u64 | synced_upto u64 | crc32c u32 | zero u32 |
//!   the sealed page image (page_size bytes)
//! ```
//! The frame CRC covers its first 40 header bytes and the page image. The salt changes at
//! every WAL reset, so frames of an earlier generation never validate. `synced_upto` is the
//! number of frames known durable when the frame was written: a valid frame that vouches for
//! an invalid earlier one proves that the earlier one was once durable, so it is corruption,
//! not a torn tail.

use crate::error::{Error, Location, Result};
use crate::le::{u32_at, u64_at};
use crate::page::{PageBuf, PageNo};
use crate::storage::StorageFile;

/// Bytes before the first frame.
pub(crate) const WAL_HEADER_LEN: u64 = 64;
/// Bytes of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 48;
const MAGIC: &[u8; 8] = b"ENGWAL1\0";
const VERSION: u32 = 1;
/// Frames read per storage call during recovery: 256 frames of 4 KiB are about 1 MiB.
const RECOVERY_CHUNK_FRAMES: u64 = 256;

/// Bytes of one frame for `page_size`.
pub(crate) fn frame_size(page_size: usize) -> u64 {
    (FRAME_HEADER_LEN + page_size) as u64
}

/// Byte offset of frame `index`.
pub(crate) fn frame_offset(index: u64, page_size: usize) -> u64 {
    WAL_HEADER_LEN + index * frame_size(page_size)
}

/// The decoded WAL header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalHeader {
    pub page_size: u32,
    pub salt: u64,
    pub generation: u64,
}

impl WalHeader {
    pub(crate) fn encode(&self) -> [u8; WAL_HEADER_LEN as usize] {
        let mut b = [0u8; WAL_HEADER_LEN as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.page_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.salt.to_le_bytes());
        b[24..32].copy_from_slice(&self.generation.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header; `None` when the magic, version or checksum is wrong.
    pub(crate) fn decode(b: &[u8]) -> Option<WalHeader> {
        if b.len() < WAL_HEADER_LEN as usize || &b[0..8] != MAGIC || u32_at(b, 8) != VERSION {
            return None;
        }
        if crc32c::crc32c(&b[0..32]) != u32_at(b, 32) {
            return None;
        }
        Some(WalHeader {
            page_size: u32_at(b, 12),
            salt: u64_at(b, 16),
            generation: u64_at(b, 24),
        })
    }
}

/// The header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub page_no: PageNo,
    /// The database's page count after this transaction; non-zero marks the commit frame.
    pub commit_page_count: u32,
    pub salt: u64,
    pub index: u64,
    pub txn_id: u64,
    pub synced_upto: u64,
}

/// Appends one frame (header and sealed page) to `out`.
pub(crate) fn encode_frame(h: &FrameHeader, page: &PageBuf, out: &mut Vec<u8>) {
    debug_assert!(page.verify(h.page_no).is_ok(), "frames carry sealed pages");
    let start = out.len();
    out.extend_from_slice(&h.page_no.to_le_bytes());
    out.extend_from_slice(&h.commit_page_count.to_le_bytes());
    out.extend_from_slice(&h.salt.to_le_bytes());
    out.extend_from_slice(&h.index.to_le_bytes());
    out.extend_from_slice(&h.txn_id.to_le_bytes());
    out.extend_from_slice(&h.synced_upto.to_le_bytes());
    let mut crc = crc32c::crc32c(&out[start..start + 40]);
    crc = crc32c::crc32c_append(crc, page.bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(page.bytes());
    debug_assert_eq!(out.len() - start, FRAME_HEADER_LEN + page.bytes().len());
}

/// Decodes the frame in `b` (exactly one frame long) if its checksum is right. The caller
/// checks salt and index against what it expects.
pub(crate) fn decode_frame(b: &[u8]) -> Option<FrameHeader> {
    let header = decode_frame_unchecked(b)?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&b[0..40]), &b[FRAME_HEADER_LEN..]);
    (crc == u32_at(b, 40)).then_some(header)
}

/// Decodes a frame header without checking its checksum (the checked path above, and the
/// seeded bug `AcceptBadFrameChecksum`).
fn decode_frame_unchecked(b: &[u8]) -> Option<FrameHeader> {
    if b.len() <= FRAME_HEADER_LEN {
        return None;
    }
    Some(FrameHeader {
        page_no: u32_at(b, 0),
        commit_page_count: u32_at(b, 4),
        salt: u64_at(b, 8),
        index: u64_at(b, 16),
        txn_id: u64_at(b, 24),
        synced_upto: u64_at(b, 32),
    })
}

/// Reads the page image of frame `index` and checks the whole frame: its checksum, that it
/// carries `salt` and its own index, and that it holds page `no` with a valid seal.
///
/// The page seal alone does not bind an image to its frame: a write lost or misdirected
/// by the disk leaves an older frame of the same page in place (a WAL is overwritten in
/// place from one generation to the next), whose seal is valid. The frame header's salt
/// and index tell it apart, so a stale frame is corruption, never old data.
///
/// # Errors
/// I/O errors, and [`Error::Corruption`] at the frame when any check fails.
pub(crate) fn read_frame_page(
    file: &dyn StorageFile,
    index: u64,
    page_size: usize,
    salt: u64,
    no: PageNo,
    lax: bool,
) -> Result<PageBuf> {
    let offset = frame_offset(index, page_size);
    let mut buf = vec![0u8; FRAME_HEADER_LEN + page_size];
    file.read_at(&mut buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            frame_corrupt(index, offset, "beyond the end of the WAL".to_string())
        } else {
            Error::io("read page", e)
        }
    })?;
    // `lax`: the seeded bug `AcceptBadFrameChecksum` skips the frame checksum here too.
    let decoded = if lax {
        decode_frame_unchecked(&buf)
    } else {
        decode_frame(&buf)
    };
    let Some(h) = decoded else {
        return Err(frame_corrupt(index, offset, "frame checksum".to_string()));
    };
    if h.salt != salt || h.index != index || h.page_no != no {
        let detail = format!(
            "stale or misplaced frame: holds page {} at index {} (salt {:#x}), expected page \
             {no} at index {index} (salt {salt:#x})",
            h.page_no, h.index, h.salt
        );
        return Err(frame_corrupt(index, offset, detail));
    }
    let page = PageBuf::from_bytes(&buf[FRAME_HEADER_LEN..]);
    page.verify(no)?;
    Ok(page)
}

fn frame_corrupt(index: u64, offset: u64, detail: String) -> Error {
    Error::Corruption {
        location: Location::WalFrame { index, offset },
        detail,
    }
}

/// One committed transaction found in the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecoveredTxn {
    pub txn_id: u64,
    pub page_count: u32,
    /// (page, frame index) in WAL order.
    pub frames: Vec<(PageNo, u64)>,
}

/// What the recovery scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub txns: Vec<RecoveredTxn>,
    /// Frames up to the last commit frame; the next frame goes here.
    pub end_frame: u64,
    /// True when frames past `end_frame` were discarded as a torn or uncommitted tail.
    pub torn_tail: bool,
    /// The largest transaction id of any frame of this generation in the file, the discarded
    /// tail included: a writer that goes on in this generation without a reset must use
    /// larger ids, or recovery could join its frames to a stale tail.
    pub txn_id_max: u64,
}

/// Seeded bugs of the WAL scan (all off outside the `seeded-bugs` feature).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScanBugs {
    /// [`crate::SeededBug::AcceptBadFrameChecksum`].
    pub accept_bad_checksum: bool,
    /// [`crate::SeededBug::CorruptWalReadAsTornTail`].
    pub ignore_vouching: bool,
    /// [`crate::SeededBug::SkipInvalidWalTxn`].
    pub skip_invalid_txn: bool,
}

/// The seeded bug `SkipInvalidWalTxn`: which transaction's frames the scan is dropping after
/// an invalid frame, instead of stopping there.
#[derive(Debug, Default)]
struct SkipTxn {
    /// Dropping frames after an invalid one.
    active: bool,
    /// The transaction dropped; `None` until a valid frame names it (the invalid frame's own
    /// header could not be trusted).
    txn: Option<u64>,
    /// The largest transaction id dropped: later writers must go past it.
    txn_id_max: u64,
}

impl SkipTxn {
    /// An invalid frame at `bytes`: drops the transaction being collected (`pending_txn`, or
    /// the one the frame's header names when that header is of this log and place).
    fn start(&mut self, bytes: &[u8], h: &WalHeader, index: u64, pending_txn: Option<u64>) {
        let named = decode_frame_unchecked(bytes)
            .filter(|f| f.salt == h.salt && f.index == index)
            .map(|f| f.txn_id);
        self.active = true;
        self.txn = pending_txn.or(named);
    }

    /// True when the valid frame of `txn_id` belongs to the transaction being dropped.
    fn drops(&mut self, txn_id: u64) -> bool {
        if !self.active {
            return false;
        }
        let dropped = *self.txn.get_or_insert(txn_id);
        if dropped == txn_id {
            self.txn_id_max = self.txn_id_max.max(txn_id);
            return true;
        }
        self.active = false;
        false
    }
}

/// Scans the WAL after its header and returns the committed transactions.
///
/// Stops at the first frame that fails its checksum, salt or position, or that breaks the
/// transaction structure. If any later frame validates and vouches (through `synced_upto`)
/// that the failed frame had been made durable, the failure is corruption.
///
/// # Errors
/// I/O errors, and [`Error::Corruption`] for an invalid frame followed by valid ones that
/// were written after it was synced.
pub(crate) fn recover(file: &dyn StorageFile, h: &WalHeader, bugs: ScanBugs) -> Result<Recovered> {
    let lax = bugs.accept_bad_checksum;
    let page_size = h.page_size as usize;
    let len = file.len().map_err(|e| Error::io("wal scan", e))?;
    let frames_total = len.saturating_sub(WAL_HEADER_LEN) / frame_size(page_size);
    let mut out = Recovered::default();
    let mut pending: Vec<(PageNo, u64)> = Vec::new();
    let mut pending_txn: Option<u64> = None;
    let mut last_txn = 0;
    let mut scan = ChunkReader::new(file, page_size, frames_total);
    let mut stop = frames_total;
    let mut skip = SkipTxn::default();
    while let Some((index, bytes)) = scan.next_frame()? {
        let frame = if lax {
            decode_frame_unchecked(bytes)
        } else {
            decode_frame(bytes)
        };
        let frame = frame.filter(|f| f.salt == h.salt && f.index == index);
        let ok = frame.is_some_and(|f| {
            pending_txn.map_or(f.txn_id > last_txn, |t| t == f.txn_id)
                && (lax || page_seal_ok(bytes, f.page_no))
        });
        let Some(f) = frame.filter(|_| ok) else {
            if bugs.skip_invalid_txn {
                skip.start(bytes, h, index, pending_txn);
                pending.clear();
                pending_txn = None;
                continue;
            }
            stop = index;
            break;
        };
        if skip.drops(f.txn_id) {
            continue;
        }
        pending_txn = Some(f.txn_id);
        pending.push((f.page_no, index));
        if f.commit_page_count != 0 {
            let frames = std::mem::take(&mut pending);
            let txn = RecoveredTxn {
                txn_id: f.txn_id,
                page_count: f.commit_page_count,
                frames,
            };
            out.txns.push(txn);
            out.end_frame = index + 1;
            last_txn = f.txn_id;
            pending_txn = None;
        }
    }
    out.torn_tail = out.end_frame < frames_total;
    out.txn_id_max = pending_txn.unwrap_or(0).max(last_txn).max(skip.txn_id_max);
    if out.torn_tail && !bugs.ignore_vouching {
        let tail_max = check_tail(file, h, out.end_frame, stop, frames_total)?;
        out.txn_id_max = out.txn_id_max.max(tail_max);
    }
    debug_assert!(out.txns.windows(2).all(|w| w[0].txn_id < w[1].txn_id));
    Ok(out)
}

/// The page size of the WAL's first frame, found by trying each: for when the WAL header and
/// the main file's meta page are both torn (a crash inside a recovery that had adopted a
/// torn header, while its checkpoint rewrote the meta page), yet frame 0 is whole.
///
/// # Errors
/// A read error other than a file too short for the size tried ([`Error::Io`]).
pub(crate) fn frame_page_size(file: &dyn StorageFile) -> Result<Option<usize>> {
    let mut page_size = crate::page::PAGE_SIZE_MIN;
    while page_size <= crate::PAGE_SIZE_MAX {
        let mut buf = vec![0u8; FRAME_HEADER_LEN + page_size];
        match file.read_at(&mut buf, WAL_HEADER_LEN) {
            Ok(()) => {
                let frame = decode_frame(&buf).filter(|f| f.index == 0);
                if frame.is_some_and(|f| page_seal_ok(&buf, f.page_no)) {
                    return Ok(Some(page_size));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(Error::io("wal scan", e)),
        }
        page_size *= 2;
    }
    Ok(None)
}

/// True when the page image inside a frame carries a valid seal for `page_no`.
fn page_seal_ok(frame: &[u8], page_no: PageNo) -> bool {
    let page = PageBuf::from_bytes(&frame[FRAME_HEADER_LEN..]);
    page.verify(page_no).is_ok()
}

/// Looks past the end of the valid log for a frame that proves the tail was durable.
///
/// `end` is the first frame after the last commit, `stop` the frame where the scan stopped.
/// Returns the largest transaction id of the valid frames it saw.
fn check_tail(
    file: &dyn StorageFile,
    h: &WalHeader,
    end: u64,
    stop: u64,
    total: u64,
) -> Result<u64> {
    debug_assert!(end <= stop && stop <= total);
    let mut scan = ChunkReader::new(file, h.page_size as usize, total);
    scan.next = stop;
    let mut txn_id_max = 0;
    while let Some((index, bytes)) = scan.next_frame()? {
        let Some(f) = decode_frame(bytes) else {
            continue;
        };
        if f.salt != h.salt || f.index != index {
            continue;
        }
        txn_id_max = txn_id_max.max(f.txn_id);
        if f.synced_upto > end {
            let offset = frame_offset(stop, h.page_size as usize);
            return Err(Error::Corruption {
                location: Location::WalFrame {
                    index: stop,
                    offset,
                },
                detail: format!(
                    "invalid frame, but frame {index} was written after it was synced \
                     (synced_upto {})",
                    f.synced_upto
                ),
            });
        }
    }
    Ok(txn_id_max)
}

/// Reads frames in chunks so recovery does few, large reads.
struct ChunkReader<'a> {
    file: &'a dyn StorageFile,
    frame_bytes: usize,
    total: u64,
    next: u64,
    buf: Vec<u8>,
    buf_first: u64,
    buf_frames: u64,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a dyn StorageFile, page_size: usize, total: u64) -> ChunkReader<'a> {
        let frame_bytes = FRAME_HEADER_LEN + page_size;
        ChunkReader {
            file,
            frame_bytes,
            total,
            next: 0,
            buf: Vec::new(),
            buf_first: 0,
            buf_frames: 0,
        }
    }

    fn next_frame(&mut self) -> Result<Option<(u64, &[u8])>> {
        if self.next >= self.total {
            return Ok(None);
        }
        let index = self.next;
        if index < self.buf_first || index >= self.buf_first + self.buf_frames {
            let count = RECOVERY_CHUNK_FRAMES.min(self.total - index);
            self.buf.resize(count as usize * self.frame_bytes, 0);
            let offset = WAL_HEADER_LEN + index * self.frame_bytes as u64;
            self.file
                .read_at(&mut self.buf, offset)
                .map_err(|e| Error::io("wal scan", e))?;
            self.buf_first = index;
            self.buf_frames = count;
        }
        self.next += 1;
        let start = (index - self.buf_first) as usize * self.frame_bytes;
        Ok(Some((index, &self.buf[start..start + self.frame_bytes])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemStorage, Storage};

    const PS: usize = 4096;

    fn frame(h: &FrameHeader) -> Vec<u8> {
        let mut page = PageBuf::zeroed(PS);
        page.body_mut()[0] = 1;
        page.body_mut()[1] = h.index as u8;
        page.seal(h.page_no, h.txn_id);
        let mut out = Vec::new();
        encode_frame(h, &page, &mut out);
        out
    }

    fn write_log(txns: &[(u64, u32)], salt: u64) -> std::io::Result<(MemStorage, WalHeader)> {
        let s = MemStorage::new();
        let f = s.open("wal", true)?;
        let h = WalHeader {
            page_size: PS as u32,
            salt,
            generation: 1,
        };
        f.write_at(&h.encode(), 0)?;
        let mut index = 0u64;
        for &(txn_id, pages) in txns {
            for p in 0..pages {
                let commit = if p + 1 == pages { 10 } else { 0 };
                let fh = FrameHeader {
                    page_no: p + 1,
                    commit_page_count: commit,
                    salt,
                    index,
                    txn_id,
                    synced_upto: index,
                };
                f.write_at(&frame(&fh), frame_offset(index, PS))?;
                index += 1;
            }
        }
        Ok((s, h))
    }

    #[test]
    fn recovers_committed_and_drops_torn_tail(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let (s, h) = write_log(&[(1, 2), (2, 3)], 99)?;
        let f = s.open("wal", false)?;
        let r = recover(f.as_ref(), &h, ScanBugs::default())?;
        assert_eq!(r.txns.len(), 2);
        assert_eq!(r.end_frame, 5);
        assert!(!r.torn_tail);
        // Tear the last frame of txn 2: only txn 1 survives, and it is not corruption
        // because no later frame vouches for the torn one.
        f.write_at(&[0xAB; 100], frame_offset(4, PS) + 200)?;
        let r = recover(f.as_ref(), &h, ScanBugs::default())?;
        assert_eq!(r.txns.len(), 1);
        assert!(r.torn_tail);
        Ok(())
    }

    #[test]
    fn invalid_frame_before_vouching_frame_is_corruption(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let (s, h) = write_log(&[(1, 2), (2, 1), (3, 2)], 5)?;
        let f = s.open("wal", false)?;
        // Frame 1 (commit of txn 1) is damaged; frame 4 says 4 frames were synced.
        f.write_at(&[0xFFu8; 8], frame_offset(1, PS) + 100)?;
        let err = recover(f.as_ref(), &h, ScanBugs::default())
            .err()
            .ok_or("expected corruption")?;
        assert!(err.is_corruption(), "{err}");
        Ok(())
    }

    /// The seeded bug `SkipInvalidWalTxn` drops the damaged transaction and keeps the later
    /// one: the hole the harness's prefix check must catch.
    #[test]
    fn skip_invalid_txn_keeps_the_transaction_after_a_damaged_one(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let (s, h) = write_log(&[(1, 2), (2, 2), (3, 2)], 5)?;
        let f = s.open("wal", false)?;
        f.write_at(&[0xFFu8; 8], frame_offset(3, PS) + 100)?;
        let bugs = ScanBugs {
            skip_invalid_txn: true,
            ..ScanBugs::default()
        };
        let r = recover(f.as_ref(), &h, bugs)?;
        let ids: Vec<u64> = r.txns.iter().map(|t| t.txn_id).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(r.end_frame, 6);
        Ok(())
    }

    /// A frame of an older generation left in place (the disk lost or misdirected the write
    /// that should have replaced it) carries a valid page seal: only its header shows that it
    /// is stale (`harness run faults/bitflip --seed 300`).
    #[test]
    fn read_frame_page_refuses_a_stale_frame() -> std::result::Result<(), Box<dyn std::error::Error>>
    {
        let (s, h) = write_log(&[(1, 2)], 5)?;
        let f = s.open("wal", false)?;
        let page = read_frame_page(f.as_ref(), 1, PS, h.salt, 2, false)?;
        assert_eq!(page.body()[1], 1);
        let err = read_frame_page(f.as_ref(), 1, PS, h.salt, 3, false).err();
        assert!(
            err.is_some_and(|e| e.is_corruption()),
            "wrong page accepted"
        );
        let stale = frame(&FrameHeader {
            page_no: 2,
            commit_page_count: 10,
            salt: 4,
            index: 1,
            txn_id: 1,
            synced_upto: 0,
        });
        f.write_at(&stale, frame_offset(1, PS))?;
        let err = read_frame_page(f.as_ref(), 1, PS, h.salt, 2, false).err();
        assert!(
            err.is_some_and(|e| e.is_corruption()),
            "stale frame accepted"
        );
        Ok(())
    }

    #[test]
    fn stale_salt_frames_do_not_validate() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let (s, _) = write_log(&[(1, 2)], 5)?;
        let f = s.open("wal", false)?;
        let h2 = WalHeader {
            page_size: PS as u32,
            salt: 6,
            generation: 2,
        };
        let r = recover(f.as_ref(), &h2, ScanBugs::default())?;
        assert!(r.txns.is_empty());
        assert!(WalHeader::decode(&h2.encode()).is_some());
        let mut bad = h2.encode();
        bad[20] ^= 1;
        assert!(WalHeader::decode(&bad).is_none());
        Ok(())
    }
}
