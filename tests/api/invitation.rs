//! Invitations: create, email, answer, cancel, resend, expire, limits.

use std::time::Duration;

use roster::{auth::token::TokenRequest, pb};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, assert_invalid},
};

fn invitation_request(org: &str, email: &str, role: pb::Role) -> pb::CreateInvitationRequest {
    pb::CreateInvitationRequest {
        organization_id: org.to_owned(),
        email: email.to_owned(),
        role: role.into(),
        request_id: String::new(),
        delivery: pb::InvitationDelivery::Unspecified.into(),
    }
}

fn accept(id: &str) -> pb::AcceptInvitationRequest {
    pb::AcceptInvitationRequest { id: id.to_owned() }
}

/// A token for `sub` whose email is `email`, verified or not.
fn token_for(app: &TestApp, sub: &str, email: &str, verified: bool) -> String {
    app.token_with(TokenRequest {
        sub: sub.into(),
        email: Some(email.into()),
        name: Some(sub.into()),
        email_verified: verified,
        ttl: Duration::from_secs(600),
        ..TokenRequest::default()
    })
}

backend_tests!(
    an_invitation_is_pending_and_emailed_with_a_link,
    invitations_offer_admin_or_member_only,
    members_and_pending_invitees_cannot_be_invited_again,
    a_member_whose_token_pads_the_email_is_still_known_by_it,
    a_retried_invitation_returns_the_first_and_sends_one_email,
    admins_invite_and_members_cannot,
    accepting_makes_the_recipient_a_member_once,
    only_the_recipient_with_a_verified_email_may_answer,
    an_invitation_addressed_to_someone_else_answers_like_a_random_id,
    a_member_under_another_address_cannot_join_twice,
    every_answer_is_a_transition_from_pending,
    admins_cancel_and_members_cannot,
    resending_renews_the_expiry_and_sends_again,
    an_expired_invitation_is_expired_everywhere,
    resending_revives_an_expired_invitation,
    seats_count_members_and_pending_invitations,
    pending_invitations_have_their_own_limit,
    get_invitation_is_for_members_and_the_recipient,
    list_my_invitations_shows_what_is_addressed_to_me_across_organizations,
);

async fn an_invitation_is_pending_and_emailed_with_a_link(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.portal_url = "https://portal.example.com".into()
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    let before = std::time::SystemTime::now();
    let invitation = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "Bob@Example.com",
            pb::Role::Admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(invitation.state(), pb::InvitationState::Pending);
    assert_eq!(invitation.role(), pb::Role::Admin);
    assert_eq!(invitation.email, "Bob@Example.com");
    assert_eq!(invitation.organization_id, org.id);
    assert_eq!(invitation.organization_name, org.name);
    assert_eq!(invitation.organization_slug, "acme");
    assert_eq!(invitation.inviter_user_id, "alice");
    let expires = invitation.expire_time.unwrap().seconds;
    let week_later = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 7 * 24 * 3600;
    assert!((expires - week_later).abs() < 60, "expires in seven days");

    let emails = app.wait_for_emails(1).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, "Bob@Example.com");
    assert_eq!(
        emails[0].subject,
        format!("Alice invited you to join {}", org.name)
    );
    assert!(emails[0].body.contains(&format!(
        "https://portal.example.com/invitations/{}",
        invitation.id
    )));
    assert!(emails[0].body.contains("as an admin"));
    assert!(emails[0].body.contains("register first"));
}

async fn invitations_offer_admin_or_member_only(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let owner = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "bob@example.com",
            pb::Role::Owner,
        ))
        .await;
    assert_invalid(owner, "role");
    let none = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "bob@example.com",
            pb::Role::Unspecified,
        ))
        .await;
    assert_invalid(none, "role");
    let unknown = app
        .members("alice")
        .create_invitation(pb::CreateInvitationRequest {
            role: 42,
            ..invitation_request(&org.id, "bob@example.com", pb::Role::Member)
        })
        .await;
    assert_invalid(unknown, "role");
    assert!(app.emails().is_empty());
}

/// The address a member is known by is folded the one way every address
/// is (trimmed, lower case), whatever their token's `email` claim looks like.
async fn a_member_whose_token_pads_the_email_is_still_known_by_it(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "dave", pb::Role::Member).await;
    let padded = app.token_with(TokenRequest {
        sub: "dave".into(),
        email: Some("  Dave@Example.com ".into()),
        name: Some("Dave".into()),
        email_verified: true,
        ttl: Duration::from_secs(600),
        ..TokenRequest::default()
    });
    app.members_with_token(Some(&padded))
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .expect("the recipient accepts");
    let again = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "dave@example.com",
            pb::Role::Admin,
        ))
        .await;
    assert_error(
        again,
        Code::AlreadyExists,
        "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION",
    );
}

