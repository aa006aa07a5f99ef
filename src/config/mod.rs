//! One typed configuration, from flags or `ROSTER_*` environment variables
//! (and `DATABASE_URL`), parsed once. The defaults (all in [`defaults`]) run
//! against an embedded SQLite file, so `cargo run` gives a working service
//! on a fresh checkout.
//!
//! Bounds on single values (a limit of at least 1, a positive interval) are
//! clap value parsers, so a bad flag or variable is refused while parsing,
//! naming itself; [`Config::validate`] checks the rest and returns the
//! [`Ready`] parts (token verifier, mailer, TLS) the server runs with.

mod cors;
pub mod defaults;
mod jwt;
mod limits;
mod otel;
mod parse;
mod provider_portal;
mod smtp;
mod tls;
mod validate;

use std::{net::SocketAddr, time::Duration};

use clap::{Args, CommandFactory as _, FromArgMatches, Parser, ValueEnum};

use self::parse::{positive_duration, retention_duration};
pub use self::{
    jwt::JwtConfig,
    limits::ServerLimits,
    otel::OtelConfig,
    provider_portal::ProviderPortalConfig,
    smtp::SmtpConfig,
    tls::TlsConfig,
    validate::{ConfigError, Ready},
};
use crate::{
    domain::link::InvitationLinks,
    service::{Limits, Settings, StreamLimits},
};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Everything `roster serve` needs.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "ROSTER_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,
    /// `sqlite://path?mode=rwc` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = defaults::DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Most database connections in the pool.
    #[arg(long, env = "ROSTER_DATABASE_MAX_CONNECTIONS", default_value_t = defaults::DATABASE_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub database_max_connections: u32,
    /// SQLite only: how long a write waits for the database file's lock
    /// while another process (`roster import`, a second server on the same
    /// file) holds it, before the call fails as unavailable. roster's own
    /// writes queue for its one writer connection and never wait here.
    #[arg(long, env = "ROSTER_SQLITE_BUSY_TIMEOUT", default_value = defaults::SQLITE_BUSY_TIMEOUT,
          value_parser = positive_duration)]
    pub sqlite_busy_timeout: Duration,
    #[command(flatten)]
    pub jwt: JwtConfig,
    /// Accept the built-in development JWT secret on a non-loopback address.
    /// Anyone can mint tokens with it: never in production.
    #[arg(long, env = "ROSTER_ALLOW_DEVELOPMENT_SECRET")]
    pub allow_development_secret: bool,
    /// The portal's base URL; invitation links are `<portal-url>/invitations/<id>`.
    #[arg(long, env = "ROSTER_PORTAL_URL", default_value = defaults::PORTAL_URL)]
    pub portal_url: String,
    /// Where invitation links point: an http(s) URL with `{id}` exactly
    /// once, e.g. `https://portal.example.com/auth/accept-invitation?invitationId={id}`.
    /// Unset: `<portal-url>/invitations/{id}`.
    #[arg(long, env = "ROSTER_INVITATION_LINK_TEMPLATE")]
    pub invitation_link_template: Option<String>,
    /// How long invitations stay open (e.g. `7d`, `36h`).
    #[arg(long, env = "ROSTER_INVITATION_TTL", default_value = defaults::INVITATION_TTL,
          value_parser = positive_duration)]
    pub invitation_ttl: Duration,
    /// After a slug rename, how long the old slug keeps resolving to the
    /// organization (and no other organization may take it), e.g. `30d`.
    #[arg(long, env = "ROSTER_OLD_SLUG_TTL", default_value = defaults::OLD_SLUG_TTL,
          value_parser = positive_duration)]
    pub old_slug_ttl: Duration,
    /// How long a deleted organization can be restored by its owners or an
    /// administrator before it is purged for good, e.g. `30d` (at most `3650d`).
    #[arg(long, env = "ROSTER_DELETED_ORGANIZATION_RETENTION",
          default_value = defaults::DELETED_ORGANIZATION_RETENTION,
          value_parser = retention_duration)]
    pub deleted_organization_retention: Duration,
    /// Organizations one user may own.
    #[arg(long, env = "ROSTER_MAX_OWNED_ORGANIZATIONS", default_value_t = defaults::MAX_OWNED_ORGANIZATIONS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_owned_organizations: u64,
    /// Seats per organization: members plus pending invitations.
    #[arg(long, env = "ROSTER_MAX_MEMBERS_PER_ORGANIZATION", default_value_t = defaults::MAX_MEMBERS_PER_ORGANIZATION,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_members_per_organization: u64,
    /// Pending invitations per organization.
    #[arg(long, env = "ROSTER_MAX_PENDING_INVITATIONS_PER_ORGANIZATION",
          default_value_t = defaults::MAX_PENDING_INVITATIONS_PER_ORGANIZATION,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending_invitations_per_organization: u64,
    /// Log output: `pretty` or `json`. The level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub otel: OtelConfig,
    #[command(flatten)]
    pub smtp: SmtpConfig,
    /// How often the email outbox is checked for due retries (new emails are sent at once).
    #[arg(long, env = "ROSTER_MAIL_POLL_INTERVAL", default_value = defaults::MAIL_POLL_INTERVAL,
          value_parser = positive_duration)]
    pub mail_poll_interval: Duration,
    /// The longest one attempt at sending an email may take; the outbox
    /// lease on an email outlives it, so a slow SMTP server never makes two
    /// replicas send one email.
    #[arg(long, env = "ROSTER_MAIL_ATTEMPT_TIMEOUT", default_value = defaults::MAIL_ATTEMPT_TIMEOUT,
          value_parser = positive_duration)]
    pub mail_attempt_timeout: Duration,
    #[command(flatten)]
    pub provider_portal: ProviderPortalConfig,
    /// Most memberships kept in the permission-check cache (memory bound).
    #[arg(long, env = "ROSTER_AUTHZ_CACHE_CAPACITY", default_value_t = defaults::AUTHZ_CACHE_CAPACITY,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub authz_cache_capacity: u64,
    /// Bytes of verified bearer tokens (with their claims) remembered, so a
    /// token sent again is not verified again; the least used are dropped
    /// first (at least 65536).
    #[arg(long, env = "ROSTER_TOKEN_CACHE_BYTES", default_value_t = defaults::TOKEN_CACHE_BYTES,
          value_parser = clap::value_parser!(u64).range(defaults::MIN_TOKEN_CACHE_BYTES..))]
    pub token_cache_bytes: u64,
    /// The worst-case staleness of cached reads (permission checks without a
    /// revision, read authorization, GetOrganization): the cache is used only
    /// while its follower has confirmed, this recently, that it applied every
    /// committed change; otherwise reads go to the database. Changes normally
    /// arrive within milliseconds.
    #[arg(long, env = "ROSTER_AUTHZ_MAX_STALENESS", default_value = defaults::AUTHZ_MAX_STALENESS,
          value_parser = positive_duration)]
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
    #[arg(long, env = "ROSTER_HEALTH_CHECK_INTERVAL", default_value = defaults::HEALTH_CHECK_INTERVAL,
          value_parser = positive_duration)]
    pub health_check_interval: Duration,
    /// On SIGTERM or Ctrl-C, how long calls in flight may take to finish
    /// before the server stops anyway.
    #[arg(long, env = "ROSTER_SHUTDOWN_GRACE", default_value = defaults::SHUTDOWN_GRACE,
          value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// How often lapsed invitations are marked expired (and `invitation.expired`
    /// recorded), and old slugs past `--old-slug-ttl` are purged.
    #[arg(long, env = "ROSTER_EXPIRY_SWEEP_INTERVAL", default_value = defaults::EXPIRY_SWEEP_INTERVAL,
          value_parser = positive_duration)]
    pub expiry_sweep_interval: Duration,
    /// Browser origins allowed to call roster (CORS), comma-separated and
    /// exact (`https://portal.example.com`); none when unset, and then
    /// browsers on other origins cannot call roster.
    #[arg(long, env = "ROSTER_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

