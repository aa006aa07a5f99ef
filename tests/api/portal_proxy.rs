//! The portal backend's proxy example (examples/portal-proxy), run with
//! Node between a real `roster` binary and the fake Provider Portal: it
//! forwards a request on `/{slug}/applications...` only when roster's
//! CheckPermission, asked with the caller's own token, allows it, with the
//! organization's developer id in `X-Portal-Developer-ID`; and it refuses
//! as the portal does (401, 404, 403 "read-only", 503 while roster is
//! down) without the Provider Portal seeing anything.
//!
//! Built to run when `ROSTER_TEST_NODE` is set (as the browser test); then
//! it needs `npm ci --prefix examples/portal-proxy` and `npm ci --prefix
//! clients/typescript`, and fails without them. The test bundles the
//! proxy itself (esbuild), so it always runs the source as it is.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use roster::pb::{
    self, membership_service_client::MembershipServiceClient,
    organization_service_client::OrganizationServiceClient,
};
use roster_spawn::{Server, Spawn};
use serde_json::Value;
use tonic::transport::Channel;

use crate::{
    backend_tests,
    fake_portal::{self, FakePortal, ResourceRequest},
    helpers::{Backend, TestDb, test_node},
    production::{as_user, user_token},
};

backend_tests!(
    needs(portal_proxy_tests, "ROSTER_TEST_NODE was not set when the tests were built");
    the_proxy_forwards_what_roster_allows_and_refuses_the_rest,
);

const EXAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/portal-proxy");
const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/typescript");

/// The proxy bundled into one script (`node build.mjs <file>`), once per
/// test process.
fn proxy_script() -> &'static Path {
    static SCRIPT: OnceLock<std::path::PathBuf> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        for (dir, package) in [
            (EXAMPLE_DIR, "@connectrpc/connect-node"),
            (CLIENT_DIR, "@connectrpc/connect-web"),
        ] {
            assert!(
                Path::new(dir).join("node_modules").join(package).exists(),
                "the portal proxy test needs {package}: npm ci --prefix {dir}"
            );
        }
        let script = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("portal-proxy-{}.mjs", std::process::id()));
        let output = Command::new(test_node())
            .arg("build.mjs")
            .arg(&script)
            .current_dir(EXAMPLE_DIR)
            .output()
            .expect("run node build.mjs");
        assert!(
            output.status.success(),
            "node build.mjs failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        script
    })
}

/// `node proxy.mjs`, listening on the port it printed; killed when dropped.
struct Proxy {
    child: Child,
    url: String,
}

