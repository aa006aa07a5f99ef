//! The change log: what each RPC records, the ordered stream, resumption,
//! out-of-order commits, the audit log and the expiry sweeper; what open
//! streams cost and how they end is in [`streams`].

mod streams;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use futures::future::join_all;
use prost_types::FieldMask;
use roster::pb;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};
use tonic::{Code, Streaming};

use crate::{
    backend_tests,
    helpers::{Backend, Events, TestApp, assert_error},
};

/// Every event after `cursor`, through ListEvents, page by page.
async fn list_all(client: &mut Events, mut cursor: String) -> Vec<pb::Event> {
    let mut all = Vec::new();
    loop {
        let page = client
            .list_events(pb::ListEventsRequest {
                after_cursor: cursor.clone(),
                page_size: 100,
            })
            .await
            .unwrap()
            .into_inner();
        if page.events.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
        all.extend(page.events);
    }
}

/// Every event after `cursor` once there are at least `count` of them. On
/// PostgreSQL, events become visible only when every older transaction on
/// the cluster has finished, so a read right after a commit may still be short.
async fn list_at_least(client: &mut Events, cursor: &str, count: usize) -> Vec<pb::Event> {
    let mut events = Vec::new();
    for _ in 0..250 {
        events = list_all(client, cursor.to_owned()).await;
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {count} events, got {}: {events:?}", events.len());
}

/// The next event from a stream, waiting at most `within`.
async fn next_event(
    stream: &mut Streaming<pb::StreamEventsResponse>,
    within: Duration,
) -> Option<pb::Event> {
    match tokio::time::timeout(within, stream.message()).await {
        Ok(message) => message.unwrap().and_then(|m| m.event),
        Err(_) => None,
    }
}

fn summary(events: &[pb::Event]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.r#type.clone(),
                e.actor_user_id.clone(),
                e.subject_user_id.clone(),
                e.subject_email.clone(),
            )
        })
        .collect()
}

fn change<'a>(event: &'a pb::Event, field: &str) -> Option<(&'a str, &'a str)> {
    event
        .changes
        .iter()
        .find(|c| c.field == field)
        .map(|c| (c.old_value.as_str(), c.new_value.as_str()))
}

/// The event ids in the table, in log order, read straight from the database.
async fn table_ids(app: &TestApp) -> Vec<String> {
    let db = Database::connect(&app.config.database_url).await.unwrap();
    let ids = ids_in_log_order(&db).await;
    db.close().await.unwrap();
    ids
}

/// The event ids in `db`'s table, in log order.
async fn ids_in_log_order(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM events ORDER BY txid, seq",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<uuid::Uuid>("", "id").unwrap().to_string())
        .collect()
}

backend_tests!(
    every_change_records_its_event_with_actor_subject_and_organization,
    a_failed_change_records_nothing,
    a_follower_sees_a_new_event_within_a_second,
    concurrent_writers_and_a_resuming_follower_see_every_event_once_in_order,
    a_late_commit_is_never_skipped,
    the_audit_log_shows_an_organizations_events_newest_first_to_owners_and_admins,
    the_sweeper_expires_lapsed_invitations_as_the_system,
    inviting_a_lapsed_address_again_records_its_expiry_as_the_sweep_would,
    cursors_are_validated,
    a_stream_ended_by_a_shutdown_ends_unavailable,
);

async fn a_stream_ended_by_a_shutdown_ends_unavailable(backend: Backend) {
    let mut app = TestApp::spawn(&backend).await;
    app.create_org("alice", "first").await;
    let mut stream = app
        .event_follower()
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        next_event(&mut stream, Duration::from_secs(5))
            .await
            .expect("replayed event");
    }
    // The stream is open and idle; the server now shuts down.
    let stopping = tokio::spawn(async move {
        app.stop().await.expect("a clean shutdown");
        app
    });
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends within the grace period");
    match end {
        Err(status) => {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert_eq!(
                crate::helpers::reason(&status),
                "SHUTTING_DOWN",
                "{status:?}"
            );
        }
        Ok(message) => panic!("the stream ended with OK (or an event): {message:?}"),
    }
    drop(stopping.await.unwrap());
}

