//! The organization lifecycle (issue 10, section 2): suspension by platform
//! administrators, soft deletion, restore and purge, each step with its
//! event, and checks that never say yes after a suspension or deletion
//! has returned, on either of two replicas.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use prost_types::FieldMask;
use roster::pb::{self, get_organization_request::Key};
use tonic::Code;

use crate::{
    backend_tests,
    fake_portal::FakePortal,
    helpers::{Backend, Orgs, TestApp, assert_error, assert_invalid},
    provider_portal::use_portal,
};

const SUSPENDED: &str = "ORGANIZATION_SUSPENDED";

/// The organization client of a platform administrator (`organizations.admin`).
pub fn admin(app: &TestApp) -> Orgs {
    let token = crate::services::service_token(app, "platform-admin", &["organizations.admin"]);
    app.orgs_with_token(Some(&token))
}

/// Suspends `org` as a platform administrator; the change's revision.
pub async fn suspend(app: &TestApp, org: &str, reason: &str) -> String {
    admin(app)
        .suspend_organization(pb::SuspendOrganizationRequest {
            id: org.to_owned(),
            reason: reason.to_owned(),
        })
        .await
        .expect("suspend")
        .into_inner()
        .revision
}

/// Deletes `org` as `user`; the change's revision.
pub async fn delete(app: &TestApp, user: &str, org: &str) -> String {
    app.orgs(user)
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.to_owned(),
            etag: String::new(),
        })
        .await
        .expect("delete")
        .into_inner()
        .revision
}

/// A service's check of `user`'s `permission` in `org`.
async fn check(app: &TestApp, user: &str, org: &str, permission: &str) -> pb::PermissionResult {
    app.authz_service()
        .check_permission(pb::CheckPermissionRequest {
            check: Some(pb::PermissionCheck {
                user_id: user.into(),
                organization_id: org.into(),
                permission: permission.into(),
                ..Default::default()
            }),
            at_least_revision: String::new(),
        })
        .await
        .expect("check")
        .into_inner()
        .result
        .expect("a result")
}

async fn get(app: &TestApp, user: &str, key: Key) -> Result<pb::Organization, tonic::Status> {
    app.orgs(user)
        .get_organization(pb::GetOrganizationRequest { key: Some(key) })
        .await
        .map(|reply| reply.into_inner().organization.expect("organization"))
}

/// The log's events about `org`: (type, [(field, old, new)]).
async fn events_of(app: &TestApp, org: &str) -> Vec<(String, Vec<(String, String, String)>)> {
    app.event_follower()
        .list_events(pb::ListEventsRequest {
            after_cursor: String::new(),
            page_size: 500,
        })
        .await
        .expect("list events")
        .into_inner()
        .events
        .into_iter()
        .filter(|e| e.organization_id == org)
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

fn change<'a>(changes: &'a [(String, String, String)], field: &str) -> (&'a str, &'a str) {
    changes
        .iter()
        .find(|(f, _, _)| f == field)
        .map(|(_, old, new)| (old.as_str(), new.as_str()))
        .unwrap_or_else(|| panic!("no change of {field} in {changes:?}"))
}

/// alice owns it, bob is an admin, carol a member, and dave is invited.
async fn team(app: &TestApp, slug: &str) -> (pb::Organization, pb::Invitation) {
    let org = app.create_org("alice", slug).await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let invitation = app.invite("alice", &org.id, "dave", pb::Role::Member).await;
    (org, invitation)
}

backend_tests!(
    a_suspended_organization_reads_but_refuses_every_write_with_the_reason,
    suspend_and_resume_refuse_bad_input_and_say_what_is_wrong,
    a_deleted_organization_is_gone_but_its_slugs_stay_reserved,
    its_owners_and_administrators_restore_a_deleted_organization_and_no_one_else,
    a_deleted_organization_is_purged_after_its_retention_and_each_step_is_an_event,
    the_developer_identity_stays_while_deleted_and_goes_at_the_purge,
    no_check_says_yes_after_a_suspension_or_deletion_returned_on_either_replica,
);

