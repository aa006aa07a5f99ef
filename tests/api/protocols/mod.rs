//! The protocols besides gRPC on the same port, called with a plain HTTP
//! client (reqwest) as browsers and curl would: gRPC-Web, Connect, CORS,
//! and the OpenAPI description of the Connect JSON surface.

mod connect;
mod cors;
mod grpc_web;
mod observed;
mod openapi;

use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestApp;

/// Which HTTP the client speaks.
#[derive(Debug, Clone, Copy)]
pub enum Http {
    One,
    Two,
}

/// A plain HTTP client for `http`: HTTP/1.1 only, or HTTP/2 with prior
/// knowledge (no TLS, so no ALPN), as gRPC clients do.
pub fn client(http: Http) -> reqwest::Client {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(20));
    match http {
        Http::One => builder.http1_only(),
        Http::Two => builder.http2_prior_knowledge(),
    }
    .build()
    .unwrap()
}

pub fn url(app: &TestApp, path: &str) -> String {
    format!("http://{}{path}", app.address())
}

/// A Connect JSON call: the HTTP status and the JSON reply.
pub async fn connect_json(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (reqwest::StatusCode, Value) {
    let mut request = client(Http::One)
        .post(url(app, path))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status();
    let text = reply.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text:?}"));
    (status, json)
}
