//! Erasing a person on request (GDPR), for administrators: `EraseUser`.
//!
//! One write transaction does all of it, so an erasure happens whole or
//! not at all: the user leaves every organization (one of which they are
//! the only member is deleted, through the same path as
//! `DeleteOrganization`; one of which they are the last owner first gets
//! the new owner the call names), the pending invitations to their address
//! are withdrawn, their profile row is deleted (with it their email, name
//! and active organization), and their addresses and name are replaced by
//! [`ERASED`] wherever else roster stored them: invitations, the email
//! outbox, and the change log, whose events keep their cursors. Then
//! `user.erased` tells consumers to do the same. The user id stays: it is
//! what the log's events refer to, and a token subject, not a name.
//!
//! Locks: every organization the erasure changes, in id order, then the
//! user's row: the order of every use-case that touches both (the
//! organization, then the user), so they queue instead of deadlocking. With
//! the user's row held, no membership can be added to them (every path that
//! adds one writes that row first), so the memberships read after it are
//! all there are.

use std::collections::{BTreeMap, BTreeSet};

use tracing::instrument;
use uuid::Uuid;

use super::{Roster, now};
use crate::{
    auth::{
        Caller,
        policy::{Action, authorize_scope},
    },
    domain::{
        Error, Resource,
        erasure::{ERASED, Personal},
        event::{EventCursor, FieldChange, NewEvent},
        ids::{InvitationId, OrganizationId, UserId},
        model::{InvitationState, Organization, Role},
        rules::{self, Departure},
    },
    store::{self, invitation::Guard},
};

/// A validated `EraseUser`.
#[derive(Debug)]
pub struct Erasure {
    pub user: UserId,
    /// In request order (errors name an entry by its index), at most one
    /// per organization.
    pub new_owners: Vec<NewOwner>,
}

/// Who becomes owner of an organization the erased user was the last owner of.
#[derive(Debug)]
pub struct NewOwner {
    pub organization: OrganizationId,
    pub user: UserId,
}

/// What an erasure did.
#[derive(Debug, Default)]
pub struct Erased {
    /// The `user.erased` event's; `None` when there was nothing to erase.
    pub revision: Option<EventCursor>,
    pub left: Vec<OrganizationId>,
    pub deleted: Vec<OrganizationId>,
    /// Pending invitations to their address, withdrawn.
    pub cancelled: Vec<InvitationId>,
}

/// How the erasure leaves one organization.
enum Plan {
    Delete,
    Leave { new_owner: Option<UserId> },
}

