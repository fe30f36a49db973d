//! Durability tracking: per file a durable image and the writes since its last sync, per name
//! whether its creation or removal has been made durable by `sync_dir`; and the crash image
//! built from them.

use std::collections::BTreeMap;
use std::io;

use engine::MemStorage;

use super::plan::{CrashModel, GarbageSource, Granularity, SectorFate, SECTOR_BYTES};
use super::rng::{hash, hash_bytes, unit, SplitMix64};
use super::{FaultEvent, FaultKind};

/// Unsynced bytes held for all files together. A workload that never syncs would otherwise
/// grow the tracker without bound; past this the write fails loudly instead of swapping.
pub const TRACK_PENDING_BYTES_MAX: u64 = 1 << 30;

/// Largest tracked file, the same bound as `engine::MemStorage` (64 GiB): the durable image is
/// held in memory.
pub const TRACK_FILE_BYTES_MAX: u64 = 1 << 36;

/// Sectors a single write may span (64 MiB): bounds the fate vector of one write.
const WRITE_SECTORS_MAX: u64 = (64 << 20) / SECTOR_BYTES;

const SALT_WRITE: u64 = 0x5752_4954; // "WRIT"
const SALT_SECTOR: u64 = 0x5345_4354; // "SECT"
const SALT_SET_LEN: u64 = 0x534C_454E; // "SLEN"
const SALT_GARBAGE: u64 = 0x4741_5242; // "GARB"
const SALT_DIR: u64 = 0x4449_5230; // "DIR0"

/// One write or truncation not yet made durable by `sync`.
#[derive(Debug, Clone)]
pub enum PendingOp {
    /// `write_at` (at the offset where it really landed).
    Write {
        op_index: u64,
        offset: u64,
        data: Vec<u8>,
    },
    /// `set_len`.
    SetLen { op_index: u64, len: u64 },
}

/// One incarnation of a file name.
#[derive(Debug, Clone)]
pub struct FileTrack {
    incarnation: u64,
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
    new_since_dir_sync: bool,
}

/// Durable state of every file the fault layer has seen. Iteration is by name (`BTreeMap`) so
/// crash images are deterministic.
#[derive(Debug, Default)]
pub struct Tracker {
    live: BTreeMap<String, FileTrack>,
    removed: BTreeMap<String, FileTrack>,
    incarnations: u64,
    pending_bytes: u64,
}

impl Tracker {
    /// The incarnation of the live file `name`, if tracked.
    pub fn incarnation(&self, name: &str) -> Option<u64> {
        self.live.get(name).map(|t| t.incarnation)
    }

    /// Starts tracking `name` with `durable` bytes; `created` marks a creation that is not
    /// durable until `sync_dir`. Returns the new incarnation.
    pub fn register(&mut self, name: &str, durable: Vec<u8>, created: bool) -> u64 {
        debug_assert!(!self.live.contains_key(name), "file {name} tracked twice");
        self.incarnations += 1;
        let track = FileTrack {
            incarnation: self.incarnations,
            durable,
            pending: Vec::new(),
            new_since_dir_sync: created,
        };
        self.live.insert(name.to_string(), track);
        self.incarnations
    }

    fn track_mut(&mut self, name: &str, incarnation: u64) -> Option<&mut FileTrack> {
        let live = self
            .live
            .get_mut(name)
            .filter(|t| t.incarnation == incarnation);
        match live {
            Some(track) => Some(track),
            None => self
                .removed
                .get_mut(name)
                .filter(|t| t.incarnation == incarnation),
        }
    }

