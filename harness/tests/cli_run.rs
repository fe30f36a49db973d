//! The `harness` binary end to end: list, bad input, small runs on model and null.

mod common;
use common::harness;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scenarios")
}

fn scenario_names(dir: &Path, root: &Path, names: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            scenario_names(&path, root, names)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            let rel = path.strip_prefix(root)?.with_extension("");
            names.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Flags that shrink smoke to well under a second.
const SMALL: &[&str] = &[
    "--set",
    "workload.record_count=2000",
    "--set",
    "run.ops=5000",
    "--no-progress",
];

#[test]
fn list_shows_every_scenario_with_its_description() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = harness(&["list"], tmp.path())?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut names = Vec::new();
    scenario_names(&scenarios_dir(), &scenarios_dir(), &mut names)?;
    for required in ["smoke", "ycsb/a", "ycsb/f", "bulk/load-1m", "scale/1b"] {
        assert!(
            names.iter().any(|n| n == required),
            "scenario file {required} missing"
        );
    }
    for name in &names {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()));
        let line = line.with_context(|| format!("`{name}` not listed in:\n{stdout}"))?;
        assert!(
            line.split_whitespace().count() > 2,
            "no description for {name}: {line}"
        );
    }
    Ok(())
}

#[test]
fn bad_scenario_file_exits_2_and_names_the_key() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let smoke = std::fs::read_to_string(scenarios_dir().join("smoke.toml"))?;
    let cases = [
        (
            "typo.toml",
            smoke.replace("threads = 2", "thrads = 2"),
            "thrads",
        ),
        (
            "type.toml",
            smoke.replace("threads = 2", "threads = \"two\""),
            "threads",
        ),
        (
            "nested.toml",
            smoke.replace("batch = 1000", "batch = 1000\nbatchez = 3"),
            "batchez",
        ),
    ];
    for (file, body, key) in cases {
        let path = tmp.path().join(file);
        std::fs::write(&path, body)?;
        let out = harness(
            &["run", path.to_str().context("path")?, "--engine", "null"],
            tmp.path(),
        )?;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains(key),
            "{file}: error does not name `{key}`: {stderr}"
        );
        assert!(
            stderr.contains(file),
            "{file}: error does not name the file: {stderr}"
        );
    }
    Ok(())
}

#[test]
fn bad_overrides_and_names_exit_2() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cases: [(&[&str], &str); 4] = [
        (&["run", "smoke", "--set", "run.opps=5"], "opps"),
        (&["run", "smoke", "--set", "run.ops=\"many\""], "ops"),
        (&["run", "smoke", "--engine", "mysql"], "mysql"),
        (&["run", "no-such-scenario"], "no-such-scenario"),
    ];
    for (args, needle) in cases {
        let out = harness(args, tmp.path())?;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: error does not name `{needle}`: {stderr}"
        );
    }
    let out = harness(&["run"], tmp.path())?;
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing argument is a usage error"
    );
    Ok(())
}

#[test]
fn help_works_everywhere() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["list", "--help"],
        &["keys", "--help"],
        &["verify", "--help"],
    ] {
        let out = harness(args, tmp.path())?;
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
    Ok(())
}

#[test]
fn smoke_on_model_passes_and_writes_a_report() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out_dir = tmp.path().join("out");
    let mut args = vec!["run", "smoke", "--engine", "model", "--seed", "7", "--out"];
    args.push(out_dir.to_str().context("path")?);
    args.extend_from_slice(SMALL);
    let out = harness(&args, tmp.path())?;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("seed 7"), "seed not printed: {stdout}");
    let json = std::fs::read_to_string(out_dir.join("report.json"))?;
    let report = harness::report::from_json_str(&json)?;
    assert_eq!(report.seed, 7);
    assert_eq!(report.engine, "model");
    let run = report
        .phases
        .iter()
        .find(|p| p.name == "run")
        .context("no run phase")?;
    assert_eq!(run.ops, 5000);
    assert!(report
        .checks
        .iter()
        .any(|c| c.name == "read_verification" && c.passed));
    assert!(out_dir.join("report.html").is_file());
    assert!(out_dir.join("run.read.hgrm").is_file());
    assert!(!out_dir.join("data").exists(), "data directory left behind");
    Ok(())
}

#[test]
fn null_engine_runs_and_default_out_dir_is_under_reports() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut args = vec!["run", "smoke", "--engine", "null"];
    args.extend_from_slice(SMALL);
    let out = harness(&args, tmp.path())?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let runs = tmp.path().join("reports").join("runs");
    let dirs: Vec<_> = std::fs::read_dir(&runs)?.collect::<Result<_, _>>()?;
    assert_eq!(dirs.len(), 1);
    let name = dirs[0].file_name().to_string_lossy().into_owned();
    assert!(name.starts_with("smoke-"), "{name}");
    assert!(dirs[0].path().join("report.json").is_file());
    Ok(())
}

#[test]
fn engine_all_interleaves_rounds_and_reports_ratios() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out_dir = tmp.path().join("all");
    let mut args = vec![
        "run",
        "smoke",
        "--engine",
        "all",
        "--set",
        "engines=[\"model\", \"sqlite-off\"]",
    ];
    args.extend_from_slice(&["--set", "rounds=2", "--set", "fsync_probe=true", "--out"]);
    args.push(out_dir.to_str().context("path")?);
    args.extend_from_slice(SMALL);
    let out = harness(&args, tmp.path())?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report =
        harness::report::from_json_str(&std::fs::read_to_string(out_dir.join("report.json"))?)?;
    assert_eq!(report.engine, "all");
    assert_eq!(report.engines.len(), 2);
    assert!(report
        .engines
        .iter()
        .all(|e| e.rounds == 2 && e.per_round.len() == 2));
    assert_eq!(report.fsync_probe.len(), 2);
    assert!(report
        .ratios
        .iter()
        .any(|r| r.ours == "model" && r.peer == "sqlite-off"));
    Ok(())
}
