//! Property tests for every parser that takes outside input, by machine
//! rather than by example: none panics, what is accepted round-trips (its
//! stored form parses to itself), what is refused is refused naming its
//! field, and the real server answers the same input the same way on
//! SQLite and on PostgreSQL, never with INTERNAL.

use std::time::Duration;

use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, TestRunner},
};
use roster::{
    auth::token::TokenRequest,
    domain::{
        event::EventCursor,
        ids::{DeveloperId, OrganizationId, UserId, parse_request_id},
        input::{Email, OrganizationName, SearchPrefix, Slug, SlugProblem},
        logo::NewLogo,
        page::PageRequest,
    },
    pb::{self, get_organization_request::Key},
};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, bad_fields, reason};

/// Text a client might send: anything at all, text close to each rule
/// (where the edge cases live), and those with a control character or
/// padding added.
fn text(near: &'static str) -> impl Strategy<Value = String> {
    let regex = |pattern: &str| proptest::string::string_regex(pattern).expect("a valid regex");
    prop_oneof![
        3 => regex(near),
        2 => any::<String>(),
        1 => (regex(near), regex("[\\x00-\\x1f\\x7f\\u{85}]"), any::<prop::sample::Index>())
            .prop_map(|(s, c, at)| insert(&s, &c, at)),
        1 => (regex(near), regex("[ \\t\\u{a0}\\u{3000}]{1,3}"))
            .prop_map(|(s, pad)| format!("{pad}{s}{pad}")),
    ]
}

/// `s` with `piece` inserted at a character boundary chosen by `at`.
fn insert(s: &str, piece: &str, at: prop::sample::Index) -> String {
    let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let i = boundaries[at.index(boundaries.len())];
    format!("{}{piece}{}", &s[..i], &s[i..])
}

const NAME: &str = "\\PC{0,105}";
const SLUG: &str = "[a-zA-Z0-9-]{0,50}";
const EMAIL: &str = "[a-zA-Z0-9._%+\"'()é-]{0,20}@[a-zA-Z0-9.é-]{0,20}(\\.[a-z]{2,4})?";
const LOGO: &str =
    "(https?|HTTPS|data|ftp)://[a-zA-Z0-9.:@%_-]{0,20}(/[a-zA-Z0-9?#=&%<>\"' .~-]{0,30})?";
const CURSOR: &str = "[0-9a-fA-F+-]{30,34}";
const UUID_LIKE: &str = "[{]?[0-9a-fA-F-]{30,40}[}]?";
const TOKEN: &str = "[A-Za-z0-9_=-]{0,80}";

