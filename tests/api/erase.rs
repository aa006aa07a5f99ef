//! `EraseUser`: an administrator erases a person (GDPR). Afterwards no
//! text column of any table (listed from the database's own catalog, so a
//! table added later is searched too) holds their address or name; the
//! change log keeps every event in its place and ends with `user.erased`.

use std::{collections::BTreeMap, time::Duration};

use roster::{auth::token::TokenRequest, pb};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    backend_tests,
    helpers::{Backend, Members, TestApp, assert_error, assert_invalid},
    services::service_token,
};

backend_tests!(
    erasing_a_person_leaves_no_trace_of_their_address_or_name_in_any_table,
    erasure_is_refused_without_a_new_owner_and_then_changes_nothing,
    every_field_of_an_erasure_is_checked_and_a_bad_one_changes_nothing,
    an_erasure_racing_the_persons_own_acceptance_leaves_them_in_no_organization,
);

const SUB: &str = "erin";
/// As her token says it; invitations use other spellings.
const EMAIL: &str = "Erin.Private@Example.com";
const NAME: &str = "Erin Quux-Private";
/// What the search looks for, in lower case.
const NEEDLES: [&str; 2] = ["erin.private@example.com", "erin quux-private"];

fn erin_token(app: &TestApp) -> String {
    app.token_with(TokenRequest {
        sub: SUB.into(),
        email: Some(EMAIL.into()),
        name: Some(NAME.into()),
        email_verified: true,
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    })
}

/// The membership client of an administrator (`organizations.admin`).
fn admin(app: &TestApp) -> Members {
    let token = service_token(app, "privacy-desk", &["organizations.admin"]);
    app.members_with_token(Some(&token))
}

