//! report.html: self-contained, one <svg> per chart, hostile text escaped.
//! Set HARNESS_REPORT_SAMPLE_DIR to also write the demo report there for a look in a browser.

use harness::report::{self, Check};

#[test]
fn html_has_a_chart_per_operation_and_timeline() -> anyhow::Result<()> {
    let (report, _) = report::demo_report(42)?;
    let html = report::render_html(&report);
    let svgs = html.matches("<svg").count();
    // 3 ops spectra + throughput + latency over time + engine bars + crash cycles.
    assert_eq!(svgs, 7, "charts in page");
    assert_eq!(html.matches("</svg>").count(), svgs);
    for section in [
        "Checks",
        "Phases",
        "Latency percentile spectrum",
        "Timeline",
        "Engines compared",
        "fsync probe",
        "Crash cycles",
        "Fault schedule",
    ] {
        assert!(
            html.contains(&format!("<h2>{section}</h2>")),
            "missing {section}"
        );
    }
    assert!(html.contains("class=\"badge fail\">FAIL"));
    // Self-contained: no scripts, no external resources.
    for banned in ["<script", "http://", "https://", "@import", "url(", "<link"] {
        let hits = html.matches(banned).count();
        let allowed = if banned == "http://" { svgs } else { 0 }; // the SVG namespace only
        assert_eq!(hits, allowed, "found {banned}");
    }
    if let Some(dir) = std::env::var_os("HARNESS_REPORT_SAMPLE_DIR") {
        let (report, histograms) = report::demo_report(42)?;
        report::write_all(&report, &histograms, std::path::Path::new(&dir))?;
    }
    Ok(())
}

#[test]
fn html_escapes_hostile_text() -> anyhow::Result<()> {
    let (mut report, _) = report::demo_report(1)?;
    report.scenario = "<script>alert(1)</script>".to_string();
    report.engine = "\"><img src=x onerror=alert(2)>".to_string();
    report.checks.push(Check {
        name: "<b>bold</b>".to_string(),
        passed: false,
        detail: "a & b < c".to_string(),
    });
    report.timeline[0].phase = "<svg onload=alert(3)>".to_string();
    if let Some(phase) = report
        .engines
        .first_mut()
        .and_then(|e| e.phases.first_mut())
    {
        phase.name = "</title><script>".to_string();
    }
    let html = report::render_html(&report);
    assert!(!html.contains("<script"), "raw script tag in output");
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>bold"));
    assert!(!html.contains("<svg onload"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("a &amp; b &lt; c"));
    Ok(())
}

#[test]
fn html_of_an_empty_report_renders() {
    let report = report::Report::default();
    let html = report::render_html(&report);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.ends_with("</html>\n"));
    assert!(html.contains("PASS"));
    assert_eq!(html.matches("<svg").count(), 0);
}
