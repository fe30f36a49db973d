//! The file system's state without FUSE: a volatile view (what a process sees) over a durable
//! image (what survives a power loss), and the faults. [`crate::fs`] maps FUSE requests onto
//! it; the tests drive it through a real mount.
//!
//! Durable file data lives in the backing directory, one file per inode (`ino-<n>`); durable
//! names live in memory (the backing directory is the device, not a view of the tree).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::rng::SplitMix64;

/// Sector size of the torn-write model: the unit a disk writes atomically (or not at all).
pub const SECTOR: u64 = 512;
/// Reads that fail after an armed read EIO fires: the kernel's one retry of a failed
/// readahead.
const READ_EIO_REPEAT: u32 = 1;
/// Root inode number (FUSE's).
pub const ROOT: u64 = 1;
/// Largest file the model serves: the dirty map holds one entry per sector, and a bound keeps
/// a runaway writer from eating the harness's memory.
pub const FILE_BYTES_MAX: u64 = 64 << 30;
/// Bit flips one command may inject: a handful proves detection, thousands prove nothing more.
pub const BIT_FLIPS_MAX: u32 = 10_000;

/// What became of a sector that was not durable when the power went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorFate {
    Dropped,
    Written,
    Garbage,
}

/// The torn-write model at a power loss: per unsynced 512-byte sector, the odds (per mille)
/// that it reached the disk intact or as garbage; the rest are dropped. Each sector is drawn
/// on its own, so what survives is a subset, not a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornModel {
    pub written_per_mille: u32,
    pub garbage_per_mille: u32,
}

impl TornModel {
    /// Every unsynced write is lost (LazyFS's `crash`).
    pub const DROP_ALL: TornModel = TornModel {
        written_per_mille: 0,
        garbage_per_mille: 0,
    };
    /// SQLite's crash VFS (src/test6.c): written 3/8, omitted 3/8, garbage 1/4.
    pub const SQLITE: TornModel = TornModel {
        written_per_mille: 375,
        garbage_per_mille: 250,
    };
    /// FoundationDB's AsyncFileNonDurable: written 1/4, garbage about 1/2, dropped 1/4.
    pub const FDB: TornModel = TornModel {
        written_per_mille: 250,
        garbage_per_mille: 500,
    };
    /// Half the sectors land intact, the rest are dropped: no garbage (a disk with
    /// sector-atomic writes).
    pub const HALF: TornModel = TornModel {
        written_per_mille: 500,
        garbage_per_mille: 0,
    };

    /// By name: `drop`, `sqlite`, `fdb`, `half`.
    #[must_use]
    pub fn by_name(name: &str) -> Option<TornModel> {
        Some(match name {
            "drop" => TornModel::DROP_ALL,
            "sqlite" => TornModel::SQLITE,
            "fdb" => TornModel::FDB,
            "half" => TornModel::HALF,
            _ => return None,
        })
    }

    fn draw(self, rng: &mut SplitMix64) -> SectorFate {
        let r = rng.below(1000) as u32;
        if r < self.written_per_mille {
            SectorFate::Written
        } else if r < self.written_per_mille + self.garbage_per_mille {
            SectorFate::Garbage
        } else {
            SectorFate::Dropped
        }
    }
}

/// Faults armed for later operations (counted from when they were armed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Armed {
    /// The Nth fsync/fdatasync from now (1 = the next) fails with EIO and drops the dirty
    /// pages it covered.
    pub fsync_eio_at: Option<u64>,
    /// The Nth write from now fails with EIO (nothing of it lands).
    pub write_eio_at: Option<u64>,
    /// The Nth read from now fails with EIO, and the one after it: the kernel retries a
    /// failed readahead once with a plain read, and one failure alone never reaches the caller.
    pub read_eio_at: Option<u64>,
    /// Reads still to fail after the armed one fired.
    pub read_eio_repeat: u32,
    /// Bytes writes may still carry before every write fails with ENOSPC.
    pub enospc_budget: Option<u64>,
}

