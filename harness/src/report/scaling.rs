//! Scaling charts: throughput and p99 against the driver's thread count, one line per engine
//! (and per operation for p99), drawn when a run's measured phases ran at two or more thread
//! counts (the `concurrency/` scenarios).

use std::collections::BTreeSet;

use super::html::escape;
use super::svg::{self, color, format_count, Axis, LineChart, Series};
use super::{PhaseReport, Report};

/// The measured phases of each engine (`None` for a single-engine run); load is not one.
fn measured(report: &Report) -> Vec<(Option<&str>, Vec<&PhaseReport>)> {
    fn keep(phases: &[PhaseReport]) -> Vec<&PhaseReport> {
        phases
            .iter()
            .filter(|p| p.name != "load" && p.threads > 0)
            .collect()
    }
    if report.engines.is_empty() {
        vec![(None, keep(&report.phases))]
    } else {
        report
            .engines
            .iter()
            .map(|e| (Some(e.engine.as_str()), keep(&e.phases)))
            .collect()
    }
}

/// The thread counts the measured phases ran at, when there are at least two.
fn thread_counts(report: &Report) -> Option<BTreeSet<usize>> {
    let counts: BTreeSet<usize> = measured(report)
        .iter()
        .flat_map(|(_, phases)| phases.iter().map(|p| p.threads))
        .collect();
    (counts.len() >= 2).then_some(counts)
}

fn label(engine: Option<&str>, rest: &str) -> String {
    match (engine, rest.is_empty()) {
        (Some(e), true) => e.to_string(),
        (Some(e), false) => format!("{e} {rest}"),
        (None, true) => "throughput".to_string(),
        (None, false) => rest.to_string(),
    }
}

fn throughput_series(report: &Report) -> Vec<Series> {
    measured(report)
        .into_iter()
        .enumerate()
        .map(|(i, (engine, phases))| Series {
            name: label(engine, ""),
            color: color(i),
            dashed: false,
            markers: true,
            points: phases
                .iter()
                .map(|p| (p.threads as f64, p.throughput_ops_s))
                .collect(),
        })
        .take(svg::SERIES_MAX)
        .collect()
}

fn p99_series(report: &Report) -> Vec<Series> {
    let mut series = Vec::new();
    for (i, (engine, phases)) in measured(report).into_iter().enumerate() {
        let ops: BTreeSet<&String> = phases.iter().flat_map(|p| p.latency.keys()).collect();
        for (k, op) in ops.into_iter().enumerate() {
            let points = phases
                .iter()
                .filter_map(|p| p.latency.get(op).filter(|s| s.count > 0).map(|s| (p, s)))
                .map(|(p, s)| (p.threads as f64, s.p99_us.max(0.001)))
                .collect();
            series.push(Series {
                name: label(engine, op),
                color: color(i),
                dashed: k % 2 == 1,
                markers: true,
                points,
            });
        }
    }
    series.truncate(svg::SERIES_MAX);
    series
}

/// The scaling section, or nothing when the run measured a single thread count.
pub(crate) fn scaling_section(out: &mut String, report: &Report) {
    let Some(counts) = thread_counts(report) else {
        return;
    };
    let low = counts.first().copied().unwrap_or(1) as f64;
    let high = counts.last().copied().unwrap_or(1) as f64;
    let listed: Vec<String> = counts.iter().map(ToString::to_string).collect();
    out.push_str(&format!(
        "<section><h2>Scaling with threads</h2><p class=\"note\">Each measured phase at its \
         thread count ({}); x: driver threads, log scale.</p>",
        escape(&listed.join(", "))
    ));
    let threads_axis = || Axis::log("driver threads", low, high, format_count);
    let rates = throughput_series(report);
    let rate_max = rates
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max);
    let rate_chart = LineChart {
        title: "Throughput by thread count".to_string(),
        x: threads_axis(),
        y: Axis::linear("throughput (ops/s)", 0.0, rate_max, format_count),
        series: rates,
        bands: Vec::new(),
    };
    out.push_str(&rate_chart.render());
    let p99 = p99_series(report);
    let ys = p99.iter().flat_map(|s| s.points.iter().map(|(_, y)| *y));
    let (y_low, y_high) = ys.fold((f64::MAX, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    if y_high > 0.0 {
        let p99_chart = LineChart {
            title: "p99 latency by thread count".to_string(),
            x: threads_axis(),
            y: Axis::log_latency_us("p99 latency", y_low, y_high),
            series: p99,
            bands: Vec::new(),
        };
        out.push_str(&p99_chart.render());
    }
    out.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EngineReport, LatencySummary};

    fn phase(name: &str, threads: usize, rate: f64) -> PhaseReport {
        let mut latency = std::collections::BTreeMap::new();
        latency.insert(
            "read".to_string(),
            LatencySummary {
                count: 10,
                p99_us: 100.0 * threads as f64,
                ..LatencySummary::default()
            },
        );
        PhaseReport {
            name: name.into(),
            threads,
            throughput_ops_s: rate,
            latency,
            ..PhaseReport::default()
        }
    }

    #[test]
    fn charts_appear_only_for_several_thread_counts() {
        let mut report = Report {
            engines: vec![EngineReport {
                engine: "engine-full".into(),
                phases: vec![
                    phase("load", 1, 5.0),
                    phase("t1", 1, 10.0),
                    phase("t10", 10, 80.0),
                ],
                ..EngineReport::default()
            }],
            ..Report::default()
        };
        let mut out = String::new();
        scaling_section(&mut out, &report);
        assert!(out.contains("Throughput by thread count"), "{out}");
        assert!(out.contains("p99 latency by thread count"), "{out}");
        assert!(out.contains("engine-full read"), "{out}");
        report.engines[0].phases.truncate(2);
        let mut single = String::new();
        scaling_section(&mut single, &report);
        assert!(single.is_empty(), "{single}");
    }
}
