//! `harness run --shard I/N` and `harness merge`: the split covers every cycle once, the merge
//! refuses shards that do not make one whole run, and merges histograms, counters and checks
//! exactly.

mod common;
use common::harness;

use anyhow::{ensure, Context as _, Result};
use hdrhistogram::Histogram;

use harness::report::{Check, CrashCycles, LatencySummary, Report};
use harness::shard::{encode_histogram, merge, share, split_faults, CheckCount, Shard, ShardInfo};

/// The split of `total` cycles over `count` shards tiles `0..total` in index order, each
/// cycle once, with shares that differ by at most one.
#[test]
fn shares_cover_every_cycle_exactly_once() -> Result<()> {
    for (total, count) in [
        (100, 4),
        (10_000, 100),
        (7, 7),
        (10, 3),
        (101, 4),
        (1, 1),
        (99_999, 10_000),
    ] {
        let mut seen = vec![0u32; total as usize];
        let (mut least, mut most) = (u64::MAX, 0);
        for index in 0..count {
            let (first, len) = share(total, Shard { index, count });
            for c in first..first + len {
                let slot = seen
                    .get_mut(c as usize)
                    .with_context(|| format!("{total}/{count}: cycle {c} past the end"))?;
                *slot += 1;
            }
            least = least.min(len);
            most = most.max(len);
        }
        ensure!(
            seen.iter().all(|&n| n == 1),
            "{total} cycles over {count} shards: not every cycle exactly once"
        );
        ensure!(most - least <= 1, "{total}/{count}: shares {least}..{most}");
    }
    Ok(())
}

/// `split_faults` cuts each section to the shard's share and refuses what it cannot split.
#[test]
fn split_faults_cuts_kill9_cycles_and_refuses_eio() -> Result<()> {
    let faults: harness::chaos::FaultsSection = toml::from_str(
        "[kill9]\ncycles = 10\ndelay_ms = { min = 1, max = 2 }\n[enospc]\nepisodes = 5\n",
    )?;
    let mut total = 0;
    for index in 0..3 {
        let (cut, sections) =
            split_faults(&faults, Shard { index, count: 3 }).map_err(anyhow::Error::msg)?;
        let k = cut.kill9.context("kill9 kept")?;
        total += k.cycles;
        ensure!(sections.len() == 2, "{sections:?}");
        ensure!(sections[0].share == k.cycles && sections[0].total == 10);
    }
    ensure!(total == 10, "shares add to {total}");
    let eio: harness::chaos::FaultsSection = toml::from_str("[eio]\nkinds = [\"sync_once\"]\n")?;
    let err = split_faults(&eio, Shard { index: 0, count: 2 });
    ensure!(err.as_ref().is_err_and(|e| e.contains("eio")), "{err:?}");
    Ok(())
}

/// A reopen histogram of `samples` (nanoseconds) as a shard report carries it.
fn summary(samples: &[u64]) -> Result<(LatencySummary, Histogram<u64>)> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
    for &s in samples {
        h.record(s)?;
    }
    let s = LatencySummary {
        histogram_b64: encode_histogram(&h),
        ..LatencySummary::from_histogram(&h, 0)
    };
    Ok((s, h))
}

/// Shard `index` of `count`: a reopen sample per cycle, one durability check.
fn shard_report(index: u64, count: u64, samples: &[u64], passed: bool) -> Result<Report> {
    let (reopen, _) = summary(samples)?;
    let failures = u64::from(!passed);
    Ok(Report {
        scenario: "crash/kill9-ycsb-a".into(),
        engine: "engine-full".into(),
        git_rev: "abc1234".into(),
        seed: harness::shard::derive_seed(42, index),
        checks: vec![Check {
            name: "durability".into(),
            passed,
            detail: if passed {
                "held".into()
            } else {
                format!("key 7 lost in shard {index}")
            },
        }],
        crash_cycles: Some(CrashCycles {
            count: samples.len() as u64,
            reopen: reopen.clone(),
            verify: reopen,
            cycles: Vec::new(),
        }),
        shard: Some(ShardInfo {
            index: Some(index),
            count,
            base_seed: 42,
            config_hash: "00c0ffee".into(),
            cycles: samples.len() as u64,
            cycles_total: 0,
            sections: Vec::new(),
            check_counts: vec![CheckCount {
                name: "durability".into(),
                observations: 100,
                failures,
            }],
        }),
        ..Report::default()
    })
}

