//! The trend checks, judged on everything the soak has seen so far at the end of each
//! slice: resident-memory slope within episodes, file growth once settled, p99 drift from
//! the first bucket to the last. A trend with too little data is pending, not passed.

use super::stats::Bucket;
use super::stats::{quantile_us, slope, Sample};
use super::{names, CheckState, SoakState};

/// Samples an episode needs after its warm-up for its memory slope to count.
const SLOPE_SAMPLES_MIN: usize = 5;
/// An episode's first part, skipped for the memory slope: the cache fills and the allocator
/// settles there (at least 10 s, or this fraction of the episode).
const WARMUP_FRACTION: f64 = 0.25;
const WARMUP_S_MIN: f64 = 10.0;
/// The soak's first part, skipped for the file slope: the first checkpoints and free-list
/// reuse settle there.
const FILE_SETTLE_FRACTION: f64 = 0.25;
/// A bucket counts for the drift when it holds at least this fraction of its span in work.
const BUCKET_FULL_FRACTION: f64 = 0.5;
const MIB: f64 = 1_048_576.0;
/// Span of post-warm-up samples an episode needs for its memory slope to count, seconds.
pub const RSS_SPAN_S_MIN: f64 = 600.0;
/// Span of settled samples the file slope needs, seconds.
pub const FILE_SPAN_S_MIN: f64 = 1800.0;

/// The resident-memory slope in MiB per hour: per episode, the least-squares slope of the
/// samples past its warm-up; over episodes, their mean weighted by the span each covers.
/// An episode counts once it has [`RSS_SPAN_S_MIN`] of samples past its warm-up: over a
/// shorter span, a few MiB of allocator noise reads as hundreds of MiB per hour. (The page
/// cache stays in: it fills within the warm-up, and a cache past its bound is a leak too.)
#[must_use]
pub fn rss_slope_mib_h(samples: &[Sample]) -> Option<f64> {
    let mut episodes: Vec<u64> = samples.iter().map(|s| s.episode).collect();
    episodes.dedup();
    let (mut weighted, mut weight) = (0.0, 0.0);
    for e in episodes {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.episode == e).collect();
        let span = of.last().map_or(0.0, |s| s.child_t_s);
        let warmup = (span * WARMUP_FRACTION).max(WARMUP_S_MIN);
        let points: Vec<(f64, f64)> = of
            .iter()
            .filter(|s| s.child_t_s >= warmup)
            .map(|s| (s.child_t_s / 3600.0, s.rss_bytes as f64 / MIB))
            .collect();
        let covered = points.last().map_or(0.0, |p| p.0) - points.first().map_or(0.0, |p| p.0);
        if covered * 3600.0 < RSS_SPAN_S_MIN {
            continue;
        }
        if let Some(s) = slope(&points, SLOPE_SAMPLES_MIN) {
            weighted += s * covered;
            weight += covered;
        }
    }
    (weight > 0.0).then(|| weighted / weight)
}

/// The engine file's growth in MiB per hour over the samples past the soak's first part.
#[must_use]
pub fn file_slope_mib_h(samples: &[Sample]) -> Option<f64> {
    let end = samples.last()?.t_s;
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.t_s >= end * FILE_SETTLE_FRACTION)
        .map(|s| (s.t_s / 3600.0, s.file_bytes as f64 / MIB))
        .collect();
    let covered = points.last().map_or(0.0, |p| p.0) - points.first().map_or(0.0, |p| p.0);
    if covered * 3600.0 < FILE_SPAN_S_MIN {
        return None;
    }
    slope(&points, SLOPE_SAMPLES_MIN)
}

fn set(soak: &mut SoakState, name: &str, verdict: Result<String, String>) {
    soak.checks.retain(|(n, _)| n != name);
    let state = match verdict {
        Ok(note) => CheckState {
            checked: 1,
            note,
            ..CheckState::default()
        },
        Err(detail) => CheckState {
            checked: 1,
            failed: 1,
            details: vec![detail],
            ..CheckState::default()
        },
    };
    soak.checks.push((name.to_string(), state));
}

fn pending(soak: &mut SoakState, name: &str, why: &str) {
    soak.checks.retain(|(n, _)| n != name);
    let state = CheckState {
        pending: Some(why.to_string()),
        ..CheckState::default()
    };
    soak.checks.push((name.to_string(), state));
}

