//! Slugs: renaming an organization's slug, the old slug's retention, and
//! permission checks by slug (what the portal's backend asks on every
//! request), on one replica and across two.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prost_types::FieldMask;
use roster::pb::{self, get_organization_request::Key};
use tokio::sync::Barrier;
use tonic::{Code, Status};

use crate::{
    backend_tests,
    helpers::{Authz, Backend, TestApp, assert_error, assert_invalid, bad_fields, reason},
};

backend_tests!(
    owners_and_admins_rename_and_the_old_slug_keeps_leading_to_the_organization,
    a_rename_to_a_wrong_slug_is_refused_and_changes_nothing,
    an_empty_mask_never_renames,
    the_old_slug_is_released_after_its_retention,
    deleting_an_organization_frees_its_old_slugs,
    a_rename_records_the_old_and_the_new_slug,
    a_check_by_slug_answers_members_with_the_ids_and_outsiders_with_nothing,
    a_check_names_the_organization_by_exactly_one_of_id_and_slug,
    a_batch_mixes_checks_by_id_and_by_slug,
    another_replica_resolves_a_renamed_slug_with_the_renames_revision,
    lookups_on_two_replicas_during_renames_never_resolve_to_another_organization,
    concurrent_renames_and_creates_to_one_slug_let_exactly_one_win,
);

const PERMISSION: &str = "applications.create";

/// `user` sets `org`'s slug (only the slug is in the mask).
async fn rename(
    app: &TestApp,
    user: &str,
    org: &str,
    slug: &str,
) -> Result<pb::UpdateOrganizationResponse, Status> {
    app.orgs(user)
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                id: org.to_owned(),
                slug: slug.to_owned(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["slug".into()],
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get_by_slug(app: &TestApp, user: &str, slug: &str) -> Result<pb::Organization, Status> {
    app.orgs(user)
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Slug(slug.to_owned())),
        })
        .await
        .map(|reply| reply.into_inner().organization.unwrap())
}

async fn get_by_id(app: &TestApp, user: &str, id: &str) -> pb::Organization {
    app.orgs(user)
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Id(id.to_owned())),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
}

async fn check_slug(app: &TestApp, slug: &str) -> pb::CheckSlugResponse {
    app.orgs("anyone")
        .check_slug(pb::CheckSlugRequest {
            slug: slug.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn by_slug(user: &str, slug: &str) -> pb::PermissionCheck {
    pb::PermissionCheck {
        user_id: user.to_owned(),
        organization_slug: slug.to_owned(),
        permission: PERMISSION.to_owned(),
        ..Default::default()
    }
}

async fn ask(
    client: &mut Authz,
    check: pb::PermissionCheck,
    revision: &str,
) -> Result<pb::PermissionResult, Status> {
    client
        .check_permission(pb::CheckPermissionRequest {
            check: Some(check),
            at_least_revision: revision.to_owned(),
        })
        .await
        .map(|reply| reply.into_inner().result.unwrap())
}

async fn ask_slug(
    client: &mut Authz,
    user: &str,
    slug: &str,
    revision: &str,
) -> pb::PermissionResult {
    ask(client, by_slug(user, slug), revision).await.unwrap()
}

/// The answer a non-member gets: nothing about the organization.
fn outsider() -> pb::PermissionResult {
    pb::PermissionResult::default()
}

async fn owners_and_admins_rename_and_the_old_slug_keeps_leading_to_the_organization(
    backend: Backend,
) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "mia", pb::Role::Member)
        .await;

    let renamed = rename(&app, "bob", &org.id, "Acme-Labs").await.unwrap();
    let renamed_org = renamed.organization.unwrap();
    assert_eq!(renamed_org.slug, "acme-labs", "stored lower case");
    assert_eq!(renamed_org.name, org.name, "only the slug was in the mask");
    assert_ne!(renamed_org.etag, org.etag);
    assert!(!renamed.revision.is_empty());
    assert_eq!(get_by_id(&app, "mia", &org.id).await.slug, "acme-labs");

    // Old links keep working: the old slug leads to the organization, which
    // answers with its new slug so the portal can redirect.
    for slug in ["acme", "acme-labs"] {
        let found = get_by_slug(&app, "mia", slug).await.unwrap();
        assert_eq!(found.id, org.id, "{slug}");
        assert_eq!(found.slug, "acme-labs", "{slug}");
        let answer = ask_slug(&mut app.authz_service(), "bob", slug, "").await;
        assert!(answer.allowed, "{slug}");
        assert_eq!(answer.organization_id, org.id, "{slug}");
        assert_eq!(answer.developer_id, org.developer_id, "{slug}");
    }
    // ...and no one else may take it meanwhile.
    let retained = check_slug(&app, "acme").await;
    assert!(!retained.available);
    assert_eq!(retained.reason, "SLUG_RETAINED");
    assert!(!retained.message.is_empty());
    assert_eq!(
        check_slug(&app, "acme-labs").await.reason,
        "ORGANIZATION_SLUG_ALREADY_TAKEN"
    );

    // Owners rename too, and may go back to their own retained old slug.
    let back = rename(&app, "alice", &org.id, "acme").await.unwrap();
    assert_eq!(back.organization.unwrap().slug, "acme");
    // The slug it left is now the retained one.
    assert_eq!(check_slug(&app, "acme-labs").await.reason, "SLUG_RETAINED");
    assert_eq!(
        get_by_slug(&app, "mia", "acme-labs").await.unwrap().id,
        org.id
    );
    // Renaming to the current slug is no change and no error.
    let same = rename(&app, "alice", &org.id, "acme").await.unwrap();
    assert_eq!(same.organization.unwrap().slug, "acme");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organization_slugs")
            .await,
        2,
        "the current slug and one retained old slug"
    );
}

