//! A storage whose every fsync also waits a fixed time: our engine on a slower disk than
//! this machine's, for the group-commit benchmark (`concurrency/group-commit`). Where an
//! fsync costs about what a commit's CPU work costs (this machine: about 100 us), group
//! commit can save at most half of a commit; where it dominates, it should multiply the
//! commit rate by the number of writers sharing each fsync.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use engine::{FileStorage, Storage, StorageFile};

/// Longest added fsync time: a slow disk's fsync ten times over; a typo must not stall a
/// run for minutes.
pub const FSYNC_DELAY_US_MAX: u64 = 100_000;

/// Files in a directory whose syncs each wait `delay` first.
#[derive(Debug)]
pub struct SlowSyncStorage {
    inner: FileStorage,
    delay: Duration,
}

impl SlowSyncStorage {
    #[must_use]
    pub fn new(inner: FileStorage, delay_us: u64) -> SlowSyncStorage {
        let delay = Duration::from_micros(delay_us.min(FSYNC_DELAY_US_MAX));
        SlowSyncStorage { inner, delay }
    }
}

#[derive(Debug)]
struct SlowSyncFile {
    inner: Arc<dyn StorageFile>,
    delay: Duration,
}

impl Storage for SlowSyncStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let inner = self.inner.open(name, create)?;
        Ok(Arc::new(SlowSyncFile {
            inner,
            delay: self.delay,
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn exists(&self, name: &str) -> io::Result<bool> {
        self.inner.exists(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.sync_dir()
    }
}

impl StorageFile for SlowSyncFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        // The engine fixed what this sync acknowledges before calling it; writes that land
        // during the wait reach the disk too but are not counted, as with a slow device.
        std::thread::sleep(self.delay);
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}
