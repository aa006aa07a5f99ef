//! Limits that keep the server responsive: deadlines, concurrency, message
//! sizes, event streams, keepalive.

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
}
