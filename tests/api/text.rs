//! Issue 9, item 7: every text that reaches the database, from a request or
//! from a token, passes one rule on both databases. A NUL (which PostgreSQL
//! cannot store in text) or a text longer than its column is refused, or
//! for a display name clipped, and never becomes a database error.

use std::time::Duration;

use prost_types::FieldMask;
use roster::{
    auth::token::TokenRequest,
    pb::{self, get_organization_request::Key},
};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, assert_invalid},
};

backend_tests!(
    a_nul_in_any_request_text_is_refused_naming_the_field,
    token_claims_that_do_not_fit_their_columns_never_fail_a_write,
);

async fn a_nul_in_any_request_text_is_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let mut orgs = app.orgs("alice");
    let mut members = app.members("alice");

    let create = |name: &str, slug: &str, logo_url: &str| pb::CreateOrganizationRequest {
        name: name.into(),
        slug: slug.into(),
        logo_url: logo_url.into(),
        request_id: String::new(),
        owner: None,
    };
    assert_invalid(
        orgs.create_organization(create("A\0B", "other", "")).await,
        "name",
    );
    assert_invalid(
        orgs.create_organization(create("Other", "oth\0er", ""))
            .await,
        "slug",
    );
    assert_invalid(
        orgs.create_organization(create("Other", "other", "https://cdn.example.com/\0.png"))
            .await,
        "logo_url",
    );
    assert_invalid(
        orgs.get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Slug("acme\0".into())),
        })
        .await,
        "slug",
    );
    let update = |name: &str, logo_url: &str, path: &str| pb::UpdateOrganizationRequest {
        organization: Some(pb::Organization {
            id: org.id.clone(),
            name: name.into(),
            logo_url: logo_url.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec![path.into()],
        }),
    };
    assert_invalid(
        orgs.update_organization(update("A\0", "", "name")).await,
        "organization.name",
    );
    assert_invalid(
        orgs.update_organization(update("", "https://cdn.example.com/a\0.png", "logo_url"))
            .await,
        "organization.logo_url",
    );
    // An etag is compared, never stored: a NUL in one is just not the etag.
    assert_error(
        orgs.delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            etag: "\0".into(),
        })
        .await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    // CheckSlug answers "not available" for any text that is not a slug.
    let checked = orgs
        .check_slug(pb::CheckSlugRequest {
            slug: "ac\0me".into(),
        })
        .await
        .expect("CheckSlug answers")
        .into_inner();
    assert!(!checked.available);
    assert_eq!(checked.reason, "SLUG_INVALID");

    assert_invalid(
        members
            .list_members(pb::ListMembersRequest {
                organization_id: org.id.clone(),
                search: "b\0".into(),
                ..Default::default()
            })
            .await,
        "search",
    );
    assert_invalid(
        members
            .get_member(pb::GetMemberRequest {
                organization_id: org.id.clone(),
                user_id: "bob\0".into(),
            })
            .await,
        "user_id",
    );
    assert_invalid(
        members
            .update_member_role(pb::UpdateMemberRoleRequest {
                organization_id: org.id.clone(),
                user_id: "bob\0".into(),
                role: pb::Role::Admin.into(),
            })
            .await,
        "user_id",
    );
    assert_invalid(
        members
            .remove_member(pb::RemoveMemberRequest {
                organization_id: org.id.clone(),
                user_id: "bob\0".into(),
            })
            .await,
        "user_id",
    );
    assert_invalid(
        members
            .transfer_ownership(pb::TransferOwnershipRequest {
                organization_id: org.id.clone(),
                new_owner_user_id: "bob\0".into(),
            })
            .await,
        "new_owner_user_id",
    );
    let invite = |email: &str| pb::CreateInvitationRequest {
        organization_id: org.id.clone(),
        email: email.into(),
        role: pb::Role::Member.into(),
        request_id: String::new(),
        delivery: pb::InvitationDelivery::Unspecified.into(),
    };
    assert_invalid(
        members
            .create_invitation(invite("carol\0@example.com"))
            .await,
        "email",
    );
    // Issue 9, item 14: valid, but no mail server delivers to it.
    assert_invalid(
        members
            .create_invitation(invite("\"carol smith\"@example.com"))
            .await,
        "email",
    );
    assert_invalid(
        app.authz("alice")
            .check_permission(pb::CheckPermissionRequest {
                check: Some(pb::PermissionCheck {
                    user_id: "bob\0".into(),
                    organization_id: org.id.clone(),
                    permission: "applications.read".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        "check.user_id",
    );
    assert_invalid(
        app.event_follower()
            .list_events(pb::ListEventsRequest {
                after_cursor: "\0".into(),
                page_size: 10,
            })
            .await,
        "after_cursor",
    );
    assert_invalid(
        app.events("alice")
            .list_audit_events(pb::ListAuditEventsRequest {
                organization_id: org.id.clone(),
                page_token: "\0".into(),
                ..Default::default()
            })
            .await,
        "page_token",
    );

    // Nothing changed.
    let now = orgs
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(org.id.clone())),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!((now.name, now.logo_url), (org.name, org.logo_url));
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organizations").await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM invitations").await, 1);
}

async fn token_claims_that_do_not_fit_their_columns_never_fail_a_write(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let token = |sub: &str, email: String, name: String| {
        app.token_with(TokenRequest {
            sub: sub.into(),
            email: Some(email),
            name: Some(name),
            email_verified: true,
            ttl: Duration::from_secs(600),
            ..TokenRequest::default()
        })
    };

    // A display name with a NUL and far longer than the column: cleaned
    // and clipped, and every write by that person works.
    let long_name = format!("B\0ob {}", "é".repeat(1000));
    let bob = token("bob", "bob@example.com".into(), long_name);
    let org = app
        .create_org_with_token(
            &bob,
            "Bob's",
            "bobs",
            "a long or odd name claim does not fail the write",
        )
        .await;
    let members = app.members_as(&bob, &org.id).await;
    let name = &members[0].display_name;
    assert!(name.starts_with("Bob éé"), "{name:?}");
    assert_eq!(name.chars().count(), 400, "clipped to the column");

    // An email claim with a NUL, or longer than the column: unusable. The
    // person's other writes work; the calls that need their email say why.
    let nul = "carol\0@example.com".to_owned();
    let long = format!("{}@example.com", "c".repeat(300));
    for email in [nul, long] {
        let carol = token("carol", email.clone(), "Carol".into());
        app.orgs_with_token(Some(&carol))
            .create_organization(pb::CreateOrganizationRequest {
                name: "Carol's".into(),
                slug: format!("carol-{}", email.len()),
                ..Default::default()
            })
            .await
            .expect("an unusable email claim does not fail a write that needs no email");
        let mut carols = app.members_with_token(Some(&carol));
        assert_error(
            carols
                .list_my_invitations(pb::ListMyInvitationsRequest::default())
                .await,
            Code::Unauthenticated,
            "INVALID_EMAIL_CLAIM",
        );
        let invitation = app.invite("bob", &org.id, "carol", pb::Role::Member).await;
        assert_error(
            carols
                .accept_invitation(pb::AcceptInvitationRequest {
                    id: invitation.id.clone(),
                })
                .await,
            Code::Unauthenticated,
            "INVALID_EMAIL_CLAIM",
        );
        app.members_with_token(Some(&bob))
            .cancel_invitation(pb::CancelInvitationRequest { id: invitation.id })
            .await
            .unwrap();
    }
}
