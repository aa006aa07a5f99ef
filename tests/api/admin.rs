//! Platform administrators: service principals with `organizations.admin`
//! list and search every organization, create one for a user, add members
//! directly, change any role, remove any member, delete any organization
//! and set an organization's own limits, through the ordinary RPCs (and
//! `AddMember`, `SetOrganizationLimits`). People are refused each of these
//! paths, and a token limited to some organizations acts only there.

use std::time::Duration;

use roster::{auth::token::TokenRequest, pb};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, assert_invalid},
};

const ADMIN: &str = "platform-admin";

fn admin(app: &TestApp) -> String {
    crate::services::service_token(app, ADMIN, &["organizations.admin"])
}

/// An administrator's token limited to `organizations` (its `org_id`).
fn limited_admin(app: &TestApp, organizations: &[&str]) -> String {
    app.token_with(TokenRequest {
        sub: ADMIN.into(),
        scopes: vec!["organizations.admin".into()],
        organizations: organizations.iter().map(|s| (*s).to_owned()).collect(),
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    })
}

/// Rows an administrator's call could touch.
async fn footprint(app: &TestApp) -> [i64; 5] {
    [
        app.count("SELECT COUNT(*) AS n FROM organizations").await,
        app.count("SELECT COUNT(*) AS n FROM memberships").await,
        app.count("SELECT COUNT(*) AS n FROM users").await,
        app.count("SELECT COUNT(*) AS n FROM events").await,
        app.count(
            "SELECT COUNT(*) AS n FROM organizations \
             WHERE max_members IS NOT NULL OR max_pending_invitations IS NOT NULL",
        )
        .await,
    ]
}

