//! Resource use over a run, sampled once a second on a thread of its own: the process's
//! resident memory and bytes written, and the engine's files on disk. Linux `/proc`; on
//! other systems the process figures read as zero.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::report::ResourcePoint;

/// Time between samples.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept: a day at one a second (about 100 bytes each); past it every other sample is
/// dropped and the interval doubles, so a longer run keeps its whole span.
const SAMPLES_MAX: usize = 86_400;
/// Directory entries walked per sample: an engine keeps a handful of files; a runaway
/// directory must not turn sampling into the bottleneck.
const DIR_ENTRIES_MAX: usize = 10_000;

/// The process's counters of the moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessIo {
    /// Resident set size.
    pub rss_bytes: u64,
    /// Bytes passed to `write`-family calls (`wchar`).
    pub wchar_bytes: u64,
}

/// Reads `/proc/self/statm` and `/proc/self/io`; zeros where they cannot be read.
#[must_use]
pub fn process_io() -> ProcessIo {
    let page = 4096u64;
    let rss_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    ProcessIo {
        rss_bytes: rss_pages * page,
        wchar_bytes: field("wchar:"),
    }
}

/// Bytes written to the block device that holds `dir` since boot, by every process
/// (`/sys/dev/block/MAJ:MIN/stat`, sectors written x 512); 0 when `dir` is not on a block
/// device (tmpfs, overlay) or the counters cannot be read.
///
/// Why not `/proc/self/io` `write_bytes`: on a 6.18 kernel a 20M-key load showed 1.38 TB
/// there for 181 GB of `write` calls, likely because it counts a page-cache folio at its
/// full size when first dirtied and file systems now cache files in large folios.
#[must_use]
pub fn device_write_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::metadata(dir) else {
        return 0;
    };
    let (major, minor) = dev_major_minor(meta.dev());
    if major == 0 {
        return 0;
    }
    let path = format!("/sys/dev/block/{major}:{minor}/stat");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| sectors_written(&s))
        .map_or(0, |sectors| sectors.saturating_mul(512))
}

/// Linux's encoding of a `dev_t` (glibc `major` and `minor`).
fn dev_major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    (major, minor)
}

/// Sectors written, the seventh field of a block device's `stat` file.
fn sectors_written(stat: &str) -> Option<u64> {
    stat.split_whitespace().nth(6)?.parse().ok()
}

/// Subdirectory levels `disk_bytes` walks: fjall keeps its tables four levels below the
/// data directory (`fjall/keyspaces/<id>/tables/`); the others keep one or two.
const DIR_DEPTH_MAX: u32 = 4;

/// Bytes allocated on disk by the files under `dir` ([`DIR_DEPTH_MAX`] levels of subdirectories deep),
/// and the length of those named `*-wal`.
#[must_use]
pub fn disk_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let (mut total, mut wal) = (0, 0);
    let mut stack = vec![(dir.to_path_buf(), 0u32)];
    let mut seen = 0;
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten().take(DIR_ENTRIES_MAX.saturating_sub(seen)) {
            seen += 1;
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && depth < DIR_DEPTH_MAX {
                stack.push((entry.path(), depth + 1));
            } else if meta.is_file() {
                total += meta.blocks() * 512;
                if entry.file_name().to_string_lossy().ends_with("-wal") {
                    wal += meta.len();
                }
            }
        }
    }
    (total, wal)
}

/// A sampler running until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<ResourcePoint>>>,
}

impl Sampler {
    /// Samples `dir` and the process every second, times relative to `run_start`, each
    /// point labelled `engine`.
    #[must_use]
    pub fn start(engine: &str, dir: &Path, run_start: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, dir, engine) = (stop.clone(), dir.to_path_buf(), engine.to_string());
        let handle = std::thread::Builder::new()
            .name("resource-sampler".into())
            .spawn(move || sample_loop(&engine, &dir, run_start, &flag))
            .ok();
        Sampler { stop, handle }
    }

    /// Stops sampling; returns the samples, a last one taken now.
    #[must_use]
    pub fn finish(mut self) -> Vec<ResourcePoint> {
        self.stop.store(true, Ordering::Release);
        let handle = self.handle.take();
        handle.and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn sample(engine: &str, dir: &Path, run_start: Instant) -> ResourcePoint {
    let io = process_io();
    let (disk_bytes, wal_bytes) = disk_bytes(dir);
    ResourcePoint {
        engine: engine.to_string(),
        t_s: run_start.elapsed().as_secs_f64(),
        rss_bytes: io.rss_bytes,
        disk_bytes,
        wal_bytes,
        wchar_bytes: io.wchar_bytes,
        device_write_bytes: device_write_bytes(dir),
    }
}

fn sample_loop(
    engine: &str,
    dir: &Path,
    run_start: Instant,
    stop: &AtomicBool,
) -> Vec<ResourcePoint> {
    let mut points = vec![sample(engine, dir, run_start)];
    let mut interval = SAMPLE_INTERVAL;
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::Acquire) {
        // Short sleeps: `finish` returns within 50 ms.
        std::thread::sleep(Duration::from_millis(50).min(interval));
        if Instant::now() < next {
            continue;
        }
        points.push(sample(engine, dir, run_start));
        if points.len() >= SAMPLES_MAX {
            points = points.into_iter().step_by(2).collect();
            interval *= 2;
        }
        next += interval;
    }
    points.push(sample(engine, dir, run_start));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_counters_are_decoded() {
        // A virtio disk (254:0) and a large major and minor.
        assert_eq!(dev_major_minor(0xfe00), (254, 0));
        assert_eq!(dev_major_minor(0x0000_1000_1000_0305), (0x1003, 0x1_0005));
        let stat = " 9226195 48229 253715346 3693696 191207623 262032 4149067696 293363574 \
                    0 4333888 298117138 293667 43 2067289736 254092 12372201 805775";
        assert_eq!(sectors_written(stat), Some(4_149_067_696));
        assert_eq!(sectors_written("1 2 3"), None);
        // tmpfs is no block device.
        assert_eq!(device_write_bytes(Path::new("/dev/shm")), 0);
    }

    #[test]
    fn samples_see_a_file_grow() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let sampler = Sampler::start("t", dir.path(), Instant::now());
        std::fs::write(dir.path().join("f"), vec![1u8; 1 << 20])?;
        std::thread::sleep(Duration::from_millis(1100));
        let points = sampler.finish();
        assert!(points.len() >= 2, "{points:?}");
        let last = points.last().ok_or("no sample")?;
        assert!(last.disk_bytes >= 1 << 20, "{last:?}");
        if cfg!(target_os = "linux") {
            assert!(
                last.rss_bytes > 0 && last.wchar_bytes >= 1 << 20,
                "{last:?}"
            );
        }
        Ok(())
    }
}