async fn a_suspended_organization_reads_but_refuses_every_write_with_the_reason(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (org, invitation) = team(&app, "acme").await;
    assert!(
        check(&app, "bob", &org.id, "applications.create")
            .await
            .allowed
    );

    let suspended = admin(&app)
        .suspend_organization(pb::SuspendOrganizationRequest {
            id: org.id.clone(),
            reason: "  unpaid invoices \n".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let shown = suspended.organization.unwrap();
    assert_eq!(shown.state(), pb::OrganizationState::Suspended);
    assert_eq!(shown.suspend_reason, "unpaid invoices");
    assert!(shown.suspend_time.is_some() && shown.delete_time.is_none());
    assert!(!suspended.revision.is_empty());

    // Reads go on, and show the suspension.
    let read = get(&app, "carol", Key::Id(org.id.clone())).await.unwrap();
    assert_eq!(read.state(), pb::OrganizationState::Suspended);
    assert_eq!(read.suspend_reason, "unpaid invoices");
    assert_eq!(app.members_as(&app.token("carol"), &org.id).await.len(), 3);
    let listed = app
        .orgs("carol")
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .organizations;
    assert_eq!(listed.len(), 1);

    // Checks: reads yes; everything else no, with the reason.
    let read_check = check(&app, "carol", &org.id, "applications.read").await;
    assert!(read_check.allowed && read_check.reason.is_empty());
    for (user, permission) in [
        ("alice", "organization.delete"),
        ("bob", "applications.create"),
        ("bob", "members.manage"),
        ("carol", "credentials.create"),
    ] {
        let answer = check(&app, user, &org.id, permission).await;
        assert!(!answer.allowed, "{user} {permission}");
        assert_eq!(answer.reason, SUSPENDED, "{user} {permission}");
        assert_eq!(answer.organization_id, org.id);
    }
    // A member whose role does not grant it, and an outsider: no reason.
    let outsider = check(&app, "mallory", &org.id, "applications.read").await;
    assert!(!outsider.allowed && outsider.reason.is_empty());

    // Every write: refused with the reason, and nothing changes.
    let (mut alice_orgs, mut alice_members) = (app.orgs("alice"), app.members("alice"));
    assert_error(
        alice_orgs
            .update_organization(pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    id: org.id.clone(),
                    name: "Renamed".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["name".into()],
                }),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        alice_orgs
            .delete_organization(pb::DeleteOrganizationRequest {
                id: org.id.clone(),
                etag: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        alice_members
            .create_invitation(pb::CreateInvitationRequest {
                organization_id: org.id.clone(),
                email: "erin@example.com".into(),
                role: pb::Role::Member.into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        alice_members
            .update_member_role(pb::UpdateMemberRoleRequest {
                organization_id: org.id.clone(),
                user_id: "carol".into(),
                role: pb::Role::Admin.into(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        alice_members
            .remove_member(pb::RemoveMemberRequest {
                organization_id: org.id.clone(),
                user_id: "carol".into(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        alice_members
            .transfer_ownership(pb::TransferOwnershipRequest {
                organization_id: org.id.clone(),
                new_owner_user_id: "bob".into(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        alice_members
            .resend_invitation(pb::ResendInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        alice_members
            .cancel_invitation(pb::CancelInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        app.members("carol")
            .leave_organization(pb::LeaveOrganizationRequest {
                organization_id: org.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        app.members("dave")
            .accept_invitation(pb::AcceptInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    assert_error(
        app.members("dave")
            .reject_invitation(pb::RejectInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        SUSPENDED,
    );
    // An outsider learns nothing of the suspension: still NOT_FOUND.
    assert_error(
        app.members("mallory")
            .leave_organization(pb::LeaveOrganizationRequest {
                organization_id: org.id.clone(),
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_eq!(app.members_as(&app.token("alice"), &org.id).await.len(), 3);
    assert_eq!(
        get(&app, "alice", Key::Id(org.id.clone()))
            .await
            .unwrap()
            .name,
        org.name
    );

    // A lookup for a non-read permission leaves it out; a read finds it.
    let lookup = |permission: &'static str| {
        let mut authz = app.authz_service();
        async move {
            authz
                .lookup_organizations(pb::LookupOrganizationsRequest {
                    user_id: "bob".into(),
                    permission: permission.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .organizations
                .len()
        }
    };
    assert_eq!(lookup("applications.create").await, 0);
    assert_eq!(lookup("applications.read").await, 1);

    assert_error(
        admin(&app)
            .suspend_organization(pb::SuspendOrganizationRequest {
                id: org.id.clone(),
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        "ORGANIZATION_ALREADY_SUSPENDED",
    );

    let resumed = admin(&app)
        .resume_organization(pb::ResumeOrganizationRequest { id: org.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(resumed.state(), pb::OrganizationState::Active);
    assert!(resumed.suspend_time.is_none() && resumed.suspend_reason.is_empty());
    let answer = check(&app, "bob", &org.id, "applications.create").await;
    assert!(answer.allowed && answer.reason.is_empty());
    assert_eq!(lookup("applications.create").await, 1);
    app.members("dave")
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .expect("writes are open again");
    assert_error(
        admin(&app)
            .resume_organization(pb::ResumeOrganizationRequest { id: org.id.clone() })
            .await,
        Code::FailedPrecondition,
        "ORGANIZATION_NOT_SUSPENDED",
    );

    let events = events_of(&app, &org.id).await;
    let (_, suspended) = events
        .iter()
        .find(|(t, _)| t == "organization.suspended")
        .expect("organization.suspended");
    assert_eq!(change(suspended, "state"), ("active", "suspended"));
    assert_eq!(change(suspended, "suspend_reason"), ("", "unpaid invoices"));
    let (_, resumed) = events
        .iter()
        .find(|(t, _)| t == "organization.resumed")
        .expect("organization.resumed");
    assert_eq!(change(resumed, "state"), ("suspended", "active"));
}

async fn suspend_and_resume_refuse_bad_input_and_say_what_is_wrong(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let mut admin = admin(&app);
    let suspend = |id: &str, reason: &str| pb::SuspendOrganizationRequest {
        id: id.into(),
        reason: reason.into(),
    };
    assert_invalid(
        admin
            .suspend_organization(suspend(&org.id, &"x".repeat(501)))
            .await,
        "reason",
    );
    assert_invalid(
        admin
            .suspend_organization(suspend(&org.id, "bell\u{7}"))
            .await,
        "reason",
    );
    assert_invalid(admin.suspend_organization(suspend("nope", "")).await, "id");
    assert_invalid(
        admin
            .resume_organization(pb::ResumeOrganizationRequest { id: "nope".into() })
            .await,
        "id",
    );
    assert_invalid(
        admin
            .restore_organization(pb::RestoreOrganizationRequest { id: String::new() })
            .await,
        "id",
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_error(
        admin.suspend_organization(suspend(&unknown, "")).await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    // 500 characters is still fine; nothing was suspended before.
    assert_eq!(
        get(&app, "alice", Key::Id(org.id.clone()))
            .await
            .unwrap()
            .state(),
        pb::OrganizationState::Active
    );
    admin
        .suspend_organization(suspend(&org.id, &"x".repeat(500)))
        .await
        .expect("500 characters");

    // An administrator's token limited to other organizations reaches none of these.
    let limited = app.token_with(roster::auth::token::TokenRequest {
        sub: "limited-admin".into(),
        scopes: vec!["organizations.admin".into()],
        organizations: vec![uuid::Uuid::now_v7().to_string()],
        ttl: Duration::from_secs(3600),
        ..Default::default()
    });
    assert_error(
        app.orgs_with_token(Some(&limited))
            .resume_organization(pb::ResumeOrganizationRequest { id: org.id.clone() })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    // People may not suspend, whatever their role.
    assert_error(
        app.orgs("alice")
            .suspend_organization(suspend(&org.id, ""))
            .await,
        Code::PermissionDenied,
        "MISSING_SCOPE",
    );
}

async fn a_deleted_organization_is_gone_but_its_slugs_stay_reserved(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (org, invitation) = team(&app, "old-acme").await;
    // A rename first: the old slug is retained, the new one current.
    app.update_org(
        "alice",
        pb::Organization {
            id: org.id.clone(),
            slug: "acme".into(),
            ..Default::default()
        },
        &["slug"],
    )
    .await
    .expect("rename");

    let before = std::time::SystemTime::now();
    let deleted = app
        .orgs("alice")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let purge = deleted.purge_time.expect("a purge time");
    let retention = app.config.deleted_organization_retention.as_secs() as i64;
    let expected = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + retention;
    assert!(
        (purge.seconds - expected).abs() <= 5,
        "purged after the retention: {purge:?} vs {expected}"
    );

    for user in ["alice", "bob", "carol"] {
        for key in [
            Key::Id(org.id.clone()),
            Key::Slug("acme".into()),
            Key::Slug("old-acme".into()),
            Key::DeveloperId(org.developer_id.clone()),
        ] {
            assert_error(
                get(&app, user, key).await,
                Code::NotFound,
                "ORGANIZATION_NOT_FOUND",
            );
        }
        let listed = app
            .orgs(user)
            .list_organizations(pb::ListOrganizationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .organizations;
        assert!(listed.is_empty(), "{user}: {listed:?}");
        let answer = check(&app, user, &org.id, "applications.read").await;
        assert!(!answer.allowed && answer.role() == pb::Role::Unspecified);
        assert!(answer.reason.is_empty() && answer.organization_id.is_empty());
    }
    // A service that reads any organization: gone too.
    let reader = crate::services::service_token(&app, "reader", &["organizations.read"]);
    assert_error(
        app.orgs_with_token(Some(&reader))
            .get_organization(pb::GetOrganizationRequest {
                key: Some(Key::Id(org.id.clone())),
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        app.members_with_token(Some(&reader))
            .list_members(pb::ListMembersRequest {
                organization_id: org.id.clone(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );

    // Both slugs are still reserved.
    let mut orgs = app.orgs("erin");
    for (slug, why) in [
        ("acme", "ORGANIZATION_SLUG_ALREADY_TAKEN"),
        ("old-acme", "SLUG_RETAINED"),
    ] {
        let answer = orgs
            .check_slug(pb::CheckSlugRequest { slug: slug.into() })
            .await
            .unwrap()
            .into_inner();
        assert!(!answer.available, "{slug}");
        assert_eq!(answer.reason, why, "{slug}");
        assert_error(
            orgs.create_organization(pb::CreateOrganizationRequest {
                name: "Taken".into(),
                slug: slug.into(),
                ..Default::default()
            })
            .await,
            Code::AlreadyExists,
            "ORGANIZATION_SLUG_ALREADY_TAKEN",
        );
    }

    // Its invitation waits for a restore: not listed, not accepted.
    let mine = app
        .members("dave")
        .list_my_invitations(pb::ListMyInvitationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert!(mine.is_empty(), "{mine:?}");
    assert_error(
        app.members("dave")
            .accept_invitation(pb::AcceptInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::NotFound,
        "INVITATION_NOT_FOUND",
    );
    // Writes, by anyone, and the administrator's lifecycle calls: NOT_FOUND.
    assert_error(
        app.orgs("alice")
            .delete_organization(pb::DeleteOrganizationRequest {
                id: org.id.clone(),
                etag: String::new(),
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        app.members("alice")
            .remove_member(pb::RemoveMemberRequest {
                organization_id: org.id.clone(),
                user_id: "carol".into(),
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        admin(&app)
            .suspend_organization(pb::SuspendOrganizationRequest {
                id: org.id.clone(),
                reason: String::new(),
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    // The rows are all kept for a restore.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM memberships").await,
        3,
        "memberships kept"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM invitations WHERE state = 'pending'")
            .await,
        1,
        "the invitation kept"
    );
}

async fn its_owners_and_administrators_restore_a_deleted_organization_and_no_one_else(
    backend: Backend,
) {
    let app = TestApp::spawn(&backend).await;
    let (org, invitation) = team(&app, "acme").await;
    let restore = |user: &str| {
        let mut orgs = app.orgs(user);
        let id = org.id.clone();
        async move {
            orgs.restore_organization(pb::RestoreOrganizationRequest { id })
                .await
                .map(|reply| reply.into_inner())
        }
    };
    // Not deleted: its owner is told so, its other members are refused.
    assert_error(
        restore("alice").await,
        Code::FailedPrecondition,
        "ORGANIZATION_NOT_DELETED",
    );
    assert_error(
        restore("bob").await,
        Code::PermissionDenied,
        "INSUFFICIENT_PERMISSION",
    );
    assert_error(
        restore("mallory").await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );

    delete(&app, "alice", &org.id).await;
    // Deleted: nobody but its owners may see it.
    for user in ["bob", "carol", "mallory"] {
        assert_error(
            restore(user).await,
            Code::NotFound,
            "ORGANIZATION_NOT_FOUND",
        );
    }
    let restored = restore("alice").await.unwrap();
    let shown = restored.organization.unwrap();
    assert_eq!(shown.state(), pb::OrganizationState::Active);
    assert!(shown.delete_time.is_none() && shown.purge_time.is_none());
    assert_eq!(
        (shown.slug.as_str(), shown.name.as_str()),
        ("acme", org.name.as_str())
    );
    // Everything is back: members with their roles, the invitation, checks.
    assert_eq!(app.members_as(&app.token("carol"), &org.id).await.len(), 3);
    assert!(
        check(&app, "bob", &org.id, "applications.create")
            .await
            .allowed
    );
    assert_eq!(
        get(&app, "carol", Key::Slug("acme".into()))
            .await
            .unwrap()
            .id,
        org.id
    );
    app.members("dave")
        .accept_invitation(pb::AcceptInvitationRequest {
            id: invitation.id.clone(),
        })
        .await
        .expect("the kept invitation is accepted after the restore");
    assert_error(
        restore("alice").await,
        Code::FailedPrecondition,
        "ORGANIZATION_NOT_DELETED",
    );

    // An administrator restores one too, and an administrator's suspension
    // survives a deletion and a restore.
    suspend(&app, &org.id, "review").await;
    admin(&app)
        .resume_organization(pb::ResumeOrganizationRequest { id: org.id.clone() })
        .await
        .unwrap();
    delete(&app, "alice", &org.id).await;
    let by_admin = admin(&app)
        .restore_organization(pb::RestoreOrganizationRequest { id: org.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        by_admin.organization.unwrap().state(),
        pb::OrganizationState::Active
    );
    assert!(
        check(&app, "dave", &org.id, "applications.read")
            .await
            .allowed
    );

    let types: Vec<String> = events_of(&app, &org.id)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| t.starts_with("organization."))
        .collect();
    assert_eq!(
        types,
        [
            "organization.created",
            "organization.deleted",
            "organization.restored",
            "organization.suspended",
            "organization.resumed",
            "organization.deleted",
            "organization.restored",
        ]
    );
}

async fn a_deleted_organization_is_purged_after_its_retention_and_each_step_is_an_event(
    backend: Backend,
) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.deleted_organization_retention = Duration::from_secs(2);
        c.expiry_sweep_interval = Duration::from_millis(100);
    })
    .await;
    let (org, _) = team(&app, "acme").await;
    let keep = app.create_org("alice", "keep").await;
    app.orgs("alice")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();
    delete(&app, "alice", &org.id).await;
    // Within the retention it is still there to restore.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organizations").await,
        2
    );
    // After it, gone for good, with everything it had.
    app.wait_for_count("SELECT COUNT(*) AS n FROM organizations", 1)
        .await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM memberships").await,
        1,
        "only keep's owner"
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM invitations").await, 0);
    assert_error(
        app.orgs("alice")
            .restore_organization(pb::RestoreOrganizationRequest { id: org.id.clone() })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        admin(&app)
            .restore_organization(pb::RestoreOrganizationRequest { id: org.id.clone() })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    // Its slug is free again.
    let slug = app
        .orgs("erin")
        .check_slug(pb::CheckSlugRequest {
            slug: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(slug.available, "{slug:?}");
    let active = app
        .orgs("alice")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(active.organization.is_none());

    let events = events_of(&app, &org.id).await;
    let organization_events: Vec<&str> = events
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| t.starts_with("organization."))
        .collect();
    assert_eq!(
        organization_events,
        [
            "organization.created",
            "organization.deleted",
            "organization.purged"
        ]
    );
    let (_, deleted) = events
        .iter()
        .find(|(t, _)| t == "organization.deleted")
        .unwrap();
    let (old, new) = change(deleted, "purge_time");
    assert_eq!(old, new, "a fact");
    assert!(chrono::DateTime::parse_from_rfc3339(new).is_ok(), "{new}");
    let (_, purged) = events
        .iter()
        .find(|(t, _)| t == "organization.purged")
        .unwrap();
    assert_eq!(change(purged, "state"), ("deleted", ""));
    // The one that was not deleted is untouched.
    assert!(get(&app, "alice", Key::Id(keep.id)).await.is_ok());
}

async fn the_developer_identity_stays_while_deleted_and_goes_at_the_purge(backend: Backend) {
    let fake = FakePortal::start().await;
    let app = TestApp::spawn_with(&backend, |c| {
        use_portal(c, &fake);
        c.deleted_organization_retention = Duration::from_secs(3);
        c.expiry_sweep_interval = Duration::from_millis(100);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    crate::provider_portal::assert_in_step(&app, &fake).await;
    assert_eq!(
        fake.developer_ids(),
        std::slice::from_ref(&org.developer_id)
    );

    // Deleted and restored: the developer (and what the portal keeps
    // under it) never left.
    delete(&app, "alice", &org.id).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        fake.developer_ids(),
        std::slice::from_ref(&org.developer_id)
    );
    app.orgs("alice")
        .restore_organization(pb::RestoreOrganizationRequest { id: org.id.clone() })
        .await
        .unwrap();
    let restored = get(&app, "alice", Key::Id(org.id.clone())).await.unwrap();
    assert_eq!(
        restored.identity.unwrap().state(),
        pb::DeveloperIdentityState::Active
    );
    assert_eq!(
        fake.developer_ids(),
        std::slice::from_ref(&org.developer_id)
    );
    assert_eq!(fake.creates().len(), 1, "created once, never again");

    // Deleted for good: the purge deletes the developer.
    delete(&app, "alice", &org.id).await;
    app.wait_for_count("SELECT COUNT(*) AS n FROM organizations", 0)
        .await;
    crate::provider_portal::assert_in_step(&app, &fake).await;
    assert!(fake.developer_ids().is_empty());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = events_of(&app, &org.id).await;
        let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
        if types.contains(&"organization.identity_deprovisioned") {
            let purged = events
                .iter()
                .find(|(t, _)| t == "organization.purged")
                .expect("purged");
            assert_eq!(
                change(&purged.1, "identity_state"),
                ("active", "deprovisioning")
            );
            let at = |t: &str| types.iter().rposition(|x| *x == t).unwrap();
            assert!(at("organization.purged") < at("organization.identity_deprovisioned"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{types:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One permission check of the race test.
struct Answer {
    replica: usize,
    /// The step whose revision the check named (`None`: none yet).
    step: Option<usize>,
    started: Instant,
    ended: Instant,
    allowed: bool,
}

/// One lifecycle call of the race test.
struct Step {
    /// Suspend or delete (after which no non-read check may say yes).
    closes: bool,
    replica: usize,
    revision: String,
    started: Instant,
    returned: Instant,
}

async fn no_check_says_yes_after_a_suspension_or_deletion_returned_on_either_replica(
    backend: Backend,
) {
    const ROUNDS: usize = 6;
    const CHECKERS_PER_REPLICA: usize = 3;
    let first = TestApp::spawn(&backend).await;
    let second = first.replica().await;
    let replicas = [&first, &second];
    let org = first.create_org("alice", "acme").await;
    first
        .add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;

    // The newest step's revision, which every check passes on.
    let latest: Arc<Mutex<Option<(usize, String)>>> = Arc::default();
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut checkers = Vec::new();
    for (replica, app) in replicas.iter().enumerate() {
        for _ in 0..CHECKERS_PER_REPLICA {
            let mut authz = app.authz_service();
            let (latest, answers, stop) = (latest.clone(), answers.clone(), stop.clone());
            let org_id = org.id.clone();
            checkers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let named = latest.lock().unwrap().clone();
                    let started = Instant::now();
                    let result = authz
                        .check_permission(pb::CheckPermissionRequest {
                            check: Some(pb::PermissionCheck {
                                user_id: "bob".into(),
                                organization_id: org_id.clone(),
                                permission: "applications.create".into(),
                                ..Default::default()
                            }),
                            at_least_revision: named
                                .as_ref()
                                .map(|(_, r)| r.clone())
                                .unwrap_or_default(),
                        })
                        .await
                        .expect("check")
                        .into_inner()
                        .result
                        .expect("result");
                    answers.lock().unwrap().push(Answer {
                        replica,
                        step: named.map(|(i, _)| i),
                        started,
                        ended: Instant::now(),
                        allowed: result.allowed,
                    });
                }
            }));
        }
    }

    let mut steps: Vec<Step> = Vec::new();
    let pause = Duration::from_millis(40);
    for round in 0..ROUNDS {
        // Alternate which replica serves each call.
        for (k, (closes, kind)) in [
            (true, "suspend"),
            (false, "resume"),
            (true, "delete"),
            (false, "restore"),
        ]
        .into_iter()
        .enumerate()
        {
            tokio::time::sleep(pause).await;
            let replica = (round + k) % 2;
            let app = replicas[replica];
            let id = org.id.clone();
            let started = Instant::now();
            let revision = match kind {
                "suspend" => {
                    admin(app)
                        .suspend_organization(pb::SuspendOrganizationRequest {
                            id,
                            reason: String::new(),
                        })
                        .await
                        .unwrap()
                        .into_inner()
                        .revision
                }
                "resume" => {
                    admin(app)
                        .resume_organization(pb::ResumeOrganizationRequest { id })
                        .await
                        .unwrap()
                        .into_inner()
                        .revision
                }
                "delete" => delete(app, "alice", &id).await,
                _ => {
                    app.orgs("alice")
                        .restore_organization(pb::RestoreOrganizationRequest { id })
                        .await
                        .unwrap()
                        .into_inner()
                        .revision
                }
            };
            let returned = Instant::now();
            *latest.lock().unwrap() = Some((steps.len(), revision.clone()));
            steps.push(Step {
                closes,
                replica,
                revision,
                started,
                returned,
            });
        }
    }
    tokio::time::sleep(pause).await;
    stop.store(true, Ordering::Relaxed);
    for checker in checkers {
        checker.await.unwrap();
    }

    let answers = answers.lock().unwrap();
    let mut violations = Vec::new();
    let (mut closed_checks, mut open_yes) = (0, 0);
    for (i, step) in steps.iter().enumerate() {
        // Until the next call that opens again starts.
        let until = steps.get(i + 1).map(|next| next.started);
        let before_next = |a: &Answer| until.is_none_or(|until| a.ended < until);
        for answer in answers.iter().filter(|a| before_next(a)) {
            let named_it = answer.step == Some(i);
            let after_it_here = answer.replica == step.replica && answer.started > step.returned;
            if !(named_it || after_it_here) {
                continue;
            }
            if step.closes {
                closed_checks += 1;
                if answer.allowed {
                    violations.push(format!(
                        "step {i} ({}, replica {}): a check on replica {} said yes{}",
                        step.revision,
                        step.replica,
                        answer.replica,
                        if named_it { " naming its revision" } else { "" }
                    ));
                }
            } else if answer.allowed {
                open_yes += 1;
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The test saw both states, so it could have failed.
    assert!(closed_checks > 0, "no check ran while closed");
    assert!(open_yes > 0, "no check said yes while open");
}
