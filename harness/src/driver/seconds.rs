//! The collector's open seconds: each worker thread sends one interval per second it was
//! busy; the collector merges the threads' intervals of a second and closes the second
//! (a timeline point and an interval-log entry) once no thread can send more for it.
//!
//! Why close them as the phase runs: a second's merged histogram is about 100 KB once it has
//! seen a slow operation, and holding every second to the end of an hour-long load took
//! about 650 MB (`scale/100m`, far past its memory bound).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::hlog::IntervalLog;
use super::recorder::Interval;
use crate::report::TimelinePoint;

/// Seconds held open for a slow thread. A thread's seconds only move forward, so a second
/// is complete once every live thread has sent a later one; a thread stalled longer than
/// this (a lock wait, a huge commit) would otherwise keep every second since open. Past
/// the bound the oldest second closes, and an interval arriving later for it joins the
/// oldest second still open (its operations are then charged a little late).
const SECONDS_OPEN_MAX: usize = 64;

struct OpenSecond {
    ops: u64,
    errors: u64,
    histogram: Histogram<u64>,
}

/// The seconds of one phase not yet closed, and the timeline of those closed.
pub struct Seconds {
    phase: String,
    open: BTreeMap<u64, OpenSecond>,
    /// Per thread, the latest second it sent; `None` once it is done.
    latest: Vec<Option<u64>>,
    /// Seconds below this are closed.
    closed_below: u64,
    timeline: Vec<TimelinePoint>,
}

impl Seconds {
    pub fn new(phase: &str, threads: usize) -> Seconds {
        Seconds {
            phase: phase.to_string(),
            open: BTreeMap::new(),
            latest: vec![Some(0); threads],
            closed_below: 0,
            timeline: Vec::new(),
        }
    }

    /// Merges one thread's interval into its second (or, if that second has closed, into
    /// the oldest open one).
    pub fn add(&mut self, iv: Interval) {
        if let Some(latest) = self.latest.get_mut(iv.thread).and_then(Option::as_mut) {
            debug_assert!(iv.second >= *latest, "a thread's seconds went back");
            *latest = (*latest).max(iv.second);
        }
        let second = iv.second.max(self.closed_below);
        match self.open.get_mut(&second) {
            Some(slot) => {
                // Same-unit, auto-resizing histograms: add cannot fail.
                let _ = slot.histogram.add(&iv.histogram);
                slot.ops += iv.ops;
                slot.errors += iv.errors;
            }
            None => {
                let slot = OpenSecond {
                    ops: iv.ops,
                    errors: iv.errors,
                    histogram: iv.histogram,
                };
                self.open.insert(second, slot);
            }
        }
    }

    /// Thread `thread` will send nothing more.
    pub fn done(&mut self, thread: usize) {
        if let Some(latest) = self.latest.get_mut(thread) {
            *latest = None;
        }
    }

    /// Closes every second no live thread can still send to, and the oldest ones past
    /// [`SECONDS_OPEN_MAX`]; `elapsed_s` is the time since the phase began.
    pub fn close_ready(&mut self, elapsed_s: f64, log: &mut IntervalLog<'_>) {
        let below = self.latest.iter().flatten().min().copied();
        let below = below.unwrap_or(u64::MAX);
        while let Some(&second) = self.open.keys().next() {
            if second >= below && self.open.len() <= SECONDS_OPEN_MAX {
                break;
            }
            if let Some(slot) = self.open.remove(&second) {
                self.close(second, slot, elapsed_s, log);
            }
        }
    }

    /// Closes every second (the phase is over; `phase_s` is its length).
    pub fn close_all(mut self, phase_s: f64, log: &mut IntervalLog<'_>) -> Vec<TimelinePoint> {
        while let Some((second, slot)) = self.open.pop_first() {
            self.close(second, slot, phase_s, log);
        }
        self.timeline
    }