async fn every_change_records_its_event_with_actor_subject_and_organization(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.orgs("alice")
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                id: org.id.clone(),
                name: "Acme 2".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .unwrap();
    let bob = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    app.members("alice")
        .resend_invitation(pb::ResendInvitationRequest { id: bob.id.clone() })
        .await
        .unwrap();
    app.members("bob")
        .accept_invitation(pb::AcceptInvitationRequest { id: bob.id.clone() })
        .await
        .unwrap();
    let carol = app.invite("alice", &org.id, "carol", pb::Role::Admin).await;
    app.members("carol")
        .reject_invitation(pb::RejectInvitationRequest {
            id: carol.id.clone(),
        })
        .await
        .unwrap();
    let dave = app.invite("alice", &org.id, "dave", pb::Role::Member).await;
    app.members("alice")
        .cancel_invitation(pb::CancelInvitationRequest {
            id: dave.id.clone(),
        })
        .await
        .unwrap();
    app.members("alice")
        .update_member_role(pb::UpdateMemberRoleRequest {
            organization_id: org.id.clone(),
            user_id: "bob".into(),
            role: pb::Role::Admin.into(),
        })
        .await
        .unwrap();
    app.members("alice")
        .transfer_ownership(pb::TransferOwnershipRequest {
            organization_id: org.id.clone(),
            new_owner_user_id: "bob".into(),
        })
        .await
        .unwrap();
    app.members("bob")
        .remove_member(pb::RemoveMemberRequest {
            organization_id: org.id.clone(),
            user_id: "alice".into(),
        })
        .await
        .unwrap();
    app.add_member("bob", &org.id, "erin", pb::Role::Member)
        .await;
    app.members("erin")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();
    app.orgs("bob")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();

    let events = list_at_least(&mut app.event_follower(), "", 20).await;
    let s = |t: &str, actor: &str, user: &str, email: &str| {
        (
            t.to_owned(),
            actor.to_owned(),
            user.to_owned(),
            email.to_owned(),
        )
    };
    assert_eq!(
        summary(&events),
        vec![
            s("organization.created", "alice", "", ""),
            s("member.added", "alice", "alice", ""),
            s("organization.updated", "alice", "", ""),
            s("invitation.created", "alice", "", "bob@example.com"),
            s("invitation.resent", "alice", "", "bob@example.com"),
            s("invitation.accepted", "bob", "bob", "bob@example.com"),
            s("member.added", "bob", "bob", "bob@example.com"),
            s("invitation.created", "alice", "", "carol@example.com"),
            s("invitation.rejected", "carol", "carol", "carol@example.com"),
            s("invitation.created", "alice", "", "dave@example.com"),
            s("invitation.cancelled", "alice", "", "dave@example.com"),
            s("member.role_changed", "alice", "bob", ""),
            s("member.role_changed", "alice", "bob", ""),
            s("member.role_changed", "alice", "alice", ""),
            s("member.removed", "bob", "alice", ""),
            s("invitation.created", "bob", "", "erin@example.com"),
            s("invitation.accepted", "erin", "erin", "erin@example.com"),
            s("member.added", "erin", "erin", "erin@example.com"),
            s("member.removed", "erin", "erin", ""),
            s("organization.deleted", "bob", "", ""),
        ]
    );
    for event in &events {
        assert_eq!(event.organization_id, org.id);
        assert_eq!(event.developer_id, org.developer_id);
        assert!(event.create_time.is_some());
        assert!(uuid::Uuid::parse_str(&event.id).is_ok());
    }
    assert_eq!(change(&events[0], "slug"), Some(("", "acme")));
    assert_eq!(change(&events[2], "name"), Some(("Org acme", "Acme 2")));
    assert_eq!(
        change(&events[3], "invitation_id"),
        Some((bob.id.as_str(), bob.id.as_str()))
    );
    assert_eq!(change(&events[6], "role"), Some(("", "member")));
    assert_eq!(change(&events[11], "role"), Some(("member", "admin")));
    assert_eq!(change(&events[12], "role"), Some(("admin", "owner")));
    assert_eq!(change(&events[13], "role"), Some(("owner", "admin")));
    assert_eq!(change(&events[14], "role"), Some(("admin", "")));
    assert_eq!(change(&events[19], "name"), Some(("Acme 2", "")));
    // Cursors grow, and ListEvents resumes after any of them.
    assert!(events.windows(2).all(|w| w[0].cursor < w[1].cursor));
    let rest = list_at_least(&mut app.event_follower(), &events[9].cursor, 10).await;
    assert_eq!(rest, events[10..].to_vec());
}

