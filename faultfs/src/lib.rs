//! `faultfs`: a FUSE file system that loses, tears, fails and corrupts what an engine writes,
//! from a seed, so that any engine — ours or a peer, in any process — can be tested against
//! power loss through the real file-system path.
//!
//! # The model
//!
//! After LazyFS (Ramos et al., "When Amnesia Strikes: Understanding and Reproducing Data
//! Loss Bugs with Fault Injection", VLDB 2024, <https://github.com/dsrhaslab/lazyfs>): the file
//! system keeps its own page cache. Per file it holds the 512-byte sectors written and not
//! yet durable; reads see them over the durable image, a power loss drops them.
//!
//! | operation | visible | durable when |
//! |---|---|---|
//! | `write`/`pwrite` | at once | `fsync`/`fdatasync` of the file |
//! | length (`truncate`, `ftruncate`, `fallocate` mode 0, writes past the end) | at once | `fsync`/`fdatasync` of the file |
//! | create, `mkdir`, `rename`, `unlink`, `rmdir` | at once | `fsync` of the parent directory (each directory of a rename) |
//! | `close`, `flush` | — | never by themselves |
//!
//! This is the POSIX floor, and what ext4 documents for `data=ordered` where it matters to a
//! database (<https://docs.kernel.org/admin-guide/ext4.html>, `data=ordered`: data is written
//! before its metadata is committed, but nothing is durable before a commit, which `fsync`
//! forces; `fsync(2)`: "Calling fsync() does not necessarily ensure that the entry in the
//! directory containing the file has also reached disk. For that an explicit fsync() on a file
//! descriptor for the directory is also needed."). Real ext4 is kinder in two places that no
//! engine may rely on: an `fsync` of a new file usually commits its directory entry in the
//! same journal transaction, and `auto_da_alloc` flushes a file replaced by rename or
//! truncated to zero. A finding that depends on either is reported as "stricter than ext4";
//! [`Control::set_journal_names`] turns on the first (any fsync makes every name durable).
//! `fdatasync` is treated as `fsync`: both persist the length (ext4's `fdatasync` does, since
//! the length is needed to read the data back). `sync`/`syncfs` do not reach a FUSE file
//! system here and make nothing durable.
//!
//! # Faults (all drawn from the seed given at mount)
//!
//! * **Power loss** ([`Control::power_loss`]): every file falls back to its durable data and
//!   length, every directory to its durable names; handles opened before it fail with EIO
//!   (their process "died" with the power). With a [`TornModel`] other than `DROP_ALL`, each
//!   unsynced sector is drawn on its own (written, garbage or dropped: SQLite's crash-VFS and
//!   FoundationDB's odds), so what survives is a subset, not a prefix; a file that grew keeps
//!   its new length half the time.
//! * **EIO on the Nth fsync** ([`Control::arm_fsync_eio`]): that fsync fails and the dirty
//!   pages it covered are dropped, as Linux marks them clean after a failed writeback
//!   (PostgreSQL's "fsyncgate", 2018): a retried fsync then succeeds with the data gone.
//! * **EIO on the Nth write or read** ([`Control::arm_write_eio`], [`Control::arm_read_eio`];
//!   a read EIO also fails the read after it, the kernel's one retry of a failed readahead).
//! * **ENOSPC** after a byte budget of writes ([`Control::arm_enospc`]).
//! * **Bit flips** in durable data, seen by every later read ([`Control::flip_bits`]).
//!
//! # Use
//!
//! In process: [`mount`] spawns the FUSE session on a background thread and returns a
//! [`Mount`]; its [`Mount::control`] arms faults and cuts the power while another process
//! (the engine under test) uses the mount point. From a shell: the `faultfs` binary,
//! `faultfs mount BACKING MOUNTPOINT --seed S --control SOCKET`, takes one command per line on
//! the unix socket (see [`control`]).
//!
//! The backing directory is this file system's disk, not a view of its tree: it holds one
//! file per inode with the durable data (`ino-<n>`), and names live in memory. A mount starts
//! empty.

pub mod control;
mod fs;
pub mod model;
pub mod rng;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

pub use model::{Armed, Flip, Model, Stats, TornModel};

/// Why a mount is impossible on this machine, or None when it is possible: `/dev/fuse` must
/// exist and `fusermount3` be on the PATH (it unmounts a mount whose server died).
#[must_use]
pub fn unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse on this machine".to_string());
    }
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| p.join("fusermount3").is_file())
    });
    if !found {
        return Some("fusermount3 not found (apt-get install fuse3)".to_string());
    }
    None
}

