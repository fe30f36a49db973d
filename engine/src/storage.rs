//! The one door between the engine and its files.
//!
//! Every byte the engine reads or writes goes through [`Storage`] (a namespace of files) and
//! [`StorageFile`] (one file). The engine never touches `std::fs` around it, so a test or the
//! harness can substitute an in-memory store ([`MemStorage`]) or a fault-injecting wrapper.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// A namespace of named files: a directory on disk, or a map in memory.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Opens the file `name`, creating it empty when `create` is true and it does not exist.
    ///
    /// # Errors
    /// `NotFound` when the file is missing and `create` is false; any I/O error.
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes the file `name`. Removing a missing file is not an error.
    ///
    /// # Errors
    /// Any I/O error.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// True when the file `name` exists.
    ///
    /// # Errors
    /// Any I/O error.
    fn exists(&self, name: &str) -> io::Result<bool>;
    /// Makes creations and removals of files durable (fsync of the directory).
    ///
    /// # Errors
    /// Any I/O error.
    fn sync_dir(&self) -> io::Result<()>;
}

/// One open file. All I/O is positional, so one handle serves many threads.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Fills `buf` from `offset`. Reading past the end is an `UnexpectedEof` error.
    ///
    /// # Errors
    /// Any I/O error, or `UnexpectedEof`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file as needed.
    ///
    /// # Errors
    /// Any I/O error; a full disk is `StorageFull` or ENOSPC.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every completed write durable (fdatasync).
    ///
    /// # Errors
    /// Any I/O error. After a failed sync the engine poisons itself and never retries.
    fn sync(&self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes.
    ///
    /// # Errors
    /// Any I/O error.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    ///
    /// # Errors
    /// Any I/O error.
    fn len(&self) -> io::Result<u64>;
}

/// Real files in one directory, with positional I/O and `fdatasync`.
#[derive(Debug, Clone)]
pub struct FileStorage {
    dir: PathBuf,
}

impl FileStorage {
    /// Files named relative to `dir`, which must exist.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> FileStorage {
        FileStorage { dir: dir.into() }
    }

    /// The directory this storage holds its files in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Storage for FileStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.dir.join(name))?;
        Ok(Arc::new(RealFile { file }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        self.dir.join(name).try_exists()
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

#[derive(Debug)]
struct RealFile {
    file: File,
}

impl StorageFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

/// Files held in memory. Cloning shares the files, so a test can reopen a database on the same
/// bytes. `sync` does nothing: every write is at once "durable".
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    files: Arc<Mutex<HashMap<String, Arc<MemFile>>>>,
}

impl MemStorage {
    /// An empty namespace.
    #[must_use]
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// A copy of the bytes of `name`, if it exists.
    #[must_use]
    pub fn snapshot(&self, name: &str) -> Option<Vec<u8>> {
        self.files.lock().get(name).map(|f| f.data.lock().clone())
    }

    /// Replaces (or creates) the file `name` with `bytes`.
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        let file = Arc::new(MemFile {
            data: Mutex::new(bytes),
        });
        self.files.lock().insert(name.to_string(), file);
    }

    /// The names of all files, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.files.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// A deep copy: later writes to either are not seen by the other.
    #[must_use]
    pub fn deep_clone(&self) -> MemStorage {
        let copy = MemStorage::new();
        for name in self.names() {
            if let Some(bytes) = self.snapshot(&name) {
                copy.put(&name, bytes);
            }
        }
        copy
    }
}

impl Storage for MemStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut files = self.files.lock();
        if let Some(file) = files.get(name) {
            return Ok(file.clone());
        }
        if !create {
            return Err(io::Error::new(io::ErrorKind::NotFound, name.to_string()));
        }
        let file = Arc::new(MemFile {
            data: Mutex::new(Vec::new()),
        });
        files.insert(name.to_string(), file.clone());
        Ok(file)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.files.lock().remove(name);
        Ok(())
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        Ok(self.files.lock().contains_key(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct MemFile {
    data: Mutex<Vec<u8>>,
}

/// Memory files stop growing here so a runaway writer fails instead of exhausting RAM.
const MEM_FILE_BYTES_MAX: u64 = 1 << 36;

impl StorageFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.data.lock();
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = data.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).ok_or_else(too_big)?;
        if end > MEM_FILE_BYTES_MAX {
            return Err(too_big());
        }
        let (start, end) = (offset as usize, end as usize);
        let mut data = self.data.lock();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(buf);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if len > MEM_FILE_BYTES_MAX {
            return Err(too_big());
        }
        self.data.lock().resize(len as usize, 0);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.data.lock().len() as u64)
    }
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file")
}

fn too_big() -> io::Error {
    io::Error::new(io::ErrorKind::FileTooLarge, "memory file limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_file_round_trip_and_eof() -> io::Result<()> {
        let s = MemStorage::new();
        let f = s.open("a", true)?;
        f.write_at(b"hello", 3)?;
        assert_eq!(f.len()?, 8);
        let mut buf = [0u8; 5];
        f.read_at(&mut buf, 3)?;
        assert_eq!(&buf, b"hello");
        assert!(f.read_at(&mut buf, 4).is_err());
        assert!(s.open("b", false).is_err());
        Ok(())
    }

    #[test]
    fn file_storage_round_trip() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = FileStorage::new(dir.path());
        let f = s.open("x", true)?;
        f.write_at(&[7u8; 100], 4096)?;
        f.sync()?;
        let mut buf = [0u8; 100];
        f.read_at(&mut buf, 4096)?;
        assert_eq!(buf, [7u8; 100]);
        assert!(s.exists("x")?);
        s.remove("x")?;
        assert!(!s.exists("x")?);
        s.sync_dir()
    }
}
