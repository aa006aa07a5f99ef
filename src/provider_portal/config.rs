//! The checked settings of a Provider Portal (parsed and checked by
//! `config::ProviderPortalConfig`).

use std::time::Duration;

use url::Url;

/// A checked Provider Portal configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderPortalSettings {
    pub base_url: Url,
    /// Never logged.
    pub token: String,
    pub timeout: Duration,
    pub create_wait: Duration,
    pub poll_interval: Duration,
    pub max_backoff: Duration,
    pub reconcile_interval: Duration,
}

impl std::fmt::Debug for ProviderPortalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderPortalSettings")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
