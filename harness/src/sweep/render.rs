//! The sweep summary: a terminal table with each failure group, and sweep.html.

use std::fmt::Write as _;

use super::SweepReport;
use crate::report::html::escape;

/// Groups printed on the terminal; sweep.json and sweep.html list them all.
const GROUPS_PRINTED_MAX: usize = 30;

/// The terminal summary: a row per scenario, then each failure group with the command that
/// reproduces its first seed.
#[must_use]
pub fn summary_text(r: &SweepReport) -> String {
    let mut out = String::new();
    let width = (r.scenarios.iter())
        .map(|s| s.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        out,
        "{:width$}  {:>7}  {:>6}  {:>7}  {:>6}  {:>8}  {:>8}",
        "scenario", "seeds", "failed", "aborted", "groups", "runs/s", "wall s"
    );
    for s in &r.scenarios {
        let _ = writeln!(
            out,
            "{:width$}  {:>7}  {:>6}  {:>7}  {:>6}  {:>8.2}  {:>8.1}",
            s.scenario, s.seeds_run, s.failed, s.aborted, s.groups, s.runs_per_s, s.wall_s
        );
    }
    for g in r.groups.iter().take(GROUPS_PRINTED_MAX) {
        let _ = writeln!(
            out,
            "\n[{}x] {} {}: {}\n  first seed {}: {}\n  reproduce: {}",
            g.count, g.scenario, g.check, g.message, g.first_seed, g.example, g.reproduce
        );
    }
    if r.groups.len() > GROUPS_PRINTED_MAX {
        let more = r.groups.len() - GROUPS_PRINTED_MAX;
        let _ = writeln!(out, "\n... and {more} more groups in sweep.json");
    }
    let _ = writeln!(
        out,
        "\nseeds {}..={} ({} per scenario), verdict: {}",
        r.seed_first,
        r.seed_last,
        r.seed_last - r.seed_first + 1,
        r.verdict.to_uppercase()
    );
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1a202c}\
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #cbd5e0;padding:4px 8px;\
text-align:right}td:first-child,th:first-child{text-align:left}.fail{color:#c53030}\
.pass{color:#2f855a}code{font-size:12px;background:#edf2f7;padding:1px 4px}";

/// sweep.html: self-contained (inline CSS, no scripts, no external URLs).
#[must_use]
pub fn render_html(r: &SweepReport) -> String {
    let mut h = String::new();
    let verdict_class = if r.verdict == "pass" { "pass" } else { "fail" };
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sweep {}..={}</title>\
         <style>{STYLE}</style></head><body><h1>Seed sweep <span class=\"{verdict_class}\">{}</span></h1>\
         <p>seeds {}..={}, {} jobs, commit {}, started {}{}</p>",
        r.seed_first,
        r.seed_last,
        escape(&r.verdict.to_uppercase()),
        r.seed_first,
        r.seed_last,
        r.jobs,
        escape(&r.git_rev),
        escape(&r.started_at),
        if r.sets.is_empty() {
            String::new()
        } else {
            format!(", --set {}", escape(&r.sets.join(" ")))
        }
    );
    h.push_str("<table><tr><th>scenario</th><th>seeds run</th><th>failed</th><th>aborted</th><th>failure groups</th><th>runs/s</th><th>wall s</th></tr>");
    for s in &r.scenarios {
        let class = if s.failed + s.aborted > 0 {
            "fail"
        } else {
            "pass"
        };
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.1}</td></tr>",
            escape(&s.scenario), s.seeds_run, s.failed, s.aborted, s.groups, s.runs_per_s, s.wall_s
        );
    }
    h.push_str("</table>");
    if !r.groups.is_empty() {
        h.push_str("<h2>Failure groups</h2><table><tr><th>scenario</th><th>check</th><th>count</th><th>message</th><th>first seed</th><th>reproduce</th></tr>");
        for g in &r.groups {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}<br><small>{}</small></td><td>{}</td><td><code>{}</code></td></tr>",
                escape(&g.scenario), escape(&g.check), g.count, escape(&g.message),
                escape(&g.example), g.first_seed, escape(&g.reproduce)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}
