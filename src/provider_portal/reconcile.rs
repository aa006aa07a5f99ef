//! Reconciliation: roster's organizations compared with the Provider
//! Portal's developers (`GET /api/developers`, page by page).
//!
//! `roster provider-portal reconcile` prints the comparison (a dry run);
//! with `--apply` it creates the missing identities and deletes those that
//! deleted organizations left behind; developers roster never knew are
//! deleted only with `--delete-unknown`. The server runs the same
//! comparison periodically: it refreshes pending/active, re-deletes what
//! deleted organizations left behind (roster's intent there is certain) and
//! exports the counts as metrics; it never creates or deletes anything else.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    client::{Developer, PortalError},
    worker::{IdentityWorker, show_change},
};
use crate::background::{self, Start, Wait};
use crate::{
    domain::{
        Error,
        identity::{Confirmed, Desired, Identity, IdentityIntent, IdentityState, PortalStatus},
        ids::{DeveloperId, OrganizationId},
        now,
    },
    store::{self, Store, identity::OrganizationIdentity},
    telemetry,
};

/// Metric: the last comparison's counts, by kind.
pub const RECONCILED: &str = "roster_provider_portal_reconciled";

/// Why a reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Portal(#[from] PortalError),
    #[error("database: {0}")]
    Database(#[from] Error),
}

/// An organization whose identity the Provider Portal lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub organization: OrganizationIdentity,
}

/// The portal's status of an identity differs from what roster shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusDiffers {
    pub organization: OrganizationIdentity,
    pub portal: PortalStatus,
}

/// What differs between roster and the Provider Portal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Organizations whose identity the portal has, as roster shows it.
    pub in_sync: usize,
    /// Organizations still being delivered (not counted as missing).
    pub in_flight: usize,
    /// Organizations whose identity the portal lacks (and no delivery is under way).
    pub missing: Vec<Missing>,
    /// Identities the portal has that roster shows as local, or with
    /// another pending/active status.
    pub status_differs: Vec<StatusDiffers>,
    /// Developers whose organization roster deleted.
    pub left_behind: Vec<(OrganizationId, DeveloperId)>,
    /// Developers roster knows nothing of.
    pub unknown: Vec<Developer>,
}

impl Comparison {
    /// Whether roster and the portal agree (nothing in flight counts).
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.status_differs.is_empty()
            && self.left_behind.is_empty()
            && self.unknown.is_empty()
    }

    /// The counts, by kind, as the metric labels them.
    pub fn counts(&self) -> [(&'static str, usize); 6] {
        [
            ("in_sync", self.in_sync),
            ("in_flight", self.in_flight),
            ("missing", self.missing.len()),
            ("status_differs", self.status_differs.len()),
            ("left_behind", self.left_behind.len()),
            ("unknown", self.unknown.len()),
        ]
    }
}

/// Compares roster's organizations (and the tombstones of deleted ones)
/// with every developer the portal lists.
pub async fn compare(store: &Store, worker: &IdentityWorker) -> Result<Comparison, ReconcileError> {
    let developers = worker.client().list_all(None).await?;
    let db = store.db();
    let organizations = store::identity::organizations(db).await?;
    let intents: HashMap<String, IdentityIntent> = store::identity::all(db)
        .await?
        .into_iter()
        .map(|i| (i.developer_id.as_str().to_owned(), i))
        .collect();
    let mut portal: HashMap<String, Developer> =
        developers.into_iter().map(|d| (d.id.clone(), d)).collect();
    let mut comparison = Comparison::default();
    for organization in organizations {
        let developer = portal.remove(organization.developer_id.as_str());
        match developer {
            Some(developer) => {
                let shown = match developer.status {
                    PortalStatus::Pending => IdentityState::PendingApproval,
                    PortalStatus::Active | PortalStatus::Unknown => IdentityState::Active,
                };
                if organization.state == shown {
                    comparison.in_sync += 1;
                } else if organization.state.is_in_flight() {
                    comparison.in_flight += 1;
                } else {
                    comparison.status_differs.push(StatusDiffers {
                        organization,
                        portal: developer.status,
                    });
                }
            }
            None if organization.state.is_in_flight() => comparison.in_flight += 1,
            None => comparison.missing.push(Missing { organization }),
        }
    }
    for (id, developer) in portal {
        match intents.get(&id) {
            Some(intent) if intent.desired == Desired::Absent => {
                if intent.next_call().is_some() {
                    comparison.in_flight += 1;
                } else {
                    comparison
                        .left_behind
                        .push((intent.organization_id, intent.developer_id.clone()));
                }
            }
            _ => comparison.unknown.push(developer),
        }
    }
    comparison
        .missing
        .sort_by(|a, b| a.organization.slug.cmp(&b.organization.slug));
    comparison.unknown.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(comparison)
}

/// What [`apply`] may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    /// Create the missing identities.
    pub create_missing: bool,
    /// Delete developers roster knows nothing of.
    pub delete_unknown: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub refreshed: usize,
    pub requeued_creates: usize,
    pub requeued_deletes: usize,
    pub deleted_unknown: usize,
}