impl Roster {
    /// Erases `erasure.user`; see the module documentation. Refused with
    /// `NewOwnerRequired` (and nothing changed) while they are the last
    /// owner of an organization with other members and no new owner is
    /// named for it. A user roster knows nothing of (erased before, or
    /// never seen) is erased again at no cost: nothing changes, and no
    /// event is recorded.
    #[instrument(skip_all, fields(user_id = %caller.user_id, target = %erasure.user))]
    pub async fn erase_user(&self, caller: &Caller, erasure: Erasure) -> Result<Erased, Error> {
        authorize_scope(caller, Action::EraseUser)?;
        let user = &erasure.user;
        let by = &caller.user_id;
        let txn = self.begin_write(caller).await?;

        // What roster knows of them: their profile, and the addresses of
        // the invitations they answered (the log keeps those with their id).
        let profile = store::user::find(&txn, user).await?;
        let mut addresses = store::event::addresses_of(&txn, user).await?;
        let mut names = Vec::new();
        if let Some(profile) = &profile {
            addresses.push(profile.email.clone());
            names.push(profile.display_name.clone());
        }
        let personal = Personal::new(addresses.iter().cloned(), names);

        // Lock what will change: the organizations, then the user's row;
        // read again under the locks until nothing new turns up.
        let mut locked: BTreeMap<OrganizationId, Organization> = BTreeMap::new();
        let mut gone: BTreeSet<OrganizationId> = BTreeSet::new();
        let mut user_locked = false;
        let (memberships, invitations) = loop {
            let memberships = store::membership::of_user(&txn, user).await?;
            let invitations = store::invitation::addressed_to(&txn, personal.emails()).await?;
            let wanted: BTreeSet<OrganizationId> = memberships
                .iter()
                .map(|(organization, _)| *organization)
                .chain(
                    invitations
                        .iter()
                        .filter(|i| i.stored_state == InvitationState::Pending)
                        .map(|i| i.organization_id),
                )
                .filter(|id| !locked.contains_key(id) && !gone.contains(id))
                .collect();
            if wanted.is_empty() {
                if user_locked {
                    break (memberships, invitations);
                }
                store::user::lock(&txn, user).await?;
                user_locked = true;
                continue;
            }
            // In id order. Only a membership added between two reads can
            // make this lock an organization after the user's row: the
            // rare deadlock that could cause, PostgreSQL breaks (the call
            // fails as TRANSACTION_CONFLICT, changing nothing).
            for id in wanted {
                match store::organization::lock(&txn, id).await? {
                    Some(organization) => {
                        locked.insert(id, organization);
                    }
                    // Deleted meanwhile, with its memberships and invitations.
                    None => {
                        gone.insert(id);
                    }
                }
            }
        };

        // Decide every organization before changing any.
        let mut plans = Vec::new();
        let mut without_owner = Vec::new();
        for (id, role) in &memberships {
            let Some(organization) = locked.get(id) else {
                continue;
            };
            let members = store::membership::count(&txn, *id, None).await?;
            let owners = store::membership::count(&txn, *id, Some(Role::Owner)).await?;
            let plan = match rules::departure(*role, members, owners) {
                Departure::DeleteOrganization => Plan::Delete,
                Departure::Leave => Plan::Leave { new_owner: None },
                Departure::HandOver => {
                    let Some(index) = erasure
                        .new_owners
                        .iter()
                        .position(|n| n.organization == *id)
                    else {
                        without_owner.push(*id);
                        continue;
                    };
                    let new_owner = &erasure.new_owners[index].user;
                    if store::membership::role_of(&txn, *id, new_owner)
                        .await?
                        .is_none()
                    {
                        return Err(Error::invalid(
                            format!("new_owners[{index}].user_id"),
                            "must be a current member of the organization",
                        ));
                    }
                    Plan::Leave {
                        new_owner: Some(new_owner.clone()),
                    }
                }
            };
            plans.push((organization, *role, plan));
        }
        if !without_owner.is_empty() {
            return Err(Error::NewOwnerRequired(without_owner));
        }
        let mut erased = Erased::default();
        let deleting: BTreeSet<OrganizationId> = plans
            .iter()
            .filter(|(_, _, plan)| matches!(plan, Plan::Delete))
            .map(|(organization, _, _)| organization.id)
            .collect();

        // The pending invitations to them, withdrawn (those of an
        // organization about to be deleted go with it), before their
        // addresses are replaced: two pending ones could not share one.
        let now = now();
        let mut withdrawn = Vec::new();
        for invitation in invitations.iter().filter(|i| {
            i.stored_state == InvitationState::Pending && !deleting.contains(&i.organization_id)
        }) {
            let id = invitation.id;
            if store::invitation::transition(&txn, id, InvitationState::Cancelled, now, Guard::Live)
                .await?
            {
                withdrawn.push((id, false));
            } else if store::invitation::transition(
                &txn,
                id,
                InvitationState::Expired,
                now,
                Guard::Lapsed,
            )
            .await?
            {
                withdrawn.push((id, true));
            }
        }
        let invitations_redacted =
            store::invitation::redact_addressed_to(&txn, personal.emails(), ERASED).await?;
        for (id, expired) in withdrawn {
            let invitation = store::invitation::find(&txn, id)
                .await?
                .ok_or(Error::NotFound(Resource::Invitation))?;
            let organization = locked
                .get(&invitation.organization_id)
                .ok_or(Error::NotFound(Resource::Organization))?;
            let event = if expired {
                NewEvent::invitation_expired(organization, id, &invitation.email)
            } else {
                NewEvent::invitation_cancelled(organization, by, &invitation)
            };
            txn.record(event).await?;
            erased.cancelled.push(id);
        }

        for (organization, role, plan) in plans {
            match plan {
                Plan::Delete => {
                    self.delete_locked(&txn, organization, by).await?;
                    erased.deleted.push(organization.id);
                }
                Plan::Leave { new_owner } => {
                    if let Some(new_owner) = new_owner {
                        let from = store::membership::role_of(&txn, organization.id, &new_owner)
                            .await?
                            .ok_or(Error::NotFound(Resource::Member))?;
                        store::membership::set_role(
                            &txn,
                            organization.id,
                            &new_owner,
                            Role::Owner,
                            now,
                        )
                        .await?;
                        txn.record(NewEvent::member_role_changed(
                            organization,
                            by,
                            &new_owner,
                            from,
                            Role::Owner,
                        ))
                        .await?;
                    }
                    store::membership::delete(&txn, organization.id, user).await?;
                    txn.record(NewEvent::member_removed(organization, by, user, role))
                        .await?;
                    erased.left.push(organization.id);
                }
            }
        }
        // Their email, name and active organization.
        let profile_deleted = store::user::delete(&txn, user).await?;

        // The rest of what roster wrote down about them. The addresses as
        // stored (any case) find the log's and the outbox's rows; the
        // comparison decides.
        let mut stored_addresses = addresses;
        stored_addresses.extend(invitations.iter().map(|i| i.email.clone()));
        stored_addresses.extend(personal.emails().iter().cloned());
        stored_addresses.sort();
        stored_addresses.dedup();
        let log = store::event::touching(&txn, user, &stored_addresses).await?;
        let theirs: Vec<Uuid> = invitations.iter().map(|i| i.id.0).collect();
        let queued_by_them: Vec<Uuid> = log
            .iter()
            .filter(|event| event.actor_id == user.as_str())
            .map(|event| event.id)
            .collect();
        let mut rewritten = 0;
        for mut mail in
            store::mail::touching(&txn, &theirs, &queued_by_them, personal.emails()).await?
        {
            let to_them =
                personal.is_email(&mail.recipient) || theirs.contains(&mail.invitation_id);
            let before = mail.clone();
            if to_them {
                mail.recipient = ERASED.to_owned();
            }
            for text in [&mut mail.subject, &mut mail.body, &mut mail.last_error] {
                if let Some(redacted) = personal.redact_text(text) {
                    *text = redacted;
                }
            }
            // Never sent now: its recipient is erased.
            let withdraw = to_them && mail.pending;
            if withdraw {
                "not sent: its recipient was erased".clone_into(&mut mail.last_error);
            }
            if mail != before {
                store::mail::rewrite(&txn, &mail, withdraw).await?;
                rewritten += 1;
            }
        }
        for event in log {
            let subject_email = if personal.is_email(&event.subject_email) {
                ERASED.to_owned()
            } else {
                personal
                    .redact_text(&event.subject_email)
                    .unwrap_or_else(|| event.subject_email.clone())
            };
            let changes: Vec<FieldChange> = event
                .changes
                .iter()
                .map(|c| FieldChange {
                    field: c.field.clone(),
                    old: personal
                        .redact_field(&c.field, &c.old)
                        .unwrap_or_else(|| c.old.clone()),
                    new: personal
                        .redact_field(&c.field, &c.new)
                        .unwrap_or_else(|| c.new.clone()),
                })
                .collect();
            if subject_email != event.subject_email || changes != event.changes {
                store::event::rewrite(&txn, event.cursor, &subject_email, &changes).await?;
                rewritten += 1;
            }
        }

        let changed = !memberships.is_empty()
            || !erased.cancelled.is_empty()
            || invitations_redacted > 0
            || profile_deleted
            || rewritten > 0;
        if changed {
            let event = NewEvent::user_erased(
                user,
                by,
                erased.left.len(),
                erased.deleted.len(),
                erased.cancelled.len(),
            );
            erased.revision = Some(txn.record(event).await?);
        }
        self.commit(txn).await?;
        if !erased.deleted.is_empty() {
            self.wake_identity_delivery();
        }
        Ok(erased)
    }
}
