//! Invitations: create, read, list, answer, cancel, resend.
//!
//! Every state change is a guarded transition out of `pending` done by one
//! `UPDATE ... WHERE state = 'pending' AND expires_at > now`, under the
//! organization's lock; acceptance inserts the membership in the same
//! transaction, where the unique index forbids a second one.

use sea_orm::DatabaseTransaction;
use tracing::instrument;
use uuid::Uuid;

use super::{OrganizationWrite, Roster, Write, expiry, now};
use crate::{
    auth::{
        Caller,
        policy::{Action, Standing, authorize_recipient, may_see_invitation_link},
    },
    domain::{
        Error, Reason, Resource,
        event::{EventCursor, Joining, NewEvent},
        ids::{InvitationId, InvitationRef, OrganizationId, UserId},
        input::Email,
        model::{
            InvitableRole, Invitation, InvitationDelivery, InvitationState, Member,
            MembershipSource, Organization,
        },
        page::{Page, PageRequest},
        rules::{self, SeatUsage},
    },
    mail,
    store::{
        self,
        invitation::{Addressee, Guard, InvitationRow},
    },
};

/// A validated listing of invitations.
#[derive(Debug)]
pub struct InvitationFilter {
    pub state: Option<InvitationState>,
    pub page: PageRequest,
}