/// Counters since the mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub writes: u64,
    pub reads: u64,
    pub fsyncs: u64,
    pub dir_fsyncs: u64,
    pub power_losses: u64,
    pub sectors_written_at_loss: u64,
    pub sectors_garbage_at_loss: u64,
    pub sectors_dropped_at_loss: u64,
    pub eio_fsync: u64,
    pub eio_write: u64,
    pub eio_read: u64,
    pub enospc: u64,
    pub bit_flips: u64,
}

/// A bit flipped in durable data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    pub ino: u64,
    pub offset: u64,
    pub bit: u8,
}

#[derive(Debug)]
pub(crate) struct FileNode {
    /// The durable image of this inode's data.
    backing: File,
    backing_path: PathBuf,
    /// Length a process sees.
    pub(crate) len: u64,
    /// Length that survives a power loss.
    len_durable: u64,
    /// Bytes of the durable image at or past this offset read as zeros in the volatile view
    /// (a truncate that is not yet durable hides them).
    visible_durable: u64,
    /// Written and not yet durable, per sector.
    dirty: BTreeMap<u64, Dirty>,
}

/// A sector written since the last sync: its whole new content, and which bytes of it were
/// written (a torn sector garbles only those: the disk has SQLite's "powersafe overwrite",
/// as every preset of the in-process fault layer assumes).
#[derive(Debug)]
struct Dirty {
    data: Box<[u8]>,
    written: [u64; (SECTOR / 64) as usize],
}

impl Dirty {
    fn mark(&mut self, from: usize, to: usize) {
        for i in from..to {
            self.written[i / 64] |= 1 << (i % 64);
        }
    }

    fn was_written(&self, i: usize) -> bool {
        self.written[i / 64] & (1 << (i % 64)) != 0
    }
}

