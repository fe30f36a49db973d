//! The cost of a run: each engine's load (rate, bytes written per byte of user data, memory,
//! file size) and charts of load rate against keys loaded, resident memory and file size
//! over time. Drawn when the report has resource samples.

use std::fmt::Write as _;

use super::html::escape;
use super::svg::{self, color, format_count, format_seconds, Axis, LineChart, Series};
use super::table::{format_rate, group_thousands};
use super::Report;

/// Bytes in the unit that reads best: "812 MiB", "1.23 GiB".
pub(crate) fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

fn load_table(out: &mut String, report: &Report) {
    if report.loads.is_empty() {
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table><tr><th>engine</th><th>keys loaded</th><th>load keys/s</th>\
         <th>user data</th><th>written (write calls)</th><th>write amplification</th>\
         <th title=\"bytes written to the data's block device during the load, by every process\">written to the device</th><th>max RSS</th><th>files at the end</th></tr>",
    );
    for l in &report.loads {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&l.engine),
            group_thousands(&l.keys.to_string()),
            format_rate(l.keys_per_s),
            format_bytes(l.user_bytes as f64),
            format_bytes(l.wchar_bytes as f64),
            l.write_amplification,
            format_bytes(l.device_write_bytes as f64),
            format_bytes(l.rss_bytes_max as f64),
            format_bytes(l.disk_bytes_end as f64),
        );
    }
    out.push_str("</table></div>");
}

/// Load throughput against the keys loaded so far (single-engine runs' timeline).
fn load_rate_chart(out: &mut String, report: &Report) {
    let mut loaded = 0u64;
    let points: Vec<(f64, f64)> = report
        .timeline
        .iter()
        .filter(|p| p.phase == "load")
        .map(|p| {
            loaded += p.ops;
            (loaded as f64, p.throughput_ops_s)
        })
        .collect();
    if points.len() < 2 {
        return;
    }
    let rate_max = points.iter().map(|(_, y)| *y).fold(0.0, f64::max);
    let chart = LineChart {
        title: "Load rate by keys loaded".to_string(),
        x: Axis::linear("keys loaded", 0.0, loaded as f64, format_count),
        y: Axis::linear("keys/s (one-second intervals)", 0.0, rate_max, format_count),
        series: vec![Series {
            name: "load".to_string(),
            color: color(0),
            dashed: false,
            markers: false,
            points,
        }],
        bands: Vec::new(),
    };
    out.push_str(&chart.render());
}

fn resource_chart(
    out: &mut String,
    report: &Report,
    title: &str,
    pick: fn(&super::ResourcePoint) -> u64,
) {
    let mut engines: Vec<&str> = Vec::new();
    for p in &report.resources {
        if !engines.contains(&p.engine.as_str()) {
            engines.push(&p.engine);
        }
    }
    let series: Vec<Series> = engines
        .iter()
        .enumerate()
        .map(|(i, e)| Series {
            name: (*e).to_string(),
            color: color(i),
            dashed: false,
            markers: false,
            points: report
                .resources
                .iter()
                .filter(|p| p.engine == *e)
                .map(|p| (p.t_s, pick(p) as f64 / (1u64 << 20) as f64))
                .collect(),
        })
        .take(svg::SERIES_MAX)
        .collect();
    let t_max = report.resources.iter().map(|p| p.t_s).fold(0.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max);
    if t_max <= 0.0 || y_max <= 0.0 {
        return;
    }
    let chart = LineChart {
        title: title.to_string(),
        x: Axis::linear(
            "time since the start of the run",
            0.0,
            t_max,
            format_seconds,
        ),
        y: Axis::linear("MiB", 0.0, y_max, format_count),
        series,
        bands: Vec::new(),
    };
    out.push_str(&chart.render());
}

/// The section, or nothing when the report has no resource samples.
pub(crate) fn cost_section(out: &mut String, report: &Report) {
    if report.resources.is_empty() && report.loads.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>Load and resources</h2><p class=\"note\">Write amplification: bytes \
         passed to write calls during the load per byte of key and value loaded. Memory is \
         the harness process's resident set (the engine runs in it); files are the engine's \
         allocated blocks.</p>",
    );
    load_table(out, report);
    load_rate_chart(out, report);
    resource_chart(out, report, "Resident memory (MiB)", |p| p.rss_bytes);
    resource_chart(out, report, "Engine files on disk (MiB)", |p| p.disk_bytes);
    resource_chart(out, report, "Write-ahead log files (MiB)", |p| p.wal_bytes);
    out.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_their_unit() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(1536.0), "1.50 KiB");
        assert_eq!(format_bytes(49.0 * 1024.0 * 1024.0 * 1024.0), "49.00 GiB");
    }
}
