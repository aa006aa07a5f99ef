//! The portal's own tokens: Better Auth with its JWT plugin (the fixture
//! `tests/better-auth/jwt.mjs`, real Better Auth from npm serving its own
//! `/api/auth/jwks` over Node's http), and roster pointed at that URL with
//! the issuer and audience the plugin puts in its tokens (the portal's base
//! URL). Tokens the plugin issues must be accepted with the right subject,
//! email, name and verification state; after Better Auth makes a new
//! signing key, its tokens must be accepted without a restart; a token
//! signed by any other key must be refused.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use roster::pb;
use serde_json::Value;
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, test_node},
};

backend_tests!(needs_node;
    tokens_from_better_auths_jwt_plugin_are_accepted_and_follow_its_key_rotation,
);

async fn tokens_from_better_auths_jwt_plugin_are_accepted_and_follow_its_key_rotation(
    backend: Backend,
) {
    let mut portal = Portal::start();
    let app = TestApp::spawn_with(&backend, |c| {
        c.jwt.jwks_url = Some(portal.jwks.clone());
        c.jwt.jwt_issuer = Some(portal.base_url.clone());
        c.jwt.jwt_audience = Some(portal.base_url.clone());
        c.jwt.jwks_refresh_interval = Duration::from_secs(3600);
    })
    .await;
    assert_eq!(
        portal.fetches(),
        1,
        "roster fetched the JWKS once, at start"
    );
    let (alice, bob) = (portal.user("alice"), portal.user("bob"));
    assert_eq!(alice["emailVerified"], true);
    assert_eq!(bob["emailVerified"], false);

    // Alice's token: she creates an organization and is its owner under her
    // Better Auth id, with the email and name of her Better Auth account.
    let alice_token = portal.ask("token alice")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_kid = kid(&alice_token);
    let org = app
        .create_org_with_token(
            &alice_token,
            "Acme",
            "acme",
            "Better Auth's token is accepted",
        )
        .await;
    let members = app.members_as(&alice_token, &org.id).await;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, alice["id"].as_str().unwrap());
    assert_eq!(members[0].email, alice["email"].as_str().unwrap());
    assert_eq!(members[0].display_name, alice["name"].as_str().unwrap());
    assert_eq!(members[0].role(), pb::Role::Owner);

    // Verification state: alice's (verified) may list her invitations; bob
    // signed up without verifying, and his token says so.
    let alice_invitations = app
        .members_with_token(Some(&alice_token))
        .list_my_invitations(pb::ListMyInvitationsRequest::default())
        .await;
    assert!(alice_invitations.is_ok(), "{alice_invitations:?}");
    let bob_token = portal.ask("token bob")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_invitations = app
        .members_with_token(Some(&bob_token))
        .list_my_invitations(pb::ListMyInvitationsRequest::default())
        .await;
    assert_error(
        bob_invitations,
        Code::FailedPrecondition,
        "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION",
    );

    // Better Auth makes a new signing key: its next token names a kid
    // roster has not seen, and is accepted after one fetch.
    let rotated_kid = portal.ask("rotate")["kid"].as_str().unwrap().to_owned();
    let rotated_token = portal.ask("token alice")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid(&rotated_token), rotated_kid);
    assert_ne!(rotated_kid, first_kid);
    let reply = app
        .orgs_with_token(Some(&rotated_token))
        .get_organization(pb::GetOrganizationRequest {
            key: Some(pb::get_organization_request::Key::Id(org.id.clone())),
        })
        .await;
    assert!(reply.is_ok(), "the rotated key's token: {reply:?}");
    assert_eq!(portal.fetches(), 2, "one fetch for the new kid");

    // The payload of a real token, signed by a key Better Auth never had
    // but naming its current kid.
    let forged = portal.ask("forge alice")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid(&forged), rotated_kid);
    let reply = app
        .orgs_with_token(Some(&forged))
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await;
    assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
}

/// The `kid` in a token's header.
fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .expect("Better Auth names its key")
}

/// The fixture, running: one JSON line per command.
struct Portal {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    jwks: String,
    base_url: String,
    users: Value,
}

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/better-auth/jwt.mjs");

impl Portal {
    fn start() -> Self {
        let mut child = Command::new(test_node())
            .arg(FIXTURE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run node");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut portal = Self {
            child,
            stdin,
            stdout,
            jwks: String::new(),
            base_url: String::new(),
            users: Value::Null,
        };
        let ready = portal.line();
        portal.jwks = ready["jwks"].as_str().unwrap().to_owned();
        portal.base_url = ready["baseURL"].as_str().unwrap().to_owned();
        portal.users = ready["users"].clone();
        portal
    }

    fn user(&self, key: &str) -> Value {
        self.users[key].clone()
    }

    fn fetches(&mut self) -> u64 {
        self.ask("fetches")["fetches"].as_u64().unwrap()
    }

    fn ask(&mut self, command: &str) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.line();
        assert!(answer.get("error").is_none(), "{command}: {answer}");
        answer
    }

    /// The next line the fixture prints (it answers within milliseconds;
    /// blocking this worker thread for that is fine).
    fn line(&mut self) -> Value {
        let mut line = String::new();
        tokio::task::block_in_place(|| self.stdout.read_line(&mut line)).unwrap();
        assert!(!line.is_empty(), "the Better Auth fixture exited");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
