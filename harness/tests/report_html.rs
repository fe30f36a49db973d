//! report.html: self-contained, one <svg> per chart, hostile text escaped.
//! Set HARNESS_REPORT_SAMPLE_DIR to also write the demo report there for a look in a browser.

use harness::report::{self, Check};

#[test]
fn html_has_a_chart_per_operation_and_timeline() -> anyhow::Result<()> {
    let (report, _) = report::demo_report(42)?;
    let html = report::render_html(&report);
    let svgs = html.matches("<svg").count();
    // 3 ops spectra + throughput + latency over time + engine bars + crash cycles + memory
    // files and WAL over time (the demo's timeline has no load phase: no load-rate chart).
    assert_eq!(svgs, 10, "charts in page");
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
        "Load and resources",
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
        let dir = std::path::Path::new(&dir);
        report::write_all(&report, &histograms, dir)?;
        report::write_html(&single_engine_open_loop()?, &dir.join("single"))?;
    }
    Ok(())
}

/// The demo cut down to one engine running open loop: response and service time per op.
fn single_engine_open_loop() -> anyhow::Result<report::Report> {
    let (mut report, _) = report::demo_report(9)?;
    report.engine = "ours".to_string();
    report.engines.clear();
    report.ratios.clear();
    report.fsync_probe.clear();
    report.crash_cycles = None;
    report.fault_schedule = None;
    for phase in &mut report.phases {
        phase.target_ops_s = Some(200_000.0);
        let mut service = phase.latency.clone();
        for summary in service.values_mut() {
            // Service time leaves out queueing, so its tail is far shorter.
            summary.p999_us = summary.p99_us * 2.0;
            summary.p9999_us = summary.p99_us * 3.0;
            summary.max_us = summary.p99_us * 5.0;
        }
        phase.service_latency = Some(service);
    }
    for point in &mut report.timeline {
        point.phase = if point.t_s < 10.0 { "load" } else { "run" }.to_string();
    }
    Ok(report)
}

#[test]
fn open_loop_service_time_is_drawn_dashed() -> anyhow::Result<()> {
    let html = report::render_html(&single_engine_open_loop()?);
    assert!(
        html.contains("stroke-dasharray=\"7 4\""),
        "service lines are dashed"
    );
    assert!(html.contains("read (service)"));
    assert!(html.contains("open loop at 200,000 ops/s"));
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
    // A report that judged nothing fails (`Report::verdict`).
    assert!(html.contains("FAIL"));
    assert_eq!(html.matches("<svg").count(), 0);
}