/// The control side of a mount: shared with the FUSE session.
#[derive(Clone)]
pub struct Control {
    model: Arc<Mutex<Model>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    /// Cuts the power: see the crate docs. Call it once the processes using the mount are
    /// dead (a write still in flight would otherwise land after the cut).
    ///
    /// # Errors
    /// Backing I/O.
    pub fn power_loss(&self, torn: TornModel) -> io::Result<()> {
        self.model.lock().power_loss(torn)
    }

    /// The `n`th fsync from now (1: the next) fails with EIO and drops its dirty pages.
    pub fn arm_fsync_eio(&self, n: u64) {
        self.model.lock().armed.fsync_eio_at = Some(n.max(1));
    }

    /// The `n`th write from now fails with EIO.
    pub fn arm_write_eio(&self, n: u64) {
        self.model.lock().armed.write_eio_at = Some(n.max(1));
    }

    /// The `n`th read from now fails with EIO.
    pub fn arm_read_eio(&self, n: u64) {
        self.model.lock().armed.read_eio_at = Some(n.max(1));
    }

    /// Writes may carry `bytes` more bytes; then every write fails with ENOSPC.
    pub fn arm_enospc(&self, bytes: u64) {
        self.model.lock().armed.enospc_budget = Some(bytes);
    }

    /// `true`: any file fsync also makes every name durable, as ext4's journal commit does
    /// (a gentler model than the default POSIX floor; see the crate docs).
    pub fn set_journal_names(&self, on: bool) {
        self.model.lock().journal_names = on;
    }

    /// Disarms every fault.
    pub fn disarm(&self) {
        self.model.lock().armed = Armed::default();
    }

    /// Flips `count` seeded bits in durable data.
    ///
    /// # Errors
    /// Backing I/O, more than [`model::BIT_FLIPS_MAX`].
    pub fn flip_bits(&self, count: u32) -> io::Result<Vec<Flip>> {
        self.model.lock().flip_bits(count)
    }

    /// Counters since the mount.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.model.lock().stats
    }

    /// Bytes written and not yet durable.
    #[must_use]
    pub fn dirty_bytes(&self) -> u64 {
        self.model.lock().dirty_bytes()
    }
}

/// A mounted fault file system; unmounted on drop.
pub struct Mount {
    session: Option<fuser::BackgroundSession>,
    control: Control,
    mountpoint: PathBuf,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount")
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

impl Mount {
    /// Arms faults and cuts the power.
    #[must_use]
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Where the file system is mounted.
    #[must_use]
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Serves until someone else unmounts the file system (`fusermount3 -u`).
    ///
    /// # Errors
    /// The session failed.
    pub fn wait(mut self) -> io::Result<()> {
        match self.session.take() {
            Some(s) => s.join(),
            None => Ok(()),
        }
    }

    /// Unmounts and waits for the session thread.
    ///
    /// # Errors
    /// The unmount or the session failed.
    pub fn unmount(mut self) -> io::Result<()> {
        self.detach_and_join()
    }

    /// Detaches the mount (lazily: a process still inside it keeps its files), then waits for
    /// the session thread, which ends when the kernel closes the connection. fuser's own
    /// unmount only closes the `auto_unmount` socket, and the session would wait forever.
    fn detach_and_join(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let detached = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(&self.mountpoint)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !detached {
            nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH)
                .map_err(io::Error::from)?;
        }
        session.join()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.detach_and_join();
    }
}

/// Mounts a fault file system with its durable data in `backing` at `mountpoint` (both
/// created when missing), serving requests on a background thread. With `fusermount3`
/// present the kernel unmounts it when this process dies (`auto_unmount`), so a killed
/// harness leaves no dead mount behind.
///
/// # Errors
/// The backing directory, or the mount itself (no `/dev/fuse`, not permitted).
pub fn mount(backing: &Path, mountpoint: &Path, seed: u64) -> io::Result<Mount> {
    std::fs::create_dir_all(mountpoint)?;
    let model = Arc::new(Mutex::new(Model::new(backing, seed)?));
    let fs = fs::FaultFs::new(Arc::clone(&model));
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("faultfs".to_string()),
        fuser::MountOption::Subtype("faultfs".to_string()),
    ];
    if unavailable().is_none() {
        config.mount_options.push(fuser::MountOption::AutoUnmount);
        config.acl = fuser::SessionACL::RootAndOwner;
    }
    let session = fuser::spawn_mount2(fs, mountpoint, &config)?;
    Ok(Mount {
        session: Some(session),
        control: Control { model },
        mountpoint: mountpoint.to_path_buf(),
    })
}
