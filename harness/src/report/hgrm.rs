//! HdrHistogram percentile distribution files (`.hgrm`).

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::HistUnit;

/// The percentile distribution text of `histogram` (values in `unit`), printed in microseconds.
pub fn hgrm_text(histogram: &Histogram<u64>, unit: HistUnit) -> String {
    let _ = (histogram, unit);
    String::new()
}

pub(crate) fn write_hgrm(
    op_name: &str,
    histogram: &Histogram<u64>,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{op_name}.hgrm"));
    std::fs::write(&path, hgrm_text(histogram, super::HISTOGRAM_UNIT))?;
    Ok(path)
}
