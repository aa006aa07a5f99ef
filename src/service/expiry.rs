//! The expiry sweeper: stores `expired` on pending invitations whose time
//! has passed and records `invitation.expired`. Reads already show such
//! invitations as expired; the sweep makes it an event the Provider Portal
//! and the audit log see.
//!
//! It also purges deleted organizations past
//! `--deleted-organization-retention` (see `lifecycle`), and old slugs
//! retained past `--old-slug-ttl`. They stopped
//! resolving when their time passed (every read checks it, and a create or
//! rename to one removes it first), so the purge records no event: it only
//! keeps the table to what still counts.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Roster, now};
use crate::{
    background::{self, Start, Wait},
    domain::{Error, event::NewEvent, model::InvitationState},
    store::{self, invitation::Guard},
};

/// Invitations expired (or old slugs purged) per sweep round trip.
const SWEEP_BATCH: u64 = 100;

impl Roster {
    /// Expires every lapsed invitation; returns how many it expired. Safe to
    /// run on many replicas at once: each expiry is a guarded transition,
    /// and only the replica whose transition succeeds records the event.
    pub async fn expire_lapsed_invitations(&self) -> Result<usize, Error> {
        let mut expired = 0;
        loop {
            let lapsed =
                store::invitation::list_lapsed(self.store.db(), now(), SWEEP_BATCH).await?;
            if lapsed.is_empty() {
                return Ok(expired);
            }
            for invitation in lapsed {
                let txn = self.begin_system_write().await?;
                let Some(org) = store::organization::lock(&txn, invitation.organization_id).await?
                else {
                    continue;
                };
                let now = now();
                if store::invitation::transition(
                    &txn,
                    invitation.id,
                    InvitationState::Expired,
                    now,
                    Guard::Lapsed,
                )
                .await?
                {
                    txn.record(NewEvent::invitation_expired(
                        &org,
                        invitation.id,
                        &invitation.email,
                    ))
                    .await?;
                    self.commit(txn).await?;
                    expired += 1;
                }
            }
        }
    }

    /// Removes every old slug whose retention has ended; returns how many.
    /// Safe on many replicas at once: each delete re-checks the time.
    pub async fn purge_lapsed_slugs(&self) -> Result<u64, Error> {
        let mut purged = 0;
        loop {
            // No transaction: each delete is one statement that re-checks
            // the time, and a sweep with nothing to purge is one SELECT.
            let count = store::slug::purge_lapsed(self.store.writer(), now(), SWEEP_BATCH).await?;
            purged += count;
            if count < SWEEP_BATCH {
                return Ok(purged);
            }
        }
    }

    /// Sweeps at once and then every `interval` until `stop` is cancelled.
    pub async fn run_expiry_sweeper(&self, interval: Duration, stop: &CancellationToken) {
        background::repeat(stop, None, Start::Now, || self.sweep_once(interval)).await;
    }

    /// One sweep: invitations, then old slugs; failures are logged and
    /// retried at the next.
    async fn sweep_once(&self, interval: Duration) -> Wait {
        match self.expire_lapsed_invitations().await {
            Ok(0) => {}
            Ok(count) => info!(count, "expired lapsed invitations"),
            Err(err) => warn!(error = %err, "invitation expiry sweep failed; will retry"),
        }
        match self.purge_lapsed_slugs().await {
            Ok(0) => {}
            Ok(count) => info!(count, "purged old slugs past their retention"),
            Err(err) => warn!(error = %err, "old slug purge failed; will retry"),
        }
        self.sweep_deleted_organizations().await;
        Wait::Until(interval)
    }
}