/// The shortest crash episode whose memory slope counts: [`RSS_SPAN_S_MIN`] past a warm-up
/// of a quarter of the episode is 800 s; 40 s more leaves room for the first and last tick.
pub const RSS_EPISODE_S_MIN: u64 = 840;
/// The shortest soak whose file slope can be judged: [`FILE_SPAN_S_MIN`] past the first
/// quarter is 2,400 s, plus a minute for the episodes' verification gaps.
pub const FILE_SOAK_S_MIN: u64 = 2_460;
/// Buckets a soak must span for the p99 drift: two must be full (half their span in
/// work), and episode starts and verifications take time from each.
pub const DRIFT_BUCKETS_MIN: u64 = 3;

/// The trends a soak of `total_s` seconds, with episodes of at least `episode_min_s` and
/// buckets of `bucket_s`, could never judge, each with why.
#[must_use]
pub fn unjudgeable(total_s: u64, episode_min_s: u64, bucket_s: u64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if episode_min_s < RSS_EPISODE_S_MIN || total_s < RSS_EPISODE_S_MIN {
        out.push((
            names::RSS_SLOPE,
            format!(
                "it needs crash episodes (--episode-min, now {episode_min_s} s) and a soak \
                 (--total, now {total_s} s) of at least {RSS_EPISODE_S_MIN} s"
            ),
        ));
    }
    if total_s < FILE_SOAK_S_MIN {
        out.push((
            names::FILE_SLOPE,
            format!("it needs a soak (--total, now {total_s} s) of at least {FILE_SOAK_S_MIN} s"),
        ));
    }
    if total_s < DRIFT_BUCKETS_MIN * bucket_s {
        out.push((
            names::P99_DRIFT,
            format!(
                "it needs a soak (--total, now {total_s} s) of at least {DRIFT_BUCKETS_MIN} \
                 buckets of --bucket {bucket_s} s"
            ),
        ));
    }
    out
}

/// Once the soak has run its planned length, a trend still pending fails: the soak was
/// meant to judge it and could not.
pub fn fail_pending_at_end(soak: &mut SoakState) {
    if soak.config.total_s == 0 || soak.elapsed_s < soak.config.total_s as f64 {
        return;
    }
    let total_s = soak.config.total_s;
    for (name, c) in &mut soak.checks {
        if let Some(why) = c.pending.take() {
            c.checked += 1;
            c.failed += 1;
            c.details.push(format!(
                "{name} could not be judged over the soak's planned {total_s} s: {why}"
            ));
        }
    }
}

/// Judges the trend checks on the soak so far (replacing any earlier slice's verdicts); a
/// trend switched off is left as registered (not judged).
pub fn judge(soak: &mut SoakState, buckets: &[Bucket]) {
    let c = soak.config.clone();
    let off = |name: &str| c.trends_off.iter().any(|t| t == name);
    if !off(names::RSS_SLOPE) {
        match rss_slope_mib_h(&soak.samples) {
            Some(s) if s <= c.rss_slope_mib_h_max => set(
                soak,
                names::RSS_SLOPE,
                Ok(format!(
                    "{s:+.2} MiB/h (bound {:.0})",
                    c.rss_slope_mib_h_max
                )),
            ),
            Some(s) => set(
                soak,
                names::RSS_SLOPE,
                Err(format!(
                    "resident memory grew {s:+.2} MiB/h within episodes (bound {:.0})",
                    c.rss_slope_mib_h_max
                )),
            ),
            None => pending(
                soak,
                names::RSS_SLOPE,
                "no episode has 10 minutes of samples past its warm-up yet",
            ),
        }
    }
    if !off(names::FILE_SLOPE) {
        match file_slope_mib_h(&soak.samples) {
            Some(s) if s <= c.file_slope_mib_h_max => set(
                soak,
                names::FILE_SLOPE,
                Ok(format!(
                    "{s:+.2} MiB/h (bound {:.0})",
                    c.file_slope_mib_h_max
                )),
            ),
            Some(s) => set(
                soak,
                names::FILE_SLOPE,
                Err(format!(
                    "the engine file grew {s:+.2} MiB/h with a steady key count (bound {:.0})",
                    c.file_slope_mib_h_max
                )),
            ),
            None => pending(
                soak,
                names::FILE_SLOPE,
                "less than 30 minutes of samples past the soak's first quarter",
            ),
        }
    }
    if !off(names::P99_DRIFT) {
        judge_drift(soak, buckets);
    }
}

