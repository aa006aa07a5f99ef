//! One typed configuration, from flags or `ROSTER_*` environment variables
//! (and `DATABASE_URL`). The defaults run against an embedded SQLite file,
//! so `cargo run` gives a working service on a fresh checkout.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    auth::token::{DEVELOPMENT_SECRET, TokenVerifier},
    mail::{
        LogMailer, Mailer,
        smtp::{SmtpMailer, SmtpSettings, SmtpTls},
    },
    provider_portal::config::ProviderPortalConfig,
    service::{Limits, Settings},
};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/roster.db?mode=rwc";
pub const DEFAULT_PORTAL_URL: &str = "http://localhost:3000";
pub const DEFAULT_SMTP_FROM: &str = "Developer Portal <no-reply@localhost>";

pub const DEFAULT_INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
pub const DEFAULT_LIMITS: Limits = Limits {
    max_owned_organizations: 10,
    max_members_per_organization: 100,
    max_pending_invitations_per_organization: 100,
};

/// roster: the organization service of the Developer Portal.
#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, roster serves.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (the default).
    Serve(Box<Config>),
    /// Print a development token signed with the configured HS256 secret.
    Token(TokenArgs),
    /// Measure roster under load over loopback gRPC (starts its own server).
    Bench(crate::bench::BenchArgs),
    /// The Provider Portal: compare and repair developer identities.
    ProviderPortal(crate::provider_portal::cli::ProviderPortalArgs),
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Token verification settings, shared by `serve` and `token`.
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

    pub fn verifier(&self) -> Result<TokenVerifier, ConfigError> {
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

/// Everything `roster serve` needs.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "ROSTER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// `sqlite://path?mode=rwc` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Most database connections in the pool.
    #[arg(long, env = "ROSTER_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    #[command(flatten)]
    pub jwt: JwtConfig,
    /// Accept the built-in development JWT secret on a non-loopback address.
    /// Anyone can mint tokens with it: never in production.
    #[arg(long, env = "ROSTER_ALLOW_DEVELOPMENT_SECRET")]
    pub allow_development_secret: bool,
    /// The portal's base URL; invitation links are `<portal-url>/invitations/<id>`.
    #[arg(long, env = "ROSTER_PORTAL_URL", default_value = DEFAULT_PORTAL_URL)]
    pub portal_url: String,
    /// How long invitations stay open (e.g. `7d`, `36h`).
    #[arg(long, env = "ROSTER_INVITATION_TTL", default_value = "7d", value_parser = humantime::parse_duration)]
    pub invitation_ttl: Duration,
    /// Organizations one user may own.
    #[arg(long, env = "ROSTER_MAX_OWNED_ORGANIZATIONS", default_value_t = DEFAULT_LIMITS.max_owned_organizations)]
    pub max_owned_organizations: u64,
    /// Seats per organization: members plus pending invitations.
    #[arg(long, env = "ROSTER_MAX_MEMBERS_PER_ORGANIZATION", default_value_t = DEFAULT_LIMITS.max_members_per_organization)]
    pub max_members_per_organization: u64,
    /// Pending invitations per organization.
    #[arg(long, env = "ROSTER_MAX_PENDING_INVITATIONS_PER_ORGANIZATION", default_value_t = DEFAULT_LIMITS.max_pending_invitations_per_organization)]
    pub max_pending_invitations_per_organization: u64,
    /// Log output: `pretty` or `json`. The level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub smtp: SmtpConfig,
    /// How often the email outbox is checked for due retries (new emails are sent at once).
    #[arg(long, env = "ROSTER_MAIL_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub mail_poll_interval: Duration,
    /// The longest one attempt at sending an email may take; the outbox
    /// lease on an email outlives it, so a slow SMTP server never makes two
    /// replicas send one email.
    #[arg(long, env = "ROSTER_MAIL_ATTEMPT_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub mail_attempt_timeout: Duration,
    #[command(flatten)]
    pub provider_portal: ProviderPortalConfig,
    /// Most memberships kept in the permission-check cache (memory bound).
    #[arg(long, env = "ROSTER_AUTHZ_CACHE_CAPACITY", default_value_t = 200_000)]
    pub authz_cache_capacity: u64,
    /// The worst-case staleness of cached reads (permission checks without a
    /// revision, read authorization, GetOrganization): the cache is used only
    /// while its follower has confirmed, this recently, that it applied every
    /// committed change; otherwise reads go to the database. Changes normally
    /// arrive within milliseconds.
    #[arg(long, env = "ROSTER_AUTHZ_MAX_STALENESS", default_value = "2s", value_parser = humantime::parse_duration)]
    pub authz_max_staleness: Duration,
    #[command(flatten)]
    pub tls: TlsConfig,
    #[command(flatten)]
    pub limits: ServerLimits,
    /// Serve Prometheus metrics over HTTP on this address (e.g. `127.0.0.1:9464`);
    /// off when unset.
    #[arg(long, env = "ROSTER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the database is checked; while it does not answer, health
    /// reports NOT_SERVING.
    #[arg(long, env = "ROSTER_HEALTH_CHECK_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub health_check_interval: Duration,
    /// On SIGTERM or Ctrl-C, how long calls in flight may take to finish
    /// before the server stops anyway.
    #[arg(long, env = "ROSTER_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// How often lapsed invitations are marked expired (and `invitation.expired` recorded).
    #[arg(long, env = "ROSTER_EXPIRY_SWEEP_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub expiry_sweep_interval: Duration,
}

