//! How bearer tokens are verified: shared by `roster serve` and `roster token`.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::{ConfigError, defaults, parse::positive_duration};
use crate::auth::{
    jwks::RemoteJwks,
    token::{DEVELOPMENT_SECRET, TokenVerifier},
};

/// Token verification settings.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct JwtConfig {
    /// HS256 secret (at least 16 bytes). Without it (and without a JWKS file or URL)
    /// a built-in development secret is used, on loopback addresses only.
    #[arg(long, env = "ROSTER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// JWKS file with the public keys of RS256/ES256/EdDSA tokens.
    #[arg(long, env = "ROSTER_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// http(s) URL of a JWKS (a Better Auth portal's `/api/auth/jwks`),
    /// fetched at start and refreshed while roster runs. Instead of
    /// `--jwt-jwks-file`, not with it: one source of keys.
    #[arg(
        long = "jwks-url",
        env = "ROSTER_JWKS_URL",
        conflicts_with = "jwt_jwks_file"
    )]
    pub jwks_url: Option<String>,
    /// How often the JWKS URL is fetched again.
    #[arg(long, env = "ROSTER_JWKS_REFRESH_INTERVAL", default_value = defaults::JWKS_REFRESH_INTERVAL,
          value_parser = positive_duration)]
    pub jwks_refresh_interval: Duration,
    /// The shortest time between two fetches caused by tokens with a `kid`
    /// the keys in hand do not have (so made-up `kid`s cannot flood the
    /// identity provider).
    #[arg(long, env = "ROSTER_JWKS_MIN_REFRESH_INTERVAL", default_value = defaults::JWKS_MIN_REFRESH_INTERVAL,
          value_parser = positive_duration)]
    pub jwks_min_refresh_interval: Duration,
    /// Required `iss` claim, if set.
    #[arg(long, env = "ROSTER_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, if set. Needed with a JWKS (file or URL),
    /// unless `--jwt-any-audience` says otherwise.
    #[arg(long, env = "ROSTER_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// With a JWKS and no `--jwt-audience`, accept tokens whatever their
    /// `aud`: also those the identity provider minted for its other
    /// clients. Logged as a warning at start.
    #[arg(long, env = "ROSTER_JWT_ANY_AUDIENCE", conflicts_with = "jwt_audience")]
    pub jwt_any_audience: bool,
}

impl JwtConfig {
    /// The HS256 secret in effect: the configured one, or the development
    /// secret when no other way to verify tokens is configured.
    pub fn effective_secret(&self) -> Option<&str> {
        match (&self.jwt_secret, &self.jwt_jwks_file, &self.jwks_url) {
            (Some(secret), _, _) => Some(secret),
            (None, None, None) => Some(DEVELOPMENT_SECRET),
            (None, _, _) => None,
        }
    }

    pub fn uses_development_secret(&self) -> bool {
        self.effective_secret() == Some(DEVELOPMENT_SECRET)
    }

    /// Keys from an identity provider (a JWKS file or URL) verify tokens
    /// it mints for all its clients; the HS256 secret is roster's alone.
    fn uses_jwks(&self) -> bool {
        self.jwt_jwks_file.is_some() || self.jwks_url.is_some()
    }

    /// Tokens verified by a JWKS are accepted whatever their audience,
    /// because the operator said so (`--jwt-any-audience`).
    pub fn accepts_any_audience(&self) -> bool {
        self.uses_jwks() && self.jwt_audience.is_none() && self.jwt_any_audience
    }

    /// Without an audience, a JWKS would let in a token the identity
    /// provider minted for any of its other clients: that must be chosen.
    fn check_audience(&self) -> Result<(), ConfigError> {
        if self.uses_jwks() && self.jwt_audience.is_none() && !self.jwt_any_audience {
            return Err(ConfigError(
                "a JWKS is configured (ROSTER_JWT_JWKS_FILE or ROSTER_JWKS_URL) without an \
                 audience, so tokens the identity provider mints for any of its clients would \
                 be accepted: set ROSTER_JWT_AUDIENCE to the `aud` of roster's tokens (for a \
                 Better Auth portal, its base URL), or ROSTER_JWT_ANY_AUDIENCE=true to accept \
                 any audience"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The verifier these settings describe; reads the JWKS file (once: the
    /// server keeps the verifier that validation built). A JWKS URL is
    /// checked here and fetched when the server starts.
    pub(super) fn verifier(&self) -> Result<TokenVerifier, ConfigError> {
        self.check_audience()?;
        if let Some(url) = &self.jwks_url {
            return TokenVerifier::with_remote_jwks(
                self.effective_secret(),
                self.remote_jwks(url)?,
                self.jwt_issuer.clone(),
                self.jwt_audience.clone(),
            )
            .map_err(|err| ConfigError(err.to_string()));
        }
        let jwks = self
            .jwt_jwks_file
            .as_deref()
            .map(TokenVerifier::read_jwks)
            .transpose()
            .map_err(|err| ConfigError(err.to_string()))?;
        TokenVerifier::new(
            self.effective_secret(),
            jwks.as_deref(),
            self.jwt_issuer.clone(),
            self.jwt_audience.clone(),
        )
        .map_err(|err| ConfigError(err.to_string()))
    }

    fn remote_jwks(&self, url: &str) -> Result<RemoteJwks, ConfigError> {
        let parsed = url::Url::parse(url)
            .map_err(|err| ConfigError(format!("ROSTER_JWKS_URL is not a URL: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ConfigError(format!(
                "ROSTER_JWKS_URL must be an http(s) URL with a host, not {url}"
            )));
        }
        RemoteJwks::new(
            parsed,
            self.jwks_refresh_interval,
            self.jwks_min_refresh_interval,
        )
        .map_err(|err| ConfigError(err.to_string()))
    }
}
