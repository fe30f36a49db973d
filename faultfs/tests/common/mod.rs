//! A fresh mount per test, or None (with one printed SKIPPED line) on a machine without FUSE
//! (`/dev/fuse` and `fusermount3`), unless `FAULTFS_REQUIRE_FUSE=1`, when its absence fails
//! the test: CI sets it once it has installed fuse3 on a machine with `/dev/fuse`.
#![allow(dead_code)] // each test binary uses a different part

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub struct Fixture {
    pub mount: faultfs::Mount,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

/// Mounts a fault file system with `seed`, or prints why it cannot and returns None.
pub fn mount(test: &str, seed: u64) -> Result<Option<Fixture>, Box<dyn std::error::Error>> {
    if let Some(why) = faultfs::unavailable() {
        if std::env::var("FAULTFS_REQUIRE_FUSE").as_deref() == Ok("1") {
            return Err(format!("{test}: FAULTFS_REQUIRE_FUSE=1 but {why}").into());
        }
        println!("SKIPPED: {test}: {why}");
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let mount = faultfs::mount(&dir.path().join("backing"), &dir.path().join("mnt"), seed)?;
    let root = dir.path().join("mnt");
    Ok(Some(Fixture {
        mount,
        root,
        _dir: dir,
    }))
}

impl Fixture {
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn power_loss(&self) -> io::Result<()> {
        self.mount
            .control()
            .power_loss(faultfs::TornModel::DROP_ALL)
    }
}

pub fn open_rw(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
}

/// Writes `data` at `offset` (creating the file) and closes it, without any sync.
pub fn pwrite(p: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
    open_rw(p)?.write_all_at(data, offset)
}

/// Writes and fsyncs the file.
pub fn pwrite_synced(p: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
    let f = open_rw(p)?;
    f.write_all_at(data, offset)?;
    f.sync_all()
}

pub fn sync_dir(p: &Path) -> io::Result<()> {
    File::open(p)?.sync_all()
}

/// The whole file through a fresh open (the kernel drops its cached pages on open).
pub fn read(p: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(p)
}
