//! Delivers the email outbox: claims due rows, sends them through the
//! [`Mailer`], marks them sent, or schedules a retry with exponential
//! backoff. An SMTP outage only delays mail; a restart resumes from the
//! table, and a delivered row is never sent again.
//!
//! The one window for a duplicate is a crash after the SMTP server accepted
//! a message and before the row was marked sent; the retry carries the same
//! `Message-ID`, so receiving servers can recognise it.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tracing::{info, warn};

use super::Mailer;
use crate::{
    domain::Error,
    service::{Signal, now},
    store::{self, Store},
};

/// How long a claimed email is reserved for the dispatcher that claimed it.
/// After a wake-up, how long the dispatcher lets further emails gather
/// before it claims a batch.
const DISPATCH_COALESCE: Duration = Duration::from_millis(20);
const LEASE: Duration = Duration::from_secs(120);
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
}

impl Dispatcher {
    /// `wake` is signalled after an email is queued; `poll` is how often the
    /// outbox is checked anyway (retries, and rows queued by other replicas).
    pub fn new(store: Store, mailer: Arc<dyn Mailer>, wake: Signal, poll: Duration) -> Self {
        Self {
            store,
            mailer,
            wake,
            poll,
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
            let batch = store::mail::claim_due(self.store.db(), now(), LEASE, BATCH).await?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            for mail in batch {
                let db = self.store.db();
                match self.mailer.send(mail.message.clone()).await {
                    Ok(()) => {
                        store::mail::mark_sent(db, mail.id, now()).await?;
                        delivered += 1;
                        info!(mail_id = %mail.id, message_id = %mail.message.message_id, "email delivered");
                    }
                    Err(err) if err.permanent => {
                        warn!(mail_id = %mail.id, error = %err, "email refused for good; not retrying");
                        store::mail::mark_failed(db, mail.id, &err.message).await?;
                    }
                    Err(err) => {
                        let delay = backoff(mail.attempts);
                        warn!(mail_id = %mail.id, error = %err, retry_in = ?delay, "email not delivered yet");
                        let next =
                            now() + chrono::Duration::from_std(delay).map_err(Error::internal)?;
                        store::mail::mark_retry(db, mail.id, next, &err.message).await?;
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
