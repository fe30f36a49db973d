//! Checkpoint: copy committed page versions from the WAL into the main file, then restart
//! the WAL when no reader needs the old versions. The numbered steps match docs/design.md.
//!
//! Functions over [`Shared`]: the pager writes and syncs the main file, the WAL store
//! hands out frames and restarts the log; what a checkpoint may copy, and when, is decided
//! here.

use std::time::Duration;

use parking_lot::MutexGuard;

use crate::error::Result;
use crate::page::{PageBuf, PageNo};
use crate::shared::{Shared, WriterState};
use crate::stats::Stats;

/// Rounds of copying beside the writer before a background checkpoint takes the writer to
/// finish: under a steady write load each round has less to copy; four bound the time a
/// checkpoint can lag behind a writer that never lets up.
const PRECOPY_ROUNDS_MAX: usize = 4;

/// How long a holder of `checkpoint_serial` waits for the writer before it hands the serial
/// lock to a committer that may be waiting for it (see [`writer_after_serial`]).
const HANDOFF_WAIT: Duration = Duration::from_millis(1);

/// Handoffs before a holder of `checkpoint_serial` waits for the writer outright: each one
/// waits out one write transaction, so a crowd of writers cannot keep a checkpoint from the
/// writer for long, and the committer's own wait ([`BOUND_WAIT_MAX`]) ends it at worst.
const HANDOFF_TRIES_MAX: usize = 16;

/// How long a committer whose frames would cross the WAL's bound waits for the checkpoint
/// lock: long enough for a background checkpoint to finish copying a bounded WAL (it then
/// hands the lock over), short enough that a wedged one only lets this commit pass the bound.
const BOUND_WAIT_MAX: Duration = Duration::from_secs(10);

/// Runs a checkpoint while holding the writer. `force_full` asks for a WAL reset even
/// when nothing needs copying (used at open to start a fresh generation).
pub(crate) fn checkpoint_locked(s: &Shared, w: &mut WriterState, force_full: bool) -> Result<()> {
    s.check_poisoned()?;
    if !force_full && pinned_by_reader(s, w.latest_txn) {
        Stats::add(&s.stats.checkpoints_blocked_by_reader, 1);
        return Ok(());
    }
    // Step 1: every frame to be copied is durable in the WAL. It comes before the
    // reader limit: once the newest commit is visible, no new reader can start older.
    s.wal.wait_durable(w.wal.lsn())?;
    let reader_limit = {
        let oldest = s.readers.lock().oldest();
        oldest.unwrap_or(u64::MAX).min(w.latest_txn)
    };
    let full = reader_limit == w.latest_txn;
    let limit = if s.bug(crate::SeededBug::CheckpointPastReader) {
        w.latest_txn
    } else {
        reader_limit
    };
    let (mut copies, generation, salt) = s.wal.collect_copies(limit);
    if s.bug(crate::SeededBug::DropPageAtCheckpoint) && copies.len() > 1 {
        copies.sort_unstable();
        copies.remove(copies.len() / 2);
    }
    if copies.is_empty() && !(full && (force_full || w.wal.frames() > 0)) {
        return Ok(());
    }
    // Step 2: copy the newest version of each page. Only pages in the WAL are written,
    // so a torn main-file page is always still covered by its frame until step 4.
    let pages = load_copies(s, copies, (generation, salt))?;
    s.pager.write_main(&pages)?;
    if full && s.bug(crate::SeededBug::WalResetBeforeMainSync) {
        reset_wal(s, w, (generation, salt))?;
        s.pager.sync_main()?;
        Stats::add(&s.stats.checkpoints, 1);
        return Ok(());
    }
    // Step 3: the main file is durable before the WAL may forget anything.
    s.pager.sync_main()?;
    if full {
        // Step 4: a new generation; a torn header here is safe because step 3 is done.
        reset_wal(s, w, (generation, salt))?;
    } else {
        s.wal.note_backfilled(generation, limit);
        Stats::add(&s.stats.checkpoints_blocked_by_reader, 1);
    }
    Stats::add(&s.stats.checkpoints, 1);
    Ok(())
}

