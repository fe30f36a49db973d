//! One crash episode: start the child, take its tick lines until the episode's end (or a
//! finding, or silence), kill it with SIGKILL, then reopen and verify every key.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::names;
use super::stats::{decode_histogram, new_histogram, quantile_us, Sample, Tick, OP_KINDS};
use super::{EpisodeRecord, Soak};
use crate::adapter::{open_engine, EngineOptions};
use crate::chaos::records::record_key as kv_key;
use crate::gen::verify_value;
use crate::oracle::CheckMode;

/// Lines of the child kept for the record when it ends by itself.
const TAIL_LINES_MAX: usize = 5;

fn spawn(soak: &Soak) -> Result<Child> {
    let c = &soak.state.config;
    Command::new(&soak.exe)
        .args(["worker", "soak", "--engine", &c.engine])
        .arg("--dir")
        .arg(soak.dir.join("data"))
        .arg("--oracle")
        .arg(soak.dir.join("expected"))
        .args(["--seed", &c.seed.to_string()])
        .args(["--episode", &soak.state.episodes_next.to_string()])
        .args(["--keys", &c.keys.to_string()])
        .args(["--threads", &c.threads.to_string()])
        .args(["--cache-bytes", &c.cache_bytes.to_string()])
        .args(["--tick-ms", &c.tick_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} worker soak", soak.exe.display()))
}

/// Forwards the child's stdout lines to a channel (the parent waits with timeouts).
fn lines_of(child: &mut Child) -> Result<Receiver<String>> {
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// What the parent saw of the child's life.
#[derive(Default)]
struct Life {
    open_us: Option<u64>,
    ops: u64,
    last_fsyncs: Option<u64>,
    /// The child's own last words when it ended by itself.
    said: Vec<String>,
    silent: bool,
}

/// Runs the episode; `base_s` and `slice_start` place it in soak time.
///
/// # Errors
/// A child that cannot be started or waited for, an oracle that cannot be read.
pub(super) fn run(
    soak: &mut Soak,
    base_s: f64,
    slice_start: Instant,
    length: Duration,
) -> Result<EpisodeRecord> {
    let start_s = base_s + slice_start.elapsed().as_secs_f64();
    let mut child = spawn(soak)?;
    let rx = lines_of(&mut child)?;
    let started = Instant::now();
    let life = watch(soak, &rx, base_s, slice_start, started + length);
    let length_s = started.elapsed().as_secs_f64();
    let pid = Pid::from_raw(i32::try_from(child.id()).context("pid")?);
    // ESRCH (it already ended) is fine: its exit status tells why.
    let _ = kill(pid, Signal::SIGKILL);
    let status = child.wait()?;
    let end = judge_end(soak, &mut child, &life, status.code());
    let failures_before = soak.failures();
    let mut record = verify(soak)?;
    record.index = soak.state.episodes_next;
    record.start_s = start_s;
    record.length_s = length_s;
    record.ops = life.ops;
    record.child_open_us = life.open_us;
    record.end = end;
    record.passed = soak.failures() == failures_before && record.end == "killed";
    soak.state.episodes_next += 1;
    Ok(record)
}

/// Takes tick lines until `deadline`, a finding, the child's end, or silence past the
/// liveness bound.
fn watch(
    soak: &mut Soak,
    rx: &Receiver<String>,
    base_s: f64,
    slice_start: Instant,
    deadline: Instant,
) -> Life {
    let c = &soak.state.config;
    let silence_max = Duration::from_millis(c.stall_ms_max.saturating_add(2 * c.tick_ms));
    let mut life = Life::default();
    let mut heard = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return life;
        }
        match rx.recv_timeout(
            deadline
                .saturating_duration_since(now)
                .min(Duration::from_secs(1)),
        ) {
            Ok(line) => {
                heard = Instant::now();
                hear(
                    soak,
                    &mut life,
                    &line,
                    base_s + slice_start.elapsed().as_secs_f64(),
                );
            }
            Err(RecvTimeoutError::Timeout) if heard.elapsed() > silence_max => {
                life.silent = true;
                soak.fail(
                    names::LIVENESS,
                    format!(
                        "the child said nothing for {:.0} s (bound {:.0} s)",
                        heard.elapsed().as_secs_f64(),
                        silence_max.as_secs_f64()
                    ),
                );
                return life;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return life,
        }
    }
}

fn hear(soak: &mut Soak, life: &mut Life, line: &str, t_s: f64) {
    if let Some(us) = line.strip_prefix("opened ") {
        life.open_us = us.trim().parse().ok();
    } else if let Some(json) = line.strip_prefix("tick ") {
        match serde_json::from_str::<Tick>(json) {
            Ok(tick) => ingest(soak, life, &tick, t_s),
            Err(e) => soak.fail(
                names::OPERATIONS_SUCCEED,
                format!("unreadable tick line: {e}"),
            ),
        }
    } else if line != "opening" && life.said.len() < TAIL_LINES_MAX {
        life.said.push(line.to_string());
    }
}

/// One tick: a sample, the bucket's histograms, and the per-tick checks.
fn ingest(soak: &mut Soak, life: &mut Life, tick: &Tick, t_s: f64) {
    let mut all = new_histogram();
    let mut kinds = Vec::with_capacity(OP_KINDS.len());
    for text in &tick.hists {
        match decode_histogram(text) {
            Ok(h) => {
                let _ = all.add(&h);
                kinds.push(h);
            }
            Err(e) => soak.fail(names::OPERATIONS_SUCCEED, format!("tick histogram: {e}")),
        }
    }
    let dt_s = (tick.dt_ms as f64 / 1000.0).max(1e-3);
    life.ops += all.len();
    let fsyncs_per_s = match (tick.fsyncs, life.last_fsyncs) {
        (Some(now), Some(before)) => Some(now.saturating_sub(before) as f64 / dt_s),
        _ => None,
    };
    life.last_fsyncs = tick.fsyncs;
    let max_us = all.max() as f64 / 1000.0;
    let stall_us = soak.state.config.stall_ms_max as f64 * 1000.0;
    if max_us > stall_us {
        soak.fail(
            names::LIVENESS,
            format!(
                "an operation took {:.1} s at soak time {t_s:.0} s (bound {:.1} s)",
                max_us / 1e6,
                stall_us / 1e6
            ),
        );
    } else if tick.inflight_ms_max > soak.state.config.stall_ms_max {
        soak.fail(
            names::LIVENESS,
            format!(
                "an operation still running had taken {:.1} s at soak time {t_s:.0} s \
                 (bound {:.1} s)",
                tick.inflight_ms_max as f64 / 1e3,
                stall_us / 1e6
            ),
        );
    } else if !all.is_empty() {
        soak.pass(names::LIVENESS, 1);
    }
    let c = &soak.state.config;
    let rss_max = c.cache_bytes as u64 + (c.rss_over_cache_mib_max << 20);
    if tick.rss_bytes > rss_max {
        let (rss, max) = (tick.rss_bytes >> 20, rss_max >> 20);
        let at = format!("resident memory {rss} MiB at soak time {t_s:.0} s, bound {max} MiB");
        soak.fail(names::RSS_BOUND, at);
    } else {
        soak.pass(names::RSS_BOUND, 1);
    }
    soak.pass(names::VERIFIED_READS, tick.reads_checked);
    soak.pass(names::VERIFIED_SCANS, tick.scans_checked);
    soak.pass(names::OPERATIONS_SUCCEED, all.len());
    let bucket = soak.bucket(t_s);
    bucket.work_s += dt_s;
    for (to, from) in bucket.hists.iter_mut().zip(&kinds) {
        let _ = to.add(from);
    }
    soak.push_sample(Sample {
        t_s,
        episode: soak.state.episodes_next,
        child_t_s: tick.t_ms as f64 / 1000.0,
        ops_per_s: all.len() as f64 / dt_s,
        p50_us: quantile_us(&all, 0.50),
        p99_us: quantile_us(&all, 0.99),
        max_us,
        rss_bytes: tick.rss_bytes,
        cache_bytes: tick.cache_bytes.unwrap_or(0),
        file_bytes: tick.file_bytes,
        wal_bytes: tick.wal_bytes,
        fsyncs_per_s,
    });
}

/// How the child ended: "killed", or the failure it reported (recorded against its check).
fn judge_end(soak: &mut Soak, child: &mut Child, life: &Life, code: Option<i32>) -> String {
    let Some(code) = code else {
        return if life.silent {
            "killed after going silent".into()
        } else {
            "killed".into()
        };
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let said = life.said.join(" / ");
    let tail: Vec<&str> = err.lines().rev().take(TAIL_LINES_MAX).collect();
    let text = format!("exited with status {code}: {said} {}", tail.join(" / "));
    let check = match said.split_whitespace().next() {
        Some("violation") if said.contains("scan") => names::VERIFIED_SCANS,
        Some("violation") => names::VERIFIED_READS,
        _ => names::OPERATIONS_SUCCEED,
    };
    soak.fail(
        check,
        format!("episode {}: {text}", soak.state.episodes_next),
    );
    text
}

/// Reopens (timed), reads every key back and checks it against the expected state, then
/// runs the integrity check.
fn verify(soak: &mut Soak) -> Result<EpisodeRecord> {
    let c = soak.state.config.clone();
    let data = soak.dir.join("data");
    let wal_bytes = crate::resources::disk_bytes(&data).1;
    let options = EngineOptions {
        cache_bytes: c.cache_bytes,
        threads: 1,
        seed: Some(c.seed),
        ..EngineOptions::default()
    };
    let started = Instant::now();
    let engine = match open_engine(&c.engine, &data, &options) {
        Ok(e) => e,
        Err(e) => {
            soak.fail(
                names::DURABILITY,
                format!("episode {}: reopen failed: {e}", soak.state.episodes_next),
            );
            return Ok(EpisodeRecord {
                wal_bytes,
                ..EpisodeRecord::default()
            });
        }
    };
    let reopen = started.elapsed();
    let episode = soak.state.episodes_next;
    let versions = match read_back(engine.as_ref(), &c) {
        Ok(v) => v,
        Err(e) => {
            soak.fail(
                names::DURABILITY,
                format!("episode {episode}: reading back: {e}"),
            );
            Vec::new()
        }
    };
    // Through the adapter: an engine without an integrity check records none.
    let integrity = engine.check_integrity();
    if let Err(e) = engine.close() {
        soak.fail(names::DURABILITY, format!("episode {episode}: close: {e}"));
    }
    let mut readable = Vec::with_capacity(versions.len());
    for (key, v) in (0u64..).zip(versions) {
        match v {
            Ok(v) => readable.push((key, v)),
            Err(e) => soak.fail(
                names::DURABILITY,
                format!("episode {episode}: key {key}: {e}"),
            ),
        }
    }
    let keys_present = judge_versions(soak, &readable)?;
    match integrity {
        Some(Ok(())) => soak.pass(names::INTEGRITY, 1),
        Some(Err(e)) => soak.fail(names::INTEGRITY, format!("episode {episode}: {e}")),
        None => {}
    }
    Ok(EpisodeRecord {
        reopen_us: reopen.as_secs_f64() * 1e6,
        verify_us: started.elapsed().saturating_sub(reopen).as_secs_f64() * 1e6,
        wal_bytes,
        keys_present,
        ..EpisodeRecord::default()
    })
}

/// Every key's version by point reads (not a scan: a broken scan is the scan check's
/// finding, and must not fail durability too); per key, an error or a damaged value is
/// kept as its text.
fn read_back(
    engine: &dyn crate::adapter::Engine,
    c: &super::SoakConfig,
) -> Result<Vec<Result<Option<u64>, String>>, crate::adapter::AdapterError> {
    let mut session = engine.session()?;
    let mut buf = Vec::new();
    let mut versions = Vec::with_capacity(usize::try_from(c.keys).unwrap_or(0));
    for key in 0..c.keys {
        let v = match session.get(&kv_key(b'k', key), &mut buf) {
            Ok(true) => verify_value(key, c.seed, &buf)
                .map(Some)
                .map_err(|e| format!("damaged value: {e}")),
            Ok(false) => Ok(None),
            Err(e) => Err(format!("read failed: {e}")),
        };
        versions.push(v);
    }
    Ok(versions)
}

/// Checks each key's recovered version; keys left in flight take what recovery shows.
fn judge_versions(soak: &mut Soak, versions: &[(u64, Option<u64>)]) -> Result<u64> {
    let (mut held, mut present) = (0, 0);
    let episode = soak.state.episodes_next;
    for &(key, v) in versions {
        present += u64::from(v.is_some());
        match soak.oracle.check(key, v, CheckMode::Full) {
            Ok(()) => held += 1,
            Err(m) => soak.fail(
                names::DURABILITY,
                format!("episode {episode} (seed {}): {m}", soak.state.config.seed),
            ),
        }
        if soak.oracle.state(key).is_ok_and(|s| s.pending()) {
            soak.oracle.adopt(key, v)?;
        }
    }
    soak.pass(names::DURABILITY, held);
    Ok(present)
}