impl Roster {
    /// Invites `email` to the organization as `role` (admin or member) and,
    /// unless `delivery` is link-only, emails them the link. A retry with
    /// the same `request_id` returns the first invitation.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization, role = role.role().as_str()))]
    pub async fn create_invitation(
        &self,
        caller: &Caller,
        organization: OrganizationId,
        email: Email,
        role: InvitableRole,
        request_id: Option<Uuid>,
        delivery: InvitationDelivery,
    ) -> Result<Invitation, Error> {
        let role = role.role();
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::CreateInvitation, organization)
            .await?;
        if let Some(request_id) = request_id
            && let Some(existing) =
                store::invitation::find_by_request(&txn, organization, &caller.user_id, request_id)
                    .await?
        {
            return Ok(self.with_link(existing, true));
        }
        let now = now();
        // A lapsed invitation no longer holds the address: store its expiry
        // so the one-pending-invitation index lets the new one in.
        let lapsed =
            store::invitation::expire_lapsed_for_email(&txn, organization, email.folded(), now)
                .await?;
        for (lapsed_id, lapsed_email) in lapsed {
            txn.record(NewEvent::invitation_expired(&org, lapsed_id, &lapsed_email))
                .await?;
        }
        if store::membership::email_is_member(&txn, organization, email.folded()).await? {
            return Err(Error::AlreadyExists(Reason::AlreadyMember));
        }
        let id = InvitationId::new();
        let expires_at = expiry(now, self.settings.invitation_ttl);
        store::invitation::insert(
            &txn,
            InvitationRow {
                id,
                organization,
                email: &email,
                role,
                state: InvitationState::Pending,
                inviter: &caller.user_id,
                request_id,
                expires_at,
                delivery,
                created_at: now,
                source_id: None,
            },
        )
        .await?;
        // Counted after the insert (and under the organization's lock), so
        // the new invitation is included and a duplicate was reported first.
        self.check_seats(&txn, &org).await?;
        // As stored: no need to read it back.
        let invitation = Invitation {
            id,
            organization_id: organization,
            organization_name: org.name.clone(),
            organization_slug: org.slug.clone(),
            email: email.as_str().to_owned(),
            role,
            stored_state: InvitationState::Pending,
            inviter_id: caller.user_id.clone(),
            expires_at,
            created_at: now,
            updated_at: now,
            delivery,
            source_id: None,
            link: None,
        };
        let invitation = self.with_link(invitation, true);
        let event = NewEvent::invitation_created(&org, &caller.user_id, &invitation);
        self.queue_invitation_email(&txn, caller, &invitation, &org, event.id)
            .await?;
        txn.record(event).await?;
        self.commit(txn).await?;
        Ok(invitation)
    }

    /// `invitation` with its link filled in if `shown` (see
    /// [`may_see_invitation_link`]).
    fn with_link(&self, mut invitation: Invitation, shown: bool) -> Invitation {
        invitation.link = shown.then(|| self.settings.invitation_links.link(invitation.id));
        invitation
    }

    /// Pending invitations within their limit, and members plus pending
    /// invitations within the seats, the organization's own limits where
    /// it has them (`org` as read under its lock).
    pub(super) async fn check_seats(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        org: &Organization,
    ) -> Result<(), Error> {
        let (members, pending) = store::organization::seat_usage(txn, org.id, now()).await?;
        let usage = SeatUsage { members, pending };
        rules::check_seats(&self.settings.limits, &org.limits, usage)
    }

    /// Puts the invitation email in the outbox, in the invitation's
    /// transaction: it is sent if and only if the invitation commits. A
    /// link-only invitation gets none: no outbox row, no email.
    async fn queue_invitation_email(
        &self,
        txn: &DatabaseTransaction,
        caller: &Caller,
        invitation: &Invitation,
        org: &Organization,
        event_id: Uuid,
    ) -> Result<(), Error> {
        match invitation.delivery {
            InvitationDelivery::Email => {}
            InvitationDelivery::LinkOnly => return Ok(()),
        }
        let inviter = caller
            .name
            .clone()
            .or_else(|| caller.email.clone())
            .unwrap_or_else(|| caller.user_id.to_string());
        let mail_id = Uuid::now_v7();
        let link = self.settings.invitation_links.link(invitation.id);
        let mut message = mail::invitation_email(invitation, &org.name, &inviter, &link);
        message.message_id = format!("{mail_id}@roster.invitations");
        store::mail::enqueue(txn, mail_id, event_id, invitation.id.0, &message, now()).await
    }

    /// roster's id of the invitation `named`: as given, or found by an
    /// imported invitation's former id. An unknown one is NOT_FOUND, the
    /// answer for any invitation the caller may not see.
    pub async fn invitation_id(&self, named: InvitationRef) -> Result<InvitationId, Error> {
        match named {
            InvitationRef::Id(id) => Ok(id),
            InvitationRef::Source(source) => {
                store::invitation::find_by_source(self.store.db(), &source)
                    .await?
                    .ok_or(Error::NotFound(Resource::Invitation))
            }
        }
    }

    /// An invitation, for members who may read invitations and for its recipient.
    #[instrument(skip_all, fields(user_id = %caller.user_id, invitation_id = %id))]
    pub async fn get_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<Invitation, Error> {
        let found = store::invitation::find(self.store.db(), id).await?;
        let (invitation, standing) = authorize_recipient(caller, Action::GetInvitation, found)?;
        if standing == Standing::Recipient {
            return Ok(self.with_link(invitation, true));
        }
        let role = self
            .authorize_read(caller, Action::GetInvitation, invitation.organization_id)
            .await
            .map_err(hide_organization)?;
        Ok(self.with_link(invitation, may_see_invitation_link(role, false)))
    }

    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization))]
    pub async fn list_invitations(
        &self,
        caller: &Caller,
        organization: OrganizationId,
        filter: InvitationFilter,
    ) -> Result<Page<Invitation>, Error> {
        let role = self
            .authorize_read(caller, Action::ListInvitations, organization)
            .await?;
        let shown = may_see_invitation_link(role, false);
        let rows = store::invitation::list(
            self.store.db(),
            Addressee::Organization(organization),
            filter.state,
            &filter.page,
            now(),
        )
        .await?;
        Ok(filter
            .page
            .finish(rows, |i| i.id.0)
            .map(|i| self.with_link(i, shown)))
    }

    /// Invitations addressed to the caller's verified email.
    #[instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn list_my_invitations(
        &self,
        caller: &Caller,
        filter: InvitationFilter,
    ) -> Result<Page<Invitation>, Error> {
        let email = caller.verified_email()?;
        let rows = store::invitation::list(
            self.store.db(),
            Addressee::Email(&email),
            filter.state,
            &filter.page,
            now(),
        )
        .await?;
        Ok(filter
            .page
            .finish(rows, |i| i.id.0)
            .map(|i| self.with_link(i, true)))
    }

    /// The recipient joins with the invitation's role.
    #[instrument(skip_all, fields(user_id = %caller.user_id, invitation_id = %id))]
    pub async fn accept_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<(Invitation, Member, EventCursor), Error> {
        let invitation = self
            .recipient_invitation(caller, Action::AcceptInvitation, id)
            .await?;
        let organization = invitation.organization_id;
        let txn = self.begin_write(caller).await?;
        let org = store::organization::lock(&txn, organization)
            .await?
            .ok_or(Error::NotFound(Resource::Invitation))?;
        check_answerable(&org)?;
        let now = now();
        answer(&txn, id, InvitationState::Accepted, now).await?;
        store::user::upsert_profile(&txn, &caller.profile(), now).await?;
        let source = MembershipSource::Invitation;
        store::membership::insert(
            &txn,
            organization,
            &caller.user_id,
            invitation.role,
            source,
            now,
        )
        .await?;
        // The invitation's seat becomes the member's seat; this only bites
        // if the limit was lowered since the invitation was sent.
        self.check_seats(&txn, &org).await?;
        if store::user::active_organization(&txn, &caller.user_id)
            .await?
            .is_none()
        {
            store::user::set_active_organization(&txn, &caller.user_id, Some(organization)).await?;
        }
        let member = store::membership::find(&txn, organization, &caller.user_id)
            .await?
            .ok_or(Error::NotFound(Resource::Member))?;
        let invitation = store::invitation::find(&txn, id)
            .await?
            .ok_or(Error::NotFound(Resource::Invitation))?;
        let user = &caller.user_id;
        txn.record(NewEvent::invitation_accepted(&org, user, &invitation))
            .await?;
        let revision = txn
            .record(NewEvent::member_added(
                &org,
                user,
                user,
                member.role,
                Joining::Invitation(&invitation),
            ))
            .await?;
        self.commit(txn).await?;
        Ok((self.with_link(invitation, true), member, revision))
    }

    /// The recipient declines.
    #[instrument(skip_all, fields(user_id = %caller.user_id, invitation_id = %id))]
    pub async fn reject_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<Invitation, Error> {
        let invitation = self
            .recipient_invitation(caller, Action::RejectInvitation, id)
            .await?;
        let txn = self.begin_write(caller).await?;
        let org = store::organization::lock(&txn, invitation.organization_id)
            .await?
            .ok_or(Error::NotFound(Resource::Invitation))?;
        check_answerable(&org)?;
        let by = &caller.user_id;
        let to = InvitationState::Rejected;
        self.settle(txn, &org, id, by, to, NewEvent::invitation_rejected)
            .await
    }

    /// An owner or admin withdraws a pending invitation.
    #[instrument(skip_all, fields(user_id = %caller.user_id, invitation_id = %id))]
    pub async fn cancel_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<Invitation, Error> {
        let organization = self.invitation_organization(id).await?;
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::CancelInvitation, organization)
            .await
            .map_err(hide_organization)?;
        let by = &caller.user_id;
        let to = InvitationState::Cancelled;
        self.settle(txn, &org, id, by, to, NewEvent::invitation_cancelled)
            .await
    }

    /// Moves the invitation out of pending to `to`, by `by`, records the
    /// `event` that says so and commits; the invitation as it then stands.
    async fn settle(
        &self,
        txn: Write,
        org: &Organization,
        id: InvitationId,
        by: &UserId,
        to: InvitationState,
        event: Settled,
    ) -> Result<Invitation, Error> {
        answer(&txn, id, to, now()).await?;
        let invitation = store::invitation::find(&txn, id)
            .await?
            .ok_or(Error::NotFound(Resource::Invitation))?;
        txn.record(event(org, by, &invitation)).await?;
        self.commit(txn).await?;
        Ok(self.with_link(invitation, true))
    }

    /// Sends the email again (unless the invitation is link-only) with a
    /// fresh expiry. An expired invitation is revived (and counts against
    /// the limits again); an answered or cancelled one cannot be resent.
    #[instrument(skip_all, fields(user_id = %caller.user_id, invitation_id = %id))]
    pub async fn resend_invitation(
        &self,
        caller: &Caller,
        id: InvitationId,
    ) -> Result<Invitation, Error> {
        let organization = self.invitation_organization(id).await?;
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::ResendInvitation, organization)
            .await
            .map_err(hide_organization)?;
        let now = now();
        let before = store::invitation::find(&txn, id)
            .await?
            .ok_or(Error::NotFound(Resource::Invitation))?;
        let reviving = match before.state(now) {
            InvitationState::Pending => false,
            InvitationState::Expired => true,
            InvitationState::Accepted | InvitationState::Rejected | InvitationState::Cancelled => {
                return Err(Error::FailedPrecondition(Reason::InvitationNotPending));
            }
        };
        let expires_at = expiry(now, self.settings.invitation_ttl);
        if !store::invitation::renew(&txn, id, &caller.user_id, expires_at, now).await? {
            return Err(Error::FailedPrecondition(Reason::InvitationNotPending));
        }
        if reviving {
            self.check_seats(&txn, &org).await?;
        }
        let invitation = store::invitation::find(&txn, id)
            .await?
            .ok_or(Error::NotFound(Resource::Invitation))?;
        let event =
            NewEvent::invitation_resent(&org, &caller.user_id, &before, &invitation, reviving);
        self.queue_invitation_email(&txn, caller, &invitation, &org, event.id)
            .await?;
        txn.record(event).await?;
        self.commit(txn).await?;
        Ok(self.with_link(invitation, true))
    }

    /// The invitation, if the caller is its recipient with a verified email
    /// (see [`authorize_recipient`]).
    async fn recipient_invitation(
        &self,
        caller: &Caller,
        action: Action,
        id: InvitationId,
    ) -> Result<Invitation, Error> {
        let found = store::invitation::find(self.store.db(), id).await?;
        authorize_recipient(caller, action, found).map(|(invitation, _)| invitation)
    }

    async fn invitation_organization(&self, id: InvitationId) -> Result<OrganizationId, Error> {
        Ok(store::invitation::find(self.store.db(), id)
            .await?
            .ok_or(Error::NotFound(Resource::Invitation))?
            .organization_id)
    }
}

