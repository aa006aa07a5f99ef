//! AuthorizationService: the permission table over the wire, who may ask,
//! batches, revisions, and revocation across replicas.

use std::time::{Duration, Instant};

use roster::pb;
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Authz, Backend, TestApp, assert_error, assert_invalid, bad_fields},
};

const PERMISSIONS: [&str; 21] = [
    "organization.read",
    "organization.update",
    "organization.delete",
    "members.read",
    "members.manage",
    "owners.manage",
    "invitations.read",
    "invitations.manage",
    "audit.read",
    "applications.read",
    "applications.create",
    "applications.update",
    "applications.delete",
    "subscriptions.read",
    "subscriptions.create",
    "subscriptions.update",
    "subscriptions.delete",
    "credentials.read",
    "credentials.create",
    "credentials.update",
    "credentials.delete",
];

fn check(user: &str, org: &str, permission: &str) -> pb::PermissionCheck {
    pb::PermissionCheck {
        user_id: user.into(),
        organization_id: org.into(),
        permission: permission.into(),
        ..Default::default()
    }
}

async fn ask(
    client: &mut Authz,
    user: &str,
    org: &str,
    permission: &str,
    revision: &str,
) -> pb::PermissionResult {
    client
        .check_permission(pb::CheckPermissionRequest {
            check: Some(check(user, org, permission)),
            at_least_revision: revision.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap()
}

/// What each role may do (the README's "Roles and rules"), written out
/// independently of the code.
fn expected(role: &str, permission: &str) -> bool {
    match role {
        "owner" => true,
        "admin" => !matches!(permission, "organization.delete" | "owners.manage"),
        "member" => permission.ends_with(".read") && permission != "audit.read",
        _ => false,
    }
}

backend_tests!(
    every_permission_is_answered_for_every_role,
    an_unknown_permission_is_invalid_never_a_silent_no,
    users_may_check_only_themselves_and_services_need_the_scope,
    a_batch_is_answered_in_order_and_bounded,
    a_removed_member_is_refused_by_the_very_next_check,
    revocation_reaches_another_replica_at_once_with_a_revision_and_soon_without,
    another_replica_sees_a_renamed_organization_within_the_bound,
    every_membership_change_returns_a_revision,
);

async fn every_permission_is_answered_for_every_role(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("owner", "acme").await;
    app.add_member("owner", &org.id, "admin", pb::Role::Admin)
        .await;
    app.add_member("owner", &org.id, "member", pb::Role::Member)
        .await;
    let mut service = app.authz_service();
    for (user, role) in [
        ("owner", pb::Role::Owner),
        ("admin", pb::Role::Admin),
        ("member", pb::Role::Member),
        ("outsider", pb::Role::Unspecified),
    ] {
        for permission in PERMISSIONS {
            let answer = ask(&mut service, user, &org.id, permission, "").await;
            assert_eq!(
                answer.allowed,
                expected(user, permission),
                "{user} {permission}"
            );
            assert_eq!(answer.role(), role, "{user}");
        }
    }
    // A missing organization is simply "no", never a leak.
    let nowhere = ask(
        &mut service,
        "owner",
        &uuid::Uuid::now_v7().to_string(),
        "organization.read",
        "",
    )
    .await;
    assert!(!nowhere.allowed);
}

async fn an_unknown_permission_is_invalid_never_a_silent_no(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let mut service = app.authz_service();
    for bad in ["applications.fly", "", "APPLICATIONS.READ", "applications"] {
        let result = service
            .check_permission(pb::CheckPermissionRequest {
                check: Some(check("alice", &org.id, bad)),
                at_least_revision: String::new(),
            })
            .await;
        assert_invalid(result, "check.permission");
    }
    let bad_org = service
        .check_permission(pb::CheckPermissionRequest {
            check: Some(check("alice", "nope", "organization.read")),
            at_least_revision: String::new(),
        })
        .await;
    assert_invalid(bad_org, "check.organization_id");
    let bad_revision = service
        .check_permission(pb::CheckPermissionRequest {
            check: Some(check("alice", &org.id, "organization.read")),
            at_least_revision: "x".into(),
        })
        .await;
    assert_invalid(bad_revision, "at_least_revision");
}

async fn users_may_check_only_themselves_and_services_need_the_scope(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let own = ask(
        &mut app.authz("alice"),
        "",
        &org.id,
        "organization.delete",
        "",
    )
    .await;
    assert!(own.allowed);
    let named_self = ask(
        &mut app.authz("alice"),
        "alice",
        &org.id,
        "organization.delete",
        "",
    )
    .await;
    assert!(named_self.allowed);
    let other = app
        .authz("bob")
        .check_permission(pb::CheckPermissionRequest {
            check: Some(check("alice", &org.id, "organization.read")),
            at_least_revision: String::new(),
        })
        .await;
    assert_error(
        other,
        Code::PermissionDenied,
        "CAN_ONLY_CHECK_OWN_PERMISSIONS",
    );
    let events_only = app
        .event_follower_as_authz()
        .check_permission(pb::CheckPermissionRequest {
            check: Some(check("alice", &org.id, "organization.read")),
            at_least_revision: String::new(),
        })
        .await;
    // A service is not a person with "own" permissions to check: without
    // the scope it may not check at all.
    assert_error(events_only, Code::PermissionDenied, "MISSING_SCOPE");
    let anonymous = app
        .authz_with_token(None)
        .check_permission(pb::CheckPermissionRequest {
            check: Some(check("alice", &org.id, "organization.read")),
            at_least_revision: String::new(),
        })
        .await;
    assert_eq!(anonymous.unwrap_err().code(), Code::Unauthenticated);
}

async fn a_batch_is_answered_in_order_and_bounded(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let checks = vec![
        check("alice", &org.id, "organization.delete"),
        check("bob", &org.id, "organization.delete"),
        check("bob", &org.id, "credentials.read"),
        check("carol", &org.id, "credentials.read"),
    ];
    let results = app
        .authz_service()
        .batch_check_permissions(pb::BatchCheckPermissionsRequest {
            checks,
            at_least_revision: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let summary: Vec<(bool, pb::Role)> = results.iter().map(|r| (r.allowed, r.role())).collect();
    assert_eq!(
        summary,
        [
            (true, pb::Role::Owner),
            (false, pb::Role::Member),
            (true, pb::Role::Member),
            (false, pb::Role::Unspecified)
        ]
    );
    let too_many = vec![check("alice", &org.id, "organization.read"); 101];
    let result = app
        .authz_service()
        .batch_check_permissions(pb::BatchCheckPermissionsRequest {
            checks: too_many,
            at_least_revision: String::new(),
        })
        .await;
    assert_invalid(result, "checks");
    let none = app
        .authz_service()
        .batch_check_permissions(pb::BatchCheckPermissionsRequest::default())
        .await;
    assert_invalid(none, "checks");
    let mixed = app
        .authz_service()
        .batch_check_permissions(pb::BatchCheckPermissionsRequest {
            checks: vec![
                check("alice", &org.id, "organization.read"),
                check("alice", &org.id, "nope"),
                check("alice", "x", "nope"),
            ],
            at_least_revision: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&mixed),
        [
            "checks[1].permission",
            "checks[2].organization_id",
            "checks[2].permission"
        ]
    );
}

async fn a_removed_member_is_refused_by_the_very_next_check(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    let mut service = app.authz_service();
    // Warm the cache.
    assert!(
        ask(&mut service, "bob", &org.id, "applications.create", "")
            .await
            .allowed
    );
    app.members("alice")
        .remove_member(pb::RemoveMemberRequest {
            organization_id: org.id.clone(),
            user_id: "bob".into(),
        })
        .await
        .unwrap();
    let after = ask(&mut service, "bob", &org.id, "applications.create", "").await;
    assert!(!after.allowed);
    assert_eq!(after.role(), pb::Role::Unspecified);
    // Joining is seen at once too (a cached "not a member" is forgotten).
    assert!(
        !ask(&mut service, "carol", &org.id, "applications.read", "")
            .await
            .allowed
    );
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    assert!(
        ask(&mut service, "carol", &org.id, "applications.read", "")
            .await
            .allowed
    );
}

async fn revocation_reaches_another_replica_at_once_with_a_revision_and_soon_without(
    backend: Backend,
) {
    let a = TestApp::spawn(&backend).await;
    let b = a.replica().await;
    let org = a.create_org("alice", "acme").await;
    a.add_member("alice", &org.id, "bob", pb::Role::Admin).await;
    a.add_member("alice", &org.id, "carol", pb::Role::Admin)
        .await;
    let mut through_b = b.authz_service();
    // B caches both as admins.
    assert!(
        ask(&mut through_b, "bob", &org.id, "members.manage", "")
            .await
            .allowed
    );
    assert!(
        ask(&mut through_b, "carol", &org.id, "members.manage", "")
            .await
            .allowed
    );

    let revision = a
        .members("alice")
        .remove_member(pb::RemoveMemberRequest {
            organization_id: org.id.clone(),
            user_id: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert!(!revision.is_empty());
    let with_revision = ask(&mut through_b, "bob", &org.id, "members.manage", &revision).await;
    assert!(
        !with_revision.allowed,
        "a check carrying A's revision says no at once on B"
    );

    a.members("alice")
        .remove_member(pb::RemoveMemberRequest {
            organization_id: org.id.clone(),
            user_id: "carol".into(),
        })
        .await
        .unwrap();
    let started = Instant::now();
    // The documented bound: ROSTER_AUTHZ_MAX_STALENESS (2 s by default).
    let bound = a.config.authz_max_staleness;
    loop {
        if !ask(&mut through_b, "carol", &org.id, "members.manage", "")
            .await
            .allowed
        {
            break;
        }
        assert!(
            started.elapsed() < bound,
            "B still says yes after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "revocation without a revision reached the other replica after {:?}",
        started.elapsed()
    );
}

async fn another_replica_sees_a_renamed_organization_within_the_bound(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.replica().await;
    let org = a.create_org("alice", "acme").await;
    let get = |app: &TestApp| {
        let mut client = app.orgs("alice");
        let id = org.id.clone();
        async move {
            client
                .get_organization(pb::GetOrganizationRequest {
                    key: Some(pb::get_organization_request::Key::Id(id)),
                })
                .await
                .unwrap()
                .into_inner()
                .organization
                .unwrap()
                .name
        }
    };
    assert_eq!(get(&b).await, org.name, "B has it cached");
    a.orgs("alice")
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                id: org.id.clone(),
                name: "Renamed".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        get(&a).await,
        "Renamed",
        "at once on the replica that changed it"
    );
    let started = Instant::now();
    while get(&b).await != "Renamed" {
        assert!(
            started.elapsed() < a.config.authz_max_staleness,
            "B is stale after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn every_membership_change_returns_a_revision(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let created = app
        .orgs("alice")
        .create_organization(pb::CreateOrganizationRequest {
            name: "Acme".into(),
            slug: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let org = created.organization.unwrap();
    let mut revisions = vec![created.revision];
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let accepted = app
        .members("bob")
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .unwrap()
        .into_inner();
    revisions.push(accepted.revision);
    let changed = app
        .members("alice")
        .update_member_role(pb::UpdateMemberRoleRequest {
            organization_id: org.id.clone(),
            user_id: "bob".into(),
            role: pb::Role::Admin.into(),
        })
        .await
        .unwrap()
        .into_inner();
    revisions.push(changed.revision);
    let transferred = app
        .members("alice")
        .transfer_ownership(pb::TransferOwnershipRequest {
            organization_id: org.id.clone(),
            new_owner_user_id: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner();
    revisions.push(transferred.revision);
    let left = app
        .members("alice")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    revisions.push(left.revision);
    let deleted = app
        .orgs("bob")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id,
            etag: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    revisions.push(deleted.revision);
    assert!(revisions.iter().all(|r| r.len() == 32), "{revisions:?}");
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "revisions grow: {revisions:?}"
    );
}
