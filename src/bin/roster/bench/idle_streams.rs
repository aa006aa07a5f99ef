//! The `idle-streams` workload: GetOrganization and CheckPermission, each
//! measured without and then with `count` StreamEvents open and idle on the
//! same server, and the ratio of the two (roster's target: at least 0.9).
//! Idle streams should cost the server nothing; this shows what they do.

use std::{net::SocketAddr, time::Duration};

use roster::{
    auth::token::TokenRequest,
    pb::{self, event_service_client::EventServiceClient},
};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::{
    BenchError, Outcome,
    load::{Bearer, Runner, Workload, bearer, with_auth},
};

/// Streams per HTTP/2 connection.
const STREAMS_PER_CONNECTION: usize = 250;

/// Measures the two workloads without, then with, `count` idle streams.
pub async fn measure(
    runner: &Runner,
    address: SocketAddr,
    count: usize,
) -> Result<Vec<Outcome>, BenchError> {
    let workloads = [Workload::GetOrganization, Workload::CheckPermission];
    let mut without = Vec::new();
    for workload in workloads {
        without.push(runner.measure(workload).await);
    }
    eprintln!("opening {count} idle StreamEvents ...");
    let streams = IdleStreams::open(address, count).await?;
    let mut outcomes = Vec::new();
    for (workload, mut alone) in workloads.into_iter().zip(without) {
        let mut beside = runner.measure(workload).await;
        beside.ratio_to_without_streams = (alone.requests_per_second > 0.0)
            .then(|| beside.requests_per_second / alone.requests_per_second);
        alone.workload = format!("{} (no streams)", workload.name());
        beside.workload = format!("{} ({count} idle streams)", workload.name());
        outcomes.push(alone);
        outcomes.push(beside);
    }
    let stirred = streams.close();
    if stirred > 0 {
        return Err(BenchError(format!(
            "{stirred} of the {count} streams got an event or ended during the measurement: \
             they were not idle"
        )));
    }
    Ok(outcomes)
}

/// Open streams, each read by a task of its own, which ends when its
/// stream yields anything at all (an event, an error, its end).
struct IdleStreams {
    tasks: Vec<JoinHandle<()>>,
}

impl IdleStreams {
    /// Opens `count` streams at the log's head (so they have nothing to
    /// replay) and waits until the server has accepted each.
    async fn open(address: SocketAddr, count: usize) -> Result<Self, BenchError> {
        let token = bearer(TokenRequest {
            sub: "bench-follower".into(),
            scopes: vec!["events.read".into()],
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        })?;
        let endpoint = Channel::from_shared(format!("http://{address}"))
            .map_err(|e| BenchError(e.to_string()))?;
        let mut channel = None;
        let mut head = String::new();
        let mut tasks = Vec::with_capacity(count);
        for opened in 0..count {
            if opened % STREAMS_PER_CONNECTION == 0 {
                let fresh = endpoint
                    .connect()
                    .await
                    .map_err(|e| BenchError(e.to_string()))?;
                if opened == 0 {
                    head = log_head(&fresh, &token).await?;
                }
                channel = Some(fresh);
            }
            let Some(channel) = channel.clone() else {
                continue;
            };
            let request = pb::StreamEventsRequest {
                after_cursor: head.clone(),
            };
            let mut stream = EventServiceClient::new(channel)
                .stream_events(with_auth(request, &token))
                .await
                .map_err(|status| BenchError(format!("stream {opened} refused: {status}")))?
                .into_inner();
            tasks.push(tokio::spawn(async move {
                let _ = stream.message().await;
            }));
        }
        Ok(Self { tasks })
    }

    /// Closes the streams; returns how many were stirred while open.
    fn close(self) -> usize {
        let stirred = self.tasks.iter().filter(|task| task.is_finished()).count();
        for task in self.tasks {
            task.abort();
        }
        stirred
    }
}

/// The cursor of the log's newest event ("" when empty), paging ListEvents.
async fn log_head(channel: &Channel, token: &Bearer) -> Result<String, BenchError> {
    let mut client = EventServiceClient::new(channel.clone());
    let mut cursor = String::new();
    loop {
        let page = client
            .list_events(with_auth(
                pb::ListEventsRequest {
                    after_cursor: cursor.clone(),
                    page_size: 500,
                },
                token,
            ))
            .await
            .map_err(|status| BenchError(format!("ListEvents: {status}")))?
            .into_inner();
        if page.events.is_empty() {
            return Ok(cursor);
        }
        cursor = page.next_cursor;
    }
}
