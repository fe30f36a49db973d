//! The soak's report: `soak.json` (settings, checks, per-bucket figures, episodes, samples),
//! `soak.html` (one self-contained page with inline SVG charts) and one `.hgrm` per
//! operation kind over the whole soak.

use std::fmt::Write as _;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::stats::{new_histogram, quantile_us, Bucket, Sample, OP_KINDS};
use super::{trend, Soak};
use crate::report::cost::format_bytes;
use crate::report::html::{escape, STYLE};
use crate::report::svg::{color, format_count, format_seconds, Axis, LineChart, Series};
use crate::report::{hgrm_text, HistUnit};

fn latency(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(), "p50_us": quantile_us(h, 0.5), "p99_us": quantile_us(h, 0.99),
        "p999_us": quantile_us(h, 0.999), "max_us": h.max() as f64 / 1000.0,
    })
}

/// Per bucket: throughput and latency per kind, and the resources of its samples.
fn bucket_rows(soak: &Soak) -> Vec<Value> {
    let span = soak.state.config.bucket_s.max(1) as f64;
    let mut buckets: Vec<&Bucket> = soak.buckets.iter().collect();
    buckets.sort_by_key(|b| b.index);
    buckets
        .iter()
        .map(|b| {
            let of: Vec<&Sample> = soak
                .state
                .samples
                .iter()
                .filter(|s| (s.t_s / span) as u64 == b.index)
                .collect();
            let mean = |f: fn(&Sample) -> f64| of.iter().map(|s| f(s)).sum::<f64>() / of.len().max(1) as f64;
            let fsyncs: Vec<f64> = of.iter().filter_map(|s| s.fsyncs_per_s).collect();
            let all = b.all();
            let ops: serde_json::Map<String, Value> =
                OP_KINDS.iter().zip(&b.hists).map(|(k, h)| (k.name().to_string(), latency(h))).collect();
            json!({
                "bucket": b.index, "start_s": b.index as f64 * span, "work_s": b.work_s,
                "ops_per_s": all.len() as f64 / b.work_s.max(1e-9), "all": latency(&all), "ops": ops,
                "rss_bytes_mean": mean(|s| s.rss_bytes as f64),
                "file_bytes_last": of.last().map_or(0, |s| s.file_bytes),
                "wal_bytes_max": of.iter().map(|s| s.wal_bytes).max().unwrap_or(0),
                "fsyncs_per_s": (!fsyncs.is_empty()).then(|| fsyncs.iter().sum::<f64>() / fsyncs.len() as f64),
            })
        })
        .collect()
}

fn checks_json(soak: &Soak) -> Vec<Value> {
    soak.state
        .checks
        .iter()
        .map(|(name, c)| {
            let stopped = soak.state.stopped();
            let status = c.status(stopped);
            let not_judged = match (&c.not_judged, status) {
                (Some(why), _) => Some(why.clone()),
                (None, super::CheckStatus::NotJudged) => Some(super::STOPPED_EARLY.to_string()),
                (None, _) => None,
            };
            json!({ "name": name, "status": status.word(), "checked": c.checked,
                    "failed": c.failed, "details": c.details, "pending": c.pending,
                    "not_judged": not_judged, "note": c.note })
        })
        .collect()
}

fn recovery(soak: &Soak) -> Value {
    let mut h = new_histogram();
    for e in &soak.state.episodes {
        h.saturating_record((e.reopen_us * 1000.0).max(1.0) as u64);
    }
    latency(&h)
}

