//! Developer identities across crashes and through reconciliation: the
//! `roster` binary killed with SIGKILL in the middle of deliveries and
//! started again, and `roster provider-portal reconcile` (dry run,
//! `--apply`, `--delete-unknown`) against the fake portal.

use std::{
    net::SocketAddr,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use roster::pb::{self, organization_service_client::OrganizationServiceClient};
use tonic::transport::Channel;

use crate::{
    backend_tests,
    fake_portal::{FakePortal, Faults, TOKEN},
    helpers::{Backend, TestApp, TestDb},
    production::as_user,
    provider_portal::{assert_in_step, assert_in_step_at, use_portal},
};

/// The `roster` binary with a clean environment and the fake portal.
fn roster(database_url: &str, fake: &FakePortal) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ROSTER_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .env("DATABASE_URL", database_url)
        .env("ROSTER_PROVIDER_PORTAL_URL", fake.url())
        .env("ROSTER_PROVIDER_PORTAL_TOKEN", TOKEN)
        .env("ROSTER_PROVIDER_PORTAL_TIMEOUT", "1s")
        .env("ROSTER_PROVIDER_PORTAL_POLL_INTERVAL", "100ms")
        .env("ROSTER_PROVIDER_PORTAL_MAX_BACKOFF", "1s")
        .env("ROSTER_PROVIDER_PORTAL_CREATE_WAIT", "0s")
        // Deleted organizations are purged (and their developers deleted) at once.
        .env("ROSTER_DELETED_ORGANIZATION_RETENTION", "1ms")
        .env("ROSTER_EXPIRY_SWEEP_INTERVAL", "100ms")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Starts `roster serve` on a free port; waits until it answers.
async fn start_server(database_url: &str, fake: &FakePortal) -> (Child, Channel) {
    start_server_with(database_url, fake, &[]).await
}

/// [`start_server`] with more settings in its environment.
async fn start_server_with(
    database_url: &str,
    fake: &FakePortal,
    env: &[(&str, String)],
) -> (Child, Channel) {
    let address = free_port();
    let mut child = roster(database_url, fake)
        .env("ROSTER_LISTEN", address.to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()
        .unwrap();
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_lazy();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for _ in 0..500 {
        let check = tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        };
        if health.check(check).await.is_ok() {
            return (child, channel);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("roster did not start");
}

backend_tests!(
    a_sigkill_in_the_middle_of_deliveries_loses_nothing_and_creates_nothing_twice,
    reconcile_reports_the_differences_and_repairs_them_when_asked,
    a_developer_left_behind_by_a_deleted_organization_is_deleted_again,
);

async fn a_sigkill_in_the_middle_of_deliveries_loses_nothing_and_creates_nothing_twice(
    backend: Backend,
) {
    let fake = FakePortal::start().await;
    // Every answer takes 300 ms: deliveries are in flight when roster dies.
    fake.inject(Faults {
        slow: Some((Duration::from_millis(300), 10_000)),
        ..Faults::default()
    });
    let (database_url, _db) = TestDb::create(&backend).await;
    let (mut child, channel) = start_server(&database_url, &fake).await;
    let mut orgs = OrganizationServiceClient::new(channel);
    let mut created = Vec::new();
    for i in 0..12 {
        let request = pb::CreateOrganizationRequest {
            name: format!("Org {i}"),
            slug: format!("org-{i}"),
            ..Default::default()
        };
        let reply = orgs
            .create_organization(as_user(&format!("user{i}"), request))
            .await
            .unwrap()
            .into_inner();
        created.push(reply.organization.unwrap());
    }
    for (i, org) in created.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let request = pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            etag: String::new(),
        };
        orgs.delete_organization(as_user(&format!("user{i}"), request))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let delivered_before_the_kill = fake.developer_ids().len();

    let (mut child, _channel) = start_server(&database_url, &fake).await;
    assert_in_step_at(&database_url, &fake).await;
    assert_eq!(fake.developer_ids().len(), 8, "12 created, 4 deleted");
    assert!(
        fake.request_count() > delivered_before_the_kill,
        "the restarted roster carried on"
    );
    assert_eq!(fake.max_in_flight_per_developer(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn reconcile(database_url: &str, fake: &FakePortal, args: &[&str]) -> Output {
    roster(database_url, fake)
        .args(["provider-portal", "reconcile"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

async fn reconcile_reports_the_differences_and_repairs_them_when_asked(backend: Backend) {
    let fake = FakePortal::start().await;
    // Organizations made while no Provider Portal was configured...
    let app = TestApp::spawn(&backend).await;
    let local = app.create_org("alice", "acme").await;
    // ...and a developer the portal has that roster never knew.
    fake.add_developer("stranger-1");
    let url = app.config.database_url.clone();

    let dry = reconcile(&url, &fake, &[]);
    let out = String::from_utf8_lossy(&dry.stdout).to_string();
    assert_eq!(dry.status.code(), Some(1), "{out}");
    assert!(out.contains("missing in the Provider Portal: 1"), "{out}");
    assert!(out.contains(&local.developer_id), "{out}");
    assert!(
        out.contains("only in the Provider Portal (not roster's): 1"),
        "{out}"
    );
    assert!(out.contains("stranger-1"), "{out}");
    assert!(out.contains("dry run: nothing changed"), "{out}");
    assert_eq!(
        fake.developer_ids(),
        vec!["stranger-1".to_owned()],
        "a dry run changes nothing"
    );

    let apply = reconcile(&url, &fake, &["--apply"]);
    let out = String::from_utf8_lossy(&apply.stdout).to_string();
    assert_eq!(
        apply.status.code(),
        Some(1),
        "the stranger is still there: {out}"
    );
    assert!(out.contains("applied: 1 created"), "{out}");
    let mut ids = fake.developer_ids();
    ids.sort();
    assert!(ids.contains(&local.developer_id) && ids.contains(&"stranger-1".to_owned()));

    let delete_unknown = reconcile(&url, &fake, &["--apply", "--delete-unknown"]);
    let out = String::from_utf8_lossy(&delete_unknown.stdout).to_string();
    assert_eq!(delete_unknown.status.code(), Some(0), "{out}");
    assert_eq!(fake.developer_ids(), vec![local.developer_id.clone()]);
    assert_in_step(&app, &fake).await;

    // The organization shows its identity as active now.
    let mut shown = pb::DeveloperIdentityState::Unspecified;
    for _ in 0..100 {
        let org = app
            .orgs("alice")
            .get_organization(pb::GetOrganizationRequest {
                key: Some(pb::get_organization_request::Key::Id(local.id.clone())),
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap();
        shown = org.identity.unwrap_or_default().state();
        if shown == pb::DeveloperIdentityState::Active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shown, pb::DeveloperIdentityState::Active);

    let bad = roster(&url, &fake)
        .args(["provider-portal", "reconcile", "--delete-unknown"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "--delete-unknown needs --apply");
}

async fn a_developer_left_behind_by_a_deleted_organization_is_deleted_again(backend: Backend) {
    let fake = FakePortal::start().await;
    let app = TestApp::spawn_with(&backend, |c| {
        use_portal(c, &fake);
        c.provider_portal.provider_portal_reconcile_interval = Duration::from_millis(300);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    app.orgs("alice")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert_in_step(&app, &fake).await;
    // A create that reached the portal only after roster's delete (a
    // request of a killed process, say) leaves a developer behind.
    fake.add_developer(&org.developer_id);
    for _ in 0..200 {
        if fake.developer_ids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fake.developer_ids().is_empty(),
        "the periodic reconciliation deleted it again"
    );
    assert_in_step(&app, &fake).await;
}

/// The outbox's metrics, in a roster process of its own (the metrics
/// recorder is process-wide): one create that fails with a 500, then
/// succeeds on the retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_outbox_exports_waiting_attempts_and_failures_by_status() {
    use crate::production::{sample, scrape};
    let fake = FakePortal::start().await;
    fake.inject(Faults {
        server_errors: 1,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let metrics = free_port();
    let env = [("ROSTER_METRICS_LISTEN", metrics.to_string())];
    let (mut child, channel) = start_server_with(&url, &fake, &env).await;
    let request = pb::CreateOrganizationRequest {
        name: "Acme".into(),
        slug: "acme".into(),
        ..Default::default()
    };
    OrganizationServiceClient::new(channel)
        .create_organization(as_user("alice", request))
        .await
        .unwrap();
    assert_in_step_at(&url, &fake).await;
    let ok = r#"roster_provider_portal_attempts_total{operation="create",outcome="ok"}"#;
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(metrics.port());
        if sample(&text, "roster_provider_portal_outbox_waiting") == Some(0.0)
            && sample(&text, ok).is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (series, value) in [
        (
            r#"roster_provider_portal_attempts_total{operation="create",outcome="failed"}"#,
            1.0,
        ),
        (ok, 1.0),
        (
            r#"roster_provider_portal_failures_total{status="500"}"#,
            1.0,
        ),
        ("roster_provider_portal_outbox_waiting", 0.0),
        ("roster_provider_portal_up", 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