/// Every event in the log, in order.
async fn events(app: &TestApp) -> Vec<pb::Event> {
    app.event_follower()
        .list_events(pb::ListEventsRequest {
            after_cursor: String::new(),
            page_size: 500,
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

/// The value of `field` in an event's changes (its new value).
fn field(event: &pb::Event, name: &str) -> Option<String> {
    event
        .changes
        .iter()
        .find(|c| c.field == name)
        .map(|c| c.new_value.clone())
}

fn add(org: &str, user: &str, role: pb::Role) -> pb::AddMemberRequest {
    pb::AddMemberRequest {
        organization_id: org.into(),
        user_id: user.into(),
        email: format!("{user}@example.com"),
        display_name: crate::helpers::display_name(user),
        role: role.into(),
        request_id: String::new(),
    }
}

fn for_user(name: &str, slug: &str, owner: &str) -> pb::CreateOrganizationRequest {
    pb::CreateOrganizationRequest {
        name: name.into(),
        slug: slug.into(),
        owner: Some(pb::OrganizationOwner {
            user_id: owner.into(),
            email: format!("{owner}@example.com"),
            display_name: crate::helpers::display_name(owner),
        }),
        ..Default::default()
    }
}

/// Every page of a listing by `orgs` with `query` (and no user).
async fn list_all(
    orgs: &mut crate::helpers::Orgs,
    query: &str,
    page_size: i32,
) -> Result<Vec<pb::UserOrganization>, tonic::Status> {
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = orgs
            .list_organizations(pb::ListOrganizationsRequest {
                page_size,
                page_token: page_token.clone(),
                query: query.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert!(page.organizations.len() <= usize::try_from(page_size).unwrap());
        seen.extend(page.organizations);
        if page.next_page_token.is_empty() {
            return Ok(seen);
        }
        page_token = page.next_page_token;
    }
}

fn slugs(list: &[pb::UserOrganization]) -> Vec<String> {
    list.iter()
        .map(|o| o.organization.clone().unwrap().slug)
        .collect()
}

backend_tests!(
    an_administrator_lists_and_searches_every_organization,
    an_administrator_creates_an_organization_for_a_user,
    an_administrator_adds_members_directly_and_idempotently,
    two_identical_add_member_calls_at_once_make_one_member_and_one_event,
    an_administrator_changes_any_role_but_the_last_owner_stays,
    an_organizations_own_limits_bind_invitations_acceptance_and_added_members,
    a_limited_administrator_acts_only_in_its_organizations,
    people_and_readers_are_refused_every_administrator_path,
);

async fn an_administrator_lists_and_searches_every_organization(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let acme = app.create_org("alice", "acme").await;
    app.create_org("bob", "globex").await;
    let renamed = app.create_org("carol", "initech").await;
    app.update_org(
        "carol",
        pb::Organization {
            id: renamed.id.clone(),
            name: "Acme Rockets".into(),
            ..Default::default()
        },
        &["name"],
    )
    .await
    .unwrap();
    let token = admin(&app);
    let mut orgs = app.orgs_with_token(Some(&token));
    // Every organization, page by page, in the order they were created.
    let all = list_all(&mut orgs, "", 2).await.unwrap();
    assert_eq!(slugs(&all), ["acme", "globex", "initech"]);
    for entry in &all {
        // An administrator is no member: no role, no join time.
        assert_eq!(entry.role(), pb::Role::Unspecified);
        assert!(entry.join_time.is_none());
    }
    // Name or slug, any case, anywhere in it.
    assert_eq!(
        slugs(&list_all(&mut orgs, " aCmE ", 1).await.unwrap()),
        ["acme", "initech"]
    );
    assert_eq!(
        slugs(&list_all(&mut orgs, "OBE", 10).await.unwrap()),
        ["globex"]
    );
    assert_eq!(
        slugs(&list_all(&mut orgs, "rockets", 10).await.unwrap()),
        ["initech"]
    );
    // LIKE's wildcards are plain characters.
    assert!(list_all(&mut orgs, "%", 10).await.unwrap().is_empty());
    assert!(list_all(&mut orgs, "a_m", 10).await.unwrap().is_empty());
    // A page token is bound to its query.
    let first = orgs
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mismatched = orgs
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 1,
            page_token: first.next_page_token,
            query: "acme".into(),
            ..Default::default()
        })
        .await;
    assert_invalid(mismatched, "page_token");
    // Bad queries.
    for bad in ["a".repeat(101), "ac\u{7}me".to_owned()] {
        assert_invalid(list_all(&mut orgs, &bad, 10).await, "query");
    }
    // A hundred characters is still a query.
    assert!(
        list_all(&mut orgs, &"a".repeat(100), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A user's organizations, searched, as a reader would list them.
    let mut named = orgs
        .list_organizations(pb::ListOrganizationsRequest {
            user_id: "carol".into(),
            query: "rocket".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organizations;
    assert_eq!(named.len(), 1);
    assert_eq!(named.remove(0).role(), pb::Role::Owner);
    // People keep listing only their own, searched too.
    let mut alice = app.orgs("alice");
    assert_eq!(
        slugs(&list_all(&mut alice, "", 10).await.unwrap()),
        ["acme"]
    );
    assert!(list_all(&mut alice, "globex", 10).await.unwrap().is_empty());
    assert_invalid(list_all(&mut alice, &"x".repeat(101), 10).await, "query");
    // A token limited to one organization lists only it.
    let only_acme = limited_admin(&app, &[&acme.id]);
    let mut limited = app.orgs_with_token(Some(&only_acme));
    assert_eq!(
        slugs(&list_all(&mut limited, "", 10).await.unwrap()),
        ["acme"]
    );
}

async fn an_administrator_creates_an_organization_for_a_user(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 2).await;
    let token = admin(&app);
    let mut orgs = app.orgs_with_token(Some(&token));
    let request_id = uuid::Uuid::now_v7().to_string();
    let request = pb::CreateOrganizationRequest {
        request_id: request_id.clone(),
        ..for_user("Dana's", "danas", "dana")
    };
    let created = orgs
        .create_organization(request.clone())
        .await
        .unwrap()
        .into_inner();
    let org = created.organization.unwrap();
    // The administrator sees the limits, the server's defaults.
    let limits = org.limits.unwrap();
    assert_eq!(limits.max_members, 100);
    assert!(!limits.max_members_overridden);
    // The named user is its owner, by an administrator's hand.
    let members = app.members_as(&token, &org.id).await;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, "dana");
    assert_eq!(members[0].role(), pb::Role::Owner);
    assert_eq!(members[0].source(), pb::MembershipSource::Admin);
    assert_eq!(members[0].email, "dana@example.com");
    assert_eq!(members[0].display_name, "Dana");
    // Dana sees it as hers.
    let hers = app
        .orgs("dana")
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .organizations;
    assert_eq!(hers.len(), 1);
    assert_eq!(hers[0].role(), pb::Role::Owner);
    // The events name the administrator as the actor.
    let log = events(&app).await;
    let created_event = log
        .iter()
        .find(|e| e.r#type == "organization.created" && e.organization_id == org.id)
        .unwrap();
    assert_eq!(created_event.actor_user_id, ADMIN);
    let added = log
        .iter()
        .find(|e| e.r#type == "member.added" && e.organization_id == org.id)
        .unwrap();
    assert_eq!(added.actor_user_id, ADMIN);
    assert_eq!(added.subject_user_id, "dana");
    assert_eq!(added.subject_email, "dana@example.com");
    assert_eq!(field(added, "source").as_deref(), Some("admin"));
    assert_eq!(field(added, "role").as_deref(), Some("owner"));
    assert_eq!(field(added, "request_id"), Some(request_id));
    // The retry returns the first result and records nothing.
    let before = footprint(&app).await;
    let again = orgs
        .create_organization(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.organization.unwrap().id, org.id);
    assert_eq!(again.revision, created.revision);
    assert_eq!(footprint(&app).await, before);
    // The user's own limit on owned organizations holds: Dana owns one of two.
    orgs.create_organization(for_user("Second", "second", "dana"))
        .await
        .unwrap();
    assert_error(
        orgs.create_organization(for_user("Third", "third", "dana"))
            .await,
        Code::ResourceExhausted,
        "YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_ORGANIZATIONS",
    );
    // A profile Dana's own token wrote wins over what an administrator says.
    app.create_org("erin", "erins").await;
    let for_erin = pb::CreateOrganizationRequest {
        owner: Some(pb::OrganizationOwner {
            user_id: "erin".into(),
            email: "other@example.com".into(),
            display_name: "Someone Else".into(),
        }),
        ..for_user("For Erin", "for-erin", "erin")
    };
    let made = orgs
        .create_organization(for_erin)
        .await
        .unwrap()
        .into_inner();
    let erin = app.members_as(&token, &made.organization.unwrap().id).await;
    assert_eq!(erin[0].email, "erin@example.com");

    // Wrong input: INVALID_ARGUMENT naming the field, and nothing changes.
    let before = footprint(&app).await;
    let mut no_owner = for_user("Nobody's", "nobodys", "x");
    no_owner.owner = None;
    assert_invalid(orgs.create_organization(no_owner).await, "owner");
    let bad_owners = [
        ("owner.user_id", pb::OrganizationOwner::default()),
        (
            "owner.user_id",
            pb::OrganizationOwner {
                user_id: "u".repeat(256),
                ..Default::default()
            },
        ),
        (
            "owner.email",
            pb::OrganizationOwner {
                user_id: "frank".into(),
                email: format!("{}@example.com", "f".repeat(250)),
                ..Default::default()
            },
        ),
        (
            "owner.email",
            pb::OrganizationOwner {
                user_id: "frank".into(),
                email: "frank\n@example.com".into(),
                ..Default::default()
            },
        ),
        (
            "owner.display_name",
            pb::OrganizationOwner {
                user_id: "frank".into(),
                display_name: "Fr\u{0}ank".into(),
                ..Default::default()
            },
        ),
        (
            "owner.display_name",
            pb::OrganizationOwner {
                user_id: "frank".into(),
                display_name: "F".repeat(401),
                ..Default::default()
            },
        ),
    ];
    for (field, owner) in bad_owners {
        let request = pb::CreateOrganizationRequest {
            owner: Some(owner.clone()),
            ..for_user("Frank's", "franks", "frank")
        };
        assert_invalid(orgs.create_organization(request).await, field);
    }
    // A person may not name an owner.
    let by_person = app
        .orgs("alice")
        .create_organization(for_user("Alice's", "alices", "bob"))
        .await;
    assert_invalid(by_person, "owner");
    assert_eq!(footprint(&app).await, before);
}

async fn an_administrator_adds_members_directly_and_idempotently(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let token = admin(&app);
    let mut members = app.members_with_token(Some(&token));
    let request_id = uuid::Uuid::now_v7().to_string();
    let request = pb::AddMemberRequest {
        request_id: request_id.clone(),
        ..add(&org.id, "carol", pb::Role::Admin)
    };
    let added = members
        .add_member(request.clone())
        .await
        .unwrap()
        .into_inner();
    let carol = added.member.unwrap();
    assert_eq!(carol.role(), pb::Role::Admin);
    assert_eq!(carol.source(), pb::MembershipSource::Admin);
    assert_eq!(carol.email, "carol@example.com");
    assert!(!added.revision.is_empty());
    // Carol may act at once, and her first organization is her active one.
    assert_eq!(
        app.role_of("carol", &org.id, "carol").await,
        Some(pb::Role::Admin)
    );
    let active = app
        .orgs("carol")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.organization.unwrap().id, org.id);
    let log = events(&app).await;
    let event = log.last().unwrap();
    assert_eq!(event.r#type, "member.added");
    assert_eq!(event.actor_user_id, ADMIN);
    assert_eq!(event.subject_user_id, "carol");
    assert_eq!(field(event, "source").as_deref(), Some("admin"));
    assert_eq!(field(event, "request_id"), Some(request_id));
    // The same call again: the same member, nothing recorded.
    let before = footprint(&app).await;
    let again = members.add_member(request).await.unwrap().into_inner();
    assert_eq!(again.member.unwrap(), carol);
    assert!(again.revision.is_empty());
    // Without a request id too.
    let same = members
        .add_member(add(&org.id, "carol", pb::Role::Admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.member.unwrap().id, carol.id);
    assert_eq!(footprint(&app).await, before);
    // Another role for a member: a conflict (UpdateMemberRole changes roles).
    assert_error(
        members
            .add_member(add(&org.id, "carol", pb::Role::Member))
            .await,
        Code::AlreadyExists,
        "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION",
    );
    // Any role, owner included.
    let owner = members
        .add_member(add(&org.id, "dave", pb::Role::Owner))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(owner.role(), pb::Role::Owner);
    // The sources as members are listed: creator, invitation, admin.
    let listed: Vec<_> = app
        .members_as(&token, &org.id)
        .await
        .into_iter()
        .map(|m| (m.user_id.clone(), m.source()))
        .collect();
    assert_eq!(
        listed,
        [
            ("alice".to_owned(), pb::MembershipSource::Creator),
            ("bob".to_owned(), pb::MembershipSource::Invitation),
            ("carol".to_owned(), pb::MembershipSource::Admin),
            ("dave".to_owned(), pb::MembershipSource::Admin),
        ]
    );
    // Nowhere: NOT_FOUND.
    assert_error(
        members
            .add_member(add(
                &uuid::Uuid::now_v7().to_string(),
                "erin",
                pb::Role::Member,
            ))
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    // Wrong input: INVALID_ARGUMENT naming the field, and nothing changes.
    let before = footprint(&app).await;
    let bad = [
        (
            "organization_id",
            pb::AddMemberRequest {
                organization_id: "not-a-uuid".into(),
                ..add(&org.id, "erin", pb::Role::Member)
            },
        ),
        ("user_id", add(&org.id, "", pb::Role::Member)),
        ("role", add(&org.id, "erin", pb::Role::Unspecified)),
        (
            "role",
            pb::AddMemberRequest {
                role: 42,
                ..add(&org.id, "erin", pb::Role::Member)
            },
        ),
        (
            "email",
            pb::AddMemberRequest {
                email: "erin\u{1b}@example.com".into(),
                ..add(&org.id, "erin", pb::Role::Member)
            },
        ),
        (
            "display_name",
            pb::AddMemberRequest {
                display_name: "E".repeat(401),
                ..add(&org.id, "erin", pb::Role::Member)
            },
        ),
        (
            "request_id",
            pb::AddMemberRequest {
                request_id: "not-a-uuid".into(),
                ..add(&org.id, "erin", pb::Role::Member)
            },
        ),
    ];
    for (field, request) in bad {
        assert_invalid(members.add_member(request).await, field);
    }
    assert_eq!(footprint(&app).await, before);
}

async fn two_identical_add_member_calls_at_once_make_one_member_and_one_event(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let token = admin(&app);
    let calls = (0..8).map(|_| {
        let mut members = app.members_with_token(Some(&token));
        let request = add(&org.id, "bob", pb::Role::Member);
        tokio::spawn(async move { members.add_member(request).await.map(|r| r.into_inner()) })
    });
    let answers: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| a.member.clone().unwrap().id)
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    // One of them added Bob; the others found him.
    assert_eq!(answers.iter().filter(|a| !a.revision.is_empty()).count(), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM memberships WHERE user_id = 'bob'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM events \
             WHERE event_type = 'member.added' AND subject_user_id = 'bob'"
        )
        .await,
        1
    );
}

async fn an_administrator_changes_any_role_but_the_last_owner_stays(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let token = admin(&app);
    let mut members = app.members_with_token(Some(&token));
    let change = |user: &str, role: pb::Role| pb::UpdateMemberRoleRequest {
        organization_id: org.id.clone(),
        user_id: user.into(),
        role: role.into(),
    };
    // The only owner cannot be demoted, nor removed, by an administrator either.
    let before = footprint(&app).await;
    assert_error(
        members
            .update_member_role(change("alice", pb::Role::Admin))
            .await,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER",
    );
    assert_error(
        members
            .remove_member(pb::RemoveMemberRequest {
                organization_id: org.id.clone(),
                user_id: "alice".into(),
            })
            .await,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER",
    );
    assert_eq!(footprint(&app).await, before);
    // Any role, owner included.
    let promoted = members
        .update_member_role(change("bob", pb::Role::Owner))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(promoted.member.unwrap().role(), pb::Role::Owner);
    let event = events(&app).await.pop().unwrap();
    assert_eq!(event.r#type, "member.role_changed");
    assert_eq!(event.actor_user_id, ADMIN);
    // With another owner, the first may be demoted and then removed.
    members
        .update_member_role(change("alice", pb::Role::Member))
        .await
        .unwrap();
    members
        .remove_member(pb::RemoveMemberRequest {
            organization_id: org.id.clone(),
            user_id: "alice".into(),
        })
        .await
        .unwrap();
    let event = events(&app).await.pop().unwrap();
    assert_eq!(event.r#type, "member.removed");
    assert_eq!(event.actor_user_id, ADMIN);
    assert_eq!(event.subject_user_id, "alice");
    assert_eq!(app.role_of("bob", &org.id, "alice").await, None);
    // Bob is the last owner now.
    assert_error(
        members
            .update_member_role(change("bob", pb::Role::Admin))
            .await,
        Code::FailedPrecondition,
        "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER",
    );
    assert_error(
        members
            .update_member_role(change("nobody", pb::Role::Admin))
            .await,
        Code::NotFound,
        "MEMBER_NOT_FOUND",
    );
    // Any organization may be deleted by an administrator.
    app.orgs_with_token(Some(&token))
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let event = events(&app).await.pop().unwrap();
    assert_eq!(event.r#type, "organization.deleted");
    assert_eq!(event.actor_user_id, ADMIN);
    let gone = app
        .orgs("bob")
        .get_organization(pb::GetOrganizationRequest {
            key: Some(pb::get_organization_request::Key::Id(org.id.clone())),
        })
        .await;
    assert_error(gone, Code::NotFound, "ORGANIZATION_NOT_FOUND");
}

async fn an_organizations_own_limits_bind_invitations_acceptance_and_added_members(
    backend: Backend,
) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let other = app.create_org("alice", "other").await;
    app.add_member("alice", &org.id, "member", pb::Role::Member)
        .await;
    let token = admin(&app);
    let mut orgs = app.orgs_with_token(Some(&token));
    let set =
        |id: &str, members: Option<i32>, pending: Option<i32>| pb::SetOrganizationLimitsRequest {
            organization_id: id.into(),
            max_members: members,
            max_pending_invitations: pending,
        };
    // Three seats: two members and one invitation fill them.
    let reply = orgs
        .set_organization_limits(set(&org.id, Some(3), None))
        .await
        .unwrap()
        .into_inner();
    let limits = reply.organization.unwrap().limits.unwrap();
    assert_eq!(
        limits,
        pb::OrganizationLimits {
            max_members: 3,
            max_members_overridden: true,
            max_pending_invitations: 100,
            max_pending_invitations_overridden: false,
        }
    );
    assert!(!reply.revision.is_empty());
    let event = events(&app).await.pop().unwrap();
    assert_eq!(event.r#type, "organization.updated");
    assert_eq!(event.actor_user_id, ADMIN);
    let change = event
        .changes
        .iter()
        .find(|c| c.field == "max_members")
        .unwrap();
    assert_eq!(
        (change.old_value.as_str(), change.new_value.as_str()),
        ("", "3")
    );
    assert_eq!(event.changes.len(), 1, "{event:?}");
    // The same limits again change nothing.
    let before = footprint(&app).await;
    let same = orgs
        .set_organization_limits(set(&org.id, Some(3), None))
        .await
        .unwrap()
        .into_inner();
    assert!(same.revision.is_empty());
    assert_eq!(footprint(&app).await, before);
    // Owners see them; members do not.
    let get = |user: &str| {
        let mut orgs = app.orgs(user);
        let id = org.id.clone();
        async move {
            orgs.get_organization(pb::GetOrganizationRequest {
                key: Some(pb::get_organization_request::Key::Id(id)),
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap()
            .limits
        }
    };
    assert_eq!(get("alice").await.unwrap().max_members, 3);
    assert_eq!(get("member").await, None);
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    assert_error(
        app.members("alice")
            .create_invitation(pb::CreateInvitationRequest {
                organization_id: org.id.clone(),
                email: "carol@example.com".into(),
                role: pb::Role::Member.into(),
                ..Default::default()
            })
            .await,
        Code::ResourceExhausted,
        "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED",
    );
    let mut members = app.members_with_token(Some(&token));
    assert_error(
        members
            .add_member(add(&org.id, "dave", pb::Role::Member))
            .await,
        Code::ResourceExhausted,
        "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED",
    );
    // The other organization keeps the server's limits.
    members
        .add_member(add(&other.id, "dave", pb::Role::Member))
        .await
        .unwrap();
    // Lowered below what is in use: no one is removed, acceptance is refused.
    orgs.set_organization_limits(set(&org.id, Some(2), None))
        .await
        .unwrap();
    assert_error(
        app.members("bob")
            .accept_invitation(pb::AcceptInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::ResourceExhausted,
        "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED",
    );
    assert_eq!(app.members_as(&token, &org.id).await.len(), 2);
    // Back to the default seats, with no pending invitations allowed.
    orgs.set_organization_limits(set(&org.id, None, Some(0)))
        .await
        .unwrap();
    assert_error(
        app.members("alice")
            .create_invitation(pb::CreateInvitationRequest {
                organization_id: org.id.clone(),
                email: "carol@example.com".into(),
                role: pb::Role::Member.into(),
                ..Default::default()
            })
            .await,
        Code::ResourceExhausted,
        "INVITATION_LIMIT_REACHED",
    );
    // Accepting turns a pending invitation into a member: it now fits.
    app.members("bob")
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .unwrap();
    let limits = get("alice").await.unwrap();
    assert_eq!(
        (limits.max_members, limits.max_members_overridden),
        (100, false)
    );
    assert_eq!(
        (
            limits.max_pending_invitations,
            limits.max_pending_invitations_overridden
        ),
        (0, true)
    );
    // Out of bounds: INVALID_ARGUMENT naming the field, nothing changed.
    let before = footprint(&app).await;
    for (field, request) in [
        ("max_members", set(&org.id, Some(0), None)),
        ("max_members", set(&org.id, Some(-1), None)),
        ("max_members", set(&org.id, Some(1_000_001), None)),
        ("max_pending_invitations", set(&org.id, None, Some(-1))),
        (
            "max_pending_invitations",
            set(&org.id, None, Some(1_000_001)),
        ),
        ("organization_id", set("nope", Some(5), None)),
    ] {
        assert_invalid(orgs.set_organization_limits(request).await, field);
    }
    assert_error(
        orgs.set_organization_limits(set(&uuid::Uuid::now_v7().to_string(), Some(5), None))
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_eq!(footprint(&app).await, before);
    // The largest limit is allowed.
    orgs.set_organization_limits(set(&org.id, Some(1_000_000), Some(1_000_000)))
        .await
        .unwrap();
}

async fn a_limited_administrator_acts_only_in_its_organizations(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let inside = app.create_org("alice", "inside").await;
    let outside = app.create_org("alice", "outside").await;
    for org in [&inside, &outside] {
        app.add_member("alice", &org.id, "bob", pb::Role::Member)
            .await;
    }
    let token = limited_admin(&app, &[&inside.id]);
    let mut orgs = app.orgs_with_token(Some(&token));
    let mut members = app.members_with_token(Some(&token));
    let before = footprint(&app).await;
    // Outside, as if the organization did not exist.
    assert_error(
        members
            .add_member(add(&outside.id, "carol", pb::Role::Member))
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        members
            .update_member_role(pb::UpdateMemberRoleRequest {
                organization_id: outside.id.clone(),
                user_id: "bob".into(),
                role: pb::Role::Admin.into(),
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        members
            .remove_member(pb::RemoveMemberRequest {
                organization_id: outside.id.clone(),
                user_id: "bob".into(),
            })
            .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        orgs.set_organization_limits(pb::SetOrganizationLimitsRequest {
            organization_id: outside.id.clone(),
            max_members: Some(5),
            max_pending_invitations: None,
        })
        .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    assert_error(
        orgs.delete_organization(pb::DeleteOrganizationRequest {
            id: outside.id.clone(),
            etag: String::new(),
        })
        .await,
        Code::NotFound,
        "ORGANIZATION_NOT_FOUND",
    );
    // A new organization would lie outside its organizations.
    assert_error(
        orgs.create_organization(for_user("New", "new-one", "carol"))
            .await,
        Code::PermissionDenied,
        "TOKEN_LIMITED_TO_ORGANIZATIONS",
    );
    assert_eq!(footprint(&app).await, before);
    // Inside, it administers.
    members
        .add_member(add(&inside.id, "carol", pb::Role::Member))
        .await
        .unwrap();
    members
        .update_member_role(pb::UpdateMemberRoleRequest {
            organization_id: inside.id.clone(),
            user_id: "bob".into(),
            role: pb::Role::Admin.into(),
        })
        .await
        .unwrap();
    orgs.set_organization_limits(pb::SetOrganizationLimitsRequest {
        organization_id: inside.id.clone(),
        max_members: Some(5),
        max_pending_invitations: None,
    })
    .await
    .unwrap();
    orgs.delete_organization(pb::DeleteOrganizationRequest {
        id: inside.id.clone(),
        etag: String::new(),
    })
    .await
    .unwrap();
    assert_eq!(
        app.role_of("alice", &outside.id, "bob").await,
        Some(pb::Role::Member)
    );
}

async fn people_and_readers_are_refused_every_administrator_path(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    app.create_org("carol", "carols").await;
    let reader = crate::services::service_token(&app, "support", &["organizations.read"]);
    let before = footprint(&app).await;
    // The owner herself, and a reader, each get PERMISSION_DENIED MISSING_SCOPE.
    for token in [app.token("alice"), reader.clone()] {
        let mut members = app.members_with_token(Some(&token));
        let mut orgs = app.orgs_with_token(Some(&token));
        assert_error(
            members
                .add_member(add(&org.id, "dave", pb::Role::Owner))
                .await,
            Code::PermissionDenied,
            "MISSING_SCOPE",
        );
        assert_error(
            orgs.set_organization_limits(pb::SetOrganizationLimitsRequest {
                organization_id: org.id.clone(),
                max_members: Some(500),
                max_pending_invitations: None,
            })
            .await,
            Code::PermissionDenied,
            "MISSING_SCOPE",
        );
    }
    let mut members = app.members_with_token(Some(&reader));
    let mut orgs = app.orgs_with_token(Some(&reader));
    for (rpc, answer) in [
        (
            "UpdateMemberRole",
            members
                .update_member_role(pb::UpdateMemberRoleRequest {
                    organization_id: org.id.clone(),
                    user_id: "bob".into(),
                    role: pb::Role::Owner.into(),
                })
                .await
                .map(drop),
        ),
        (
            "DeleteOrganization",
            orgs.delete_organization(pb::DeleteOrganizationRequest {
                id: org.id.clone(),
                etag: String::new(),
            })
            .await
            .map(drop),
        ),
        (
            "CreateOrganization",
            orgs.create_organization(for_user("X", "xyz", "bob"))
                .await
                .map(drop),
        ),
    ] {
        let status = answer.expect_err(rpc);
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}");
        assert_eq!(crate::helpers::reason(&status), "MISSING_SCOPE", "{rpc}");
    }
    // A reader lists a user's organizations, not every one.
    assert_invalid(list_all(&mut orgs, "", 10).await, "user_id");
    // A person lists their own, whatever they search for.
    assert_eq!(
        slugs(&list_all(&mut app.orgs("bob"), "", 10).await.unwrap()),
        ["acme"]
    );
    // Bob, a member, may not make himself an owner, nor see the limits.
    assert_error(
        app.members("bob")
            .update_member_role(pb::UpdateMemberRoleRequest {
                organization_id: org.id.clone(),
                user_id: "bob".into(),
                role: pb::Role::Owner.into(),
            })
            .await,
        Code::PermissionDenied,
        "INSUFFICIENT_PERMISSION",
    );
    assert_eq!(footprint(&app).await, before);
}
