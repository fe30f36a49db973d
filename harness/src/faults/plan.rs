//! What to inject: the fault plan, as written in a scenario's `[faults.storage]` table.
//!
//! ```toml
//! [faults.storage]
//! seed = 7                                  # optional: overrides the run seed
//! enospc = { at_write = 500 }               # or { bytes_max = 1048576 }
//! eio_sync = { at = 3 }                     # 3rd sync fails, once
//! eio_read = { probability = 0.001, persistent = false, file = "db-wal" }
//! fail_at = { op = 17, persistent = true }  # SQLite-style: I/O number 17 and every later one
//! misdirect = { probability = 0.0001 }
//! latent = [{ file = "db", offset = 8192, len = 4096 }]
//! bit_flips = [{ at_op = 1000, file = "db", bits = 3 }]
//! crash_at_op = 2000                        # power loss at I/O number 2000
//! crash = "fdb"                             # preset, or a table with the CrashModel fields
//! ```

use serde::{Deserialize, Serialize};

/// The sector size of the power-loss and misdirection models: the unit a disk writes
/// atomically (or tears) in the SQLite, FoundationDB and TigerBeetle models.
pub const SECTOR_BYTES: u64 = 512;

/// Everything the fault layer injects. Every field is optional; the default injects nothing
/// but still tracks unsynced writes so a crash image can be built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultPlan {
    /// Overrides the run seed for fault decisions when set.
    pub seed: Option<u64>,
    /// A full disk: `StorageFull` with raw os error 28.
    pub enospc: Option<EnospcPlan>,
    /// EIO (raw os error 5) on `read_at`.
    pub eio_read: Option<Trigger>,
    /// EIO on `write_at`; the failed write does not land.
    pub eio_write: Option<Trigger>,
    /// A short write: `write_at` lands a seeded whole-sector prefix of its buffer (possibly
    /// nothing), then fails with EIO, as a device that stopped part way does.
    pub partial_write: Option<Trigger>,
    /// EIO on `sync` and `sync_dir`; the file's unsynced writes are then never made durable
    /// (Linux marks the failed pages clean: PostgreSQL "fsyncgate", 2018).
    pub eio_sync: Option<Trigger>,
    /// SQLite-style: fail the I/O operation number `op` (reads, writes, syncs, set_len).
    pub fail_at: Option<FailAt>,
    /// A write lands at another sector-aligned offset than asked, and reports success.
    pub misdirect: Option<Trigger>,
    /// Reads overlapping these ranges fail with EIO (latent sector errors), persistently.
    pub latent: Vec<ByteRange>,
    /// Bit flips in data at rest, applied just before the given I/O operation.
    pub bit_flips: Vec<BitFlipPlan>,
    /// Power loss at this I/O operation: the crash image is built with `crash`, the operation
    /// and every later one fail with EIO. Fetch the image with `FaultStorage::crash_image`.
    pub crash_at_op: Option<u64>,
    /// The power-loss model used by `crash_at_op` and `FaultStorage::crash_planned`.
    pub crash: CrashSpec,
    /// Keep durable images and unsynced writes (needed for any crash image). Costs a copy
    /// of every written byte until the next sync, and a lock around each write.
    pub track_durability: bool,
    /// Each `sync` takes this long before it completes, as a disk's fsync does; it covers
    /// only the writes issued before it began. Concurrent committers then meet in group
    /// commits, and a power loss can land while a sync is under way. Not a fault: timing.
    pub sync_delay_us: u64,
}

/// Longest `sync_delay_us`: a slow disk's fsync, ten times over.
pub const SYNC_DELAY_US_MAX: u64 = 100_000;

impl Default for FaultPlan {
    fn default() -> FaultPlan {
        FaultPlan {
            seed: None,
            enospc: None,
            eio_read: None,
            eio_write: None,
            partial_write: None,
            eio_sync: None,
            fail_at: None,
            misdirect: None,
            latent: Vec::new(),
            bit_flips: Vec::new(),
            crash_at_op: None,
            crash: CrashSpec::default(),
            track_durability: true,
            sync_delay_us: 0,
        }
    }
}

impl FaultPlan {
    /// True when some fault may fire without a call from the test (the slow path is needed).
    #[must_use]
    pub fn injects(&self) -> bool {
        self.enospc.is_some()
            || self.eio_read.is_some()
            || self.eio_write.is_some()
            || self.partial_write.is_some()
            || self.eio_sync.is_some()
            || self.fail_at.is_some()
            || self.misdirect.is_some()
            || !self.latent.is_empty()
            || !self.bit_flips.is_empty()
            || self.crash_at_op.is_some()
    }

