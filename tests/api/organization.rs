//! OrganizationService, RPC by RPC.

use prost_types::FieldMask;
use roster::pb::{self, get_organization_request::Key};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, assert_invalid},
};

backend_tests!(
    creating_an_organization_makes_the_caller_its_owner,
    a_taken_slug_is_already_exists_whatever_its_case,
    a_retried_create_returns_the_first_result,
    concurrent_retries_create_one_organization,
    the_owned_organization_limit_counts_owned_organizations_only,
    get_organization_finds_by_id_and_by_slug_with_the_callers_role,
    outsiders_cannot_tell_an_organization_exists,
    list_organizations_pages_through_the_callers_organizations_with_roles,
    a_page_token_is_refused_on_another_listing,
    owners_and_admins_update_name_and_logo_through_a_field_mask,
    a_stale_etag_is_aborted_and_changes_nothing,
    members_cannot_update_and_admins_cannot_delete,
    deleting_an_organization_takes_its_members_and_invitations_with_it,
    check_slug_says_whether_and_why,
    the_active_organization_is_set_read_cleared_and_rechecked,
);

async fn creating_an_organization_makes_the_caller_its_owner(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app
        .orgs("alice")
        .create_organization(pb::CreateOrganizationRequest {
            name: "  Acme Corp ".into(),
            slug: "Acme-Corp".into(),
            logo_url: "https://cdn.example.com/acme.png".into(),
            request_id: String::new(),
            owner: None,
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(org.name, "Acme Corp");
    assert_eq!(org.slug, "acme-corp");
    assert_eq!(org.logo_url, "https://cdn.example.com/acme.png");
    assert!(uuid::Uuid::parse_str(&org.id).is_ok());
    assert!(uuid::Uuid::parse_str(&org.developer_id).is_ok());
    assert_ne!(org.id, org.developer_id);
    assert!(!org.etag.is_empty());
    assert_eq!(
        app.role_of("alice", &org.id, "alice").await,
        Some(pb::Role::Owner)
    );
}

async fn a_taken_slug_is_already_exists_whatever_its_case(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    app.create_org("alice", "acme").await;
    let again = app
        .orgs("bob")
        .create_organization(pb::CreateOrganizationRequest {
            name: "Other".into(),
            slug: "ACME".into(),
            ..Default::default()
        })
        .await;
    assert_error(
        again,
        Code::AlreadyExists,
        "ORGANIZATION_SLUG_ALREADY_TAKEN",
    );
    // Bob got nothing out of it.
    let bobs = app
        .orgs("bob")
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap();
    assert!(bobs.into_inner().organizations.is_empty());
}

async fn a_retried_create_returns_the_first_result(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let request = pb::CreateOrganizationRequest {
        name: "Acme".into(),
        slug: "acme".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let first = app
        .orgs("alice")
        .create_organization(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = app
        .orgs("alice")
        .create_organization(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    let listed = app
        .orgs("alice")
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.into_inner().organizations.len(), 1);
    // The same request id from someone else is their own request.
    let bobs = app.orgs("bob").create_organization(request).await;
    assert_error(bobs, Code::AlreadyExists, "ORGANIZATION_SLUG_ALREADY_TAKEN");
}

async fn concurrent_retries_create_one_organization(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let request = pb::CreateOrganizationRequest {
        name: "Acme".into(),
        slug: "acme".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let calls = (0..8).map(|_| {
        let mut client = app.orgs("alice");
        let request = request.clone();
        tokio::spawn(async move {
            client
                .create_organization(request)
                .await
                .map(|r| r.into_inner())
        })
    });
    let replies: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert!(
        replies.windows(2).all(|w| w[0] == w[1]),
        "every retry sees the same organization"
    );
    let listed = app
        .orgs("alice")
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.into_inner().organizations.len(), 1);
}

async fn the_owned_organization_limit_counts_owned_organizations_only(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 2).await;
    app.create_org("alice", "alice-one").await;
    app.create_org("alice", "alice-two").await;
    let third = app
        .orgs("alice")
        .create_organization(pb::CreateOrganizationRequest {
            name: "Three".into(),
            slug: "alice-three".into(),
            ..Default::default()
        })
        .await;
    assert_error(
        third,
        Code::ResourceExhausted,
        "YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_ORGANIZATIONS",
    );
    // Memberships that are not ownerships do not count.
    let bobs = app.create_org("bob", "bob-one").await;
    app.create_org("bob", "bob-two").await;
    app.add_member("bob", &bobs.id, "carol", pb::Role::Admin)
        .await;
    app.create_org("carol", "carol-one").await;
    app.create_org("carol", "carol-two").await;
}

async fn get_organization_finds_by_id_and_by_slug_with_the_callers_role(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    for key in [Key::Id(org.id.clone()), Key::Slug("ACME".into())] {
        let reply = app
            .orgs("bob")
            .get_organization(pb::GetOrganizationRequest { key: Some(key) })
            .await
            .unwrap()
            .into_inner();
        // A member sees everything the owner saw but the limits, which
        // only owners, admins and administrators are shown.
        let seen_by_a_member = pb::Organization {
            limits: None,
            ..org.clone()
        };
        assert!(org.limits.is_some());
        assert_eq!(reply.organization.as_ref(), Some(&seen_by_a_member));
        assert_eq!(reply.role(), pb::Role::Member);
    }
}

async fn outsiders_cannot_tell_an_organization_exists(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let by_id = app
        .orgs("mallory")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(org.id)),
        })
        .await;
    assert_error(by_id, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    let by_slug = app
        .orgs("mallory")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Slug("acme".into())),
        })
        .await;
    assert_error(by_slug, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    let missing = app
        .orgs("mallory")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(uuid::Uuid::now_v7().to_string())),
        })
        .await;
    assert_error(missing, Code::NotFound, "ORGANIZATION_NOT_FOUND");
}