#[derive(Debug, Default)]
pub(crate) struct DirNode {
    pub(crate) entries: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

#[derive(Debug)]
pub(crate) enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
pub(crate) struct Inode {
    pub(crate) node: Node,
    pub(crate) perm: u16,
}

/// The whole file system.
#[derive(Debug)]
pub struct Model {
    backing: PathBuf,
    pub(crate) inodes: HashMap<u64, Inode>,
    next_ino: u64,
    rng: SplitMix64,
    pub(crate) armed: Armed,
    pub(crate) stats: Stats,
    /// Bumped by each power loss: handles opened before it are dead (EIO).
    pub(crate) epoch: u64,
    /// Any file fsync also makes every name durable (ext4's journal commit); false: only a
    /// directory's fsync makes its names durable (the POSIX floor).
    pub journal_names: bool,
}

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Model {
    /// An empty file system whose durable data goes to files in `backing` (created; files of
    /// an earlier mount in it are removed: the backing directory is this file system's disk).
    ///
    /// # Errors
    /// The backing directory cannot be created or cleared.
    pub fn new(backing: &Path, seed: u64) -> io::Result<Model> {
        std::fs::create_dir_all(backing)?;
        for e in std::fs::read_dir(backing)? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with("ino-") {
                std::fs::remove_file(e.path())?;
            }
        }
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT,
            Inode {
                node: Node::Dir(DirNode::default()),
                perm: 0o755,
            },
        );
        Ok(Model {
            backing: backing.to_path_buf(),
            inodes,
            next_ino: ROOT + 1,
            rng: SplitMix64::new(seed),
            armed: Armed::default(),
            stats: Stats::default(),
            epoch: 0,
            journal_names: false,
        })
    }

    pub(crate) fn dir(&self, ino: u64) -> io::Result<&DirNode> {
        match self.inodes.get(&ino).map(|i| &i.node) {
            Some(Node::Dir(d)) => Ok(d),
            Some(Node::File(_)) => Err(err(libc::ENOTDIR)),
            None => Err(err(libc::ENOENT)),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> io::Result<&mut DirNode> {
        match self.inodes.get_mut(&ino).map(|i| &mut i.node) {
            Some(Node::Dir(d)) => Ok(d),
            Some(Node::File(_)) => Err(err(libc::ENOTDIR)),
            None => Err(err(libc::ENOENT)),
        }
    }

    fn file_mut(&mut self, ino: u64) -> io::Result<&mut FileNode> {
        match self.inodes.get_mut(&ino).map(|i| &mut i.node) {
            Some(Node::File(f)) => Ok(f),
            Some(Node::Dir(_)) => Err(err(libc::EISDIR)),
            None => Err(err(libc::ENOENT)),
        }
    }

    /// The inode `name` in directory `parent` names now.
    ///
    /// # Errors
    /// ENOENT, ENOTDIR.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> io::Result<u64> {
        self.dir(parent)?
            .entries
            .get(name)
            .copied()
            .ok_or_else(|| err(libc::ENOENT))
    }

    /// Creates a file or directory named `name` in `parent` (volatile until `parent` is
    /// synced).
    ///
    /// # Errors
    /// EEXIST, ENOENT, ENOTDIR, backing I/O.
    pub fn create(&mut self, parent: u64, name: &OsStr, dir: bool, perm: u16) -> io::Result<u64> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(err(libc::EEXIST));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = if dir {
            Node::Dir(DirNode::default())
        } else {
            let backing_path = self.backing.join(format!("ino-{ino}"));
            let backing = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&backing_path)?;
            Node::File(FileNode {
                backing,
                backing_path,
                len: 0,
                len_durable: 0,
                visible_durable: 0,
                dirty: BTreeMap::new(),
            })
        };
        self.inodes.insert(ino, Inode { node, perm });
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Removes a name (a directory only when empty).
    ///
    /// # Errors
    /// ENOENT, ENOTEMPTY, EISDIR/ENOTDIR when `dir` does not match.
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        match (&self.inodes.get(&ino).map(|i| &i.node), dir) {
            (Some(Node::Dir(d)), true) if !d.entries.is_empty() => {
                return Err(err(libc::ENOTEMPTY))
            }
            (Some(Node::Dir(_)), false) => return Err(err(libc::EISDIR)),
            (Some(Node::File(_)), true) => return Err(err(libc::ENOTDIR)),
            _ => {}
        }
        self.dir_mut(parent)?.entries.remove(name);
        Ok(())
    }

    /// Renames (replacing a file at the target; `noreplace`: EEXIST instead).
    ///
    /// # Errors
    /// ENOENT, EEXIST, ENOTEMPTY, EISDIR.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        noreplace: bool,
    ) -> io::Result<()> {
        let ino = self.lookup(parent, name)?;
        if let Ok(target) = self.lookup(new_parent, new_name) {
            if noreplace {
                return Err(err(libc::EEXIST));
            }
            if target == ino {
                return Ok(());
            }
            if let Ok(d) = self.dir(target) {
                if !d.entries.is_empty() {
                    return Err(err(libc::ENOTEMPTY));
                }
            }
        }
        self.dir(new_parent)?;
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(new_parent)?
            .entries
            .insert(new_name.to_owned(), ino);
        Ok(())
    }

    /// Reads what a process sees: durable bytes under the dirty sectors.
    ///
    /// # Errors
    /// EIO when armed, EISDIR, backing I/O.
    pub fn read(&mut self, ino: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        self.stats.reads += 1;
        let fire = if self.armed.read_eio_repeat > 0 {
            self.armed.read_eio_repeat -= 1;
            true
        } else if countdown(&mut self.armed.read_eio_at) {
            self.armed.read_eio_repeat = READ_EIO_REPEAT;
            true
        } else {
            false
        };
        if fire {
            self.stats.eio_read += 1;
            return Err(err(libc::EIO));
        }
        let f = self.file_mut(ino)?;
        let end = offset.saturating_add(u64::from(size)).min(f.len);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        let durable_end = end.min(f.visible_durable);
        if offset < durable_end {
            let n = (durable_end - offset) as usize;
            read_full(&f.backing, &mut buf[..n], offset)?;
        }
        for (&s, d) in f.dirty.range(offset / SECTOR..=(end - 1) / SECTOR) {
            overlay(&mut buf, offset, s * SECTOR, &d.data);
        }
        Ok(buf)
    }

    /// Writes into the volatile view (durable only after an fsync).
    ///
    /// # Errors
    /// EIO or ENOSPC when armed, EFBIG past [`FILE_BYTES_MAX`], EISDIR, backing I/O.
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        self.stats.writes += 1;
        if countdown(&mut self.armed.write_eio_at) {
            self.stats.eio_write += 1;
            return Err(err(libc::EIO));
        }
        let bytes = data.len() as u64;
        if let Some(budget) = &mut self.armed.enospc_budget {
            if bytes > *budget {
                self.stats.enospc += 1;
                return Err(err(libc::ENOSPC));
            }
            *budget -= bytes;
        }
        let end = offset.saturating_add(bytes);
        if end > FILE_BYTES_MAX {
            return Err(err(libc::EFBIG));
        }
        if data.is_empty() {
            return Ok(());
        }
        let f = self.file_mut(ino)?;
        let mut pos = offset;
        while pos < end {
            let s = pos / SECTOR;
            let sector = f.sector_mut(s)?;
            let from = (pos - s * SECTOR) as usize;
            let to = ((end - s * SECTOR).min(SECTOR)) as usize;
            let src = (pos - offset) as usize;
            sector.data[from..to].copy_from_slice(&data[src..src + (to - from)]);
            sector.mark(from, to);
            pos = s * SECTOR + to as u64;
        }
        f.len = f.len.max(end);
        Ok(())
    }

    /// Sets the length a process sees (truncate/ftruncate/fallocate): durable on fsync.
    ///
    /// # Errors
    /// EFBIG, EISDIR, backing I/O.
    pub fn set_len(&mut self, ino: u64, len: u64) -> io::Result<()> {
        if len > FILE_BYTES_MAX {
            return Err(err(libc::EFBIG));
        }
        let f = self.file_mut(ino)?;
        if len < f.len {
            // The cut sector keeps its head; whole sectors past it go.
            let s = len / SECTOR;
            if !len.is_multiple_of(SECTOR) {
                let sector = f.sector_mut(s)?;
                let cut = (len % SECTOR) as usize;
                sector.data[cut..].fill(0);
                sector.mark(cut, SECTOR as usize);
            }
            let first_gone = len.div_ceil(SECTOR);
            f.dirty.retain(|&k, _| k < first_gone);
            f.visible_durable = f.visible_durable.min(len);
        }
        f.len = len;
        Ok(())
    }

    /// fsync/fdatasync of a file: its data and length become durable. An armed EIO drops the
    /// dirty pages instead (Linux marks them clean after a failed writeback) and fails.
    ///
    /// # Errors
    /// EIO when armed, backing I/O.
    pub fn fsync(&mut self, ino: u64) -> io::Result<()> {
        self.stats.fsyncs += 1;
        let fail = countdown(&mut self.armed.fsync_eio_at);
        let f = self.file_mut(ino)?;
        if fail {
            // Evicted at once: later reads see the durable bytes (or zeros past them).
            f.dirty.clear();
            self.stats.eio_fsync += 1;
            return Err(err(libc::EIO));
        }
        f.persist(|_| SectorFate::Written)?;
        if self.journal_names {
            for inode in self.inodes.values_mut() {
                if let Node::Dir(d) = &mut inode.node {
                    d.durable = d.entries.clone();
                }
            }
        }
        Ok(())
    }

    /// fsync of a directory: its names (creates, renames, unlinks in it) become durable.
    ///
    /// # Errors
    /// ENOTDIR, ENOENT.
    pub fn fsync_dir(&mut self, ino: u64) -> io::Result<()> {
        self.stats.dir_fsyncs += 1;
        let d = self.dir_mut(ino)?;
        d.durable = d.entries.clone();
        Ok(())
    }

    /// Power loss: every file keeps its durable data and length, plus (with `torn`) a seeded
    /// subset of its unsynced sectors, and every directory its durable names. Handles opened
    /// before it fail from now on.
    ///
    /// # Errors
    /// Backing I/O.
    pub fn power_loss(&mut self, torn: TornModel) -> io::Result<()> {
        self.stats.power_losses += 1;
        self.epoch += 1;
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(inode) = self.inodes.get_mut(&ino) else {
                continue;
            };
            match &mut inode.node {
                Node::Dir(d) => d.entries = d.durable.clone(),
                Node::File(f) => {
                    let rng = &mut self.rng;
                    let stats = &mut self.stats;
                    // A torn extension keeps the new length half the time (ext4 commits
                    // i_size with the journal, independently of which data blocks landed).
                    let keep_len = torn != TornModel::DROP_ALL && rng.below(2) == 0;
                    if !keep_len {
                        f.len = f.len_durable;
                    }
                    let fates = f.persist_torn(torn, rng)?;
                    stats.sectors_written_at_loss += fates.0;
                    stats.sectors_garbage_at_loss += fates.1;
                    stats.sectors_dropped_at_loss += fates.2;
                }
            }
        }
        self.collect_garbage();
        Ok(())
    }

    /// Removes inodes no directory names any more, durably or not.
    fn collect_garbage(&mut self) {
        let mut reachable = std::collections::HashSet::new();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if !reachable.insert(ino) {
                continue;
            }
            if let Some(Inode {
                node: Node::Dir(d), ..
            }) = self.inodes.get(&ino)
            {
                stack.extend(d.entries.values().chain(d.durable.values()));
            }
        }
        self.inodes.retain(|ino, inode| {
            let keep = reachable.contains(ino);
            if let (false, Node::File(f)) = (keep, &inode.node) {
                let _ = std::fs::remove_file(&f.backing_path);
            }
            keep
        });
    }

    /// Flips `count` seeded bits in durable data (files with durable bytes, chosen uniformly;
    /// then a byte offset and a bit). Reads see them unless a dirty sector covers them.
    ///
    /// # Errors
    /// Backing I/O; EINVAL above [`BIT_FLIPS_MAX`].
    pub fn flip_bits(&mut self, count: u32) -> io::Result<Vec<Flip>> {
        if count > BIT_FLIPS_MAX {
            return Err(err(libc::EINVAL));
        }
        let mut files: Vec<u64> = self
            .inodes
            .iter()
            .filter_map(|(&ino, i)| match &i.node {
                Node::File(f) if f.len_durable > 0 => Some(ino),
                _ => None,
            })
            .collect();
        files.sort_unstable();
        let mut flips = Vec::new();
        for _ in 0..count {
            if files.is_empty() {
                break;
            }
            let ino = files[self.rng.below(files.len() as u64) as usize];
            let offset_draw = self.rng.next_u64();
            let bit = (self.rng.below(8)) as u8;
            let f = self.file_mut(ino)?;
            let offset = offset_draw % f.len_durable;
            let mut b = [0u8; 1];
            read_full(&f.backing, &mut b, offset)?;
            b[0] ^= 1 << bit;
            f.backing.write_all_at(&b, offset)?;
            flips.push(Flip { ino, offset, bit });
        }
        self.stats.bit_flips += flips.len() as u64;
        Ok(flips)
    }

    /// Bytes not yet durable, over every file (sectors).
    #[must_use]
    pub fn dirty_bytes(&self) -> u64 {
        self.inodes
            .values()
            .map(|i| match &i.node {
                Node::File(f) => f.dirty.len() as u64 * SECTOR,
                Node::Dir(_) => 0,
            })
            .sum()
    }
}