/// Writes soak.json, soak.html and the `.hgrm` files into the soak's directory.
///
/// # Errors
/// Files that cannot be written.
pub fn write(soak: &Soak) -> Result<()> {
    let failed = checks_json(soak).iter().any(|c| c["status"] == "fail");
    let report = json!({
        "kind": "soak", "verdict": if failed { "FAIL" } else { "PASS" },
        "config": soak.state.config, "elapsed_s": soak.state.elapsed_s,
        "keys_loaded": soak.state.keys_loaded, "slices": soak.state.slices,
        "checks": checks_json(soak),
        "trends": { "rss_slope_mib_h": trend::rss_slope_mib_h(&soak.state.samples),
                    "file_slope_mib_h": trend::file_slope_mib_h(&soak.state.samples) },
        "recovery": recovery(soak), "buckets": bucket_rows(soak),
        "episodes": soak.state.episodes, "samples": soak.state.samples,
    });
    std::fs::write(
        soak.dir.join("soak.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    std::fs::write(soak.dir.join("soak.html"), html(soak, &report))?;
    for (i, kind) in OP_KINDS.iter().enumerate() {
        let mut h = new_histogram();
        for b in &soak.buckets {
            if let Some(part) = b.hists.get(i) {
                let _ = h.add(part);
            }
        }
        std::fs::write(
            soak.dir.join(format!("{}.hgrm", kind.name())),
            hgrm_text(&h, HistUnit::Nanoseconds),
        )?;
    }
    Ok(())
}

fn html(soak: &Soak, report: &Value) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let verdict = report["verdict"].as_str().unwrap_or("FAIL");
    let c = &soak.state.config;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>soak: {verdict}</title>\
         <style>{STYLE}</style></head><body><main><section><h1>soak<span class=\"badge {}\">{verdict}</span></h1>\
         <div class=\"meta\"><span>engine <b>{}</b></span><span>seed <b>{}</b></span><span>keys <b>{}</b></span>\
         <span>threads <b>{}</b></span><span>soak time <b>{}</b></span><span>slices <b>{}</b></span>\
         <span>crash episodes <b>{}</b></span></div></section>",
        if verdict == "PASS" { "pass" } else { "fail" },
        escape(&c.engine), c.seed, c.keys, c.threads, format_seconds(soak.state.elapsed_s),
        soak.state.slices.len(), soak.state.episodes.len()
    );
    checks_table(&mut out, report);
    buckets_table(&mut out, report);
    charts(&mut out, &soak.state.samples);
    episodes_table(&mut out, soak);
    out.push_str("</main></body></html>\n");
    out
}

fn checks_table(out: &mut String, report: &Value) {
    out.push_str("<section><h2>Checks</h2><table><tr><th class=\"l\">check</th><th>status</th><th>observations</th><th class=\"l\">detail</th></tr>");
    for c in report["checks"].as_array().into_iter().flatten() {
        let status = c["status"].as_str().unwrap_or("fail");
        let detail = match status {
            "pending" => c["pending"].as_str().unwrap_or_default().to_string(),
            "not judged" => c["not_judged"].as_str().unwrap_or_default().to_string(),
            "fail" => c["details"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | "),
            _ => c["note"].as_str().unwrap_or_default().to_string(),
        };
        let _ = write!(
            out,
            "<tr{}><td class=\"l\">{}</td><td class=\"{}\">{status}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
            if status == "fail" { " class=\"bad\"" } else { "" },
            escape(c["name"].as_str().unwrap_or_default()),
            if status == "fail" { "no" } else { "ok" },
            c["checked"], escape(&detail)
        );
    }
    out.push_str("</table></section>");
}

fn buckets_table(out: &mut String, report: &Value) {
    out.push_str("<section><h2>Per bucket</h2><p class=\"note\">Latency of every operation kind together; \
                  memory is the child's resident set, files exclude the WAL.</p><div class=\"scroll\"><table>\
                  <tr><th>bucket</th><th>work</th><th>ops/s</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th>\
                  <th>RSS (mean)</th><th>file</th><th>WAL (max)</th><th>fsyncs/s</th></tr>");
    for b in report["buckets"].as_array().into_iter().flatten() {
        let f = |v: &Value| v.as_f64().unwrap_or(0.0);
        let us = |v: &Value| format!("{:.0} us", f(v));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            b["bucket"], format_seconds(f(&b["work_s"])), f(&b["ops_per_s"]),
            us(&b["all"]["p50_us"]), us(&b["all"]["p99_us"]), us(&b["all"]["p999_us"]), us(&b["all"]["max_us"]),
            format_bytes(f(&b["rss_bytes_mean"])), format_bytes(f(&b["file_bytes_last"])),
            format_bytes(f(&b["wal_bytes_max"])),
            b["fsyncs_per_s"].as_f64().map_or("n/a".to_string(), |v| format!("{v:.0}")),
        );
    }
    out.push_str("</table></div></section>");
}

