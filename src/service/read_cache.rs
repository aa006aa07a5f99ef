//! Roles, organizations and slugs in memory: permission checks (by
//! organization id or slug), roster's own read authorization and
//! `GetOrganization` are answered from here. Its follower is the process's
//! one reader of new events: it applies each batch here, then publishes it
//! to the live event streams ([`super::EventFeed`]).
//!
//! Slugs: the slug index maps a slug to the organization it leads to (its
//! current slug, or an old one it retains after a rename, with the time it
//! stops), or to nothing. Every event that names a slug (created, renamed,
//! deleted) invalidates the slugs it names, and a deletion every slug that
//! led to the organization, on every replica through the change log; an old
//! slug whose time has passed is never served, cached or not.
//!
//! Freshness:
//! - A change made through this replica invalidates what it touched before
//!   the call returns: committing a use-case applies the events it recorded
//!   ([`ReadCache::apply_committed`]), so the very next read here sees it.
//! - Changes made through other replicas arrive through the change log: a
//!   follower applies every event (woken by PostgreSQL's NOTIFY, or a slow
//!   poll as the safety net) and invalidates what it touched.
//! - The cache is trusted only while the follower has confirmed, within the
//!   last `max_staleness`, that it has applied every committed change (none
//!   is left, visible or held back). If it cannot (the database is slow, a
//!   long transaction holds the log back, notifications stall), reads go to
//!   the database until it can. So no cached answer is older than
//!   `max_staleness`: that is the documented worst case.
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
    time::{Duration, Instant},
};

use moka::sync::Cache;
use sea_orm::ConnectionTrait;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Roster, Signal, now};
use crate::{
    background::{self, Start, Wait},
    domain::{
        Error,
        event::{Event, EventCursor, EventType, FieldChange, NewEvent, SLUG_FIELD},
        ids::{OrganizationId, UserId},
        model::{Organization, Role, SlugTarget},
    },
    store,
};

/// Invalidation epochs per cache, keys hashed onto them: an invalidation
/// bumps its key's epoch, and a load that began before it is not stored.
/// More epochs, fewer loads discarded because an unrelated key changed.
const SHARDS: usize = 64;
/// Events applied per query by the follower.
const FOLLOW_BATCH: u64 = 1_000;
/// How often the follower looks without a wake-up: the safety net should
/// a notification be lost (say, while reconnecting to PostgreSQL).
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// How soon the follower looks again when committed events are held back
/// behind an older transaction that is still running (doubling up to
/// [`FOLLOW_POLL`] while it runs).
const HELD_BACK_RETRY: Duration = Duration::from_millis(20);
/// Entries are also dropped after this long, whatever happens, to keep the
/// cache's memory to what is in use.
const IDLE_EXPIRY: Duration = Duration::from_secs(600);

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

    fn invalidate_where(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) {
        for epoch in &self.epochs {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        if self
            .entries
            .invalidate_entries_if(move |key, value| predicate(key, value))
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
    /// Slug (normalized) → where it leads, if anywhere.
    slugs: Guarded<String, Option<SlugTarget>>,
    applied: Mutex<EventCursor>,
    /// When the follower last confirmed it had applied every committed change.
    synced_at: Mutex<Option<Instant>>,
    max_staleness: Duration,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("roles", &self.roles.entries.entry_count())
            .field("organizations", &self.organizations.entries.entry_count())
            .field("slugs", &self.slugs.entries.entry_count())
            .field("applied", &self.applied())
            .finish()
    }
}

impl ReadCache {
    /// At most `capacity` memberships (and a quarter as many organizations,
    /// and as many slugs);
    /// trusted while the follower is at most `max_staleness` behind.
    pub fn new(capacity: u64, max_staleness: Duration) -> Self {
        Self {
            roles: Guarded::new(capacity, IDLE_EXPIRY),
            organizations: Guarded::new((capacity / 4).max(1), IDLE_EXPIRY),
            slugs: Guarded::new((capacity / 4).max(1), IDLE_EXPIRY),
            applied: Mutex::new(EventCursor::START),
            synced_at: Mutex::new(None),
            max_staleness,
        }
    }

    /// Whether cached values may be served: the follower confirmed recently
    /// enough that nothing committed is missing from the cache.
    pub fn is_fresh(&self) -> bool {
        self.synced_at
            .lock()
            .ok()
            .and_then(|synced| *synced)
            .is_some_and(|at| at.elapsed() <= self.max_staleness)
    }

