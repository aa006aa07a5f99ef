//! Service principals: a token with one of roster's scopes is a service,
//! never a person. It cannot create, join, or pick an organization as if it
//! were a user; it acts on organizations only through its scopes.

use std::time::Duration;

use roster::{auth::token::TokenRequest, pb};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error},
};

/// A service token with `scopes` that also carries a verified email, as a
/// careless identity provider might mint it: being a service must not
/// depend on the absence of a person's claims.
pub fn service_token(app: &TestApp, sub: &str, scopes: &[&str]) -> String {
    app.token_with(TokenRequest {
        sub: sub.to_owned(),
        email: Some(format!("{sub}@example.com")),
        email_verified: true,
        name: Some(sub.to_owned()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    })
}

/// Rows that any membership-changing call would touch.
async fn footprint(app: &TestApp) -> [i64; 5] {
    [
        app.count("SELECT COUNT(*) AS n FROM organizations").await,
        app.count("SELECT COUNT(*) AS n FROM memberships").await,
        app.count("SELECT COUNT(*) AS n FROM users").await,
        app.count("SELECT COUNT(*) AS n FROM events").await,
        app.count("SELECT COUNT(*) AS n FROM invitations WHERE state = 'pending'")
            .await,
    ]
}

backend_tests!(
    a_service_token_cannot_act_as_a_person_and_changes_nothing,
    identity_provider_scopes_leave_a_person_a_person,
);

async fn a_service_token_cannot_act_as_a_person_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    // An invitation addressed to the service's own (verified) email.
    let invitation = app
        .invite("alice", &org.id, "billing-service", pb::Role::Admin)
        .await;
    let before = footprint(&app).await;
    for scopes in [
        &["authz.check"][..],
        &["events.read"][..],
        &["authz.check", "events.read"][..],
    ] {
        let token = service_token(&app, "billing-service", scopes);
        let mut orgs = app.orgs_with_token(Some(&token));
        let mut members = app.members_with_token(Some(&token));
        let created = orgs
            .create_organization(pb::CreateOrganizationRequest {
                name: "Service Org".into(),
                slug: "service-org".into(),
                ..Default::default()
            })
            .await;
        assert_error(created, Code::PermissionDenied, "SERVICE_PRINCIPAL_NOT_ALLOWED");
        let accepted = members
            .accept_invitation(pb::AcceptInvitationRequest {
                id: invitation.id.clone(),
            })
            .await;
        assert_error(accepted, Code::PermissionDenied, "SERVICE_PRINCIPAL_NOT_ALLOWED");
        let rejected = members
            .reject_invitation(pb::RejectInvitationRequest {
                id: invitation.id.clone(),
            })
            .await;
        assert_error(rejected, Code::PermissionDenied, "SERVICE_PRINCIPAL_NOT_ALLOWED");
        let active = orgs
            .set_active_organization(pb::SetActiveOrganizationRequest {
                organization_id: org.id.clone(),
            })
            .await;
        assert_error(active, Code::PermissionDenied, "SERVICE_PRINCIPAL_NOT_ALLOWED");
        let cleared = orgs
            .set_active_organization(pb::SetActiveOrganizationRequest {
                organization_id: String::new(),
            })
            .await;
        assert_error(cleared, Code::PermissionDenied, "SERVICE_PRINCIPAL_NOT_ALLOWED");
        // Listing a user's organizations is what `organizations.read` is for.
        let mine = orgs
            .list_organizations(pb::ListOrganizationsRequest::default())
            .await;
        assert_error(mine, Code::PermissionDenied, "MISSING_SCOPE");
        let my_invitations = members
            .list_my_invitations(pb::ListMyInvitationsRequest::default())
            .await;
        assert_error(
            my_invitations,
            Code::PermissionDenied,
            "SERVICE_PRINCIPAL_NOT_ALLOWED",
        );
        let left = members
            .leave_organization(pb::LeaveOrganizationRequest {
                organization_id: org.id.clone(),
            })
            .await;
        assert_error(left, Code::PermissionDenied, "SERVICE_PRINCIPAL_NOT_ALLOWED");
    }
    assert_eq!(footprint(&app).await, before, "a refused call changed rows");
    // The invitation is still there for a person to accept.
    let still = app
        .members("alice")
        .get_invitation(pb::GetInvitationRequest { id: invitation.id })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(still.state(), pb::InvitationState::Pending);
}

async fn identity_provider_scopes_leave_a_person_a_person(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    // An OpenID Connect access token carries `scope: openid email profile`:
    // none of it is roster's, so its bearer is a person.
    let token = service_token(&app, "carol", &["openid", "email", "profile"]);
    let created = app
        .orgs_with_token(Some(&token))
        .create_organization(pb::CreateOrganizationRequest {
            name: "Carol's".into(),
            slug: "carols".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(app.role_of("carol", &created.id, "carol").await, Some(pb::Role::Owner));
}
