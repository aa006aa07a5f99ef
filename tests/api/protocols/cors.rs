//! CORS: preflights for the configured origins are answered with what
//! gRPC-Web and Connect clients need; other origins get nothing; and with
//! no origins configured, CORS is off.

use reqwest::{Method, header::HeaderMap};
use serde_json::json;

use super::{Http, client, url};
use crate::helpers::{Backend, TestApp};

const PORTAL: &str = "https://portal.example.com";
const GET: &str = "/roster.v1.OrganizationService/GetOrganization";

async fn preflight(app: &TestApp, origin: &str) -> (reqwest::StatusCode, HeaderMap) {
    let reply = client(Http::One)
        .request(Method::OPTIONS, url(app, GET))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,connect-protocol-version,connect-timeout-ms,x-grpc-web,x-user-agent,grpc-timeout,x-request-id,traceparent,tracestate",
        )
        .send()
        .await
        .unwrap();
    (reply.status(), reply.headers().clone())
}

fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn preflights_from_configured_origins_are_allowed_and_others_refused() {
    let app = TestApp::spawn_with(&Backend::Sqlite, |c| {
        c.cors_origins = vec![PORTAL.into(), "http://localhost:3000".into()];
    })
    .await;
    let (status, headers) = preflight(&app, PORTAL).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(headers["access-control-allow-origin"], PORTAL);
    let allowed = list(&headers, "access-control-allow-headers");
    for header in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "connect-protocol-version",
        "connect-timeout-ms",
        "x-request-id",
        "traceparent",
        "tracestate",
    ] {
        assert!(
            allowed.contains(&header.to_owned()),
            "{header} not in {allowed:?}"
        );
    }
    assert!(list(&headers, "access-control-allow-methods").contains(&"post".to_owned()));

    let (_, headers) = preflight(&app, "https://evil.example.com").await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );

    // The call itself: the origin is allowed and the status headers exposed.
    let reply = client(Http::One)
        .post(url(&app, GET))
        .header("origin", PORTAL)
        .header("content-type", "application/json")
        .body(json!({"id": "x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    let headers = reply.headers();
    assert_eq!(headers["access-control-allow-origin"], PORTAL);
    let exposed = list(headers, "access-control-expose-headers");
    for header in [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "x-request-id",
    ] {
        assert!(
            exposed.contains(&header.to_owned()),
            "{header} not in {exposed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cors_is_off_by_default() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    assert!(app.config.cors_origins.is_empty());
    let (_, headers) = preflight(&app, PORTAL).await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );
    let reply = client(Http::One)
        .post(url(&app, GET))
        .header("origin", PORTAL)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(reply.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn an_origin_that_is_not_exact_stops_roster_at_start_with_a_sentence() {
    for value in [
        "https://portal.example.com/",
        "https://portal.example.com,*",
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .env_clear()
            .env("ROSTER_CORS_ORIGINS", value)
            .env("DATABASE_URL", "sqlite::memory:")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("roster: configuration error: --cors-origins: "),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
