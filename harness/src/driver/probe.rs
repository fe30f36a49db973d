//! The fsync probe: 4 KiB written and `fdatasync`ed in place, repeatedly, in the run's
//! directory. Durable commit rates on these VMs follow the disk's fsync regime (about 65 us
//! or 2-4 ms, switching minutes apart), so every round of a durable comparison carries one.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::FsyncProbe;

/// fsyncs per probe: enough for a stable p50 in the fast regime.
pub const FSYNC_PROBE_COUNT_MAX: u32 = 500;
/// Time budget per probe: in the slow regime (4 ms per fsync) the count is cut short here.
pub const FSYNC_PROBE_DURATION_MAX: Duration = Duration::from_secs(1);
/// Bytes written before each fsync: one page.
pub const FSYNC_PROBE_BYTES: usize = 4096;

/// Runs one probe in `dir` (file `fsync-probe.bin`, removed afterwards).
///
/// # Errors
/// I/O errors creating, writing or syncing the probe file.
pub fn fsync_probe(dir: &Path, round: u32) -> std::io::Result<FsyncProbe> {
    let path = dir.join("fsync-probe.bin");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let mut block = vec![0u8; FSYNC_PROBE_BYTES];
    // Allocate the block once so later fdatasyncs flush data only, not the file size.
    file.write_all_at(&block, 0)?;
    file.sync_all()?;
    let mut histogram = histogram_ns()?;
    let started = Instant::now();
    let mut count: u32 = 0;
    while count < FSYNC_PROBE_COUNT_MAX && started.elapsed() < FSYNC_PROBE_DURATION_MAX {
        block[0] = block[0].wrapping_add(1);
        let t = Instant::now();
        file.write_all_at(&block, 0)?;
        file.sync_data()?;
        histogram.saturating_record(duration_ns(t.elapsed()));
        count += 1;
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    assert!(count > 0, "the probe runs at least one fsync");
    assert_eq!(histogram.len(), u64::from(count));
    Ok(FsyncProbe {
        round,
        fsyncs_per_s: f64::from(count) / elapsed_s.max(f64::EPSILON),
        p50_us: histogram.value_at_quantile(0.5) as f64 / 1000.0,
        p99_us: histogram.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

fn histogram_ns() -> std::io::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, super::LATENCY_NS_MAX, 3)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Nanoseconds of a duration, saturating at u64::MAX (584 years).
#[must_use]
pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