/// Moves the invitation out of pending, or says why it cannot.
async fn answer(
    txn: &sea_orm::DatabaseTransaction,
    id: InvitationId,
    to: InvitationState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    if store::invitation::transition(txn, id, to, now, Guard::Live).await? {
        return Ok(());
    }
    let current = store::invitation::find(txn, id)
        .await?
        .ok_or(Error::NotFound(Resource::Invitation))?;
    Err(match current.state(now) {
        InvitationState::Expired => Error::FailedPrecondition(Reason::InvitationExpired),
        _ => Error::FailedPrecondition(Reason::InvitationNotPending),
    })
}

/// The event of an invitation that left pending, by whom.
type Settled = fn(&Organization, &UserId, &Invitation) -> NewEvent;

/// Outsiders asking about an invitation learn nothing about its organization.
fn hide_organization(err: Error) -> Error {
    match err {
        Error::NotFound(Resource::Organization) => Error::NotFound(Resource::Invitation),
        other => other,
    }
}

/// An invitation of a deleted organization is as missing as one that never
/// was (it waits for a restore); one of a suspended organization cannot be
/// answered until the suspension is lifted.
fn check_answerable(org: &Organization) -> Result<(), Error> {
    if org.lifecycle.is_deleted() {
        return Err(Error::NotFound(Resource::Invitation));
    }
    org.lifecycle.check_writable()
}
