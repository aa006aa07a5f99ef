//! Reading the change log: the ordered stream and pages for the Provider
//! Portal (service principals with `events.read`), and one organization's
//! events, newest first, as its audit log (owners and admins).

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use tracing::instrument;

use super::Roster;
use crate::{
    auth::{
        Caller,
        policy::{Action, authorize_scope},
    },
    domain::{
        Error, Reason,
        event::{Event, EventCursor},
        ids::OrganizationId,
        page::{Page, PageRequest},
    },
    store,
};

/// Events in log order, until the client goes away or the server stops
/// (then it ends with `Unavailable(ShuttingDown)`).
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Error>> + Send>>;

/// After a wake-up, how long a stream lets further commits gather before
/// it reads: a burst of writes then costs one query per follower.
const STREAM_COALESCE: Duration = Duration::from_millis(5);
/// Events read per query while catching up.
const STREAM_BATCH: u64 = 500;
/// How often a follower looks even without a wake-up: the safety net
/// should a notification be lost (say, while reconnecting to PostgreSQL).
const SAFETY_POLL: Duration = Duration::from_secs(1);
/// How soon to look again when events are committed but held back behind
/// an older transaction that is still running.
const HELD_BACK_RETRY: Duration = Duration::from_millis(20);

/// A validated `ListAuditEvents`.
#[derive(Debug)]
pub struct AuditQuery {
    pub organization: OrganizationId,
    pub page: PageRequest,
}

impl Roster {
    /// A page of the log after `cursor`, for consumers that poll. A token
    /// limited to some organizations sees only their events.
    #[instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn list_events(
        &self,
        caller: &Caller,
        cursor: EventCursor,
        limit: u64,
    ) -> Result<Vec<Event>, Error> {
        authorize_scope(caller, Action::ListEvents)?;
        let only = caller.organizations.as_deref();
        store::event::list_after(self.store.db(), cursor, limit, only).await
    }

    /// Everything after `cursor`, then each new event as it commits.
    pub fn stream_events(
        self: Arc<Self>,
        caller: &Caller,
        mut cursor: EventCursor,
    ) -> Result<EventStream, Error> {
        authorize_scope(caller, Action::StreamEvents)?;
        let only = caller.organizations.clone();
        let stream = async_stream::try_stream! {
            let only = only.as_deref();
            let mut wake = self.events.subscribe();
            let mut stop = self.stop.clone();
            loop {
                // A shutdown ends the stream with UNAVAILABLE, never OK: the
                // client must resume from its cursor on another replica,
                // not conclude the log has ended.
                if *stop.borrow() {
                    Err(Error::Unavailable(Reason::ShuttingDown))?;
                }
                // Mark wake-ups seen *before* reading: one that arrives
                // while we read makes the wait below return at once.
                wake.borrow_and_update();
                let batch =
                    store::event::list_after(self.store.db(), cursor, STREAM_BATCH, only).await?;
                if !batch.is_empty() {
                    for event in batch {
                        cursor = event.cursor;
                        yield event;
                    }
                    continue;
                }
                let delay = if store::event::exists_after(self.store.db(), cursor, only).await? {
                    HELD_BACK_RETRY
                } else {
                    SAFETY_POLL
                };
                let woken = tokio::select! {
                    _ = wake.changed() => true,
                    () = tokio::time::sleep(delay) => false,
                    _ = stop.wait_for(|stopped| *stopped) => continue,
                };
                if woken {
                    tokio::time::sleep(STREAM_COALESCE).await;
                }
            }
        };
        Ok(Box::pin(stream))
    }

    /// One organization's events, newest first.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %query.organization))]
    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        query: AuditQuery,
    ) -> Result<Page<Event>, Error> {
        self.authorize_read(caller, Action::ListAuditEvents, query.organization)
            .await?;
        let rows =
            store::event::list_for_organization(self.store.db(), query.organization, &query.page)
                .await?;
        Ok(query.page.finish(rows, store::event::page_key))
    }
}
