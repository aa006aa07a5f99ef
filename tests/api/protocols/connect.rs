//! The Connect protocol, unary: JSON (the protobuf JSON mapping) and
//! binary bodies, errors in Connect's format with gRPC's codes, reasons
//! and details, deadlines, and what is not served.

use std::time::{Duration, Instant};

use base64::{Engine as _, engine::general_purpose::STANDARD_NO_PAD};
use prost::Message;
use roster::{auth::token::TokenRequest, pb};
use serde_json::{Value, json};

use super::{Http, client, connect_json, url};
use crate::{
    backend_tests,
    helpers::{Backend, TestApp, bad_fields, reason},
};

const CREATE: &str = "/roster.v1.OrganizationService/CreateOrganization";
const GET: &str = "/roster.v1.OrganizationService/GetOrganization";
const UPDATE: &str = "/roster.v1.OrganizationService/UpdateOrganization";
const LIST_MEMBERS: &str = "/roster.v1.MembershipService/ListMembers";
const UPDATE_ROLE: &str = "/roster.v1.MembershipService/UpdateMemberRole";
const CHECK: &str = "/roster.v1.AuthorizationService/CheckPermission";

fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| chrono::DateTime::parse_from_rfc3339(text).is_ok())
}

backend_tests!(
    connect_json_serves_the_product_calls_in_the_protobuf_json_mapping,
    connect_binary_bodies_are_protobuf,
    connect_errors_carry_the_grpc_code_reason_and_details,
    update_organization_takes_its_field_mask_as_a_string,
);

