//! Every default of roster's configuration, once. The clap attributes in
//! this module's siblings name these constants, [`super::Config::with_database`]
//! gets its values by parsing an empty command line against those
//! attributes, and `roster bench` starts its server with the same ones: no
//! default is written down twice.
//!
//! Durations are written as `humantime` strings, the form the flags take.

pub const LISTEN: &str = "127.0.0.1:50051";
pub const DATABASE_URL: &str = "sqlite://data/roster.db?mode=rwc";
pub const DATABASE_MAX_CONNECTIONS: u32 = 10;
/// The same as `store::SQLITE_BUSY_TIMEOUT`, which the tools use.
pub const SQLITE_BUSY_TIMEOUT: &str = "30s";

/// `service.name` of exported spans.
pub const OTEL_SERVICE_NAME: &str = "roster";

pub const PORTAL_URL: &str = "http://localhost:3000";
pub const INVITATION_TTL: &str = "7d";
pub const OLD_SLUG_TTL: &str = "30d";
pub const DELETED_ORGANIZATION_RETENTION: &str = "30d";
pub const MAX_OWNED_ORGANIZATIONS: u64 = 10;
pub const MAX_MEMBERS_PER_ORGANIZATION: u64 = 100;
pub const MAX_PENDING_INVITATIONS_PER_ORGANIZATION: u64 = 100;

pub const SMTP_PORT: u16 = 587;
pub const SMTP_FROM: &str = "Developer Portal <no-reply@localhost>";
pub const MAIL_POLL_INTERVAL: &str = "5s";
pub const EXPIRY_SWEEP_INTERVAL: &str = "60s";

pub const AUTHZ_CACHE_CAPACITY: u64 = 200_000;
pub const AUTHZ_MAX_STALENESS: &str = "2s";
/// 16 MiB: about 40,000 typical tokens (a few hundred bytes each), or
/// 1,500 tokens of 10 KB.
pub const TOKEN_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Below this, even one large token would not fit.
pub const MIN_TOKEN_CACHE_BYTES: u64 = 64 * 1024;

pub const JWKS_REFRESH_INTERVAL: &str = "5m";
pub const JWKS_MIN_REFRESH_INTERVAL: &str = "30s";

pub const RPC_TIMEOUT: &str = "30s";
pub const MAX_CONCURRENT_RPCS: usize = 1024;
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// The smallest `--max-message-bytes` roster accepts: below it, ordinary
/// replies (a page of members) no longer fit.
pub const MIN_MESSAGE_BYTES: u64 = 1024;
pub const MAX_EVENT_STREAMS: usize = 1_000;
/// Beyond any one process's means: a limit this high is a typo.
pub const EVENT_STREAMS_UPPER_BOUND: u64 = 1_000_000;
/// 10,000 events: a few MB at most, shared by all streams (they buffer the
/// same recent events), and well above what the change log's bursts write.
pub const EVENT_STREAM_BUFFER: usize = 10_000;
/// Below this, an ordinary batch of commits could end every stream.
pub const MIN_EVENT_STREAM_BUFFER: u64 = 100;
pub const EVENT_STREAM_BUFFER_UPPER_BOUND: u64 = 10_000_000;
pub const HTTP2_KEEPALIVE_INTERVAL: &str = "30s";
pub const HTTP2_KEEPALIVE_TIMEOUT: &str = "10s";

pub const HEALTH_CHECK_INTERVAL: &str = "5s";
pub const SHUTDOWN_GRACE: &str = "20s";
pub const MAIL_ATTEMPT_TIMEOUT: &str = "60s";

pub const PROVIDER_PORTAL_TIMEOUT: &str = "10s";
pub const PROVIDER_PORTAL_CREATE_WAIT: &str = "3s";
pub const PROVIDER_PORTAL_POLL_INTERVAL: &str = "2s";
pub const PROVIDER_PORTAL_MAX_BACKOFF: &str = "5m";
pub const PROVIDER_PORTAL_RECONCILE_INTERVAL: &str = "5m";

pub const HANDSHAKE_TIMEOUT: &str = "10s";
/// The default connection cap when the descriptor limit is unknown or high.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Descriptors kept back from the connection cap for everything else
/// roster opens: database connections, SMTP, HTTP clients, files.
pub const RESERVED_DESCRIPTORS: usize = 128;