/// Every refusal names exactly the field it was given.
fn names(violation: &roster::domain::FieldViolation, field: &str) -> bool {
    violation.field == field && !violation.description.is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn organization_names(value in text(NAME)) {
        match OrganizationName::parse("name", &value) {
            Ok(name) => {
                let stored = name.as_str();
                prop_assert_eq!(stored, value.trim());
                prop_assert!((1..=OrganizationName::MAX_CHARS).contains(&stored.chars().count()));
                prop_assert!(!stored.chars().any(char::is_control));
                prop_assert_eq!(OrganizationName::parse("name", stored), Ok(name.clone()));
            }
            Err(violation) => prop_assert!(names(&violation, "name"), "{violation:?}"),
        }
    }

    #[test]
    fn slugs(value in text(SLUG)) {
        match Slug::check(&value) {
            Ok(slug) => {
                let stored = slug.as_str();
                prop_assert_eq!(stored, Slug::normalize(&value));
                prop_assert!((Slug::MIN_LEN..=Slug::MAX_LEN).contains(&stored.len()));
                prop_assert!(stored.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert!(!stored.starts_with('-') && !stored.ends_with('-') && !stored.contains("--"));
                prop_assert_eq!(Slug::parse("slug", stored), Ok(slug.clone()));
                prop_assert_eq!(Slug::lookup("slug", &value), Ok(stored.to_owned()));
            }
            Err(SlugProblem::Reserved) => {
                prop_assert!(names(&Slug::parse("slug", &value).unwrap_err(), "slug"));
                // Looked up (and not found), not refused.
                prop_assert_eq!(Slug::lookup("slug", &value), Ok(Slug::normalize(&value)));
            }
            Err(SlugProblem::Invalid(_)) => {
                prop_assert!(names(&Slug::parse("slug", &value).unwrap_err(), "slug"));
                prop_assert!(names(&Slug::lookup("slug", &value).unwrap_err(), "slug"));
            }
        }
    }

    #[test]
    fn emails(value in text(EMAIL)) {
        match Email::parse("email", &value) {
            Ok(email) => {
                let stored = email.as_str();
                prop_assert_eq!(stored, value.trim());
                prop_assert!(stored.len() <= Email::MAX_LEN);
                prop_assert!(!stored.starts_with('"'));
                prop_assert!(!stored.chars().any(char::is_control));
                prop_assert_eq!(email.folded(), Email::fold(stored));
                prop_assert_eq!(Email::parse("email", stored), Ok(email.clone()));
                // What the token side folds is what the invitation side folds.
                prop_assert_eq!(Email::fold(&value), email.folded());
            }
            Err(violation) => prop_assert!(names(&violation, "email"), "{violation:?}"),
        }
    }

    #[test]
    fn member_searches(value in text(NAME)) {
        match SearchPrefix::parse("search", &value) {
            Ok(None) => prop_assert!(value.trim().is_empty()),
            Ok(Some(prefix)) => {
                prop_assert_eq!(prefix.as_str(), value.trim().to_lowercase());
                prop_assert!(!prefix.as_str().chars().any(char::is_control));
            }
            Err(violation) => prop_assert!(names(&violation, "search"), "{violation:?}"),
        }
    }

    #[test]
    fn logo_urls(value in text(LOGO)) {
        match NewLogo::parse("logo_url", &value) {
            Ok(NewLogo::None) => prop_assert!(value.trim().is_empty()),
            Ok(NewLogo::Url(url)) => {
                prop_assert!(url.starts_with("https://"), "{url}");
                prop_assert!(url.chars().count() <= NewLogo::MAX_URL_LEN);
                prop_assert!(!url.contains(['"', '\'', '<', '>', ' ']), "{url}");
                // The stored form is a fixed point: parsing it again changes nothing.
                match NewLogo::parse("logo_url", &url) {
                    Ok(NewLogo::Url(again)) => prop_assert_eq!(again, url),
                    other => prop_assert!(false, "{url} parsed again as {other:?}"),
                }
            }
            Ok(NewLogo::Image(_)) => {}
            Err(violation) => prop_assert!(names(&violation, "logo_url"), "{violation:?}"),
        }
    }

    #[test]
    fn uuids(value in prop_oneof![text(UUID_LIKE), any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string())]) {
        match OrganizationId::parse("organization_id", &value) {
            Ok(id) => {
                prop_assert_eq!(OrganizationId::parse("organization_id", &id.to_string()), Ok(id));
                prop_assert_eq!(parse_request_id("request_id", &value), Ok(Some(id.0)));
            }
            Err(violation) => {
                prop_assert!(names(&violation, "organization_id"), "{violation:?}");
                match parse_request_id("request_id", &value) {
                    Ok(None) => prop_assert!(value.trim().is_empty()),
                    Ok(Some(id)) => prop_assert!(false, "{value:?} parsed as {id}"),
                    Err(violation) => prop_assert!(names(&violation, "request_id")),
                }
            }
        }
    }

    #[test]
    fn developer_and_user_ids(value in text("[a-zA-Z0-9._-]{0,260}")) {
        match DeveloperId::parse("developer_id", &value) {
            Ok(id) => {
                prop_assert_eq!(id.as_str(), value.as_str());
                prop_assert_eq!(DeveloperId::parse("developer_id", id.as_str()), Ok(id.clone()));
            }
            Err(violation) => prop_assert!(names(&violation, "developer_id"), "{violation:?}"),
        }
        match UserId::parse("user_id", &value) {
            Ok(id) => {
                prop_assert_eq!(id.as_str(), value.as_str());
                prop_assert_eq!(UserId::parse("user_id", id.as_str()), Ok(id.clone()));
            }
            Err(violation) => prop_assert!(names(&violation, "user_id"), "{violation:?}"),
        }
    }

    #[test]
    fn cursors_and_revisions(value in prop_oneof![
        text(CURSOR),
        (any::<i64>(), any::<i64>()).prop_map(|(txid, seq)| format!("{txid:016x}{seq:016x}")),
        // Signs where a digit belongs: i64's own parser takes them.
        ("[+-]", "[0-9a-f]{15}", "[+-]?", "[0-9a-f]{15,16}")
            .prop_map(|(a, b, c, d)| format!("{a}{b}{c}{d}")),
    ]) {
        match EventCursor::parse("after_cursor", &value) {
            Ok(cursor) if value.trim().is_empty() => prop_assert_eq!(cursor, EventCursor::START),
            Ok(cursor) => {
                // A cursor is what roster issued: parsing its text gives it back.
                prop_assert!(cursor.txid >= 0 && cursor.seq >= 0, "{value:?} gave {cursor:?}");
                prop_assert_eq!(EventCursor::parse("after_cursor", &cursor.encode()), Ok(cursor));
                prop_assert_eq!(cursor.encode(), value.trim().to_lowercase());
            }
            Err(violation) => prop_assert!(names(&violation, "after_cursor"), "{violation:?}"),
        }
    }

    #[test]
    fn page_tokens(
        after in any::<u128>(),
        filters in "\\PC{0,40}",
        other in "\\PC{0,40}",
        size in any::<i32>(),
        junk in text(TOKEN),
    ) {
        // A token roster issued leads to the row after the one it names,
        // for the same filters only.
        let request = PageRequest::parse(1, "", filters.clone()).unwrap();
        let key = Uuid::from_u128(after);
        let page = request.finish(vec![key, Uuid::nil()], |k| *k);
        prop_assert_eq!(&page.items, &vec![key]);
        let next = PageRequest::parse(size.max(0), &page.next_page_token, filters.clone()).unwrap();
        prop_assert_eq!(next.after, Some(key));
        let elsewhere = PageRequest::parse(0, &page.next_page_token, other.clone());
        if other == filters {
            prop_assert!(elsewhere.is_ok());
        } else {
            prop_assert!(names(&elsewhere.unwrap_err(), "page_token"));
        }
        match PageRequest::parse(size, "", filters.clone()) {
            Ok(request) => prop_assert!((1..=500).contains(&request.size)),
            Err(violation) => {
                prop_assert!(size < 0);
                prop_assert!(names(&violation, "page_size"));
            }
        }
        // Anything else is refused as a token, naming it.
        if junk != page.next_page_token
            && !junk.is_empty()
            && let Err(violation) = PageRequest::parse(0, &junk, filters)
        {
            prop_assert!(names(&violation, "page_token"), "{violation:?}");
        }
    }
}

