//! Histogram summaries, .hgrm files and terminal tables.

use harness::report::{self, HistUnit, LatencySummary};
use hdrhistogram::Histogram;

/// 1..=1000, recorded as microseconds: below 2048 every value is exact at three significant
/// digits, so every percentile is known in advance.
fn uniform_us() -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for value in 1..=1000u64 {
        histogram.record(value)?;
    }
    Ok(histogram)
}

#[test]
fn summary_of_known_histogram_is_exact() -> anyhow::Result<()> {
    let summary = LatencySummary::from_histogram_unit(&uniform_us()?, HistUnit::Microseconds, 2);
    assert_eq!(summary.count, 1000);
    assert_eq!(summary.errors, 2);
    assert_eq!(summary.min_us, 1.0);
    assert_eq!(summary.p50_us, 500.0);
    assert_eq!(summary.p90_us, 900.0);
    assert_eq!(summary.p95_us, 950.0);
    assert_eq!(summary.p99_us, 990.0);
    assert_eq!(summary.p999_us, 999.0);
    assert_eq!(summary.p9999_us, 1000.0);
    assert_eq!(summary.max_us, 1000.0);
    assert!(
        (summary.mean_us - 500.5).abs() < 1e-9,
        "mean {}",
        summary.mean_us
    );
    Ok(())
}

#[test]
fn nanosecond_histograms_convert_to_microseconds() -> anyhow::Result<()> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    // 1750 ns and 2000 ns are exact at three significant digits (below 2048).
    histogram.record_n(1750, 99)?;
    histogram.record(2000)?;
    let summary = LatencySummary::from_histogram(&histogram, 0);
    assert_eq!(summary.p50_us, 1.75);
    assert_eq!(summary.p99_us, 1.75);
    assert_eq!(summary.max_us, 2.0);
    assert_eq!(summary.p999_us, 2.0);
    Ok(())
}

#[test]
fn empty_histogram_summarizes_to_zeros() -> anyhow::Result<()> {
    let histogram = Histogram::<u64>::new(3)?;
    let summary = LatencySummary::from_histogram(&histogram, 4);
    assert_eq!(summary.count, 0);
    assert_eq!(summary.errors, 4);
    assert_eq!(summary.p99_us, 0.0);
    assert!(summary.mean_us.is_finite());
    Ok(())
}

/// (value, percentile, total count) of one .hgrm row.
type HgrmRow = (f64, f64, u64);

/// The rows and the footer's total count.
fn parse_hgrm(text: &str) -> anyhow::Result<(Vec<HgrmRow>, u64)> {
    let mut rows = Vec::new();
    let mut footer_total = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#[Max") {
            let total = rest
                .rsplit('=')
                .next()
                .unwrap_or("")
                .trim_end_matches(']')
                .trim();
            footer_total = Some(total.parse()?);
        } else if line.starts_with(|c: char| c.is_ascii_digit()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            anyhow::ensure!(fields.len() == 3 || fields.len() == 4, "bad row {line:?}");
            rows.push((fields[0].parse()?, fields[1].parse()?, fields[2].parse()?));
        }
    }
    let footer_total = footer_total.ok_or_else(|| anyhow::anyhow!("no #[Max footer"))?;
    Ok((rows, footer_total))
}

#[test]
fn hgrm_parses_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for value in 1..=10_000u64 {
        histogram.record(value * 100)?; // 0.1 us .. 1000 us in nanoseconds
    }
    let path = report::write_hgrm("run.read", &histogram, dir.path())?;
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some("run.read.hgrm")
    );
    let text = std::fs::read_to_string(&path)?;
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    let (rows, footer_total) = parse_hgrm(&text)?;
    assert_eq!(footer_total, 10_000);
    let last = rows.last().ok_or_else(|| anyhow::anyhow!("no rows"))?;
    assert_eq!(last.2, 10_000, "last row's total count");
    assert_eq!(last.1, 1.0, "last row is the 100th percentile");
    assert!(
        (last.0 - 1000.0).abs() <= 1.0,
        "max in microseconds, got {}",
        last.0
    );
    // Percentiles and counts never decrease, values never decrease.
    for pair in rows.windows(2) {
        assert!(pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1 && pair[0].2 <= pair[1].2);
    }
    assert!(text.contains("#[Buckets = "));
    assert!(text.contains("SubBuckets     =         2048]"));
    Ok(())
}

#[test]
fn hgrm_names_cannot_escape_the_directory() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let histogram = Histogram::<u64>::new(3)?;
    let path = report::write_hgrm("../../evil", &histogram, dir.path())?;
    assert_eq!(path.parent(), Some(dir.path()));
    let (rows, total) = parse_hgrm(&std::fs::read_to_string(&path)?)?;
    assert!(rows.is_empty());
    assert_eq!(total, 0);
    Ok(())
}

#[test]
fn summary_table_lists_every_phase_and_op() -> anyhow::Result<()> {
    let (report, _) = report::demo_report(11)?;
    let table = report::summary_table(&report);
    let header = table
        .lines()
        .find(|l| l.starts_with("engine"))
        .ok_or_else(|| anyhow::anyhow!("no header in\n{table}"))?;
    for column in ["ops/s", "p50 us", "p99 us", "p99.9 us", "max us", "errors"] {
        assert!(header.contains(column), "missing {column}");
    }
    let read_p99 = report.engines[0].phases[1].latency["read"].p99_us;
    let row = table
        .lines()
        .find(|l| l.starts_with("ours") && l.contains(" read "))
        .ok_or_else(|| anyhow::anyhow!("no ours/read row in\n{table}"))?;
    let expected = if read_p99 < 10.0 {
        format!("{read_p99:.2}")
    } else {
        format!("{read_p99:.1}")
    };
    assert!(row.contains(&expected), "{row} lacks p99 {expected}");
    assert!(table.contains("verdict: FAIL"));
    assert!(table.contains("recovery_prefix"));
    // Columns align: every data row is as wide as the widest, to the character.
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| {
            ["ours ", "redb ", "sqlite "]
                .iter()
                .any(|e| l.starts_with(e))
        })
        .collect();
    assert_eq!(rows.len(), 9, "3 engines x 3 phase/op pairs");
    let right_edges: Vec<usize> = rows.iter().map(|l| l.chars().count()).collect();
    assert!(right_edges.windows(2).all(|w| w[0] == w[1]), "{table}");
    Ok(())
}

#[test]
fn ratio_table_shows_each_peer_and_direction() -> anyhow::Result<()> {
    let (report, _) = report::demo_report(11)?;
    let table = report::ratio_table(&report);
    assert!(table.contains("ours vs redb"));
    assert!(table.contains("ours vs sqlite"));
    assert!(!table.contains("ours vs ours"));
    assert!(table.contains("higher is better"));
    assert_eq!(report.ratios.len(), 4, "2 peers x 2 phases");
    let empty = harness::report::Report::default();
    assert_eq!(report::ratio_table(&empty), "");
    Ok(())
}

#[test]
fn write_all_writes_every_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (report, histograms) = report::demo_report(2)?;
    let out = dir.path().join("nested");
    let paths = report::write_all(&report, &histograms, &out)?;
    assert_eq!(paths.len(), 2 + histograms.len());
    for path in &paths {
        assert!(
            std::fs::metadata(path)?.len() > 0,
            "{} is empty",
            path.display()
        );
    }
    Ok(())
}
