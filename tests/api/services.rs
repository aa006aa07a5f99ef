//! Service principals: a token with one of roster's scopes is a service,
//! never a person. It cannot create, join, or pick an organization as if it
//! were a user; it acts on organizations only through its scopes.

use std::time::Duration;

use roster::{auth::token::TokenRequest, pb};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, reason},
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
        // Each call a person makes for themself, refused before it acts.
        let people_only = [
            (
                "CreateOrganization",
                orgs.create_organization(pb::CreateOrganizationRequest {
                    name: "Service Org".into(),
                    slug: "service-org".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
            (
                "AcceptInvitation",
                members
                    .accept_invitation(pb::AcceptInvitationRequest {
                        id: invitation.id.clone(),
                    })
                    .await
                    .map(drop),
            ),
            (
                "RejectInvitation",
                members
                    .reject_invitation(pb::RejectInvitationRequest {
                        id: invitation.id.clone(),
                    })
                    .await
                    .map(drop),
            ),
            (
                "SetActiveOrganization",
                orgs.set_active_organization(pb::SetActiveOrganizationRequest {
                    organization_id: org.id.clone(),
                })
                .await
                .map(drop),
            ),
            (
                "SetActiveOrganization (clearing)",
                orgs.set_active_organization(pb::SetActiveOrganizationRequest {
                    organization_id: String::new(),
                })
                .await
                .map(drop),
            ),
            (
                "ListMyInvitations",
                members
                    .list_my_invitations(pb::ListMyInvitationsRequest::default())
                    .await
                    .map(drop),
            ),
            (
                "LeaveOrganization",
                members
                    .leave_organization(pb::LeaveOrganizationRequest {
                        organization_id: org.id.clone(),
                    })
                    .await
                    .map(drop),
            ),
        ];
        for (rpc, answer) in people_only {
            let status = answer.expect_err(rpc);
            assert_eq!(status.code(), Code::PermissionDenied, "{rpc}: {status:?}");
            // Creating is also what administrators do: these lack its scope.
            let want = if rpc == "CreateOrganization" {
                "MISSING_SCOPE"
            } else {
                "SERVICE_PRINCIPAL_NOT_ALLOWED"
            };
            assert_eq!(reason(&status), want, "{rpc}");
        }
        // Listing a user's organizations is what `organizations.read` is for.
        let mine = orgs
            .list_organizations(pb::ListOrganizationsRequest::default())
            .await;
        assert_error(mine, Code::PermissionDenied, "MISSING_SCOPE");
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
        .create_org_with_token(&token, "Carol's", "carols", "a person creates")
        .await;
    assert_eq!(
        app.role_of("carol", &created.id, "carol").await,
        Some(pb::Role::Owner)
    );
}

backend_tests!(
    a_reader_gets_any_organization_by_id_slug_or_developer_id,
    a_reader_lists_any_organizations_members_and_invitations_page_by_page,
    a_reader_lists_a_users_organizations_with_their_roles,
    a_limited_token_acts_only_in_its_organizations,
    an_organization_limit_that_cannot_be_read_refuses_the_token,
);

fn reader(app: &TestApp) -> String {
    service_token(app, "support-service", &["organizations.read"])
}

async fn get(
    orgs: &mut crate::helpers::Orgs,
    key: pb::get_organization_request::Key,
) -> Result<pb::GetOrganizationResponse, tonic::Status> {
    orgs.get_organization(pb::GetOrganizationRequest { key: Some(key) })
        .await
        .map(tonic::Response::into_inner)
}

async fn a_reader_gets_any_organization_by_id_slug_or_developer_id(backend: Backend) {
    use pb::get_organization_request::Key;
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let mut service = app.orgs_with_token(Some(&reader(&app)));
    for key in [
        Key::Id(org.id.clone()),
        Key::Slug("acme".into()),
        Key::DeveloperId(org.developer_id.clone()),
    ] {
        let got = get(&mut service, key.clone()).await.unwrap();
        assert_eq!(got.organization.as_ref().unwrap().id, org.id, "{key:?}");
        // A service is never a member: it has no role.
        assert_eq!(got.role(), pb::Role::Unspecified, "{key:?}");
    }
    // People get it by developer id too, as members only.
    let mut alice = app.orgs("alice");
    let own = get(&mut alice, Key::DeveloperId(org.developer_id.clone()))
        .await
        .unwrap();
    assert_eq!(own.role(), pb::Role::Owner);
    let outsider = get(
        &mut app.orgs("mallory"),
        Key::DeveloperId(org.developer_id.clone()),
    )
    .await;
    assert_error(outsider, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    for missing in [
        Key::Id(uuid::Uuid::now_v7().to_string()),
        Key::Slug("nowhere".into()),
        Key::DeveloperId("no-such-developer".into()),
    ] {
        assert_error(
            get(&mut service, missing).await,
            Code::NotFound,
            "ORGANIZATION_NOT_FOUND",
        );
    }
    crate::helpers::assert_invalid(
        get(&mut service, Key::DeveloperId("not a developer id!".into())).await,
        "developer_id",
    );
}

async fn a_reader_lists_any_organizations_members_and_invitations_page_by_page(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    for (user, role) in [
        ("bob", pb::Role::Admin),
        ("carol", pb::Role::Member),
        ("dave", pb::Role::Member),
    ] {
        app.add_member("alice", &org.id, user, role).await;
    }
    for user in ["erin", "frank", "grace"] {
        app.invite("alice", &org.id, user, pb::Role::Member).await;
    }
    let token = reader(&app);
    let mut members = app.members_with_token(Some(&token));
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = members
            .list_members(pb::ListMembersRequest {
                organization_id: org.id.clone(),
                page_size: 3,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.members.len() <= 3);
        seen.extend(page.members.into_iter().map(|m| (m.user_id, m.role)));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let want: Vec<(String, i32)> = [
        ("alice", pb::Role::Owner),
        ("bob", pb::Role::Admin),
        ("carol", pb::Role::Member),
        ("dave", pb::Role::Member),
    ]
    .into_iter()
    .map(|(u, r)| (u.to_owned(), r.into()))
    .collect();
    assert_eq!(seen, want);
    let bob = members
        .get_member(pb::GetMemberRequest {
            organization_id: org.id.clone(),
            user_id: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(bob.role(), pb::Role::Admin);
    let mut invited = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = members
            .list_invitations(pb::ListInvitationsRequest {
                organization_id: org.id.clone(),
                page_size: 2,
                page_token: page_token.clone(),
                // The members came in by invitations too (accepted).
                state: pb::InvitationState::Pending.into(),
            })
            .await
            .unwrap()
            .into_inner();
        for invitation in &page.invitations {
            // The link lets its holder join: it is for the recipient and
            // for those who may manage invitations, not for a reader.
            assert!(invitation.link.is_empty(), "{invitation:?}");
        }
        invited.extend(page.invitations);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut emails: Vec<_> = invited.iter().map(|i| i.email.clone()).collect();
    emails.sort();
    assert_eq!(
        emails,
        ["erin@example.com", "frank@example.com", "grace@example.com"]
    );
    let one = members
        .get_invitation(pb::GetInvitationRequest {
            id: invited[0].id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert!(one.link.is_empty());
    let nowhere = members
        .list_members(pb::ListMembersRequest {
            organization_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await;
    assert_error(nowhere, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    // Reading is all it may do: removing needs `organizations.admin`.
    let removed = members
        .remove_member(pb::RemoveMemberRequest {
            organization_id: org.id.clone(),
            user_id: "bob".into(),
        })
        .await;
    assert_error(removed, Code::PermissionDenied, "MISSING_SCOPE");
    assert_eq!(
        app.role_of("alice", &org.id, "bob").await,
        Some(pb::Role::Admin)
    );
}

async fn list_for(
    orgs: &mut crate::helpers::Orgs,
    user: &str,
    page_size: i32,
) -> Result<Vec<(String, pb::Role)>, tonic::Status> {
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = orgs
            .list_organizations(pb::ListOrganizationsRequest {
                user_id: user.into(),
                page_size,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        seen.extend(
            page.organizations
                .iter()
                .map(|o| (o.organization.clone().unwrap().slug, o.role())),
        );
        if page.next_page_token.is_empty() {
            return Ok(seen);
        }
        page_token = page.next_page_token;
    }
}

async fn a_reader_lists_a_users_organizations_with_their_roles(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let first = app.create_org("bob", "first").await;
    let second = app.create_org("alice", "second").await;
    let third = app.create_org("alice", "third").await;
    app.create_org("alice", "not-bobs").await;
    app.add_member("alice", &second.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &third.id, "bob", pb::Role::Member)
        .await;
    let token = reader(&app);
    let mut service = app.orgs_with_token(Some(&token));
    let bobs = list_for(&mut service, "bob", 2).await.unwrap();
    assert_eq!(
        bobs,
        [
            ("first".to_owned(), pb::Role::Owner),
            ("second".to_owned(), pb::Role::Admin),
            ("third".to_owned(), pb::Role::Member),
        ]
    );
    assert_eq!(list_for(&mut service, "nobody", 2).await.unwrap(), []);
    // A service has no organizations of its own.
    crate::helpers::assert_invalid(list_for(&mut service, "", 2).await, "user_id");
    // A person lists their own, named or not, and nobody else's.
    let mut alice = app.orgs("alice");
    assert_eq!(list_for(&mut alice, "alice", 10).await.unwrap().len(), 3);
    assert_error(
        list_for(&mut alice, "bob", 10).await,
        Code::PermissionDenied,
        "CAN_ONLY_LIST_OWN_ORGANIZATIONS",
    );
    let _ = first;
}

fn limited(app: &TestApp, scopes: &[&str], organizations: &[&str]) -> String {
    app.token_with(TokenRequest {
        sub: "tenant-service".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        organizations: organizations.iter().map(|s| (*s).to_owned()).collect(),
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    })
}

async fn a_limited_token_acts_only_in_its_organizations(backend: Backend) {
    use pb::get_organization_request::Key;
    let app = TestApp::spawn(&backend).await;
    let inside = app.create_org("alice", "inside").await;
    let also = app.create_org("alice", "also-inside").await;
    let outside = app.create_org("alice", "outside").await;
    for org in [&inside, &also, &outside] {
        app.add_member("alice", &org.id, "bob", pb::Role::Admin)
            .await;
    }
    let scopes = ["organizations.read", "authz.check", "events.read"];
    // One organization (the claim as a string) and two (as a list).
    let one = limited(&app, &scopes, &[&inside.id]);
    let two = limited(&app, &scopes, &[&inside.id, &also.id]);

    // Reads.
    let mut orgs = app.orgs_with_token(Some(&one));
    assert!(get(&mut orgs, Key::Id(inside.id.clone())).await.is_ok());
    assert!(get(&mut orgs, Key::Slug("inside".into())).await.is_ok());
    for key in [
        Key::Id(outside.id.clone()),
        Key::Slug("outside".into()),
        Key::DeveloperId(outside.developer_id.clone()),
    ] {
        assert_error(
            get(&mut orgs, key).await,
            Code::NotFound,
            "ORGANIZATION_NOT_FOUND",
        );
    }
    let mut members = app.members_with_token(Some(&one));
    assert!(
        members
            .list_members(pb::ListMembersRequest {
                organization_id: inside.id.clone(),
                ..Default::default()
            })
            .await
            .is_ok()
    );
    let hidden = members
        .list_members(pb::ListMembersRequest {
            organization_id: outside.id.clone(),
            ..Default::default()
        })
        .await;
    assert_error(hidden, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    let slugs =
        |list: Vec<(String, pb::Role)>| list.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    assert_eq!(
        slugs(list_for(&mut orgs, "bob", 1).await.unwrap()),
        ["inside"]
    );
    let mut orgs_two = app.orgs_with_token(Some(&two));
    assert_eq!(
        slugs(list_for(&mut orgs_two, "bob", 1).await.unwrap()),
        ["inside", "also-inside"]
    );

    // Checks: outside, the answer of an unknown organization.
    let mut authz = app.authz_with_token(Some(&one));
    let checks = vec![
        pb::PermissionCheck {
            user_id: "bob".into(),
            organization_id: inside.id.clone(),
            permission: "applications.create".into(),
            ..Default::default()
        },
        pb::PermissionCheck {
            user_id: "bob".into(),
            organization_id: outside.id.clone(),
            permission: "applications.create".into(),
            ..Default::default()
        },
        pb::PermissionCheck {
            user_id: "bob".into(),
            organization_slug: "outside".into(),
            permission: "applications.create".into(),
            ..Default::default()
        },
    ];
    let results = authz
        .batch_check_permissions(pb::BatchCheckPermissionsRequest {
            checks,
            at_least_revision: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert!(results[0].allowed);
    assert_eq!(results[0].role(), pb::Role::Admin);
    for outsider in &results[1..] {
        assert_eq!(*outsider, pb::PermissionResult::default());
    }

    // Events: only those of its organizations, however they are read.
    app.add_member("alice", &outside.id, "carol", pb::Role::Member)
        .await;
    app.add_member("alice", &inside.id, "carol", pb::Role::Member)
        .await;
    let listed = app
        .events_with_token(Some(&one))
        .list_events(pb::ListEventsRequest {
            after_cursor: String::new(),
            page_size: 500,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!listed.events.is_empty());
    assert!(
        listed.events.iter().all(|e| e.organization_id == inside.id),
        "{:?}",
        listed.events
    );
    let everything = app
        .event_follower()
        .list_events(pb::ListEventsRequest {
            after_cursor: String::new(),
            page_size: 500,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let inside_only: Vec<_> = everything
        .iter()
        .filter(|e| e.organization_id == inside.id)
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(
        listed
            .events
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>(),
        inside_only
    );
    let mut stream = app
        .events_with_token(Some(&one))
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while streamed.len() < inside_only.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the stream delivers")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        assert_eq!(event.organization_id, inside.id, "{event:?}");
        streamed.push(event.id);
    }
    assert_eq!(streamed, inside_only);
    // A later event outside is not sent; the next one inside is.
    app.add_member("alice", &outside.id, "dave", pb::Role::Member)
        .await;
    app.add_member("alice", &inside.id, "dave", pb::Role::Member)
        .await;
    let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream delivers")
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!(next.organization_id, inside.id);
}

async fn an_organization_limit_that_cannot_be_read_refuses_the_token(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let bad = limited(&app, &["organizations.read"], &["not-an-id"]);
    let refused = app
        .orgs_with_token(Some(&bad))
        .get_organization(pb::GetOrganizationRequest {
            key: Some(pb::get_organization_request::Key::Id(org.id.clone())),
        })
        .await;
    assert_error(refused, Code::Unauthenticated, "INVALID_TOKEN");
    // A person's token may carry an identity provider's own `org_id`: it is
    // not roster's, and the person is not refused for it.
    let person = app.token_with(TokenRequest {
        sub: "alice".into(),
        organizations: vec!["org_auth0_tenant".into()],
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    });
    assert!(
        app.orgs_with_token(Some(&person))
            .get_organization(pb::GetOrganizationRequest {
                key: Some(pb::get_organization_request::Key::Id(org.id)),
            })
            .await
            .is_ok()
    );
}
