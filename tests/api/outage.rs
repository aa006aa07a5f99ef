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
use sea_orm::{ConnectionTrait, Database, Statement};
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