async fn a_failed_change_records_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let before = list_at_least(&mut app.event_follower(), "", 2).await.len();
    let refused = app
        .members("alice")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await;
    assert_error(
        refused,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER",
    );
    let taken = app
        .orgs("bob")
        .create_organization(pb::CreateOrganizationRequest {
            name: "X".into(),
            slug: "acme".into(),
            ..Default::default()
        })
        .await;
    assert_error(
        taken,
        Code::AlreadyExists,
        "ORGANIZATION_SLUG_ALREADY_TAKEN",
    );
    assert_eq!(
        list_at_least(&mut app.event_follower(), "", before)
            .await
            .len(),
        before
    );
}

async fn a_follower_sees_a_new_event_within_a_second(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    app.create_org("alice", "first").await;
    let mut stream = app
        .event_follower()
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    // Catch up: organization.created and member.added.
    for _ in 0..2 {
        next_event(&mut stream, Duration::from_secs(5))
            .await
            .expect("replayed event");
    }
    for round in 0..5 {
        let started = Instant::now();
        let org = app.create_org("alice", &format!("org-{round}")).await;
        let event = next_event(&mut stream, Duration::from_secs(1))
            .await
            .expect("event within a second");
        let latency = started.elapsed();
        assert_eq!(event.r#type, "organization.created");
        assert_eq!(event.organization_id, org.id);
        assert!(latency < Duration::from_secs(1), "took {latency:?}");
        next_event(&mut stream, Duration::from_secs(1))
            .await
            .expect("member.added");
    }
}

async fn concurrent_writers_and_a_resuming_follower_see_every_event_once_in_order(
    backend: Backend,
) {
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 1_000).await;
    let follower = {
        let mut client = app.event_follower();
        tokio::spawn(async move {
            // Follow, get killed after 40 events, resume from the last cursor, repeat.
            let mut seen: Vec<pb::Event> = Vec::new();
            let mut cursor = String::new();
            let quiet = Duration::from_secs(3);
            loop {
                let mut stream = client
                    .stream_events(pb::StreamEventsRequest {
                        after_cursor: cursor.clone(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let mut this_session = 0;
                let mut ended = false;
                while this_session < 40 {
                    match next_event(&mut stream, quiet).await {
                        Some(event) => {
                            cursor = event.cursor.clone();
                            seen.push(event);
                            this_session += 1;
                        }
                        None => {
                            ended = true;
                            break;
                        }
                    }
                }
                drop(stream);
                if ended {
                    return seen;
                }
            }
        })
    };
    let writers = (0..6).map(|w| {
        let orgs = app.orgs(&format!("writer{w}"));
        let members = app.members(&format!("writer{w}"));
        async move {
            let (mut orgs, mut members) = (orgs, members);
            for i in 0..8 {
                let org = orgs
                    .create_organization(pb::CreateOrganizationRequest {
                        name: "W".into(),
                        slug: format!("w{w}-{i}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .organization
                    .unwrap();
                members
                    .create_invitation(pb::CreateInvitationRequest {
                        organization_id: org.id.clone(),
                        email: format!("guest{w}-{i}@example.com"),
                        role: pb::Role::Member.into(),
                        request_id: String::new(),
                        delivery: pb::InvitationDelivery::Unspecified.into(),
                    })
                    .await
                    .unwrap();
                orgs.update_organization(pb::UpdateOrganizationRequest {
                    organization: Some(pb::Organization {
                        id: org.id,
                        name: "W2".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["name".into()],
                    }),
                })
                .await
                .unwrap();
            }
        }
    });
    join_all(writers).await;
    let seen = follower.await.unwrap();

    let ids: Vec<String> = seen.iter().map(|e| e.id.clone()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event twice");
    assert!(
        seen.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "in cursor order"
    );
    assert_eq!(ids.len(), 6 * 8 * 4);
    assert_eq!(
        ids,
        table_ids(&app).await,
        "exactly the events in the table, in log order"
    );
}

async fn a_late_commit_is_never_skipped(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let mut follower = app.event_follower();
    let caught_up = list_at_least(&mut follower, "", 2).await;
    let cursor = caught_up.last().unwrap().cursor.clone();

    // A transaction records an event and stays open...
    let db: DatabaseConnection = Database::connect(&app.config.database_url).await.unwrap();
    let backend_kind = db.get_database_backend();
    let held = db.begin().await.unwrap();
    let held_id = uuid::Uuid::now_v7();
    let placeholder = |n: usize| {
        if backend_kind == DbBackend::Postgres {
            format!("${n}")
        } else {
            "?".to_owned()
        }
    };
    let sql = format!(
        "INSERT INTO events (id, event_type, organization_id, developer_id, actor_id, subject_user_id, subject_email, data, created_at) \
         VALUES ({}, 'organization.updated', {}, {}, 'held', '', '', '[]', {})",
        placeholder(1),
        placeholder(2),
        placeholder(3),
        placeholder(4)
    );
    let org_id = uuid::Uuid::parse_str(&org.id).unwrap();
    let developer_id = org.developer_id.clone();
    held.execute_raw(Statement::from_sql_and_values(
        backend_kind,
        &sql,
        [
            held_id.into(),
            org_id.into(),
            developer_id.into(),
            chrono::Utc::now().into(),
        ],
    ))
    .await
    .unwrap();

    // ...while another change commits (on SQLite it waits for the held
    // writer; on PostgreSQL it commits first, with a later-sorting cursor).
    let later = {
        let mut orgs = app.orgs("alice");
        tokio::spawn(async move {
            orgs.create_organization(pb::CreateOrganizationRequest {
                name: "Later".into(),
                slug: "later".into(),
                ..Default::default()
            })
            .await
            .map(drop)
        })
    };
    if backend_kind == DbBackend::Postgres {
        // The later change has committed (and sorts after the held one)...
        app.wait_for_count(
            "SELECT COUNT(*) AS n FROM organizations WHERE slug = 'later'",
            1,
        )
        .await;
    }
    // ...yet nothing after the cursor may be handed out while the held
    // transaction is open. (SQLite has one writer: there the later change
    // cannot commit before the held one, so there is nothing to wait for.)
    let early = list_all(&mut follower, cursor.clone()).await;
    assert!(
        early.is_empty(),
        "nothing may be handed out past the open transaction: {early:?}"
    );

    held.commit().await.unwrap();
    later.await.unwrap().unwrap();
    let after = list_at_least(&mut follower, &cursor, 3).await;
    let types: Vec<&str> = after.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "organization.updated",
            "organization.created",
            "member.added"
        ]
    );
    assert_eq!(
        after[0].id,
        held_id.to_string(),
        "the held event comes first"
    );
    db.close().await.unwrap();
}

async fn the_audit_log_shows_an_organizations_events_newest_first_to_owners_and_admins(
    backend: Backend,
) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let other = app.create_org("zed", "other").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let audit = |user: &str, page_token: String| {
        let mut client = app.events(user);
        let request = pb::ListAuditEventsRequest {
            organization_id: org.id.clone(),
            page_size: 3,
            page_token,
        };
        async move { client.list_audit_events(request).await }
    };
    let mut types = Vec::new();
    let mut token = String::new();
    loop {
        let page = audit("bob", token).await.unwrap().into_inner();
        assert!(
            page.events.iter().all(|e| e.organization_id == org.id),
            "only this organization"
        );
        types.extend(page.events.into_iter().map(|e| e.r#type));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        types.first().map(String::as_str),
        Some("member.added"),
        "newest first"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("organization.created")
    );
    assert_eq!(
        types.len(),
        2 + 3 + 3,
        "created + owner added, then invite/accept/add twice"
    );
    assert_error(
        audit("carol", String::new()).await,
        Code::PermissionDenied,
        "INSUFFICIENT_PERMISSION",
    );
    assert_error(
        audit("zed", String::new()).await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    let _ = other;
}

async fn the_sweeper_expires_lapsed_invitations_as_the_system(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.invitation_ttl = Duration::from_secs(1);
        c.expiry_sweep_interval = Duration::from_millis(100);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let mut follower = app.event_follower();
    let mut expired = None;
    for _ in 0..100 {
        let events = list_all(&mut follower, String::new()).await;
        expired = events
            .into_iter()
            .find(|e| e.r#type == "invitation.expired");
        if expired.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expired = expired.expect("invitation.expired recorded");
    assert_eq!(expired.actor_user_id, "system");
    assert_eq!(expired.subject_email, "bob@example.com");
    assert_eq!(
        change(&expired, "invitation_id").map(|c| c.0),
        Some(invitation.id.as_str())
    );
    let accept = app
        .members("bob")
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await;
    assert_error(accept, Code::FailedPrecondition, "INVITATION_EXPIRED");
    // Exactly once, however many sweeps ran: once an invitation made after
    // bob's had expired has been swept too, many sweeps have seen bob's.
    app.invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let mut events = Vec::new();
    for _ in 0..100 {
        events = list_all(&mut follower, String::new()).await;
        if events
            .iter()
            .any(|e| e.r#type == "invitation.expired" && e.subject_email == "carol@example.com")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expiries: Vec<&str> = events
        .iter()
        .filter(|e| e.r#type == "invitation.expired")
        .map(|e| e.subject_email.as_str())
        .collect();
    assert_eq!(expiries, ["bob@example.com", "carol@example.com"]);
}

async fn inviting_a_lapsed_address_again_records_its_expiry_as_the_sweep_would(backend: Backend) {
    // No sweep after the first (at start): the new invitation expires the
    // lapsed one itself.
    let app = TestApp::spawn_with(&backend, |c| {
        c.invitation_ttl = Duration::from_secs(1);
        c.expiry_sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    let invite = |email: &str| {
        let mut members = app.members("alice");
        let request = pb::CreateInvitationRequest {
            organization_id: org.id.clone(),
            email: email.to_owned(),
            role: pb::Role::Member.into(),
            ..Default::default()
        };
        async move { members.create_invitation(request).await }
    };
    let first = invite("Dave@Example.com")
        .await
        .expect("first invitation")
        .into_inner()
        .invitation
        .expect("invitation in reply");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    invite("dave@example.com").await.expect("second invitation");
    let events = list_all(&mut app.event_follower(), String::new()).await;
    let expired: Vec<_> = events
        .iter()
        .filter(|e| e.r#type == "invitation.expired")
        .collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    let expired = expired[0];
    assert_eq!(expired.actor_user_id, "system");
    // The lapsed invitation's address as it was invited (and as the sweep
    // records it), not the new invitation's spelling.
    assert_eq!(expired.subject_email, first.email);
    assert_eq!(expired.subject_email, "Dave@Example.com");
    assert_eq!(
        change(expired, "invitation_id").map(|c| c.0),
        Some(first.id.as_str())
    );
    assert_eq!(
        change(expired, "state"),
        Some(("pending", "expired")),
        "{expired:?}"
    );
}

async fn cursors_are_validated(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let bad = app
        .event_follower()
        .list_events(pb::ListEventsRequest {
            after_cursor: "nope".into(),
            page_size: 0,
        })
        .await;
    crate::helpers::assert_invalid(bad, "after_cursor");
    let negative = app
        .event_follower()
        .list_events(pb::ListEventsRequest {
            after_cursor: String::new(),
            page_size: -1,
        })
        .await;
    crate::helpers::assert_invalid(negative, "page_size");
    let stream = app
        .event_follower()
        .stream_events(pb::StreamEventsRequest {
            after_cursor: "zz".into(),
        })
        .await;
    crate::helpers::assert_invalid(stream, "after_cursor");
    let user = app
        .events("alice")
        .list_events(pb::ListEventsRequest::default())
        .await;
    assert_error(user, Code::PermissionDenied, "MISSING_SCOPE");
}

/// A transaction left open in *another* database of the same PostgreSQL
/// server (another service, another test) can never write to roster's
/// `events`, so it must not hold roster's change log back; a snapshot's
/// cluster-wide `xmin` alone would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
async fn a_transaction_open_in_another_database_does_not_hold_the_log_back() {
    let backend = Backend::required_postgres();
    let Backend::Postgres(other_database) = &backend else {
        unreachable!("required_postgres is PostgreSQL")
    };
    let app = TestApp::spawn(&backend).await;
    // The server's first database (`test` in .ci/run), not the app's own.
    let other: DatabaseConnection = Database::connect(other_database.as_str()).await.unwrap();
    let held = other.begin().await.unwrap();
    // A transaction gets its id at its first write, or when asked for it.
    held.execute_unprepared("SELECT pg_current_xact_id()")
        .await
        .unwrap();

    app.create_org("alice", "acme").await;
    let mut follower = app.event_follower();
    let events = list_at_least(&mut follower, "", 2).await;
    assert_eq!(events[0].r#type, "organization.created");

    held.rollback().await.unwrap();
}