    fn close(&mut self, second: u64, slot: OpenSecond, elapsed_s: f64, log: &mut IntervalLog<'_>) {
        debug_assert!(second >= self.closed_below);
        self.closed_below = second + 1;
        log.write(second, &slot.histogram);
        // The phase's last second may be partial: its rate is over the part it covered.
        let covered_s = (elapsed_s - second as f64).clamp(f64::EPSILON, 1.0);
        self.timeline.push(TimelinePoint {
            t_s: second as f64,
            phase: self.phase.clone(),
            ops: slot.ops,
            throughput_ops_s: slot.ops as f64 / covered_s,
            p50_us: slot.histogram.value_at_quantile(0.5) as f64 / 1000.0,
            p99_us: slot.histogram.value_at_quantile(0.99) as f64 / 1000.0,
            errors: slot.errors,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::recorder::new_histogram;
    use hdrhistogram::serialization::V2DeflateSerializer;
    use std::time::SystemTime;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn interval(
        thread: usize,
        second: u64,
        ops: u64,
    ) -> Result<Interval, Box<dyn std::error::Error>> {
        let mut histogram = new_histogram()?;
        histogram.record_n(1_000 * (second + 1), ops)?;
        Ok(Interval {
            thread,
            second,
            ops,
            errors: 0,
            histogram,
        })
    }

    #[test]
    fn a_second_closes_once_every_thread_has_moved_past_it() -> TestResult {
        let (mut out, mut ser) = (Vec::new(), V2DeflateSerializer::new());
        let mut log = IntervalLog::begin("run", SystemTime::now(), &mut out, &mut ser);
        let mut s = Seconds::new("run", 2);
        s.add(interval(0, 0, 10)?);
        s.add(interval(0, 1, 10)?);
        s.close_ready(1.5, &mut log);
        assert_eq!(s.timeline.len(), 0, "thread 1 may still send second 0");
        s.add(interval(1, 0, 5)?);
        s.add(interval(1, 2, 5)?);
        s.close_ready(2.5, &mut log);
        // Seconds 0 (both threads) closes; 1 waits for thread 0, which sent 1 last.
        assert_eq!(s.timeline.len(), 1);
        assert_eq!(s.timeline[0].ops, 15);
        s.done(0);
        s.close_ready(2.6, &mut log);
        assert_eq!(
            s.timeline.len(),
            2,
            "thread 0 is done: only thread 1's second 2 stays open"
        );
        let timeline = s.close_all(2.75, &mut log);
        assert!(log.finish());
        let ops: Vec<u64> = timeline.iter().map(|p| p.ops).collect();
        assert_eq!(ops, [15, 10, 5]);
        // The last second covered 0.75 s.
        assert!((timeline[2].throughput_ops_s - 5.0 / 0.75).abs() < 1e-9);
        assert!(!out.is_empty());
        Ok(())
    }

    #[test]
    fn a_silent_thread_holds_a_bounded_number_of_seconds() -> TestResult {
        let (mut out, mut ser) = (Vec::new(), V2DeflateSerializer::new());
        let mut log = IntervalLog::begin("run", SystemTime::now(), &mut out, &mut ser);
        let mut s = Seconds::new("run", 2);
        for second in 0..1000 {
            s.add(interval(0, second, 1)?);
            s.close_ready(second as f64 + 0.5, &mut log);
            assert!(
                s.open.len() <= SECONDS_OPEN_MAX,
                "{} seconds open",
                s.open.len()
            );
        }
        // Thread 1 wakes with an interval for a second long closed: it joins the oldest
        // open one, and no operation is lost.
        s.add(interval(1, 3, 7)?);
        let timeline = s.close_all(1000.0, &mut log);
        assert!(log.finish());
        assert_eq!(timeline.iter().map(|p| p.ops).sum::<u64>(), 1007);
        let seconds: Vec<f64> = timeline.iter().map(|p| p.t_s).collect();
        assert!(
            seconds.windows(2).all(|w| w[0] < w[1]),
            "seconds out of order"
        );
        Ok(())
    }
}
