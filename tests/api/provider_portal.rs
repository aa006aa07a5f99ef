//! Developer identities in the Provider Portal, against the fake portal of
//! `fake_portal.rs`: creation and deletion, every fault the real one has,
//! two replicas, and reconciliation. Every test ends with the fake's
//! developers equal to roster's organizations, each created once.

use std::{collections::BTreeSet, time::Duration};

use crate::{
    backend_tests,
    fake_portal::{FakePortal, Faults, TOKEN},
    helpers::{Backend, TestApp},
};
use roster::{config::Config, pb};
use sea_orm::{ConnectionTrait, Database, Statement};

/// Points roster at `fake`, with timings short enough for tests.
pub fn use_portal(config: &mut Config, fake: &FakePortal) {
    let p = &mut config.provider_portal;
    p.provider_portal_url = Some(fake.url());
    p.provider_portal_token = Some(TOKEN.into());
    p.provider_portal_timeout = Duration::from_millis(700);
    p.provider_portal_poll_interval = Duration::from_millis(100);
    p.provider_portal_max_backoff = Duration::from_millis(800);
    p.provider_portal_create_wait = Duration::from_secs(3);
    p.provider_portal_reconcile_interval = Duration::from_secs(3600);
    // A deleted organization's developer goes when it is purged: these
    // tests purge at once (the lifecycle tests say what happens before).
    config.deleted_organization_retention = Duration::from_millis(1);
    config.expiry_sweep_interval = Duration::from_millis(50);
}