    /// Checks ranges of the numbers, so a typo fails at load time and not mid-run.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, trigger) in [
            ("eio_read", &self.eio_read),
            ("eio_write", &self.eio_write),
            ("partial_write", &self.partial_write),
            ("eio_sync", &self.eio_sync),
            ("misdirect", &self.misdirect),
        ] {
            if let Some(t) = trigger {
                if !(0.0..=1.0).contains(&t.probability) {
                    return Err(format!(
                        "faults.storage.{name}.probability must be in [0, 1]"
                    ));
                }
                if t.at.is_none() && t.probability == 0.0 {
                    return Err(format!(
                        "faults.storage.{name} never fires: set at or probability"
                    ));
                }
                if t.at == Some(0) {
                    return Err(format!("faults.storage.{name}.at counts from 1"));
                }
            }
        }
        if self.sync_delay_us > SYNC_DELAY_US_MAX {
            return Err(format!(
                "faults.storage.sync_delay_us = {}: at most {SYNC_DELAY_US_MAX}",
                self.sync_delay_us
            ));
        }
        if self.fail_at.as_ref().is_some_and(|f| f.op == 0) || self.crash_at_op == Some(0) {
            return Err("faults.storage: operation numbers count from 1".to_string());
        }
        if self
            .bit_flips
            .iter()
            .any(|f| f.bits > BIT_FLIPS_PER_CALL_MAX)
        {
            return Err(format!(
                "faults.storage.bit_flips: at most {BIT_FLIPS_PER_CALL_MAX} bits"
            ));
        }
        self.crash.model().validate()
    }
}

/// Bits flipped by one call: enough to defeat any checksum, few enough to stay cheap.
pub const BIT_FLIPS_PER_CALL_MAX: u32 = 4096;

/// When the disk is full.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnospcPlan {
    /// The disk fills at this write (counting from 1): it and every later write fail until
    /// `FaultStorage::free_space` is called.
    pub at_write: Option<u64>,
    /// A write that would take the bytes written past this budget fails; `free_space` raises it.
    pub bytes_max: Option<u64>,
}

/// When an EIO (or a misdirected write) fires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trigger {
    /// Fire at the Nth operation of this kind that passes the `file` filter (counting from 1).
    pub at: Option<u64>,
    /// Fire at each operation of this kind with this probability (decided from the seed and
    /// the global operation number).
    pub probability: f64,
    /// Once fired, fire at every later operation of this kind.
    pub persistent: bool,
    /// Only operations on this file name are counted and affected; all files when unset.
    pub file: Option<String>,
}

/// SQLite-style fail-at-N.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailAt {
    /// The I/O operation number that fails (counting reads, writes, syncs, `sync_dir` and
    /// `set_len` from 1).
    pub op: u64,
    /// Fail every operation from `op` on, not only `op`.
    #[serde(default)]
    pub persistent: bool,
}

/// A byte range of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteRange {
    /// File name as given to `Storage::open`.
    pub file: String,
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Bit flips at rest at a given moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitFlipPlan {
    /// Flip just before this I/O operation number.
    pub at_op: u64,
    /// File name.
    pub file: String,
    /// Bits to flip, each in a random sector.
    pub bits: u32,
}

/// A power-loss model by preset name or in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CrashSpec {
    /// One of the named presets.
    Preset(CrashPreset),
    /// Explicit odds.
    Model(CrashModel),
}

impl Default for CrashSpec {
    fn default() -> CrashSpec {
        CrashSpec::Preset(CrashPreset::Sqlite)
    }
}

impl From<CrashPreset> for CrashSpec {
    fn from(preset: CrashPreset) -> CrashSpec {
        CrashSpec::Preset(preset)
    }
}

impl CrashSpec {
    /// The odds this spec stands for.
    #[must_use]
    pub fn model(&self) -> CrashModel {
        match self {
            CrashSpec::Preset(p) => p.model(),
            CrashSpec::Model(m) => m.clone(),
        }
    }
}