impl FileNode {
    /// The dirty copy of sector `s`, made from what a process sees now when there is none.
    fn sector_mut(&mut self, s: u64) -> io::Result<&mut Dirty> {
        if !self.dirty.contains_key(&s) {
            let mut data = vec![0u8; SECTOR as usize].into_boxed_slice();
            let start = s * SECTOR;
            let end = (start + SECTOR).min(self.visible_durable).min(self.len);
            if start < end {
                read_full(&self.backing, &mut data[..(end - start) as usize], start)?;
            }
            self.dirty.insert(
                s,
                Dirty {
                    data,
                    written: [0; (SECTOR / 64) as usize],
                },
            );
        }
        self.dirty.get_mut(&s).ok_or_else(|| err(libc::EIO))
    }

    /// Makes the volatile view durable, each dirty sector by its fate.
    fn persist(&mut self, mut fate: impl FnMut(u64) -> SectorFate) -> io::Result<(u64, u64, u64)> {
        let mut counts = (0, 0, 0);
        // Durable bytes hidden by a volatile truncate are gone for good now.
        if self.visible_durable < self.len_durable || self.len != self.len_durable {
            self.backing.set_len(self.visible_durable.min(self.len))?;
            self.backing.set_len(self.len)?;
        }
        for (&s, d) in &self.dirty {
            let data = &d.data;
            let start = s * SECTOR;
            if start >= self.len {
                // Past the length that survived: as good as dropped.
                counts.2 += 1;
                continue;
            }
            let n = ((self.len - start).min(SECTOR)) as usize;
            match fate(s) {
                SectorFate::Written => {
                    self.backing.write_all_at(&data[..n], start)?;
                    counts.0 += 1;
                }
                SectorFate::Garbage => {
                    let junk: Vec<u8> = (0..n)
                        .map(|i| {
                            if d.was_written(i) {
                                !data[i] ^ 0x5a
                            } else {
                                data[i]
                            }
                        })
                        .collect();
                    self.backing.write_all_at(&junk, start)?;
                    counts.1 += 1;
                }
                SectorFate::Dropped => counts.2 += 1,
            }
        }
        self.dirty.clear();
        self.len_durable = self.len;
        self.visible_durable = self.len;
        Ok(counts)
    }