/// What a call answered, with what differs between two servers (ids,
/// times, revisions) left out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Ok(String),
    Refused {
        code: Code,
        reason: String,
        fields: Vec<String>,
    },
}

impl Answer {
    fn of<T>(result: Result<T, Status>, describe: impl FnOnce(T) -> String) -> Self {
        match result {
            Ok(reply) => Answer::Ok(describe(reply)),
            Err(status) => Answer::Refused {
                code: status.code(),
                reason: reason(&status),
                fields: bad_fields(&status),
            },
        }
    }

    /// Refused with INVALID_ARGUMENT, this names exactly `field`; and no
    /// input is ever a reason for INTERNAL or UNKNOWN.
    fn check(&self, field: &str, input: &str) -> Result<(), TestCaseError> {
        if let Answer::Refused {
            code,
            reason,
            fields,
        } = self
        {
            prop_assert!(
                !matches!(code, Code::Internal | Code::Unknown | Code::Unavailable),
                "{input:?} for {field}: {self:?}"
            );
            if *code == Code::InvalidArgument {
                prop_assert_eq!(reason, "INVALID_ARGUMENT");
                prop_assert_eq!(fields, &vec![field.to_owned()], "{:?}", input);
            }
        }
        Ok(())
    }
}

/// One random input for each field a client fills in.
#[derive(Debug, Clone)]
struct Inputs {
    name: String,
    slug: String,
    logo_url: String,
    email: String,
    search: String,
    page_token: String,
    cursor: String,
    revision: String,
    token_name: String,
    token_email: String,
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (
        (text(NAME), text(SLUG), text(LOGO), text(EMAIL), text(NAME)),
        (
            text(TOKEN),
            text(CURSOR),
            text(CURSOR),
            text(NAME),
            text(EMAIL),
        ),
    )
        .prop_map(
            |(
                (name, slug, logo_url, email, search),
                (page_token, cursor, revision, token_name, token_email),
            )| Inputs {
                name,
                slug,
                logo_url,
                email,
                search,
                page_token,
                cursor,
                revision,
                token_name,
                token_email,
            },
        )
}

