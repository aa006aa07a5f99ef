//! `roster import better-auth` against real Better Auth data: the fixture
//! in tests/better-auth drives Better Auth's own API (on SQLite or on
//! PostgreSQL, like roster's database in the same test), then the real
//! binary imports it into a running roster, and roster's RPCs must show
//! every field Better Auth holds.

use std::{collections::HashMap, process::Command, time::Duration};

use chrono::{DateTime, Utc};
use roster::{auth::token::TokenRequest, pb};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, TestDb, test_node},
};

backend_tests!(needs_node;
    imports_every_field_of_real_better_auth_data,
    imports_plural_tables_and_keeps_uuid_ids,
    problems_are_reported_and_refused_until_a_flag_says_how,
    a_failure_mid_import_leaves_nothing,
    two_imports_at_once_import_once,
    imported_identities_are_not_created_again_and_go_with_their_organization,
);

/// A Better Auth database the fixture made, with its JSON summary.
struct BetterAuth {
    url: String,
    summary: Value,
    _db: Option<TestDb>,
    _dir: Option<tempfile::TempDir>,
}

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/better-auth/seed.mjs");

/// Runs the fixture with `flags` on a database of the test's own, on the
/// same kind of database as roster's.
async fn seed(backend: &Backend, flags: &[&str]) -> BetterAuth {
    let (target, url, db, dir) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let path = dir.path().join("better-auth.db").display().to_string();
            let url = format!("sqlite://{path}");
            (vec!["--sqlite".to_owned(), path], url, None, Some(dir))
        }
        Backend::Postgres(base) => {
            let (url, db) = TestDb::create_empty_postgres(base).await;
            (
                vec!["--postgres".to_owned(), url.clone()],
                url,
                Some(db),
                None,
            )
        }
    };
    let output = tokio::task::block_in_place(|| {
        Command::new(test_node())
            .arg(SEED)
            .args(&target)
            .args(flags)
            .output()
            .expect("run node")
    });
    assert!(
        output.status.success(),
        "the Better Auth fixture failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = serde_json::from_slice(&output.stdout).expect("the fixture's JSON summary");
    BetterAuth {
        url,
        summary,
        _db: db,
        _dir: dir,
    }
}

/// Runs `roster import better-auth --from <from> --database-url <app's>`
/// with `args`: its exit status and what it printed.
fn import(app: &TestApp, from: &str, args: &[&str]) -> (i32, String) {
    let mut command = import_command(app, from, args);
    let output = tokio::task::block_in_place(|| command.output().expect("run roster import"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn import_command(app: &TestApp, from: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ROSTER_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .args(["import", "better-auth", "--from", from, "--database-url"])
        .arg(&app.config.database_url)
        .args(args);
    command
}

async fn execute(app: &TestApp, sql: &str) {
    let db = Database::connect(&app.config.database_url)
        .await
        .expect("connect to roster's database");
    db.execute_unprepared(sql).await.expect(sql);
    db.close().await.expect("close");
}

fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

fn time(value: &Value, key: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s(value, key))
        .unwrap_or_else(|_| panic!("{key} of {value} is a time"))
        .with_timezone(&Utc)
}

fn from_pb(t: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.expect("a timestamp");
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap()).unwrap()
}

/// Better Auth's role string as roster imports it: the highest.
fn role(value: &str) -> pb::Role {
    let roles: Vec<&str> = value.split(',').collect();
    if roles.contains(&"owner") {
        pb::Role::Owner
    } else if roles.contains(&"admin") {
        pb::Role::Admin
    } else {
        pb::Role::Member
    }
}

/// What the fixture made, indexed.
struct Expected<'a> {
    users: Vec<&'a Value>,
    orgs: HashMap<&'a str, &'a Value>,
    members: Vec<&'a Value>,
    invitations: Vec<&'a Value>,
    active: HashMap<&'a str, &'a str>,
}

