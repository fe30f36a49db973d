//! HdrHistogram percentile distribution files (`.hgrm`), the text format HdrHistogram's
//! plotter (plotFiles.html) reads:
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        1.023 0.000000000000          1           1.00
//!        ...
//!       98.303 1.000000000000      10000
//! #[Mean    =       12.345, StdDeviation   =        6.789]
//! #[Max     =       98.303, Total count    =        10000]
//! #[Buckets =           22, SubBuckets     =         2048]
//! ```
//!
//! Values are printed in microseconds with as many decimals as the histogram has significant
//! digits. The last line (percentile 1.0) has no 1/(1-Percentile) column: it is infinite.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::HistUnit;

/// Ticks per half distance to 100%, as HdrHistogram's own tools default to: 5 lines between
/// 0 and 50%, 5 between 50% and 75%, and so on.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Longest file stem written; op names are short, anything longer is a caller bug.
const FILE_STEM_LENGTH_MAX: usize = 128;

/// The percentile distribution text of `histogram` (values in `unit`), printed in microseconds.
/// An empty histogram yields the header and a footer with a zero total count.
pub fn hgrm_text(histogram: &Histogram<u64>, unit: HistUnit) -> String {
    let per_us = unit.per_us();
    let decimals = usize::from(histogram.sigfig());
    let mut text = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = write!(
        text,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total_count: u64 = 0;
    if !histogram.is_empty() {
        for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total_count += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / per_us;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let inverse = 1.0 / (1.0 - quantile);
                let _ = writeln!(
                    text,
                    "{value:12.decimals$} {quantile:2.12} {total_count:10} {inverse:14.2}"
                );
            } else {
                let _ = writeln!(
                    text,
                    "{value:12.decimals$} {quantile:2.12} {total_count:10}"
                );
            }
        }
    }
    debug_assert_eq!(
        total_count,
        histogram.len(),
        "iteration must cover every sample"
    );
    write_footer(&mut text, histogram, per_us, decimals);
    text
}

fn write_footer(text: &mut String, histogram: &Histogram<u64>, per_us: f64, decimals: usize) {
    let (mean, stdev, max) = if histogram.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            histogram.mean() / per_us,
            histogram.stdev() / per_us,
            histogram.max() as f64 / per_us,
        )
    };
    let sub_buckets = sub_bucket_count(histogram.sigfig());
    let _ = writeln!(
        text,
        "#[Mean    = {mean:12.decimals$}, StdDeviation   = {stdev:12.decimals$}]"
    );
    let _ = writeln!(
        text,
        "#[Max     = {max:12.decimals$}, Total count    = {:12}]",
        histogram.len()
    );
    let _ = writeln!(
        text,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        histogram.buckets()
    );
}

/// Sub-buckets per bucket: the smallest power of two holding 2 * 10^sigfig distinct values.
fn sub_bucket_count(sigfig: u8) -> u64 {
    assert!(
        sigfig <= 5,
        "hdrhistogram allows at most 5 significant digits"
    );
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `_`, so an op name can
/// never escape the report directory.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .take(FILE_STEM_LENGTH_MAX)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A stem of only dots ("..") would name a directory; prefix it.
    if stem.is_empty() || stem.chars().all(|c| c == '.') {
        format!("op_{stem}")
    } else {
        stem
    }
}

pub(crate) fn write_hgrm(
    op_name: &str,
    histogram: &Histogram<u64>,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{}.hgrm", file_stem(op_name)));
    assert!(
        path.starts_with(dir),
        "hgrm path must stay inside the report directory"
    );
    std::fs::write(&path, hgrm_text(histogram, super::HISTOGRAM_UNIT))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_buckets_match_hdrhistogram() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(1), 32);
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("run.read"), "run.read");
        assert_eq!(file_stem("../etc/passwd"), ".._etc_passwd");
        assert_eq!(file_stem(".."), "op_..");
        assert_eq!(file_stem(""), "op_");
        assert_eq!(file_stem("a b/c"), "a_b_c");
    }
}
