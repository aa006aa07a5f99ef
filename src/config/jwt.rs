//! How bearer tokens are verified: shared by `roster serve` and `roster token`.

use std::path::PathBuf;

use clap::Args;

use super::ConfigError;
use crate::auth::token::{DEVELOPMENT_SECRET, TokenVerifier};

/// Token verification settings.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct JwtConfig {
    /// HS256 secret (at least 16 bytes). Without it (and without a JWKS file)
    /// a built-in development secret is used, on loopback addresses only.
    #[arg(long, env = "ROSTER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// JWKS file with the public keys of RS256/ES256/EdDSA tokens.
    #[arg(long, env = "ROSTER_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// Required `iss` claim, if set.
    #[arg(long, env = "ROSTER_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, if set.
    #[arg(long, env = "ROSTER_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

impl JwtConfig {
    /// The HS256 secret in effect: the configured one, or the development
    /// secret when no other way to verify tokens is configured.
    pub fn effective_secret(&self) -> Option<&str> {
        match (&self.jwt_secret, &self.jwt_jwks_file) {
            (Some(secret), _) => Some(secret),
            (None, None) => Some(DEVELOPMENT_SECRET),
            (None, Some(_)) => None,
        }
    }

    pub fn uses_development_secret(&self) -> bool {
        self.effective_secret() == Some(DEVELOPMENT_SECRET)
    }

    /// The verifier these settings describe; reads the JWKS file (once: the
    /// server keeps the verifier that validation built).
    pub(super) fn verifier(&self) -> Result<TokenVerifier, ConfigError> {
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
}
