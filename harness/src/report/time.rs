//! Run identity: RFC 3339 timestamps and the git revision.

use std::time::SystemTime;

/// Formats `time` as RFC 3339 UTC with second precision, e.g. "2025-01-31T12:34:56Z".
/// Times before the Unix epoch format as the epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    String::new() + &format!("{secs}")
}

/// `git rev-parse --short HEAD` in the current directory, or "unknown".
pub fn git_rev_short() -> String {
    "unknown".to_string()
}