fn chart(out: &mut String, title: &str, unit: &str, series: Vec<(&str, Vec<(f64, f64)>)>) {
    let t_max = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    if t_max <= 0.0 || series.iter().all(|s| s.1.len() < 2) {
        return;
    }
    let chart = LineChart {
        title: title.to_string(),
        x: Axis::linear("soak time", 0.0, t_max, format_seconds),
        y: Axis::linear(unit, 0.0, y_max.max(1e-9), format_count),
        series: series
            .into_iter()
            .enumerate()
            .map(|(i, (name, points))| Series {
                name: name.to_string(),
                color: color(i),
                dashed: false,
                markers: false,
                points,
            })
            .collect(),
        bands: Vec::new(),
    };
    out.push_str(&chart.render());
}

fn charts(out: &mut String, samples: &[Sample]) {
    let pts = |f: fn(&Sample) -> Option<f64>| {
        samples
            .iter()
            .filter_map(|s| Some((s.t_s, f(s)?)))
            .collect::<Vec<_>>()
    };
    out.push_str(
        "<section><h2>Over time</h2><p class=\"note\">One point per tick of the child; \
                  the gaps and restarts are the crash episodes.</p>",
    );
    chart(
        out,
        "Throughput (all operations)",
        "ops/s",
        vec![("ops/s", pts(|s| Some(s.ops_per_s)))],
    );
    chart(
        out,
        "Latency per tick",
        "microseconds",
        vec![
            ("p50", pts(|s| Some(s.p50_us))),
            ("p99", pts(|s| Some(s.p99_us))),
        ],
    );
    chart(
        out,
        "Resident memory of the child",
        "MiB",
        vec![("RSS", pts(|s| Some(s.rss_bytes as f64 / 1_048_576.0)))],
    );
    chart(
        out,
        "Engine files",
        "MiB",
        vec![
            ("file", pts(|s| Some(s.file_bytes as f64 / 1_048_576.0))),
            ("WAL", pts(|s| Some(s.wal_bytes as f64 / 1_048_576.0))),
        ],
    );
    chart(
        out,
        "fsyncs per second",
        "fsyncs/s",
        vec![("fsyncs/s", pts(|s| s.fsyncs_per_s))],
    );
    out.push_str("</section>");
}

fn episodes_table(out: &mut String, soak: &Soak) {
    out.push_str("<section><h2>Crash episodes</h2><p class=\"note\">Each episode ends with kill -9 of the \
                  child; the parent then reopens (recovery), verifies every key and runs the integrity check.</p>\
                  <div class=\"scroll\"><table><tr><th>episode</th><th>start</th><th>length</th><th>ops</th>\
                  <th>WAL at kill</th><th>recovery</th><th>verify</th><th>keys present</th><th class=\"l\">end</th><th>verdict</th></tr>");
    for e in &soak.state.episodes {
        let _ = write!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} ms</td><td>{:.1} ms</td><td>{}</td><td class=\"l\">{}</td><td class=\"{}\">{}</td></tr>",
            if e.passed { "" } else { " class=\"bad\"" },
            e.index, format_seconds(e.start_s), format_seconds(e.length_s), e.ops, format_bytes(e.wal_bytes as f64),
            e.reopen_us / 1000.0, e.verify_us / 1000.0, e.keys_present, escape(&e.end),
            if e.passed { "ok" } else { "no" }, if e.passed { "verified" } else { "FAILED" }
        );
    }
    out.push_str("</table></div></section>");
}