async fn connect_json_serves_the_product_calls_in_the_protobuf_json_mapping(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let alice = app.token("alice");
    let (status, created) = connect_json(
        &app,
        CREATE,
        Some(&alice),
        json!({"name": "Acme", "slug": "acme", "logoUrl": ""}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let org = &created["organization"];
    // camelCase names, Timestamps as RFC 3339, 64-bit and default values
    // as the mapping says (empty strings left out).
    assert_eq!(org["slug"], "acme");
    assert!(is_rfc3339(&org["createTime"]), "{org}");
    assert!(org.get("create_time").is_none());
    assert!(org.get("logoUrl").is_none(), "defaults are left out: {org}");
    let id = org["id"].as_str().unwrap().to_owned();

    let (status, got) = connect_json(&app, GET, Some(&alice), json!({"id": id})).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["organization"]["id"], id.as_str());
    // Enums by name.
    assert_eq!(got["role"], "ROLE_OWNER");
    // A oneof by its other member, and the request's snake_case names are
    // accepted too, as the mapping requires of parsers.
    let (status, by_slug) = connect_json(&app, GET, Some(&alice), json!({"slug": "acme"})).await;
    assert_eq!(status, 200, "{by_slug}");
    assert_eq!(by_slug["organization"]["id"], id.as_str());

    app.add_member("alice", &id, "bob", pb::Role::Member).await;
    let (status, members) = connect_json(
        &app,
        LIST_MEMBERS,
        Some(&alice),
        json!({"organization_id": id, "pageSize": 10}),
    )
    .await;
    assert_eq!(status, 200, "{members}");
    let roles: Vec<(&str, &str)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["userId"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert!(roles.contains(&("alice", "ROLE_OWNER")), "{members}");
    assert!(roles.contains(&("bob", "ROLE_MEMBER")), "{members}");

    let (status, changed) = connect_json(
        &app,
        UPDATE_ROLE,
        Some(&alice),
        json!({"organizationId": id, "userId": "bob", "role": "ROLE_ADMIN"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["member"]["role"], "ROLE_ADMIN");
    let revision = changed["revision"].as_str().unwrap();
    assert_eq!(
        app.role_of("alice", &id, "bob").await,
        Some(pb::Role::Admin)
    );

    let service = app.token_with(TokenRequest {
        sub: "applications-service".into(),
        scopes: vec!["authz.check".into()],
        ttl: Duration::from_secs(600),
        ..TokenRequest::default()
    });
    let (status, answer) = connect_json(
        &app,
        CHECK,
        Some(&service),
        json!({
            "check": {"userId": "bob", "organizationId": id, "permission": "applications.create"},
            "atLeastRevision": revision,
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["allowed"], true, "{answer}");
}

async fn connect_binary_bodies_are_protobuf(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let http = client(Http::Two);
    let call = |path: &'static str, body: Vec<u8>, token: String| {
        let request = http
            .post(url(&app, path))
            .header("content-type", "application/proto")
            .header("connect-protocol-version", "1")
            .bearer_auth(token)
            .body(body);
        async move {
            let reply = request.send().await.unwrap();
            let status = reply.status();
            let content_type = reply.headers()["content-type"].to_str().unwrap().to_owned();
            (status, content_type, reply.bytes().await.unwrap())
        }
    };
    let create = pb::CreateOrganizationRequest {
        name: "Binary".into(),
        slug: "binary".into(),
        ..Default::default()
    };
    let (status, content_type, body) =
        call(CREATE, create.encode_to_vec(), app.token("alice")).await;
    assert_eq!(
        (status.as_u16(), content_type.as_str()),
        (200, "application/proto")
    );
    let org = pb::CreateOrganizationResponse::decode(body)
        .unwrap()
        .organization
        .unwrap();
    let get = pb::GetOrganizationRequest {
        key: Some(pb::get_organization_request::Key::Id(org.id.clone())),
    };
    let (status, _, body) = call(GET, get.encode_to_vec(), app.token("alice")).await;
    assert_eq!(status, 200);
    let got = pb::GetOrganizationResponse::decode(body).unwrap();
    assert_eq!(got.role(), pb::Role::Owner);
    assert_eq!(got.organization.unwrap().id, org.id);

    // Errors are JSON whatever the request's encoding, as Connect says.
    let (status, content_type, body) = call(GET, get.encode_to_vec(), app.token("bob")).await;
    assert_eq!(
        (status.as_u16(), content_type.as_str()),
        (404, "application/json")
    );
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], "not_found");
    // Bytes that are not the request message: INVALID_ARGUMENT.
    let (status, _, body) = call(GET, vec![0xff, 0xff, 0xff], app.token("alice")).await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], "invalid_argument", "{error}");
}

/// The `debug` (JSON) form of the detail of type `name` in a Connect error.
fn detail<'a>(error: &'a Value, name: &str) -> &'a Value {
    let detail = error["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details: {error}"))
        .iter()
        .find(|d| d["type"] == name)
        .unwrap_or_else(|| panic!("no {name}: {error}"));
    assert!(
        STANDARD_NO_PAD
            .decode(detail["value"].as_str().unwrap())
            .is_ok(),
        "value is base64: {detail}"
    );
    &detail["debug"]
}