async fn query_strings(database_url: &str, sql: &str) -> Vec<String> {
    let db = Database::connect(database_url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let values = rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    db.close().await.unwrap();
    values
}

/// Developer ids of roster's organizations.
pub async fn roster_developers(database_url: &str) -> BTreeSet<String> {
    query_strings(database_url, "SELECT developer_id FROM organizations")
        .await
        .into_iter()
        .collect()
}

/// Identities whose calls are still to be made.
async fn unsettled(database_url: &str) -> usize {
    query_strings(
        database_url,
        "SELECT developer_id FROM developer_identities \
         WHERE (desired = 'present' AND confirmed <> 'present') \
            OR (desired = 'absent' AND confirmed <> 'absent')",
    )
    .await
    .len()
}

/// Waits until delivery is done, then checks the fake's developers are
/// exactly roster's organizations and none was created twice.
pub async fn assert_in_step(app: &TestApp, fake: &FakePortal) {
    assert_in_step_at(&app.config.database_url, fake).await;
}

/// [`assert_in_step`] for the roster whose database is `database_url`.
pub async fn assert_in_step_at(database_url: &str, fake: &FakePortal) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let roster: BTreeSet<String> = roster_developers(database_url).await;
        let portal: BTreeSet<String> = fake.developer_ids().into_iter().collect();
        if (unsettled(database_url).await == 0 && roster == portal)
            || tokio::time::Instant::now() > deadline
        {
            assert_eq!(
                unsettled(database_url).await,
                0,
                "deliveries still outstanding"
            );
            assert_eq!(
                portal, roster,
                "the fake's developers are roster's organizations"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (id, count) in fake.creates() {
        assert_eq!(count, 1, "developer {id} created {count} times");
    }
}

async fn get(app: &TestApp, user: &str, id: &str) -> pb::Organization {
    app.orgs(user)
        .get_organization(pb::GetOrganizationRequest {
            key: Some(pb::get_organization_request::Key::Id(id.to_owned())),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
}

fn state(org: &pb::Organization) -> pb::DeveloperIdentityState {
    org.identity.clone().unwrap_or_default().state()
}

/// Waits until `org`'s identity shows `want`; returns the organization.
async fn wait_for_state(
    app: &TestApp,
    user: &str,
    id: &str,
    want: pb::DeveloperIdentityState,
) -> pb::Organization {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let org = get(app, user, id).await;
        if state(&org) == want || tokio::time::Instant::now() > deadline {
            assert_eq!(state(&org), want, "{org:?}");
            return org;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes the organization and waits for the purge (at once, with
/// [`use_portal`]'s retention), which is when its developer goes.
async fn delete(app: &TestApp, user: &str, id: &str) {
    app.orgs(user)
        .delete_organization(pb::DeleteOrganizationRequest {
            id: id.to_owned(),
            etag: String::new(),
        })
        .await
        .unwrap();
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM organizations WHERE deleted_at IS NOT NULL",
        0,
    )
    .await;
}

type Changes = Vec<(String, String, String)>;

/// The change log once it holds an event of type `last` (on PostgreSQL, a
/// transaction elsewhere on the cluster can hold new events back briefly).
async fn events_through(app: &TestApp, last: &str) -> Vec<(String, Changes)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = event_types(app).await;
        if events.iter().any(|(t, _)| t == last) || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn event_types(app: &TestApp) -> Vec<(String, Changes)> {
    app.event_follower()
        .list_events(pb::ListEventsRequest {
            after_cursor: String::new(),
            page_size: 500,
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .map(|e| {
            let changes = e
                .changes
                .into_iter()
                .map(|c| (c.field, c.old_value, c.new_value))
                .collect();
            (e.r#type, changes)
        })
        .collect()
}

async fn portal_health(app: &TestApp) -> i32 {
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel());
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "roster.ProviderPortal".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

backend_tests!(
    creating_an_organization_creates_its_developer_and_deleting_deletes_it,
    without_a_provider_portal_identities_exist_only_in_roster,
    a_portal_that_is_down_at_first_gets_the_identity_once_it_is_up,
    server_errors_are_retried_with_backoff,
    answers_slower_than_the_timeout_do_not_create_two,
    a_create_whose_answer_was_lost_is_recognised_not_repeated,
    a_refused_token_backs_off_and_reports_until_it_is_fixed,
    malformed_answers_back_off_and_recover,
    a_developer_the_portal_no_longer_has_is_deleted_as_done,
    a_delete_never_overtakes_its_create,
    two_replicas_deliver_every_identity_once,
    a_pending_developer_shows_pending_until_the_provider_approves,
    the_sdks_error_bodies_are_read_too,
);

async fn creating_an_organization_creates_its_developer_and_deleting_deletes_it(backend: Backend) {
    let fake = FakePortal::start().await;
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;

    let org = app.create_org("alice", "acme").await;
    assert_eq!(state(&org), pb::DeveloperIdentityState::Active, "{org:?}");
    assert_eq!(fake.developer_ids(), vec![org.developer_id.clone()]);
    assert_eq!(
        state(&get(&app, "alice", &org.id).await),
        pb::DeveloperIdentityState::Active
    );
    let check = app
        .authz("alice")
        .check_permission(pb::CheckPermissionRequest {
            check: Some(pb::PermissionCheck {
                user_id: String::new(),
                organization_id: org.id.clone(),
                permission: "applications.create".into(),
                ..Default::default()
            }),
            at_least_revision: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(check.identity_state(), pb::DeveloperIdentityState::Active);
    assert_in_step(&app, &fake).await;

    delete(&app, "alice", &org.id).await;
    assert_in_step(&app, &fake).await;
    assert!(fake.developer_ids().is_empty());

    let events = events_through(&app, "organization.identity_deprovisioned").await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "organization.created",
            "member.added",
            "organization.identity_provisioned",
            "organization.deleted",
            "organization.purged",
            "organization.identity_deprovisioned"
        ]
    );
    let change = |i: usize| {
        events[i]
            .1
            .iter()
            .find(|(field, _, _)| field == "identity_state")
            .cloned()
            .unwrap()
    };
    assert_eq!(
        change(0),
        (
            "identity_state".into(),
            String::new(),
            "provisioning".into()
        )
    );
    assert_eq!(
        change(2),
        (
            "identity_state".into(),
            "provisioning".into(),
            "active".into()
        )
    );
    // Deleted: the identity stays (a fact); purged: it goes.
    assert_eq!(
        change(3),
        ("identity_state".into(), "active".into(), "active".into())
    );
    assert_eq!(
        change(4),
        (
            "identity_state".into(),
            "active".into(),
            "deprovisioning".into()
        )
    );
    assert_eq!(
        change(5),
        (
            "identity_state".into(),
            "deprovisioning".into(),
            String::new()
        )
    );
}

async fn without_a_provider_portal_identities_exist_only_in_roster(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.deleted_organization_retention = Duration::from_millis(1);
        c.expiry_sweep_interval = Duration::from_millis(50);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    assert_eq!(state(&org), pb::DeveloperIdentityState::Local);
    assert_eq!(
        state(&get(&app, "alice", &org.id).await),
        pb::DeveloperIdentityState::Local
    );
    delete(&app, "alice", &org.id).await;
    assert_eq!(
        unsettled(&app.config.database_url).await,
        0,
        "no intents without a portal"
    );
}

async fn a_portal_that_is_down_at_first_gets_the_identity_once_it_is_up(backend: Backend) {
    let mut fake = FakePortal::down().await;
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let org = app.create_org("alice", "acme").await;
    assert_ne!(state(&org), pb::DeveloperIdentityState::Active);
    let failing = wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Failing).await;
    let identity = failing.identity.unwrap();
    assert!(identity.attempts >= 1, "{identity:?}");
    assert!(identity.last_error.contains("cannot reach"), "{identity:?}");
    assert_eq!(
        portal_health(&app).await,
        2,
        "NOT_SERVING while unreachable"
    );

    fake.come_up().await;
    wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    assert_in_step(&app, &fake).await;
    assert_eq!(portal_health(&app).await, 1, "SERVING again");
}

async fn server_errors_are_retried_with_backoff(backend: Backend) {
    let fake = FakePortal::start().await;
    fake.inject(Faults {
        server_errors: 3,
        ..Faults::default()
    });
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let org = app.create_org("alice", "acme").await;
    wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    assert_in_step(&app, &fake).await;
    let events = events_through(&app, "organization.identity_provisioned").await;
    let failing = events
        .iter()
        .find(|(t, _)| t == "organization.identity_changed")
        .expect("the failing state is in the change log");
    assert!(
        failing
            .1
            .iter()
            .any(|(f, _, v)| f == "identity_last_error" && v.contains("HTTP 500")),
        "{failing:?}"
    );
    assert!(
        failing
            .1
            .iter()
            .any(|(f, _, v)| f == "identity_attempts" && v == "1"),
        "{failing:?}"
    );
}

async fn answers_slower_than_the_timeout_do_not_create_two(backend: Backend) {
    let fake = FakePortal::start().await;
    // Each of the first three requests waits 1.5 s, past roster's 0.7 s,
    // and is still carried out.
    fake.inject(Faults {
        slow: Some((Duration::from_millis(1500), 3)),
        ..Faults::default()
    });
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let org = app.create_org("alice", "acme").await;
    wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    assert_in_step(&app, &fake).await;
    assert_eq!(fake.creates().get(&org.developer_id), Some(&1));
}

async fn a_create_whose_answer_was_lost_is_recognised_not_repeated(backend: Backend) {
    let fake = FakePortal::start().await;
    fake.inject(Faults {
        lost_create_answers: 1,
        ..Faults::default()
    });
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let org = app.create_org("alice", "acme").await;
    wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    assert_in_step(&app, &fake).await;
    let posts = fake
        .log()
        .iter()
        .filter(|(m, id)| m == "POST" && *id == org.developer_id)
        .count();
    assert!(posts >= 2, "the create was retried");
    assert_eq!(
        fake.creates().get(&org.developer_id),
        Some(&1),
        "and carried out once"
    );
}

async fn a_refused_token_backs_off_and_reports_until_it_is_fixed(backend: Backend) {
    let fake = FakePortal::start().await;
    fake.set_token("a7prt-another-token");
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let mut orgs = Vec::new();
    for i in 0..5 {
        orgs.push(app.create_org("alice", &format!("acme-{i}")).await);
    }
    let failing = wait_for_state(
        &app,
        "alice",
        &orgs[0].id,
        pb::DeveloperIdentityState::Failing,
    )
    .await;
    assert!(failing.identity.unwrap().last_error.contains("token"));
    assert_eq!(
        portal_health(&app).await,
        2,
        "NOT_SERVING while the token is refused"
    );
    let before = fake.request_count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = fake.request_count() - before;
    // Backing off as a whole (at most 0.8 s apart here), not once per row
    // per poll: 5 rows polled every 0.1 s would be 150 requests.
    assert!(during <= 8, "{during} requests in 3 s with a refused token");

    fake.set_token(TOKEN);
    for org in &orgs {
        wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    }
    assert_in_step(&app, &fake).await;
    assert_eq!(portal_health(&app).await, 1);
}

async fn malformed_answers_back_off_and_recover(backend: Backend) {
    let fake = FakePortal::start().await;
    fake.inject(Faults {
        malformed: 2,
        ..Faults::default()
    });
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let org = app.create_org("alice", "acme").await;
    let events_before = fake.request_count();
    assert!(events_before >= 1);
    wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    let events = events_through(&app, "organization.identity_provisioned").await;
    assert!(
        events
            .iter()
            .any(|(t, c)| t == "organization.identity_changed"
                && c.iter()
                    .any(|(f, _, v)| f == "identity_last_error" && v.contains("malformed"))),
        "{events:?}"
    );
    assert_in_step(&app, &fake).await;
}

async fn a_developer_the_portal_no_longer_has_is_deleted_as_done(backend: Backend) {
    let fake = FakePortal::start().await;
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let org = app.create_org("alice", "acme").await;
    assert_in_step(&app, &fake).await;
    fake.remove_developer(&org.developer_id);
    delete(&app, "alice", &org.id).await;
    assert_in_step(&app, &fake).await;
    assert!(
        fake.log()
            .iter()
            .any(|(m, id)| m == "DELETE" && *id == org.developer_id),
        "the delete was sent and its 404 taken as done"
    );
    let types: Vec<String> = events_through(&app, "organization.identity_deprovisioned")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        types.last().map(String::as_str),
        Some("organization.identity_deprovisioned")
    );
}

async fn a_delete_never_overtakes_its_create(backend: Backend) {
    let fake = FakePortal::start().await;
    // The create takes a while; the organization is deleted meanwhile.
    fake.inject(Faults {
        slow: Some((Duration::from_millis(500), 1)),
        ..Faults::default()
    });
    let app = TestApp::spawn_with(&backend, |c| {
        use_portal(c, &fake);
        c.provider_portal.provider_portal_create_wait = Duration::ZERO;
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    delete(&app, "alice", &org.id).await;
    assert_in_step(&app, &fake).await;
    assert!(fake.developer_ids().is_empty(), "nothing left behind");
    let calls: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|(_, id)| *id == org.developer_id)
        .map(|(m, _)| m)
        .collect();
    let first_delete = calls.iter().position(|m| m == "DELETE").unwrap();
    assert!(
        calls[first_delete..].iter().all(|m| m == "DELETE"),
        "no create after the first delete: {calls:?}"
    );
    assert_eq!(
        fake.max_in_flight_per_developer(),
        1,
        "one call per developer at a time"
    );
}

async fn two_replicas_deliver_every_identity_once(backend: Backend) {
    let fake = FakePortal::start().await;
    // Slow answers, so that both replicas' workers overlap.
    fake.inject(Faults {
        slow: Some((Duration::from_millis(150), 1_000)),
        ..Faults::default()
    });
    let first = TestApp::spawn_with(&backend, |c| {
        use_portal(c, &fake);
        c.provider_portal.provider_portal_create_wait = Duration::ZERO;
    })
    .await;
    let second = first.replica().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { &first } else { &second };
        let orgs = app.orgs(&format!("user{i}"));
        tasks.push(tokio::spawn(async move {
            let mut orgs = orgs;
            orgs.create_organization(pb::CreateOrganizationRequest {
                name: format!("Org {i}"),
                slug: format!("org-{i}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap()
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.unwrap());
    }
    // Half are deleted again, through the other replica, while delivery runs.
    for (i, org) in created.iter().enumerate().filter(|(i, _)| i % 4 == 0) {
        let app = if i % 2 == 0 { &second } else { &first };
        delete(app, &format!("user{i}"), &org.id).await;
    }
    assert_in_step(&first, &fake).await;
    assert_eq!(
        fake.max_in_flight_per_developer(),
        1,
        "never two calls for one developer at once"
    );
    assert_eq!(fake.developer_ids().len(), 12);
}

async fn a_pending_developer_shows_pending_until_the_provider_approves(backend: Backend) {
    let fake = FakePortal::start().await;
    fake.require_approval(true);
    let app = TestApp::spawn_with(&backend, |c| {
        use_portal(c, &fake);
        c.provider_portal.provider_portal_reconcile_interval = Duration::from_millis(300);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    assert_eq!(state(&org), pb::DeveloperIdentityState::PendingApproval);
    fake.approve(&org.developer_id);
    wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    let events = events_through(&app, "organization.identity_changed").await;
    assert!(
        events
            .iter()
            .any(|(t, c)| t == "organization.identity_changed"
                && c.contains(&(
                    "identity_state".into(),
                    "pending_approval".into(),
                    "active".into()
                ))),
        "{events:?}"
    );
    assert_in_step(&app, &fake).await;
}

async fn the_sdks_error_bodies_are_read_too(backend: Backend) {
    let fake = FakePortal::start().await;
    fake.use_sdk_error_bodies();
    fake.set_token("a7prt-another-token");
    let app = TestApp::spawn_with(&backend, |c| use_portal(c, &fake)).await;
    let org = app.create_org("alice", "acme").await;
    let failing = wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Failing).await;
    let error = failing.identity.unwrap().last_error;
    assert!(
        error.contains("HTTP 401") && error.contains("unauthorized"),
        "{error}"
    );
    fake.set_token(TOKEN);
    wait_for_state(&app, "alice", &org.id, pb::DeveloperIdentityState::Active).await;
    assert_in_step(&app, &fake).await;
}

#[tokio::test]
async fn a_bad_provider_portal_configuration_refuses_to_start() {
    let mut config = Config::with_database("sqlite::memory:");
    config.provider_portal.provider_portal_url = Some("https://portal.example.com".into());
    let err = config.validate().unwrap_err();
    assert!(err.0.contains("token"), "{err}");
}
