//! The protocol of a chaos child process (the kill -9 loop's and the soak's worker) on its
//! stdout, one line each: progress lines of the runner's own (`opening`, `opened <us>`,
//! `tick <json>`), and at the end `violation <text>` (exit [`EXIT_VIOLATION`]) for a wrong
//! answer from the engine, or `error <text>` (exit [`EXIT_ERROR`]) for a failed operation.

use std::io::Write as _;

use crate::faults::rng::SplitMix64;

/// Exit status of a child that saw the engine answer wrongly.
pub const EXIT_VIOLATION: i32 = 3;
/// Exit status of a child whose operation failed.
pub const EXIT_ERROR: i32 = 4;

/// A finding that ends the child.
pub enum ChildEnd {
    /// The engine answered wrongly (a read against the expected state, a bank total).
    Violation(String),
    /// An operation failed.
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for ChildEnd {
    fn from(e: E) -> ChildEnd {
        ChildEnd::Error(e.into())
    }
}

/// Writes one protocol line.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // One buffer, one write: the parent never reads half of a multi-line message.
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Says the finding and returns the exit status that goes with it.
#[must_use]
pub fn report_end(end: ChildEnd) -> i32 {
    match end {
        ChildEnd::Violation(v) => {
            say(&format!("violation {v}"));
            EXIT_VIOLATION
        }
        ChildEnd::Error(e) => {
            say(&format!("error {e:#}"));
            EXIT_ERROR
        }
    }
}

/// The keys one writer thread of a child owns, `k % threads == t`: each key has one writer,
/// so the expected state tracks one write in flight per key, and the thread knows its own
/// keys exactly.
#[derive(Debug, Clone, Copy)]
pub struct Lane {
    pub t: u64,
    pub threads: u64,
}

impl Lane {
    /// A random key of this lane (any key when the lane is empty).
    pub fn draw(self, rng: &mut SplitMix64, keys: u64) -> u64 {
        let owned = keys.saturating_sub(self.t).div_ceil(self.threads);
        if owned == 0 {
            return rng.below(keys);
        }
        self.t + self.threads * rng.below(owned)
    }

    /// True when `key` is this lane's.
    #[must_use]
    pub fn owns(self, key: u64) -> bool {
        key % self.threads == self.t
    }
}
