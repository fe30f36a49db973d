//! FUSE requests onto the [`Model`]: one lock around the model, every reply with a zero TTL
//! (the kernel asks again for every name and length, so a power loss shows at once).

use std::ffi::OsStr;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::model::{Model, Node};

/// Nothing is cached by the kernel: names and attributes are asked for every time.
const TTL: Duration = Duration::ZERO;
/// Handle numbers carry the power-loss epoch they were opened in, above this many bits.
const FH_EPOCH_SHIFT: u32 = 40;

/// The FUSE file system: a shared model (the control API holds the other reference).
pub struct FaultFs {
    pub(crate) model: Arc<Mutex<Model>>,
    next_fh: Mutex<u64>,
}

impl FaultFs {
    pub(crate) fn new(model: Arc<Mutex<Model>>) -> FaultFs {
        FaultFs {
            model,
            next_fh: Mutex::new(1),
        }
    }

    fn handle(&self, epoch: u64) -> FileHandle {
        let mut n = self.next_fh.lock();
        *n += 1;
        FileHandle((epoch << FH_EPOCH_SHIFT) | (*n & ((1 << FH_EPOCH_SHIFT) - 1)))
    }
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A handle opened before the last power loss belongs to a process that "died" with it.
fn stale(model: &Model, fh: FileHandle) -> bool {
    fh.0 >> FH_EPOCH_SHIFT != model.epoch
}

fn attr(model: &Model, ino: u64) -> io::Result<FileAttr> {
    let inode = model
        .inodes
        .get(&ino)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    let (kind, size) = match &inode.node {
        Node::File(f) => (FileType::RegularFile, f.len),
        Node::Dir(_) => (FileType::Directory, 0),
    };
    let now = SystemTime::now();
    Ok(FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind,
        perm: inode.perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        // Files belong to whoever mounted (as with `fusermount`).
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    })
}

impl Filesystem for FaultFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let m = self.model.lock();
        match m.lookup(parent.0, name).and_then(|ino| attr(&m, ino)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let m = self.model.lock();
        match attr(&m, ino.0) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut m = self.model.lock();
        let mut result = Ok(());
        if let Some(len) = size {
            result = m.set_len(ino.0, len);
        }
        if let (Ok(()), Some(mode)) = (&result, mode) {
            if let Some(i) = m.inodes.get_mut(&ino.0) {
                i.perm = (mode & 0o7777) as u16;
            }
        }
        match result.and_then(|()| attr(&m, ino.0)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut m = self.model.lock();
        let perm = (mode & !umask & 0o7777) as u16;
        match m
            .create(parent.0, name, true, perm)
            .and_then(|ino| attr(&m, ino))
        {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.model.lock().remove(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.model.lock().remove(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            reply.error(Errno::EINVAL);
            return;
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self
            .model
            .lock()
            .rename(parent.0, name, newparent.0, newname, noreplace)
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let m = self.model.lock();
        if !m.inodes.contains_key(&ino.0) {
            reply.error(Errno::ENOENT);
            return;
        }
        reply.opened(self.handle(m.epoch), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut m = self.model.lock();
        if stale(&m, fh) {
            reply.error(Errno::EIO);
            return;
        }
        match m.read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut m = self.model.lock();
        if stale(&m, fh) {
            reply.error(Errno::EIO);
            return;
        }
        match m.write(ino.0, offset, data) {
            Ok(()) => reply.written(u32::try_from(data.len()).unwrap_or(u32::MAX)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// `close` makes nothing durable (ext4 neither, outside its replace-via-rename heuristic,
    /// which this model leaves out: an engine must not rely on it).
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut m = self.model.lock();
        if stale(&m, fh) {
            reply.error(Errno::EIO);
            return;
        }
        match m.fsync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let m = self.model.lock();
        match m.dir(ino.0) {
            Ok(_) => reply.opened(self.handle(m.epoch), FopenFlags::empty()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let m = self.model.lock();
        let d = match m.dir(ino.0) {
            Ok(d) => d,
            Err(e) => {
                reply.error(errno(&e));
                return;
            }
        };
        let mut all = vec![
            (ino.0, FileType::Directory, OsStr::new(".").to_owned()),
            (ino.0, FileType::Directory, OsStr::new("..").to_owned()),
        ];
        for (name, &child) in &d.entries {
            let kind = match m.inodes.get(&child).map(|i| &i.node) {
                Some(Node::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            all.push((child, kind, name.clone()));
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut m = self.model.lock();
        if stale(&m, fh) {
            reply.error(Errno::EIO);
            return;
        }
        match m.fsync_dir(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let m = self.model.lock();
        // With a budget armed, free space is what it has left; else a large disk.
        let free = m.armed.enospc_budget.unwrap_or(1 << 40) / 4096;
        reply.statfs(1 << 28, free, free, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut m = self.model.lock();
        let perm = (mode & !umask & 0o7777) as u16;
        match m
            .create(parent.0, name, false, perm)
            .and_then(|ino| attr(&m, ino))
        {
            Ok(a) => reply.created(
                &TTL,
                &a,
                Generation(0),
                self.handle(m.epoch),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// Mode 0 only (allocate, growing the length); the others are refused so an engine falls
    /// back to writes.
    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut m = self.model.lock();
        if stale(&m, fh) {
            reply.error(Errno::EIO);
            return;
        }
        if mode != 0 {
            reply.error(Errno::EOPNOTSUPP);
            return;
        }
        let end = offset.saturating_add(length);
        let result = match m.inodes.get(&ino.0).map(|i| &i.node) {
            Some(Node::File(f)) if f.len >= end => Ok(()),
            _ => m.set_len(ino.0, end),
        };
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
