//! Who is calling: bearer tokens (HS256 with the configured secret, RS256,
//! ES256 and EdDSA with keys from a JWKS file), issuer and audience, and the
//! services that need no token at all.
//!
//! The keys are test-only fixtures in `tests/fixtures/` (see its README).

use std::{path::PathBuf, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use roster::{
    auth::{
        claims::OneOrMany,
        token::{Claims, DEVELOPMENT_SECRET, TokenRequest, mint_hs256},
    },
    pb::{self, organization_service_client::OrganizationServiceClient},
};
use serde::Serialize;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error},
};

const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "roster";
const CONFIGURED_SECRET: &str = "a-test-secret-of-32-bytes-length";

/// The `kid`s in `tests/fixtures/jwks.json`.
const RSA_KID: &str = "test-rsa";
const EC_KID: &str = "test-ec";
const ED25519_KID: &str = "test-ed25519";

backend_tests!(
    a_call_without_an_authorization_header_is_missing_credentials,
    a_valid_token_under_another_scheme_than_bearer_is_refused,
    the_bearer_scheme_is_case_insensitive,
    a_garbage_token_is_invalid,
    a_token_signed_with_another_secret_is_invalid,
    a_token_expired_beyond_the_leeway_is_invalid,
    a_token_expired_within_the_leeway_is_still_accepted,
    a_token_without_a_subject_is_invalid,
    an_unsigned_alg_none_token_is_invalid,
    an_rs256_token_from_the_jwks_is_accepted,
    an_es256_token_from_the_jwks_is_accepted,
    an_eddsa_token_from_the_jwks_is_accepted,
    a_token_with_an_unknown_kid_is_invalid,
    a_token_without_a_kid_is_invalid_when_the_jwks_has_several_keys,
    a_token_whose_alg_is_not_the_keys_alg_is_invalid,
    an_hs256_token_keyed_with_the_rsa_public_key_is_invalid,
    with_only_a_jwks_the_development_secret_is_refused,
    a_token_with_the_configured_issuer_and_audience_is_accepted,
    a_token_from_another_issuer_or_none_is_invalid,
    a_token_for_another_audience_or_none_is_invalid,
    health_answers_without_a_token,
    a_configured_secret_replaces_the_development_secret,
    a_jwks_token_minted_for_another_client_is_refused,
    with_any_audience_chosen_a_jwks_token_for_any_client_is_accepted,
);

async fn a_call_without_an_authorization_header_is_missing_credentials(backend: Backend) {
    let app = TestApp::spawn(&backend).await;

    let reply = list_organizations(&app, None).await;

    assert_error(reply, Code::Unauthenticated, "MISSING_CREDENTIALS");
}

async fn a_valid_token_under_another_scheme_than_bearer_is_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let token = app.token("alice");

    let basic = with_authorization(&app, "Basic YWxpY2U6c2VjcmV0").await;
    let token_as_basic = with_authorization(&app, &format!("Basic {token}")).await;
    let bare_token = with_authorization(&app, &token).await;

    assert_error(basic, Code::Unauthenticated, "MISSING_CREDENTIALS");
    assert_error(token_as_basic, Code::Unauthenticated, "MISSING_CREDENTIALS");
    assert_error(bare_token, Code::Unauthenticated, "MISSING_CREDENTIALS");
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let token = app.token("alice");

    let reply = with_authorization(&app, &format!("bearer {token}")).await;

    assert!(reply.is_ok(), "{reply:?}");
}

