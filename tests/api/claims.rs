//! The shapes of the claims identity providers send: `nbf`, `aud` as a
//! string or an array, scopes in `scope` or `scp` as a string or an array,
//! `email_verified` as a boolean or its string (and Better Auth's
//! `emailVerified`). Each is signed as a raw JSON object, so the token
//! holds exactly the shape under test.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use roster::{auth::token::DEVELOPMENT_SECRET, pb};
use serde_json::{Value, json};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error},
};

const AUDIENCE: &str = "roster";

backend_tests!(
    a_token_not_valid_yet_is_refused_and_one_within_the_leeway_passes,
    an_audience_may_be_a_string_or_an_array_that_names_roster,
    scopes_may_be_a_string_or_an_array_in_scope_or_scp,
    email_verified_may_be_a_boolean_or_its_string_and_nothing_else,
);

async fn a_token_not_valid_yet_is_refused_and_one_within_the_leeway_passes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let now = get_current_timestamp();

    let in_an_hour = list(&app, &json!({ "nbf": now + 3600 })).await;
    let in_a_minute = list(&app, &json!({ "nbf": now + 60 })).await;
    let within_leeway = list(&app, &json!({ "nbf": now + 10 })).await;
    let already = list(&app, &json!({ "nbf": now - 10 })).await;
    let not_a_time = list(&app, &json!({ "nbf": "tomorrow" })).await;

    assert_error(in_an_hour, Code::Unauthenticated, "INVALID_TOKEN");
    assert_error(in_a_minute, Code::Unauthenticated, "INVALID_TOKEN");
    assert!(within_leeway.is_ok(), "{within_leeway:?}");
    assert!(already.is_ok(), "{already:?}");
    assert_error(not_a_time, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn an_audience_may_be_a_string_or_an_array_that_names_roster(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.jwt.jwt_audience = Some(AUDIENCE.into());
    })
    .await;

    for accepted in [
        json!({ "aud": AUDIENCE }),
        json!({ "aud": [AUDIENCE] }),
        json!({ "aud": ["https://portal.example.com", AUDIENCE] }),
    ] {
        let reply = list(&app, &accepted).await;
        assert!(reply.is_ok(), "{accepted}: {reply:?}");
    }
    // Without an audience configured (the HS256 secret alone), any shape of
    // `aud` is read, and none is required.
    let anything = TestApp::spawn(&backend).await;
    for shape in [json!({ "aud": "billing" }), json!({ "aud": ["a", "b"] })] {
        let reply = list(&anything, &shape).await;
        assert!(reply.is_ok(), "{shape}: {reply:?}");
    }
    for refused in [
        json!({}),
        json!({ "aud": "billing" }),
        json!({ "aud": ["billing", "https://portal.example.com"] }),
        json!({ "aud": [] }),
        json!({ "aud": 7 }),
        json!({ "aud": { "roster": true } }),
    ] {
        let reply = list(&app, &refused).await;
        assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
    }
}

async fn scopes_may_be_a_string_or_an_array_in_scope_or_scp(backend: Backend) {
    let app = TestApp::spawn(&backend).await;

    for granted in [
        json!({ "scope": "events.read" }),
        json!({ "scope": "authz.check events.read" }),
        json!({ "scope": ["authz.check", "events.read"] }),
        json!({ "scp": "events.read" }),
        json!({ "scp": ["events.read"] }),
        json!({ "scope": "authz.check", "scp": ["events.read"] }),
    ] {
        let reply = list_events(&app, &granted).await;
        assert!(reply.is_ok(), "{granted}: {reply:?}");
    }
    for not_granted in [
        json!({}),
        json!({ "scope": "authz.check" }),
        json!({ "scp": ["events.read.all"] }),
        json!({ "scope": [] }),
    ] {
        let reply = list_events(&app, &not_granted).await;
        assert_error(reply, Code::PermissionDenied, "MISSING_SCOPE");
    }
    for malformed in [
        json!({ "scope": 1 }),
        json!({ "scope": ["events.read", 2] }),
        json!({ "scp": { "events.read": true } }),
        json!({ "scp": true }),
    ] {
        let reply = list_events(&app, &malformed).await;
        assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
    }
}

async fn email_verified_may_be_a_boolean_or_its_string_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let email = json!("alice@example.com");

    for verified in [
        json!({ "email": email, "email_verified": true }),
        json!({ "email": email, "email_verified": "true" }),
        json!({ "email": email, "emailVerified": true }),
    ] {
        let reply = list_my_invitations(&app, &verified).await;
        assert!(reply.is_ok(), "{verified}: {reply:?}");
    }
    for unverified in [
        json!({ "email": email }),
        json!({ "email": email, "email_verified": false }),
        json!({ "email": email, "email_verified": "false" }),
        json!({ "email": email, "emailVerified": false }),
    ] {
        let reply = list_my_invitations(&app, &unverified).await;
        assert_error(
            reply,
            Code::FailedPrecondition,
            "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION",
        );
    }
    for malformed in [
        json!({ "email": email, "email_verified": "yes" }),
        json!({ "email": email, "email_verified": "TRUE" }),
        json!({ "email": email, "email_verified": 1 }),
        json!({ "email": email, "email_verified": null }),
        // Both names at once may disagree: neither is believed.
        json!({ "email": email, "email_verified": true, "emailVerified": true }),
    ] {
        let reply = list_my_invitations(&app, &malformed).await;
        assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
    }
}

/// An HS256 token (the development secret) for alice, valid for an hour,
/// with `extra` claims added or replaced.
fn token(extra: &Value) -> String {
    let mut claims = json!({ "sub": "alice", "exp": get_current_timestamp() + 3600 });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    let key = EncodingKey::from_secret(DEVELOPMENT_SECRET.as_bytes()).unwrap();
    encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

async fn list(
    app: &TestApp,
    extra: &Value,
) -> Result<tonic::Response<pb::ListOrganizationsResponse>, tonic::Status> {
    app.orgs_with_token(Some(&token(extra)))
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
}

async fn list_events(
    app: &TestApp,
    extra: &Value,
) -> Result<tonic::Response<pb::ListEventsResponse>, tonic::Status> {
    app.events_with_token(Some(&token(extra)))
        .list_events(pb::ListEventsRequest::default())
        .await
}

async fn list_my_invitations(
    app: &TestApp,
    extra: &Value,
) -> Result<tonic::Response<pb::ListMyInvitationsResponse>, tonic::Status> {
    app.members_with_token(Some(&token(extra)))
        .list_my_invitations(pb::ListMyInvitationsRequest::default())
        .await
}
