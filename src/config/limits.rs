//! Limits that keep the server responsive: deadlines, concurrency, message
//! sizes, event streams, keepalive, connections.

use std::time::Duration;

use clap::{Args, builder::RangedU64ValueParser};

use super::{defaults, parse::positive_duration};

/// Limits that keep the server responsive.
#[derive(Debug, Clone, Copy, Args, PartialEq, Eq)]
pub struct ServerLimits {
    /// The longest a call may run (a client's shorter `grpc-timeout` wins).
    #[arg(long, env = "ROSTER_RPC_TIMEOUT", default_value = defaults::RPC_TIMEOUT,
          value_parser = positive_duration)]
    pub rpc_timeout: Duration,
    /// Calls running at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "ROSTER_MAX_CONCURRENT_RPCS", default_value_t = defaults::MAX_CONCURRENT_RPCS,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_concurrent_rpcs: usize,
    /// Largest request or reply message, in bytes (at least 1024).
    #[arg(long, env = "ROSTER_MAX_MESSAGE_BYTES", default_value_t = defaults::MAX_MESSAGE_BYTES,
          value_parser = RangedU64ValueParser::<usize>::new().range(defaults::MIN_MESSAGE_BYTES..))]
    pub max_message_bytes: usize,
    /// `StreamEvents` open at once; one more is refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "ROSTER_MAX_EVENT_STREAMS", default_value_t = defaults::MAX_EVENT_STREAMS,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=defaults::EVENT_STREAMS_UPPER_BOUND))]
    pub max_event_streams: usize,
    /// Events a following `StreamEvents` may hold for a client that does not
    /// read; past that the stream is ended (ABORTED), and the client resumes
    /// from its last cursor.
    #[arg(long, env = "ROSTER_EVENT_STREAM_BUFFER", default_value_t = defaults::EVENT_STREAM_BUFFER,
          value_parser = RangedU64ValueParser::<usize>::new()
              .range(defaults::MIN_EVENT_STREAM_BUFFER..=defaults::EVENT_STREAM_BUFFER_UPPER_BOUND))]
    pub event_stream_buffer: usize,
    /// HTTP/2 keepalive ping interval (0s: off).
    #[arg(long, env = "ROSTER_HTTP2_KEEPALIVE_INTERVAL", default_value = defaults::HTTP2_KEEPALIVE_INTERVAL,
          value_parser = humantime::parse_duration)]
    pub http2_keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, env = "ROSTER_HTTP2_KEEPALIVE_TIMEOUT", default_value = defaults::HTTP2_KEEPALIVE_TIMEOUT,
          value_parser = positive_duration)]
    pub http2_keepalive_timeout: Duration,
    /// How long a new connection has to complete its handshake (TLS, when
    /// configured, then the HTTP/2 preface or an HTTP/1 request head);
    /// a connection that has not is closed.
    #[arg(long, env = "ROSTER_HANDSHAKE_TIMEOUT", default_value = defaults::HANDSHAKE_TIMEOUT,
          value_parser = positive_duration)]
    pub handshake_timeout: Duration,
    /// Connections open at once; further ones wait in the listen backlog
    /// until one closes. Unset: the descriptor limit (`ulimit -n`) less
    /// 128 for the database and the rest, at most 10000.
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: Option<usize>,
}

impl ServerLimits {
    /// The connection cap in force: `max_connections`, or one that fits the
    /// descriptor limit.
    pub fn connection_cap(&self) -> usize {
        self.max_connections
            .unwrap_or_else(|| default_connection_cap(descriptor_limit()))
    }
}

/// The soft limit on open descriptors, if the system says.
fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The cap that leaves [`defaults::RESERVED_DESCRIPTORS`] of `limit` for
/// everything that is not a client connection (at least half of it goes to
/// connections), at most [`defaults::MAX_CONNECTIONS`].
fn default_connection_cap(limit: Option<u64>) -> usize {
    let Some(limit) = limit.and_then(|l| usize::try_from(l).ok()) else {
        return defaults::MAX_CONNECTIONS;
    };
    limit
        .saturating_sub(defaults::RESERVED_DESCRIPTORS)
        .max(limit / 2)
        .clamp(1, defaults::MAX_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_connection_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(default_connection_cap(Some(1024)), 896);
        assert_eq!(default_connection_cap(Some(128)), 64);
        assert_eq!(default_connection_cap(Some(1_048_576)), 10_000);
        assert_eq!(default_connection_cap(None), 10_000);
        assert_eq!(default_connection_cap(Some(1)), 1);
    }
}
