//! CORS for the origins in `--cors-origins`: what a browser page on one of
//! them needs to call roster with gRPC-Web or Connect.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::middleware::observe::REQUEST_ID;

/// The request headers gRPC-Web and Connect clients send,
/// and the W3C trace context a traced page adds.
const ALLOWED_HEADERS: [&str; 10] = [
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "connect-protocol-version",
    "connect-timeout-ms",
    REQUEST_ID,
    "traceparent",
    "tracestate",
];

/// The reply headers a browser script may read: gRPC-Web's status when it
/// comes as headers (a trailers-only reply) and the request id.
const EXPOSED_HEADERS: [&str; 4] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    REQUEST_ID,
];

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// The CORS layer for `origins`, or `None` (CORS off) when there are none.
pub fn layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            // Every gRPC-Web and Connect unary call is a POST.
            .allow_methods([Method::POST])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
