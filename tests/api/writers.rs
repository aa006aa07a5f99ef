//! Many writers at once. On SQLite they take turns inside roster (one
//! writer connection, first come first served) instead of colliding on the
//! database file's lock, so each call gets the answer its request deserves:
//! success, or the conflict the unique constraints decide; never
//! `UNAVAILABLE` ("database is locked") or `INTERNAL`.
//!
//! The busy timeout is cut to a few milliseconds: writers that collided on
//! the file lock would give up within it, writers that queue never wait on it.

use std::time::Duration;

use futures::future::join_all;
use roster::pb;
use tonic::{Code, Status};

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, reason},
};

backend_tests!(thirty_two_writers_at_once_each_get_their_own_answer);

const WRITERS: usize = 32;
const ROUNDS: usize = 3;

/// Far below one contended round of 32 writers when they poll for the lock.
const SHORT_BUSY_TIMEOUT: Duration = Duration::from_millis(5);

/// What one writer saw in one round.
struct Round {
    /// Its own invitation, accepted, and its own organization: each must succeed.
    own: Vec<Result<(), Status>>,
    /// The slug and the address every writer tries in this round.
    contested_slug: Result<(), Status>,
    contested_invitation: Result<(), Status>,
}

async fn thirty_two_writers_at_once_each_get_their_own_answer(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.sqlite_busy_timeout = SHORT_BUSY_TIMEOUT;
        c.max_members_per_organization = 1_000;
        c.max_pending_invitations_per_organization = 1_000;
    })
    .await;
    let shared = app.create_org("alice", "shared").await;

    let writers = (0..WRITERS).map(|w| {
        let app = &app;
        let shared = shared.id.clone();
        async move {
            let mut rounds = Vec::new();
            for r in 0..ROUNDS {
                rounds.push(one_round(app, &shared, w, r).await);
            }
            rounds
        }
    });
    let seen: Vec<Vec<Round>> = join_all(writers).await;

    for r in 0..ROUNDS {
        let round = seen.iter().map(|rounds| &rounds[r]);
        for (w, result) in round.clone().flat_map(|x| x.own.iter()).enumerate() {
            if let Err(status) = result {
                panic!("round {r}, call {w}: {status:?}");
            }
        }
        let slugs: Vec<_> = round.clone().map(|x| &x.contested_slug).collect();
        exactly_one_wins(&slugs, "ORGANIZATION_SLUG_ALREADY_TAKEN");
        let invitations: Vec<_> = round.map(|x| &x.contested_invitation).collect();
        exactly_one_wins(&invitations, "USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION");
    }

    // Every acceptance made a member, every invitation sent its email.
    let members = app
        .members("alice")
        .list_members(pb::ListMembersRequest {
            organization_id: shared.id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 1 + WRITERS * ROUNDS);
    app.wait_for_emails(WRITERS * ROUNDS + ROUNDS).await;
}

/// Writer `w`'s round `r`: invite its own guest, who accepts and at once
/// reads the organization (read-your-writes) and creates one of their own;
/// then the slug and the address every writer wants.
async fn one_round(app: &TestApp, shared: &str, w: usize, r: usize) -> Round {
    let guest = format!("guest-{w}-{r}");
    let mut own = Vec::new();
    let invited = app
        .members("alice")
        .create_invitation(invitation(shared, &format!("{guest}@example.com")))
        .await;
    match invited {
        Ok(reply) => {
            let id = reply.into_inner().invitation.expect("invitation").id;
            let accepted = app
                .members(&guest)
                .accept_invitation(pb::AcceptInvitationRequest { id })
                .await
                .map(drop);
            let joined = accepted.is_ok();
            own.push(accepted);
            if joined {
                own.push(
                    app.orgs(&guest)
                        .get_organization(pb::GetOrganizationRequest {
                            key: Some(pb::get_organization_request::Key::Id(shared.to_owned())),
                        })
                        .await
                        .map(drop),
                );
            }
        }
        Err(status) => own.push(Err(status)),
    }
    own.push(
        app.orgs(&guest)
            .create_organization(organization(&format!("own-{w}-{r}")))
            .await
            .map(drop),
    );
    let contested_slug = app
        .orgs(&guest)
        .create_organization(organization(&format!("contested-{r}")))
        .await
        .map(drop);
    let contested_invitation = app
        .members("alice")
        .create_invitation(invitation(shared, &format!("contested-{r}@example.com")))
        .await
        .map(drop);
    Round {
        own,
        contested_slug,
        contested_invitation,
    }
}

fn exactly_one_wins(results: &[&Result<(), Status>], loser_reason: &str) {
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert_eq!(reason(status), loser_reason, "{status:?}");
    }
}

fn invitation(organization: &str, email: &str) -> pb::CreateInvitationRequest {
    pb::CreateInvitationRequest {
        organization_id: organization.to_owned(),
        email: email.to_owned(),
        role: pb::Role::Member.into(),
        ..Default::default()
    }
}

fn organization(slug: &str) -> pb::CreateOrganizationRequest {
    pb::CreateOrganizationRequest {
        name: format!("Org {slug}"),
        slug: slug.to_owned(),
        ..Default::default()
    }
}
