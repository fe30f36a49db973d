//! Fault injection beneath the engine: a [`Storage`](engine::Storage) wrapper that fails,
//! misdirects and corrupts I/O on a seeded schedule, and builds power-loss images.
//!
//! Models followed (REFERENCE.md section 2): SQLite's crash VFS and fail-at-N loops,
//! FoundationDB's `AsyncFileNonDurable`, TigerBeetle's VOPR (content-seeded corruption,
//! misdirected writes, latent sector errors), redb's live/durable images, and Linux's
//! behaviour after a failed fsync.
//!
//! Determinism: every decision is `rng::hash(seed, purpose, global I/O operation number)`, so
//! the same seed and the same sequence of operations give the same faults, the same schedule
//! and the same crash images. With several threads issuing I/O the operation numbers follow
//! the interleaving; replay is exact for a single-threaded (or deterministically scheduled)
//! workload.
//!
//! Reopening a crash image: `let image = faults.crash(&CrashPreset::Fdb.model());` gives a
//! fresh `MemStorage`; open the engine on it directly, or on
//! `FaultStorage::over_mem(&image, plan, seed)` to inject faults (or crash again) during
//! recovery.

mod plan;
pub mod rng;
mod storage;
mod track;

use serde::{Deserialize, Serialize};

pub use plan::{
    BitFlipPlan, ByteRange, CrashModel, CrashPreset, CrashSpec, EnospcPlan, FailAt, FaultPlan,
    GarbageSource, Granularity, SectorFate, Trigger, BIT_FLIPS_PER_CALL_MAX, SECTOR_BYTES,
};
pub use storage::{FaultFile, FaultStorage, MISDIRECT_SECTORS_MAX, SCHEDULE_EVENTS_MAX};
pub use track::{TRACK_FILE_BYTES_MAX, TRACK_PENDING_BYTES_MAX};

/// Raw os error of a full disk (Linux ENOSPC).
pub const ENOSPC: i32 = 28;
/// Raw os error of an I/O error (Linux EIO).
pub const EIO: i32 = 5;

/// One injected fault, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// Global I/O operation number (from 1) the fault hit; for crash outcomes of unsynced
    /// writes, the number of the write.
    pub op_index: u64,
    /// What happened.
    pub kind: FaultKind,
    /// File name (empty for `sync_dir`).
    pub file: String,
    /// Byte offset the operation asked for (for `crash_set_len`, the length).
    pub offset: u64,
    /// Bytes of the operation.
    pub len: u64,
    /// Free text: where a misdirected write landed, sector fates, the bit flipped.
    pub detail: String,
}

/// The kinds of injected faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A write failed with ENOSPC.
    Enospc,
    /// A read failed with EIO.
    EioRead,
    /// A write failed with EIO.
    EioWrite,
    /// A write landed only a prefix of its bytes (see `detail`), then failed with EIO.
    PartialWrite,
    /// A sync or `sync_dir` failed with EIO; the file's unsynced writes will never be durable.
    EioSync,
    /// Fail-at-N: this operation failed with EIO.
    FailAt,
    /// A write landed elsewhere (see `detail`).
    Misdirect,
    /// A read hit a latent sector error.
    LatentSector,
    /// A bit was flipped at rest.
    BitFlip,
    /// Power loss.
    Crash,
    /// The fate of one unsynced write at a power loss.
    CrashWrite,
    /// The fate of one unsynced `set_len` at a power loss.
    CrashSetLen,
    /// A file created without a later `sync_dir` vanished at a power loss.
    FileVanished,
    /// A removal without a later `sync_dir` was undone at a power loss.
    RemovalUndone,
}
