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

mod admin;
mod authorization;
mod erasure;
pub mod event_feed;
mod events;
mod expiry;
mod invitation;
mod lifecycle;
mod lookup;
mod membership;
mod organization;
mod read_cache;
mod write;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

pub use crate::signal::Signal;
pub use admin::NewMember;
pub use authorization::{CheckAnswer, CheckInput, OrganizationRef};
pub use erasure::{Erased, Erasure, NewOwner};
pub use event_feed::{EventFeed, StreamLimits};
pub use events::{AuditQuery, EventStream};
pub use invitation::InvitationFilter;
pub use lookup::{OrganizationLookup, UserLookup};
pub use membership::MemberQuery;
pub use organization::{
    ListedOrganization, NewOrganization, OrganizationDetail, OrganizationKey, OrganizationUpdate,
    SlugAvailability,
};
pub use read_cache::ReadCache;
use write::Write;

use crate::{
    auth::{
        Caller,
        policy::{Action, authorize, authorize_scope, writes_organization},
    },
    domain::{
        Error, Resource,
        ids::OrganizationId,
        link::InvitationLinks,
        model::{Organization, Role},
        rules::Actor,
    },
    provider_portal::worker::IdentityWorker,
    store::{self, Store},
};

pub use crate::domain::rules::Limits;

/// Behaviour a deployment configures.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    /// How long an invitation stays open.
    pub invitation_ttl: Duration,
    /// How long a renamed organization's old slug keeps resolving to it.
    pub old_slug_ttl: Duration,
    /// How long a deleted organization can be restored before it is purged.
    pub deleted_organization_retention: Duration,
    /// Where invitation links point.
    pub invitation_links: InvitationLinks,
    /// Most memberships the permission cache holds.
    pub cache_capacity: u64,
    /// How stale a cached read may be at worst.
    pub max_staleness: Duration,
    /// How long `CreateOrganization` waits for the developer identity.
    pub identity_create_wait: Duration,
    /// How many `StreamEvents` may be open and how far each may lag.
    pub event_streams: StreamLimits,
}

/// roster's use-cases over one store.
pub struct Roster {
    store: Store,
    settings: Settings,
    /// Rung after every commit that recorded events.
    events: Signal,
    /// Rung after every commit that queued an email.
    mail: Signal,
    /// Cancelled when the server shuts down; long-lived calls end then.
    stop: CancellationToken,
    /// New events for the live streams, read once by the cache's follower.
    feed: Arc<EventFeed>,
    /// Roles in memory, for permission checks and read authorization.
    cache: ReadCache,
    /// Delivers developer identities to the Provider Portal; `None` when
    /// none is configured (identities exist only in roster).
    identities: Option<Arc<IdentityWorker>>,
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
    pub fn new(store: Store, settings: Settings, stop: CancellationToken) -> Self {
        let cache = ReadCache::new(settings.cache_capacity, settings.max_staleness);
        let feed = Arc::new(EventFeed::new(settings.event_streams));
        Self {
            store,
            settings,
            events: Signal::default(),
            mail: Signal::default(),
            stop,
            feed,
            cache,
            identities: None,
        }
    }

    /// Creates and deletes developer identities in the Provider Portal
    /// through `worker` from now on.
    pub fn deliver_identities_with(&mut self, worker: Arc<IdentityWorker>) {
        self.identities = Some(worker);
    }

    /// Rung when events have been committed (by this process, or, through
    /// PostgreSQL's NOTIFY, by any replica).
    pub fn events_signal(&self) -> &Signal {
        &self.events
    }

    /// Rung when an email has been queued.
    pub fn mail_signal(&self) -> &Signal {
        &self.mail
    }

    /// Opens the write transaction of a use-case `caller` called: its
    /// events carry the caller's acting party.
    async fn begin_write(&self, caller: &Caller) -> Result<Write, Error> {
        let txn = self.store.begin_write().await?;
        Ok(Write::new(txn, caller.acting_party.clone()))
    }

