//! `roster.v1.EventService`.

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert;
use crate::{
    auth::RequestExt,
    domain::{error::all_valid, event::EventCursor, page::PageRequest},
    pb::{self, event_service_server::EventService},
    service::{AuditQuery, Roster},
};

/// The gRPC face of the change log.
#[derive(Debug, Clone)]
pub struct EventApi {
    roster: Arc<Roster>,
}

impl EventApi {
    pub fn new(roster: Arc<Roster>) -> Self {
        Self { roster }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl EventService for EventApi {
    type StreamEventsStream =
        Pin<Box<dyn Stream<Item = Result<pb::StreamEventsResponse, Status>> + Send>>;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Reply<Self::StreamEventsStream> {
        let caller = request.caller()?;
        let cursor = EventCursor::parse("after_cursor", &request.into_inner().after_cursor)
            .map_err(crate::domain::Error::from)?;
        let events = self.roster.clone().stream_events(&caller, cursor)?;
        let replies = events.map(|event| {
            event
                .map(|event| pb::StreamEventsResponse {
                    event: Some(convert::event(event)),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Reply<pb::ListEventsResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let (cursor, page) = all_valid((
            EventCursor::parse("after_cursor", &req.after_cursor),
            PageRequest::parse(req.page_size, "", String::new()),
        ))?;
        let events = self.roster.list_events(&caller, cursor, page.size).await?;
        let next_cursor = events
            .last()
            .map(|event| event.cursor.encode())
            .unwrap_or(req.after_cursor);
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(convert::event).collect(),
            next_cursor,
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let organization = convert::parse_organization("organization_id", &req.organization_id)
            .map_err(crate::domain::Error::from)?;
        let page = PageRequest::parse(
            req.page_size,
            &req.page_token,
            format!("audit;{organization}"),
        )
        .map_err(crate::domain::Error::from)?;
        let page = self
            .roster
            .list_audit_events(&caller, AuditQuery { organization, page })
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page.items.into_iter().map(convert::event).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