fn labelled(reports: Vec<Report>) -> Vec<(String, Report)> {
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("dir{i}"), r))
        .collect()
}

fn four_shards() -> Result<Vec<Report>> {
    let samples: [&[u64]; 4] = [
        &[1_000, 2_000, 3_000],
        &[5_000_000, 7],
        &[400_000, 400_001, 12, 9_000_000_000],
        &[33],
    ];
    (0..4)
        .map(|i| shard_report(i, 4, samples[i as usize], true))
        .collect()
}

#[test]
fn merge_refuses_a_missing_shard() -> Result<()> {
    let mut shards = four_shards()?;
    shards.remove(2);
    let err = merge(&labelled(shards))
        .err()
        .context("merged without shard 2")?;
    ensure!(err.0.contains("missing: index 2"), "{err}");
    Ok(())
}

#[test]
fn merge_refuses_a_duplicate_shard() -> Result<()> {
    let mut shards = four_shards()?;
    shards.push(shards[1].clone());
    let err = merge(&labelled(shards))
        .err()
        .context("merged shard 1 twice")?;
    ensure!(err.0.contains("shard 1 given 2 times"), "{err}");
    Ok(())
}

/// Four shards of a 10-cycle kill9 section, each with its true share.
fn four_sectioned_shards() -> Result<Vec<Report>> {
    let mut shards = four_shards()?;
    for (i, r) in shards.iter_mut().enumerate() {
        let shard = harness::shard::Shard {
            index: i as u64,
            count: 4,
        };
        let (first, share) = harness::shard::share(10, shard);
        if let Some(s) = r.shard.as_mut() {
            s.cycles = share;
            s.sections = vec![harness::shard::SectionShare {
                unit: "faults.kill9.cycles".into(),
                first,
                share,
                total: 10,
            }];
        }
    }
    Ok(shards)
}

/// Shards that judged nothing merge into a report that fails, never one that exits 0.
#[test]
fn shards_with_no_checks_merge_into_a_failure() -> Result<()> {
    let mut shards = four_shards()?;
    for r in &mut shards {
        r.checks.clear();
        if let Some(s) = r.shard.as_mut() {
            s.check_counts.clear();
        }
    }
    let merged = merge(&labelled(shards))?;
    ensure!(
        merged.report.verdict() == harness::report::Verdict::Fail,
        "{:?}",
        merged.report.checks
    );
    Ok(())
}

/// A copy of shard 0 relabelled as shard 1 never ran as shard 1: its seed says so, and with
/// the seed forged too, its section offsets do.
#[test]
fn merge_refuses_a_shard_relabelled_as_another() -> Result<()> {
    let shards = four_sectioned_shards()?;
    merge(&labelled(shards.clone())).context("the true shards merge")?;
    let mut forged = shards.clone();
    forged[1] = shards[0].clone();
    if let Some(s) = forged[1].shard.as_mut() {
        s.index = Some(1);
    }
    let err = merge(&labelled(forged.clone()))
        .err()
        .context("merged a relabelled shard 0")?;
    ensure!(err.0.contains("is not shard 1's"), "{err}");
    forged[1].seed = harness::shard::derive_seed(42, 1);
    let err = merge(&labelled(forged))
        .err()
        .context("merged a relabelled shard 0 with its seed forged")?;
    ensure!(err.0.contains("faults.kill9.cycles 0..3"), "{err}");
    Ok(())
}

#[test]
fn merge_refuses_a_config_mismatch() -> Result<()> {
    let mut shards = four_shards()?;
    if let Some(s) = shards[3].shard.as_mut() {
        s.config_hash = "0badc0de".into();
    }
    let err = merge(&labelled(shards))
        .err()
        .context("merged across configs")?;
    ensure!(err.0.contains("config hash"), "{err}");
    Ok(())
}

