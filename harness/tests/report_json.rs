//! report.json: round trip, derived verdict, finite numbers.

use harness::report::{self, Check, Report, Verdict};

fn checked(report: &Report, passed: &[bool]) -> Report {
    let mut report = report.clone();
    report.checks = passed
        .iter()
        .enumerate()
        .map(|(i, passed)| Check {
            name: format!("check_{i}"),
            passed: *passed,
            detail: String::new(),
        })
        .collect();
    report
}

#[test]
fn json_round_trip_is_lossless() -> anyhow::Result<()> {
    let (report, _) = report::demo_report(42)?;
    let text = report::to_json_string(&report)?;
    let back = report::from_json_str(&text)?;
    assert_eq!(back, report);
    // Serializing again gives the same bytes: nothing is lost or reordered.
    assert_eq!(report::to_json_string(&back)?, text);
    Ok(())
}

#[test]
fn json_has_documented_top_level_fields() -> anyhow::Result<()> {
    let (report, _) = report::demo_report(7)?;
    let value: serde_json::Value = serde_json::from_str(&report::to_json_string(&report)?)?;
    for field in [
        "schema_version",
        "scenario",
        "engine",
        "seed",
        "git_rev",
        "started_at",
        "verdict",
        "config",
        "phases",
        "timeline",
        "errors",
        "checks",
        "engines",
        "resources",
        "loads",
        "ratios",
        "fsync_probe",
        "crash_cycles",
        "fault_schedule",
        "reproduce",
    ] {
        assert!(value.get(field).is_some(), "report.json lacks {field}");
    }
    let read = &value["phases"][1]["latency"]["read"];
    for field in [
        "count", "errors", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
    ] {
        assert!(read.get(field).is_some(), "latency summary lacks {field}");
    }
    Ok(())
}

#[test]
fn optional_sections_are_omitted_when_absent() -> anyhow::Result<()> {
    let report = Report::new("plain", "ours", 1, serde_json::json!({}));
    let value: serde_json::Value = serde_json::from_str(&report::to_json_string(&report)?)?;
    for field in [
        "engines",
        "ratios",
        "fsync_probe",
        "crash_cycles",
        "fault_schedule",
        "reproduce",
    ] {
        assert!(value.get(field).is_none(), "{field} should be omitted");
    }
    // No check: the report judged nothing, and that fails.
    assert_eq!(value["verdict"], "fail");
    assert_eq!(
        report::from_json_str(&report::to_json_string(&report)?)?,
        report
    );
    Ok(())
}

#[test]
fn verdict_fails_when_one_check_fails() -> anyhow::Result<()> {
    let (base, _) = report::demo_report(3)?;
    // No check at all is no pass: a report that judged nothing fails.
    assert_eq!(checked(&base, &[]).verdict(), Verdict::Fail);
    assert_eq!(checked(&base, &[true, true, true]).verdict(), Verdict::Pass);
    // Seeded failure: one failing check among passing ones must fail the run.
    let failing = checked(&base, &[true, false, true]);
    assert_eq!(failing.verdict(), Verdict::Fail);
    let value: serde_json::Value = serde_json::from_str(&report::to_json_string(&failing)?)?;
    assert_eq!(value["verdict"], "fail");
    Ok(())
}

#[test]
fn stored_verdict_cannot_disagree_with_checks() -> anyhow::Result<()> {
    let (base, _) = report::demo_report(5)?;
    let failing = checked(&base, &[false]);
    // Someone edits the file to claim a pass: loading recomputes it from the checks.
    let tampered =
        report::to_json_string(&failing)?.replace("\"verdict\": \"fail\"", "\"verdict\": \"pass\"");
    assert!(tampered.contains("\"verdict\": \"pass\""));
    assert_eq!(report::from_json_str(&tampered)?.verdict(), Verdict::Fail);
    Ok(())
}

#[test]
fn started_at_is_rfc3339_utc() {
    let report = Report::new("s", "ours", 9, serde_json::Value::Null);
    let t = report.started_at.as_bytes();
    assert_eq!(t.len(), 20, "{}", report.started_at);
    assert_eq!(
        (t[4], t[7], t[10], t[13], t[16], t[19]),
        (b'-', b'-', b'T', b':', b':', b'Z')
    );
    assert!(!report.git_rev.is_empty());
}
