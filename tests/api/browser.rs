//! roster called from a real browser: headless Chromium (Debian's
//! `chromium`, driven by playwright-core from tests/browser, which never
//! downloads a browser) loads a page this test serves on one loopback
//! origin, and the page's script, roster's TypeScript client
//! (clients/typescript), calls roster on another origin with Connect JSON
//! (fetch, so CORS preflights and all) as two people: the steps of the
//! portal's organization pages.
//!
//! Built to run when `ROSTER_TEST_NODE` is set (as the import tests); then
//! it needs Chromium (`apt-get install chromium`, or `ROSTER_TEST_CHROMIUM`),
//! `npm ci --prefix tests/browser` and `npm ci --prefix clients/typescript`,
//! and fails without them.

use std::{path::Path, process::Command};

use axum::{Router, response::Html, routing::get};
use roster::pb;
use serde_json::Value;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, test_node},
};

backend_tests!(
    needs(browser_tests, "ROSTER_TEST_NODE was not set when the tests were built");
    a_page_in_chromium_manages_an_organization_through_connect,
);

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/typescript");
const PAGE: &str = include_str!("../browser/page.html");

/// The Chromium the test drives: `ROSTER_TEST_CHROMIUM`, or Debian's.
fn chromium() -> String {
    let path = std::env::var("ROSTER_TEST_CHROMIUM")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&path).exists(),
        "the browser test needs Chromium at {path}: apt-get install chromium \
         (or set ROSTER_TEST_CHROMIUM; unset ROSTER_TEST_NODE and rebuild to skip it)"
    );
    for (dir, package) in [
        (BROWSER_DIR, "playwright-core"),
        (CLIENT_DIR, "@connectrpc/connect-web"),
    ] {
        assert!(
            Path::new(dir).join("node_modules").join(package).exists(),
            "the browser test needs {package}: npm ci --prefix {dir}"
        );
    }
    path
}

/// `node run.mjs <args>` in tests/browser; its stdout, or a panic with
/// everything it printed.
fn run_node(args: &[&str], chromium: &str) -> String {
    let output = tokio::task::block_in_place(|| {
        Command::new(test_node())
            .arg(Path::new(BROWSER_DIR).join("run.mjs"))
            .args(args)
            .env("ROSTER_TEST_CHROMIUM", chromium)
            .output()
            .expect("run node")
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "node run.mjs {} failed ({}):\n{stdout}\n{}",
        args.first().unwrap_or(&""),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Serves the page, with `script` as its `/page.js`, on an ephemeral
/// loopback port; returns its origin.
async fn serve_page(script: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let page_js = move || {
        let script = script.clone();
        async move { ([(http::header::CONTENT_TYPE, "text/javascript")], script) }
    };
    let router = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/page.js", get(page_js));
    tokio::spawn(async move { axum::serve(listener, router).await });
    origin
}

async fn a_page_in_chromium_manages_an_organization_through_connect(backend: Backend) {
    let chromium = chromium();
    let origin = serve_page(run_node(&["bundle"], &chromium)).await;
    let app = TestApp::spawn_with(&backend, |config| {
        config.cors_origins = vec![origin.clone()];
    })
    .await;
    let url = format!(
        "{origin}/#roster=http://{}&alice={}&bob={}",
        app.address(),
        app.token("alice"),
        app.token("bob"),
    );
    let stdout = run_node(&["open", &url], &chromium);
    let outcome: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"));

    // What the page saw, step by step.
    let org = &outcome["organization"];
    assert_eq!(org["name"], "Browser Co", "{outcome}");
    assert_eq!(org["slug"], "browser-co");
    let org_id = org["id"].as_str().unwrap().to_owned();
    assert!(
        outcome["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "the exposed x-request-id is readable from script: {outcome}"
    );
    assert_eq!(outcome["invitationState"], "PENDING");
    let members = outcome["members"].as_array().unwrap();
    let roles: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m["userId"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles.len(), 2, "{outcome}");
    assert!(roles.contains(&("alice", "OWNER")), "{roles:?}");
    assert!(roles.contains(&("bob", "MEMBER")), "{roles:?}");
    for member in members {
        let joined = member["joinTime"].as_str().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(joined)
            .unwrap_or_else(|err| panic!("join time {joined:?}: {err}"));
        assert_eq!(member["organizationId"], org_id.as_str());
    }
    assert_eq!(
        outcome["refused"], "PermissionDenied",
        "a member removing the owner: {outcome}"
    );
    assert_eq!(outcome["promoted"]["role"], "ADMIN");
    let after: Vec<&str> = outcome["after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert_eq!(after, ["alice"]);

    // And roster agrees, over gRPC.
    assert_eq!(
        app.role_of("alice", &org_id, "alice").await,
        Some(pb::Role::Owner)
    );
    assert_eq!(app.role_of("alice", &org_id, "bob").await, None);
}
