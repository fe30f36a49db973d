//! Run identity: RFC 3339 timestamps and the git revision.

use std::process::Command;
use std::time::SystemTime;

const SECONDS_PER_DAY: u64 = 86_400;

/// Longest revision string accepted from git; anything longer is not a short hash.
const GIT_REV_LENGTH_MAX: usize = 64;

/// Formats `time` as RFC 3339 UTC with second precision, e.g. "2025-01-31T12:34:56Z".
/// Times before the Unix epoch format as the epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_from_days(secs / SECONDS_PER_DAY);
    let secs_of_day = secs % SECONDS_PER_DAY;
    let (hour, minute, second) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
/// Works in 400-year eras of 146097 days so leap rules need no loop.
fn civil_from_days(days_since_epoch: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so the leap day falls at the end of a year.
    let days = days_since_epoch + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    debug_assert!((1..=12).contains(&month) && (1..=31).contains(&day));
    (year, month, day)
}

/// The commit this binary was built from (recorded by `build.rs`); failing that, `git
/// rev-parse --short HEAD` in the current directory; "unknown" when neither gives a hash.
/// The build's commit comes first because a pinned binary (a soak's, a copied one) may run
/// long after HEAD has moved. Uncommitted changes are not recorded.
pub fn git_rev_short() -> String {
    if let Some(rev) = option_env!("HARNESS_BUILD_REV").filter(|r| is_rev(r)) {
        return rev.to_string();
    }
    let output = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if is_rev(&rev) {
                rev
            } else {
                "unknown".to_string()
            }
        }
        _ => "unknown".to_string(),
    }
}

fn is_rev(rev: &str) -> bool {
    !rev.is_empty() && rev.len() <= GIT_REV_LENGTH_MAX && rev.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        rfc3339_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(1_738_326_896), "2025-01-31T12:34:56Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn git_rev_is_hash_or_unknown() {
        let rev = git_rev_short();
        assert!(rev == "unknown" || rev.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
