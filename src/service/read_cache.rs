//! Roles and organizations in memory: permission checks, roster's own read
//! authorization and `GetOrganization` are answered from here.
//!
//! Freshness:
//! - A change made through this replica invalidates what it touched before
//!   the call returns: the very next read here sees it.
//! - Changes made through other replicas arrive through the change log: a
//!   follower applies every event (woken by PostgreSQL's NOTIFY, or a slow
//!   poll as the safety net) and invalidates what it touched.
//! - Every entry also expires after a time-to-live, which bounds staleness
//!   even if notifications stop (the documented worst case).
//! - A permission check that names a revision newer than what the follower
//!   has applied is answered from the database, so "at least this revision"
//!   always holds.
//!
//! Loading races with invalidation: a value read from the database just
//! before an invalidation must not be stored after it. Each key belongs to a
//! shard with an epoch that every invalidation bumps *before* removing
//! entries; a loader stores its value and then re-reads the epoch, and takes
//! the value out again if the epoch moved.

use std::{
    collections::hash_map::RandomState,
    future::Future,
    hash::{BuildHasher, Hash},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use moka::sync::Cache;
use sea_orm::ConnectionTrait;
use tokio::sync::watch;
use tracing::warn;

use super::{Roster, Signal};
use crate::{
    domain::{
        Error,
        event::{Event, EventCursor, EventType},
        ids::{OrganizationId, UserId},
        model::{Organization, Role},
    },
    store,
};

const SHARDS: usize = 64;
/// Events applied per query by the follower.
const FOLLOW_BATCH: u64 = 1_000;
/// How often the follower looks without a wake-up.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// A bounded cache whose loads cannot bring back an invalidated value.
struct Guarded<K, V> {
    entries: Cache<K, V>,
    epochs: Vec<AtomicU64>,
    hasher: RandomState,
}

impl<K, V> Guarded<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            epochs: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }

    fn epoch(&self, key: &K) -> &AtomicU64 {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.epochs[index]
    }

    async fn get_or_load<F>(&self, key: K, load: F) -> Result<V, Error>
    where
        F: Future<Output = Result<V, Error>>,
    {
        if let Some(value) = self.entries.get(&key) {
            return Ok(value);
        }
        let epoch = self.epoch(&key).load(Ordering::SeqCst);
        let value = load.await?;
        self.entries.insert(key.clone(), value.clone());
        if self.epoch(&key).load(Ordering::SeqCst) != epoch {
            self.entries.invalidate(&key);
        }
        Ok(value)
    }

    fn invalidate(&self, key: &K) {
        self.epoch(key).fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(key);
    }

    fn invalidate_where(&self, predicate: impl Fn(&K) -> bool + Send + Sync + 'static) {
        for epoch in &self.epochs {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        if self
            .entries
            .invalidate_entries_if(move |key, _| predicate(key))
            .is_err()
        {
            self.entries.invalidate_all();
        }
    }
}

/// The read cache; see the module documentation.
pub struct ReadCache {
    roles: Guarded<(OrganizationId, UserId), Option<Role>>,
    organizations: Guarded<OrganizationId, Option<Organization>>,
    applied: Mutex<EventCursor>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("roles", &self.roles.entries.entry_count())
            .field("organizations", &self.organizations.entries.entry_count())
            .field("applied", &self.applied())
            .finish()
    }
}