async fn list_organizations_pages_through_the_callers_organizations_with_roles(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 50).await;
    let mut slugs = Vec::new();
    for i in 0..7 {
        let slug = format!("org-{i}");
        app.create_org("alice", &slug).await;
        slugs.push(slug);
    }
    let bobs = app.create_org("bob", "bobs-org").await;
    app.add_member("bob", &bobs.id, "alice", pb::Role::Member)
        .await;
    slugs.push("bobs-org".into());

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .orgs("alice")
            .list_organizations(pb::ListOrganizationsRequest {
                page_size: 3,
                page_token: token.clone(),
                include_logos: false,
                user_id: String::new(),
                query: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.organizations.len() <= 3);
        for entry in page.organizations {
            let org = entry.organization.unwrap();
            let expected = if org.slug == "bobs-org" {
                pb::Role::Member
            } else {
                pb::Role::Owner
            };
            assert_eq!(pb::Role::try_from(entry.role).unwrap(), expected);
            assert!(entry.join_time.is_some());
            seen.push(org.slug);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, slugs, "every organization once, in joining order");
}

async fn a_page_token_is_refused_on_another_listing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    for i in 0..3 {
        app.create_org("alice", &format!("org-{i}")).await;
    }
    let page = app
        .orgs("alice")
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let org_id = page.organizations[0].organization.clone().unwrap().id;
    let misuse = app
        .members("alice")
        .list_members(pb::ListMembersRequest {
            organization_id: org_id,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await;
    assert_invalid(misuse, "page_token");
    let garbage = app
        .orgs("alice")
        .list_organizations(pb::ListOrganizationsRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await;
    assert_invalid(garbage, "page_token");
}

async fn owners_and_admins_update_name_and_logo_through_a_field_mask(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    let renamed = app
        .update_org(
            "bob",
            pb::Organization {
                id: org.id.clone(),
                name: "Acme Renamed".into(),
                logo_url: "https://ignored.example.com/x.png".into(),
                ..Default::default()
            },
            &["name"],
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Acme Renamed");
    assert_eq!(renamed.logo_url, "", "logo_url was not in the mask");
    assert_eq!(renamed.slug, "acme");
    assert_ne!(renamed.etag, org.etag);

    let with_logo = app
        .update_org(
            "alice",
            pb::Organization {
                id: org.id.clone(),
                logo_url: "https://cdn.example.com/logo.png".into(),
                etag: renamed.etag.clone(),
                ..Default::default()
            },
            &["logo_url"],
        )
        .await
        .unwrap();
    assert_eq!(with_logo.logo_url, "https://cdn.example.com/logo.png");
    assert_eq!(with_logo.name, "Acme Renamed");

    // Removing the logo: an empty value under the mask.
    let cleared = app
        .update_org(
            "alice",
            pb::Organization {
                id: org.id.clone(),
                ..Default::default()
            },
            &["logo_url"],
        )
        .await
        .unwrap();
    assert_eq!(cleared.logo_url, "");
}

async fn a_stale_etag_is_aborted_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let update = |name: &str, etag: &str| pb::UpdateOrganizationRequest {
        organization: Some(pb::Organization {
            id: org.id.clone(),
            name: name.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["name".into()],
        }),
    };
    app.orgs("alice")
        .update_organization(update("First", &org.etag))
        .await
        .unwrap();
    let stale = app
        .orgs("alice")
        .update_organization(update("Second", &org.etag))
        .await;
    assert_error(stale, Code::Aborted, "ETAG_MISMATCH");
    let now = app
        .orgs("alice")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(org.id.clone())),
        })
        .await
        .unwrap();
    assert_eq!(now.into_inner().organization.unwrap().name, "First");
    let delete = app
        .orgs("alice")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id,
            etag: org.etag,
        })
        .await;
    assert_error(delete, Code::Aborted, "ETAG_MISMATCH");
}