/// SMTP delivery of invitation emails. Without a host, emails are written
/// to the log instead (development).
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct SmtpConfig {
    /// SMTP server host name; unset means "log emails instead of sending".
    #[arg(long, env = "ROSTER_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP server port.
    #[arg(long, env = "ROSTER_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// `none` (plain, local relays only), `starttls` or `tls`.
    #[arg(long, env = "ROSTER_SMTP_TLS", value_enum, default_value_t = SmtpTls::Starttls)]
    pub smtp_tls: SmtpTls,
    /// SMTP user name, if the server wants one.
    #[arg(long, env = "ROSTER_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(long, env = "ROSTER_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// The sender, e.g. `Developer Portal <no-reply@example.com>`.
    #[arg(long, env = "ROSTER_SMTP_FROM", default_value = DEFAULT_SMTP_FROM)]
    pub smtp_from: String,
}

impl SmtpConfig {
    /// The SMTP settings, if SMTP is configured.
    pub fn settings(&self) -> Option<SmtpSettings> {
        self.smtp_host.as_ref().map(|host| SmtpSettings {
            host: host.clone(),
            port: self.smtp_port,
            tls: self.smtp_tls,
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            from: self.smtp_from.clone(),
        })
    }

    /// The mailer this configuration asks for.
    pub fn mailer(&self) -> Result<Arc<dyn Mailer>, ConfigError> {
        match self.settings() {
            Some(settings) => Ok(Arc::new(SmtpMailer::new(&settings).map_err(ConfigError)?)),
            None => Ok(Arc::new(LogMailer)),
        }
    }
}

