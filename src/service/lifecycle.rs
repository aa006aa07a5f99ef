//! An organization's lifecycle: suspension by platform administrators,
//! soft deletion by its owners, restore, and the purge once the retention
//! period (`--deleted-organization-retention`) has passed.
//!
//! Each step is one transaction that locks the organization, checks where
//! it stands, writes the new state and records its event; committing
//! applies the event to the read cache, so this replica's very next check
//! sees it, and another replica's once it has the step's revision.
//!
//! The developer identity in the Provider Portal stays while an
//! organization is deleted and goes at the purge: the portal keeps the
//! organization's applications, credentials and subscriptions under it,
//! which a restore must bring back (see the README's lifecycle section).

use tracing::{info, instrument, warn};

use super::{OrganizationWrite, Roster, expiry, now, organization::check_etag};
use crate::{
    auth::{
        Caller,
        policy::{Action, authorize, authorize_scope},
    },
    domain::{
        Error, Reason, Resource,
        event::{EventCursor, NewEvent},
        identity::IdentityState,
        ids::OrganizationId,
        lifecycle::{Deletion, Suspension},
        model::Organization,
    },
    store,
};

/// Deleted organizations purged per sweep round trip.
const PURGE_BATCH: u64 = 100;

impl Roster {
    /// Deletes the organization (owners): it reads `NOT_FOUND` and every
    /// check says no at once; its slugs stay reserved and its memberships
    /// and invitations are kept, so that its owners or an administrator may
    /// restore it until its purge time, which is returned.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %id))]
    pub async fn delete_organization(
        &self,
        caller: &Caller,
        id: OrganizationId,
        etag: Option<String>,
    ) -> Result<(Organization, EventCursor), Error> {
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::DeleteOrganization, id)
            .await?;
        check_etag(&org, etag.as_deref())?;
        let now = now();
        let deletion = Deletion {
            at: now,
            purge_at: expiry(now, self.settings.deleted_organization_retention),
        };
        let deleted = store::organization::set_deletion(&txn, org.id, Some(deletion), now)
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        let revision = txn
            .record(NewEvent::organization_deleted(&deleted, &caller.user_id))
            .await?;
        self.commit(txn).await?;
        Ok((deleted, revision))
    }

    /// Suspends the organization (administrators): it can still be read,
    /// but every write is refused and every check but reads says no, with
    /// the reason `ORGANIZATION_SUSPENDED`.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %id))]
    pub async fn suspend_organization(
        &self,
        caller: &Caller,
        id: OrganizationId,
        reason: String,
    ) -> Result<(Organization, EventCursor), Error> {
        let (txn, org) = self
            .begin_admin_write(caller, Action::SuspendOrganization, id)
            .await?;
        if org.lifecycle.suspension.is_some() {
            return Err(Error::FailedPrecondition(
                Reason::OrganizationAlreadySuspended,
            ));
        }
        let now = now();
        let suspension = Suspension { at: now, reason };
        let suspended = store::organization::set_suspension(&txn, org.id, Some(&suspension), now)
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        let revision = txn
            .record(NewEvent::organization_suspended(
                &suspended,
                &caller.user_id,
            ))
            .await?;
        self.commit(txn).await?;
        Ok((suspended, revision))
    }

    /// Lifts a suspension (administrators).
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %id))]
    pub async fn resume_organization(
        &self,
        caller: &Caller,
        id: OrganizationId,
    ) -> Result<(Organization, EventCursor), Error> {
        let (txn, org) = self
            .begin_admin_write(caller, Action::ResumeOrganization, id)
            .await?;
        if org.lifecycle.suspension.is_none() {
            return Err(Error::FailedPrecondition(Reason::OrganizationNotSuspended));
        }
        let resumed = store::organization::set_suspension(&txn, org.id, None, now())
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        let revision = txn
            .record(NewEvent::organization_resumed(&org, &caller.user_id))
            .await?;
        self.commit(txn).await?;
        Ok((resumed, revision))
    }

    /// Restores a deleted organization before its purge: its owners (who
    /// alone may still name it) or an administrator. It comes back as it
    /// was, members, invitations and suspension included.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %id))]
    pub async fn restore_organization(
        &self,
        caller: &Caller,
        id: OrganizationId,
    ) -> Result<(Organization, EventCursor), Error> {
        let txn = self.begin_write(caller).await?;
        let org = store::organization::lock(&txn, id)
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        if caller.is_service() {
            authorize_scope(caller, Action::RestoreOrganization)?;
            if !caller.reaches(id) {
                return Err(Error::NotFound(Resource::Organization));
            }
        } else {
            let role = store::membership::role_in_any(&txn, id, &caller.user_id).await?;
            let allowed = authorize(Action::RestoreOrganization, role);
            if org.lifecycle.is_deleted() {
                // Nobody but its owners may see a deleted organization: a
                // member or admin of it learns no more than a stranger.
                allowed.map_err(|_| Error::NotFound(Resource::Organization))?;
            } else {
                allowed?;
            }
        }
        if !org.lifecycle.is_deleted() {
            return Err(Error::FailedPrecondition(Reason::OrganizationNotDeleted));
        }
        let restored = store::organization::set_deletion(&txn, org.id, None, now())
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        let revision = txn
            .record(NewEvent::organization_restored(&restored, &caller.user_id))
            .await?;
        self.commit(txn).await?;
        Ok((restored, revision))
    }

    /// Opens an administrator's write on an organization that is not
    /// deleted, holding its lock.
    async fn begin_admin_write(
        &self,
        caller: &Caller,
        action: Action,
        id: OrganizationId,
    ) -> Result<(super::Write, Organization), Error> {
        authorize_scope(caller, action)?;
        if !caller.reaches(id) {
            return Err(Error::NotFound(Resource::Organization));
        }
        let txn = self.begin_write(caller).await?;
        let org = store::organization::lock(&txn, id)
            .await?
            .filter(|org| !org.lifecycle.is_deleted())
            .ok_or(Error::NotFound(Resource::Organization))?;
        Ok((txn, org))
    }

    /// Purges every deleted organization whose retention has ended; returns
    /// how many. Safe on many replicas at once: each purge locks the
    /// organization and deletes it only if it is still deleted and due, so
    /// exactly one replica's purge removes it and records the event, and a
    /// restore that committed first wins.
    pub async fn purge_deleted_organizations(&self) -> Result<usize, Error> {
        let mut purged = 0;
        loop {
            let due = store::organization::list_due_for_purge(self.store.db(), now(), PURGE_BATCH)
                .await?;
            let full = due.len() as u64 == PURGE_BATCH;
            let mut this_batch = 0;
            for id in due {
                if self.purge_one(id).await? {
                    this_batch += 1;
                }
            }
            purged += this_batch;
            // A batch another replica purged under us is not a reason to
            // spin: the next sweep looks again.
            if !full || this_batch == 0 {
                return Ok(purged);
            }
        }
    }

    /// Purges one organization, if it is still deleted and due: its rows go
    /// in one transaction with its event and the intent that its developer
    /// identity must no longer exist in the Provider Portal.
    async fn purge_one(&self, id: OrganizationId) -> Result<bool, Error> {
        let txn = self.begin_system_write().await?;
        let now = now();
        let Some(org) = store::organization::lock(&txn, id).await? else {
            return Ok(false);
        };
        if org
            .lifecycle
            .deletion
            .is_none_or(|deletion| deletion.purge_at > now)
        {
            // Restored (or purged) by someone else meanwhile.
            return Ok(false);
        }
        // An identity that may exist in the Provider Portal goes now (also
        // one delivered while a portal was configured, if none is now: it
        // is deleted once one is again).
        let identity = if self.identities.is_some() || org.identity.state != IdentityState::Local {
            let intent =
                store::identity::request_absent(&txn, &org.developer_id, org.id, now).await?;
            intent.visible().map(|i| i.state)
        } else {
            None
        };
        if !store::organization::purge(&txn, org.id, now).await? {
            return Ok(false);
        }
        txn.record(NewEvent::organization_purged(&org, identity))
            .await?;
        self.commit(txn).await?;
        if let Some(worker) = &self.identities {
            worker.wake_signal().notify();
        }
        Ok(true)
    }

    /// The purge step of the expiry sweep: failures are logged and retried
    /// at the next sweep.
    pub(super) async fn sweep_deleted_organizations(&self) {
        match self.purge_deleted_organizations().await {
            Ok(0) => {}
            Ok(count) => info!(count, "purged deleted organizations past their retention"),
            Err(err) => warn!(error = %err, "deleted organization purge failed; will retry"),
        }
    }
}
