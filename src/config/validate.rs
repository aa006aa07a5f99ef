//! The checks clap cannot make (they span settings or read files), and the
//! parts they build: the server runs with these instead of building them
//! again.

use std::sync::Arc;

use http::HeaderValue;
use tokio_rustls::TlsAcceptor;

use super::Config;
use crate::{
    auth::token::TokenVerifier, domain::link::InvitationLinks, mail::Mailer,
    provider_portal::ProviderPortalSettings, telemetry::OtlpExport,
};

/// Configuration that cannot work, with a sentence saying why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A configuration that passed [`Config::validate`], with what it built.
pub struct Ready {
    pub config: Config,
    /// Verifies bearer tokens (the JWKS file, if any, has been read).
    pub verifier: Arc<TokenVerifier>,
    /// Delivers invitation emails: SMTP, or the log.
    pub mailer: Arc<dyn Mailer>,
    /// Accepts TLS with the identity and client CA read from their files;
    /// `None` for plaintext.
    pub tls: Option<TlsAcceptor>,
    /// Where developer identities are created; `None`: they exist only in roster.
    pub provider_portal: Option<ProviderPortalSettings>,
    /// Where invitation links point.
    pub invitation_links: InvitationLinks,
    /// The browser origins CORS allows, checked; empty: CORS is off.
    pub cors_origins: Vec<HeaderValue>,
    /// Where spans are exported; `None`: traces are off.
    pub traces: Option<OtlpExport>,
}

impl Ready {
    /// Delivers email through `mailer` instead (tests, embedding).
    #[must_use]
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("config", &self.config)
            .field("verifier", &self.verifier)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The link template, or today's `<portal-url>/invitations/{id}`.
    fn invitation_links(&self) -> Result<InvitationLinks, ConfigError> {
        match &self.invitation_link_template {
            Some(template) => InvitationLinks::parse(template).map_err(|rule| {
                ConfigError(format!(
                    "--invitation-link-template (ROSTER_INVITATION_LINK_TEMPLATE) {rule}, \
                     e.g. https://portal.example.com/auth/accept-invitation?invitationId={}",
                    InvitationLinks::PLACEHOLDER
                ))
            }),
            None => InvitationLinks::under_portal(&self.portal_url)
                .map_err(|rule| ConfigError(format!("--portal-url {rule}"))),
        }
    }

    /// Refuses configurations that would run badly or unsafely, and builds
    /// the parts the server needs. (Bounds on single values are checked by
    /// clap when the flags and variables are parsed.)
    pub fn validate(&self) -> Result<Ready, ConfigError> {
        if self.jwt.uses_development_secret()
            && !self.listen.ip().is_loopback()
            && !self.allow_development_secret
        {
            return Err(ConfigError(format!(
                "refusing to serve on {} with the built-in development JWT secret: \
                 set ROSTER_JWT_SECRET, ROSTER_JWT_JWKS_FILE or ROSTER_JWKS_URL \
                 (or, for a development setup only, --allow-development-secret)",
                self.listen
            )));
        }
        let portal = url::Url::parse(&self.portal_url)
            .map_err(|err| ConfigError(format!("--portal-url is not a URL: {err}")))?;
        if !matches!(portal.scheme(), "http" | "https") {
            return Err(ConfigError("--portal-url must be an http(s) URL".into()));
        }
        let invitation_links = self.invitation_links()?;
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "DATABASE_URL must start with sqlite: or postgres://".into(),
            ));
        }
        Ok(Ready {
            invitation_links,
            cors_origins: super::cors::origins(&self.cors_origins)?,
            traces: self.otel.export()?,
            provider_portal: self.provider_portal.settings()?,
            tls: self.tls.server_config()?,
            mailer: self.smtp.mailer()?,
            verifier: Arc::new(
                self.jwt
                    .verifier()?
                    .with_cache_budget(self.token_cache_bytes),
            ),
            config: self.clone(),
        })
    }
}