async fn members_cannot_update_and_admins_cannot_delete(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Admin)
        .await;
    let update = app
        .orgs("bob")
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                id: org.id.clone(),
                name: "Hacked".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await;
    assert_error(update, Code::PermissionDenied, "INSUFFICIENT_PERMISSION");
    let delete = app
        .orgs("carol")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            ..Default::default()
        })
        .await;
    assert_error(delete, Code::PermissionDenied, "INSUFFICIENT_PERMISSION");
}

async fn deleting_an_organization_takes_its_members_and_invitations_with_it(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        // Deleted organizations are purged at once here.
        c.deleted_organization_retention = std::time::Duration::from_millis(1);
        c.expiry_sweep_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let invitation = app
        .invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    app.orgs("bob")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();

    app.orgs("alice")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            etag: org.etag.clone(),
        })
        .await
        .unwrap();
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM organizations WHERE deleted_at IS NOT NULL",
        0,
    )
    .await;

    let gone = app
        .orgs("alice")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(org.id.clone())),
        })
        .await;
    assert_error(gone, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    let bobs = app
        .orgs("bob")
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap();
    assert!(bobs.into_inner().organizations.is_empty());
    let active = app
        .orgs("bob")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap();
    assert!(active.into_inner().organization.is_none());
    let carols = app
        .members("carol")
        .get_invitation(pb::GetInvitationRequest { id: invitation.id })
        .await;
    assert_error(carols, Code::NotFound, "INVITATION_NOT_FOUND");
    // The slug is free again.
    app.create_org("bob", "acme").await;
}

async fn check_slug_says_whether_and_why(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    app.create_org("alice", "acme").await;
    let check = |slug: &str| {
        let mut client = app.orgs("bob");
        let slug = slug.to_owned();
        async move {
            client
                .check_slug(pb::CheckSlugRequest { slug })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let free = check(" New-Co ").await;
    assert!(free.available);
    assert_eq!(free.reason, "");
    assert_eq!(free.normalized_slug, "new-co");
    let taken = check("ACME").await;
    assert!(!taken.available);
    assert_eq!(taken.reason, "ORGANIZATION_SLUG_ALREADY_TAKEN");
    let reserved = check("admin").await;
    assert_eq!(reserved.reason, "SLUG_RESERVED");
    for invalid in ["ab", "a--b", "-abc", "abc-", "ab_c", ""] {
        let answer = check(invalid).await;
        assert!(!answer.available, "{invalid}");
        assert_eq!(answer.reason, "SLUG_INVALID", "{invalid}");
        assert!(!answer.message.is_empty());
    }
}

async fn the_active_organization_is_set_read_cleared_and_rechecked(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let none = app
        .orgs("bob")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap();
    assert!(none.into_inner().organization.is_none());

    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let other = app.create_org("alice", "other").await;

    let set = app
        .orgs("bob")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.organization.as_ref().unwrap().id, org.id);
    assert_eq!(set.role(), pb::Role::Member);
    let read = app
        .orgs("bob")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.organization.as_ref().unwrap().id, org.id);
    assert_eq!(read.role(), pb::Role::Member);

    // Not a member of `other`: as if it did not exist, and nothing changes.
    let foreign = app
        .orgs("bob")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: other.id,
        })
        .await;
    assert_error(foreign, Code::NotFound, "ORGANIZATION_NOT_FOUND");
    let still = app
        .orgs("bob")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.organization.unwrap().id, org.id);

    // Losing the membership clears it.
    app.members("alice")
        .remove_member(pb::RemoveMemberRequest {
            organization_id: org.id.clone(),
            user_id: "bob".into(),
        })
        .await
        .unwrap();
    let gone = app
        .orgs("bob")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(gone.organization.is_none());
    assert_eq!(gone.role(), pb::Role::Unspecified);

    // An empty id clears it explicitly.
    app.orgs("alice")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();
    let cleared = app
        .orgs("alice")
        .set_active_organization(pb::SetActiveOrganizationRequest {
            organization_id: String::new(),
        })
        .await
        .unwrap();
    assert!(cleared.into_inner().organization.is_none());
    let read = app
        .orgs("alice")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap();
    assert!(read.into_inner().organization.is_none());
}
