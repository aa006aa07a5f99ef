//! What only platform administrators do (service principals with
//! `organizations.admin`): add a member directly, without an invitation,
//! and set an organization's own limits. Their other powers are the
//! ordinary RPCs, which the policy table opens to the scope (creating an
//! organization for a user, changing any role, removing any member,
//! deleting any organization, listing every organization).

use tracing::instrument;
use uuid::Uuid;

use super::{OrganizationDetail, OrganizationWrite, Roster, now};
use crate::{
    auth::{Caller, policy::Action},
    domain::{
        Error, Reason, Resource,
        event::{EventCursor, Joining, NewEvent},
        ids::OrganizationId,
        model::{LimitOverrides, Member, MembershipSource, Organization, Role, UserProfile},
    },
    store,
};

/// A validated `AddMember`.
#[derive(Debug)]
pub struct NewMember {
    pub organization: OrganizationId,
    /// The person, as the administrator names them.
    pub person: UserProfile,
    /// Any role, owner included.
    pub role: Role,
    pub request_id: Option<Uuid>,
}

impl Roster {
    /// Makes `input.person` a member with `input.role`, under the
    /// organization's lock and within its seats. Idempotent: if they are a
    /// member with that role already, the member as it stands, recording
    /// nothing (`None` revision); with another role, `ALREADY_EXISTS`
    /// (a role is changed with `UpdateMemberRole`).
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %input.organization, target = %input.person.id, role = input.role.as_str()))]
    pub async fn add_member(
        &self,
        caller: &Caller,
        input: NewMember,
    ) -> Result<(Member, Option<EventCursor>), Error> {
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::AddMember, input.organization)
            .await?;
        let user = &input.person.id;
        if let Some(existing) = store::membership::find(&txn, org.id, user).await? {
            if existing.role == input.role {
                return Ok((existing, None));
            }
            return Err(Error::AlreadyExists(Reason::AlreadyMember));
        }
        let now = now();
        store::user::ensure_profile(&txn, &input.person, now).await?;
        let source = MembershipSource::Admin;
        store::membership::insert(&txn, org.id, user, input.role, source, now).await?;
        self.check_seats(&txn, &org).await?;
        // As accepting an invitation does: a first organization becomes
        // the active one.
        if store::user::active_organization(&txn, user)
            .await?
            .is_none()
        {
            store::user::set_active_organization(&txn, user, Some(org.id)).await?;
        }
        let member = store::membership::find(&txn, org.id, user)
            .await?
            .ok_or(Error::NotFound(Resource::Member))?;
        let joining = Joining::Admin {
            email: &member.email,
            request_id: input.request_id,
        };
        let revision = txn
            .record(NewEvent::member_added(
                &org,
                &caller.user_id,
                user,
                input.role,
                joining,
            ))
            .await?;
        self.commit(txn).await?;
        Ok((member, Some(revision)))
    }

    /// Sets the organization's own limits (`None`: the server's default);
    /// the organization as it then stands, with its limits, and the
    /// change's revision (`None` if nothing changed).
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %organization))]
    pub async fn set_organization_limits(
        &self,
        caller: &Caller,
        organization: OrganizationId,
        limits: LimitOverrides,
    ) -> Result<(OrganizationDetail, Option<EventCursor>), Error> {
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::SetOrganizationLimits, organization)
            .await?;
        if org.limits == limits {
            drop(txn);
            return Ok((self.detail(org, true).await?, None));
        }
        store::organization::set_limits(&txn, org.id, limits).await?;
        let updated = Organization {
            limits,
            ..org.clone()
        };
        let revision = txn
            .record(NewEvent::organization_limits_set(
                &updated,
                &caller.user_id,
                &org.limits,
                &limits,
            ))
            .await?;
        self.commit(txn).await?;
        Ok((self.detail(updated, true).await?, Some(revision)))
    }
}
