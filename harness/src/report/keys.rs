//! Cost as the data grows: each phase's throughput and p99 against the record count it ran
//! over, one line per engine and phase, drawn when the scenario swept `record_counts`
//! (`scale/sweep`). Both axes that span decades are logarithmic.

use std::collections::BTreeSet;

use super::html::escape;
use super::svg::{self, color, format_count, Axis, LineChart, Series};
use super::{PhaseReport, Report};

/// Every engine's phases that ran at a known record count: (engine, phases).
fn swept(report: &Report) -> Vec<(String, Vec<&PhaseReport>)> {
    fn keep(phases: &[PhaseReport]) -> Vec<&PhaseReport> {
        phases.iter().filter(|p| p.keys > 0).collect()
    }
    if report.engines.is_empty() {
        vec![(report.engine.clone(), keep(&report.phases))]
    } else {
        report
            .engines
            .iter()
            .map(|e| (e.engine.clone(), keep(&e.phases)))
            .collect()
    }
}

/// A phase's name without its `@<count>` suffix.
fn base(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// One series per (engine, phase): `pick` of each record count's phase.
fn series(report: &Report, pick: fn(&PhaseReport) -> Option<f64>) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, (engine, phases)) in swept(report).into_iter().enumerate() {
        let names: BTreeSet<&str> = phases.iter().map(|p| base(&p.name)).collect();
        for (k, name) in names.into_iter().enumerate() {
            let points: Vec<(f64, f64)> = phases
                .iter()
                .filter(|p| base(&p.name) == name)
                .filter_map(|p| Some((p.keys as f64, pick(p)?)))
                .collect();
            out.push(Series {
                name: format!("{engine} {name}"),
                color: color(i),
                dashed: k % 2 == 1,
                markers: true,
                points,
            });
        }
    }
    out.truncate(svg::SERIES_MAX);
    out
}

/// The worst p99 over a phase's operation kinds, microseconds.
fn p99_worst(p: &PhaseReport) -> Option<f64> {
    p.latency
        .values()
        .filter(|s| s.count > 0)
        .map(|s| s.p99_us.max(0.001))
        .reduce(f64::max)
}

fn range(series: &[Series]) -> (f64, f64) {
    series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, y)| *y))
        .fold((f64::MAX, 0.0f64), |(a, b), y| (a.min(y), b.max(y)))
}

/// The section, or nothing when the run swept no record counts.
pub(crate) fn keys_section(out: &mut String, report: &Report) {
    let counts: BTreeSet<u64> = swept(report)
        .iter()
        .flat_map(|(_, phases)| phases.iter().map(|p| p.keys))
        .collect();
    let (Some(&low), Some(&high)) = (counts.first(), counts.last()) else {
        return;
    };
    if counts.len() < 2 {
        return;
    }
    let listed: Vec<String> = counts.iter().map(|n| crate::run::count_label(*n)).collect();
    out.push_str(&format!(
        "<section><h2>Cost as the data grows</h2><p class=\"note\">Each phase on a fresh \
         database at each record count ({}); x: records, log scale. p99 is the worst \
         operation kind's.</p>",
        escape(&listed.join(", "))
    ));
    let keys_axis = || Axis::log("records", low as f64, high as f64, format_count);
    let rates = series(report, |p| Some(p.throughput_ops_s));
    let (rate_low, rate_high) = range(&rates);
    if rate_high > 0.0 {
        out.push_str(
            &LineChart {
                title: "Throughput by record count".to_string(),
                x: keys_axis(),
                y: Axis::log("ops/s", rate_low.max(1.0), rate_high, format_count),
                series: rates,
                bands: Vec::new(),
            }
            .render(),
        );
    }
    let p99 = series(report, p99_worst);
    let (y_low, y_high) = range(&p99);
    if y_high > 0.0 {
        out.push_str(
            &LineChart {
                title: "p99 latency by record count".to_string(),
                x: keys_axis(),
                y: Axis::log_latency_us("p99 latency", y_low, y_high),
                series: p99,
                bands: Vec::new(),
            }
            .render(),
        );
    }
    out.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EngineReport, LatencySummary};

    fn phase(name: &str, keys: u64, rate: f64) -> PhaseReport {
        let mut latency = std::collections::BTreeMap::new();
        let summary = LatencySummary {
            count: 10,
            p99_us: keys as f64 / 100.0,
            ..LatencySummary::default()
        };
        latency.insert("read".to_string(), summary);
        PhaseReport {
            name: name.into(),
            keys,
            throughput_ops_s: rate,
            latency,
            ..PhaseReport::default()
        }
    }

    #[test]
    fn charts_appear_only_for_several_record_counts() {
        let mut report = Report {
            engines: vec![EngineReport {
                engine: "engine-full".into(),
                phases: vec![
                    phase("load@10K", 10_000, 5.0),
                    phase("run@10K", 10_000, 9.0),
                    phase("load@1M", 1_000_000, 4.0),
                    phase("run@1M", 1_000_000, 7.0),
                ],
                ..EngineReport::default()
            }],
            ..Report::default()
        };
        let mut out = String::new();
        keys_section(&mut out, &report);
        assert!(out.contains("Throughput by record count"), "{out}");
        assert!(out.contains("engine-full run"), "{out}");
        assert!(out.contains("engine-full load"), "{out}");
        report.engines[0].phases.truncate(2);
        let mut single = String::new();
        keys_section(&mut single, &report);
        assert!(single.is_empty(), "{single}");
    }
}