/// Step 4: restarts the WAL; the cached frames of the old generation go with its index.
fn reset_wal(s: &Shared, w: &mut WriterState, generation: (u64, u64)) -> Result<()> {
    let page_count = u64::from(w.meta.page_count);
    s.wal.reset(&mut w.wal, generation, w.latest_txn, || {
        s.pager.purge_wal();
        s.stats
            .page_count
            .store(page_count, std::sync::atomic::Ordering::Relaxed);
        s.stats
            .wal_frames
            .store(0, std::sync::atomic::Ordering::Relaxed);
    })
}

/// True when a transaction the size of the last commit would take the WAL generation
/// past its hard bound (`WAL_BOUND_FACTOR` times the checkpoint threshold): the next
/// writer checkpoints before it starts. (A bulk load commits batches of one size, so
/// the last commit predicts the next; [`checkpoint_before_frames`] catches the rest at
/// commit.)
pub(crate) fn wal_past_bound(s: &Shared, w: &WriterState) -> bool {
    wal_bound_crossed(s, w, w.last_txn_frames) && w.wal.lsn() >= w.bound_retry_lsn
}

/// True when `frames` more frames would take the current generation past its bound and
/// it holds frames a checkpoint could retire. (A transaction larger than the bound on
/// its own passes it in an empty generation: nothing can make room for it.)
fn wal_bound_crossed(s: &Shared, w: &WriterState, frames: u64) -> bool {
    let frames_bytes = frames.saturating_mul(s.wal.frame_bytes());
    w.wal.frames() > 0 && s.wal.bytes(&w.wal).saturating_add(frames_bytes) > s.wal.bound_bytes()
}

/// At commit, holding the writer, before `frames` frames are appended: if they would
/// take the WAL past its bound, checkpoint first. The lock order is `checkpoint_serial`
/// then the writer, so a committer may not simply wait for the serial lock; it waits
/// at most [`BOUND_WAIT_MAX`], and every holder of that lock hands it over rather than
/// wait long for the writer ([`writer_after_serial`]). Only past that wait do this
/// transaction's frames pass the bound.
///
/// # Errors
/// The checkpoint's (a full disk fails the transaction before it wrote anything).
pub(crate) fn checkpoint_before_frames(s: &Shared, w: &mut WriterState, frames: u64) -> Result<()> {
    if !wal_bound_crossed(s, w, frames) || w.wal.lsn() < w.bound_retry_lsn {
        return Ok(());
    }
    let Some(_serial) = s.checkpoint_serial.try_lock_for(BOUND_WAIT_MAX) else {
        return Ok(());
    };
    Stats::add(&s.stats.bound_checkpoints, 1);
    checkpoint_locked(s, w, false)?;
    note_bound_retry(s, w);
    Ok(())
}

/// After a bound checkpoint: when a reader kept the WAL from restarting, the next try
/// comes after another threshold of frames, not from every writer while the reader
/// stays. (A failed checkpoint sets nothing: every writer meets the failure until it
/// clears.)
fn note_bound_retry(s: &Shared, w: &mut WriterState) {
    if wal_bound_crossed(s, w, w.last_txn_frames) {
        let frames = s.opts.wal_checkpoint_bytes / s.wal.frame_bytes();
        w.bound_retry_lsn = w.wal.lsn() + frames.max(1);
    }
}

/// The writer, for a holder of `checkpoint_serial`. A committer holding the writer may
/// be waiting for the serial lock to keep the WAL within its bound
/// ([`checkpoint_before_frames`]), so rather than wait for the writer while holding it,
/// the holder hands the serial lock over (fairly: straight to a waiter), waits for the
/// writer without it, and tries again. After [`HANDOFF_TRIES_MAX`] tries it waits
/// outright; a committer then waits out its own bounded wait.
pub(crate) fn writer_after_serial<'a>(
    s: &'a Shared,
    mut serial: MutexGuard<'a, ()>,
) -> (MutexGuard<'a, ()>, MutexGuard<'a, WriterState>) {
    for _ in 0..HANDOFF_TRIES_MAX {
        if let Some(w) = s.writer.try_lock_for(HANDOFF_WAIT) {
            return (serial, w);
        }
        MutexGuard::unlock_fair(serial);
        drop(s.writer.lock());
        serial = s.checkpoint_serial.lock();
    }
    let w = s.writer.lock();
    (serial, w)
}

