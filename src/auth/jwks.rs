//! A JWKS fetched from a URL (Better Auth's `/api/auth/jwks`, or any
//! identity provider's): fetched at start, refreshed on a schedule and when
//! a token names a `kid` roster does not know, at most once per
//! `min_refresh_interval` for the latter, so a flood of tokens with made-up
//! `kid`s costs the identity provider one request per window. A failed
//! refresh keeps the last good keys.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use tracing::{info, warn};

use super::token::KeyError;

/// Failed fetches of the JWKS (scheduled, on an unknown `kid`, or at start).
pub const REFRESH_FAILURES: &str = "roster_jwks_refresh_failures_total";
/// Seconds since the keys in use were fetched.
pub const KEY_SET_AGE: &str = "roster_jwks_age_seconds";

/// The longest one fetch may take: the identity provider is on the request
/// path of a token with a new `kid`.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS is a few keys; anything larger is not one.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Where the keys come from, and when they were last fetched.
pub struct RemoteJwks {
    url: url::Url,
    client: reqwest::Client,
    refresh_interval: Duration,
    min_refresh_interval: Duration,
    /// When an unknown `kid` last caused a fetch; held across that fetch, so
    /// concurrent tokens with unknown `kid`s wait for one fetch instead of
    /// each starting their own.
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
    state: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    /// When the keys in use were fetched.
    fetched_at: Option<Instant>,
    /// The last fetch failed: logged once when it starts failing, once when
    /// it recovers.
    failing: bool,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url.as_str())
            .field("refresh_interval", &self.refresh_interval)
            .field("min_refresh_interval", &self.min_refresh_interval)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    pub fn new(
        url: url::Url,
        refresh_interval: Duration,
        min_refresh_interval: Duration,
    ) -> Result<Self, KeyError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| KeyError::new(format!("cannot build the JWKS client: {err}")))?;
        Ok(Self {
            url,
            client,
            refresh_interval,
            min_refresh_interval,
            last_on_demand: tokio::sync::Mutex::new(None),
            state: Mutex::new(FetchState::default()),
        })
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
    }

    /// The JWKS document, as text.
    pub(super) async fn fetch(&self) -> Result<String, KeyError> {
        let failed = |err: &dyn std::fmt::Display| {
            KeyError::new(format!("cannot fetch the JWKS from {}: {err}", self.url))
        };
        let response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| failed(&err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(&format!("HTTP status {status}")));
        }
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|err| failed(&err))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(failed(&format!(
                    "the answer is over {MAX_JWKS_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| failed(&"the answer is not UTF-8"))
    }

    /// Takes the on-demand slot if the window since the last on-demand
    /// fetch has passed; the guard is held while fetching.
    pub(super) async fn on_demand_slot(
        &self,
    ) -> Option<tokio::sync::MutexGuard<'_, Option<Instant>>> {
        let mut last = self.last_on_demand.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refresh_interval) {
            return None;
        }
        *last = Some(Instant::now());
        Some(last)
    }

    /// Records a fetch that gave new keys.
    pub(super) fn succeeded(&self, keys: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.fetched_at = Some(Instant::now());
        if std::mem::take(&mut state.failing) {
            info!(url = %self.url, keys, "JWKS fetched again: using the new keys");
        }
        drop(state);
        self.report_age();
    }

    /// Records a failed fetch: the keys in use stay.
    pub(super) fn failed(&self, err: &KeyError) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !std::mem::replace(&mut state.failing, true) {
            warn!(url = %self.url, error = %err, "JWKS refresh failed: keeping the last good keys until a refresh succeeds");
        }
        drop(state);
        if crate::telemetry::metrics_enabled() {
            metrics::counter!(REFRESH_FAILURES).increment(1);
        }
    }

    /// How old the keys in use are, if any were fetched.
    pub fn age(&self) -> Option<Duration> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.fetched_at.map(|at| at.elapsed())
    }

    pub(super) fn report_age(&self) {
        if let Some(age) = self.age()
            && crate::telemetry::metrics_enabled()
        {
            metrics::gauge!(KEY_SET_AGE).set(age.as_secs_f64());
        }
    }
}