/// Configuration that cannot work, with a sentence saying why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// The defaults, on `database_url`, without reading the environment
    /// (tests build their configuration with this).
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            database_max_connections: 10,
            jwt: JwtConfig {
                jwt_secret: None,
                jwt_jwks_file: None,
                jwt_issuer: None,
                jwt_audience: None,
            },
            allow_development_secret: false,
            portal_url: DEFAULT_PORTAL_URL.to_owned(),
            invitation_ttl: DEFAULT_INVITATION_TTL,
            max_owned_organizations: DEFAULT_LIMITS.max_owned_organizations,
            max_members_per_organization: DEFAULT_LIMITS.max_members_per_organization,
            max_pending_invitations_per_organization: DEFAULT_LIMITS
                .max_pending_invitations_per_organization,
            log_format: LogFormat::Pretty,
            smtp: SmtpConfig {
                smtp_host: None,
                smtp_port: 587,
                smtp_tls: SmtpTls::Starttls,
                smtp_username: None,
                smtp_password: None,
                smtp_from: DEFAULT_SMTP_FROM.to_owned(),
            },
            authz_cache_capacity: 200_000,
            authz_max_staleness: Duration::from_secs(2),
            tls: TlsConfig::default(),
            limits: ServerLimits::default(),
            metrics_listen: None,
            health_check_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
            mail_poll_interval: Duration::from_secs(5),
            mail_attempt_timeout: Duration::from_secs(60),
            provider_portal: ProviderPortalConfig::default(),
            expiry_sweep_interval: Duration::from_secs(60),
        }
    }

    /// Refuses configurations that would run badly or unsafely.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.jwt.uses_development_secret()
            && !self.listen.ip().is_loopback()
            && !self.allow_development_secret
        {
            return Err(ConfigError(format!(
                "refusing to serve on {} with the built-in development JWT secret: \
                 set ROSTER_JWT_SECRET or ROSTER_JWT_JWKS_FILE \
                 (or, for a development setup only, --allow-development-secret)",
                self.listen
            )));
        }
        if self.invitation_ttl.is_zero() {
            return Err(ConfigError("--invitation-ttl must be positive".into()));
        }
        for (name, value) in [
            ("--max-owned-organizations", self.max_owned_organizations),
            (
                "--max-members-per-organization",
                self.max_members_per_organization,
            ),
            (
                "--max-pending-invitations-per-organization",
                self.max_pending_invitations_per_organization,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError(
                "--database-max-connections must be at least 1".into(),
            ));
        }
        let portal = url::Url::parse(&self.portal_url)
            .map_err(|err| ConfigError(format!("--portal-url is not a URL: {err}")))?;
        if !matches!(portal.scheme(), "http" | "https") {
            return Err(ConfigError("--portal-url must be an http(s) URL".into()));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "DATABASE_URL must start with sqlite: or postgres://".into(),
            ));
        }
        if self.authz_cache_capacity == 0 || self.authz_max_staleness.is_zero() {
            return Err(ConfigError(
                "--authz-cache-capacity and --authz-max-staleness must be positive".into(),
            ));
        }
        if self.limits.max_concurrent_rpcs == 0 || self.limits.rpc_timeout.is_zero() {
            return Err(ConfigError(
                "--max-concurrent-rpcs and --rpc-timeout must be positive".into(),
            ));
        }
        if self.limits.max_message_bytes < 1024 {
            return Err(ConfigError(
                "--max-message-bytes must be at least 1024".into(),
            ));
        }
        if self.health_check_interval.is_zero() {
            return Err(ConfigError(
                "--health-check-interval must be positive".into(),
            ));
        }
        self.tls.server_config()?;
        if self.mail_poll_interval.is_zero() || self.expiry_sweep_interval.is_zero() {
            return Err(ConfigError(
                "--mail-poll-interval and --expiry-sweep-interval must be positive".into(),
            ));
        }
        if self.mail_attempt_timeout.is_zero() {
            return Err(ConfigError(
                "--mail-attempt-timeout must be positive".into(),
            ));
        }
        self.provider_portal.settings().map_err(ConfigError)?;
        if self.smtp.smtp_username.is_some() != self.smtp.smtp_password.is_some() {
            return Err(ConfigError(
                "set both ROSTER_SMTP_USERNAME and ROSTER_SMTP_PASSWORD, or neither".into(),
            ));
        }
        self.smtp.mailer()?;
        self.jwt.verifier()?;
        Ok(())
    }

    pub fn settings(&self) -> Settings {
        Settings {
            limits: Limits {
                max_owned_organizations: self.max_owned_organizations,
                max_members_per_organization: self.max_members_per_organization,
                max_pending_invitations_per_organization: self
                    .max_pending_invitations_per_organization,
            },
            invitation_ttl: self.invitation_ttl,
            portal_url: self.portal_url.clone(),
            cache_capacity: self.authz_cache_capacity,
            max_staleness: self.authz_max_staleness,
            identity_create_wait: self.provider_portal.provider_portal_create_wait,
        }
    }
}