    /// Checks that one more unsynced operation ending at `end` with `bytes` fits the limits.
    /// Called before the inner write so a refused write changes nothing.
    ///
    /// # Errors
    /// `FileTooLarge` past [`TRACK_FILE_BYTES_MAX`]; `Other` past [`TRACK_PENDING_BYTES_MAX`].
    pub fn admit(&self, end: u64, bytes: u64) -> io::Result<()> {
        if end > TRACK_FILE_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "fault tracker file limit",
            ));
        }
        if self.pending_bytes + bytes > TRACK_PENDING_BYTES_MAX {
            return Err(io::Error::other(format!(
                "fault tracker holds {TRACK_PENDING_BYTES_MAX} unsynced bytes: sync more often \
                 or set track_durability = false"
            )));
        }
        Ok(())
    }

    /// Appends an unsynced operation of the file handle (`name`, `incarnation`), after
    /// [`Tracker::admit`] accepted it and the inner storage performed it.
    pub fn record(&mut self, name: &str, incarnation: u64, op: PendingOp) {
        let bytes = op_bytes(&op);
        if let Some(track) = self.track_mut(name, incarnation) {
            track.pending.push(op);
            self.pending_bytes += bytes;
        }
        debug_assert!(self.pending_bytes <= TRACK_PENDING_BYTES_MAX + bytes);
    }

    /// `sync` (operation `sync_op`) succeeded: the file's unsynced operations issued before it
    /// began become durable; later ones (issued while it ran) stay unsynced. Returns their
    /// count.
    pub fn sync_file_before(&mut self, name: &str, incarnation: u64, sync_op: u64) -> usize {
        let Some(track) = self.track_mut(name, incarnation) else {
            return 0;
        };
        let (covered, later): (Vec<PendingOp>, Vec<PendingOp>) = std::mem::take(&mut track.pending)
            .into_iter()
            .partition(|op| op_index(op) < sync_op);
        track.pending = later;
        let mut bytes = 0;
        for op in &covered {
            bytes += apply_exact(&mut track.durable, op);
        }
        self.pending_bytes -= bytes;
        covered.len()
    }

    /// `sync` failed: the file's unsynced operations will never become durable, while reads
    /// still see them (Linux after a writeback error). Returns their count.
    pub fn lose_unsynced(&mut self, name: &str, incarnation: u64) -> usize {
        let Some(track) = self.track_mut(name, incarnation) else {
            return 0;
        };
        let pending = std::mem::take(&mut track.pending);
        let bytes: u64 = pending.iter().map(op_bytes).sum();
        self.pending_bytes -= bytes;
        pending.len()
    }

    /// `sync_dir` succeeded: every creation and removal so far is durable.
    pub fn sync_dir(&mut self) {
        for track in self.live.values_mut() {
            track.new_since_dir_sync = false;
        }
        let dropped: u64 = self
            .removed
            .values()
            .flat_map(|t| t.pending.iter())
            .map(op_bytes)
            .sum();
        self.pending_bytes -= dropped;
        self.removed.clear();
    }

    /// `remove` succeeded. A durable name is kept aside: an unsynced removal can be undone.
    pub fn remove(&mut self, name: &str) {
        let Some(track) = self.live.remove(name) else {
            return;
        };
        if track.new_since_dir_sync || self.removed.contains_key(name) {
            // Either nothing durable to restore, or an older durable incarnation is already
            // kept aside and is what a lost directory update would bring back.
            self.pending_bytes -= track.pending.iter().map(op_bytes).sum::<u64>();
            return;
        }
        self.removed.insert(name.to_string(), track);
    }

    /// Flips `mask` at byte `pos` of the durable image of `name` (at-rest corruption).
    pub fn flip_durable(&mut self, name: &str, pos: u64, mask: u8) {
        if let Some(byte) = self
            .live
            .get_mut(name)
            .and_then(|t| t.durable.get_mut(pos as usize))
        {
            *byte ^= mask;
        }
    }

    /// The disk after a power loss under `model`; `crash_seed` decides every fate.
    pub fn crash_image(
        &self,
        model: &CrashModel,
        crash_seed: u64,
        op_index: u64,
        events: &mut Vec<FaultEvent>,
    ) -> MemStorage {
        let image = MemStorage::new();
        let names: std::collections::BTreeSet<&String> =
            self.live.keys().chain(self.removed.keys()).collect();
        for name in names {
            let lost = chance_dir(crash_seed, name, model.dir_op_lost);
            let live = self.live.get(name.as_str());
            let old = self.removed.get(name.as_str());
            let chosen = match (live, old) {
                (Some(t), old) if t.new_since_dir_sync && lost => {
                    events.push(namespace_event(op_index, FaultKind::FileVanished, name));
                    old
                }
                (Some(t), _) => Some(t),
                (None, old) if lost => {
                    events.push(namespace_event(op_index, FaultKind::RemovalUndone, name));
                    old
                }
                (None, _) => None,
            };
            if let Some(track) = chosen {
                image.put(name, replay(track, name, model, crash_seed, events));
            }
        }
        image
    }
}

fn op_index(op: &PendingOp) -> u64 {
    match op {
        PendingOp::Write { op_index, .. } | PendingOp::SetLen { op_index, .. } => *op_index,
    }
}

fn op_bytes(op: &PendingOp) -> u64 {
    match op {
        PendingOp::Write { data, .. } => data.len() as u64,
        PendingOp::SetLen { .. } => 0,
    }
}