/// The p99 of all operations in the last full bucket against the first.
fn judge_drift(soak: &mut SoakState, buckets: &[Bucket]) {
    let c = soak.config.clone();
    let full: Vec<(u64, f64)> = buckets
        .iter()
        .filter(|b| b.work_s >= c.bucket_s as f64 * BUCKET_FULL_FRACTION)
        .map(|b| (b.index, quantile_us(&b.all(), 0.99)))
        .collect();
    let (Some(first), Some(last)) = (
        full.iter().min_by_key(|b| b.0),
        full.iter().max_by_key(|b| b.0),
    ) else {
        return pending(soak, names::P99_DRIFT, "no full bucket yet");
    };
    if first.0 == last.0 {
        return pending(
            soak,
            names::P99_DRIFT,
            "one full bucket so far; the drift needs two",
        );
    }
    let ratio = last.1 / first.1.max(1e-3);
    let text = format!(
        "p99 {:.0} us in bucket {} against {:.0} us in bucket {}: x{ratio:.2} (bound x{:.1})",
        last.1, last.0, first.1, first.0, c.p99_drift_max
    );
    set(
        soak,
        names::P99_DRIFT,
        if ratio <= c.p99_drift_max {
            Ok(text)
        } else {
            Err(text)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(episode: u64, child_t_s: f64, rss_mib: f64, file_mib: f64) -> Sample {
        Sample {
            t_s: episode as f64 * 1000.0 + child_t_s,
            episode,
            child_t_s,
            ops_per_s: 1.0,
            p50_us: 1.0,
            p99_us: 1.0,
            max_us: 1.0,
            rss_bytes: (rss_mib * MIB) as u64,
            cache_bytes: 0,
            file_bytes: (file_mib * MIB) as u64,
            wal_bytes: 0,
            fsyncs_per_s: None,
        }
    }

    #[test]
    fn a_leak_shows_as_a_slope_and_a_flat_line_does_not() -> Result<(), String> {
        // 1 MiB a minute is 60 MiB/h; each episode restarts low, as a new process does.
        let leaking: Vec<Sample> = (0..2)
            .flat_map(|e| {
                (0..60).map(move |m| sample(e, f64::from(m) * 60.0, 100.0 + f64::from(m), 50.0))
            })
            .collect();
        let s = rss_slope_mib_h(&leaking).ok_or("no slope")?;
        assert!((s - 60.0).abs() < 0.5, "{s}");
        let flat: Vec<Sample> = (0..60)
            .map(|m| sample(0, f64::from(m) * 60.0, 100.0, 50.0))
            .collect();
        assert!(rss_slope_mib_h(&flat).ok_or("no slope")?.abs() < 1e-9);
        assert!(file_slope_mib_h(&flat).ok_or("no slope")?.abs() < 1e-9);
        assert_eq!(
            rss_slope_mib_h(&flat[..12]),
            None,
            "a short span must not judge"
        );
        assert_eq!(
            file_slope_mib_h(&flat[..12]),
            None,
            "a short span must not judge"
        );
        Ok(())
    }

    fn state(samples: Vec<Sample>) -> SoakState {
        SoakState {
            format: 1,
            config: super::super::SoakConfig {
                engine: "engine-full".into(),
                seed: 1,
                keys: 100,
                threads: 1,
                cache_bytes: 1 << 20,
                episode_min_s: 1,
                episode_max_s: 1,
                tick_ms: 1000,
                bucket_s: 3600,
                rss_slope_mib_h_max: 64.0,
                file_slope_mib_h_max: 64.0,
                p99_drift_max: 3.0,
                stall_ms_max: 10_000,
                rss_over_cache_mib_max: 512,
                total_s: 0,
                trends_off: Vec::new(),
            },
            dir: std::path::PathBuf::new(),
            rng_state: 0,
            episodes_next: 0,
            elapsed_s: 0.0,
            samples,
            episodes: Vec::new(),
            buckets: Vec::new(),
            checks: Vec::new(),
            slices: Vec::new(),
            keys_loaded: 0,
        }
    }

    fn bucket(index: u64, latency_ns: u64) -> Result<Bucket, String> {
        let mut b = Bucket::new(index);
        b.work_s = 3600.0;
        for _ in 0..100 {
            b.hists[0]
                .record(latency_ns)
                .map_err(|e| format!("{e:?}"))?;
        }
        Ok(b)
    }

    /// The verdicts: (name, failed, pending).
    fn verdicts(s: &SoakState) -> Vec<(String, bool, bool)> {
        s.checks
            .iter()
            .map(|(n, c)| (n.clone(), c.failed > 0, c.pending.is_some()))
            .collect()
    }

    fn failing(s: &SoakState) -> Vec<String> {
        verdicts(s)
            .into_iter()
            .filter(|v| v.1)
            .map(|v| v.0)
            .collect()
    }

    #[test]
    fn each_trend_check_fails_alone() -> Result<(), String> {
        let steady: Vec<Sample> = (0..120)
            .map(|m| sample(0, f64::from(m) * 60.0, 100.0, 50.0))
            .collect();
        let flat = [bucket(0, 1_000_000)?, bucket(1, 1_100_000)?];
        let mut s = state(steady.clone());
        judge(&mut s, &flat);
        assert!(
            failing(&s).is_empty(),
            "a steady soak passes: {:?}",
            verdicts(&s)
        );
        assert!(
            verdicts(&s).iter().all(|v| !v.2),
            "nothing pending: {:?}",
            verdicts(&s)
        );

        let leaking: Vec<Sample> = (0..120)
            .map(|m| sample(0, f64::from(m) * 60.0, 100.0 + 2.0 * f64::from(m), 50.0))
            .collect();
        let mut s = state(leaking);
        judge(&mut s, &flat);
        assert_eq!(failing(&s), vec![names::RSS_SLOPE.to_string()]);

        let growing: Vec<Sample> = (0..120)
            .map(|m| sample(0, f64::from(m) * 60.0, 100.0, 50.0 + 2.0 * f64::from(m)))
            .collect();
        let mut s = state(growing);
        judge(&mut s, &flat);
        assert_eq!(failing(&s), vec![names::FILE_SLOPE.to_string()]);

        let mut s = state(steady);
        judge(&mut s, &[bucket(0, 1_000_000)?, bucket(1, 4_000_000)?]);
        assert_eq!(failing(&s), vec![names::P99_DRIFT.to_string()]);
        Ok(())
    }

    #[test]
    fn too_little_data_is_pending_not_passed() {
        let short: Vec<Sample> = (0..5)
            .map(|m| sample(0, f64::from(m) * 60.0, 100.0, 50.0))
            .collect();
        let mut s = state(short);
        judge(&mut s, &[]);
        let v = verdicts(&s);
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(
            v.iter().all(|(_, failed, pending)| !failed && *pending),
            "{v:?}"
        );
    }

    /// A soak too short for a trend is refused up front (see `config_of`); one long enough
    /// for all three is not.
    #[test]
    fn short_soaks_cannot_judge_trends() {
        let names_of =
            |v: Vec<(&'static str, String)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names_of(unjudgeable(120, 20, 30)),
            [names::RSS_SLOPE, names::FILE_SLOPE]
        );
        assert_eq!(
            names_of(unjudgeable(120, 20, 60)),
            [names::RSS_SLOPE, names::FILE_SLOPE, names::P99_DRIFT]
        );
        assert!(unjudgeable(24 * 3600, 900, 3600).is_empty());
    }

    /// A trend still pending when the soak has run its planned length fails.
    #[test]
    fn a_trend_pending_at_the_planned_end_fails() {
        let mut s = state(Vec::new());
        judge(&mut s, &[]);
        assert!(
            failing(&s).is_empty(),
            "pending mid-soak: {:?}",
            verdicts(&s)
        );
        s.config.total_s = 100;
        s.elapsed_s = 100.0;
        fail_pending_at_end(&mut s);
        assert_eq!(
            failing(&s),
            [names::RSS_SLOPE, names::FILE_SLOPE, names::P99_DRIFT]
        );
    }
}
