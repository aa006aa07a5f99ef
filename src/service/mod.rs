//! Use-cases: authorize, open a transaction, apply the domain rules, call
//! the store, commit. Each public method of [`Roster`] is one RPC's worth of
//! work, independent of gRPC.
//!
//! Every write that depends on an organization's memberships or invitations
//! first locks the organization ([`store::organization::lock`]) inside a
//! write transaction, then reads the caller's role, then decides. Two such
//! transactions on one organization therefore run one after the other, on
//! SQLite and on PostgreSQL alike, which is what keeps "at least one owner"
//! and the seat limits true under concurrent requests.

mod invitation;
mod membership;
mod organization;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::DatabaseTransaction;

pub use invitation::InvitationFilter;
pub use membership::MemberQuery;
pub use organization::{NewOrganization, OrganizationKey, OrganizationUpdate, SlugAvailability};

use crate::{
    auth::{
        Caller,
        policy::{Action, authorize},
    },
    domain::{
        Error, Resource,
        ids::OrganizationId,
        model::{Organization, Role},
    },
    mail::Mailer,
    store::{self, Store},
};

/// Limits a deployment sets (product.md: "limits are configurable").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Organizations one user may own.
    pub max_owned_organizations: u64,
    /// Seats per organization: members plus pending invitations.
    pub max_members_per_organization: u64,
    /// Pending invitations per organization.
    pub max_pending_invitations_per_organization: u64,
}

/// Behaviour a deployment configures.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    /// How long an invitation stays open.
    pub invitation_ttl: Duration,
    /// The portal's base URL; invitation links point into it.
    pub portal_url: String,
}

/// roster's use-cases over one store.
pub struct Roster {
    store: Store,
    settings: Settings,
    mailer: Arc<dyn Mailer>,
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roster")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Roster {
    pub fn new(store: Store, settings: Settings, mailer: Arc<dyn Mailer>) -> Self {
        Self {
            store,
            settings,
            mailer,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Authorizes a read: the caller's role in `organization` must allow `action`.
    async fn authorize_read(
        &self,
        caller: &Caller,
        action: Action,
        organization: OrganizationId,
    ) -> Result<Role, Error> {
        let role =
            store::membership::role_of(self.store.db(), organization, &caller.user_id).await?;
        authorize(action, role)
    }

    /// Starts a write on `organization`: opens the transaction, locks the
    /// organization, resolves the caller's role under that lock and checks
    /// it allows `action`. A missing organization and a non-member caller
    /// are the same `NOT_FOUND`.
    async fn begin_organization_write(
        &self,
        caller: &Caller,
        action: Action,
        organization: OrganizationId,
    ) -> Result<OrganizationWrite, Error> {
        let txn = self.store.begin_write().await?;
        let org = store::organization::lock(&txn, organization)
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        let role = store::membership::role_of(&txn, organization, &caller.user_id).await?;
        let role = authorize(action, role)?;
        Ok(OrganizationWrite { txn, org, role })
    }
}

/// A write transaction holding an organization's lock, with the caller's role.
struct OrganizationWrite {
    txn: DatabaseTransaction,
    org: Organization,
    role: Role,
}

/// The current time at the database's precision (microseconds), so what we
/// return equals what a later read returns.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `now + ttl`, saturating rather than overflowing on absurd settings.
fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
