//! report.html: one self-contained page.

use std::path::{Path, PathBuf};

use super::Report;

pub(crate) fn render_html(report: &Report) -> String {
    let _ = report;
    String::from("<!DOCTYPE html><html><body></body></html>\n")
}

pub(crate) fn write_html(report: &Report, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("report.html");
    std::fs::write(&path, render_html(report))?;
    Ok(path)
}
