//! Delivers developer identities: claims intents whose calls are due, makes
//! the call, and records what it learned, the identity's new state and
//! (when the state changed) an event, in one transaction.
//!
//! Nothing is lost and nothing is done twice: intents are written in the
//! transaction of the organization's change and survive crashes; leases
//! (`store::lease`) keep two replicas off one identity; a create whose
//! answer was lost is retried, and a portal that already has the developer
//! is recognised (by listing it) rather than counted as a failure.
//!
//! Faults of the portal as a whole (a refused token, an outage, timeouts,
//! answers that do not parse) pause the whole worker with backoff, logged
//! once per change, instead of being tried on every row.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::{PortalClient, PortalError};
use crate::{
    background::{self, Start, Wait},
    domain::{
        Error,
        event::{EventType, NewEvent},
        identity::{
            Confirmed, Desired, Identity, IdentityIntent, IdentityState, PortalStatus, backoff,
        },
        ids::{DeveloperId, OrganizationId},
        now,
    },
    signal::Signal,
    store::{
        self, Store,
        lease::{Lease, LeasePolicy},
    },
    telemetry,
};

/// Identities claimed per round trip.
const BATCH: u64 = 20;

/// Metric: calls to the Provider Portal, by operation and outcome.
pub const ATTEMPTS: &str = "roster_provider_portal_attempts_total";
/// Metric: failed calls, by HTTP status (or `timeout`, `unreachable`, `malformed`).
pub const FAILURES: &str = "roster_provider_portal_failures_total";
/// Metric: identities whose calls are still to be made.
pub const WAITING: &str = "roster_provider_portal_outbox_waiting";
/// Metric: 1 while the Provider Portal answers, 0 while it fails as a whole.
pub const UP: &str = "roster_provider_portal_up";

/// How the Provider Portal as a whole is doing, as this worker saw it last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalHealth {
    /// Nothing asked yet.
    Unknown,
    Answering,
    /// `fault` names the kind of trouble; `error` is the last one.
    Failing {
        fault: &'static str,
        error: String,
    },
}

/// What one call did.
#[derive(Debug)]
enum Called {
    /// The developer exists (created now, or found to exist already).
    Present(PortalStatus),
    /// The developer does not exist (deleted now, or there was none).
    Absent,
}

/// How a round of deliveries ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Nothing more is due.
    Done,
    /// The portal fails as a whole: pause before the next round.
    PortalFailing,
}

/// The delivery loop of developer identities.
pub struct IdentityWorker {
    store: Store,
    client: PortalClient,
    /// Rung after a commit that recorded events (the read cache follows).
    events: Signal,
    /// Rung when an intent is written.
    wake: Signal,
    /// Rung after every recorded attempt (a waiting create looks again).
    settled: Signal,
    lease: LeasePolicy,
    poll: Duration,
    max_backoff: Duration,
    health: watch::Sender<PortalHealth>,
}

