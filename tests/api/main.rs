//! roster's integration tests: one binary, the real server, real clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod acting_party;
mod admin;
mod authorization;
mod authz;
mod better_auth_jwt;
mod browser;
mod claims;
mod cli;
mod clients;
mod connections;
mod erase;
mod events;
mod fake_portal;
mod identity;
mod import;
mod invitation;
mod invitation_links;
mod jwks_url;
mod lifecycle;
mod logos;
mod lookups;
mod membership;
mod organization;
mod outage;
mod portal_proxy;
mod production;
mod properties;
mod protocols;
mod provider_portal;
mod provider_portal_ops;
mod provider_sync;
mod races;
mod reflection;
mod scratch;
mod services;
mod slugs;
mod smtp;
mod text;
mod tls;
mod traces;
mod validation;
mod wire;
mod writers;

/// `.ci/run` sets `ROSTER_REQUIRE_POSTGRES=1`: then the PostgreSQL variants
/// must have been built to run (`TEST_DATABASE_URL` set at build time), or
/// a missing database would pass CI as a row of ignored tests.
#[test]
fn postgres_tests_run_when_required() {
    if std::env::var("ROSTER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        assert!(
            cfg!(postgres_tests) && helpers::Backend::postgres().is_some(),
            "ROSTER_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set: the PostgreSQL tests would not run"
        );
    }
}
