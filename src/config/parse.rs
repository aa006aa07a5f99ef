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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_nonsense_are_refused() {
        assert_eq!(positive_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(positive_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("0").is_err());
        assert!(positive_duration("soon").is_err());
    }
}
