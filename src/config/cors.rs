//! The browser origins allowed to call roster (`--cors-origins`).

use http::HeaderValue;

use super::ConfigError;

/// Checks that every entry is an exact origin, as browsers send it in
/// `Origin` (scheme, host and port if not the default; no path, no trailing
/// slash), because CORS compares origins byte for byte: an entry in any
/// other form would silently never match.
pub(super) fn origins(entries: &[String]) -> Result<Vec<HeaderValue>, ConfigError> {
    entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(origin)
        .collect()
}

fn origin(entry: &str) -> Result<HeaderValue, ConfigError> {
    let refuse = |why: &str| {
        ConfigError(format!(
            "--cors-origins: {entry:?} is not an origin ({why}); write exact origins such as \
             https://portal.example.com or http://localhost:3000, comma-separated"
        ))
    };
    if entry == "*" {
        return Err(refuse("any origin is not allowed: name each one"));
    }
    let url = url::Url::parse(entry).map_err(|err| refuse(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    let serialized = url.origin().ascii_serialization();
    if serialized != entry {
        return Err(refuse(&format!(
            "browsers send it as {serialized:?}, without path or trailing slash"
        )));
    }
    HeaderValue::from_str(entry).map_err(|err| refuse(&err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_are_kept_and_nothing_else() {
        let kept = origins(&[
            "https://portal.example.com".into(),
            " http://localhost:3000".into(),
            String::new(),
        ])
        .unwrap();
        assert_eq!(
            kept,
            ["https://portal.example.com", "http://localhost:3000"]
        );
        for bad in [
            "*",
            "portal.example.com",
            "https://portal.example.com/",
            "https://portal.example.com/app",
            "https://portal.example.com:443",
            "ftp://portal.example.com",
            "https://Portal.example.com",
        ] {
            let error = origins(&[bad.into()]).unwrap_err();
            assert!(error.0.contains("--cors-origins"), "{error}");
            assert!(error.0.contains(bad), "{error}");
        }
    }

    #[test]
    fn the_flag_takes_a_comma_separated_list() {
        let config = super::super::Config::parse_args([
            "--cors-origins",
            "https://portal.example.com,http://localhost:3000",
        ])
        .unwrap();
        assert_eq!(
            config.cors_origins,
            ["https://portal.example.com", "http://localhost:3000"]
        );
        assert_eq!(config.validate().unwrap().cors_origins.len(), 2);
        let default = super::super::Config::parse_args::<_, &str>([]).unwrap();
        assert!(default.cors_origins.is_empty(), "off by default");
    }
}
