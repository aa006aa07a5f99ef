//! Invitation links the portal serves: the configured link template, who
//! sees an invitation's link, and invitations delivered by link only.

use std::time::Duration;

use roster::pb;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_invalid},
};

const TEMPLATE: &str = "https://portal.example.com/auth/accept-invitation?invitationId={id}";

fn link_for(id: &str) -> String {
    TEMPLATE.replace("{id}", id)
}

backend_tests!(
    the_email_and_the_reply_carry_the_templated_link,
    the_link_is_shown_to_managers_and_the_recipient_only,
    link_only_invitations_send_nothing_now_or_on_resend,
    the_delivery_is_recorded_in_the_change_log,
    unknown_deliveries_are_refused,
);

async fn spawn(backend: &Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.invitation_link_template = Some(TEMPLATE.into());
        c.mail_poll_interval = Duration::from_millis(50);
    })
    .await
}

fn request(org: &str, user: &str, delivery: pb::InvitationDelivery) -> pb::CreateInvitationRequest {
    pb::CreateInvitationRequest {
        organization_id: org.to_owned(),
        email: format!("{user}@example.com"),
        role: pb::Role::Member.into(),
        request_id: String::new(),
        delivery: delivery.into(),
    }
}

/// Invites `user` to `org` as alice, delivered as `delivery`.
async fn invite(
    app: &TestApp,
    org: &str,
    user: &str,
    delivery: pb::InvitationDelivery,
) -> pb::Invitation {
    app.members("alice")
        .create_invitation(request(org, user, delivery))
        .await
        .expect("create invitation")
        .into_inner()
        .invitation
        .expect("invitation in reply")
}

async fn the_email_and_the_reply_carry_the_templated_link(backend: Backend) {
    let app = spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = invite(&app, &org.id, "bob", pb::InvitationDelivery::Unspecified).await;
    assert_eq!(invitation.link, link_for(&invitation.id));
    assert_eq!(invitation.delivery(), pb::InvitationDelivery::Email);
    let emails = app.wait_for_emails(1).await;
    assert!(
        emails[0].body.contains(&link_for(&invitation.id)),
        "{}",
        emails[0].body
    );
    assert!(
        !emails[0].body.contains("/invitations/"),
        "not today's link"
    );
}

async fn the_link_is_shown_to_managers_and_the_recipient_only(backend: Backend) {
    let app = spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    app.add_member("alice", &org.id, "adam", pb::Role::Admin)
        .await;
    app.add_member("alice", &org.id, "mia", pb::Role::Member)
        .await;
    let invitation = app.invite("alice", &org.id, "bob", pb::Role::Member).await;
    let link = link_for(&invitation.id);
    let get = |user: &str| {
        let mut client = app.members(user);
        let id = invitation.id.clone();
        async move {
            client
                .get_invitation(pb::GetInvitationRequest { id })
                .await
                .unwrap()
                .into_inner()
                .invitation
                .unwrap()
                .link
        }
    };
    assert_eq!(get("alice").await, link, "owner");
    assert_eq!(get("adam").await, link, "admin");
    assert_eq!(get("bob").await, link, "recipient");
    assert_eq!(
        get("mia").await,
        "",
        "a member sees the invitation, not its link"
    );
    let listed = |user: &str| {
        let mut client = app.members(user);
        let organization_id = org.id.clone();
        async move {
            client
                .list_invitations(pb::ListInvitationsRequest {
                    organization_id,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .invitations
                .into_iter()
                .map(|i| (i.state(), i.link))
                .collect::<Vec<_>>()
        }
    };
    // Adam's and Mia's own (accepted) invitations are listed too.
    let pending = |listed: Vec<(pb::InvitationState, String)>| {
        listed
            .into_iter()
            .filter(|(state, _)| *state == pb::InvitationState::Pending)
            .map(|(_, link)| link)
            .collect::<Vec<_>>()
    };
    assert_eq!(pending(listed("adam").await), vec![link.clone()]);
    assert!(listed("mia").await.iter().all(|(_, link)| link.is_empty()));
    assert_eq!(pending(listed("mia").await), [String::new()]);
    let mine = app
        .members("bob")
        .list_my_invitations(pb::ListMyInvitationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(mine[0].link, link);
}

async fn link_only_invitations_send_nothing_now_or_on_resend(backend: Backend) {
    let app = spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let invitation = invite(&app, &org.id, "bob", pb::InvitationDelivery::LinkOnly).await;
    assert_eq!(invitation.link, link_for(&invitation.id));
    assert_eq!(invitation.delivery(), pb::InvitationDelivery::LinkOnly);
    let resent = app.resend("alice", &invitation.id).await;
    assert_eq!(resent.link, invitation.link);
    assert_eq!(resent.delivery(), pb::InvitationDelivery::LinkOnly);
    // An emailed invitation afterwards is sent: once it is, the dispatcher
    // has passed over everything before it.
    app.members("alice")
        .create_invitation(request(&org.id, "carol", pb::InvitationDelivery::Email))
        .await
        .unwrap();
    let emails = app.wait_for_emails(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let emails_now = app.emails();
    assert_eq!(emails_now.len(), 1, "{emails_now:?}");
    assert_eq!(emails[0].to, "carol@example.com");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM mail_outbox").await,
        1,
        "no outbox row for the link-only invitation"
    );
    // And Bob can still accept it through the link's id.
    app.members("bob")
        .accept_invitation(pb::AcceptInvitationRequest { id: invitation.id })
        .await
        .unwrap();
}

async fn the_delivery_is_recorded_in_the_change_log(backend: Backend) {
    let app = spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    for (user, delivery) in [
        ("bob", pb::InvitationDelivery::LinkOnly),
        ("carol", pb::InvitationDelivery::Unspecified),
    ] {
        app.members("alice")
            .create_invitation(request(&org.id, user, delivery))
            .await
            .unwrap();
    }
    let events = app
        .events("alice")
        .list_audit_events(pb::ListAuditEventsRequest {
            organization_id: org.id.clone(),
            page_size: 20,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let delivery_of = |email: &str| {
        events
            .iter()
            .find(|e| e.r#type == "invitation.created" && e.subject_email == email)
            .and_then(|e| e.changes.iter().find(|c| c.field == "delivery"))
            .map(|c| c.new_value.clone())
    };
    assert_eq!(delivery_of("bob@example.com").as_deref(), Some("link_only"));
    assert_eq!(delivery_of("carol@example.com").as_deref(), Some("email"));
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM invitations WHERE delivery = 'link_only'")
            .await,
        1
    );
}

async fn unknown_deliveries_are_refused(backend: Backend) {
    let app = spawn(&backend).await;
    let org = app.create_org("alice", "acme").await;
    let mut bad = request(&org.id, "bob", pb::InvitationDelivery::Email);
    bad.delivery = 7;
    assert_invalid(
        app.members("alice").create_invitation(bad).await,
        "delivery",
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM invitations").await, 0);
}
