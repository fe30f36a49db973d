//! Terminal tables.

use super::Report;

pub(crate) fn summary_table(report: &Report) -> String {
    format!("verdict: {}\n", report.verdict().as_str())
}

pub(crate) fn ratio_table(report: &Report) -> String {
    let _ = report;
    String::new()
}
