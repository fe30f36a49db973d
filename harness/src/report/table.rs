//! Terminal tables: aligned plain text, no colour codes (they end up in CI logs and files).

use std::fmt::Write as _;

use super::{Comparison, LatencySummary, PhaseReport, Report};

/// Most rows one table prints; a run has a handful of phases and ops, so more means a bug
/// upstream and the table says how many it left out.
const TABLE_ROWS_MAX: usize = 1000;

/// Formats microseconds with precision that suits the magnitude: 1.75, 12.3, 4057.
pub(crate) fn format_us(value_us: f64) -> String {
    if value_us < 10.0 {
        format!("{value_us:.2}")
    } else if value_us < 100.0 {
        format!("{value_us:.1}")
    } else {
        group_thousands(&format!("{value_us:.0}"))
    }
}

/// Formats a rate with thousands separators and no decimals above 100: 538,112.
pub(crate) fn format_rate(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.1}");
    }
    group_thousands(&format!("{value:.0}"))
}

/// Inserts commas every three digits of an integer's text: "1234567" -> "1,234,567".
/// A leading minus sign is kept out of the grouping.
pub(crate) fn group_thousands(digits: &str) -> String {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    let mut grouped = String::with_capacity(sign.len() + digits.len() + digits.len() / 3);
    grouped.push_str(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

/// Formats `ours / peer` as "1.23x", or "n/a" when the peer's value is zero.
pub(crate) fn format_ratio(comparison: &Comparison) -> String {
    match comparison.ratio {
        Some(ratio) => format!("{ratio:.2}x"),
        None => "n/a".to_string(),
    }
}

/// Renders rows as aligned columns: the first `left_columns` left-aligned, the rest right.
fn render_rows(rows: &[Vec<String>], left_columns: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows.iter().take(TABLE_ROWS_MAX) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths[i];
            if i < left_columns {
                let _ = write!(line, "{cell:<width$}  ");
            } else {
                let _ = write!(line, "{cell:>width$}  ");
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    if rows.len() > TABLE_ROWS_MAX {
        let _ = writeln!(text, "... {} more rows", rows.len() - TABLE_ROWS_MAX);
    }
    text
}

fn latency_row(prefix: &[&str], op: &str, phase: &PhaseReport, s: &LatencySummary) -> Vec<String> {
    let ops_s = if phase.duration_s > 0.0 {
        s.count as f64 / phase.duration_s
    } else {
        0.0
    };
    let mut row: Vec<String> = prefix.iter().map(|p| p.to_string()).collect();
    row.extend([
        op.to_string(),
        format_rate(ops_s),
        format_us(s.p50_us),
        format_us(s.p99_us),
        format_us(s.p999_us),
        format_us(s.max_us),
        s.errors.to_string(),
    ]);
    row
}

fn phase_rows(rows: &mut Vec<Vec<String>>, prefix: &[&str], phase: &PhaseReport) {
    let mut with_phase = prefix.to_vec();
    with_phase.push(&phase.name);
    for (op, summary) in &phase.latency {
        rows.push(latency_row(&with_phase, op, phase, summary));
    }
    if let Some(service) = &phase.service_latency {
        for (op, summary) in service {
            let label = format!("{op} (service)");
            rows.push(latency_row(&with_phase, &label, phase, summary));
        }
    }
}

pub(crate) fn summary_table(report: &Report) -> String {
    let multi = !report.engines.is_empty();
    let mut header: Vec<String> = Vec::new();
    if multi {
        header.push("engine".into());
    }
    for title in [
        "phase", "op", "ops/s", "p50 us", "p99 us", "p99.9 us", "max us", "errors",
    ] {
        header.push(title.into());
    }
    let mut rows = vec![header];
    if multi {
        for engine in &report.engines {
            for phase in &engine.phases {
                phase_rows(&mut rows, &[engine.engine.as_str()], phase);
            }
        }
    } else {
        for phase in &report.phases {
            phase_rows(&mut rows, &[], phase);
        }
    }
    let mut text = format!(
        "scenario {}  engine {}  seed {}  rev {}  started {}\n\n",
        report.scenario, report.engine, report.seed, report.git_rev, report.started_at
    );
    text.push_str(&render_rows(&rows, if multi { 3 } else { 2 }));
    append_errors_and_verdict(&mut text, report);
    text
}

fn append_errors_and_verdict(text: &mut String, report: &Report) {
    if !report.errors.is_empty() {
        let kinds: Vec<String> = report
            .errors
            .iter()
            .map(|(kind, count)| format!("{kind}={count}"))
            .collect();
        let _ = writeln!(text, "\nerrors: {}", kinds.join(" "));
    }
    let failed: Vec<_> = report.failed_checks().collect();
    if !failed.is_empty() {
        let _ = writeln!(text, "\nfailed checks:");
        for check in failed {
            let _ = writeln!(text, "  {}: {}", check.name, check.detail);
        }
    }
    let _ = writeln!(
        text,
        "\nverdict: {} ({} of {} checks passed)",
        report.verdict().as_str().to_uppercase(),
        report.checks.iter().filter(|c| c.passed).count(),
        report.checks.len()
    );
    if let Some(reproduce) = &report.reproduce {
        let _ = writeln!(text, "reproduce: {reproduce}");
    }
}

/// "1.23x +" when ours is better, "0.81x -" when worse, "1.00x =" when equal.
fn ratio_cell(comparison: &Comparison) -> String {
    let mark = if comparison.ours_better {
        "+"
    } else if comparison.ours == comparison.peer {
        "="
    } else {
        "-"
    };
    format!("{} {mark}", format_ratio(comparison))
}

pub(crate) fn ratio_table(report: &Report) -> String {
    if report.ratios.is_empty() {
        return String::new();
    }
    let header = [
        "phase",
        "ours vs peer",
        "ops/s ratio",
        "op",
        "p50 ratio",
        "p99 ratio",
    ];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for ratio in &report.ratios {
        let pair = format!("{} vs {}", ratio.ours, ratio.peer);
        let throughput = ratio_cell(&ratio.throughput_ops_s);
        if ratio.latency.is_empty() {
            rows.push(vec![ratio.phase.clone(), pair.clone(), throughput.clone()]);
        }
        for (op, latency) in &ratio.latency {
            rows.push(vec![
                ratio.phase.clone(),
                pair.clone(),
                throughput.clone(),
                op.clone(),
                ratio_cell(&latency.p50_us),
                ratio_cell(&latency.p99_us),
            ]);
        }
    }
    let mut text = String::from(
        "ratios are ours/peer; ops/s: higher is better, latency: lower is better; \
         + ours better, - ours worse\n\n",
    );
    text.push_str(&render_rows(&rows, 2));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(format_us(1.754), "1.75");
        assert_eq!(format_us(12.34), "12.3");
        assert_eq!(format_us(4057.4), "4,057");
        assert_eq!(format_us(999.6), "1,000");
        assert_eq!(format_rate(538_112.4), "538,112");
        assert_eq!(format_rate(12.34), "12.3");
        assert_eq!(group_thousands("1234567"), "1,234,567");
        assert_eq!(group_thousands("123"), "123");
        assert_eq!(group_thousands("-123"), "-123");
        assert_eq!(group_thousands("-1234"), "-1,234");
    }

    #[test]
    fn rows_align() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["long".to_string(), "100".to_string()],
        ];
        assert_eq!(render_rows(&rows, 1), "a       1\nlong  100\n");
    }
}