async fn erase(
    app: &TestApp,
    user: &str,
    new_owners: &[(&str, &str)],
) -> Result<pb::EraseUserResponse, Status> {
    admin(app)
        .erase_user(pb::EraseUserRequest {
            user_id: user.to_owned(),
            new_owners: new_owners
                .iter()
                .map(|(organization_id, user_id)| pb::NewOwner {
                    organization_id: (*organization_id).to_owned(),
                    user_id: (*user_id).to_owned(),
                })
                .collect(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Every event in the log, as the Provider Portal reads it.
async fn all_events(app: &TestApp) -> Vec<pb::Event> {
    let mut follower = app.event_follower();
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = follower
            .list_events(pb::ListEventsRequest {
                after_cursor: cursor.clone(),
                page_size: 500,
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

/// Every column of every table that can hold text, as the database's own
/// catalog lists them.
async fn text_columns(db: &impl ConnectionTrait) -> Vec<(String, String)> {
    let backend = db.get_database_backend();
    let sql = match backend {
        // Text affinity (SQLite's rule): a declared type with CHAR, CLOB or
        // TEXT in it; blobs and numbers cannot hold an address.
        DbBackend::Sqlite => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND (upper(p.type) LIKE '%CHAR%' \
             OR upper(p.type) LIKE '%CLOB%' OR upper(p.type) LIKE '%TEXT%')"
        }
        _ => {
            "SELECT table_name::text AS t, column_name::text AS c \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            (
                row.try_get::<String>("", "t").unwrap(),
                row.try_get::<String>("", "c").unwrap(),
            )
        })
        .collect()
}

/// Where Erin's address and name occur: (table.column, needle) → rows.
async fn search(app: &TestApp) -> BTreeMap<String, i64> {
    search_for(app, &NEEDLES).await
}

/// Where each of `needles` (lower case) occurs: (table.column, needle) → rows.
async fn search_for(app: &TestApp, needles: &[&str]) -> BTreeMap<String, i64> {
    let db = Database::connect(&app.config.database_url).await.unwrap();
    let backend = db.get_database_backend();
    let columns = text_columns(&db).await;
    // The tables the erasure must search: if one is missing, the catalog
    // query is wrong, and the test would pass for nothing.
    for table in [
        "users",
        "invitations",
        "mail_outbox",
        "events",
        "organizations",
    ] {
        assert!(
            columns.iter().any(|(t, _)| t == table),
            "{table} not among the text columns: {columns:?}"
        );
    }
    let mut found = BTreeMap::new();
    for (table, column) in columns {
        for needle in needles {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM \"{table}\" \
                 WHERE lower(CAST(\"{column}\" AS TEXT)) LIKE '%{needle}%'"
            );
            let row = db
                .query_one_raw(Statement::from_string(backend, sql))
                .await
                .unwrap()
                .unwrap();
            let n: i64 = row.try_get("", "n").unwrap();
            if n > 0 {
                found.insert(format!("{table}.{column} ~ {needle}"), n);
            }
        }
    }
    db.close().await.unwrap();
    found
}

/// Erin (`erin`, her token) invites `user` to `org` as `role`; they accept.
async fn joins_erins(app: &TestApp, erin: &str, org: &str, user: &str, role: pb::Role) {
    let invitation = app
        .members_with_token(Some(erin))
        .create_invitation(pb::CreateInvitationRequest {
            organization_id: org.to_owned(),
            email: format!("{user}@example.com"),
            role: role.into(),
            ..Default::default()
        })
        .await
        .expect("erin invites")
        .into_inner()
        .invitation
        .unwrap();
    app.members(user)
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .expect("accept erin's invitation");
}

/// `owner` invites Erin (at `address`) as `role`; she accepts.
async fn erin_joins(app: &TestApp, owner: &str, org: &str, address: &str, role: pb::Role) {
    let invitation = invite(app, owner, org, address, role).await;
    app.members_with_token(Some(&erin_token(app)))
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .expect("erin accepts");
}

async fn invite(
    app: &TestApp,
    owner: &str,
    org: &str,
    address: &str,
    role: pb::Role,
) -> pb::Invitation {
    app.members(owner)
        .create_invitation(pb::CreateInvitationRequest {
            organization_id: org.to_owned(),
            email: address.to_owned(),
            role: role.into(),
            ..Default::default()
        })
        .await
        .expect("invite")
        .into_inner()
        .invitation
        .unwrap()
}

/// Erin's world: organizations where she is the only member, the last
/// owner with others, one of two owners, an admin and a member;
/// invitations to her address (pending, rejected, accepted), one she sent;
/// emails to her and from her; an active organization.
struct World {
    solo: String,
    shared: String,
    co_owned: String,
    admin_of: String,
    member_of: String,
    pending: pb::Invitation,
}

async fn erins_world(app: &TestApp) -> World {
    let erin = erin_token(app);
    let solo = app
        .create_org_with_token(&erin, "Solo", "erin-solo", "erin creates")
        .await
        .id;
    let shared = app
        .create_org_with_token(&erin, "Shared", "erin-shared", "erin creates")
        .await
        .id;
    joins_erins(app, &erin, &shared, "carol", pb::Role::Admin).await;
    joins_erins(app, &erin, &shared, "bob", pb::Role::Member).await;
    // Erin invites someone: her name goes into the email's text.
    app.members_with_token(Some(&erin))
        .create_invitation(pb::CreateInvitationRequest {
            organization_id: shared.clone(),
            email: "ivan@example.com".into(),
            role: pb::Role::Member.into(),
            ..Default::default()
        })
        .await
        .expect("erin invites ivan");

    let co_owned = app.create_org("dave", "dave-co").await.id;
    erin_joins(app, "dave", &co_owned, EMAIL, pb::Role::Admin).await;
    app.members("dave")
        .update_member_role(pb::UpdateMemberRoleRequest {
            organization_id: co_owned.clone(),
            user_id: SUB.into(),
            role: pb::Role::Owner.into(),
        })
        .await
        .expect("erin becomes an owner");
    let admin_of = app.create_org("frank", "frank-admin").await.id;
    erin_joins(
        app,
        "frank",
        &admin_of,
        "erin.private@example.com",
        pb::Role::Admin,
    )
    .await;
    let member_of = app.create_org("frank", "frank-member").await.id;
    erin_joins(
        app,
        "frank",
        &member_of,
        "ERIN.PRIVATE@EXAMPLE.COM",
        pb::Role::Member,
    )
    .await;

    let rejected_in = app.create_org("henry", "henry-rejected").await.id;
    let rejected = invite(app, "henry", &rejected_in, EMAIL, pb::Role::Member).await;
    app.members_with_token(Some(&erin))
        .reject_invitation(pb::RejectInvitationRequest { id: rejected.id })
        .await
        .expect("erin rejects");
    let pending_in = app.create_org("grace", "grace-pending").await.id;
    let pending = invite(
        app,
        "grace",
        &pending_in,
        "Erin.PRIVATE@example.com",
        pb::Role::Admin,
    )
    .await;

    app.orgs_with_token(Some(&erin))
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: member_of.clone(),
        })
        .await
        .expect("erin picks an active organization");
    // The invitation emails reach the outbox in their transactions; wait
    // until the dispatcher has been through them, so their rows stand still.
    app.wait_for_emails(8).await;
    World {
        solo,
        shared,
        co_owned,
        admin_of,
        member_of,
        pending,
    }
}

async fn erasing_a_person_leaves_no_trace_of_their_address_or_name_in_any_table(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let world = erins_world(&app).await;
    let before = search(&app).await;
    for table in ["users", "invitations", "mail_outbox", "events"] {
        assert!(
            before.keys().any(|k| k.starts_with(&format!("{table}."))),
            "the search finds Erin in {table} before the erasure: {before:?}"
        );
    }
    let events_before = all_events(&app).await;

    let erased = erase(&app, SUB, &[(&world.shared, "carol")])
        .await
        .expect("erase erin");

    assert!(!erased.revision.is_empty());
    assert_eq!(erased.deleted_organization_ids, vec![world.solo.clone()]);
    let mut left = erased.left_organization_ids.clone();
    left.sort();
    let mut want = vec![
        world.shared.clone(),
        world.co_owned.clone(),
        world.admin_of.clone(),
        world.member_of.clone(),
    ];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(
        erased.cancelled_invitation_ids,
        vec![world.pending.id.clone()]
    );

    let after = search(&app).await;
    assert!(after.is_empty(), "Erin is still in: {after:?}");

    // Every event keeps its place: same id at the same cursor, in order.
    let events_after = all_events(&app).await;
    let place = |events: &[pb::Event]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| (e.cursor.clone(), e.id.clone()))
            .collect()
    };
    assert_eq!(
        place(&events_after[..events_before.len()]),
        place(&events_before),
        "earlier events moved"
    );
    let erasure = &events_after[events_before.len()..];
    let last = erasure.last().unwrap();
    assert_eq!(last.r#type, "user.erased");
    assert_eq!(last.subject_user_id, SUB);
    assert_eq!(last.organization_id, "");
    assert_eq!(last.actor_user_id, "privacy-desk");
    assert_eq!(last.cursor, erased.revision);
    // Before it: carol made owner, Erin removed four times, the solo
    // organization deleted, the pending invitation cancelled.
    let types: Vec<&str> = erasure.iter().map(|e| e.r#type.as_str()).collect();
    for (kind, count) in [
        ("member.role_changed", 1),
        ("member.removed", 4),
        ("organization.deleted", 1),
        ("invitation.cancelled", 1),
    ] {
        assert_eq!(
            types.iter().filter(|t| **t == kind).count(),
            count,
            "{kind} in {types:?}"
        );
    }
    // What the log said about her now reads as erased, her id kept.
    let accepted = events_after
        .iter()
        .find(|e| e.r#type == "invitation.accepted" && e.subject_user_id == SUB)
        .unwrap();
    assert_eq!(accepted.subject_user_id, SUB);
    assert_eq!(accepted.subject_email, "[erased]");

    // Carol owns the shared organization; Erin is nowhere.
    assert_eq!(
        app.role_of("carol", &world.shared, "carol").await,
        Some(pb::Role::Owner)
    );
    assert_eq!(app.role_of("carol", &world.shared, SUB).await, None);
    let reader = service_token(&app, "support", &["organizations.read"]);
    let theirs = app
        .orgs_with_token(Some(&reader))
        .list_organizations(pb::ListOrganizationsRequest {
            user_id: SUB.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organizations;
    assert!(theirs.is_empty(), "{theirs:?}");
    let invitation = app
        .members("grace")
        .get_invitation(pb::GetInvitationRequest {
            id: world.pending.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(invitation.state(), pb::InvitationState::Cancelled);
    assert_eq!(invitation.email, "[erased]");

    // Again: nothing left to erase, nothing new in the log.
    let again = erase(&app, SUB, &[(&world.shared, "carol")])
        .await
        .expect("erase erin again");
    assert_eq!(again.revision, "");
    assert!(again.left_organization_ids.is_empty());
    assert_eq!(all_events(&app).await.len(), events_after.len());
    // Someone roster never knew: the same.
    let nobody = erase(&app, "never-seen", &[]).await.expect("erase nobody");
    assert_eq!(nobody.revision, "");

    // Erin signs in again: a new person, whose claims are stored again.
    let erin = erin_token(&app);
    let fresh = app
        .create_org_with_token(&erin, "Fresh", "erin-fresh", "erin creates again")
        .await;
    let members = app.members_as(&erin, &fresh.id).await;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].email, EMAIL);
    assert_eq!(members[0].display_name, NAME);
    assert!(!search(&app).await.is_empty());
}

async fn erasure_is_refused_without_a_new_owner_and_then_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let world = erins_world(&app).await;
    let events_before = all_events(&app).await;
    let found_before = search(&app).await;

    // The shared organization has other members and Erin is its last owner.
    let refused = erase(&app, SUB, &[]).await;
    let status = refused.as_ref().unwrap_err().clone();
    assert_error(refused, Code::FailedPrecondition, "NEW_OWNER_REQUIRED");
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.metadata["organization_ids"], world.shared);
    assert!(status.message().contains(&world.shared), "{status:?}");
    // A new owner for another organization does not count.
    let elsewhere = erase(&app, SUB, &[(&world.co_owned, "dave")]).await;
    assert_error(elsewhere, Code::FailedPrecondition, "NEW_OWNER_REQUIRED");

    assert_eq!(all_events(&app).await, events_before);
    assert_eq!(search(&app).await, found_before);
    assert_eq!(
        app.role_of("carol", &world.shared, SUB).await,
        Some(pb::Role::Owner)
    );
    let solo = app
        .orgs_with_token(Some(&erin_token(&app)))
        .get_organization(pb::GetOrganizationRequest {
            key: Some(pb::get_organization_request::Key::Id(world.solo.clone())),
        })
        .await;
    assert!(
        solo.is_ok(),
        "the solo organization is still there: {solo:?}"
    );

    // With one, it goes through.
    let erased = erase(&app, SUB, &[(&world.shared, "bob")]).await.unwrap();
    assert!(!erased.revision.is_empty());
    assert_eq!(
        app.role_of("bob", &world.shared, "bob").await,
        Some(pb::Role::Owner)
    );
    assert!(search(&app).await.is_empty());
}

async fn every_field_of_an_erasure_is_checked_and_a_bad_one_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let world = erins_world(&app).await;
    let events_before = all_events(&app).await;
    let shared = world.shared.as_str();

    assert_invalid(erase(&app, "", &[]).await, "user_id");
    assert_invalid(erase(&app, " erin", &[]).await, "user_id");
    assert_invalid(
        erase(&app, SUB, &[("not-an-id", "carol")]).await,
        "new_owners[0].organization_id",
    );
    assert_invalid(
        erase(&app, SUB, &[(shared, "")]).await,
        "new_owners[0].user_id",
    );
    assert_invalid(
        erase(&app, SUB, &[(shared, "bad\u{7}user")]).await,
        "new_owners[0].user_id",
    );
    // Erin cannot succeed herself.
    assert_invalid(
        erase(&app, SUB, &[(shared, SUB)]).await,
        "new_owners[0].user_id",
    );
    // One new owner per organization.
    assert_invalid(
        erase(&app, SUB, &[(shared, "carol"), (shared, "bob")]).await,
        "new_owners[1].organization_id",
    );
    // The new owner must be a member now.
    assert_invalid(
        erase(&app, SUB, &[(shared, "zoe")]).await,
        "new_owners[0].user_id",
    );
    // Every bad field at once.
    let status = erase(&app, "", &[("x", "")]).await.unwrap_err();
    assert_eq!(
        crate::helpers::bad_fields(&status),
        vec![
            "user_id".to_owned(),
            "new_owners[0].organization_id".to_owned(),
            "new_owners[0].user_id".to_owned(),
        ]
    );

    // A person may not erase anyone, not even an owner of everything;
    // another service's scope does not reach it either.
    let person = app
        .members_with_token(Some(&erin_token(&app)))
        .erase_user(pb::EraseUserRequest {
            user_id: SUB.into(),
            new_owners: Vec::new(),
        })
        .await;
    assert_error(person, Code::PermissionDenied, "MISSING_SCOPE");
    let reader = service_token(&app, "support", &["organizations.read"]);
    let service = app
        .members_with_token(Some(&reader))
        .erase_user(pb::EraseUserRequest {
            user_id: SUB.into(),
            new_owners: Vec::new(),
        })
        .await;
    assert_error(service, Code::PermissionDenied, "MISSING_SCOPE");

    assert_eq!(all_events(&app).await, events_before);
    assert_eq!(
        app.role_of("carol", shared, SUB).await,
        Some(pb::Role::Owner)
    );
}

async fn an_erasure_racing_the_persons_own_acceptance_leaves_them_in_no_organization(
    backend: Backend,
) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("grace", "grace-race").await.id;
    for round in 0..6 {
        let sub = format!("racer-{round}");
        let email = format!("Racer.{round}@Example.com");
        let name = format!("Racer Number{round}");
        let token = app.token_with(TokenRequest {
            sub: sub.clone(),
            email: Some(email.clone()),
            name: Some(name.clone()),
            email_verified: true,
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        });
        // Known to roster (an organization of their own), and invited.
        app.create_org_with_token(
            &token,
            "Own",
            &format!("racer-own-{round}"),
            "racer creates",
        )
        .await;
        let invitation = invite(&app, "grace", &org, &email, pb::Role::Member).await;

        let mut members = app.members_with_token(Some(&token));
        let accept = members.accept_invitation(pb::AcceptInvitationRequest { id: invitation.id });
        let (accepted, erased) = tokio::join!(accept, erase(&app, &sub, &[]));

        let erased = erased.expect("the erasure goes through");
        // Whichever committed first, they are a member of nothing now.
        assert_eq!(
            app.role_of("grace", &org, &sub).await,
            None,
            "round {round}"
        );
        match accepted {
            // First: the erasure then removed them.
            Ok(_) => assert_eq!(erased.left_organization_ids, vec![org.clone()]),
            // Second: the invitation was withdrawn (or no longer theirs).
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::FailedPrecondition | Code::NotFound),
                    "round {round}: {status:?}"
                );
                assert_eq!(erased.cancelled_invitation_ids.len(), 1, "round {round}");
            }
        }
        let needles = [email.to_lowercase(), name.to_lowercase()];
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        let left = search_for(&app, &needles).await;
        assert!(left.is_empty(), "round {round}: {left:?}");
    }
}
