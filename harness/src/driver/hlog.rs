//! HdrHistogram interval logs (`.hlog`): a phase's one-second histograms of every operation
//! kind together, in the standard format HdrHistogram's own tools read
//! (`HistogramLogProcessor`, `hdr-plot`), so latency over time is exact rather than the
//! timeline's per-second p50 and p99.

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

/// The interval log of one phase: `seconds` are (second since the phase began, histogram of
/// nanoseconds), `start` the wall clock at the phase's start. Empty on a serialization
/// error. The driver writes its logs as seconds close ([`IntervalLog`]); this whole-log form
/// serves the tests.
#[cfg(test)]
fn interval_log<'h>(
    phase: &str,
    start: SystemTime,
    seconds: impl Iterator<Item = (u64, &'h Histogram<u64>)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLog::begin(phase, start, &mut out, &mut serializer);
    for (second, h) in seconds {
        log.write(second, h);
    }
    if !log.finish() {
        out.clear();
    }
    out
}

/// An interval log written as its phase runs, one second at a time: a phase then holds only
/// the seconds still open, not one histogram per second to its end (an hour's load kept
/// about 650 MB of them in `scale/100m`).
pub struct IntervalLog<'a> {
    writer: Option<IntervalLogWriter<'a, 'a, Vec<u8>, V2DeflateSerializer>>,
    tag: Option<Tag<'a>>,
}

impl<'a> IntervalLog<'a> {
    /// Starts the log of `phase` (its header and comments) in `out`.
    pub fn begin(
        phase: &'a str,
        start: SystemTime,
        out: &'a mut Vec<u8>,
        serializer: &'a mut V2DeflateSerializer,
    ) -> IntervalLog<'a> {
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment(&format!(
                "harness phase {phase}: response times in nanoseconds"
            ))
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1e6);
        IntervalLog {
            writer: builder.begin_log_with(out, serializer).ok(),
            // Tags may not contain spaces, commas or colons; phase names are plain words.
            tag: Tag::new(phase),
        }
    }

    /// Appends the histogram of `second` (seconds since the phase began). A serialization
    /// error ends the log: see [`IntervalLog::finish`].
    pub fn write(&mut self, second: u64, h: &Histogram<u64>) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let at = Duration::from_secs(second);
        if writer
            .write_histogram(h, at, Duration::from_secs(1), self.tag)
            .is_err()
        {
            self.writer = None;
        }
    }

    /// False when the log could not be written whole (the caller then drops it).
    #[must_use]
    pub fn finish(self) -> bool {
        self.writer.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn intervals_read_back_with_their_counts() -> Result<(), Box<dyn std::error::Error>> {
        let mut a = Histogram::<u64>::new(3)?;
        let mut b = Histogram::<u64>::new(3)?;
        a.record(1_000)?;
        b.record_n(2_000_000, 5)?;
        let log = interval_log("run", SystemTime::now(), [(0, &a), (1, &b)].into_iter());
        let mut counts = Vec::new();
        for entry in IntervalLogIterator::new(&log) {
            if let Ok(LogEntry::Interval(h)) = entry {
                use base64::Engine as _;
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(h.encoded_histogram())?;
                let back: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..])?;
                counts.push((h.start_timestamp().as_secs(), back.len()));
            }
        }
        assert_eq!(counts, vec![(0, 1), (1, 5)]);
        Ok(())
    }
}