async fn a_rename_to_a_wrong_slug_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let other = app.create_org("olga", "globex").await;
    // globex leaves "globex-old" behind, retained.
    rename(&app, "olga", &other.id, "globex-old").await.unwrap();
    rename(&app, "olga", &other.id, "globex").await.unwrap();
    app.add_member("alice", &org.id, "mia", pb::Role::Member)
        .await;
    let before = get_by_id(&app, "alice", &org.id).await;

    for bad in [
        "ac",
        &"a".repeat(49),
        "acme labs",
        "acme_labs",
        "ácme",
        "-acme",
        "acme-",
        "ac--me",
        "",
    ] {
        assert_invalid(
            rename(&app, "alice", &org.id, bad).await,
            "organization.slug",
        );
    }
    for reserved in ["admin", "api", "settings", "new"] {
        let refused = rename(&app, "alice", &org.id, reserved).await;
        assert_invalid(refused, "organization.slug");
    }
    // Taken by a current slug, and by a retained old slug.
    for taken in ["globex", "globex-old", "GLOBEX"] {
        assert_error(
            rename(&app, "alice", &org.id, taken).await,
            Code::AlreadyExists,
            "ORGANIZATION_SLUG_ALREADY_TAKEN",
        );
    }
    // A member has no right to rename; an outsider is not told it exists.
    assert_error(
        rename(&app, "mia", &org.id, "acme-two").await,
        Code::PermissionDenied,
        "INSUFFICIENT_PERMISSION",
    );
    let outsider = rename(&app, "olga", &org.id, "acme-two").await.unwrap_err();
    assert_eq!(outsider.code(), Code::NotFound);

    let after = get_by_id(&app, "alice", &org.id).await;
    assert_eq!(after, before, "nothing changed");
    assert!(check_slug(&app, "acme-two").await.available);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organization_slugs")
            .await,
        3,
        "acme, globex and globex-old, nothing more"
    );
}

async fn an_empty_mask_never_renames(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    for mask in [None, Some(vec!["*".to_owned()])] {
        let updated = app
            .orgs("alice")
            .update_organization(pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    id: org.id.clone(),
                    name: "Acme Inc".into(),
                    slug: "ignored-slug".into(),
                    ..Default::default()
                }),
                update_mask: mask.map(|paths| FieldMask { paths }),
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap();
        assert_eq!(updated.name, "Acme Inc");
        assert_eq!(updated.slug, "acme", "a rename must be named in the mask");
    }
    assert!(check_slug(&app, "ignored-slug").await.available);
}