/// `roster token`: a development token for grpcurl and scripts.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// The user's email (`email`).
    #[arg(long)]
    pub email: Option<String>,
    /// The user's display name (`name`).
    #[arg(long)]
    pub name: Option<String>,
    /// Mark the email as not verified (`email_verified: false`).
    #[arg(long)]
    pub unverified: bool,
    /// Scopes for a service principal (repeatable or space-separated), e.g. `events.read`.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// How long the token is valid.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    #[command(flatten)]
    pub jwt: JwtConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_secret_is_refused_off_loopback() {
        let mut config = Config::with_database("sqlite::memory:");
        assert_eq!(config.validate(), Ok(()));
        config.listen = "0.0.0.0:50051".parse().unwrap_or(config.listen);
        assert!(config.validate().is_err());
        config.allow_development_secret = true;
        assert_eq!(config.validate(), Ok(()));
        config.allow_development_secret = false;
        config.jwt.jwt_secret = Some("a-real-secret-of-enough-length".into());
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn nonsense_is_refused_with_a_sentence() {
        let mut config = Config::with_database("mysql://nope");
        assert!(config.validate().is_err());
        config = Config::with_database("sqlite::memory:");
        config.max_members_per_organization = 0;
        assert!(config.validate().is_err());
        config = Config::with_database("sqlite::memory:");
        config.jwt.jwt_secret = Some("short".into());
        assert!(config.validate().is_err());
    }
}

/// TLS for the gRPC port. Without a certificate, roster serves plaintext
/// (fine on loopback or behind a TLS-terminating proxy).
#[derive(Debug, Clone, Args, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    #[arg(long, env = "ROSTER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server.
    #[arg(long, env = "ROSTER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): when set, clients must present a certificate
    /// signed by one of them (mutual TLS).
    #[arg(long, env = "ROSTER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Limits that keep the server responsive.
#[derive(Debug, Clone, Copy, Args, PartialEq, Eq)]
pub struct ServerLimits {
    /// The longest a call may run (a client's shorter `grpc-timeout` wins).
    #[arg(long, env = "ROSTER_RPC_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub rpc_timeout: Duration,
    /// Calls running at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "ROSTER_MAX_CONCURRENT_RPCS", default_value_t = 1024)]
    pub max_concurrent_rpcs: usize,
    /// Largest request or reply message, in bytes.
    #[arg(long, env = "ROSTER_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// HTTP/2 keepalive ping interval (0s: off).
    #[arg(long, env = "ROSTER_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, env = "ROSTER_HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            rpc_timeout: Duration::from_secs(30),
            max_concurrent_rpcs: 1024,
            max_message_bytes: 4 * 1024 * 1024,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
        }
    }
}

impl TlsConfig {
    /// The server's TLS settings, read from the files; `None` for plaintext.
    pub fn server_config(&self) -> Result<Option<tonic::transport::ServerTlsConfig>, ConfigError> {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path).map_err(|err| {
                ConfigError(format!(
                    "cannot read the TLS {what} {}: {err}",
                    path.display()
                ))
            })
        };
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            if self.tls_client_ca.is_some() {
                return Err(ConfigError(
                    "ROSTER_TLS_CLIENT_CA needs ROSTER_TLS_CERT and ROSTER_TLS_KEY".into(),
                ));
            }
            return Ok(None);
        };
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
            read(cert, "certificate")?,
            read(key, "key")?,
        ));
        if let Some(ca) = &self.tls_client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?));
        }
        Ok(Some(config))
    }
}