    /// Records that every change committed before `at` has been applied.
    fn mark_synced(&self, at: Instant) {
        if let Ok(mut synced) = self.synced_at.lock() {
            *synced = Some(synced.map_or(at, |previous| previous.max(at)));
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

    /// A revision that every answer given from now on (with `at_least`)
    /// reflects at least: while the cache serves, what the follower has
    /// applied (every event up to it is in the cache); otherwise answers
    /// come from the database, which holds every change up to its newest
    /// final event.
    pub async fn evaluated_at(
        &self,
        conn: &impl ConnectionTrait,
        at_least: Option<EventCursor>,
    ) -> Result<EventCursor, Error> {
        let applied = self.applied();
        if self.is_fresh() && at_least.is_none_or(|revision| revision <= applied) {
            return Ok(applied);
        }
        store::event::latest_visible(conn).await
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
        if !self.is_fresh() || at_least.is_some_and(|revision| revision > self.applied()) {
            return store::membership::role_of(conn, organization, user).await;
        }
        self.roles
            .get_or_load(
                (organization, user.clone()),
                store::membership::role_of(conn, organization, user),
            )
            .await
    }

    /// The organization, if it exists and is not deleted, reflecting at
    /// least `at_least` if given (its lifecycle decides checks, so a check
    /// that names a suspension's revision must see the suspension).
    pub async fn organization(
        &self,
        conn: &impl ConnectionTrait,
        id: OrganizationId,
        at_least: Option<EventCursor>,
    ) -> Result<Option<Organization>, Error> {
        if !self.is_fresh() || at_least.is_some_and(|revision| revision > self.applied()) {
            return store::organization::find(conn, id).await;
        }
        self.organizations
            .get_or_load(id, store::organization::find(conn, id))
            .await
    }

    /// The organization `slug` (normalized) leads to now, if any: its
    /// current slug or a retained old one, reflecting at least `at_least`
    /// if given.
    pub async fn resolve_slug(
        &self,
        conn: &impl ConnectionTrait,
        slug: &str,
        at_least: Option<EventCursor>,
    ) -> Result<Option<OrganizationId>, Error> {
        let now = now();
        if !self.is_fresh() || at_least.is_some_and(|revision| revision > self.applied()) {
            let target = store::slug::resolve(conn, slug, now).await?;
            return Ok(target.map(|target| target.organization));
        }
        let key = slug.to_owned();
        let mut target = self
            .slugs
            .get_or_load(key.clone(), store::slug::resolve(conn, slug, now))
            .await?;
        if target.is_some_and(|target| !target.holds_at(now)) {
            // An old slug whose time ran out while cached: no longer its.
            self.slugs.invalidate(&key);
            target = self
                .slugs
                .get_or_load(key, store::slug::resolve(conn, slug, now))
                .await?;
        }
        Ok(target
            .filter(|target| target.holds_at(now))
            .map(|target| target.organization))
    }

    /// Forgets where `slug` leads.
    fn invalidate_slug(&self, slug: &str) {
        if !slug.is_empty() {
            self.slugs.invalidate(&slug.to_owned());
        }
    }

    /// Forgets `user`'s role in `organization`.
    fn invalidate_role(&self, organization: OrganizationId, user: &UserId) {
        self.roles.invalidate(&(organization, user.clone()));
    }

    /// Forgets the organization's name, logo and version.
    fn invalidate_organization(&self, organization: OrganizationId) {
        self.organizations.invalidate(&organization);
    }

    /// Forgets the organization, every role in it and every slug that led
    /// to it (it was deleted).
    fn forget_organization(&self, organization: OrganizationId) {
        self.organizations.invalidate(&organization);
        self.roles
            .invalidate_where(move |key, _| key.0 == organization);
        self.slugs.invalidate_where(move |_, target| {
            target.is_some_and(|target| target.organization == organization)
        });
    }

    /// Applies an event this replica has just committed: forgets what it
    /// touched, before the use-case answers. How far the follower has
    /// applied the log does not move (earlier events may still be on
    /// their way); the follower applies the event again later, harmlessly.
    pub fn apply_committed(&self, event: &NewEvent) {
        self.forget_touched(
            Some(event.event_type),
            event.organization_id,
            &event.subject_user_id,
            &event.changes,
        );
    }

    /// Applies one event of the change log (of any replica).
    pub fn apply(&self, event: &Event) {
        self.forget_touched(
            EventType::parse(&event.event_type),
            event.organization_id,
            &event.subject_user_id,
            &event.changes,
        );
        self.set_applied(event.cursor);
    }

    /// Forgets what an event of `event_type` about `organization` (and
    /// member `subject_user`) touched. Every type says what it does to the
    /// cache: a new one does not compile until someone decides.
    fn forget_touched(
        &self,
        event_type: Option<EventType>,
        organization: OrganizationId,
        subject_user: &str,
        changes: &[FieldChange],
    ) {
        // Created, renamed, deleted, imported: the slugs named, old and new.
        for change in changes.iter().filter(|c| c.field == SLUG_FIELD) {
            self.invalidate_slug(&change.old);
            self.invalidate_slug(&change.new);
        }
        let Some(event_type) = event_type else {
            // Written by a newer roster (during a rolling upgrade): not
            // knowing what it changed, forget all of the organization.
            self.forget_organization(organization);
            return;
        };
        match event_type {
            EventType::MemberAdded | EventType::MemberRoleChanged | EventType::MemberRemoved => {
                self.invalidate_role(organization, &UserId::from_trusted(subject_user.to_owned()));
            }
            EventType::OrganizationCreated
            | EventType::OrganizationUpdated
            | EventType::IdentityProvisioned
            | EventType::IdentityDeprovisioned
            | EventType::IdentityChanged => self.invalidate_organization(organization),
            // Suspension changes what the organization's checks answer,
            // not who is a member: the organization (its lifecycle) is
            // what the checks read again.
            EventType::OrganizationSuspended | EventType::OrganizationResumed => {
                self.invalidate_organization(organization);
            }
            // An import writes an organization with all its members at
            // once. A deletion hides every membership (roles read as none
            // while deleted) and a restore brings them back; a purge
            // removes them for good.
            EventType::OrganizationDeleted
            | EventType::OrganizationRestored
            | EventType::OrganizationPurged
            | EventType::OrganizationImported => {
                self.forget_organization(organization);
            }
            // The cache holds no invitations: they are read from the database.
            EventType::InvitationCreated
            | EventType::InvitationResent
            | EventType::InvitationAccepted
            | EventType::InvitationRejected
            | EventType::InvitationCancelled
            | EventType::InvitationExpired
            | EventType::InvitationDeliveryFailed => {}
            // Each membership it ended has its own member.removed before it;
            // dropping every role of the user anyway costs one pass.
            EventType::UserErased => {
                let user = subject_user.to_owned();
                self.roles
                    .invalidate_where(move |key, _| key.1.as_str() == user);
            }
        }
    }
}

impl Roster {
    /// Starts the cache's follower at the newest visible event. Must run
    /// before the server answers: every change after this point then
    /// reaches the cache (and the live event streams).
    pub async fn start_following(&self) -> Result<(), Error> {
        let cursor = store::event::latest_visible(self.store.db()).await?;
        self.cache.set_applied(cursor);
        self.feed.start_at(cursor);
        // On SQLite this already confirms the cache; on PostgreSQL the
        // follower's next round will.
        self.follow_once(&mut None).await?;
        Ok(())
    }

    /// One round of the follower: applies every event that is final to the
    /// cache, then publishes them to the live event streams, and records
    /// how far the cache is known to be in sync.
    ///
    /// On SQLite, whatever is committed when the round starts is final, so
    /// a complete round puts the cache in sync as of its start. On
    /// PostgreSQL, a round started at `t` with next transaction id `x` is
    /// confirmed once a later round finds every transaction below `x`
    /// finished (`visible_below >= x`) and has applied their events: every
    /// change committed before `t` is then in the cache.
    async fn follow_once(&self, pending: &mut Option<(Instant, i64)>) -> Result<Round, Error> {
        let started = Instant::now();
        let db = self.store.db();
        let horizon = store::event::horizon(db).await?;
        let events =
            store::event::list_final(db, self.cache.applied(), FOLLOW_BATCH, horizon).await?;
        for event in &events {
            self.cache.apply(event);
        }
        let complete = (events.len() as u64) < FOLLOW_BATCH;
        self.feed.publish(events);
        if !complete {
            return Ok(Round::More);
        }
        match (horizon.visible_below, horizon.next_txid) {
            (Some(visible_below), Some(next_txid)) => {
                if let Some((at, below)) = *pending
                    && below <= visible_below
                {
                    self.cache.mark_synced(at);
                    *pending = None;
                }
                if pending.is_none() {
                    *pending = Some((started, next_txid));
                }
                // A transaction was still running: if it holds committed
                // events back, look again soon rather than at the next poll
                // (its end may ring no signal).
                if visible_below < next_txid
                    && store::event::exists_after(db, self.cache.applied(), None).await?
                {
                    return Ok(Round::HeldBack);
                }
            }
            _ => self.cache.mark_synced(started),
        }
        Ok(Round::Done)
    }

    /// Applies the change log to the cache, and hands it to the live event
    /// streams, until `stop` is cancelled. One reader for the whole process:
    /// however many streams follow, a batch of new events costs one query.
    pub async fn follow_changes(&self, wake: &Signal, stop: &CancellationToken) {
        // What a round leaves the next: the confirmation it waits for, and
        // how soon to look again while events are held back.
        let between = &tokio::sync::Mutex::new((None, HELD_BACK_RETRY));
        background::repeat(stop, Some(wake), Start::Now, move || async move {
            let mut between = between.lock().await;
            let (pending, held_back_retry) = &mut *between;
            match self.follow_once(pending).await {
                Ok(Round::More) => Wait::None,
                Ok(Round::HeldBack) => {
                    let delay = *held_back_retry;
                    *held_back_retry = (delay * 2).min(FOLLOW_POLL);
                    Wait::Until(delay)
                }
                Ok(Round::Done) => {
                    *held_back_retry = HELD_BACK_RETRY;
                    Wait::Until(FOLLOW_POLL)
                }
                Err(err) => {
                    warn!(error = %err, "read cache follower: cannot read events");
                    Wait::Until(FOLLOW_POLL)
                }
            }
        })
        .await;
    }
}

/// How a round of the follower ended.
enum Round {
    /// It read a full batch: there may be more at once.
    More,
    /// Everything final is applied, but committed events wait behind a
    /// transaction that is still running.
    HeldBack,
    /// Everything committed is applied.
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{identity::Identity, ids::DeveloperId, logo::Logo};

    fn organization() -> Organization {
        Organization {
            id: OrganizationId::new(),
            developer_id: DeveloperId::new(),
            name: "Acme".into(),
            slug: "acme".into(),
            logo: Logo::None,
            version: 1,
            created_at: now(),
            updated_at: now(),
            identity: Identity::new(crate::domain::identity::IdentityState::Local),
            limits: Default::default(),
            lifecycle: crate::domain::lifecycle::Lifecycle::default(),
        }
    }

    #[tokio::test]
    async fn a_committed_event_forgets_what_it_touched_but_not_how_far_the_log_is_applied() {
        let cache = ReadCache::new(100, Duration::from_secs(60));
        let org = organization();
        let (alice, bob) = (
            UserId::from_trusted("alice".into()),
            UserId::from_trusted("bob".into()),
        );
        let applied = EventCursor { txid: 0, seq: 7 };
        cache.set_applied(applied);
        for user in [&alice, &bob] {
            let key = (org.id, user.clone());
            let cached = cache
                .roles
                .get_or_load(key, async { Ok(Some(Role::Admin)) })
                .await;
            assert_eq!(cached.ok(), Some(Some(Role::Admin)));
        }
        let slug = cache
            .slugs
            .get_or_load("acme".into(), async { Ok(None) })
            .await;
        assert_eq!(slug.ok(), Some(None));

        cache.apply_committed(&NewEvent::member_removed(&org, &alice, &bob, Role::Admin));
        assert_eq!(
            cache.roles.entries.get(&(org.id, bob.clone())),
            None,
            "bob's role is gone"
        );
        assert_eq!(
            cache.roles.entries.get(&(org.id, alice.clone())),
            Some(Some(Role::Admin)),
            "alice's stays"
        );
        cache.apply_committed(&NewEvent::organization_created(&org, &alice));
        assert_eq!(
            cache.slugs.entries.get("acme"),
            None,
            "the slug it names is forgotten"
        );
        assert_eq!(
            cache.applied(),
            applied,
            "earlier events may still be on their way: only the follower moves the cursor"
        );
        // Applied again from the log: harmless, and now the cursor moves.
        let event = NewEvent::member_removed(&org, &alice, &bob, Role::Admin);
        cache.apply(&Event {
            cursor: EventCursor { txid: 0, seq: 8 },
            id: event.id,
            event_type: event.event_type.as_str().to_owned(),
            organization_id: event.organization_id,
            developer_id: event.developer_id.clone(),
            actor_id: event.actor_id.clone(),
            subject_user_id: event.subject_user_id.clone(),
            subject_email: event.subject_email.clone(),
            changes: event.changes.clone(),
            created_at: now(),
            acting_party: None,
        });
        assert_eq!(cache.roles.entries.get(&(org.id, bob)), None);
        assert_eq!(cache.applied(), EventCursor { txid: 0, seq: 8 });
    }

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