/// Parses [`Config`] alone, as `roster serve` would, from `args` (no
/// program name) and nothing else: the environment is not read.
#[derive(Debug, Parser)]
#[command(name = "roster")]
struct Standalone {
    #[command(flatten)]
    config: Config,
}

/// The definition of [`Standalone`] with every `env = ...` removed.
fn without_environment() -> clap::Command {
    Standalone::command().mut_args(|arg| arg.env(None))
}

impl Config {
    /// The configuration `args` describe, read as the flags of `roster
    /// serve` but without the environment (tests and tools build their
    /// configuration this way, whatever the shell has set).
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = without_environment().try_get_matches_from(
            std::iter::once(std::ffi::OsString::from("roster"))
                .chain(args.into_iter().map(Into::into)),
        )?;
        Ok(Standalone::from_arg_matches(&matches)?.config)
    }

    /// The defaults, on `database_url` and an ephemeral loopback port,
    /// without reading the environment.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        // Only the defaults are parsed here, and they are constants: the
        // test `the_defaults_parse` proves that they do.
        #[allow(clippy::expect_used)]
        let mut config = Self::parse_args(["--listen", "127.0.0.1:0"])
            .expect("the default configuration parses");
        config.database_url = database_url.into();
        config
    }

    /// `invitation_links` is what [`Config::validate`] made of the link settings.
    pub fn settings(&self, invitation_links: InvitationLinks) -> Settings {
        Settings {
            limits: Limits {
                max_owned_organizations: self.max_owned_organizations,
                max_members_per_organization: self.max_members_per_organization,
                max_pending_invitations_per_organization: self
                    .max_pending_invitations_per_organization,
            },
            invitation_ttl: self.invitation_ttl,
            old_slug_ttl: self.old_slug_ttl,
            deleted_organization_retention: self.deleted_organization_retention,
            invitation_links,
            cache_capacity: self.authz_cache_capacity,
            max_staleness: self.authz_max_staleness,
            identity_create_wait: self.provider_portal.provider_portal_create_wait,
            event_streams: StreamLimits {
                max_streams: self.limits.max_event_streams,
                buffer: self.limits.event_stream_buffer,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_parse() {
        let config = Config::parse_args::<_, &str>([]).unwrap();
        assert_eq!(config.listen, defaults::LISTEN.parse().unwrap());
        assert_eq!(config.database_url, defaults::DATABASE_URL);
        assert_eq!(config.invitation_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(config.old_slug_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(
            config.deleted_organization_retention,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(config.limits.rpc_timeout, Duration::from_secs(30));
        assert_eq!(
            config.max_owned_organizations,
            defaults::MAX_OWNED_ORGANIZATIONS
        );
        assert_eq!(
            config.sqlite_busy_timeout,
            crate::store::SQLITE_BUSY_TIMEOUT
        );
        assert!(config.validate().is_ok());
        let test = Config::with_database("sqlite::memory:");
        assert_eq!(test.listen.port(), 0);
        assert_eq!(test.database_url, "sqlite::memory:");
    }

    #[test]
    fn the_development_secret_is_refused_off_loopback() {
        let mut config = Config::with_database("sqlite::memory:");
        assert!(config.validate().is_ok());
        config.listen = "0.0.0.0:50051".parse().unwrap();
        assert!(config.validate().is_err());
        config.allow_development_secret = true;
        assert!(config.validate().is_ok());
        config.allow_development_secret = false;
        config.jwt.jwt_secret = Some("a-real-secret-of-enough-length".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_jwks_needs_an_audience_or_the_explicit_choice_of_any() {
        let jwks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks.json");
        let refused = Config::parse_args(["--jwt-jwks-file", jwks]).unwrap();
        let error = refused.validate().unwrap_err();
        assert!(error.0.contains("ROSTER_JWT_AUDIENCE"), "{error}");
        assert!(error.0.contains("ROSTER_JWT_ANY_AUDIENCE=true"), "{error}");
        let url = Config::parse_args(["--jwks-url", "https://id.example.com/jwks"]).unwrap();
        assert_eq!(url.validate().unwrap_err(), error);

        let with_audience =
            Config::parse_args(["--jwt-jwks-file", jwks, "--jwt-audience", "roster"]).unwrap();
        assert!(with_audience.validate().is_ok());
        assert!(!with_audience.jwt.accepts_any_audience());
        let any = Config::parse_args(["--jwt-jwks-file", jwks, "--jwt-any-audience"]).unwrap();
        assert!(any.validate().is_ok());
        assert!(any.jwt.accepts_any_audience());
        // Both at once say two things: clap refuses them.
        assert!(Config::parse_args(["--jwt-audience", "roster", "--jwt-any-audience"]).is_err());
        // The HS256 secret is roster's own: no audience needed.
        let secret =
            Config::parse_args(["--jwt-secret", "a-real-secret-of-enough-length"]).unwrap();
        assert!(secret.validate().is_ok());
    }

    #[test]
    fn nonsense_is_refused_with_a_sentence() {
        for (config, why) in [
            (Config::with_database("mysql://nope"), "DATABASE_URL"),
            (
                Config {
                    portal_url: "ftp://portal.example.com".into(),
                    ..Config::with_database("sqlite::memory:")
                },
                "--portal-url",
            ),
            (
                Config {
                    jwt: JwtConfig {
                        jwt_secret: Some("short".into()),
                        ..Config::with_database("sqlite::memory:").jwt
                    },
                    ..Config::with_database("sqlite::memory:")
                },
                "at least 16 bytes",
            ),
            (
                Config {
                    smtp: SmtpConfig {
                        smtp_host: Some("smtp.example.com".into()),
                        smtp_username: Some("roster".into()),
                        ..Config::with_database("sqlite::memory:").smtp
                    },
                    ..Config::with_database("sqlite::memory:")
                },
                "ROSTER_SMTP_PASSWORD",
            ),
        ] {
            let error = config.validate().unwrap_err();
            assert!(error.0.contains(why), "{error} should mention {why}");
        }
    }

    #[test]
    fn single_values_out_of_bounds_are_refused_while_parsing_naming_the_flag() {
        for (flag, value) in [
            ("--database-max-connections", "0"),
            ("--max-owned-organizations", "0"),
            ("--max-members-per-organization", "0"),
            ("--max-pending-invitations-per-organization", "0"),
            ("--authz-cache-capacity", "0"),
            ("--max-concurrent-rpcs", "0"),
            ("--max-message-bytes", "1023"),
            ("--max-event-streams", "0"),
            ("--max-event-streams", "1000001"),
            ("--event-stream-buffer", "99"),
            ("--smtp-port", "0"),
            ("--invitation-ttl", "0s"),
            ("--old-slug-ttl", "0s"),
            ("--old-slug-ttl", "a month"),
            ("--mail-poll-interval", "0s"),
            ("--expiry-sweep-interval", "0s"),
            ("--authz-max-staleness", "0s"),
            ("--rpc-timeout", "0s"),
            ("--health-check-interval", "0s"),
            ("--http2-keepalive-timeout", "0s"),
            ("--invitation-ttl", "a week"),
        ] {
            let error = Config::parse_args([flag, value]).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{flag} {value}"
            );
            assert!(error.to_string().contains(flag), "{error}");
        }
        // The edges themselves are fine, and so are the durations that may be zero.
        Config::parse_args([
            "--max-message-bytes",
            "1024",
            "--max-event-streams",
            "1",
            "--event-stream-buffer",
            "100",
            "--database-max-connections",
            "1",
            "--http2-keepalive-interval",
            "0s",
            "--shutdown-grace",
            "0s",
        ])
        .unwrap();
    }

    #[test]
    fn the_environment_is_not_read_by_parse_args() {
        // `parse_args` removes every `env` from the definition; a variable
        // set in the shell that runs the tests cannot reach it.
        assert!(
            without_environment()
                .get_arguments()
                .all(|arg| arg.get_env().is_none())
        );
        assert!(
            Standalone::command()
                .get_arguments()
                .any(|arg| arg.get_env().is_some())
        );
    }
}
