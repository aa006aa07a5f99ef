//! Who holds which role where, in memory: permission checks and roster's
//! own read authorization are answered from here.
//!
//! Freshness:
//! - A change made through this replica invalidates what it touched before
//!   the call returns: the very next check here sees it.
//! - Changes made through other replicas arrive through the change log: a
//!   follower applies every event (woken by PostgreSQL's NOTIFY, or a slow
//!   poll as the safety net) and invalidates what it touched.
//! - Every entry also expires after a time-to-live, which bounds staleness
//!   even if notifications stop (the documented worst case).
//! - A check that names a revision newer than what the follower has applied
//!   is answered from the database, so "at least this revision" always holds.
//!
//! Loading races with invalidation: an entry read from the database just
//! before an invalidation must not be stored after it. Each key belongs to a
//! shard with an epoch that every invalidation bumps *before* removing
//! entries; a loader stores its value and then re-reads the epoch, and takes
//! the value out again if the epoch moved.

use std::{
    hash::BuildHasher,
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
        model::Role,
    },
    store,
};

const SHARDS: usize = 64;
/// Events applied per query by the follower.
const FOLLOW_BATCH: u64 = 1_000;
/// How often the follower looks without a wake-up.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

type Key = (OrganizationId, UserId);

/// The role cache; see the module documentation.
pub struct MembershipCache {
    entries: Cache<Key, Option<Role>>,
    epochs: Vec<AtomicU64>,
    hasher: std::collections::hash_map::RandomState,
    applied: Mutex<EventCursor>,
}

impl std::fmt::Debug for MembershipCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembershipCache")
            .field("entries", &self.entries.entry_count())
            .field("applied", &self.applied())
            .finish()
    }
}

impl MembershipCache {
    /// At most `capacity` entries, each kept at most `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            epochs: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
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

    fn shard(&self, key: &Key) -> &AtomicU64 {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.epochs[index]
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
        let key = (organization, user.clone());
        if let Some(role) = self.entries.get(&key) {
            return Ok(role);
        }
        let epoch = self.shard(&key).load(Ordering::SeqCst);
        let role = store::membership::role_of(conn, organization, user).await?;
        self.entries.insert(key.clone(), role);
        if self.shard(&key).load(Ordering::SeqCst) != epoch {
            self.entries.invalidate(&key);
        }
        Ok(role)
    }

    /// Forgets `user`'s role in `organization`.
    pub fn invalidate(&self, organization: OrganizationId, user: &UserId) {
        let key = (organization, user.clone());
        self.shard(&key).fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(&key);
    }

    /// Forgets every role in `organization` (it was deleted).
    pub fn invalidate_organization(&self, organization: OrganizationId) {
        for epoch in &self.epochs {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        if self
            .entries
            .invalidate_entries_if(move |key, _| key.0 == organization)
            .is_err()
        {
            self.entries.invalidate_all();
        }
    }

    /// Applies one event of the change log.
    pub fn apply(&self, event: &Event) {
        let member_events = [
            EventType::MemberAdded,
            EventType::MemberRoleChanged,
            EventType::MemberRemoved,
        ];
        if member_events.iter().any(|t| t.as_str() == event.event_type) {
            self.invalidate(
                event.organization_id,
                &UserId::from_trusted(event.subject_user_id.clone()),
            );
        } else if event.event_type == EventType::OrganizationDeleted.as_str() {
            self.invalidate_organization(event.organization_id);
        }
        self.set_applied(event.cursor);
    }

    /// Entries held now (approximate).
    pub fn len(&self) -> u64 {
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Roster {
    /// Starts the cache's follower at the newest visible event. Must run
    /// before the server answers checks: every change after this point then
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
                Err(err) => warn!(error = %err, "membership cache follower: cannot read events"),
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

    #[test]
    fn invalidation_bumps_the_epoch_of_the_keys_shard() {
        let cache = MembershipCache::new(10, Duration::from_secs(60));
        let org = OrganizationId::new();
        let user = UserId::from_trusted("u".into());
        let key = (org, user.clone());
        cache.entries.insert(key.clone(), Some(Role::Admin));
        let before = cache.shard(&key).load(Ordering::SeqCst);
        cache.invalidate(org, &user);
        assert_eq!(cache.shard(&key).load(Ordering::SeqCst), before + 1);
        assert_eq!(cache.entries.get(&key), None);
    }
}
