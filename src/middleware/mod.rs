//! Tower layers every call passes through, outside in (after CORS and
//! gRPC-Web, and with Connect between observe and protect: see
//! `crate::transport`):
//!
//! 1. [`observe`]: a request id, one tracing span per RPC (method, caller,
//!    organization, status code, latency) and the RPC metrics.
//! 2. [`protect`]: refuses new calls while shutting down, sheds load beyond
//!    the concurrency limit with `RESOURCE_EXHAUSTED`, and enforces the
//!    per-RPC deadline.
//! 3. `auth::layer`: the bearer token.

pub mod observe;
pub mod protect;

/// The `package.Service` and `Method` of a gRPC path (`/package.Service/Method`).
pub(crate) fn split_path(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", "unknown"))
}