fn expected(summary: &Value) -> Expected<'_> {
    let list = |key: &str| {
        summary[key]
            .as_array()
            .expect(key)
            .iter()
            .collect::<Vec<_>>()
    };
    Expected {
        users: list("users"),
        orgs: list("organizations")
            .into_iter()
            .map(|o| (s(o, "id"), o))
            .collect(),
        members: list("members"),
        invitations: list("invitations"),
        active: list("sessions")
            .into_iter()
            .filter_map(|x| Some((s(x, "userId"), x["activeOrganizationId"].as_str()?)))
            .collect(),
    }
}

fn token_of(app: &TestApp, user: &Value) -> String {
    app.token_with(TokenRequest {
        sub: s(user, "id").to_owned(),
        email: Some(s(user, "email").to_owned()),
        name: Some(s(user, "name").to_owned()),
        email_verified: true,
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    })
}

/// Every field Better Auth holds, as roster's RPCs show it; every member's
/// permissions as their Better Auth role gave them.
async fn compare(app: &TestApp, summary: &Value, kept_ids: bool) {
    let e = expected(summary);
    let now = Utc::now();
    let mut roster_ids: HashMap<String, String> = HashMap::new();
    for user in &e.users {
        let token = token_of(app, user);
        let user_id = s(user, "id");
        let listed = app
            .orgs_with_token(Some(&token))
            .list_organizations(pb::ListOrganizationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .organizations;
        let mine: Vec<&&Value> = e
            .members
            .iter()
            .filter(|m| s(m, "userId") == user_id)
            .collect();
        assert_eq!(listed.len(), mine.len(), "organizations of {user_id}");
        for member in mine {
            let source = e.orgs[s(member, "organizationId")];
            let found = listed
                .iter()
                .find(|o| o.organization.as_ref().unwrap().developer_id == s(source, "id"))
                .unwrap_or_else(|| panic!("{user_id} is a member of {}", s(source, "slug")));
            let org = found.organization.as_ref().unwrap();
            assert_eq!(org.slug, s(source, "slug"));
            assert_eq!(org.name, s(source, "name"));
            assert_eq!(org.logo_url, s(source, "logo"));
            assert_eq!(from_pb(org.create_time), time(source, "createdAt"));
            assert_eq!(
                org.identity.as_ref().unwrap().state(),
                pb::DeveloperIdentityState::Active
            );
            if kept_ids {
                assert_eq!(org.id, s(source, "id"));
            }
            assert_eq!(found.role(), role(s(member, "role")), "{member}");
            assert_eq!(from_pb(found.join_time), time(member, "createdAt"));
            roster_ids.insert(s(source, "id").to_owned(), org.id.clone());
        }
        // The active organization of their session.
        let active = app
            .orgs_with_token(Some(&token))
            .get_active_organization(pb::GetActiveOrganizationRequest::default())
            .await
            .unwrap()
            .into_inner()
            .organization
            .map(|o| o.developer_id);
        assert_eq!(
            active.as_deref(),
            e.active.get(user_id).copied(),
            "active organization of {user_id}"
        );
    }

    let users: HashMap<&str, &&Value> = e.users.iter().map(|u| (s(u, "id"), u)).collect();
    let authz = app.authz_service();
    for source_id in e.orgs.keys() {
        let org_id = &roster_ids[*source_id];
        let owner = e
            .members
            .iter()
            .find(|m| s(m, "organizationId") == *source_id && s(m, "role") == "owner")
            .expect("an owner");
        let owner_token = token_of(app, users[s(owner, "userId")]);
        let members = app.members_as(&owner_token, org_id).await;
        let theirs: Vec<&&Value> = e
            .members
            .iter()
            .filter(|m| s(m, "organizationId") == *source_id)
            .collect();
        assert_eq!(members.len(), theirs.len(), "members of {source_id}");
        for member in theirs {
            let user = users[s(member, "userId")];
            let shown = members
                .iter()
                .find(|m| m.user_id == s(member, "userId"))
                .unwrap();
            assert_eq!(shown.email, s(user, "email"));
            assert_eq!(shown.display_name, s(user, "name"));
            assert_eq!(shown.role(), role(s(member, "role")));
            assert_eq!(from_pb(shown.join_time), time(member, "createdAt"));
            // Permissions as Better Auth's role gave them: members read,
            // admins and owners write, only owners delete.
            let role = role(s(member, "role"));
            for (permission, allowed) in [
                ("applications.read", true),
                ("applications.create", role != pb::Role::Member),
                ("members.manage", role != pb::Role::Member),
                ("organization.delete", role == pb::Role::Owner),
            ] {
                let result = authz
                    .clone()
                    .check_permission(pb::CheckPermissionRequest {
                        check: Some(pb::PermissionCheck {
                            user_id: s(member, "userId").to_owned(),
                            organization_id: org_id.clone(),
                            permission: permission.to_owned(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .result
                    .unwrap();
                assert_eq!(result.allowed, allowed, "{permission} for {member}");
                assert_eq!(result.role(), role);
            }
        }

        let invitations = app.invitations_as(&owner_token, org_id).await;
        let theirs: Vec<&&Value> = e
            .invitations
            .iter()
            .filter(|i| s(i, "organizationId") == *source_id)
            .collect();
        assert_eq!(
            invitations.len(),
            theirs.len(),
            "invitations of {source_id}"
        );
        for invitation in theirs {
            let shown = invitations
                .iter()
                .find(|i| i.email == s(invitation, "email"))
                .unwrap();
            if kept_ids {
                assert_eq!(shown.id, s(invitation, "id"));
                assert_eq!(shown.imported_id, "");
            } else {
                // Better Auth's own id still names it: its email's link.
                assert_ne!(shown.id, s(invitation, "id"));
                assert_eq!(shown.imported_id, s(invitation, "id"));
                let by_old_id = app
                    .members_with_token(Some(&owner_token))
                    .get_invitation(pb::GetInvitationRequest {
                        id: s(invitation, "id").to_owned(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .invitation
                    .unwrap();
                assert_eq!(&by_old_id, shown);
            }
            let expires = time(invitation, "expiresAt");
            let state = match s(invitation, "status") {
                "pending" if expires <= now => pb::InvitationState::Expired,
                "pending" => pb::InvitationState::Pending,
                "accepted" => pb::InvitationState::Accepted,
                "rejected" => pb::InvitationState::Rejected,
                "canceled" => pb::InvitationState::Cancelled,
                other => panic!("status {other}"),
            };
            assert_eq!(shown.state(), state, "{invitation}");
            assert_eq!(shown.role(), role(s(invitation, "role")));
            assert_eq!(shown.inviter_user_id, s(invitation, "inviterId"));
            assert_eq!(from_pb(shown.expire_time), expires);
        }
    }

    // Known to the Provider Portal already: active, with nothing to deliver;
    // one event each, by the import.
    let orgs = i64::try_from(e.orgs.len()).unwrap();
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organizations WHERE identity_state = 'active'")
            .await,
        orgs
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM developer_identities")
            .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM events \
             WHERE event_type = 'organization.imported' AND actor_id = 'import:better-auth'"
        )
        .await,
        orgs
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM events").await, orgs);
}

/// Row counts of roster's tables, to see that nothing changed.
async fn counts(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "organizations",
        "memberships",
        "invitations",
        "users",
        "events",
        "developer_identities",
    ] {
        counts.push(
            app.count(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .await,
        );
    }
    counts
}

async fn import_and_compare(backend: Backend, flags: &[&str], kept_ids: bool) {
    let ba = seed(&backend, flags).await;
    let app = TestApp::spawn(&backend).await;

    let (code, out) = import(&app, &ba.url, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dry run: nothing written"), "{out}");
    assert!(out.contains("[several_roles]"), "{out}");
    assert_eq!(counts(&app).await, [0; 6], "a dry run writes nothing");

    let (code, out) = import(&app, &ba.url, &["--apply"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("imported: 2 organizations, 9 members, 6 invitations, 6 new people, 4 active organizations"),
        "{out}"
    );
    compare(&app, &ba.summary, kept_ids).await;

    // Keyed on Better Auth's ids: a second run writes nothing, and says so.
    let before = counts(&app).await;
    let (code, out) = import(&app, &ba.url, &["--apply"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("already imported (left as they are): 2"),
        "{out}"
    );
    assert!(out.contains("nothing to import"), "{out}");
    assert_eq!(counts(&app).await, before);
    compare(&app, &ba.summary, kept_ids).await;

    accept_by_the_emailed_id(&app, &ba.summary).await;
}

/// The recipient of a pending invitation follows the link Better Auth
/// emailed (its id, whatever roster's is) and joins.
async fn accept_by_the_emailed_id(app: &TestApp, summary: &Value) {
    let e = expected(summary);
    let now = Utc::now();
    let invitation = e
        .invitations
        .iter()
        .find(|i| s(i, "status") == "pending" && time(i, "expiresAt") > now)
        .expect("the fixture has a pending invitation");
    let recipient = app.token_with(TokenRequest {
        sub: "recipient-after-the-switch".to_owned(),
        email: Some(s(invitation, "email").to_owned()),
        email_verified: true,
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    });
    let accepted = app
        .members_with_token(Some(&recipient))
        .accept_invitation(pb::AcceptInvitationRequest {
            id: s(invitation, "id").to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let joined = accepted.invitation.unwrap();
    assert_eq!(joined.state(), pb::InvitationState::Accepted);
    let member = accepted.member.unwrap();
    assert_eq!(member.user_id, "recipient-after-the-switch");
    assert_eq!(member.organization_id, joined.organization_id);
    assert_eq!(member.role(), role(s(invitation, "role")));
}

async fn imports_every_field_of_real_better_auth_data(backend: Backend) {
    import_and_compare(backend, &[], false).await;
}

async fn imports_plural_tables_and_keeps_uuid_ids(backend: Backend) {
    import_and_compare(backend, &["--plural", "--uuid-ids"], true).await;
}

async fn problems_are_reported_and_refused_until_a_flag_says_how(backend: Backend) {
    let ba = seed(&backend, &["--problems"]).await;
    let app = TestApp::spawn(&backend).await;
    // roster already has an organization with Globex's slug.
    app.create_org("someone", "globex").await;
    // And one that was called "shouty" until a rename, and retains it.
    let quiet = app.create_org("someone", "shouty").await;
    app.orgs("someone")
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                id: quiet.id.clone(),
                slug: "quiet".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["slug".into()],
            }),
        })
        .await
        .unwrap();
    let before = counts(&app).await;

    for args in [&[][..], &["--apply"][..]] {
        let (code, out) = import(&app, &ba.url, args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains("refused:"), "{out}");
        for expected in [
            "problem [invalid_slug] organization",
            "\"Bad_Slug!\"",
            "problem [unknown_role] member viewer-in-bad-slug",
            "problem [reserved_slug] organization",
            "problem [invalid_name] organization",
            "problem [slug_taken] organization",
            "which retains it after a rename",
            "problem [no_owner] organization",
            "problem [duplicate_membership] member duplicate-member-row",
            "problem [member_without_user] member ghost-member-row",
            "problem [owner_invitation] invitation",
            "note [several_roles] member",
            "note [slug_normalized] organization",
            "\"SHOUTY\" is imported as \"shouty\"",
            "note [invitation_id_dropped] invitation link/with slash",
        ] {
            assert!(out.contains(expected), "{expected} in {out}");
        }
        assert_eq!(counts(&app).await, before, "refused: nothing written");
    }

    // Skipping what is invalid imports the rest; the organization without
    // an owner is skipped too, until promoting its oldest admin is allowed.
    let (code, out) = import(&app, &ba.url, &["--apply", "--skip-invalid"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("skipped [no_owner]"), "{out}");
    assert!(out.contains("imported: 2 organizations"), "{out}");
    let e = expected(&ba.summary);
    let people = &ba.summary["people"];
    let user = |key: &str| {
        *e.users
            .iter()
            .find(|u| s(u, "id") == s(people, key))
            .unwrap()
    };
    let slugs_of = |token: String| {
        let app = &app;
        async move {
            app.orgs_with_token(Some(&token))
                .list_organizations(pb::ListOrganizationsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .organizations
                .into_iter()
                .map(|o| (o.role(), o.organization.unwrap().slug))
                .map(|(role, slug)| (slug, role))
                .collect::<HashMap<_, _>>()
        }
    };
    // Messy without its broken rows: Heidi owns it, Carol keeps her oldest
    // membership (member), the row without a user is gone. Shouty is
    // skipped: roster's Quiet retains that slug.
    assert_eq!(
        slugs_of(token_of(&app, user("heidi"))).await,
        HashMap::from([("messy".to_owned(), pb::Role::Owner)])
    );
    assert_eq!(
        slugs_of(token_of(&app, user("carol"))).await,
        HashMap::from([
            ("acme".to_owned(), pb::Role::Member),
            ("messy".to_owned(), pb::Role::Member)
        ])
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM memberships WHERE user_id = 'ghost-user'")
            .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM invitations WHERE email = 'would-be-owner@example.com'"
        )
        .await,
        0
    );
    // Imported under roster's id alone; its Better Auth id names nothing.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM invitations \
             WHERE email = 'linkless@example.com' AND source_id IS NULL"
        )
        .await,
        1
    );

    let (code, out) = import(
        &app,
        &ba.url,
        &["--apply", "--skip-invalid", "--promote-oldest-admin"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("promoted [no_owner]"), "{out}");
    assert!(
        out.contains("already imported (left as they are): 2"),
        "{out}"
    );
    assert!(out.contains("imported: 1 organizations"), "{out}");
    // Alice was the oldest of Ownerless's two admins.
    let alice = slugs_of(token_of(&app, user("alice"))).await;
    assert_eq!(alice.get("ownerless"), Some(&pb::Role::Owner), "{alice:?}");
    let bob = slugs_of(token_of(&app, user("bob"))).await;
    assert_eq!(bob.get("ownerless"), Some(&pb::Role::Admin), "{bob:?}");
}

async fn a_failure_mid_import_leaves_nothing(backend: Backend) {
    let ba = seed(&backend, &[]).await;
    let app = TestApp::spawn(&backend).await;
    // The database refuses the very last row the import writes (Globex's
    // expired invitation, after all of Acme): the rest must roll back.
    match backend {
        Backend::Sqlite => {
            execute(
                &app,
                "CREATE TRIGGER fail_import BEFORE INSERT ON invitations \
                 WHEN NEW.email = 'too-late@example.com' \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
            .await;
        }
        Backend::Postgres(_) => {
            execute(
                &app,
                "CREATE FUNCTION fail_import() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.email = 'too-late@example.com' THEN \
                 RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
            )
            .await;
            execute(
                &app,
                "CREATE TRIGGER fail_import BEFORE INSERT ON invitations \
                 FOR EACH ROW EXECUTE FUNCTION fail_import()",
            )
            .await;
        }
    }
    let (code, out) = import(&app, &ba.url, &["--apply"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("injected failure"), "{out}");
    assert_eq!(counts(&app).await, [0; 6], "nothing half-imported");

    let drop = match backend {
        Backend::Sqlite => "DROP TRIGGER fail_import",
        Backend::Postgres(_) => "DROP TRIGGER fail_import ON invitations",
    };
    execute(&app, drop).await;
    let (code, out) = import(&app, &ba.url, &["--apply"]);
    assert_eq!(code, 0, "{out}");
    compare(&app, &ba.summary, false).await;
}

async fn two_imports_at_once_import_once(backend: Backend) {
    let ba = seed(&backend, &[]).await;
    let app = TestApp::spawn(&backend).await;
    // A transaction of the test's own holds up writes to organizations, so
    // that both imports are under way at once before either can finish.
    let blocker_db = Database::connect(&app.config.database_url)
        .await
        .expect("connect to roster's database");
    let blocker = sea_orm::TransactionTrait::begin(&blocker_db).await.unwrap();
    let hold = match backend {
        Backend::Sqlite => "DELETE FROM organizations WHERE 1 = 0",
        Backend::Postgres(_) => "LOCK TABLE organizations IN SHARE ROW EXCLUSIVE MODE",
    };
    blocker.execute_unprepared(hold).await.unwrap();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            import_command(&app, &ba.url, &["--apply"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start roster import")
        })
        .collect();
    match backend {
        // Both wait: one for the table (having planned), the other for
        // its turn (before planning), or, were imports not to take turns,
        // both for the table with the same plan.
        Backend::Postgres(_) => {
            app.wait_for_count(
                "SELECT COUNT(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                2,
            )
            .await
        }
        // SQLite's one writer: both wait to begin.
        Backend::Sqlite => tokio::time::sleep(Duration::from_secs(1)).await,
    }
    blocker.commit().await.unwrap();
    blocker_db.close().await.unwrap();
    let mut outputs: Vec<String> = Vec::new();
    for run in runs {
        let output = tokio::task::block_in_place(|| run.wait_with_output().unwrap());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(0), "{text}");
        outputs.push(text);
    }
    let imported = outputs
        .iter()
        .filter(|o| o.contains("imported: 2 organizations"))
        .count();
    let nothing = outputs
        .iter()
        .filter(|o| o.contains("nothing to import"))
        .count();
    assert_eq!((imported, nothing), (1, 1), "{outputs:#?}");
    compare(&app, &ba.summary, false).await;
}

/// What cannot be read as a Better Auth database is exit status 2, with
/// one line that says why, and nothing is written.
#[test]
fn unusable_sources_are_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_better_auth = dir.path().join("other.db");
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let url = format!("sqlite://{}?mode=rwc", not_better_auth.display());
            let db = Database::connect(&url).await.unwrap();
            db.execute_unprepared("CREATE TABLE user (id TEXT PRIMARY KEY)")
                .await
                .unwrap();
            db.close().await.unwrap();
        });
    }
    let target = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("roster.db").display()
    );
    for (from, says) in [
        (
            "mysql://localhost/portal",
            "must be a sqlite:// or postgres:// URL",
        ),
        ("sqlite:///nonexistent/better-auth.db", "cannot connect"),
        (
            &format!("sqlite://{}", not_better_auth.display()),
            "no \"organization\" (or \"organizations\") table",
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
        for (key, _) in std::env::vars() {
            if key.starts_with("ROSTER_") || key == "DATABASE_URL" {
                command.env_remove(key);
            }
        }
        let output = command
            .args(["import", "better-auth", "--apply", "--from", from])
            .args(["--database-url", &target])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{from}: {stderr}");
        assert!(
            stderr.starts_with("roster import better-auth: "),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{from}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    assert!(
        !dir.path().join("roster.db").exists(),
        "roster's database is not even opened"
    );
}

async fn imported_identities_are_not_created_again_and_go_with_their_organization(
    backend: Backend,
) {
    let ba = seed(&backend, &[]).await;
    let e = expected(&ba.summary);
    // The portal made each organization's developer already.
    let fake = crate::fake_portal::FakePortal::start().await;
    for id in e.orgs.keys() {
        fake.add_developer(id);
    }
    let app = TestApp::spawn_with(&backend, |c| crate::provider_portal::use_portal(c, &fake)).await;
    let (code, out) = import(&app, &ba.url, &["--apply"]);
    assert_eq!(code, 0, "{out}");
    // Nothing to deliver: no create reaches the portal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.creates().is_empty(), "{:?}", fake.creates());

    // Deleting an imported organization deletes its developer.
    let acme = *e.orgs.values().find(|o| s(o, "slug") == "acme").unwrap();
    let owner = e
        .members
        .iter()
        .find(|m| s(m, "organizationId") == s(acme, "id") && s(m, "role") == "owner")
        .unwrap();
    let owner = *e
        .users
        .iter()
        .find(|u| s(u, "id") == s(owner, "userId"))
        .unwrap();
    let token = token_of(&app, owner);
    let listed = app
        .orgs_with_token(Some(&token))
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .organizations;
    let org = listed
        .iter()
        .map(|o| o.organization.as_ref().unwrap())
        .find(|o| o.developer_id == s(acme, "id"))
        .unwrap();
    app.orgs_with_token(Some(&token))
        .delete_organization(pb::DeleteOrganizationRequest {
            id: org.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let globex = e.orgs.keys().find(|id| **id != s(acme, "id")).unwrap();
    for _ in 0..200 {
        if fake.developer_ids() == [globex.to_string()] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the portal still has {:?}", fake.developer_ids());
}
