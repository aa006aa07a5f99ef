//! LookupOrganizations and LookupUsers against a brute-force answer over
//! random organizations, users and roles: complete across pages, equal to
//! what the permission checks say, and the same on a second replica after
//! concurrent changes, with revisions.

use std::collections::{BTreeMap, BTreeSet};

use roster::{domain::event::EventCursor, pb};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Authz, Backend, TestApp, assert_error},
};

/// A small deterministic generator (xorshift64*): the seed is printed, so
/// a failure can be replayed with `LOOKUP_SEED`.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::env::var("LOOKUP_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("LOOKUP_SEED={seed}");
        Random(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One permission per rung of the role ladder.
const PERMISSIONS: [&str; 3] = [
    "organization.delete",
    "applications.create",
    "applications.read",
];

/// Which roles hold each of [`PERMISSIONS`], from the README's table.
fn holds(role: pb::Role, permission: &str) -> bool {
    match permission {
        "organization.delete" => role == pb::Role::Owner,
        "applications.create" => matches!(role, pb::Role::Owner | pb::Role::Admin),
        "applications.read" => role != pb::Role::Unspecified,
        other => panic!("{other}"),
    }
}

const ROLES: [pb::Role; 3] = [pb::Role::Owner, pb::Role::Admin, pb::Role::Member];

/// The state as the test made it: (organization id, user) → role.
type Model = BTreeMap<(String, String), pb::Role>;

fn user(n: u64) -> String {
    format!("user-{n}")
}

fn service(app: &TestApp) -> Authz {
    app.authz_service()
}

/// What a lookup asks for: a user's organizations (`LookupOrganizations`)
/// or an organization's users (`LookupUsers`).
#[derive(Clone, Copy)]
enum Lookup<'a> {
    OrganizationsOf(&'a str),
    UsersOf(&'a str),
}

/// Reads every page of a lookup, checking what every page must hold: no
/// more grants than asked for, none twice, and revisions that never go
/// back. The grants are (organization or user, role).
async fn lookup(
    authz: &Authz,
    what: Lookup<'_>,
    permission: &str,
    page_size: i32,
    at_least: &str,
) -> (BTreeSet<(String, pb::Role)>, Vec<EventCursor>) {
    let mut authz = authz.clone();
    let mut found = BTreeSet::new();
    let mut revisions = Vec::new();
    let mut page_token = String::new();
    loop {
        let (grants, revision, next_page_token): (Vec<_>, _, _) = match what {
            Lookup::OrganizationsOf(user) => {
                let page = authz
                    .lookup_organizations(pb::LookupOrganizationsRequest {
                        user_id: user.into(),
                        permission: permission.into(),
                        page_size,
                        page_token,
                        at_least_revision: at_least.into(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let grants = page.organizations.iter().map(|grant| {
                    assert!(!grant.developer_id.is_empty() && !grant.organization_slug.is_empty());
                    (grant.organization_id.clone(), grant.role())
                });
                (grants.collect(), page.revision, page.next_page_token)
            }
            Lookup::UsersOf(org) => {
                let page = authz
                    .lookup_users(pb::LookupUsersRequest {
                        organization_id: org.into(),
                        permission: permission.into(),
                        page_size,
                        page_token,
                        at_least_revision: at_least.into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let grants = page.users.iter();
                let grants = grants.map(|grant| (grant.user_id.clone(), grant.role()));
                (grants.collect(), page.revision, page.next_page_token)
            }
        };
        assert!(grants.len() <= page_size as usize);
        for grant in grants {
            assert!(found.insert(grant.clone()), "{grant:?} twice");
        }
        let revision = EventCursor::parse("revision", &revision).unwrap();
        // Later pages never reflect less than earlier ones.
        assert!(
            revisions
                .last()
                .is_none_or(|previous| *previous <= revision)
        );
        revisions.push(revision);
        if next_page_token.is_empty() {
            return (found, revisions);
        }
        page_token = next_page_token;
    }
}

/// Every lookup of `app` equals the brute-force answer over `model`, and
/// agrees with the checks. With `at_least`, the answers must reflect it;
/// the revisions they report must be at least it where nothing can hold the
/// log back (SQLite; on PostgreSQL a transaction still open elsewhere in
/// the database, such as a background sweep, may keep the reported
/// revision below a newer commit the answer already reflects).
async fn assert_lookups_match(
    app: &TestApp,
    model: &Model,
    orgs: &[String],
    users: u64,
    random: &mut Random,
    at_least: Option<EventCursor>,
) {
    let revision = at_least.map(EventCursor::encode).unwrap_or_default();
    let strict = !app.config.database_url.starts_with("postgres");
    let at_least = at_least.filter(|_| strict);
    let mut authz = service(app);
    for permission in PERMISSIONS {
        for n in 0..users {
            let who = user(n);
            let want: BTreeSet<_> = model
                .iter()
                .filter(|((_, u), role)| *u == who && holds(**role, permission))
                .map(|((org, _), role)| (org.clone(), *role))
                .collect();
            let page_size = 1 + random.below(3) as i32;
            let (got, revisions) = lookup(
                &authz,
                Lookup::OrganizationsOf(&who),
                permission,
                page_size,
                &revision,
            )
            .await;
            assert_eq!(got, want, "LookupOrganizations({who}, {permission})");
            if let Some(at_least) = at_least {
                assert!(revisions.iter().all(|r| *r >= at_least), "{revisions:?}");
            }
        }
        for org in orgs {
            let want: BTreeSet<_> = model
                .iter()
                .filter(|((o, _), role)| o == org && holds(**role, permission))
                .map(|((_, u), role)| (u.clone(), *role))
                .collect();
            let page_size = 1 + random.below(4) as i32;
            let (got, revisions) = lookup(
                &authz,
                Lookup::UsersOf(org),
                permission,
                page_size,
                &revision,
            )
            .await;
            assert_eq!(got, want, "LookupUsers({org}, {permission})");
            if let Some(at_least) = at_least {
                assert!(revisions.iter().all(|r| *r >= at_least), "{revisions:?}");
            }
        }
    }
    // The checks say the same, user by user.
    for n in 0..users {
        let who = user(n);
        let checks: Vec<_> = orgs
            .iter()
            .flat_map(|org| {
                PERMISSIONS.map(|permission| pb::PermissionCheck {
                    user_id: who.clone(),
                    organization_id: org.clone(),
                    permission: permission.into(),
                    ..Default::default()
                })
            })
            .collect();
        let answers = authz
            .batch_check_permissions(pb::BatchCheckPermissionsRequest {
                checks: checks.clone(),
                at_least_revision: revision.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        for (check, answer) in checks.iter().zip(&answers.results) {
            let role = model
                .get(&(check.organization_id.clone(), who.clone()))
                .copied()
                .unwrap_or(pb::Role::Unspecified);
            assert_eq!(answer.allowed, holds(role, &check.permission), "{check:?}");
        }
        let evaluated = EventCursor::parse("revision", &answers.revision).unwrap();
        if let Some(at_least) = at_least {
            assert!(evaluated >= at_least);
        }
    }
}

backend_tests!(
    lookups_equal_a_brute_force_answer_over_random_data_on_two_replicas,
    lookups_are_refused_and_bounded_as_checks_are,
);

async fn lookups_equal_a_brute_force_answer_over_random_data_on_two_replicas(backend: Backend) {
    const ORGS: u64 = 5;
    const USERS: u64 = 8;
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 100).await;
    let replica = app.replica().await;
    let mut random = Random::new();
    let mut model = Model::new();
    let mut orgs = Vec::new();
    let mut owners = Vec::new();
    for o in 0..ORGS {
        let owner = user(random.below(USERS));
        let org = app.create_org(&owner, &format!("org-{o}")).await;
        model.insert((org.id.clone(), owner.clone()), pb::Role::Owner);
        for n in 0..USERS {
            let member = user(n);
            if member == owner || random.below(10) < 4 {
                continue;
            }
            let role = ROLES[random.below(3) as usize];
            app.add_member(&owner, &org.id, &member, role).await;
            model.insert((org.id.clone(), member), role);
        }
        orgs.push(org.id);
        owners.push(owner);
    }
    assert_lookups_match(&app, &model, &orgs, USERS, &mut random, None).await;

    // Concurrent changes, one task per organization (each by its first
    // owner, who stays): roles changed and members removed.
    let mut tasks = Vec::new();
    for (org, owner) in orgs.iter().zip(&owners) {
        let members: Vec<(String, pb::Role)> = model
            .iter()
            .filter(|((o, u), _)| o == org && u != owner)
            .map(|((_, u), role)| (u.clone(), *role))
            .collect();
        let plan: Vec<(String, Option<pb::Role>)> = members
            .into_iter()
            .map(|(member, role)| {
                let change = match random.below(3) {
                    0 => None,
                    // Always another role than the one held.
                    _ => {
                        let at = ROLES.iter().position(|r| *r == role).unwrap();
                        Some(ROLES[(at + 1 + random.below(2) as usize) % 3])
                    }
                };
                (member, change)
            })
            .collect();
        let mut client = app.members(owner);
        let org = org.clone();
        tasks.push(tokio::spawn(async move {
            let mut applied = Vec::new();
            for (member, change) in plan {
                let revision = match change {
                    None => {
                        client
                            .remove_member(pb::RemoveMemberRequest {
                                organization_id: org.clone(),
                                user_id: member.clone(),
                            })
                            .await
                            .unwrap()
                            .into_inner()
                            .revision
                    }
                    Some(role) => {
                        client
                            .update_member_role(pb::UpdateMemberRoleRequest {
                                organization_id: org.clone(),
                                user_id: member.clone(),
                                role: role.into(),
                            })
                            .await
                            .unwrap()
                            .into_inner()
                            .revision
                    }
                };
                applied.push((org.clone(), member, change, revision));
            }
            applied
        }));
    }
    let mut newest = EventCursor::START;
    for task in tasks {
        for (org, member, change, revision) in task.await.unwrap() {
            match change {
                None => model.remove(&(org, member)),
                Some(role) => model.insert((org, member), role),
            };
            newest = newest.max(EventCursor::parse("revision", &revision).unwrap());
        }
    }
    // Both replicas, asked for the newest change at least, answer the new state.
    assert_lookups_match(&replica, &model, &orgs, USERS, &mut random, Some(newest)).await;
    assert_lookups_match(&app, &model, &orgs, USERS, &mut random, Some(newest)).await;
}

async fn lookups_are_refused_and_bounded_as_checks_are(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    // A person may look up their own organizations, not someone else's.
    let mut bob = app.authz("bob");
    let (own, _) = lookup(
        &bob,
        Lookup::OrganizationsOf(""),
        "applications.read",
        10,
        "",
    )
    .await;
    assert_eq!(own.len(), 1);
    let (named, _) = lookup(
        &bob,
        Lookup::OrganizationsOf("bob"),
        "applications.create",
        10,
        "",
    )
    .await;
    assert!(named.is_empty());
    let other = bob
        .lookup_organizations(pb::LookupOrganizationsRequest {
            user_id: "alice".into(),
            permission: "applications.read".into(),
            ..Default::default()
        })
        .await;
    assert_error(
        other,
        Code::PermissionDenied,
        "CAN_ONLY_CHECK_OWN_PERMISSIONS",
    );
    // Who may act in an organization is for services.
    let people = bob
        .lookup_users(pb::LookupUsersRequest {
            organization_id: org.id.clone(),
            permission: "applications.read".into(),
            ..Default::default()
        })
        .await;
    assert_error(people, Code::PermissionDenied, "MISSING_SCOPE");
    let mut service = app.authz_service();
    // By slug, as checks are; an unknown organization has nobody.
    let by_slug = service
        .lookup_users(pb::LookupUsersRequest {
            organization_slug: "acme".into(),
            permission: "members.manage".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_slug.users.len(), 1);
    assert_eq!(by_slug.users[0].user_id, "alice");
    let unknown = uuid::Uuid::now_v7().to_string();
    let (nobody, _) = lookup(
        &service,
        Lookup::UsersOf(&unknown),
        "applications.read",
        10,
        "",
    )
    .await;
    assert!(nobody.is_empty());
    // Bad input names the field.
    let unknown = service
        .lookup_users(pb::LookupUsersRequest {
            organization_id: org.id.clone(),
            permission: "applications.fly".into(),
            ..Default::default()
        })
        .await;
    crate::helpers::assert_invalid(unknown, "permission");
    let both = service
        .lookup_users(pb::LookupUsersRequest {
            organization_id: org.id.clone(),
            organization_slug: "acme".into(),
            permission: "applications.read".into(),
            ..Default::default()
        })
        .await;
    crate::helpers::assert_invalid(both, "organization_slug");
    // A page token is bound to its question.
    let first = service
        .lookup_users(pb::LookupUsersRequest {
            organization_id: org.id.clone(),
            permission: "applications.read".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let reused = service
        .lookup_users(pb::LookupUsersRequest {
            organization_id: org.id.clone(),
            permission: "applications.create".into(),
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await;
    crate::helpers::assert_invalid(reused, "page_token");
}
