//! Reading the change log: the ordered stream and pages for the Provider
//! Portal (service principals with `events.read`), and one organization's
//! events, newest first, as its audit log (owners and admins).

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use tracing::instrument;

use super::{Roster, event_feed::Next};
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

/// Events read per query while catching up.
const STREAM_BATCH: u64 = 500;
/// How long a stream that found nothing new, yet is behind the feed's
/// tail, waits before reading again (the tail is ahead of what its read
/// could see: a moment later it can).
const BEHIND_RETRY: Duration = Duration::from_millis(20);

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
    ///
    /// The stream catches up with its own paged reads, then joins the
    /// shared feed ([`EventFeed`](super::EventFeed)): while it follows, it
    /// reads nothing itself. Refused with `ResourceExhausted` when the
    /// configured number of streams is open; ends with `Aborted` if its
    /// client stops reading and its buffer fills. A token limited to some
    /// organizations gets only their events: the stream still reads and
    /// follows the whole log, so its cursor reaches the feed's tail (and
    /// joins it) however rarely its organizations change.
    pub fn stream_events(
        self: Arc<Self>,
        caller: &Caller,
        mut cursor: EventCursor,
    ) -> Result<EventStream, Error> {
        authorize_scope(caller, Action::StreamEvents)?;
        let permit = self.feed.admit()?;
        let only = caller.organizations.clone();
        let wanted = move |event: &Event| {
            only.as_ref()
                .is_none_or(|only| only.contains(&event.organization_id))
        };
        let stream = async_stream::try_stream! {
            let _permit = permit;
            let stop = self.stop.clone();
            // A shutdown ends the stream with UNAVAILABLE, never OK: the
            // client must resume from its cursor on another replica, not
            // conclude the log has ended.
            let shutting_down = || Error::Unavailable(Reason::ShuttingDown);
            let subscription = loop {
                if stop.is_cancelled() {
                    Err(shutting_down())?;
                }
                let page =
                    store::event::list_after(self.store.db(), cursor, STREAM_BATCH, None).await?;
                let reached = page.last().map_or(cursor, |event| event.cursor);
                // Joined before the page is sent, so nothing published
                // while it is being sent is missed.
                let joined = if page.len() as u64 == STREAM_BATCH {
                    None
                } else {
                    self.feed.join(reached)
                };
                let empty = page.is_empty();
                for event in page {
                    cursor = event.cursor;
                    if wanted(&event) {
                        yield event;
                    }
                }
                if let Some(subscription) = joined {
                    break subscription;
                }
                if empty {
                    tokio::select! {
                        () = tokio::time::sleep(BEHIND_RETRY) => {}
                        () = stop.cancelled() => {}
                    }
                }
            };
            loop {
                if stop.is_cancelled() {
                    Err(shutting_down())?;
                }
                match subscription.take_next() {
                    Next::Event(event) => {
                        if wanted(&event) {
                            yield event;
                        }
                    }
                    Next::Dropped => Err(Error::Aborted(Reason::EventStreamFellBehind))?,
                    Next::Empty => {
                        tokio::select! {
                            () = subscription.ready() => {}
                            () = stop.cancelled() => {}
                        }
                    }
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
