//! The acting party: a token's RFC 8693 `act` claim (someone acting for
//! the token's subject) is recorded with every event its calls write, and
//! shown by ListEvents, StreamEvents and ListAuditEvents; a malformed one
//! refuses the token.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use roster::{
    auth::token::{DEVELOPMENT_SECRET, TokenRequest},
    pb,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error},
};

backend_tests!(
    the_acting_party_is_recorded_with_every_event_of_its_calls_and_shown_everywhere,
    a_malformed_act_claim_refuses_the_token,
);

const AGENT: &str = "support-agent-7";

/// (type, subject, acting party) of each event about `org`, oldest first.
type Seen = Vec<(String, String, String)>;

fn seen<'a>(events: impl IntoIterator<Item = &'a pb::Event>, org: &str) -> Seen {
    events
        .into_iter()
        .filter(|e| e.organization_id == org)
        .map(|e| {
            (
                e.r#type.clone(),
                e.subject_user_id.clone(),
                e.acting_party.clone(),
            )
        })
        .collect()
}

async fn the_acting_party_is_recorded_with_every_event_of_its_calls_and_shown_everywhere(
    backend: Backend,
) {
    let app = TestApp::spawn(&backend).await;
    // The agent acts for Alice: creates her organization and invites Bob.
    let for_alice = app.token_with(TokenRequest {
        sub: "alice".into(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        acting_party: Some(AGENT.into()),
        ttl: Duration::from_secs(3600),
        ..TokenRequest::default()
    });
    let org = app
        .create_org_with_token(&for_alice, "Acme", "acme", "the agent creates")
        .await
        .id;
    let invitation = app
        .members_with_token(Some(&for_alice))
        .create_invitation(pb::CreateInvitationRequest {
            organization_id: org.clone(),
            email: "bob@example.com".into(),
            role: pb::Role::Member.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    // Bob accepts on his own; Alice, on her own, makes him an admin.
    app.members("bob")
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .unwrap();
    app.members("alice")
        .update_member_role(pb::UpdateMemberRoleRequest {
            organization_id: org.clone(),
            user_id: "bob".into(),
            role: pb::Role::Admin.into(),
        })
        .await
        .unwrap();
    let s =
        |t: &str, subject: &str, party: &str| (t.to_owned(), subject.to_owned(), party.to_owned());
    let want = vec![
        s("organization.created", "", AGENT),
        s("member.added", "alice", AGENT),
        s("invitation.created", "", AGENT),
        s("invitation.accepted", "bob", ""),
        s("member.added", "bob", ""),
        s("member.role_changed", "bob", ""),
    ];

    let listed = app
        .event_follower()
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(seen(&listed, &org), want, "ListEvents");

    let mut stream = app
        .event_follower()
        .stream_events(pb::StreamEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while streamed.len() < listed.len() {
        let reply = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the stream replays the log")
            .unwrap()
            .unwrap();
        streamed.push(reply.event.unwrap());
    }
    assert_eq!(seen(&streamed, &org), want, "StreamEvents");

    let audit = app
        .events("alice")
        .list_audit_events(pb::ListAuditEventsRequest {
            organization_id: org.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let mut oldest_first = seen(&audit, &org);
    oldest_first.reverse();
    assert_eq!(oldest_first, want, "ListAuditEvents");

    // A chain (the agent acting through a tool acting before it): the
    // agent, the party acting now, is recorded.
    let chained = raw_token(&json!({
        "sub": "alice",
        "act": { "sub": AGENT, "act": { "sub": "helpdesk-tool" } },
    }));
    app.orgs_with_token(Some(&chained))
        .update_organization(pb::UpdateOrganizationRequest {
            organization: Some(pb::Organization {
                id: org.clone(),
                name: "Acme Renamed".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .unwrap();
    let latest = app
        .events("alice")
        .list_audit_events(pb::ListAuditEventsRequest {
            organization_id: org.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(latest[0].r#type, "organization.updated");
    assert_eq!(latest[0].acting_party, AGENT);
}

async fn a_malformed_act_claim_refuses_the_token(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let list = |token: String| {
        let mut orgs = app.orgs_with_token(Some(&token));
        async move {
            orgs.list_organizations(pb::ListOrganizationsRequest::default())
                .await
        }
    };
    let fine = list(raw_token(
        &json!({ "sub": "alice", "act": { "sub": AGENT } }),
    ))
    .await;
    assert!(fine.is_ok(), "{fine:?}");
    let mut deep = json!({ "sub": "first" });
    for n in 0..8 {
        deep = json!({ "sub": format!("actor-{n}"), "act": deep });
    }
    for malformed in [
        json!(AGENT),
        json!(null),
        json!([{ "sub": AGENT }]),
        json!({}),
        json!({ "sub": "" }),
        json!({ "sub": 7 }),
        json!({ "sub": " agent" }),
        json!({ "sub": "x".repeat(256) }),
        json!({ "sub": AGENT, "act": "tool" }),
        json!({ "sub": AGENT, "act": { "iss": "idp" } }),
        // Nine actors: more than roster follows.
        deep,
    ] {
        let token = raw_token(&json!({ "sub": "alice", "act": malformed }));
        assert_error(
            list(token).await,
            Code::Unauthenticated,
            "INVALID_ACT_CLAIM",
        );
    }
}

/// An HS256 token (the development secret), valid for an hour, with these claims.
fn raw_token(claims: &Value) -> String {
    let mut claims = claims.clone();
    claims["exp"] = json!(get_current_timestamp() + 3600);
    let key = EncodingKey::from_secret(DEVELOPMENT_SECRET.as_bytes()).unwrap();
    encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}
