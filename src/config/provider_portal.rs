//! Where the Provider Portal is and how roster talks to it: the settings
//! that make developer identities real, checked once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use url::Url;

use super::{ConfigError, defaults, parse::positive_duration};
use crate::provider_portal::ProviderPortalSettings;

/// Where the Provider Portal's HTTP API is, and how roster talks to it.
/// Without a URL and token, developer identities exist only in roster.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct ProviderPortalConfig {
    /// Base URL of the Provider Portal's API (http or https), e.g.
    /// `https://portal.example.com`: roster calls `<url>/api/developers`.
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_URL")]
    pub provider_portal_url: Option<String>,
    /// The portal token (`a7prt-...`, from the API7 Dashboard) sent as
    /// `Authorization: Bearer`.
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_TOKEN", hide_env_values = true)]
    pub provider_portal_token: Option<String>,
    /// A file holding the portal token (instead of the token itself).
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_TOKEN_FILE")]
    pub provider_portal_token_file: Option<PathBuf>,
    /// The longest one call to the Provider Portal may take.
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_TIMEOUT", default_value = defaults::PROVIDER_PORTAL_TIMEOUT, value_parser = positive_duration)]
    pub provider_portal_timeout: Duration,
    /// How long CreateOrganization waits for the identity to be created
    /// before it answers "provisioning" (delivery goes on).
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_CREATE_WAIT", default_value = defaults::PROVIDER_PORTAL_CREATE_WAIT, value_parser = humantime::parse_duration)]
    pub provider_portal_create_wait: Duration,
    /// How often the identity outbox is checked for retries that are due
    /// (new identities go out at once).
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_POLL_INTERVAL", default_value = defaults::PROVIDER_PORTAL_POLL_INTERVAL, value_parser = positive_duration)]
    pub provider_portal_poll_interval: Duration,
    /// The longest wait between two attempts at one identity.
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_MAX_BACKOFF", default_value = defaults::PROVIDER_PORTAL_MAX_BACKOFF, value_parser = positive_duration)]
    pub provider_portal_max_backoff: Duration,
    /// How often the server compares its organizations with the Provider
    /// Portal's developers (refreshing pending/active, exporting counts).
    #[arg(long, env = "ROSTER_PROVIDER_PORTAL_RECONCILE_INTERVAL", default_value = defaults::PROVIDER_PORTAL_RECONCILE_INTERVAL, value_parser = positive_duration)]
    pub provider_portal_reconcile_interval: Duration,
}

impl ProviderPortalConfig {
    /// The checked settings; `None` when no Provider Portal is configured.
    /// An error is one sentence saying what is wrong.
    pub fn settings(&self) -> Result<Option<ProviderPortalSettings>, ConfigError> {
        self.checked().map_err(ConfigError)
    }

    fn checked(&self) -> Result<Option<ProviderPortalSettings>, String> {
        let token = match (
            &self.provider_portal_token,
            &self.provider_portal_token_file,
        ) {
            (Some(_), Some(_)) => {
                return Err(
                    "set ROSTER_PROVIDER_PORTAL_TOKEN or ROSTER_PROVIDER_PORTAL_TOKEN_FILE, not both"
                        .into(),
                );
            }
            (Some(token), None) => Some(token.trim().to_owned()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|err| {
                        format!(
                            "cannot read ROSTER_PROVIDER_PORTAL_TOKEN_FILE {}: {err}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let (url, token) = match (&self.provider_portal_url, token) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err("ROSTER_PROVIDER_PORTAL_URL needs a token: set ROSTER_PROVIDER_PORTAL_TOKEN or ROSTER_PROVIDER_PORTAL_TOKEN_FILE".into());
            }
            (None, Some(_)) => {
                return Err(
                    "a Provider Portal token needs ROSTER_PROVIDER_PORTAL_URL as well".into(),
                );
            }
            (Some(url), Some(token)) => (url, token),
        };
        let base_url = Url::parse(url)
            .map_err(|err| format!("ROSTER_PROVIDER_PORTAL_URL is not a URL: {err}"))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host().is_none() {
            return Err(
                "ROSTER_PROVIDER_PORTAL_URL must be an http or https URL with a host".into(),
            );
        }
        if base_url.query().is_some()
            || base_url.fragment().is_some()
            || !base_url.username().is_empty()
            || base_url.password().is_some()
        {
            return Err(
                "ROSTER_PROVIDER_PORTAL_URL must be a plain base URL, without credentials, query or fragment"
                    .into(),
            );
        }
        if token.is_empty() {
            return Err("the Provider Portal token is empty".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the Provider Portal token must be printable ASCII without spaces".into());
        }
        Ok(Some(ProviderPortalSettings {
            base_url,
            token,
            timeout: self.provider_portal_timeout,
            create_wait: self.provider_portal_create_wait,
            poll_interval: self.provider_portal_poll_interval,
            max_backoff: self.provider_portal_max_backoff,
            reconcile_interval: self.provider_portal_reconcile_interval,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: Option<&str>, token: Option<&str>) -> ProviderPortalConfig {
        let mut config = crate::config::Config::with_database("sqlite::memory:").provider_portal;
        config.provider_portal_url = url.map(str::to_owned);
        config.provider_portal_token = token.map(str::to_owned);
        config
    }

    #[test]
    fn nothing_configured_means_no_provider_portal() {
        assert_eq!(config(None, None).checked(), Ok(None));
    }

    #[test]
    fn a_working_configuration_is_accepted() {
        let settings = config(Some("https://portal.example.com/"), Some("a7prt-abc\n"))
            .checked()
            .ok()
            .flatten();
        assert_eq!(settings.map(|s| s.token), Some("a7prt-abc".to_owned()));
    }

    #[test]
    fn wrong_configurations_are_refused_with_a_sentence() {
        for (url, token) in [
            (Some("https://portal.example.com"), None),
            (None, Some("a7prt-abc")),
            (Some("ftp://portal.example.com"), Some("a7prt-abc")),
            (Some("not a url"), Some("a7prt-abc")),
            (
                Some("https://user:pw@portal.example.com"),
                Some("a7prt-abc"),
            ),
            (Some("https://portal.example.com/?x=1"), Some("a7prt-abc")),
            (Some("https://portal.example.com"), Some("two words")),
            (Some("https://portal.example.com"), Some("  ")),
        ] {
            assert!(config(url, token).settings().is_err(), "{url:?} {token:?}");
        }
        let mut both = config(Some("https://portal.example.com"), Some("a7prt-abc"));
        both.provider_portal_token_file = Some("/nonexistent".into());
        assert!(both.settings().is_err());
        let mut unreadable = config(Some("https://portal.example.com"), None);
        unreadable.provider_portal_token_file = Some("/nonexistent/token".into());
        assert!(unreadable.settings().is_err());
    }
}