async fn connect_errors_carry_the_grpc_code_reason_and_details(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;

    // NOT_FOUND: 404, and the same message and reason as over gRPC.
    let grpc = app
        .orgs("mallory")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(pb::get_organization_request::Key::Id(org.id.clone())),
        })
        .await
        .unwrap_err();
    let (status, error) = connect_json(
        &app,
        GET,
        Some(&app.token("mallory")),
        json!({"id": org.id}),
    )
    .await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["message"], grpc.message());
    let info = detail(&error, "google.rpc.ErrorInfo");
    assert_eq!(info["reason"], reason(&grpc).as_str());
    assert_eq!(info["domain"], "roster.dev");

    // INVALID_ARGUMENT: 400, the bad fields in BadRequest.
    let bad = json!({"name": "", "slug": "Not A Slug!"});
    let grpc = app
        .orgs("alice")
        .create_organization(pb::CreateOrganizationRequest {
            name: String::new(),
            slug: "Not A Slug!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let (status, error) = connect_json(&app, CREATE, Some(&app.token("alice")), bad).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "invalid_argument");
    assert_eq!(
        detail(&error, "google.rpc.ErrorInfo")["reason"],
        "INVALID_ARGUMENT"
    );
    let fields: Vec<&str> = detail(&error, "google.rpc.BadRequest")["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, bad_fields(&grpc), "{error}");
    assert!(fields.contains(&"slug"), "{error}");

    // UNAUTHENTICATED: 401 without a token.
    let (status, error) = connect_json(&app, GET, None, json!({"id": org.id})).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["code"], "unauthenticated");
    assert_eq!(
        detail(&error, "google.rpc.ErrorInfo")["reason"],
        "MISSING_CREDENTIALS"
    );
}

async fn update_organization_takes_its_field_mask_as_a_string(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let (status, updated) = connect_json(
        &app,
        UPDATE,
        Some(&app.token("alice")),
        json!({
            "organization": {"id": org.id, "name": "Acme Renamed", "logoUrl": "https://example.com/x.png"},
            "updateMask": "name",
        }),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["organization"]["name"], "Acme Renamed");
    // Only the masked field changed.
    assert!(
        updated["organization"].get("logoUrl").is_none(),
        "{updated}"
    );
    assert!(is_rfc3339(&updated["organization"]["updateTime"]));
    // A mask path that is not a field: roster's own INVALID_ARGUMENT.
    let (status, error) = connect_json(
        &app,
        UPDATE,
        Some(&app.token("alice")),
        json!({"organization": {"id": org.id}, "updateMask": "name,nonsense"}),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "invalid_argument");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_json_fields_and_bodies_that_are_not_the_message_are_invalid_arguments() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let alice = app.token("alice");
    let (status, error) = connect_json(&app, GET, Some(&alice), json!({"idd": "x"})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "invalid_argument");
    let violations = &detail(&error, "google.rpc.BadRequest")["fieldViolations"];
    assert_eq!(violations[0]["field"], "idd", "{error}");
    // A wrong type, and an enum name that does not exist.
    for body in [
        json!({"slug": 5}),
        json!({"organizationId": "x", "userId": "bob", "role": "ROLE_EMPEROR"}),
    ] {
        let path = if body.get("slug").is_some() {
            GET
        } else {
            UPDATE_ROLE
        };
        let (status, error) = connect_json(&app, path, Some(&alice), body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["code"], "invalid_argument");
    }
    // Not JSON at all.
    let reply = client(Http::One)
        .post(url(&app, GET))
        .header("content-type", "application/json")
        .bearer_auth(&alice)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let error: Value = reply.json().await.unwrap();
    assert_eq!(error["code"], "invalid_argument");
    // Nothing was created by any of it.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organizations").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_timeout_ms_is_the_calls_deadline() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let (_db, lock) = crate::production::hold_write_lock(&app).await;
    let started = Instant::now();
    let reply = client(Http::One)
        .post(url(&app, CREATE))
        .header("content-type", "application/json")
        .header("connect-timeout-ms", "150")
        .bearer_auth(app.token("alice"))
        .body(json!({"name": "Late", "slug": "late"}).to_string())
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(reply.status(), 504);
    let error: Value = reply.json().await.unwrap();
    assert_eq!(error["code"], "deadline_exceeded", "{error}");
    assert_eq!(
        detail(&error, "google.rpc.ErrorInfo")["reason"],
        "DEADLINE_EXCEEDED"
    );
    // Well before the server's own 30 s deadline.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    lock.rollback().await.unwrap();

    // A timeout that is not a number of milliseconds is refused, naming it.
    let (status, error) = {
        let reply = client(Http::One)
            .post(url(&app, GET))
            .header("content-type", "application/json")
            .header("connect-timeout-ms", "soon")
            .bearer_auth(app.token("alice"))
            .body("{}")
            .send()
            .await
            .unwrap();
        (reply.status(), reply.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 400);
    let violations = &detail(&error, "google.rpc.BadRequest")["fieldViolations"];
    assert_eq!(violations[0]["field"], "connect-timeout-ms", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_connect_does_not_serve_is_refused_in_connects_format() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let portal = app.token_with(TokenRequest {
        sub: "provider-portal".into(),
        scopes: vec!["events.read".into()],
        ttl: Duration::from_secs(600),
        ..TokenRequest::default()
    });
    // StreamEvents streams: unimplemented, as a unary JSON request...
    let (status, error) = connect_json(
        &app,
        "/roster.v1.EventService/StreamEvents",
        Some(&portal),
        json!({}),
    )
    .await;
    assert_eq!(status, 501, "{error}");
    assert_eq!(error["code"], "unimplemented");
    assert!(
        error["message"].as_str().unwrap().contains("gRPC-Web"),
        "{error}"
    );
    // ...and as a streaming Connect request: an end-of-stream message.
    let reply = client(Http::Two)
        .post(url(&app, "/roster.v1.EventService/StreamEvents"))
        .header("content-type", "application/connect+json")
        .bearer_auth(&portal)
        .body(vec![0, 0, 0, 0, 2, b'{', b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body = reply.bytes().await.unwrap();
    assert_eq!(body[0], 0b10, "an end-of-stream envelope");
    let end: Value = serde_json::from_slice(&body[5..]).unwrap();
    assert_eq!(end["error"]["code"], "unimplemented");
    // No such method; another protocol version; a compressed body.
    let (status, error) = connect_json(
        &app,
        "/roster.v1.OrganizationService/Nothing",
        Some(&portal),
        json!({}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &error["code"]),
        (501, &json!("unimplemented"))
    );
    for (header, value, code) in [
        ("connect-protocol-version", "2", "invalid_argument"),
        ("content-encoding", "gzip", "unimplemented"),
    ] {
        let reply = client(Http::One)
            .post(url(&app, GET))
            .header("content-type", "application/json")
            .header(header, value)
            .bearer_auth(app.token("alice"))
            .body("{}")
            .send()
            .await
            .unwrap();
        let error: Value = reply.json().await.unwrap();
        assert_eq!(error["code"], code, "{header}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_answers_over_connect_without_a_token() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let (status, health) =
        connect_json(&app, "/grpc.health.v1.Health/Check", None, json!({})).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "SERVING");
}

/// The README's curl example (the ```bash block of "## Browsers and curl:
/// gRPC-Web, Connect, CORS"), run with bash and curl against this test's
/// server, `cargo run -q -- token` standing for the binary under test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readmes_curl_example_works() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let block = crate::clients::readme_bash_block("## Browsers and curl: gRPC-Web, Connect, CORS");
    let listen = "ROSTER=http://127.0.0.1:50051";
    assert_eq!(block.lines().filter(|l| *l == listen).count(), 1, "{block}");
    let script = format!(
        "set -euo pipefail\n\
         cargo() {{ [[ $1 == run && $2 == -q && $3 == -- ]] || return 1; shift 3; \"$TEST_ROSTER_BIN\" \"$@\"; }}\n\
         {}\n",
        block.replace(listen, &format!("ROSTER=http://{}", app.address()))
    );
    let run = script.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(&run)
            .env("TEST_ROSTER_BIN", env!("CARGO_BIN_EXE_roster"))
            .env_remove("ROSTER_JWT_SECRET")
            .output()
            .expect("bash and curl run")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let [created, got, refused] = lines[..] else {
        panic!("three replies expected:\n{stdout}");
    };
    let created: Value = serde_json::from_str(created).unwrap();
    let got: Value = serde_json::from_str(got).unwrap();
    assert_eq!(got["organization"]["id"], created["organization"]["id"]);
    assert_eq!(got["role"], "ROLE_OWNER");
    let (refused, http_status) = refused.rsplit_once(' ').unwrap();
    assert_eq!(http_status, "404");
    let refused: Value = serde_json::from_str(refused).unwrap();
    assert_eq!(refused["code"], "not_found");
    assert_eq!(
        refused["details"][0]["debug"]["reason"],
        "ORGANIZATION_NOT_FOUND"
    );
    // The error shown in the README is the one roster sends.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!("\n{refused}\n")),
        "the README should show the error as sent:\n{refused}"
    );
}