/// Every field of `inputs` sent to `app`, each in a call where it is the
/// only thing that can be wrong, by a fresh user (`n` tells them apart).
async fn answers(
    app: &TestApp,
    n: usize,
    inputs: &Inputs,
) -> Vec<(&'static str, &'static str, Answer)> {
    let owner = format!("owner-{n}");
    let org = app.create_org(&owner, &format!("props-{n}")).await;
    let mut answers = Vec::new();

    let created = app
        .orgs(&owner)
        .create_organization(pb::CreateOrganizationRequest {
            name: inputs.name.clone(),
            slug: format!("props-name-{n}"),
            logo_url: String::new(),
            request_id: String::new(),
            owner: None,
        })
        .await;
    answers.push((
        "name",
        "name",
        Answer::of(created, |r| {
            r.into_inner().organization.unwrap_or_default().name
        }),
    ));
    let created = app
        .orgs(&owner)
        .create_organization(pb::CreateOrganizationRequest {
            name: "Props".into(),
            slug: inputs.slug.clone(),
            logo_url: String::new(),
            request_id: String::new(),
            owner: None,
        })
        .await;
    answers.push((
        "slug",
        "slug",
        Answer::of(created, |r| {
            r.into_inner().organization.unwrap_or_default().slug
        }),
    ));
    let checked = app
        .orgs(&owner)
        .check_slug(pb::CheckSlugRequest {
            slug: inputs.slug.clone(),
        })
        .await;
    answers.push((
        "slug",
        "slug",
        Answer::of(checked, |r| {
            let r = r.into_inner();
            format!("{} {} {}", r.available, r.reason, r.normalized_slug)
        }),
    ));
    let got = app
        .orgs(&owner)
        .get_organization(pb::GetOrganizationRequest {
            key: Some(Key::Slug(inputs.slug.clone())),
        })
        .await;
    answers.push((
        "slug",
        "slug",
        Answer::of(got, |r| {
            r.into_inner().organization.unwrap_or_default().slug
        }),
    ));
    let updated = app
        .orgs(&owner)
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                id: org.id.clone(),
                logo_url: inputs.logo_url.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["logo_url".into()],
            }),
        })
        .await;
    answers.push((
        "logo_url",
        "organization.logo_url",
        Answer::of(updated, |r| {
            r.into_inner().organization.unwrap_or_default().logo_url
        }),
    ));
    let invited = app
        .members(&owner)
        .create_invitation(pb::CreateInvitationRequest {
            organization_id: org.id.clone(),
            email: inputs.email.clone(),
            role: pb::Role::Member.into(),
            request_id: String::new(),
            delivery: pb::InvitationDelivery::Unspecified.into(),
        })
        .await;
    answers.push((
        "email",
        "email",
        Answer::of(invited, |r| {
            r.into_inner().invitation.unwrap_or_default().email
        }),
    ));
    let listed = app
        .members(&owner)
        .list_members(pb::ListMembersRequest {
            organization_id: org.id.clone(),
            search: inputs.search.clone(),
            ..Default::default()
        })
        .await;
    answers.push((
        "search",
        "search",
        Answer::of(listed, |r| r.into_inner().members.len().to_string()),
    ));
    let listed = app
        .members(&owner)
        .list_members(pb::ListMembersRequest {
            organization_id: org.id.clone(),
            page_token: inputs.page_token.clone(),
            ..Default::default()
        })
        .await;
    answers.push((
        "page_token",
        "page_token",
        Answer::of(listed, |r| r.into_inner().members.len().to_string()),
    ));
    let events = app
        .event_follower()
        .list_events(pb::ListEventsRequest {
            after_cursor: inputs.cursor.clone(),
            page_size: 1,
        })
        .await;
    answers.push((
        "after_cursor",
        "after_cursor",
        Answer::of(events, |_| String::new()),
    ));
    let checked = app
        .authz(&owner)
        .check_permission(pb::CheckPermissionRequest {
            check: Some(pb::PermissionCheck {
                user_id: owner.clone(),
                organization_id: org.id.clone(),
                permission: "applications.create".into(),
                ..Default::default()
            }),
            at_least_revision: inputs.revision.clone(),
        })
        .await;
    answers.push((
        "at_least_revision",
        "at_least_revision",
        // A revision later than any this server wrote cannot be waited for
        // on either database alike; only its being accepted is compared.
        Answer::of(checked, |_| String::new()),
    ));

    // A person whose token carries these claims: roster either knows them
    // by it or refuses the token, and never fails on the write.
    let token = app.token_with(TokenRequest {
        sub: format!("claims-{n}"),
        email: Some(inputs.token_email.clone()),
        name: Some(inputs.token_name.clone()),
        email_verified: true,
        ttl: Duration::from_secs(600),
        ..TokenRequest::default()
    });
    let created = app
        .orgs_with_token(Some(&token))
        .create_organization(pb::CreateOrganizationRequest {
            name: "Claims".into(),
            slug: format!("props-claims-{n}"),
            logo_url: String::new(),
            request_id: String::new(),
            owner: None,
        })
        .await;
    answers.push(("token", "token", Answer::of(created, |_| String::new())));
    answers
}

