//! The `roster` binary itself: configuration errors and `roster token`.

use std::{process::Command, time::Duration};

use roster::auth::token::{DEVELOPMENT_SECRET, TokenVerifier};
use roster_spawn::Spawn;

const JWKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwks.json");

fn roster() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    // Start from a clean slate: the developer's environment must not leak in.
    for (key, _) in std::env::vars() {
        if key.starts_with("ROSTER_") || key.starts_with("OTEL_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn bad_configuration_is_one_clear_message_and_a_nonzero_exit() {
    // What only makes sense together, or needs a look at a URL: validation.
    let cases: [&[&str]; 12] = [
        &["--listen", "0.0.0.0:0"],
        // A JWKS without an audience, and no explicit choice of any.
        &["--jwt-jwks-file", JWKS],
        &["--jwks-url", "http://127.0.0.1:9/api/auth/jwks"],
        &[
            "--invitation-link-template",
            "https://portal.example.com/auth/accept-invitation",
        ],
        &[
            "--invitation-link-template",
            "https://portal.example.com/{id}/{id}",
        ],
        &[
            "--invitation-link-template",
            "ftp://portal.example.com/{id}",
        ],
        &["--database-url", "mysql://localhost/roster"],
        &["--portal-url", "not a url"],
        &["--provider-portal-url", "https://portal.example.com"],
        &["--provider-portal-token", "a7prt-x"],
        &[
            "--provider-portal-url",
            "ftp://portal.example.com",
            "--provider-portal-token",
            "a7prt-x",
        ],
        &[
            "--provider-portal-url",
            "https://portal.example.com",
            "--provider-portal-token-file",
            "/nonexistent/portal-token",
        ],
    ];
    for args in cases {
        let output = roster().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("roster: configuration error: "),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        if args[0] == "--jwt-jwks-file" || args[0] == "--jwks-url" {
            assert!(
                stderr.contains("ROSTER_JWT_AUDIENCE")
                    && stderr.contains("ROSTER_JWT_ANY_AUDIENCE"),
                "{stderr}"
            );
        }
        if args[0] == "--invitation-link-template" {
            assert!(
                stderr.contains("ROSTER_INVITATION_LINK_TEMPLATE") && stderr.contains("{id}"),
                "{stderr}"
            );
        }
    }
    // A single value out of its bounds: refused while parsing, by clap,
    // naming the flag (or the variable's flag) and the value.
    for (flag, value) in [
        ("--max-members-per-organization", "0"),
        ("--invitation-ttl", "0s"),
        ("--max-message-bytes", "10"),
    ] {
        let output = roster().args([flag, value]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {value} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with(&format!("error: invalid value '{value}' for '{flag} ")),
            "{flag} {value}: {stderr}"
        );
    }
    let from_environment = roster()
        .env("ROSTER_MAX_OWNED_ORGANIZATIONS", "0")
        .output()
        .unwrap();
    assert_eq!(from_environment.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&from_environment.stderr).contains("--max-owned-organizations"),
        "{from_environment:?}"
    );
    let unknown = roster().args(["--no-such-flag"]).output().unwrap();
    assert!(!unknown.status.success());
}

#[test]
fn any_audience_is_an_explicit_choice_logged_as_a_warning_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let server = Spawn::new(env!("CARGO_BIN_EXE_roster"))
        .args(["--database-url", &database])
        .args(["--jwt-jwks-file", JWKS, "--jwt-any-audience"])
        .start(Duration::from_secs(60))
        .unwrap();
    let log = server.log();
    let warning = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains("ROSTER_JWT_ANY_AUDIENCE"))
        });
    let warning = warning.unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert_eq!(warning["level"], "WARN", "{warning}");

    // Through the environment too, as `true`.
    let from_environment = Spawn::new(env!("CARGO_BIN_EXE_roster"))
        .args(["--database-url", &database])
        .env("ROSTER_JWT_JWKS_FILE", JWKS)
        .env("ROSTER_JWT_ANY_AUDIENCE", "true")
        .start(Duration::from_secs(60));
    assert!(from_environment.is_ok(), "{:?}", from_environment.err());
}