async fn the_old_slug_is_released_after_its_retention(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |config| {
        config.old_slug_ttl = Duration::from_millis(1500);
        config.expiry_sweep_interval = Duration::from_millis(200);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    rename(&app, "alice", &org.id, "acme-labs").await.unwrap();
    let mut service = app.authz_service();
    // Cached while retained...
    assert_eq!(get_by_slug(&app, "alice", "acme").await.unwrap().id, org.id);
    assert_eq!(
        ask_slug(&mut service, "alice", "acme", "")
            .await
            .organization_id,
        org.id
    );
    assert_error(
        app.orgs("bob")
            .create_organization(pb::CreateOrganizationRequest {
                name: "Other".into(),
                slug: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::AlreadyExists,
        "ORGANIZATION_SLUG_ALREADY_TAKEN",
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    // ...and gone once the retention is over, cached or not.
    assert_eq!(
        get_by_slug(&app, "alice", "acme").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        ask_slug(&mut service, "alice", "acme", "").await,
        outsider()
    );
    assert!(check_slug(&app, "acme").await.available);
    // The sweep purges the row.
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM organization_slugs WHERE retained_until IS NOT NULL",
        0,
    )
    .await;
    // Another organization may take it now.
    let taker = app.create_org("bob", "acme").await;
    assert_eq!(get_by_slug(&app, "bob", "acme").await.unwrap().id, taker.id);
    assert_eq!(
        ask_slug(&mut service, "bob", "acme", "")
            .await
            .organization_id,
        taker.id
    );
    assert_eq!(
        ask_slug(&mut service, "alice", "acme", "").await,
        outsider()
    );
}

async fn deleting_an_organization_frees_its_old_slugs(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        // Deleted organizations are purged at once here.
        c.deleted_organization_retention = std::time::Duration::from_millis(1);
        c.expiry_sweep_interval = std::time::Duration::from_millis(50);
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    rename(&app, "alice", &org.id, "acme-labs").await.unwrap();
    let mut service = app.authz_service();
    assert!(ask_slug(&mut service, "alice", "acme", "").await.allowed);
    let deleted = app
        .orgs("alice")
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.wait_for_count(
        "SELECT COUNT(*) AS n FROM organizations WHERE deleted_at IS NOT NULL",
        0,
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organization_slugs")
            .await,
        0
    );
    for slug in ["acme", "acme-labs"] {
        assert!(check_slug(&app, slug).await.available, "{slug}");
        assert_eq!(
            ask_slug(&mut service, "alice", slug, &deleted.revision).await,
            outsider()
        );
    }
    let taker = app.create_org("bob", "acme").await;
    assert_eq!(
        ask_slug(&mut service, "bob", "acme", "")
            .await
            .organization_id,
        taker.id
    );
}

async fn a_rename_records_the_old_and_the_new_slug(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    rename(&app, "alice", &org.id, "acme-labs").await.unwrap();
    let mut follower = app.event_follower();
    // On PostgreSQL a fresh event may be held back a moment (the horizon).
    let mut updated = None;
    for _ in 0..250 {
        let events = follower
            .list_events(pb::ListEventsRequest {
                after_cursor: String::new(),
                page_size: 100,
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        updated = events
            .into_iter()
            .find(|e| e.r#type == "organization.updated" && e.organization_id == org.id);
        if updated.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let updated = updated.expect("organization.updated is recorded");
    assert_eq!(updated.actor_user_id, "alice");
    let changes: Vec<_> = updated
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(changes, vec![("slug", "acme", "acme-labs")]);
}

async fn a_check_by_slug_answers_members_with_the_ids_and_outsiders_with_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "mia", pb::Role::Member)
        .await;
    let mut service = app.authz_service();

    let owner = ask_slug(&mut service, "alice", "acme", "").await;
    assert!(owner.allowed);
    assert_eq!(owner.role(), pb::Role::Owner);
    assert_eq!(owner.organization_id, org.id);
    assert_eq!(owner.developer_id, org.developer_id);
    assert_eq!(owner.identity_state(), pb::DeveloperIdentityState::Local);

    // A member reads but may not create: refused, yet told where it is.
    let member = ask_slug(&mut service, "mia", "ACME", "").await;
    assert!(!member.allowed);
    assert_eq!(member.role(), pb::Role::Member);
    assert_eq!(member.organization_id, org.id);
    assert_eq!(member.developer_id, org.developer_id);

    // A non-member and an unknown slug get the very same answer.
    let stranger = ask_slug(&mut service, "stranger", "acme", "").await;
    let unknown = ask_slug(&mut service, "alice", "no-such-org", "").await;
    assert_eq!(stranger, outsider());
    assert_eq!(unknown, outsider());

    // A signed-in user may ask about themself by slug too.
    let own = ask(&mut app.authz("mia"), by_slug("", "acme"), "")
        .await
        .unwrap();
    assert_eq!(own.organization_id, org.id);
    assert_error(
        ask(&mut app.authz("mia"), by_slug("alice", "acme"), "").await,
        Code::PermissionDenied,
        "CAN_ONLY_CHECK_OWN_PERMISSIONS",
    );
}

async fn a_check_names_the_organization_by_exactly_one_of_id_and_slug(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let mut service = app.authz_service();
    let both = pb::PermissionCheck {
        organization_id: org.id.clone(),
        ..by_slug("alice", "acme")
    };
    assert_invalid(ask(&mut service, both, "").await, "check.organization_slug");
    let neither = pb::PermissionCheck {
        organization_slug: String::new(),
        ..by_slug("alice", "")
    };
    assert_invalid(
        ask(&mut service, neither, "").await,
        "check.organization_id",
    );
    for malformed in ["a", "acme labs", "-acme", "admin"] {
        assert_invalid(
            ask(&mut service, by_slug("alice", malformed), "").await,
            "check.organization_slug",
        );
    }
    let bad_revision = ask(&mut service, by_slug("alice", "acme"), "nope")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&bad_revision), vec!["at_least_revision"]);
}

async fn a_batch_mixes_checks_by_id_and_by_slug(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let acme = app.create_org("alice", "acme").await;
    let globex = app.create_org("bob", "globex").await;
    let mut service = app.authz_service();
    let by_id = |user: &str, org: &str| pb::PermissionCheck {
        user_id: user.to_owned(),
        organization_id: org.to_owned(),
        permission: PERMISSION.to_owned(),
        ..Default::default()
    };
    let results = service
        .batch_check_permissions(pb::BatchCheckPermissionsRequest {
            checks: vec![
                by_slug("alice", "acme"),
                by_id("alice", &acme.id),
                by_slug("alice", "globex"),
                by_slug("bob", "globex"),
                by_slug("bob", "nowhere"),
            ],
            at_least_revision: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let ids: Vec<(bool, &str)> = results
        .iter()
        .map(|r| (r.allowed, r.organization_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (true, acme.id.as_str()),
            (true, acme.id.as_str()),
            (false, ""),
            (true, globex.id.as_str()),
            (false, ""),
        ]
    );
    // Bad checks are named by their index; none is answered.
    let refused = service
        .batch_check_permissions(pb::BatchCheckPermissionsRequest {
            checks: vec![
                by_slug("alice", "acme"),
                pb::PermissionCheck {
                    organization_id: acme.id.clone(),
                    ..by_slug("alice", "acme")
                },
                by_slug("alice", "x"),
            ],
            at_least_revision: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(reason(&refused), "INVALID_ARGUMENT");
    assert_eq!(
        bad_fields(&refused),
        vec!["checks[1].organization_slug", "checks[2].organization_slug"]
    );
}

async fn another_replica_resolves_a_renamed_slug_with_the_renames_revision(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.replica().await;
    let org = a.create_org("alice", "acme").await;
    let mut through_b = b.authz_service();
    // B caches "acme-labs" as unknown, and "acme" as the organization.
    assert_eq!(
        ask_slug(&mut through_b, "alice", "acme-labs", "").await,
        outsider()
    );
    assert!(ask_slug(&mut through_b, "alice", "acme", "").await.allowed);
    let renamed = rename(&a, "alice", &org.id, "acme-labs").await.unwrap();
    // With the rename's revision, B answers by the new slug at once.
    let fresh = ask_slug(&mut through_b, "alice", "acme-labs", &renamed.revision).await;
    assert!(fresh.allowed);
    assert_eq!(fresh.organization_id, org.id);
    // The old slug still leads there.
    let old = ask_slug(&mut through_b, "alice", "acme", &renamed.revision).await;
    assert_eq!(old.organization_id, org.id);
    // Without a revision, B's follower catches up within the bound.
    let bound = b.config.authz_max_staleness + Duration::from_secs(1);
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if ask_slug(&mut through_b, "alice", "acme-labs", "")
            .await
            .allowed
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B did not see the new slug within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        get_by_slug(&b, "alice", "acme-labs").await.unwrap().id,
        org.id
    );
}

/// Who holds which slug, as the renamer has seen its renames return.
#[derive(Default)]
struct Timeline {
    /// slug → (organization, revision of the change that gave it the slug).
    claimed: HashMap<String, (String, String)>,
}

async fn lookups_on_two_replicas_during_renames_never_resolve_to_another_organization(
    backend: Backend,
) {
    const RENAMES: usize = 12;
    let a = TestApp::spawn(&backend).await;
    let b = a.replica().await;
    // carol belongs to both organizations, so a slug resolved to the wrong
    // one would show in the answer's organization id.
    let red = a.create_org("carol", "red-0").await;
    let blue = a.create_org("carol", "blue-0").await;
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    {
        let mut t = timeline.lock().unwrap();
        t.claimed
            .insert("red-0".into(), (red.id.clone(), String::new()));
        t.claimed
            .insert("blue-0".into(), (blue.id.clone(), String::new()));
    }
    let slugs: Vec<String> = (0..=RENAMES)
        .flat_map(|i| [format!("red-{i}"), format!("blue-{i}")])
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let mut lookups = Vec::new();
    for (n, app) in [&a, &b, &b, &a].into_iter().enumerate() {
        let mut client = app.authz_service();
        let slugs = slugs.clone();
        let timeline = timeline.clone();
        let done = done.clone();
        let (red_id, blue_id) = (red.id.clone(), blue.id.clone());
        lookups.push(tokio::spawn(async move {
            let mut resolved = 0;
            let mut round = 0;
            while !done.load(Ordering::SeqCst) {
                round += 1;
                for slug in &slugs {
                    let owner = if slug.starts_with("red") {
                        &red_id
                    } else {
                        &blue_id
                    };
                    // Every second round asks with the revision of the
                    // rename that claimed the slug, when it has returned.
                    let claimed = timeline.lock().unwrap().claimed.get(slug).cloned();
                    let revision = match &claimed {
                        Some((_, revision)) if round % 2 == n % 2 => revision.clone(),
                        _ => String::new(),
                    };
                    let answer = ask_slug(&mut client, "carol", slug, &revision).await;
                    if !answer.organization_id.is_empty() {
                        assert_eq!(
                            &answer.organization_id, owner,
                            "{slug} resolved to the wrong organization"
                        );
                        resolved += 1;
                    }
                    if claimed.is_some() && !revision.is_empty() {
                        assert_eq!(
                            &answer.organization_id, owner,
                            "{slug}, claimed at {revision}, does not resolve with that revision"
                        );
                    }
                }
            }
            resolved
        }));
    }
    // Renames alternate between the replicas.
    for i in 1..=RENAMES {
        for (org, prefix) in [(&red, "red"), (&blue, "blue")] {
            let through = if i % 2 == 0 { &a } else { &b };
            let slug = format!("{prefix}-{i}");
            let reply = rename(through, "carol", &org.id, &slug).await.unwrap();
            timeline
                .lock()
                .unwrap()
                .claimed
                .insert(slug, (org.id.clone(), reply.revision));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    done.store(true, Ordering::SeqCst);
    for lookup in lookups {
        assert!(lookup.await.unwrap() > 0, "lookups resolved something");
    }
    // Every slug either organization ever had still leads to it, on both.
    for app in [&a, &b] {
        let mut client = app.authz_service();
        for slug in &slugs {
            let owner = if slug.starts_with("red") {
                &red.id
            } else {
                &blue.id
            };
            let (_, revision) = timeline.lock().unwrap().claimed[slug].clone();
            let answer = ask_slug(&mut client, "carol", slug, &revision).await;
            assert_eq!(&answer.organization_id, owner, "{slug}");
        }
    }
}

async fn concurrent_renames_and_creates_to_one_slug_let_exactly_one_win(backend: Backend) {
    const ROUNDS: usize = 5;
    let a = TestApp::spawn(&backend).await;
    let b = a.replica().await;
    let first = a.create_org("alice", "first").await;
    let second = a.create_org("bob", "second").await;
    for round in 0..ROUNDS {
        let prize = format!("prize-{round}");
        let barrier = Arc::new(Barrier::new(3));
        let racers = [
            (&a, "alice", first.id.clone()),
            (&b, "bob", second.id.clone()),
        ]
        .map(|(app, user, org)| {
            let mut orgs = app.orgs(user);
            let barrier = barrier.clone();
            let prize = prize.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                orgs.update_organization(pb::UpdateOrganizationRequest {
                    organization: Some(pb::Organization {
                        id: org,
                        slug: prize,
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["slug".into()],
                    }),
                })
                .await
                .map(|_| ())
            })
        });
        let creator = {
            let mut orgs = b.orgs("carol");
            let barrier = barrier.clone();
            let prize = prize.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                orgs.create_organization(pb::CreateOrganizationRequest {
                    name: "Carol's".into(),
                    slug: prize,
                    ..Default::default()
                })
                .await
                .map(|reply| reply.into_inner().organization.unwrap().id)
            })
        };
        let [r1, r2] = racers;
        let outcomes = [
            r1.await.unwrap(),
            r2.await.unwrap(),
            creator.await.unwrap().map(|_| ()),
        ];
        let winners = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert_eq!(lost.code(), Code::AlreadyExists, "{lost:?}");
            assert_eq!(reason(lost), "ORGANIZATION_SLUG_ALREADY_TAKEN");
        }
        assert_eq!(
            a.count(&format!(
                "SELECT COUNT(*) AS n FROM organizations WHERE slug = '{prize}'"
            ))
            .await,
            1
        );
        assert_eq!(
            a.count(&format!(
                "SELECT COUNT(*) AS n FROM organization_slugs WHERE slug = '{prize}'"
            ))
            .await,
            1
        );
        // Each organization has exactly one current slug, its own.
        assert_eq!(
            a.count(
                "SELECT COUNT(*) AS n FROM organizations o JOIN organization_slugs s \
                 ON s.organization_id = o.id AND s.retained_until IS NULL AND s.slug = o.slug"
            )
            .await,
            a.count("SELECT COUNT(*) AS n FROM organizations").await
        );
    }
}

/// Organizations that existed before `m20261202_000001_old_slugs` get their
/// current slug's claim from it, so they keep resolving by slug and their
/// slugs stay taken. (SQLite only: the PostgreSQL test databases are copies
/// of a fully migrated template; the backfill is one plain `INSERT ...
/// SELECT` on both.)
#[tokio::test]
async fn the_migration_gives_existing_organizations_their_slug_claims() {
    use migration::MigratorTrait;
    use roster::store::entity::{organization_slugs, organizations};
    use sea_orm::{ActiveModelTrait, Database, EntityTrait, Set};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let db = Database::connect(&url).await.unwrap();
    // Up to the migration just before old slugs (later ones follow it).
    let before = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261202_000001_old_slugs")
        .unwrap();
    migration::Migrator::up(&db, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    let id = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    organizations::ActiveModel {
        id: Set(id),
        developer_id: Set(uuid::Uuid::now_v7().to_string()),
        name: Set("Old".into()),
        slug: Set("old-timer".into()),
        logo_url: Set(String::new()),
        version: Set(1),
        created_by: Set("alice".into()),
        create_request_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        identity_state: Set("local".into()),
        identity_attempts: Set(0),
        identity_last_error: Set(String::new()),
        // Columns of later migrations stay out of the insert.
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    migration::Migrator::up(&db, None).await.unwrap();
    let claims = organization_slugs::Entity::find().all(&db).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].slug, "old-timer");
    assert_eq!(claims[0].organization_id, id);
    assert_eq!(claims[0].retained_until, None);
}