/// Run by a writer that found the WAL past its bound, before its transaction, with the
/// lock order of every checkpoint (serial, then writer). A checkpoint that cannot
/// restart the WAL because a reader needs it returns at once and the WAL grows (the
/// documented cost of a long reader); one that fails (a full disk) fails the
/// transaction before it has written anything.
pub(crate) fn checkpoint_past_bound(s: &Shared) -> Result<()> {
    let (_serial, mut w) = writer_after_serial(s, s.checkpoint_serial.lock());
    if !wal_past_bound(s, &w) {
        return Ok(());
    }
    Stats::add(&s.stats.bound_checkpoints, 1);
    checkpoint_locked(s, &mut w, false)?;
    note_bound_retry(s, &mut w);
    Ok(())
}

/// A checkpoint in two phases, for the background thread. Phase 1, beside the writer:
/// copy (steps 1-3) every page version committed, durable and not needed by a reader
/// right now; frames never change within a generation and `checkpoint_serial` keeps
/// the generation, so nothing here needs the writer. Phase 2, holding the writer:
/// [`checkpoint_locked`] copies only the frames committed during phase 1 (they are past
/// `backfilled_txn`) and resets the WAL when no reader needs it.
pub(crate) fn checkpoint_background(s: &Shared) -> Result<()> {
    let serial = s.checkpoint_serial.lock();
    s.check_poisoned()?;
    // Phase 1 again while the frames committed during the last round exceed an eighth
    // of the threshold: phase 2 then holds the writer for little.
    let delta_bytes_max = s.opts.wal_checkpoint_bytes / 8;
    for _ in 0..PRECOPY_ROUNDS_MAX {
        let lsn_before = s.wal.written().0;
        precopy(s)?;
        let lsn_after = s.wal.written().0;
        debug_assert!(lsn_after >= lsn_before);
        let delta_bytes = (lsn_after - lsn_before) * s.wal.frame_bytes();
        if delta_bytes <= delta_bytes_max {
            break;
        }
    }
    let (serial, mut w) = writer_after_serial(s, serial);
    let result = checkpoint_locked(s, &mut w, false);
    drop(w);
    drop(serial);
    result
}

/// Phase 1 of [`checkpoint_background`]: steps 1-3 for every page version that is
/// committed and durable now and not needed by an open reader.
fn precopy(s: &Shared) -> Result<()> {
    let (lsn, txn) = s.wal.written();
    if pinned_by_reader(s, txn) {
        return Ok(());
    }
    s.wal.wait_durable(lsn)?;
    let limit = {
        let oldest = s.readers.lock().oldest();
        oldest.unwrap_or(u64::MAX).min(txn)
    };
    let limit = if s.bug(crate::SeededBug::CheckpointPastReader) {
        txn
    } else {
        limit
    };
    let (copies, generation, salt) = s.wal.collect_copies(limit);
    if copies.is_empty() {
        return Ok(());
    }
    let pages = load_copies(s, copies, (generation, salt))?;
    s.pager.write_main(&pages)?;
    s.pager.sync_main()?;
    s.wal.note_backfilled(generation, limit);
    Ok(())
}

/// True when an open reader older than `latest_txn` holds the copy limit at or below
/// what is already copied: a checkpoint now could copy nothing and could not reset the
/// WAL, so it is skipped instead of scanning the WAL index (and, in Off mode, syncing)
/// on every commit for as long as that reader stays. Skipping is always safe.
fn pinned_by_reader(s: &Shared, latest_txn: u64) -> bool {
    let Some(oldest) = s.readers.lock().oldest() else {
        return false;
    };
    oldest < latest_txn && oldest <= s.wal.backfilled_txn()
}

/// The page images of `copies` (from the cache, else from the WAL), sorted by page.
fn load_copies(
    s: &Shared,
    copies: Vec<(PageNo, u64)>,
    generation: (u64, u64),
) -> Result<Vec<(PageNo, PageBuf)>> {
    let mut pages = Vec::with_capacity(copies.len() + 1);
    for (no, frame) in copies {
        pages.push((no, s.pager.frame(&s.wal, generation, frame, no)?));
    }
    pages.sort_by_key(|(no, _)| *no);
    Ok(pages)
}

/// True when the current WAL generation is past the auto-checkpoint size.
pub(crate) fn wal_over_threshold(s: &Shared, w: &WriterState) -> bool {
    s.wal.bytes(&w.wal) > s.opts.wal_checkpoint_bytes
}