/// Runs `cases` random inputs against each server; every answer must keep
/// the rules, and the servers must agree with each other.
async fn fuzz_servers(backends: &[Backend], cases: u32) {
    let mut apps = Vec::new();
    for backend in backends {
        apps.push(
            TestApp::spawn_with(backend, |c| {
                c.max_owned_organizations = 10_000;
            })
            .await,
        );
    }
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        // Shrinking replays a failing case many times, each with a server
        // round trip per field: the first failure with its inputs is enough.
        max_shrink_iters: 32,
        // The failure is printed; this runner has no source file to keep it beside.
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let case = std::cell::Cell::new(0);
    let result = runner.run(&inputs(), |inputs| {
        let n = case.get() + 1;
        case.set(n);
        let per_server: Vec<_> = tokio::task::block_in_place(|| {
            handle.block_on(async {
                let mut all = Vec::new();
                for app in &apps {
                    all.push(answers(app, n, &inputs).await);
                }
                all
            })
        });
        for answers in &per_server {
            for (input_name, field, answer) in answers {
                let input = match *input_name {
                    "name" => &inputs.name,
                    "slug" => &inputs.slug,
                    "logo_url" => &inputs.logo_url,
                    "email" => &inputs.email,
                    "search" => &inputs.search,
                    "page_token" => &inputs.page_token,
                    "after_cursor" => &inputs.cursor,
                    "at_least_revision" => &inputs.revision,
                    _ => &inputs.token_email,
                };
                if *field == "token" {
                    // A bad claim refuses the token, nothing else.
                    if let Answer::Refused { code, .. } = answer {
                        prop_assert_eq!(*code, Code::Unauthenticated, "{:?}", inputs);
                    }
                } else {
                    answer.check(field, input)?;
                }
            }
        }
        if let [first, rest @ ..] = per_server.as_slice() {
            for other in rest {
                prop_assert_eq!(first, other, "SQLite and PostgreSQL disagree");
            }
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_input_is_answered_by_its_rule_on_sqlite() {
    fuzz_servers(&[Backend::Sqlite], 64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
async fn every_input_gets_the_same_answer_on_sqlite_and_postgres() {
    fuzz_servers(&[Backend::Sqlite, Backend::required_postgres()], 48).await;
}
