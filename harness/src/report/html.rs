//! report.html: one self-contained page (inline CSS and SVG, no scripts, no external URLs).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::svg::{
    self, color, format_count, format_latency, format_seconds, Axis, Band, BarChart, LineChart,
    Scale, Series,
};
use super::table::{format_rate, format_ratio, format_us, group_thousands};
use super::{Comparison, LatencySummary, PhaseReport, Report, TimelinePoint};

/// Most fault events and crash cycles listed as table rows; the JSON keeps them all.
const TABLE_ROWS_MAX: usize = 500;
/// Longest config JSON shown inline, in bytes; the JSON file has the rest.
const CONFIG_BYTES_MAX: usize = 64 * 1024;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

pub(crate) const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1a202c;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 16px 40px}
h1{font-size:24px;margin:0 0 6px;word-break:break-all}
h2{font-size:18px;margin:0 0 10px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:16px 18px;margin:14px 0}
.meta{display:flex;flex-wrap:wrap;gap:6px 22px;color:#4a5568}
.meta b{color:#1a202c;font-weight:600}
.badge{display:inline-block;padding:3px 14px;border-radius:4px;font-weight:700;letter-spacing:.06em;color:#fff;vertical-align:middle;margin-left:10px;font-size:15px}
.pass{background:#1e7f43}.fail{background:#c53030}
pre{background:#1a202c;color:#e2e8f0;padding:10px 12px;border-radius:4px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;margin:8px 0 0;font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 9px;border-bottom:1px solid #e6e9ee;text-align:right;white-space:nowrap}
th{background:#f0f2f5;font-weight:600;color:#2d3748}
th.l,td.l{text-align:left}
table.narrow{width:auto;min-width:420px}
section h2:not(:first-child){margin-top:22px}
td.detail{text-align:left;white-space:normal;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
tr.bad td{background:#fff1f1}
td.ok{color:#1e7f43;font-weight:700}td.no{color:#c53030;font-weight:700}
td.better{background:#e8f6ec;color:#17663a}td.worse{background:#fdeeee;color:#a12a2a}
tr.phase td{background:#f8f9fb;font-weight:600}
.note{color:#5a6475;font-size:13px;margin:6px 0 10px}
svg.chart{width:100%;height:auto;display:block;margin:8px 0 14px}
.scroll{overflow-x:auto}
";

pub(crate) fn render_html(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} / {}: {}</title><style>{STYLE}</style></head><body><main>",
        escape(&report.scenario),
        escape(&report.engine),
        report.verdict().as_str()
    );
    header(&mut out, report);
    checks(&mut out, report);
    phase_tables(&mut out, report);
    super::scaling::scaling_section(&mut out, report);
    super::keys::keys_section(&mut out, report);
    super::cost::cost_section(&mut out, report);
    spectrum_charts(&mut out, report);
    timeline_charts(&mut out, &report.timeline);
    engines_section(&mut out, report);
    crash_section(&mut out, report);
    fault_section(&mut out, report);
    config_section(&mut out, report);
    out.push_str("</main></body></html>\n");
    out
}

pub(crate) fn write_html(report: &Report, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("report.html");
    std::fs::write(&path, render_html(report))?;
    Ok(path)
}

fn header(out: &mut String, report: &Report) {
    let verdict = report.verdict();
    let _ = write!(
        out,
        "<section><h1>{}<span class=\"badge {v}\">{V}</span></h1><div class=\"meta\">\
         <span>engine <b>{}</b></span><span>seed <b>{}</b></span><span>git rev <b>{}</b></span>\
         <span>started <b>{}</b></span><span>checks <b>{} of {} passed</b></span>\
         <span>schema <b>v{}</b></span></div>",
        escape(&report.scenario),
        escape(&report.engine),
        report.seed,
        escape(&report.git_rev),
        escape(&report.started_at),
        report.checks.iter().filter(|c| c.passed).count(),
        report.checks.len(),
        report.schema_version,
        v = verdict.as_str(),
        V = verdict.as_str().to_uppercase(),
    );
    if let Some(reproduce) = &report.reproduce {
        let _ = write!(out, "<pre>{}</pre>", escape(reproduce));
    }
    if !report.errors.is_empty() {
        let kinds: Vec<String> = report
            .errors
            .iter()
            .map(|(kind, n)| format!("{} <b>{}</b>", escape(kind), n))
            .collect();
        let _ = write!(
            out,
            "<p class=\"note\">errors by kind: {}</p>",
            kinds.join(", ")
        );
    }
    out.push_str("</section>");
}

fn checks(out: &mut String, report: &Report) {
    out.push_str("<section><h2>Checks</h2>");
    if report.checks.is_empty() {
        out.push_str("<p class=\"note\">No checks ran; the verdict is pass by definition.</p>");
    } else {
        out.push_str(
            "<table><tr><th class=\"l\">result</th><th class=\"l\">check</th>\
             <th class=\"l\">detail</th></tr>",
        );
        for check in &report.checks {
            let (row, cell, word) = if check.passed {
                ("", "ok", "pass")
            } else {
                (" class=\"bad\"", "no", "FAIL")
            };
            let _ = write!(
                out,
                "<tr{row}><td class=\"l {cell}\">{word}</td><td class=\"l\">{}</td>\
                 <td class=\"detail\">{}</td></tr>",
                escape(&check.name),
                escape(&check.detail)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
}

/// Phases with their engine name when the run compared several engines.
fn engine_phases(report: &Report) -> Vec<(Option<&str>, &PhaseReport)> {
    if report.engines.is_empty() {
        report.phases.iter().map(|p| (None, p)).collect()
    } else {
        report
            .engines
            .iter()
            .flat_map(|e| e.phases.iter().map(move |p| (Some(e.engine.as_str()), p)))
            .collect()
    }
}

fn latency_cells(out: &mut String, s: &LatencySummary) {
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td>",
        group_thousands(&s.count.to_string()),
        group_thousands(&s.errors.to_string())
    );
    for v in [
        s.mean_us, s.p50_us, s.p90_us, s.p95_us, s.p99_us, s.p999_us, s.p9999_us, s.max_us,
    ] {
        let _ = write!(out, "<td>{}</td>", format_us(v));
    }
}

fn phase_tables(out: &mut String, report: &Report) {
    let rows = engine_phases(report);
    if rows.is_empty() {
        return;
    }
    let multi = !report.engines.is_empty();
    out.push_str("<section><h2>Phases</h2><p class=\"note\">Latencies in microseconds. ");
    out.push_str(
        "Open-loop phases show response time (from the intended start, corrected for \
         coordinated omission) and, marked <i>service</i>, time from the actual start.</p>\
         <div class=\"scroll\"><table><tr>",
    );
    if multi {
        out.push_str("<th class=\"l\">engine</th>");
    }
    out.push_str(
        "<th class=\"l\">phase / op</th><th>count</th><th>errors</th><th>mean</th><th>p50</th>\
         <th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th></tr>",
    );
    let columns = if multi { 12 } else { 11 };
    for (engine, phase) in rows {
        phase_rows(out, engine, phase, columns);
    }
    out.push_str("</table></div></section>");
}

fn phase_rows(out: &mut String, engine: Option<&str>, phase: &PhaseReport, columns: usize) {
    let target = phase
        .target_ops_s
        .map(|t| format!(", open loop at {} ops/s", format_rate(t)))
        .unwrap_or_default();
    let engine_cell = engine
        .map(|e| format!("<td class=\"l\">{}</td>", escape(e)))
        .unwrap_or_default();
    let span = if engine.is_some() {
        columns - 1
    } else {
        columns
    };
    let _ = write!(
        out,
        "<tr class=\"phase\">{engine_cell}<td class=\"l\" colspan=\"{span}\">{}: {} ops in \
         {:.2} s = {} ops/s{}</td></tr>",
        escape(&phase.name),
        group_thousands(&phase.ops.to_string()),
        phase.duration_s,
        format_rate(phase.throughput_ops_s),
        escape(&target)
    );
    for (op, summary) in &phase.latency {
        latency_row(out, engine, op, summary);
        let service = phase.service_latency.as_ref().and_then(|s| s.get(op));
        if let Some(service) = service {
            latency_row(out, engine, &format!("{op} (service)"), service);
        }
    }
    // Service-time kinds without a response-time twin still get their row.
    for (op, service) in phase.service_latency.iter().flatten() {
        if !phase.latency.contains_key(op) {
            latency_row(out, engine, &format!("{op} (service)"), service);
        }
    }
}

fn latency_row(out: &mut String, engine: Option<&str>, op: &str, summary: &LatencySummary) {
    let engine_cell = engine.map(|_| "<td></td>").unwrap_or_default();
    let _ = write!(
        out,
        "<tr>{engine_cell}<td class=\"l\">&nbsp;&nbsp;{}</td>",
        escape(op)
    );
    latency_cells(out, summary);
    out.push_str("</tr>");
}

/// x position of each summary point on the spectrum axis, 1/(1-p); max sits one decade on.
const SPECTRUM_X: [(f64, &str); 8] = [
    (1.0, "0%"),
    (2.0, "50%"),
    (10.0, "90%"),
    (20.0, "95%"),
    (100.0, "99%"),
    (1000.0, "99.9%"),
    (10_000.0, "99.99%"),
    (100_000.0, "max"),
];

fn spectrum_points(s: &LatencySummary) -> Vec<(f64, f64)> {
    let values = [
        s.min_us, s.p50_us, s.p90_us, s.p95_us, s.p99_us, s.p999_us, s.p9999_us, s.max_us,
    ];
    SPECTRUM_X
        .iter()
        .zip(values)
        .filter(|(_, v)| *v > 0.0)
        .map(|((x, _), v)| (*x, v))
        .collect()
}

/// Colour of a series: by engine in multi-engine runs, so an engine keeps its colour in every
/// chart; by phase otherwise. `repeat` counts earlier phases of the same engine in this chart.
fn series_color(
    report: &Report,
    engine: Option<&str>,
    phase_index: usize,
    repeat: usize,
) -> &'static str {
    match engine {
        Some(engine) => {
            let index = report
                .engines
                .iter()
                .position(|e| e.engine == engine)
                .unwrap_or(0);
            color(index + repeat * report.engines.len())
        }
        None => color(phase_index),
    }
}

fn spectrum_series(report: &Report, op: &str) -> Vec<Series> {
    let mut series = Vec::new();
    let mut seen_engines: Vec<&str> = Vec::new();
    for (i, (engine, phase)) in engine_phases(report).into_iter().enumerate() {
        let Some(summary) = phase.latency.get(op).filter(|s| s.count > 0) else {
            continue;
        };
        let repeat = seen_engines.iter().filter(|e| Some(**e) == engine).count();
        seen_engines.extend(engine);
        let line_color = series_color(report, engine, i, repeat);
        let name = match engine {
            Some(engine) => format!("{engine} / {}", phase.name),
            None => phase.name.clone(),
        };
        let service = phase.service_latency.as_ref().and_then(|s| s.get(op));
        series.push(Series {
            name: name.clone(),
            color: line_color,
            dashed: false,
            markers: true,
            points: spectrum_points(summary),
        });
        if let Some(service) = service.filter(|s| s.count > 0) {
            series.push(Series {
                name: format!("{name} (service)"),
                color: line_color,
                dashed: true,
                markers: true,
                points: spectrum_points(service),
            });
        }
    }
    series.truncate(svg::SERIES_MAX);
    series
}

fn spectrum_charts(out: &mut String, report: &Report) {
    let ops: BTreeSet<&String> = engine_phases(report)
        .into_iter()
        .flat_map(|(_, p)| p.latency.keys())
        .collect();
    if ops.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>Latency percentile spectrum</h2><p class=\"note\">x: percentile on a \
         log scale of 1/(1&minus;p), so each step right is ten times rarer; y: latency, log \
         scale. Dashed lines are service time.</p>",
    );
    for op in ops {
        let series = spectrum_series(report, op);
        let (low, high) = value_range(&series);
        let chart = LineChart {
            title: format!("{op}: latency by percentile"),
            x: Axis {
                label: "percentile".to_string(),
                scale: Scale::Log10,
                min: 1.0,
                max: 100_000.0,
                ticks: SPECTRUM_X
                    .iter()
                    .map(|(x, l)| (*x, l.to_string()))
                    .collect(),
            },
            y: Axis::log_latency_us("latency", low, high),
            series,
            bands: Vec::new(),
        };
        out.push_str(&chart.render());
    }
    out.push_str("</section>");
}

/// Smallest positive and largest y over all series.
fn value_range(series: &[Series]) -> (f64, f64) {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|(_, y)| *y));
    let low = ys.clone().filter(|y| *y > 0.0).fold(f64::MAX, f64::min);
    let high = ys.fold(0.0, f64::max);
    if low == f64::MAX {
        (1.0, 10.0)
    } else {
        (low, high)
    }
}

/// Consecutive timeline points of the same phase, as shaded bands.
fn phase_bands(timeline: &[TimelinePoint]) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    for point in timeline {
        match bands.last_mut() {
            Some(band) if band.label == point.phase => band.x1 = point.t_s + 1.0,
            _ => bands.push(Band {
                x0: point.t_s,
                x1: point.t_s + 1.0,
                label: point.phase.clone(),
            }),
        }
    }
    bands
}

fn timeline_series(
    name: &str,
    i: usize,
    timeline: &[TimelinePoint],
    f: fn(&TimelinePoint) -> f64,
) -> Series {
    Series {
        name: name.to_string(),
        color: color(i),
        dashed: false,
        markers: false,
        // Each point covers [t, t+1); draw it at the middle of its second.
        points: timeline.iter().map(|p| (p.t_s + 0.5, f(p))).collect(),
    }
}

fn timeline_charts(out: &mut String, timeline: &[TimelinePoint]) {
    if timeline.is_empty() {
        return;
    }
    let end_s = timeline.iter().map(|p| p.t_s + 1.0).fold(1.0, f64::max);
    let bands = phase_bands(timeline);
    let throughput = timeline_series("throughput", 0, timeline, |p| p.throughput_ops_s);
    let max_rate = throughput
        .points
        .iter()
        .map(|(_, y)| *y)
        .fold(0.0, f64::max);
    let x = Axis::linear("time since start (s)", 0.0, end_s, format_seconds);
    let rate_chart = LineChart {
        title: "Throughput over time (1 s intervals)".to_string(),
        x: x.clone(),
        y: Axis::linear("throughput (ops/s)", 0.0, max_rate, format_count),
        series: vec![throughput],
        bands: bands.clone(),
    };
    let latency = vec![
        timeline_series("p50", 0, timeline, |p| p.p50_us),
        timeline_series("p99", 1, timeline, |p| p.p99_us),
    ];
    let (low, high) = value_range(&latency);
    let latency_chart = LineChart {
        title: "Latency over time (1 s intervals, all operations)".to_string(),
        x,
        y: Axis::log_latency_us("latency", low, high),
        series: latency,
        bands,
    };
    out.push_str("<section><h2>Timeline</h2><p class=\"note\">Shaded bands are phases.</p>");
    out.push_str(&rate_chart.render());
    out.push_str(&latency_chart.render());
    out.push_str("</section>");
}

fn comparison_cell(out: &mut String, c: &Comparison) {
    let class = if c.ours_better {
        "better"
    } else if c.ours == c.peer {
        ""
    } else {
        "worse"
    };
    let _ = write!(out, "<td class=\"{class}\">{}</td>", format_ratio(c));
}

fn ratio_table(out: &mut String, report: &Report) {
    if report.ratios.is_empty() {
        return;
    }
    out.push_str(
        "<p class=\"note\">Ratios are ours / peer. Throughput: higher is better; latency: lower \
         is better. Green: ours better; red: ours worse.</p><div class=\"scroll\"><table><tr>\
         <th class=\"l\">phase</th><th class=\"l\">ours vs peer</th><th>ops/s ours</th>\
         <th>ops/s peer</th><th>ops/s ratio</th><th class=\"l\">op</th><th>p50 ours</th>\
         <th>p50 peer</th><th>p50 ratio</th><th>p99 ours</th><th>p99 peer</th>\
         <th>p99 ratio</th></tr>",
    );
    for ratio in &report.ratios {
        let ops: Vec<_> = ratio.latency.iter().map(Some).collect();
        let ops = if ops.is_empty() { vec![None] } else { ops };
        for op in ops {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{} vs {}</td><td>{}</td><td>{}</td>",
                escape(&ratio.phase),
                escape(&ratio.ours),
                escape(&ratio.peer),
                format_rate(ratio.throughput_ops_s.ours),
                format_rate(ratio.throughput_ops_s.peer)
            );
            comparison_cell(out, &ratio.throughput_ops_s);
            match op {
                Some((name, latency)) => {
                    let _ = write!(out, "<td class=\"l\">{}</td>", escape(name));
                    for c in [&latency.p50_us, &latency.p99_us] {
                        let _ = write!(
                            out,
                            "<td>{}</td><td>{}</td>",
                            format_us(c.ours),
                            format_us(c.peer)
                        );
                        comparison_cell(out, c);
                    }
                }
                None => out.push_str("<td colspan=\"7\"></td>"),
            }
            out.push_str("</tr>");
        }
    }
    out.push_str("</table></div>");
}

fn engine_bars(out: &mut String, report: &Report) {
    let mut groups: Vec<String> = Vec::new();
    for engine in &report.engines {
        for phase in &engine.phases {
            if !groups.contains(&phase.name) {
                groups.push(phase.name.clone());
            }
        }
    }
    let series: Vec<String> = report.engines.iter().map(|e| e.engine.clone()).collect();
    let values = groups
        .iter()
        .map(|group| {
            let rate = |e: &super::EngineReport| {
                e.phases
                    .iter()
                    .find(|p| &p.name == group)
                    .map_or(0.0, |p| p.throughput_ops_s)
            };
            report.engines.iter().map(rate).collect()
        })
        .collect();
    let chart = BarChart {
        title: "Throughput by engine and phase".to_string(),
        y_label: "throughput (ops/s)".to_string(),
        groups,
        series: series.into_iter().take(svg::SERIES_MAX).collect(),
        values,
        format: format_count,
    };
    out.push_str(&chart.render());
}

fn fsync_table(out: &mut String, report: &Report) {
    if report.fsync_probe.is_empty() {
        return;
    }
    out.push_str(
        "<h2>fsync probe</h2><p class=\"note\">Measured in each round: durable figures follow \
         the disk's fsync regime, so read them against this.</p><table class=\"narrow\"><tr><th>round</th>\
         <th>fsyncs/s</th><th>p50 µs</th><th>p99 µs</th></tr>",
    );
    for probe in &report.fsync_probe {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            probe.round,
            format_rate(probe.fsyncs_per_s),
            format_us(probe.p50_us),
            format_us(probe.p99_us)
        );
    }
    out.push_str("</table>");
}

fn engines_section(out: &mut String, report: &Report) {
    if report.engines.is_empty() && report.ratios.is_empty() && report.fsync_probe.is_empty() {
        return;
    }
    out.push_str("<section><h2>Engines compared</h2>");
    let rounds: Vec<String> = report
        .engines
        .iter()
        .map(|e| format!("{} ({} rounds)", escape(&e.engine), e.rounds))
        .collect();
    if !rounds.is_empty() {
        let _ = write!(
            out,
            "<p class=\"note\">Interleaved: {}.</p>",
            rounds.join(", ")
        );
        engine_bars(out, report);
    }
    ratio_table(out, report);
    fsync_table(out, report);
    out.push_str("</section>");
}

fn crash_section(out: &mut String, report: &Report) {
    let Some(crash) = &report.crash_cycles else {
        return;
    };
    let _ = write!(
        out,
        "<section><h2>Crash cycles</h2><p class=\"note\">{} crash-and-recover cycles. \
         Microseconds.</p><table><tr><th class=\"l\">stage</th><th>count</th><th>errors</th>\
         <th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th>\
         <th>p99.99</th><th>max</th></tr>",
        crash.count
    );
    for (stage, summary) in [("reopen", &crash.reopen), ("verify", &crash.verify)] {
        let _ = write!(out, "<tr><td class=\"l\">{stage}</td>");
        latency_cells(out, summary);
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    if !crash.cycles.is_empty() {
        let per_cycle = |name: &str, i: usize, f: fn(&super::CrashCycle) -> f64| Series {
            name: name.to_string(),
            color: color(i),
            dashed: false,
            markers: crash.cycles.len() <= 60,
            points: crash
                .cycles
                .iter()
                .map(|c| (c.cycle as f64, f(c)))
                .collect(),
        };
        let series = vec![
            per_cycle("reopen", 0, |c| c.reopen_us),
            per_cycle("verify", 1, |c| c.verify_us),
        ];
        let (low, high) = value_range(&series);
        let last = crash
            .cycles
            .iter()
            .map(|c| c.cycle as f64)
            .fold(1.0, f64::max);
        let chart = LineChart {
            title: "Recovery time per crash cycle".to_string(),
            x: Axis::linear("crash cycle", 0.0, last, format_count),
            y: Axis::log_latency_us("time", low, high),
            series,
            bands: Vec::new(),
        };
        out.push_str(&chart.render());
        failed_cycles(out, report);
    }
    out.push_str("</section>");
}

fn failed_cycles(out: &mut String, report: &Report) {
    let Some(crash) = &report.crash_cycles else {
        return;
    };
    let failed: Vec<_> = crash.cycles.iter().filter(|c| !c.passed).collect();
    if failed.is_empty() {
        out.push_str("<p class=\"note\">Every cycle recovered to a state the oracle accepts.</p>");
        return;
    }
    out.push_str(
        "<h2>Failed cycles</h2><table class=\"narrow\"><tr><th>cycle</th><th>at op</th><th class=\"l\">kind</th>\
         <th>reopen</th><th>verify</th></tr>",
    );
    for c in failed.iter().take(TABLE_ROWS_MAX) {
        let _ = write!(
            out,
            "<tr class=\"bad\"><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td>\
             <td>{}</td></tr>",
            c.cycle,
            group_thousands(&c.at_op.to_string()),
            escape(&c.kind),
            format_latency(c.reopen_us),
            format_latency(c.verify_us)
        );
    }
    out.push_str("</table>");
}

fn fault_section(out: &mut String, report: &Report) {
    let Some(faults) = &report.fault_schedule else {
        return;
    };
    let _ = write!(
        out,
        "<section><h2>Fault schedule</h2><p class=\"note\">{} seeded faults{}.</p><table><tr>\
         <th>at op</th><th class=\"l\">kind</th><th class=\"l\">file</th><th>offset</th>\
         <th class=\"l\">detail</th></tr>",
        faults.len(),
        if faults.len() > TABLE_ROWS_MAX {
            format!(", first {TABLE_ROWS_MAX} shown (all in report.json)")
        } else {
            String::new()
        }
    );
    for f in faults.iter().take(TABLE_ROWS_MAX) {
        let offset = f.offset.map(|o| o.to_string()).unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{offset}</td>\
             <td class=\"detail\">{}</td></tr>",
            group_thousands(&f.at_op.to_string()),
            escape(&f.kind),
            escape(&f.file),
            escape(&f.detail)
        );
    }
    out.push_str("</table></section>");
}

fn config_section(out: &mut String, report: &Report) {
    if report.config.is_null() {
        return;
    }
    let mut text = serde_json::to_string_pretty(&report.config).unwrap_or_default();
    if text.len() > CONFIG_BYTES_MAX {
        let mut cut = CONFIG_BYTES_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n... (truncated; report.json has it all)");
    }
    let _ = write!(
        out,
        "<section><h2>Resolved scenario</h2><pre>{}</pre></section>",
        escape(&text)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert(\"x&'y\")</script>"),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
    }

    #[test]
    fn bands_follow_phase_runs() {
        let point = |t: f64, phase: &str| TimelinePoint {
            t_s: t,
            phase: phase.to_string(),
            ..TimelinePoint::default()
        };
        let bands = phase_bands(&[point(0.0, "load"), point(1.0, "load"), point(2.0, "run")]);
        assert_eq!(bands.len(), 2);
        assert_eq!((bands[0].x0, bands[0].x1), (0.0, 2.0));
        assert_eq!((bands[1].x0, bands[1].x1), (2.0, 3.0));
    }
}
