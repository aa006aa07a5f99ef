//! Members: listing, role changes, removal, leaving, ownership transfer.
//!
//! Every change runs under the organization's lock (see `service`), and the
//! owner count is read under that lock, so the last owner can be neither
//! demoted, removed nor allowed to leave, however requests race.

use tracing::instrument;

use super::{OrganizationWrite, Roster, now};
use crate::{
    auth::{Caller, policy::Action},
    domain::{
        Error, Resource,
        event::{EventCursor, NewEvent},
        ids::{OrganizationId, UserId},
        model::{Member, Role},
        page::{MemberFilter, Page, PageRequest},
        rules::{self, Actor, OwnerLoss},
    },
    store,
};

/// A validated `ListMembers`.
#[derive(Debug)]
pub struct MemberQuery {
    pub organization: OrganizationId,
    pub filter: MemberFilter,
    pub page: PageRequest,
}

impl Roster {
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %query.organization))]
    pub async fn list_members(
        &self,
        caller: &Caller,
        query: MemberQuery,
    ) -> Result<Page<Member>, Error> {
        self.authorize_read(caller, Action::ListMembers, query.organization)
            .await?;
        let rows = store::membership::list(
            self.store.db(),
            query.organization,
            &query.filter,
            &query.page,
        )
        .await?;
        Ok(query.page.finish(rows, |m| m.id.0))
    }

    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization))]
    pub async fn get_member(
        &self,
        caller: &Caller,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<Member, Error> {
        self.authorize_read(caller, Action::GetMember, organization)
            .await?;
        store::membership::find(self.store.db(), organization, &user)
            .await?
            .ok_or(Error::NotFound(Resource::Member))
    }

    /// Changes `user`'s role. Only owners grant or take the owner role, and
    /// the last owner keeps it.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization, target = %user, role = role.as_str()))]
    pub async fn update_member_role(
        &self,
        caller: &Caller,
        organization: OrganizationId,
        user: UserId,
        role: Role,
    ) -> Result<(Member, Option<EventCursor>), Error> {
        let OrganizationWrite { txn, org, actor } = self
            .begin_organization_write(caller, Action::UpdateMemberRole, organization)
            .await?;
        let mut target = store::membership::find(&txn, organization, &user)
            .await?
            .ok_or(Error::NotFound(Resource::Member))?;
        rules::check_role_change(actor, target.role, role)?;
        if target.role == role {
            return Ok((target, None));
        }
        if target.role == Role::Owner {
            let owners = store::membership::count(&txn, organization, Some(Role::Owner)).await?;
            rules::check_owner_remains(owners, OwnerLoss::ByAnother)?;
        }
        store::membership::set_role(&txn, organization, &user, role, now()).await?;
        let revision = txn
            .record(NewEvent::member_role_changed(
                &org,
                &caller.user_id,
                &user,
                target.role,
                role,
            ))
            .await?;
        self.commit(txn).await?;
        target.role = role;
        Ok((target, Some(revision)))
    }

    /// Removes `user` from the organization; their access ends with the commit.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization, target = %user))]
    pub async fn remove_member(
        &self,
        caller: &Caller,
        organization: OrganizationId,
        user: UserId,
    ) -> Result<EventCursor, Error> {
        let OrganizationWrite { txn, org, actor } = self
            .begin_organization_write(caller, Action::RemoveMember, organization)
            .await?;
        let target = store::membership::role_of(&txn, organization, &user)
            .await?
            .ok_or(Error::NotFound(Resource::Member))?;
        rules::check_removal(actor, target)?;
        if target == Role::Owner {
            let owners = store::membership::count(&txn, organization, Some(Role::Owner)).await?;
            let loss = if actor != Actor::Administrator && user == caller.user_id {
                OwnerLoss::OnTheirOwn
            } else {
                OwnerLoss::ByAnother
            };
            rules::check_owner_remains(owners, loss)?;
        }
        store::membership::delete(&txn, organization, &user).await?;
        store::user::clear_active_organization(&txn, &user, organization).await?;
        let revision = txn
            .record(NewEvent::member_removed(
                &org,
                &caller.user_id,
                &user,
                target,
            ))
            .await?;
        self.commit(txn).await?;
        Ok(revision)
    }

    /// The caller leaves; an owner only if another owner stays.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization))]
    pub async fn leave_organization(
        &self,
        caller: &Caller,
        organization: OrganizationId,
    ) -> Result<EventCursor, Error> {
        let write = self
            .begin_organization_write(caller, Action::LeaveOrganization, organization)
            .await?;
        let role = write.member_role()?;
        let OrganizationWrite { txn, org, .. } = write;
        if role == Role::Owner {
            let owners = store::membership::count(&txn, organization, Some(Role::Owner)).await?;
            rules::check_owner_remains(owners, OwnerLoss::OnTheirOwn)?;
        }
        store::membership::delete(&txn, organization, &caller.user_id).await?;
        store::user::clear_active_organization(&txn, &caller.user_id, organization).await?;
        let revision = txn
            .record(NewEvent::member_removed(
                &org,
                &caller.user_id,
                &caller.user_id,
                role,
            ))
            .await?;
        self.commit(txn).await?;
        Ok(revision)
    }

    /// Makes `new_owner` an owner and the calling owner an admin, atomically.
    /// Returns (new owner, previous owner, revision).
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization, target = %new_owner))]
    pub async fn transfer_ownership(
        &self,
        caller: &Caller,
        organization: OrganizationId,
        new_owner: UserId,
    ) -> Result<(Member, Member, EventCursor), Error> {
        if new_owner == caller.user_id {
            return Err(Error::invalid(
                "new_owner_user_id",
                "must be another member, not the caller",
            ));
        }
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::TransferOwnership, organization)
            .await?;
        let mut target = store::membership::find(&txn, organization, &new_owner)
            .await?
            .ok_or(Error::NotFound(Resource::Member))?;
        let mut previous = store::membership::find(&txn, organization, &caller.user_id)
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        let now = now();
        store::membership::set_role(&txn, organization, &new_owner, Role::Owner, now).await?;
        store::membership::set_role(&txn, organization, &caller.user_id, Role::Admin, now).await?;
        let actor = &caller.user_id;
        if target.role != Role::Owner {
            txn.record(NewEvent::member_role_changed(
                &org,
                actor,
                &new_owner,
                target.role,
                Role::Owner,
            ))
            .await?;
        }
        let revision = txn
            .record(NewEvent::member_role_changed(
                &org,
                actor,
                actor,
                previous.role,
                Role::Admin,
            ))
            .await?;
        self.commit(txn).await?;
        target.role = Role::Owner;
        previous.role = Role::Admin;
        Ok((target, previous, revision))
    }
}
