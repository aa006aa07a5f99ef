//! Issue 9, item 5: a database outage is `UNAVAILABLE` (reason
//! `DATABASE_UNAVAILABLE`), which clients retry and alerts tell from a
//! bug, never `INTERNAL`.
//!
//! On PostgreSQL, another session kills roster's connections
//! (`pg_terminate_backend`) over and over while calls run. On SQLite there
//! is no such thing as a connection killed from outside; its outage codes
//! (BUSY past the busy timeout, READONLY, IOERR, ...) are mapped by the same
//! function and checked in `store::db_error`'s unit tests.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use roster::pb;
use sea_orm::{ConnectionTrait, Database, Statement, TransactionTrait};
use tonic::Code;

use crate::helpers::{Backend, TestApp, reason};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
async fn connections_killed_under_calls_answer_unavailable_not_internal() {
    let app = TestApp::spawn_with(&Backend::required_postgres(), |c| {
        c.max_owned_organizations = 1_000;
    })
    .await;
    let org = app.create_org("alice", "acme").await;

    // Kills every other session on the app's database, every few milliseconds.
    let killer = Database::connect(&app.config.database_url).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let killing = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut killed = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                let row = killer
                    .query_one_raw(Statement::from_string(
                        killer.get_database_backend(),
                        "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                killed += row.try_get::<i64>("", "n").unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            killer.close().await.unwrap();
            killed
        }
    });

    // Writes and reads that always reach the database, from several callers at once.
    let callers: Vec<_> = (0..4)
        .map(|caller| {
            let mut orgs = app.orgs("alice");
            let mut members = app.members("alice");
            let org = org.id.clone();
            tokio::spawn(async move {
                let mut failures = Vec::new();
                for n in 0..40 {
                    let created = orgs
                        .create_organization(pb::CreateOrganizationRequest {
                            name: "Org".into(),
                            slug: format!("org-{caller}-{n}"),
                            ..Default::default()
                        })
                        .await
                        .map(drop);
                    let listed = members
                        .list_members(pb::ListMembersRequest {
                            organization_id: org.clone(),
                            ..Default::default()
                        })
                        .await
                        .map(drop);
                    failures.extend(created.err());
                    failures.extend(listed.err());
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for caller in callers {
        failures.extend(caller.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killing.await.unwrap();
    assert!(killed > 0, "no connection was killed");

    let wrong: Vec<_> = failures
        .iter()
        .filter(|status| {
            !(status.code() == Code::Unavailable && reason(status) == "DATABASE_UNAVAILABLE")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} failures were not UNAVAILABLE DATABASE_UNAVAILABLE: {:?}",
        wrong.len(),
        failures.len(),
        wrong.first()
    );
    assert!(
        failures
            .iter()
            .any(|status| status.code() == Code::Unavailable),
        "no call was hit by a killed connection ({killed} killed); the test proved nothing"
    );

    // Once the connections stop dying, roster serves again.
    app.create_org("alice", "after").await;
}

/// Issue 9, noticed with item 5: PostgreSQL breaking a deadlock answered
/// `INTERNAL`. Another session holds a member's row and then asks for the
/// organization's row, which roster's UpdateMemberRole holds while it waits
/// for the member's: a real deadlock, which PostgreSQL breaks by rolling
/// back roster's transaction (roster's session waits first, so its
/// `deadlock_timeout` of 1 s fires first; the other session's is 60 s).
/// The call must answer `ABORTED TRANSACTION_CONFLICT`, having changed
/// nothing, and the same call made again succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
async fn a_deadlock_with_another_session_answers_aborted_and_changes_nothing() {
    let app = TestApp::spawn(&Backend::required_postgres()).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;

    let other = Database::connect(&app.config.database_url).await.unwrap();
    let backend = other.get_database_backend();
    let sql = |text: String| Statement::from_string(backend, text);
    let held = other.begin().await.unwrap();
    held.execute_raw(sql("SET LOCAL deadlock_timeout = '60s'".into()))
        .await
        .unwrap();
    held.execute_raw(sql(format!(
        "UPDATE memberships SET updated_at = updated_at \
         WHERE organization_id = '{}' AND user_id = 'bob'",
        org.id
    )))
    .await
    .unwrap();

    let mut members = app.members("alice");
    let change = pb::UpdateMemberRoleRequest {
        organization_id: org.id.clone(),
        user_id: "bob".into(),
        role: pb::Role::Admin.into(),
    };
    let call = tokio::spawn({
        let change = change.clone();
        async move { members.update_member_role(change).await }
    });
    // Roster's transaction now holds the organization's row and waits for
    // bob's: wait until PostgreSQL says a session of this database waits
    // on a lock, then close the cycle within its deadlock_timeout.
    let observer = Database::connect(&app.config.database_url).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let row = observer
            .query_one_raw(sql("SELECT COUNT(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'"
                .into()))
            .await
            .unwrap()
            .unwrap();
        if row.try_get::<i64>("", "n").unwrap() > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "roster's UpdateMemberRole never waited for the held row"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    held.execute_raw(sql(format!(
        "SELECT id FROM organizations WHERE id = '{}' FOR UPDATE",
        org.id
    )))
    .await
    .unwrap();

    let answer = call.await.unwrap();
    let status = answer.expect_err("the deadlock's victim cannot have succeeded");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Aborted, "TRANSACTION_CONFLICT"),
        "{status:?}"
    );
    held.rollback().await.unwrap();
    assert_eq!(
        app.role_of("alice", &org.id, "bob").await,
        Some(pb::Role::Member),
        "nothing changed"
    );

    // The same call again, with no one in the way, succeeds.
    app.members("alice")
        .update_member_role(change)
        .await
        .expect("the retried call");
    assert_eq!(
        app.role_of("alice", &org.id, "bob").await,
        Some(pb::Role::Admin)
    );
    other.close().await.unwrap();
    observer.close().await.unwrap();
}