/// Brings roster's knowledge in line with `comparison`: refreshes statuses,
/// re-queues the deletes that deleted organizations left behind and, as
/// `changes` allows, queues the missing creates and deletes unknown
/// developers. Queued calls go through the outbox (the caller's worker, or
/// any replica's).
pub async fn apply(
    store: &Store,
    worker: &IdentityWorker,
    comparison: &Comparison,
    changes: Changes,
) -> Result<Applied, ReconcileError> {
    let mut applied = Applied::default();
    for differs in &comparison.status_differs {
        let o = &differs.organization;
        if correct(
            store,
            o.organization_id,
            &o.developer_id,
            Desired::Present,
            Confirmed::Present,
            differs.portal,
        )
        .await?
        {
            applied.refreshed += 1;
        }
    }
    for (organization, developer) in &comparison.left_behind {
        if correct(
            store,
            *organization,
            developer,
            Desired::Absent,
            Confirmed::Present,
            PortalStatus::Unknown,
        )
        .await?
        {
            applied.requeued_deletes += 1;
        }
    }
    if changes.create_missing {
        for missing in &comparison.missing {
            let o = &missing.organization;
            if correct(
                store,
                o.organization_id,
                &o.developer_id,
                Desired::Present,
                Confirmed::Absent,
                PortalStatus::Unknown,
            )
            .await?
            {
                applied.requeued_creates += 1;
            }
        }
    }
    if changes.delete_unknown {
        for developer in &comparison.unknown {
            // Not roster's: deleted directly, with no outbox row or event.
            if let Ok(id) = DeveloperId::parse("developer_id", &developer.id) {
                worker.client().delete_developer(&id).await?;
                applied.deleted_unknown += 1;
            }
        }
    }
    worker.wake_signal().notify();
    Ok(applied)
}

/// Corrects one intent (unless a worker holds it) and shows the change on
/// the organization, with its event, in one transaction.
async fn correct(
    store: &Store,
    organization: OrganizationId,
    developer: &DeveloperId,
    desired: Desired,
    confirmed: Confirmed,
    portal_status: PortalStatus,
) -> Result<bool, Error> {
    let txn = store.begin_write().await?;
    // The organization before its identity, as everywhere (no deadlocks).
    store::organization::lock(&txn, organization).await?;
    // What reads showed: the organization's state, or for a deleted one,
    // what its tombstone said.
    let was = match store::identity::shown_state(&txn, organization).await? {
        Some(state) => Some(Identity::new(state)),
        None => store::identity::find(&txn, developer)
            .await?
            .and_then(|intent| intent.visible()),
    };
    if !store::identity::correct(
        &txn,
        developer,
        organization,
        desired,
        confirmed,
        portal_status,
        now(),
    )
    .await?
    {
        // A worker holds it; its attempt settles what this would have. Ended
        // at once: on PostgreSQL an open transaction holds the change log back.
        txn.rollback().await?;
        return Ok(false);
    }
    let after = store::identity::find(&txn, developer)
        .await?
        .ok_or_else(|| Error::internal("corrected identity vanished"))?;
    show_change(&txn, was, &after).await?;
    txn.commit().await?;
    Ok(true)
}

/// Compares every `interval` (the first time after one) until `stop` is cancelled.
pub async fn run_periodically(
    store: Store,
    worker: Arc<IdentityWorker>,
    interval: Duration,
    stop: CancellationToken,
) {
    // The last counts logged: a change of them is logged again.
    let last = &std::sync::Mutex::new(None);
    let (store, worker) = (&store, &worker);
    background::repeat(&stop, None, Start::After(interval), move || async move {
        let logged = last.lock().ok().and_then(|last| *last);
        if let Some(counts) = reconcile_once(store, worker, logged).await
            && let Ok(mut last) = last.lock()
        {
            *last = Some(counts);
        }
        Wait::Until(interval)
    })
    .await;
}

/// One periodic comparison: refreshes what it may, exports the counts, and
/// logs them unless they are `logged` already. The counts, if it got them.
async fn reconcile_once(
    store: &Store,
    worker: &IdentityWorker,
    logged: Option<[(&'static str, usize); 6]>,
) -> Option<[(&'static str, usize); 6]> {
    let comparison = match compare(store, worker).await {
        Ok(comparison) => comparison,
        Err(err) => {
            warn!(error = %err, "periodic reconciliation with the Provider Portal failed");
            return None;
        }
    };
    let changes = Changes {
        create_missing: false,
        delete_unknown: false,
    };
    if let Err(err) = apply(store, worker, &comparison, changes).await {
        warn!(error = %err, "periodic reconciliation could not record what it found");
    }
    let counts = comparison.counts();
    if telemetry::metrics_enabled() {
        for (kind, count) in counts {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(RECONCILED, "kind" => kind).set(count as f64);
        }
    }
    if logged != Some(counts) {
        if comparison.missing.is_empty() && comparison.unknown.is_empty() {
            info!(?counts, "reconciled with the Provider Portal");
        } else {
            warn!(
                ?counts,
                "the Provider Portal and roster differ: run `roster provider-portal reconcile` to see how"
            );
        }
    }
    Some(counts)
}
