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

use tokio::sync::watch;
use tracing::{info, warn};

use super::{MailError, Mailer};
use crate::{
    domain::{Error, now},
    signal::Signal,
    store::{self, Store, lease::LeasePolicy},
};

/// After a wake-up, how long the dispatcher lets further emails gather
/// before it claims a batch.
const DISPATCH_COALESCE: Duration = Duration::from_millis(20);
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
    poll: Duration,
    lease: LeasePolicy,
}

impl Dispatcher {
    /// `wake` is signalled after an email is queued; `poll` is how often the
    /// outbox is checked anyway (retries, and rows queued by other replicas);
    /// `lease` bounds each send and sizes the lease on it.
    pub fn new(
        store: Store,
        mailer: Arc<dyn Mailer>,
        wake: Signal,
        poll: Duration,
        lease: LeasePolicy,
    ) -> Self {
        Self {
            store,
            mailer,
            wake,
            poll,
            lease,
        }
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut wake = self.wake.subscribe();
        loop {
            wake.borrow_and_update();
            if let Err(err) = self.deliver_due().await {
                warn!(error = %err, "email outbox round failed; will retry");
            }
            let woken = tokio::select! {
                _ = wake.changed() => true,
                () = tokio::time::sleep(self.poll) => false,
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            if woken {
                tokio::time::sleep(DISPATCH_COALESCE).await;
            }
        }
    }

    /// Sends every email that is due now; returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let mut delivered = 0;
        loop {
            let lease = self.lease.new_lease();
            let db = self.store.db();
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
                        store::mail::mark_failed(db, mail.id, &lease, &err.message).await?;
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