impl std::fmt::Debug for IdentityWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityWorker")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl IdentityWorker {
    /// `attempt_timeout` bounds every call (and sizes the leases); `poll` is
    /// how often due retries are looked for; `events` is rung after commits.
    pub fn new(
        store: Store,
        client: PortalClient,
        events: Signal,
        attempt_timeout: Duration,
        poll: Duration,
        max_backoff: Duration,
    ) -> Self {
        Self {
            store,
            client,
            events,
            wake: Signal::default(),
            settled: Signal::default(),
            lease: LeasePolicy { attempt_timeout },
            poll,
            max_backoff,
            health: watch::channel(PortalHealth::Unknown).0,
        }
    }

    pub fn client(&self) -> &PortalClient {
        &self.client
    }

    /// Rung when an intent has been written.
    pub fn wake_signal(&self) -> &Signal {
        &self.wake
    }

    /// Rung after every recorded attempt.
    pub fn settled_signal(&self) -> &Signal {
        &self.settled
    }

    /// The portal's health as this worker sees it, and its changes.
    pub fn health(&self) -> watch::Receiver<PortalHealth> {
        self.health.subscribe()
    }

    /// Whether the portal fails as a whole right now.
    pub fn portal_failing(&self) -> bool {
        matches!(*self.health.borrow(), PortalHealth::Failing { .. })
    }

    /// Delivers due identities until `stop` is cancelled.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // Rounds in a row the portal failed as a whole: the pause grows.
        let portal_failures = &AtomicU32::new(0);
        let this = &*self;
        background::repeat(&stop, Some(&self.wake), Start::Now, move || async move {
            let wait = match this.deliver_due().await {
                Ok(Round::Done) => {
                    portal_failures.store(0, Ordering::Relaxed);
                    Wait::Until(this.poll)
                }
                Ok(Round::PortalFailing) => {
                    let failures = portal_failures.load(Ordering::Relaxed);
                    portal_failures.store(failures.saturating_add(1), Ordering::Relaxed);
                    Wait::Pause(backoff(failures, this.max_backoff))
                }
                Err(err) => {
                    warn!(error = %err, "developer identity outbox round failed; will retry");
                    Wait::Pause(this.poll)
                }
            };
            this.sample_waiting().await;
            wait
        })
        .await;
    }

    async fn sample_waiting(&self) {
        if !telemetry::metrics_enabled() {
            return;
        }
        if let Ok(count) = store::identity::unsettled_count(self.store.db()).await {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(WAITING).set(count as f64);
        }
    }

    /// Delivers one identity now, if it is due and no other worker holds
    /// it; the identity as it stands afterwards (`None`: not attempted).
    pub async fn deliver_now(&self, developer: &DeveloperId) -> Result<Option<Identity>, Error> {
        let lease = self.lease.new_lease();
        let claimed =
            store::identity::claim_due(self.store.writer(), now(), &lease, 1, Some(developer))
                .await?;
        let mut shown = None;
        for intent in claimed {
            shown = self.attempt(intent, &lease).await?.and_then(|a| a.identity);
        }
        Ok(shown)
    }

    /// Delivers every identity that is due now; false if the portal failed
    /// as a whole before all were done.
    pub async fn deliver_all(&self) -> Result<bool, Error> {
        Ok(self.deliver_due().await? == Round::Done)
    }

    /// Delivers every due identity (in rounds of [`BATCH`]).
    async fn deliver_due(&self) -> Result<Round, Error> {
        loop {
            let lease = self.lease.new_lease();
            let batch =
                store::identity::claim_due(self.store.writer(), now(), &lease, BATCH, None).await?;
            if batch.is_empty() {
                return Ok(Round::Done);
            }
            for intent in batch {
                let attempt = self.attempt(intent, &lease).await?;
                if attempt.is_some_and(|a| a.portal_failing) {
                    // The rest of the batch waits out the lease (or the
                    // next round); trying each now would only spin.
                    return Ok(Round::PortalFailing);
                }
            }
        }
    }

    /// Makes the call `intent` needs under `lease` and records the outcome;
    /// `None` if the lease was lost first.
    async fn attempt(
        &self,
        intent: IdentityIntent,
        lease: &Lease,
    ) -> Result<Option<Attempt>, Error> {
        if !store::identity::renew(self.store.writer(), &intent.developer_id, lease, now()).await? {
            return Ok(None);
        }
        let Some(call) = intent.next_call() else {
            return Ok(None);
        };
        let timeout = self.lease.attempt_timeout;
        let result = tokio::time::timeout(timeout, self.call(call, &intent.developer_id))
            .await
            .unwrap_or(Err(PortalError::Timeout(timeout)));
        let operation = match call {
            Desired::Present => "create",
            Desired::Absent => "delete",
        };
        if telemetry::metrics_enabled() {
            let outcome = if result.is_ok() { "ok" } else { "failed" };
            metrics::counter!(ATTEMPTS, "operation" => operation, "outcome" => outcome)
                .increment(1);
            if let Err(err) = &result {
                metrics::counter!(FAILURES, "status" => err.label()).increment(1);
            }
        }
        let portal_failing = result.as_ref().is_err_and(PortalError::is_portal_wide);
        self.note_health(&result);
        let identity = self
            .record(intent.organization_id, &intent.developer_id, lease, result)
            .await?;
        self.settled.notify();
        Ok(Some(Attempt {
            identity,
            portal_failing,
        }))
    }

    /// The HTTP call for `call`. A create the portal refuses as a duplicate
    /// (the description lists only 400 for refusals) is checked by listing:
    /// an answer lost on an earlier attempt must not count as a failure.
    async fn call(&self, call: Desired, developer: &DeveloperId) -> Result<Called, PortalError> {
        match call {
            Desired::Present => match self.client.create_developer(developer).await {
                Ok(created) => Ok(Called::Present(created.status)),
                Err(
                    refused @ PortalError::Rejected {
                        status: 400 | 409, ..
                    },
                ) => match self.client.find_developer(developer).await? {
                    Some(existing) => Ok(Called::Present(existing.status)),
                    None => Err(refused),
                },
                Err(err) => Err(err),
            },
            Desired::Absent => self
                .client
                .delete_developer(developer)
                .await
                .map(|_| Called::Absent),
        }
    }

    /// One log line and health change per change of the portal's health.
    fn note_health(&self, result: &Result<Called, PortalError>) {
        let next = match result {
            Err(err) if err.is_portal_wide() => PortalHealth::Failing {
                fault: err.fault(),
                error: err.to_string(),
            },
            // A refusal of one request is still a portal that answers.
            _ => PortalHealth::Answering,
        };
        let changed = self.health.send_if_modified(|health| {
            let same = match (&*health, &next) {
                (
                    PortalHealth::Failing { fault: a, .. },
                    PortalHealth::Failing { fault: b, .. },
                ) => a == b,
                (a, b) => a == b,
            };
            *health = next.clone();
            !same
        });
        if changed {
            match &next {
                PortalHealth::Failing { fault, error } => {
                    warn!(%error, "Provider Portal: {fault}; deliveries of developer identities back off until it recovers");
                    if telemetry::metrics_enabled() {
                        metrics::gauge!(UP).set(0.0);
                    }
                }
                PortalHealth::Answering | PortalHealth::Unknown => {
                    info!("Provider Portal answers; delivering developer identities");
                    if telemetry::metrics_enabled() {
                        metrics::gauge!(UP).set(1.0);
                    }
                }
            }
        }
    }

    /// Records an attempt's outcome in one transaction: what roster now
    /// knows, the state the organization shows, and an event if the state
    /// changed. Returns the identity as it now shows.
    async fn record(
        &self,
        organization: OrganizationId,
        developer: &DeveloperId,
        lease: &Lease,
        result: Result<Called, PortalError>,
    ) -> Result<Option<Identity>, Error> {
        let txn = self.store.begin_write().await?;
        // The organization first, then its identity: the order deleting an
        // organization takes them in, so the two cannot deadlock.
        store::organization::lock(&txn, organization).await?;
        let Some(before) = store::identity::find_held(&txn, developer, lease).await? else {
            // The lease ran out meanwhile; whoever holds it now records.
            // Ended at once: on PostgreSQL an open transaction would hold
            // the change log back for everyone.
            txn.rollback().await?;
            return Ok(None);
        };
        let mut after = before.clone();
        let (status, next_attempt) = match result {
            Ok(called) => {
                match called {
                    Called::Present(portal_status) => {
                        after.confirmed = Confirmed::Present;
                        after.portal_status = portal_status;
                    }
                    Called::Absent => after.confirmed = Confirmed::Absent,
                }
                after.attempts = 0;
                after.last_error.clear();
                // If the intent changed during the call, go again at once.
                (200, now())
            }
            Err(err) => {
                if !matches!(
                    err,
                    PortalError::Rejected { .. } | PortalError::Unauthorized { .. }
                ) {
                    // The request may have been carried out anyway.
                    after.confirmed = Confirmed::Unknown;
                }
                after.attempts = after.attempts.saturating_add(1);
                after.last_error = err.to_string();
                let delay = backoff(after.attempts - 1, self.max_backoff);
                (
                    err.status(),
                    now() + chrono::Duration::from_std(delay).map_err(Error::internal)?,
                )
            }
        };
        store::identity::record_attempt(&txn, &after, lease, status, next_attempt, now()).await?;
        let recorded = show_change(&txn, before.visible(), &after).await?;
        txn.commit().await?;
        if recorded {
            self.events.notify();
        }
        // A call the intent still needs (it changed meanwhile) goes next.
        if after.next_call().is_some() && after.attempts == 0 {
            self.wake.notify();
        }
        Ok(after.visible())
    }
}

