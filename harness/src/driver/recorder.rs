//! Per-thread measurement: one HdrHistogram per operation kind (response time, and service time
//! in open loop), error counts by kind, and one-second intervals sent to the collector.
//!
//! Values are **nanoseconds** (3 significant digits, auto-resizing up to
//! [`super::LATENCY_NS_MAX`]). Nothing here allocates per operation: histograms grow only when a
//! value exceeds their current range, and an interval's histogram is handed off once a second.

use std::sync::mpsc::SyncSender;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::{KIND_COUNT, LATENCY_NS_MAX};
use crate::adapter::ErrorKind;

/// Error kinds counted per thread, indexed by [`error_index`].
pub const ERROR_KINDS: [ErrorKind; 8] = [
    ErrorKind::Io,
    ErrorKind::DiskFull,
    ErrorKind::Corruption,
    ErrorKind::Busy,
    ErrorKind::Limit,
    ErrorKind::Poisoned,
    ErrorKind::Invalid,
    ErrorKind::Other,
];

/// Position of `kind` in [`ERROR_KINDS`].
#[must_use]
pub fn error_index(kind: ErrorKind) -> usize {
    ERROR_KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(ERROR_KINDS.len() - 1)
}

/// Most error messages a thread keeps verbatim (the rest are only counted).
pub const ERROR_DETAILS_MAX: usize = 8;

/// A new empty histogram in nanoseconds: 3 significant digits, auto-resizing, so memory follows
/// the largest value seen rather than LATENCY_NS_MAX (which matters with 100+ threads times
/// 8 kinds).
///
/// # Errors
/// Never in practice (only an invalid precision fails).
pub fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    let mut h = Histogram::new(3)?;
    h.auto(true);
    Ok(h)
}

/// Records `value`, growing an auto-resizing histogram as needed (`saturating_record` would
/// clamp to the current range instead of resizing).
#[inline]
pub fn record_ns(h: &mut Histogram<u64>, value: u64) {
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

/// One second of one thread's work.
pub struct Interval {
    pub thread: usize,
    /// Seconds since the phase started (the interval covers [second, second + 1)).
    pub second: u64,
    /// Operations completed (weighted: a load batch counts its records).
    pub ops: u64,
    pub errors: u64,
    /// Response times of every kind together.
    pub histogram: Histogram<u64>,
}

/// Messages from workers to the collector.
pub enum Tick {
    Interval(Interval),
    /// The thread finished; it sends nothing after this.
    Done {
        thread: usize,
    },
}

/// What a worker measures.
pub struct Recorder {
    pub thread: usize,
    pub response: Vec<Option<Histogram<u64>>>,
    pub service: Vec<Option<Histogram<u64>>>,
    pub kind_ops: [u64; KIND_COUNT],
    pub kind_errors: [u64; KIND_COUNT],
    pub errors: [u64; ERROR_KINDS.len()],
    pub error_details: Vec<String>,
    /// Weighted operations recorded (warm-up excluded).
    pub ops: u64,
    phase_start: Instant,
    second: u64,
    next_boundary: Instant,
    interval_ops: u64,
    interval_errors: u64,
    /// This second's response times per kind; added to `response` at each second boundary,
    /// so an operation costs one histogram record, not two.
    interval_kinds: Vec<Option<Histogram<u64>>>,
    /// An empty histogram cloned for every new one (cloning cannot fail, creating can).
    empty: Histogram<u64>,
    ticks: SyncSender<Tick>,
}

impl Recorder {
    #[must_use]
    pub fn new(
        thread: usize,
        phase_start: Instant,
        ticks: SyncSender<Tick>,
        empty: &Histogram<u64>,
    ) -> Recorder {
        debug_assert!(empty.is_empty());
        Recorder {
            thread,
            response: (0..KIND_COUNT).map(|_| None).collect(),
            service: (0..KIND_COUNT).map(|_| None).collect(),
            kind_ops: [0; KIND_COUNT],
            kind_errors: [0; KIND_COUNT],
            errors: [0; ERROR_KINDS.len()],
            error_details: Vec::new(),
            ops: 0,
            phase_start,
            second: 0,
            next_boundary: phase_start + std::time::Duration::from_secs(1),
            interval_ops: 0,
            interval_errors: 0,
            interval_kinds: (0..KIND_COUNT).map(|_| None).collect(),
            empty: empty.clone(),
            ticks,
        }
    }

    /// Records a completed operation of `kind` that ended at `end`.
    #[inline]
    pub fn record(&mut self, kind: usize, weight: u64, end: Instant, response_ns: u64) {
        if end >= self.next_boundary {
            self.roll(end);
        }
        let value = response_ns.clamp(1, LATENCY_NS_MAX);
        let h = self.interval_kinds[kind].get_or_insert_with(|| self.empty.clone());
        record_ns(h, value);
        self.kind_ops[kind] += 1;
        self.ops += weight;
        self.interval_ops += weight;
    }

    /// Records the service time (open loop) of the operation just recorded.
    #[inline]
    pub fn record_service(&mut self, kind: usize, service_ns: u64) {
        let h = self.service[kind].get_or_insert_with(|| self.empty.clone());
        record_ns(h, service_ns.clamp(1, LATENCY_NS_MAX));
    }

    /// Counts a failed operation (not recorded in the latency histograms).
    pub fn record_error(
        &mut self,
        kind: usize,
        end: Instant,
        error: &crate::adapter::AdapterError,
    ) {
        if end >= self.next_boundary {
            self.roll(end);
        }
        self.kind_errors[kind] += 1;
        self.errors[error_index(error.kind)] += 1;
        self.interval_errors += 1;
        if self.error_details.len() < ERROR_DETAILS_MAX {
            self.error_details.push(error.to_string());
        }
    }

    /// Sends the current interval and starts the one containing `now`.
    fn roll(&mut self, now: Instant) {
        self.flush();
        let elapsed_s = now.saturating_duration_since(self.phase_start).as_secs();
        debug_assert!(elapsed_s >= self.second);
        self.second = elapsed_s;
        self.next_boundary = self.phase_start + std::time::Duration::from_secs(elapsed_s + 1);
    }

    fn flush(&mut self) {
        if self.interval_ops == 0 && self.interval_errors == 0 {
            return;
        }
        let mut histogram = self.empty.clone();
        for (kind, slot) in self.interval_kinds.iter_mut().enumerate() {
            let Some(interval) = slot.as_mut().filter(|h| !h.is_empty()) else {
                continue;
            };
            let total = self.response[kind].get_or_insert_with(|| self.empty.clone());
            // Auto-resizing histograms of one unit: adding cannot fail.
            let added = total
                .add(&*interval)
                .and_then(|()| histogram.add(&*interval));
            debug_assert!(added.is_ok());
            interval.reset();
        }
        let interval = Interval {
            thread: self.thread,
            second: self.second,
            ops: self.interval_ops,
            errors: self.interval_errors,
            histogram,
        };
        self.interval_ops = 0;
        self.interval_errors = 0;
        // The collector outlives every worker; a send error means it already failed and the
        // phase reports that instead.
        let _ = self.ticks.send(Tick::Interval(interval));
    }

    /// Sends the last interval and the end-of-thread marker.
    pub fn finish(&mut self) {
        self.flush();
        let _ = self.ticks.send(Tick::Done {
            thread: self.thread,
        });
    }
}