/// Applies `op` as the caller asked; returns its byte count.
fn apply_exact(image: &mut Vec<u8>, op: &PendingOp) -> u64 {
    match op {
        PendingOp::Write { offset, data, .. } => {
            let start = *offset as usize;
            let end = start + data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(data);
            data.len() as u64
        }
        PendingOp::SetLen { len, .. } => {
            image.resize(*len as usize, 0);
            0
        }
    }
}

fn chance_dir(crash_seed: u64, name: &str, p: f64) -> bool {
    p > 0.0 && unit(hash(crash_seed, SALT_DIR, hash_bytes(name.as_bytes()))) < p
}

fn namespace_event(op_index: u64, kind: FaultKind, name: &str) -> FaultEvent {
    FaultEvent {
        op_index,
        kind,
        file: name.to_string(),
        offset: 0,
        len: 0,
        detail: String::new(),
    }
}

/// The durable image of `track` plus each unsynced operation under `model`.
fn replay(
    track: &FileTrack,
    name: &str,
    model: &CrashModel,
    crash_seed: u64,
    events: &mut Vec<FaultEvent>,
) -> Vec<u8> {
    let mut image = track.durable.clone();
    for op in &track.pending {
        match op {
            PendingOp::SetLen { op_index, len } => {
                let fate = model.fate(unit(hash(crash_seed, SALT_SET_LEN, *op_index)));
                if fate != SectorFate::Omitted {
                    image.resize(*len as usize, 0);
                }
                events.push(FaultEvent {
                    op_index: *op_index,
                    kind: FaultKind::CrashSetLen,
                    file: name.to_string(),
                    offset: *len,
                    len: 0,
                    detail: format!("{fate:?}").to_lowercase(),
                });
            }
            PendingOp::Write {
                op_index,
                offset,
                data,
            } => {
                let counts = replay_write(&mut image, *op_index, *offset, data, model, crash_seed);
                events.push(FaultEvent {
                    op_index: *op_index,
                    kind: FaultKind::CrashWrite,
                    file: name.to_string(),
                    offset: *offset,
                    len: data.len() as u64,
                    detail: format!(
                        "sectors written {}, omitted {}, garbage {}",
                        counts[0], counts[1], counts[2]
                    ),
                });
            }
        }
    }
    image
}

/// Applies one unsynced write sector by sector; returns [written, omitted, garbage] counts.
fn replay_write(
    image: &mut Vec<u8>,
    op_index: u64,
    offset: u64,
    data: &[u8],
    model: &CrashModel,
    crash_seed: u64,
) -> [u32; 3] {
    let mut counts = [0u32; 3];
    if data.is_empty() {
        return counts;
    }
    let end = offset + data.len() as u64;
    let (first, last) = (offset / SECTOR_BYTES, (end - 1) / SECTOR_BYTES);
    assert!(
        last - first < WRITE_SECTORS_MAX,
        "write of {} bytes too large to track",
        data.len()
    );
    let write_word = hash(crash_seed, SALT_WRITE, op_index);
    let sector_seed = hash(crash_seed, SALT_SECTOR, op_index);
    let fates: Vec<SectorFate> = (first..=last)
        .map(|s| match model.granularity {
            Granularity::Write => model.fate(unit(write_word)),
            Granularity::Sector => model.fate(unit(hash(sector_seed, 0, s))),
        })
        .collect();
    if fates.iter().any(|f| *f != SectorFate::Omitted) && (image.len() as u64) < end {
        image.resize(end as usize, 0);
    }
    for (sector, fate) in (first..=last).zip(fates) {
        let lo = offset.max(sector * SECTOR_BYTES);
        let hi = end.min((sector + 1) * SECTOR_BYTES);
        let meant = &data[(lo - offset) as usize..(hi - offset) as usize];
        match fate {
            SectorFate::Written => {
                image[lo as usize..hi as usize].copy_from_slice(meant);
                counts[0] += 1;
            }
            SectorFate::Omitted => counts[1] += 1,
            SectorFate::Garbage => {
                let seed = match model.garbage_source {
                    GarbageSource::Random => {
                        hash(hash(crash_seed, SALT_GARBAGE, op_index), 0, sector)
                    }
                    GarbageSource::Content => hash(hash_bytes(meant), SALT_GARBAGE, sector),
                };
                let (g_lo, g_hi) = if model.whole_sector_garbage {
                    let start = (sector * SECTOR_BYTES) as usize;
                    (start, image.len().min(start + SECTOR_BYTES as usize))
                } else {
                    (lo as usize, hi as usize)
                };
                SplitMix64::new(seed).fill(&mut image[g_lo..g_hi]);
                counts[2] += 1;
            }
        }
    }
    counts
}