/// What an attempt came to.
#[derive(Debug)]
struct Attempt {
    identity: Option<Identity>,
    portal_failing: bool,
}

/// Shows the identity of `after` on its organization and, if that differs
/// from what reads showed (`was`), records the event that says so. True if
/// it recorded one.
pub(crate) async fn show_change(
    conn: &impl sea_orm::ConnectionTrait,
    was: Option<Identity>,
    after: &IdentityIntent,
) -> Result<bool, Error> {
    let now_is = after.visible();
    if let Some(identity) = &now_is {
        store::identity::show_on_organization(
            conn,
            after.organization_id,
            &after.developer_id,
            identity,
        )
        .await?;
    }
    let Some(event) = NewEvent::identity_changed(
        after.organization_id,
        &after.developer_id,
        was.as_ref(),
        now_is.as_ref(),
    ) else {
        return Ok(false);
    };
    if let Some(identity) = now_is
        .as_ref()
        .filter(|i| i.state == IdentityState::Failing)
    {
        warn!(
            developer_id = %after.developer_id,
            org_id = %after.organization_id,
            attempts = identity.attempts,
            error = %identity.last_error,
            "developer identity delivery failing; retrying with backoff"
        );
    } else {
        info!(
            developer_id = %after.developer_id,
            org_id = %after.organization_id,
            state = now_is.as_ref().map(|i| i.state.as_str()).unwrap_or_default(),
            "developer identity {}",
            match event.event_type {
                EventType::IdentityProvisioned => "provisioned",
                EventType::IdentityDeprovisioned => "deprovisioned",
                _ => "changed",
            }
        );
    }
    store::event::record(conn, event).await?;
    Ok(true)
}