    fn persist_torn(
        &mut self,
        torn: TornModel,
        rng: &mut SplitMix64,
    ) -> io::Result<(u64, u64, u64)> {
        if torn == TornModel::DROP_ALL {
            let dropped = self.dirty.len() as u64;
            self.dirty.clear();
            self.len = self.len_durable;
            self.visible_durable = self.len_durable;
            return Ok((0, 0, dropped));
        }
        // A volatile truncate that did not land (the length grew back or stayed): the
        // durable bytes it hid are still on the disk.
        if self.len >= self.len_durable {
            self.visible_durable = self.len_durable;
        }
        self.persist(|_| torn.draw(rng))
    }
}

/// Counts an armed fault down; true when it fires now (and disarms it).
fn countdown(at: &mut Option<u64>) -> bool {
    match at {
        Some(1) => {
            *at = None;
            true
        }
        Some(n) => {
            *n = n.saturating_sub(1);
            false
        }
        None => false,
    }
}

/// Copies the part of `sector` (at file offset `sector_start`) that falls in `buf` (at
/// `buf_start`).
fn overlay(buf: &mut [u8], buf_start: u64, sector_start: u64, sector: &[u8]) {
    let buf_end = buf_start + buf.len() as u64;
    let from = sector_start.max(buf_start);
    let to = (sector_start + sector.len() as u64).min(buf_end);
    if from >= to {
        return;
    }
    let dst = (from - buf_start) as usize..(to - buf_start) as usize;
    let src = (from - sector_start) as usize..(to - sector_start) as usize;
    buf[dst].copy_from_slice(&sector[src]);
}

/// Reads `buf.len()` bytes at `offset`; past the end of the backing file reads zeros.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            buf[done..].fill(0);
            break;
        }
        done += n;
    }
    Ok(())
}