#[test]
fn roster_token_prints_a_token_the_server_accepts() {
    let output = roster()
        .args([
            "token",
            "--sub",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
            "--scope",
            "events.read",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let verifier = TokenVerifier::new(Some(DEVELOPMENT_SECRET), None, None, None).unwrap();
    let caller = verifier.verify(token.trim()).unwrap();
    assert_eq!(caller.user_id.as_str(), "alice");
    assert_eq!(caller.email.as_deref(), Some("alice@example.com"));
    assert!(caller.email_verified);
    assert_eq!(caller.name.as_deref(), Some("Alice"));
    assert!(caller.has_scope("events.read"));

    let unverified = roster()
        .args(["token", "--sub", "bob", "--unverified"])
        .output()
        .unwrap();
    let caller = verifier
        .verify(String::from_utf8(unverified.stdout).unwrap().trim())
        .unwrap();
    assert!(!caller.email_verified);
}

#[test]
fn roster_bench_runs_every_workload_and_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let output = roster()
        .args([
            "bench",
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--concurrency",
            "4",
            "--connections",
            "2",
        ])
        .args([
            "--memberships",
            "300",
            "--big-organization-members",
            "60",
            "--members-per-organization",
            "10",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("vs health"), "{table}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let outcomes = report["outcomes"].as_array().unwrap();
    let names: Vec<&str> = outcomes
        .iter()
        .map(|o| o["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "health_check",
            "check_permission",
            "check_permission_by_slug",
            "batch_check_permissions_10",
            "get_organization",
            "list_members_50_of_10k",
            "update_member_role",
            "create_organization",
            "create_invitation",
            "lookup_organizations_50",
            "lookup_users_50_of_10k",
            "connect_json_check_permission",
            "connect_json_get_organization",
            "get_organization (no streams)",
            "get_organization (1000 idle streams)",
            "check_permission (no streams)",
            "check_permission (1000 idle streams)",
        ]
    );
    for outcome in outcomes {
        assert_eq!(outcome["errors"], 0, "{outcome}");
        assert!(outcome["requests"].as_u64().unwrap() > 0, "{outcome}");
        assert!(
            outcome["ratio_to_health"].as_f64().unwrap() > 0.0,
            "{outcome}"
        );
    }
    assert!(report["server_rss_mib"].as_f64().unwrap() > 1.0);
}

/// The served binary, with JSON logs captured, stopped by SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_have_one_line_per_rpc_and_never_tokens_or_addresses_and_sigterm_stops_cleanly() {
    use roster::{
        auth::token::{DEVELOPMENT_SECRET, TokenRequest, mint_hs256},
        pb::{
            self, membership_service_client::MembershipServiceClient,
            organization_service_client::OrganizationServiceClient,
        },
    };

    let dir = tempfile::tempdir().unwrap();
    let mut server = Spawn::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("r.db").display()
        ))
        .start(Duration::from_secs(60))
        .unwrap();

    let token = mint_hs256(
        DEVELOPMENT_SECRET,
        &TokenRequest {
            sub: "alice".into(),
            email: Some("alice.secret@example.com".into()),
            email_verified: true,
            ttl: Duration::from_secs(600),
            ..Default::default()
        },
    )
    .unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let org = OrganizationServiceClient::new(channel.clone())
        .create_organization(authorized(
            &token,
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
    let invitation = MembershipServiceClient::new(channel.clone())
        .create_invitation(authorized(
            &token,
            pb::CreateInvitationRequest {
                organization_id: org.id.clone(),
                email: "bob.private@example.com".into(),
                role: pb::Role::Member.into(),
                request_id: String::new(),
                delivery: pb::InvitationDelivery::Unspecified.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    // Routine refusals are answers, not errors: a NOT_FOUND and a
    // PERMISSION_DENIED write no ERROR line (checked below).
    let missing = OrganizationServiceClient::new(channel.clone())
        .get_organization(authorized(
            &token,
            pb::GetOrganizationRequest {
                key: Some(pb::get_organization_request::Key::Id(
                    "0190f4a1-0000-7000-8000-000000000000".into(),
                )),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let stranger = mint_hs256(
        DEVELOPMENT_SECRET,
        &TokenRequest {
            sub: "mallory".into(),
            email: Some("mallory@example.com".into()),
            email_verified: true,
            ttl: Duration::from_secs(600),
            ..Default::default()
        },
    )
    .unwrap();
    let denied = MembershipServiceClient::new(channel.clone())
        .list_members(authorized(
            &stranger,
            pb::ListMembersRequest {
                organization_id: org.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            denied.code(),
            tonic::Code::PermissionDenied | tonic::Code::NotFound
        ),
        "{denied:?}"
    );

    // The development mailer logs the email, the address masked: once that
    // line is there, everything the invitation writes to the log is.
    let link = format!("/invitations/{}", invitation.id);
    let mail_line = server
        .wait_for_line(Duration::from_secs(10), |line| line.contains(&link))
        .unwrap_or_else(|| panic!("the email was not logged:\n{}", server.log()));
    let mail: serde_json::Value = serde_json::from_str(&mail_line).unwrap();
    assert_eq!(mail["to"], "b***@example.com", "{mail_line}");
    assert!(
        mail["message"]
            .as_str()
            .unwrap()
            .starts_with("email not sent (development mailer)"),
        "{mail_line}"
    );

    let exit = server
        .terminate(Duration::from_secs(30))
        .expect("roster stops on SIGTERM");
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");

    let logs = server.log();
    for secret in [
        token.as_str(),
        "alice.secret@example.com",
        "bob.private@example.com",
        DEVELOPMENT_SECRET,
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} reached the logs:\n{logs}"
        );
    }
    let finished: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "rpc finished")
        .collect();
    let lines_of = |method: &str| -> Vec<&serde_json::Value> {
        finished
            .iter()
            .filter(|line| line["span"]["rpc.method"] == method)
            .collect()
    };
    assert_eq!(lines_of("CreateOrganization").len(), 1, "{logs}");
    let [create] = lines_of("CreateInvitation")[..] else {
        panic!("not one rpc line for CreateInvitation in:\n{logs}");
    };
    let span = &create["span"];
    assert_eq!(span["rpc.service"], "roster.v1.MembershipService");
    assert_eq!(span["caller"], "alice");
    assert_eq!(span["org_id"], org.id.as_str());
    assert_eq!(span["request_id"], "req-from-test");
    assert_eq!(span["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span["grpc.code"], "Ok");
    assert!(span["latency_ms"].as_f64().is_some(), "{create}");
    assert!(logs.contains("shutting down"), "{logs}");
    let errors: Vec<&str> = logs
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|line| line["level"] == "ERROR")
        })
        .collect();
    assert!(
        errors.is_empty(),
        "a refused call is not an error:\n{}",
        errors.join("\n")
    );
}

/// A request with a bearer token, and a request id and trace context of the
/// test's choosing.
fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .metadata_mut()
        .insert("x-request-id", "req-from-test".parse().unwrap());
    request
        .metadata_mut()
        .insert("traceparent", CALLER_TRACEPARENT.parse().unwrap());
    request
}

/// The W3C trace context of the test's calls: with traces off, roster
/// still logs the caller's trace id.
const CALLER_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
