//! Value parsers for bounds clap has no range for.

use std::time::Duration;

/// A `humantime` duration (`250ms`, `30s`, `7d`) longer than zero.
pub(super) fn positive_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value).map_err(|err| err.to_string())?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

/// The longest `--deleted-organization-retention`: ten years. Longer is a
/// typo (a purge time past the end of time would overflow, too).
pub(super) const MAX_RETENTION: Duration = Duration::from_secs(3650 * 86_400);

/// How long a deleted organization may be restored: longer than zero, at
/// most [`MAX_RETENTION`].
pub(super) fn retention_duration(value: &str) -> Result<Duration, String> {
    let duration = positive_duration(value)?;
    if duration > MAX_RETENTION {
        return Err("must be at most 3650d".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retention_is_bounded_on_both_sides() {
        assert_eq!(
            retention_duration("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(retention_duration("3650d"), Ok(MAX_RETENTION));
        assert!(retention_duration("3651d").is_err());
        assert!(retention_duration("0s").is_err());
    }

    #[test]
    fn zero_and_nonsense_are_refused() {
        assert_eq!(positive_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(positive_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("0").is_err());
        assert!(positive_duration("soon").is_err());
    }
}