async fn members_and_pending_invitees_cannot_be_invited_again(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let member = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "BOB@example.com",
            pb::Role::Admin,
        ))
        .await;
    assert_error(
        member,
        Code::AlreadyExists,
        "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION",
    );

    app.invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let twice = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "Carol@Example.COM",
            pb::Role::Admin,
        ))
        .await;
    assert_error(
        twice,
        Code::AlreadyExists,
        "USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION",
    );
    let listed = app
        .members("alice")
        .list_invitations(pb::ListInvitationsRequest {
            organization_id: org.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.invitations.len(), 2, "bob's (accepted) and carol's");
}

async fn a_retried_invitation_returns_the_first_and_sends_one_email(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let request = pb::CreateInvitationRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        ..invitation_request(&org.id, "bob@example.com", pb::Role::Member)
    };
    let first = app
        .members("alice")
        .create_invitation(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = app
        .members("alice")
        .create_invitation(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    // The email is queued in the transaction that creates the invitation:
    // the retry queued none.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM mail_outbox").await, 1);
    // And delivered once: a later email arrives after it, alone.
    app.wait_for_emails(1).await;
    app.invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let delivered: Vec<String> = app
        .wait_for_emails(2)
        .await
        .into_iter()
        .map(|email| email.to)
        .collect();
    assert_eq!(delivered, ["bob@example.com", "carol@example.com"]);
}

async fn admins_invite_and_members_cannot(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    app.invite("bob", &org.id, "dave", pb::Role::Admin).await;
    let by_member = app
        .members("carol")
        .create_invitation(invitation_request(
            &org.id,
            "erin@example.com",
            pb::Role::Member,
        ))
        .await;
    assert_error(by_member, Code::PermissionDenied, "INSUFFICIENT_PERMISSION");
    let by_outsider = app
        .members("mallory")
        .create_invitation(invitation_request(
            &org.id,
            "erin@example.com",
            pb::Role::Member,
        ))
        .await;
    assert_error(by_outsider, Code::NotFound, "ORGANIZATION_NOT_FOUND");
}

async fn accepting_makes_the_recipient_a_member_once(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Admin).await;
    // The address matches case-insensitively.
    let token = token_for(&app, "bob", "BOB@example.COM", true);
    let reply = app
        .members_with_token(Some(&token))
        .accept_invitation(accept(&invitation.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.invitation.unwrap().state(),
        pb::InvitationState::Accepted
    );
    let member = reply.member.unwrap();
    assert_eq!(
        (member.user_id.as_str(), member.role()),
        ("bob", pb::Role::Admin)
    );
    // Accepting sets the active organization when there was none.
    let active = app
        .orgs("bob")
        .get_active_organization(pb::GetActiveOrganizationRequest {})
        .await
        .unwrap();
    assert_eq!(active.into_inner().organization.unwrap().id, org.id);

    let again = app
        .members("bob")
        .accept_invitation(accept(&invitation.id))
        .await;
    assert_error(again, Code::FailedPrecondition, "INVITATION_NOT_PENDING");
    let members = app
        .members("alice")
        .list_members(pb::ListMembersRequest {
            organization_id: org.id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(members.into_inner().members.len(), 2);
}

async fn only_the_recipient_with_a_verified_email_may_answer(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let stranger = app
        .members("mallory")
        .accept_invitation(accept(&invitation.id))
        .await;
    assert_error(stranger, Code::NotFound, "INVITATION_NOT_FOUND");
    let reject = app
        .members("mallory")
        .reject_invitation(pb::RejectInvitationRequest {
            id: invitation.id.clone(),
        })
        .await;
    assert_error(reject, Code::NotFound, "INVITATION_NOT_FOUND");
    let no_email = app.token_with(TokenRequest {
        sub: "bob".into(),
        ttl: Duration::from_secs(600),
        ..TokenRequest::default()
    });
    // Without a verified email no invitation can be answered, whatever
    // the id: the caller learns that, and nothing about the invitation.
    let without = app
        .members_with_token(Some(&no_email))
        .accept_invitation(accept(&invitation.id))
        .await;
    assert_error(
        without,
        Code::FailedPrecondition,
        "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION",
    );

    let unverified = token_for(&app, "bob", "bob@example.com", false);
    let accept_unverified = app
        .members_with_token(Some(&unverified))
        .accept_invitation(accept(&invitation.id))
        .await;
    assert_error(
        accept_unverified,
        Code::FailedPrecondition,
        "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION",
    );
    let reject_unverified = app
        .members_with_token(Some(&unverified))
        .reject_invitation(pb::RejectInvitationRequest {
            id: invitation.id.clone(),
        })
        .await;
    assert_error(
        reject_unverified,
        Code::FailedPrecondition,
        "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION",
    );
    // Nothing changed: bob can still accept.
    app.members("bob")
        .accept_invitation(accept(&invitation.id))
        .await
        .unwrap();
}

/// The code, reason, message and details of a failed call: everything a
/// caller can tell two failures apart by.
fn failure<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String, Vec<u8>) {
    let status = result.expect_err("the call fails");
    (
        status.code(),
        status.message().to_owned(),
        status.details().to_vec(),
    )
}

async fn an_invitation_addressed_to_someone_else_answers_like_a_random_id(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let random = uuid::Uuid::now_v7().to_string();
    let mut mallory = app.members("mallory");

    let existing = failure(mallory.accept_invitation(accept(&invitation.id)).await);
    let missing = failure(mallory.accept_invitation(accept(&random)).await);
    assert_eq!(existing.0, Code::NotFound);
    assert_eq!(existing, missing, "AcceptInvitation is an existence oracle");

    let reject = |id: &str| pb::RejectInvitationRequest { id: id.to_owned() };
    let existing = failure(mallory.reject_invitation(reject(&invitation.id)).await);
    let missing = failure(mallory.reject_invitation(reject(&random)).await);
    assert_eq!(existing.0, Code::NotFound);
    assert_eq!(existing, missing, "RejectInvitation is an existence oracle");

    // A token that claims bob's address without having verified it: the
    // same answer for bob's invitation as for a random id (before the
    // email was checked first, bob's invitation answered "verify your
    // email" and a random id "not found").
    let claimant = token_for(&app, "mallory", "bob@example.com", false);
    let mut claimant = app.members_with_token(Some(&claimant));
    let existing = failure(claimant.accept_invitation(accept(&invitation.id)).await);
    let missing = failure(claimant.accept_invitation(accept(&random)).await);
    assert_eq!(existing.0, Code::FailedPrecondition);
    assert_eq!(existing, missing, "AcceptInvitation is an existence oracle");
    let existing = failure(claimant.reject_invitation(reject(&invitation.id)).await);
    let missing = failure(claimant.reject_invitation(reject(&random)).await);
    assert_eq!(existing, missing, "RejectInvitation is an existence oracle");

    // Nothing changed: bob can still accept.
    app.members("bob")
        .accept_invitation(accept(&invitation.id))
        .await
        .expect("the recipient accepts");
}

async fn a_member_under_another_address_cannot_join_twice(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let invitation = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "bob.work@example.com",
            pb::Role::Admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let token = token_for(&app, "bob", "bob.work@example.com", true);
    let twice = app
        .members_with_token(Some(&token))
        .accept_invitation(accept(&invitation.id))
        .await;
    assert_error(
        twice,
        Code::AlreadyExists,
        "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION",
    );
    assert_eq!(
        app.role_of("alice", &org.id, "bob").await,
        Some(pb::Role::Member)
    );
    let still = app
        .members("alice")
        .get_invitation(pb::GetInvitationRequest { id: invitation.id })
        .await
        .unwrap();
    assert_eq!(
        still.into_inner().invitation.unwrap().state(),
        pb::InvitationState::Pending
    );
}

async fn every_answer_is_a_transition_from_pending(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let rejected = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let reply = app
        .members("bob")
        .reject_invitation(pb::RejectInvitationRequest {
            id: rejected.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        reply.into_inner().invitation.unwrap().state(),
        pb::InvitationState::Rejected
    );
    assert_error(
        app.members("bob")
            .accept_invitation(accept(&rejected.id))
            .await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );
    assert_error(
        app.members("bob")
            .reject_invitation(pb::RejectInvitationRequest {
                id: rejected.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );
    assert_error(
        app.members("alice")
            .cancel_invitation(pb::CancelInvitationRequest {
                id: rejected.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );
    assert_error(
        app.members("alice")
            .resend_invitation(pb::ResendInvitationRequest {
                id: rejected.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );

    let cancelled = app
        .invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let reply = app
        .members("alice")
        .cancel_invitation(pb::CancelInvitationRequest {
            id: cancelled.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        reply.into_inner().invitation.unwrap().state(),
        pb::InvitationState::Cancelled
    );
    assert_error(
        app.members("carol")
            .accept_invitation(accept(&cancelled.id))
            .await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );
    assert_error(
        app.members("alice")
            .cancel_invitation(pb::CancelInvitationRequest { id: cancelled.id })
            .await,
        Code::FailedPrecondition,
        "INVITATION_NOT_PENDING",
    );
    assert_eq!(app.role_of("alice", &org.id, "carol").await, None);
}

async fn admins_cancel_and_members_cannot(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let invitation = app.invite("alice", &org.id, "dave", pb::Role::Member).await;
    let by_member = app
        .members("carol")
        .cancel_invitation(pb::CancelInvitationRequest {
            id: invitation.id.clone(),
        })
        .await;
    assert_error(by_member, Code::PermissionDenied, "INSUFFICIENT_PERMISSION");
    let by_outsider = app
        .members("mallory")
        .cancel_invitation(pb::CancelInvitationRequest {
            id: invitation.id.clone(),
        })
        .await;
    assert_error(by_outsider, Code::NotFound, "INVITATION_NOT_FOUND");
    app.members("bob")
        .cancel_invitation(pb::CancelInvitationRequest { id: invitation.id })
        .await
        .unwrap();
}

async fn resending_renews_the_expiry_and_sends_again(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Admin)
        .await;
    let invitation = app
        .invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resent = app.resend("bob", &invitation.id).await;
    assert!(resent.expire_time.unwrap().seconds > invitation.expire_time.unwrap().seconds);
    assert_eq!(resent.state(), pb::InvitationState::Pending);
    assert_eq!(resent.inviter_user_id, "bob");
    let emails = app.wait_for_emails(3).await;
    assert_eq!(emails.len(), 3, "bob's invitation, carol's, carol's again");
    assert_eq!(emails[2].to, "carol@example.com");
    assert!(emails[2].subject.starts_with("Bob invited you"));
    let by_member = app
        .members("carol")
        .resend_invitation(pb::ResendInvitationRequest { id: invitation.id })
        .await;
    assert_error(by_member, Code::NotFound, "INVITATION_NOT_FOUND");
}

async fn an_expired_invitation_is_expired_everywhere(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.invitation_ttl = Duration::from_secs(1);
        c.max_pending_invitations_per_organization = 1;
    })
    .await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    assert_eq!(invitation.state(), pb::InvitationState::Pending);
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let read = app
        .members("bob")
        .get_invitation(pb::GetInvitationRequest {
            id: invitation.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        read.into_inner().invitation.unwrap().state(),
        pb::InvitationState::Expired
    );
    let list = |state: pb::InvitationState| {
        let mut client = app.members("alice");
        let request = pb::ListInvitationsRequest {
            organization_id: org.id.clone(),
            state: state.into(),
            ..Default::default()
        };
        async move {
            client
                .list_invitations(request)
                .await
                .unwrap()
                .into_inner()
                .invitations
        }
    };
    assert!(list(pb::InvitationState::Pending).await.is_empty());
    let expired = list(pb::InvitationState::Expired).await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].state(), pb::InvitationState::Expired);
    let mine = app
        .members("bob")
        .list_my_invitations(pb::ListMyInvitationsRequest {
            state: pb::InvitationState::Expired.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.into_inner().invitations.len(), 1);

    assert_error(
        app.members("bob")
            .accept_invitation(accept(&invitation.id))
            .await,
        Code::FailedPrecondition,
        "INVITATION_EXPIRED",
    );
    assert_error(
        app.members("bob")
            .reject_invitation(pb::RejectInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "INVITATION_EXPIRED",
    );
    assert_error(
        app.members("alice")
            .cancel_invitation(pb::CancelInvitationRequest {
                id: invitation.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "INVITATION_EXPIRED",
    );

    // It no longer counts against the limit of one pending invitation,
    // and the address may be invited afresh.
    let fresh = app.invite("alice", &org.id, "bob", pb::Role::Admin).await;
    assert_eq!(fresh.state(), pb::InvitationState::Pending);
    app.members("bob")
        .accept_invitation(accept(&fresh.id))
        .await
        .unwrap();
    assert_eq!(
        app.role_of("alice", &org.id, "bob").await,
        Some(pb::Role::Admin)
    );
}

async fn resending_revives_an_expired_invitation(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.invitation_ttl = Duration::from_secs(1)).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let revived = app
        .members("alice")
        .resend_invitation(pb::ResendInvitationRequest {
            id: invitation.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        revived.into_inner().invitation.unwrap().state(),
        pb::InvitationState::Pending
    );
    app.members("bob")
        .accept_invitation(accept(&invitation.id))
        .await
        .unwrap();
}

async fn seats_count_members_and_pending_invitations(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.max_members_per_organization = 3).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "bob", pb::Role::Member)
        .await;
    let carol = app
        .invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let full = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "dave@example.com",
            pb::Role::Member,
        ))
        .await;
    assert_error(
        full,
        Code::ResourceExhausted,
        "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED",
    );
    // Accepting takes the seat the invitation held.
    app.members("carol")
        .accept_invitation(accept(&carol.id))
        .await
        .unwrap();
    let still_full = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "dave@example.com",
            pb::Role::Member,
        ))
        .await;
    assert_error(
        still_full,
        Code::ResourceExhausted,
        "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED",
    );
    // A seat frees up when someone leaves.
    app.members("carol")
        .leave_organization(pb::LeaveOrganizationRequest {
            organization_id: org.id.clone(),
        })
        .await
        .unwrap();
    app.invite("alice", &org.id, "dave", pb::Role::Member).await;
}

async fn pending_invitations_have_their_own_limit(backend: Backend) {
    let app =
        TestApp::spawn_with(&backend, |c| c.max_pending_invitations_per_organization = 2).await;
    let org = app.create_org("alice", "acme").await;
    app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let carol = app
        .invite("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let third = app
        .members("alice")
        .create_invitation(invitation_request(
            &org.id,
            "dave@example.com",
            pb::Role::Member,
        ))
        .await;
    assert_error(third, Code::ResourceExhausted, "INVITATION_LIMIT_REACHED");
    app.members("alice")
        .cancel_invitation(pb::CancelInvitationRequest { id: carol.id })
        .await
        .unwrap();
    app.invite("alice", &org.id, "dave", pb::Role::Member).await;
}

async fn get_invitation_is_for_members_and_the_recipient(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "carol", pb::Role::Member)
        .await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    for reader in ["alice", "carol", "bob"] {
        let read = app
            .members(reader)
            .get_invitation(pb::GetInvitationRequest {
                id: invitation.id.clone(),
            })
            .await
            .unwrap();
        assert_eq!(
            read.into_inner().invitation.unwrap().id,
            invitation.id,
            "{reader}"
        );
    }
    let outsider = app
        .members("mallory")
        .get_invitation(pb::GetInvitationRequest {
            id: invitation.id.clone(),
        })
        .await;
    assert_error(outsider, Code::NotFound, "INVITATION_NOT_FOUND");
    let unverified = token_for(&app, "bob", "bob@example.com", false);
    let bob_unverified = app
        .members_with_token(Some(&unverified))
        .get_invitation(pb::GetInvitationRequest { id: invitation.id })
        .await;
    assert_error(
        bob_unverified,
        Code::FailedPrecondition,
        "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION",
    );
    let missing = app
        .members("alice")
        .get_invitation(pb::GetInvitationRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await;
    assert_error(missing, Code::NotFound, "INVITATION_NOT_FOUND");
}

async fn list_my_invitations_shows_what_is_addressed_to_me_across_organizations(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let acme = app.create_org("alice", "acme").await;
    let globex = app.create_org("carol", "globex").await;
    let first = app.invite("alice", &acme.id, "bob", pb::Role::Member).await;
    let second = app
        .invite("carol", &globex.id, "bob", pb::Role::Admin)
        .await;
    app.invite("alice", &acme.id, "dave", pb::Role::Member)
        .await;
    app.members("bob")
        .reject_invitation(pb::RejectInvitationRequest {
            id: second.id.clone(),
        })
        .await
        .unwrap();

    let all = app
        .members("bob")
        .list_my_invitations(pb::ListMyInvitationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = all.invitations.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ids, [first.id.clone(), second.id.clone()]);
    assert_eq!(all.invitations[1].organization_name, globex.name);
    let pending = app
        .members("bob")
        .list_my_invitations(pb::ListMyInvitationsRequest {
            state: pb::InvitationState::Pending.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        pending
            .invitations
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>(),
        [first.id]
    );
    let paged = app
        .members("bob")
        .list_my_invitations(pb::ListMyInvitationsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paged.invitations.len(), 1);
    assert!(!paged.next_page_token.is_empty());

    let unverified = token_for(&app, "bob", "bob@example.com", false);
    let refused = app
        .members_with_token(Some(&unverified))
        .list_my_invitations(pb::ListMyInvitationsRequest::default())
        .await;
    assert_error(
        refused,
        Code::FailedPrecondition,
        "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION",
    );
}