/// The merged reopen histogram is the shards' added: its count is the sum of theirs and its
/// max the max of theirs (what percentile summaries alone could not give).
#[test]
fn merged_histogram_sums_counts_and_keeps_the_max() -> Result<()> {
    let shards = four_shards()?;
    let merged = merge(&labelled(shards.clone())).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cycles = merged.report.crash_cycles.context("crash cycles")?;
    let parts: Vec<&CrashCycles> = shards
        .iter()
        .filter_map(|r| r.crash_cycles.as_ref())
        .collect();
    let count: u64 = parts.iter().map(|c| c.reopen.count).sum();
    let max = parts.iter().map(|c| c.reopen.max_us).fold(0.0, f64::max);
    ensure!(
        cycles.reopen.count == count,
        "{} != {count}",
        cycles.reopen.count
    );
    ensure!(cycles.count == 10, "cycles {}", cycles.count);
    ensure!(
        cycles.reopen.max_us == max,
        "{} != {max}",
        cycles.reopen.max_us
    );
    let h = merged
        .histograms
        .get("crash_cycles.reopen")
        .context("merged histogram")?;
    ensure!(h.len() == count, "histogram holds {}", h.len());
    let text = cycles
        .reopen
        .histogram_b64
        .context("merged histogram kept")?;
    ensure!(harness::shard::decode_histogram(&text)?.len() == count);
    Ok(())
}

/// One shard's failed check fails the merged check, quoting it with its index, and the
/// observations of every shard add up.
#[test]
fn one_failed_shard_fails_the_merged_check() -> Result<()> {
    let mut shards = four_shards()?;
    shards[2] = shard_report(2, 4, &[10], false)?;
    let merged = merge(&labelled(shards)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let check = merged
        .report
        .checks
        .iter()
        .find(|c| c.name == "durability")
        .context("merged durability check")?;
    ensure!(!check.passed, "{check:?}");
    ensure!(
        check.detail.contains("shard 2: key 7 lost"),
        "{}",
        check.detail
    );
    ensure!(
        check.detail.contains("1 of 400 observations"),
        "{}",
        check.detail
    );
    ensure!(merged.report.verdict() == harness::report::Verdict::Fail);
    Ok(())
}

/// The command line: `--shard` on a benchmark, an index past the count, a missing
/// `JOB_COMPLETION_INDEX`, and `merge` of a missing shard all exit 2.
#[test]
fn bad_shards_exit_2() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    for args in [
        &["run", "smoke", "--shard", "0/2"][..],
        &["run", "crash/smoke", "--shard", "2/2"],
        &["run", "crash/smoke", "--shard", "0/0"],
        &["run", "faults/eio-fsync", "--shard", "0/2"],
    ] {
        let out = harness(args, tmp.path())?;
        ensure!(out.status.code() == Some(2), "{args:?}: {out:?}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "crash/smoke", "--shard", "env/2"])
        .env_remove("JOB_COMPLETION_INDEX")
        .current_dir(tmp.path())
        .output()?;
    ensure!(out.status.code() == Some(2), "{out:?}");
    let shards = four_shards()?;
    let mut dirs = Vec::new();
    for (i, r) in shards.iter().enumerate().skip(1) {
        let dir = tmp.path().join(format!("s{i}"));
        std::fs::create_dir_all(&dir)?;
        harness::report::write_json(r, &dir)?;
        dirs.push(dir.display().to_string());
    }
    let out_dir = tmp.path().join("merged").display().to_string();
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", &out_dir]);
    let out = harness(&args, tmp.path())?;
    ensure!(out.status.code() == Some(2), "{out:?}");
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("index 0"),
        "{out:?}"
    );
    Ok(())
}

/// Two real shards of the in-process ENOSPC scenario merge into the whole scenario's episode
/// count with every check passed (exit 0).
#[test]
fn real_shards_merge_into_the_whole_run() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut dirs = Vec::new();
    for i in 0..2 {
        let dir = tmp.path().join(format!("shard-{i}"));
        let d = dir.display().to_string();
        let shard = format!("{i}/2");
        let args = ["run", "faults/enospc", "--seed", "9", "--shard", &shard];
        let out = harness(
            &[&args[..], &["--no-progress", "--out", &d]].concat(),
            tmp.path(),
        )?;
        ensure!(out.status.code() == Some(0), "shard {i}: {out:?}");
        dirs.push(d);
    }
    let m = tmp.path().join("merged").display().to_string();
    let out = harness(&["merge", &dirs[0], &dirs[1], "--out", &m], tmp.path())?;
    ensure!(out.status.code() == Some(0), "{out:?}");
    let text = std::fs::read_to_string(tmp.path().join("merged").join("report.json"))?;
    let report = harness::report::from_json_str(&text)?;
    let info = report.shard.context("merged shard info")?;
    ensure!(info.index.is_none() && info.count == 2, "{info:?}");
    ensure!(info.cycles == 8 && info.cycles_total == 8, "{info:?}");
    ensure!(report.seed == 9, "base seed {}", report.seed);
    Ok(())
}