impl Proxy {
    fn start(roster: &Server, upstream: &FakePortal) -> Proxy {
        let mut child = Command::new(test_node())
            .arg(proxy_script())
            .env("ROSTER_URL", format!("http://{}", roster.address()))
            .env("UPSTREAM_URL", upstream.url())
            .env("UPSTREAM_TOKEN", fake_portal::TOKEN)
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the proxy's port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the proxy printed {line:?}, not its port"));
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `method path` through the proxy, with `token` as the bearer token
    /// and `body` as JSON; the status and the body.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .timeout(Duration::from_secs(20));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let reply = request.send().await.expect("the proxy answers");
        let status = reply.status().as_u16();
        (status, reply.text().await.unwrap())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The one request the Provider Portal received since it had `before`.
#[track_caller]
fn only_new(upstream: &FakePortal, before: usize) -> ResourceRequest {
    let seen = upstream.resource_requests();
    assert_eq!(seen.len(), before + 1, "{seen:#?}");
    seen.into_iter().next_back().unwrap()
}

async fn the_proxy_forwards_what_roster_allows_and_refuses_the_rest(backend: Backend) {
    let script = tokio::task::block_in_place(proxy_script);
    assert!(script.exists());
    let upstream = FakePortal::start().await;
    let (database_url, _database) = TestDb::create(&backend).await;
    let mut roster = Spawn::new(env!("CARGO_BIN_EXE_roster"))
        .args(["--database-url", &database_url])
        .args(["--provider-portal-url", &upstream.url()])
        .args(["--provider-portal-token", fake_portal::TOKEN])
        .start(Duration::from_secs(60))
        .unwrap_or_else(|err| panic!("{err}"));
    let channel = Channel::from_shared(format!("http://{}", roster.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut orgs = OrganizationServiceClient::new(channel.clone());
    let mut members = MembershipServiceClient::new(channel);

    // Alice owns Acme, whose developer the Provider Portal has; Bob is a
    // member; Carol is in no organization.
    let acme = orgs
        .create_organization(as_user(
            "alice",
            pb::CreateOrganizationRequest {
                name: "Acme".into(),
                slug: "acme".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    // CreateOrganization waits a while for the identity; on a slow machine
    // it may answer first.
    for _ in 0..200 {
        if !upstream.developer_ids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        upstream.developer_ids(),
        std::slice::from_ref(&acme.developer_id)
    );
    let invitation = members
        .create_invitation(as_user(
            "alice",
            pb::CreateInvitationRequest {
                organization_id: acme.id.clone(),
                email: "bob@example.com".into(),
                role: pb::Role::Member.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    members
        .accept_invitation(as_user(
            "bob",
            pb::AcceptInvitationRequest { id: invitation.id },
        ))
        .await
        .unwrap();
    let (alice, bob, carol) = (user_token("alice"), user_token("bob"), user_token("carol"));
    let bogus = "not-a-jwt".to_owned();

    let proxy = Proxy::start(&roster, &upstream);

    // The owner reads: forwarded without the slug, with Acme's developer
    // id and the portal's token (never Alice's), and the answer streamed back.
    let (status, body) = proxy
        .call("GET", "/acme/applications?page=2", Some(&alice), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["path"], "/api/applications?page=2", "{echo}");
    let seen = only_new(&upstream, 0);
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/api/applications?page=2")
    );
    assert_eq!(
        seen.header("x-portal-developer-id"),
        Some(acme.developer_id.as_str())
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {}", fake_portal::TOKEN).as_str())
    );

    // The owner creates a credential: forwarded with its body.
    let credential = r#"{"name":"ci key"}"#;
    let (status, body) = proxy
        .call(
            "POST",
            "/acme/applications/app-1/credentials",
            Some(&alice),
            Some(credential),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let seen = only_new(&upstream, 1);
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/api/applications/app-1/credentials")
    );
    assert_eq!(
        seen.header("x-portal-developer-id"),
        Some(acme.developer_id.as_str())
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.body, credential.as_bytes());

    // A member reads: forwarded.
    let (status, body) = proxy
        .call("GET", "/acme/subscriptions", Some(&bob), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = only_new(&upstream, 2);
    assert_eq!(seen.path, "/api/subscriptions");
    assert_eq!(
        seen.header("x-portal-developer-id"),
        Some(acme.developer_id.as_str())
    );

    // Refusals reach nobody upstream.
    let refusals = [
        // A member writes: read-only.
        ("POST", "/acme/applications", Some(&bob), 403, "read-only"),
        (
            "DELETE",
            "/acme/applications/app-1/credentials/c-1",
            Some(&bob),
            403,
            "read-only",
        ),
        // Not a member, or no such slug: the organization does not exist.
        ("GET", "/acme/applications", Some(&carol), 404, "not found"),
        (
            "GET",
            "/nowhere/applications",
            Some(&alice),
            404,
            "not found",
        ),
        ("GET", "/x/applications", Some(&alice), 404, "not found"),
        // Not an organization's applications, credentials or subscriptions.
        ("GET", "/acme/members", Some(&alice), 404, "not found"),
        (
            "GET",
            "/acme/applications/..%2F..%2Fdevelopers",
            Some(&alice),
            404,
            "not found",
        ),
        // No token, or one roster does not accept.
        ("GET", "/acme/applications", None, 401, "sign in"),
        ("GET", "/acme/applications", Some(&bogus), 401, "sign in"),
    ];
    for (method, path, token, wanted, message) in refusals {
        let (status, body) = proxy
            .call(method, path, token.map(String::as_str), Some("{}"))
            .await;
        assert_eq!(status, wanted, "{method} {path}: {body}");
        assert!(body.contains(message), "{method} {path}: {body}");
    }
    assert_eq!(
        upstream.resource_requests().len(),
        3,
        "refused requests were forwarded"
    );

    // Bob is removed: his very next request is refused, as for a stranger.
    members
        .remove_member(as_user(
            "alice",
            pb::RemoveMemberRequest {
                organization_id: acme.id.clone(),
                user_id: "bob".into(),
            },
        ))
        .await
        .unwrap();
    let (status, body) = proxy
        .call("GET", "/acme/subscriptions", Some(&bob), None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(upstream.resource_requests().len(), 3);

    // roster is down: the proxy fails closed, whoever asks.
    roster.kill();
    let (status, body) = proxy
        .call("GET", "/acme/applications", Some(&alice), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("roster is unavailable"), "{body}");
    assert_eq!(
        upstream.resource_requests().len(),
        3,
        "forwarded while roster was down"
    );
}