    /// Opens the write transaction of a change roster makes on its own
    /// (expiry): nobody acts for anyone.
    async fn begin_system_write(&self) -> Result<Write, Error> {
        Ok(Write::new(self.store.begin_write().await?, None))
    }

    /// Commits a write, applies the events it recorded to the read cache
    /// (so the very next read here sees the change), and wakes whoever
    /// waits for its events or emails.
    async fn commit(&self, write: Write) -> Result<(), Error> {
        for event in write.commit().await? {
            self.cache.apply_committed(&event);
        }
        self.events.notify();
        self.mail.notify();
        Ok(())
    }

    /// Authorizes a read of `organization`: a person's role in it must
    /// allow `action`; a service principal needs the scope the policy
    /// names for it, and the organization must exist and be one its token
    /// reaches. The person's role,
    /// or `None` for a service (which is never a member).
    async fn authorize_read(
        &self,
        caller: &Caller,
        action: Action,
        organization: OrganizationId,
    ) -> Result<Option<Role>, Error> {
        let db = self.store.db();
        if caller.is_service() {
            authorize_scope(caller, action)?;
            // Outside a token's organizations, as if there were none.
            if !caller.reaches(organization) {
                return Err(Error::NotFound(Resource::Organization));
            }
            self.cache
                .organization(db, organization, None)
                .await?
                .ok_or(Error::NotFound(Resource::Organization))?;
            return Ok(None);
        }
        let role = self
            .cache
            .role(db, organization, &caller.user_id, None)
            .await?;
        authorize(action, role).map(Some)
    }

    /// Starts a write on `organization`: opens the transaction, locks the
    /// organization, resolves the caller's role under that lock and checks
    /// it allows `action`. A missing organization and a non-member caller
    /// are the same `NOT_FOUND`. A service principal needs the scope the
    /// policy names for `action` (an administrator's), and the
    /// organization must be one its token reaches (`NOT_FOUND` otherwise).
    async fn begin_organization_write(
        &self,
        caller: &Caller,
        action: Action,
        organization: OrganizationId,
    ) -> Result<OrganizationWrite, Error> {
        if caller.is_service() {
            authorize_scope(caller, action)?;
            if !caller.reaches(organization) {
                return Err(Error::NotFound(Resource::Organization));
            }
        }
        let txn = self.begin_write(caller).await?;
        let org = store::organization::lock(&txn, organization)
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        if caller.is_service() {
            check_lifecycle(action, &org)?;
            let actor = Actor::Administrator;
            return Ok(OrganizationWrite { txn, org, actor });
        }
        // A statement of its own, after the lock is granted: on PostgreSQL
        // (READ COMMITTED) it sees every change committed before the lock,
        // which a subquery of the locking statement would not.
        let role = store::membership::role_of(&txn, organization, &caller.user_id).await?;
        let actor = Actor::Member(authorize(action, role)?);
        // After the role: an outsider learns nothing of a suspension.
        check_lifecycle(action, &org)?;
        Ok(OrganizationWrite { txn, org, actor })
    }
}

/// A write transaction holding an organization's lock, with who acts.
/// Whether `action` may go on in `org` as its lifecycle stands: a write to
/// a suspended organization is refused, and a deleted organization is as
/// missing as one that never was.
fn check_lifecycle(action: Action, org: &Organization) -> Result<(), Error> {
    if writes_organization(action) {
        org.lifecycle.check_writable()
    } else if org.lifecycle.is_deleted() {
        Err(Error::NotFound(Resource::Organization))
    } else {
        Ok(())
    }
}

struct OrganizationWrite {
    txn: Write,
    org: Organization,
    actor: Actor,
}

impl OrganizationWrite {
    /// The acting member's role, for the calls only members make (the
    /// policy refuses them to every service before this is reached).
    fn member_role(&self) -> Result<Role, Error> {
        match self.actor {
            Actor::Member(role) => Ok(role),
            Actor::Administrator => Err(Error::internal(
                "a members-only call reached its use-case as an administrator",
            )),
        }
    }
}

pub(crate) use crate::domain::now;

/// `now + ttl`, saturating rather than overflowing on absurd settings.
fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