/// Named power-loss models after the systems they imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashPreset {
    /// SQLite crash VFS (src/test6.c): per unsynced write, written 3/8, omitted 3/8, its
    /// sectors filled with random bytes 1/4. Directory operations are not modelled there.
    Sqlite,
    /// FoundationDB `AsyncFileNonDurable`: per 512-byte sector, written 0.25, garbage 0.5,
    /// dropped 0.25; a skipped directory fsync loses an unsynced creation or removal with 0.5.
    Fdb,
    /// TigerBeetle VOPR: per sector of an in-flight write, written 0.1, corrupted 0.9, with
    /// garbage seeded by the original bytes (a retry sees the same garbage); unsynced directory
    /// operations are lost with 0.5.
    Tigerbeetle,
    /// Everything written survives: the crash image equals the live image.
    KeepAll,
    /// Nothing unsynced survives: the crash image equals the last synced image, and every
    /// unsynced creation or removal is undone.
    DropAll,
}

impl CrashPreset {
    /// The odds of the preset.
    #[must_use]
    pub fn model(self) -> CrashModel {
        let (granularity, written, omitted, garbage, garbage_source, dir_op_lost) = match self {
            CrashPreset::Sqlite => (
                Granularity::Write,
                3.0,
                3.0,
                2.0,
                GarbageSource::Random,
                0.0,
            ),
            CrashPreset::Fdb => (
                Granularity::Sector,
                1.0,
                1.0,
                2.0,
                GarbageSource::Random,
                0.5,
            ),
            CrashPreset::Tigerbeetle => (
                Granularity::Sector,
                1.0,
                0.0,
                9.0,
                GarbageSource::Content,
                0.5,
            ),
            CrashPreset::KeepAll => (
                Granularity::Write,
                1.0,
                0.0,
                0.0,
                GarbageSource::Random,
                0.0,
            ),
            CrashPreset::DropAll => (
                Granularity::Write,
                0.0,
                1.0,
                0.0,
                GarbageSource::Random,
                1.0,
            ),
        };
        CrashModel {
            granularity,
            written,
            omitted,
            garbage,
            garbage_source,
            dir_op_lost,
            whole_sector_garbage: false,
        }
    }
}

/// Whether the written / omitted / garbage choice is made once per write or per sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One choice for all sectors of a write (SQLite).
    Write,
    /// One choice per 512-byte sector (FoundationDB, TigerBeetle).
    Sector,
}

/// Where garbage bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GarbageSource {
    /// From the seed, the crash number and the operation number.
    Random,
    /// From a hash of the bytes that were meant for the sector and its offset: the same write
    /// always tears into the same garbage.
    Content,
}

/// Odds of what happens to an unsynced write at power loss. `written`, `omitted` and
/// `garbage` are relative weights (they need not sum to 1). An unsynced `set_len` is kept
/// unless the choice for it is `omitted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashModel {
    /// Per write or per sector.
    pub granularity: Granularity,
    /// Weight of "the bytes reached the platter".
    pub written: f64,
    /// Weight of "the write never happened".
    pub omitted: f64,
    /// Weight of "the sector holds garbage where the write meant to put its bytes" (see
    /// `whole_sector_garbage`).
    pub garbage: f64,
    /// Source of the garbage bytes.
    pub garbage_source: GarbageSource,
    /// Probability that a creation or removal not followed by `sync_dir` is undone.
    pub dir_op_lost: f64,
    /// Garbage fills the whole 512-byte sector, also the bytes of it the write did not cover
    /// (a device without SQLite's "powersafe overwrite": a torn read-modify-write of a sector
    /// can destroy older, synced bytes next to an append). An engine survives this only if it
    /// pads each synced append to a sector boundary. Off in every preset.
    #[serde(default)]
    pub whole_sector_garbage: bool,
}

/// What became of one write or sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorFate {
    /// Reached the disk.
    Written,
    /// Never reached the disk.
    Omitted,
    /// The disk holds garbage there.
    Garbage,
}

impl CrashModel {
    /// Checks that the weights make a distribution.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let weights = [self.written, self.omitted, self.garbage];
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0
        {
            return Err("crash model weights must be finite, >= 0 and not all 0".to_string());
        }
        if !(0.0..=1.0).contains(&self.dir_op_lost) {
            return Err("crash model dir_op_lost must be in [0, 1]".to_string());
        }
        Ok(())
    }

    /// The fate picked by the uniform value `u` in [0, 1).
    #[must_use]
    pub fn fate(&self, u: f64) -> SectorFate {
        debug_assert!((0.0..1.0).contains(&u));
        let total = self.written + self.omitted + self.garbage;
        let x = u * total;
        if x < self.written {
            SectorFate::Written
        } else if x < self.written + self.omitted {
            SectorFate::Omitted
        } else {
            SectorFate::Garbage
        }
    }
}