async fn a_garbage_token_is_invalid(backend: Backend) {
    let app = TestApp::spawn(&backend).await;

    let reply = list_organizations(&app, Some("not-a-jwt")).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_token_signed_with_another_secret_is_invalid(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let forged = mint_hs256("another-secret-of-enough-length", &request_for("alice")).unwrap();

    let reply = list_organizations(&app, Some(&forged)).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_token_expired_beyond_the_leeway_is_invalid(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let claims = Claims {
        exp: get_current_timestamp() - 120,
        ..claims_for("alice")
    };
    let expired = sign(Algorithm::HS256, None, &claims, &development_key());

    let reply = list_organizations(&app, Some(&expired)).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_token_expired_within_the_leeway_is_still_accepted(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let claims = Claims {
        exp: get_current_timestamp() - 5,
        ..claims_for("alice")
    };
    let just_expired = sign(Algorithm::HS256, None, &claims, &development_key());

    let reply = list_organizations(&app, Some(&just_expired)).await;

    assert!(reply.is_ok(), "{reply:?}");
}

async fn a_token_without_a_subject_is_invalid(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let exp = get_current_timestamp() + 3600;
    let without_sub = sign(
        Algorithm::HS256,
        None,
        &serde_json::json!({ "exp": exp }),
        &development_key(),
    );
    let empty_sub = sign(Algorithm::HS256, None, &claims_for(""), &development_key());

    let without = list_organizations(&app, Some(&without_sub)).await;
    let empty = list_organizations(&app, Some(&empty_sub)).await;

    assert_error(without, Code::Unauthenticated, "INVALID_TOKEN");
    assert_error(empty, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn an_unsigned_alg_none_token_is_invalid(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for("alice")).unwrap());
    let unsigned = format!("{header}.{claims}.");

    let reply = list_organizations(&app, Some(&unsigned)).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn an_rs256_token_from_the_jwks_is_accepted(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    let token = sign(
        Algorithm::RS256,
        Some(RSA_KID),
        &claims_for("rsa-user"),
        &rsa_key(),
    );

    assert_owner_of_a_new_organization(&app, &token, "rsa-user").await;
}

async fn an_es256_token_from_the_jwks_is_accepted(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    let token = sign(
        Algorithm::ES256,
        Some(EC_KID),
        &claims_for("ec-user"),
        &ec_key(),
    );

    assert_owner_of_a_new_organization(&app, &token, "ec-user").await;
}

async fn an_eddsa_token_from_the_jwks_is_accepted(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    let token = sign(
        Algorithm::EdDSA,
        Some(ED25519_KID),
        &claims_for("ed-user"),
        &ed25519_key(),
    );

    assert_owner_of_a_new_organization(&app, &token, "ed-user").await;
}

async fn a_token_with_an_unknown_kid_is_invalid(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    let token = sign(
        Algorithm::RS256,
        Some("rotated-away"),
        &claims_for("alice"),
        &rsa_key(),
    );

    let reply = list_organizations(&app, Some(&token)).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_token_without_a_kid_is_invalid_when_the_jwks_has_several_keys(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    let token = sign(Algorithm::RS256, None, &claims_for("alice"), &rsa_key());

    let reply = list_organizations(&app, Some(&token)).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_token_whose_alg_is_not_the_keys_alg_is_invalid(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    // Properly signed by the RSA key, but not with the algorithm its JWK names.
    let pss = sign(
        Algorithm::PS256,
        Some(RSA_KID),
        &claims_for("alice"),
        &rsa_key(),
    );
    let sha384 = sign(
        Algorithm::RS384,
        Some(RSA_KID),
        &claims_for("alice"),
        &rsa_key(),
    );
    // Signed by the RSA key, but naming the EC key.
    let other_key = sign(
        Algorithm::RS256,
        Some(EC_KID),
        &claims_for("alice"),
        &rsa_key(),
    );

    for token in [pss, sha384, other_key] {
        let reply = list_organizations(&app, Some(&token)).await;

        assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
    }
}

async fn an_hs256_token_keyed_with_the_rsa_public_key_is_invalid(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    // The algorithm-confusion attack: the public key, which anyone has,
    // used as the HMAC secret of a token that names the RSA key.
    let public_pem = std::fs::read(fixture("rsa_public.pem")).unwrap();
    let confused = sign(
        Algorithm::HS256,
        Some(RSA_KID),
        &claims_for("mallory"),
        &EncodingKey::from_secret(&public_pem).unwrap(),
    );

    let reply = list_organizations(&app, Some(&confused)).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn with_only_a_jwks_the_development_secret_is_refused(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    assert_eq!(app.config.jwt.jwt_secret, None);
    let development = mint_hs256(DEVELOPMENT_SECRET, &request_for("mallory")).unwrap();

    let reply = list_organizations(&app, Some(&development)).await;

    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_token_with_the_configured_issuer_and_audience_is_accepted(backend: Backend) {
    let app = spawn_with_issuer_and_audience(&backend).await;
    let token = app.token_with(TokenRequest {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..request_for("alice")
    });

    let reply = list_organizations(&app, Some(&token)).await;

    assert!(reply.is_ok(), "{reply:?}");
}

async fn a_token_from_another_issuer_or_none_is_invalid(backend: Backend) {
    let app = spawn_with_issuer_and_audience(&backend).await;
    let other_issuer = app.token_with(TokenRequest {
        issuer: Some("https://evil.example.com".into()),
        audience: Some(AUDIENCE.into()),
        ..request_for("alice")
    });
    let no_issuer = app.token_with(TokenRequest {
        audience: Some(AUDIENCE.into()),
        ..request_for("alice")
    });

    let other = list_organizations(&app, Some(&other_issuer)).await;
    let none = list_organizations(&app, Some(&no_issuer)).await;

    assert_error(other, Code::Unauthenticated, "INVALID_TOKEN");
    assert_error(none, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_token_for_another_audience_or_none_is_invalid(backend: Backend) {
    let app = spawn_with_issuer_and_audience(&backend).await;
    let no_audience = app.token_with(TokenRequest {
        issuer: Some(ISSUER.into()),
        ..request_for("alice")
    });
    let other_audience = app.token_with(TokenRequest {
        issuer: Some(ISSUER.into()),
        audience: Some("billing".into()),
        ..request_for("alice")
    });

    let none = list_organizations(&app, Some(&no_audience)).await;
    let other = list_organizations(&app, Some(&other_audience)).await;

    assert_error(none, Code::Unauthenticated, "INVALID_TOKEN");
    assert_error(other, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn health_answers_without_a_token(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let mut health = HealthClient::new(app.channel());

    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    let organizations = health
        .check(HealthCheckRequest {
            service: "roster.v1.OrganizationService".into(),
        })
        .await;

    assert_eq!(
        overall.unwrap().into_inner().status(),
        ServingStatus::Serving
    );
    assert_eq!(
        organizations.unwrap().into_inner().status(),
        ServingStatus::Serving
    );
}

async fn a_configured_secret_replaces_the_development_secret(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.jwt.jwt_secret = Some(CONFIGURED_SECRET.into())
    })
    .await;
    let configured = app.token("alice");
    let development = mint_hs256(DEVELOPMENT_SECRET, &request_for("mallory")).unwrap();

    let accepted = list_organizations(&app, Some(&configured)).await;
    let refused = list_organizations(&app, Some(&development)).await;

    assert!(accepted.is_ok(), "{accepted:?}");
    assert_error(refused, Code::Unauthenticated, "INVALID_TOKEN");
}

async fn a_jwks_token_minted_for_another_client_is_refused(backend: Backend) {
    let app = spawn_with_jwks(&backend).await;
    let for_billing = Claims {
        aud: Some(OneOrMany::One("billing".into())),
        ..claims_for("alice")
    };
    let for_nobody = Claims {
        aud: None,
        ..claims_for("alice")
    };

    for claims in [for_billing, for_nobody] {
        let token = sign(Algorithm::RS256, Some(RSA_KID), &claims, &rsa_key());
        let reply = list_organizations(&app, Some(&token)).await;
        assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
    }
}

async fn with_any_audience_chosen_a_jwks_token_for_any_client_is_accepted(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.jwt.jwt_jwks_file = Some(fixture("jwks.json"));
        c.jwt.jwt_any_audience = true;
    })
    .await;
    let for_billing = Claims {
        aud: Some(OneOrMany::Many(vec!["billing".into()])),
        ..claims_for("alice")
    };
    let for_nobody = Claims {
        aud: None,
        ..claims_for("bob")
    };

    for claims in [for_billing, for_nobody] {
        let token = sign(Algorithm::RS256, Some(RSA_KID), &claims, &rsa_key());
        let reply = list_organizations(&app, Some(&token)).await;
        assert!(reply.is_ok(), "{reply:?}");
    }
}

/// roster verifying asymmetric tokens with `tests/fixtures/jwks.json` for
/// the audience `roster` (a JWKS needs one), and no HS256 secret.
async fn spawn_with_jwks(backend: &Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.jwt.jwt_jwks_file = Some(fixture("jwks.json"));
        c.jwt.jwt_audience = Some(AUDIENCE.into());
    })
    .await
}

async fn spawn_with_issuer_and_audience(backend: &Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.jwt.jwt_issuer = Some(ISSUER.into());
        c.jwt.jwt_audience = Some(AUDIENCE.into());
    })
    .await
}

/// A cheap authenticated call.
async fn list_organizations(
    app: &TestApp,
    token: Option<&str>,
) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
    app.orgs_with_token(token)
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
}

/// The same call with `authorization: <value>` exactly as given.
async fn with_authorization(
    app: &TestApp,
    value: &str,
) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
    let value: tonic::metadata::MetadataValue<_> = value.parse().unwrap();
    let set_authorization = move |mut request: Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
        Ok(request)
    };
    OrganizationServiceClient::with_interceptor(app.channel(), set_authorization)
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
}

/// Creates an organization with `token` and checks that `sub` owns it.
async fn assert_owner_of_a_new_organization(app: &TestApp, token: &str, sub: &str) {
    let slug = format!("{sub}-org");
    let org = app
        .orgs_with_token(Some(token))
        .create_organization(pb::CreateOrganizationRequest {
            name: format!("Org of {sub}"),
            slug,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    let owner = app
        .members_with_token(Some(token))
        .get_member(pb::GetMemberRequest {
            organization_id: org.id,
            user_id: sub.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(owner.role(), pb::Role::Owner);
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa_private.pem")).unwrap()).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&std::fs::read(fixture("ec_private.pem")).unwrap()).unwrap()
}

fn ed25519_key() -> EncodingKey {
    EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519_private.pem")).unwrap()).unwrap()
}

fn development_key() -> EncodingKey {
    EncodingKey::from_secret(DEVELOPMENT_SECRET.as_bytes()).unwrap()
}

/// Claims for `sub`, valid for an hour, for the audience `roster`.
fn claims_for(sub: &str) -> Claims {
    let now = get_current_timestamp();
    Claims {
        sub: sub.to_owned(),
        exp: now + 3600,
        iat: Some(now),
        aud: Some(OneOrMany::One(AUDIENCE.into())),
        ..Claims::default()
    }
}

/// A token request for `sub`, valid for an hour.
fn request_for(sub: &str) -> TokenRequest {
    TokenRequest {
        sub: sub.to_owned(),
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    }
}

fn sign(
    algorithm: Algorithm,
    kid: Option<&str>,
    claims: &impl Serialize,
    key: &EncodingKey,
) -> String {
    let header = Header {
        kid: kid.map(str::to_owned),
        ..Header::new(algorithm)
    };
    encode(&header, claims, key).unwrap()
}
