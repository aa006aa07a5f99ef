//! Invariants under real concurrency: many calls in flight at once against
//! one server (and one database), then the invariant is checked.

use futures::future::join_all;
use roster::pb;
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp},
};

/// Rounds of the last-owner race: 20 in a row, since one round can pass by
/// luck.
const ROUNDS: usize = 20;

/// Codes a losing racer may get; anything else (INTERNAL, ABORTED,
/// UNAVAILABLE: a lock timeout or a serialization failure) is a bug.
fn is_orderly_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::FailedPrecondition | Code::NotFound | Code::PermissionDenied
    )
}

backend_tests!(
    racing_demotions_removals_and_leaves_always_leave_an_owner,
    racing_acceptances_make_one_membership,
    racing_invitations_respect_uniqueness_and_seats,
);

async fn racing_demotions_removals_and_leaves_always_leave_an_owner(backend: Backend) {
    // Ann creates one organization per round and may stay an owner of each.
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 100).await;
    let owners = ["ann", "ben", "cat"];
    for round in 0..ROUNDS {
        let org = app.create_org("ann", &format!("race-{round}")).await;
        app.add_member("ann", &org.id, "ben", pb::Role::Owner).await;
        app.add_member("ann", &org.id, "cat", pb::Role::Owner).await;
        app.add_member("ann", &org.id, "watcher", pb::Role::Admin)
            .await;

        // Every owner tries to demote and to remove every other owner,
        // and to leave: fifteen calls, all in flight at once.
        let mut calls = Vec::new();
        for actor in owners {
            for target in owners.iter().copied().filter(|t| *t != actor) {
                let mut client = app.members(actor);
                let request = pb::UpdateMemberRoleRequest {
                    organization_id: org.id.clone(),
                    user_id: target.to_owned(),
                    role: pb::Role::Admin.into(),
                };
                calls.push(tokio::spawn(async move {
                    client.update_member_role(request).await.map(drop)
                }));
                let mut client = app.members(actor);
                let request = pb::RemoveMemberRequest {
                    organization_id: org.id.clone(),
                    user_id: target.to_owned(),
                };
                calls.push(tokio::spawn(async move {
                    client.remove_member(request).await.map(drop)
                }));
            }
            let mut client = app.members(actor);
            let request = pb::LeaveOrganizationRequest {
                organization_id: org.id.clone(),
            };
            calls.push(tokio::spawn(async move {
                client.leave_organization(request).await.map(drop)
            }));
        }
        let results = join_all(calls).await;

        let mut successes = 0;
        for result in results {
            match result.unwrap() {
                Ok(()) => successes += 1,
                Err(status) => assert!(
                    is_orderly_refusal(status.code()),
                    "round {round}: {status:?}"
                ),
            }
        }
        let remaining = app
            .members("watcher")
            .list_members(pb::ListMembersRequest {
                organization_id: org.id.clone(),
                role: pb::Role::Owner.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .members;
        assert!(!remaining.is_empty(), "round {round}: no owner left");
        assert!(
            successes >= 2,
            "round {round}: two owners can always go, {successes} did"
        );
    }
}

async fn racing_acceptances_make_one_membership(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let calls = (0..12).map(|_| {
        let mut client = app.members("bob");
        let request = pb::AcceptInvitationRequest {
            id: invitation.id.clone(),
        };
        tokio::spawn(async move { client.accept_invitation(request).await.map(drop) })
    });
    let results: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    }
    let members = app
        .members("alice")
        .list_members(pb::ListMembersRequest {
            organization_id: org.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 2);
}

async fn racing_invitations_respect_uniqueness_and_seats(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.max_members_per_organization = 5).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;

    // The same address, invited by two admins at once, many times.
    let same = (0..10).map(|i| {
        let mut client = app.members(if i % 2 == 0 { "alice" } else { "bob" });
        let request = pb::CreateInvitationRequest {
            organization_id: org.id.clone(),
            email: "carol@example.com".into(),
            role: pb::Role::Member.into(),
            request_id: String::new(),
            delivery: pb::InvitationDelivery::Unspecified.into(),
        };
        tokio::spawn(async move { client.create_invitation(request).await.map(drop) })
    });
    let results: Vec<_> = join_all(same)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|s| s.code() == Code::AlreadyExists)
    );

    // Two seats left (5 - 2 members - 1 pending); ten different addresses race for them.
    let distinct = (0..10).map(|i| {
        let mut client = app.members("alice");
        let request = pb::CreateInvitationRequest {
            organization_id: org.id.clone(),
            email: format!("guest{i}@example.com"),
            role: pb::Role::Member.into(),
            request_id: String::new(),
            delivery: pb::InvitationDelivery::Unspecified.into(),
        };
        tokio::spawn(async move { client.create_invitation(request).await.map(drop) })
    });
    let results: Vec<_> = join_all(distinct)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|s| s.code() == Code::ResourceExhausted)
    );
}
