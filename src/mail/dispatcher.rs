//! Delivers the email outbox: claims due rows, sends them through the
//! [`Mailer`], marks them sent, or schedules a retry with exponential
//! backoff. An SMTP outage only delays mail; a restart resumes from the
//! table, and a delivered row is never sent again.
//!
//! Several replicas share the outbox through leases (`store::lease`): each
//! email's lease is renewed right before it is sent and every send is cut
//! off at the attempt timeout, which the lease outlives, so a slow SMTP
//! server cannot make two replicas send the same email.
//!
//! The one window for a duplicate is a crash (or a timeout) after the SMTP
//! server accepted a message and before the row was marked sent; the retry
//! carries the same `Message-ID`, so receiving servers can recognise it.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{MailError, Mailer, mask_emails_in};
use crate::{
    background::{self, Start, Wait},
    domain::{Error, event::NewEvent, ids::InvitationId, now},
    signal::Signal,
    store::{
        self, Store,
        lease::{Lease, LeasePolicy},
        mail::OutboxMail,
    },
};

/// Emails claimed per round trip.
const BATCH: u64 = 20;
/// The longest wait between two attempts at one email.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Delay before attempt `attempts + 1`: 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`].
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF)
}

/// The outbox's delivery loop.
pub struct Dispatcher {
    store: Store,
    mailer: Arc<dyn Mailer>,
    wake: Signal,
    /// Rung after a commit that recorded an event (a delivery failure).
    events: Signal,
    poll: Duration,
    lease: LeasePolicy,
}

impl Dispatcher {
    /// `wake` is signalled after an email is queued; `poll` is how often the
    /// outbox is checked anyway (retries, and rows queued by other replicas);
    /// `lease` bounds each send and sizes the lease on it; `events` is rung
    /// after recording a delivery failure.
    pub fn new(
        store: Store,
        mailer: Arc<dyn Mailer>,
        wake: Signal,
        events: Signal,
        poll: Duration,
        lease: LeasePolicy,
    ) -> Self {
        Self {
            store,
            mailer,
            wake,
            events,
            poll,
            lease,
        }
    }

    /// Runs until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        let this = &self;
        background::repeat(&stop, Some(&self.wake), Start::Now, move || async move {
            if let Err(err) = this.deliver_due().await {
                warn!(error = %err, "email outbox round failed; will retry");
            }
            Wait::Until(this.poll)
        })
        .await;
    }

    /// Sends every email that is due now; returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let mut delivered = 0;
        loop {
            let lease = self.lease.new_lease();
            // Claims, renewals and outcomes are writes: the writer's turn.
            let db = self.store.writer();
            let batch = store::mail::claim_due(db, now(), &lease, BATCH).await?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            for mail in batch {
                if !store::mail::renew(db, mail.id, &lease, now()).await? {
                    // Held up past the lease: another dispatcher has it now.
                    continue;
                }
                let sent = tokio::time::timeout(
                    self.lease.attempt_timeout,
                    self.mailer.send(mail.message.clone()),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(MailError::transient(format!(
                        "no answer within {:?}",
                        self.lease.attempt_timeout
                    )))
                });
                match sent {
                    Ok(()) => {
                        store::mail::mark_sent(db, mail.id, &lease, now()).await?;
                        delivered += 1;
                        info!(mail_id = %mail.id, message_id = %mail.message.message_id, "email delivered");
                    }
                    Err(err) if err.permanent => {
                        warn!(mail_id = %mail.id, error = %err, "email refused for good; not retrying");
                        self.give_up(&mail, &lease, &err).await?;
                    }
                    Err(err) => {
                        let delay = backoff(mail.attempts);
                        warn!(mail_id = %mail.id, error = %err, retry_in = ?delay, "email not delivered yet");
                        let next =
                            now() + chrono::Duration::from_std(delay).map_err(Error::internal)?;
                        store::mail::mark_retry(db, mail.id, &lease, next, &err.message).await?;
                    }
                }
            }
        }
    }
}

impl Dispatcher {
    /// Marks `mail` failed for good and, in the same transaction, records
    /// `invitation.delivery_failed` in its organization's log, so the
    /// inviter learns the address cannot be reached. Nothing is recorded if
    /// the lease ran out (the dispatcher that has the email now decides),
    /// or if the organization is gone.
    async fn give_up(
        &self,
        mail: &OutboxMail,
        lease: &Lease,
        err: &MailError,
    ) -> Result<(), Error> {
        let txn = self.store.begin_write().await?;
        if !store::mail::mark_failed(&txn, mail.id, lease, &err.message).await? {
            return Ok(());
        }
        let invitation = store::invitation::find(&txn, InvitationId(mail.invitation_id)).await?;
        let org = match &invitation {
            Some(invitation) => store::organization::lock(&txn, invitation.organization_id).await?,
            None => None,
        };
        if let (Some(invitation), Some(org)) = (invitation, org) {
            let error = mask_emails_in(&err.message);
            let event = NewEvent::invitation_delivery_failed(&org, &invitation, &error);
            store::event::record(&txn, event).await?;
        }
        txn.commit().await?;
        self.events.notify();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(6), Duration::from_secs(60));
        assert_eq!(backoff(1000), Duration::from_secs(60));
    }
}