impl ReadCache {
    /// At most `capacity` memberships (and a quarter as many organizations),
    /// each kept at most `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            roles: Guarded::new(capacity, ttl),
            organizations: Guarded::new((capacity / 4).max(1), ttl),
            applied: Mutex::new(EventCursor::START),
        }
    }

    /// How far the follower has applied the change log.
    pub fn applied(&self) -> EventCursor {
        self.applied
            .lock()
            .map(|c| *c)
            .unwrap_or(EventCursor::START)
    }

    fn set_applied(&self, cursor: EventCursor) {
        if let Ok(mut applied) = self.applied.lock() {
            *applied = (*applied).max(cursor);
        }
    }

    /// `user`'s role in `organization` (`None`: not a member), reflecting at
    /// least `at_least` if given.
    pub async fn role(
        &self,
        conn: &impl ConnectionTrait,
        organization: OrganizationId,
        user: &UserId,
        at_least: Option<EventCursor>,
    ) -> Result<Option<Role>, Error> {
        if at_least.is_some_and(|revision| revision > self.applied()) {
            return store::membership::role_of(conn, organization, user).await;
        }
        self.roles
            .get_or_load(
                (organization, user.clone()),
                store::membership::role_of(conn, organization, user),
            )
            .await
    }

    /// The organization, if it exists.
    pub async fn organization(
        &self,
        conn: &impl ConnectionTrait,
        id: OrganizationId,
    ) -> Result<Option<Organization>, Error> {
        self.organizations
            .get_or_load(id, store::organization::find(conn, id))
            .await
    }

    /// Forgets `user`'s role in `organization`.
    pub fn invalidate_role(&self, organization: OrganizationId, user: &UserId) {
        self.roles.invalidate(&(organization, user.clone()));
    }

    /// Forgets the organization's name, logo and version.
    pub fn invalidate_organization(&self, organization: OrganizationId) {
        self.organizations.invalidate(&organization);
    }

    /// Forgets the organization and every role in it (it was deleted).
    pub fn forget_organization(&self, organization: OrganizationId) {
        self.organizations.invalidate(&organization);
        self.roles
            .invalidate_where(move |key| key.0 == organization);
    }

    /// Applies one event of the change log.
    pub fn apply(&self, event: &Event) {
        let kind = event.event_type.as_str();
        let is = |t: EventType| t.as_str() == kind;
        if is(EventType::MemberAdded)
            || is(EventType::MemberRoleChanged)
            || is(EventType::MemberRemoved)
        {
            self.invalidate_role(
                event.organization_id,
                &UserId::from_trusted(event.subject_user_id.clone()),
            );
        } else if is(EventType::OrganizationUpdated) {
            self.invalidate_organization(event.organization_id);
        } else if is(EventType::OrganizationDeleted) {
            self.forget_organization(event.organization_id);
        }
        self.set_applied(event.cursor);
    }
}

impl Roster {
    /// Starts the cache's follower at the newest visible event. Must run
    /// before the server answers: every change after this point then
    /// reaches the cache.
    pub async fn start_following(&self) -> Result<(), Error> {
        let cursor = store::event::latest_visible(self.store.db()).await?;
        self.cache.set_applied(cursor);
        Ok(())
    }

    /// Applies the change log to the cache until `stop` turns true.
    pub async fn follow_changes(&self, wake: Signal, mut stop: watch::Receiver<bool>) {
        let mut wake = wake.subscribe();
        loop {
            wake.borrow_and_update();
            match store::event::list_after(self.store.db(), self.cache.applied(), FOLLOW_BATCH)
                .await
            {
                Ok(events) if !events.is_empty() => {
                    for event in &events {
                        self.cache.apply(event);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(err) => warn!(error = %err, "read cache follower: cannot read events"),
            }
            tokio::select! {
                _ = wake.changed() => {}
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_load_that_races_an_invalidation_is_not_kept() {
        let cache: Guarded<u32, &'static str> = Guarded::new(10, Duration::from_secs(60));
        let value = cache
            .get_or_load(7, async {
                // The database answered "old"; meanwhile the value changed.
                cache.invalidate(&7);
                Ok("old")
            })
            .await;
        assert_eq!(
            value.ok(),
            Some("old"),
            "the caller still gets what it read"
        );
        assert_eq!(
            cache.entries.get(&7),
            None,
            "but the cache does not keep it"
        );
        let fresh = cache.get_or_load(7, async { Ok("new") }).await;
        assert_eq!(fresh.ok(), Some("new"));
        assert_eq!(cache.entries.get(&7), Some("new"));
    }
}
