//! What open `StreamEvents` cost and how they end: idle streams read
//! nothing, a commit is read once however many follow, the number of
//! streams is capped, a client that does not read is dropped after a
//! bounded buffer, and streams that join while writers commit see every
//! event once, in order.
//!
//! The cost is measured in a roster process of its own, through its
//! metrics: `roster_event_log_reads_total` counts, as the database
//! connection runs them, the statements that read the change log.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use futures::future::join_all;
use roster::{
    auth::token::{DEVELOPMENT_SECRET, TokenRequest, mint_hs256},
    pb::{
        self, event_service_client::EventServiceClient,
        organization_service_client::OrganizationServiceClient,
    },
};
use roster_spawn::{Server, Spawn};
use tokio::sync::mpsc;
use tonic::{Code, Request, Streaming, transport::Channel};

use super::{list_at_least, next_event, table_ids};
use crate::{
    backend_tests,
    helpers::{Backend, Events, TestApp, TestDb, assert_error, reason},
    production::{as_user, sample, scrape},
};

const READS: &str = "roster_event_log_reads_total";

/// roster as a process of its own with metrics on (the recorder is
/// process-wide), on `database_url`, with `extra` flags.
fn spawn_with_metrics(database_url: &str, extra: &[&str]) -> (Server, u16) {
    let mut last = None;
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match Spawn::new(env!("CARGO_BIN_EXE_roster"))
            .args(["--database-url", database_url])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .args(["--max-owned-organizations", "100000"])
            .args(extra)
            .log_filter("warn")
            .start(Duration::from_secs(60))
        {
            Ok(server) => return (server, port),
            Err(err) => last = Some(err),
        }
    }
    panic!("roster with metrics did not start: {last:?}");
}

/// A metric of the process on `port`, once it is exposed.
async fn metric(port: u16, series: &str) -> f64 {
    for _ in 0..100 {
        if let Some(value) = sample(&scrape(port), series) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} is not exposed:\n{}", scrape(port));
}

fn follower_request<T>(message: T) -> Request<T> {
    let token = mint_hs256(
        DEVELOPMENT_SECRET,
        &TokenRequest {
            sub: "provider-portal".into(),
            scopes: vec!["events.read".into()],
            ttl: Duration::from_secs(3600),
            ..TokenRequest::default()
        },
    )
    .unwrap();
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn create_org(channel: &Channel, slug: &str) {
    OrganizationServiceClient::new(channel.clone())
        .create_organization(as_user(
            "alice",
            pb::CreateOrganizationRequest {
                name: "Acme".into(),
                slug: slug.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

async fn open_stream(channel: &Channel, after_cursor: &str) -> Streaming<pb::StreamEventsResponse> {
    EventServiceClient::new(channel.clone())
        .stream_events(follower_request(pb::StreamEventsRequest {
            after_cursor: after_cursor.into(),
        }))
        .await
        .unwrap()
        .into_inner()
}

backend_tests!(
    idle_streams_read_nothing_and_a_commit_is_read_once_for_all_of_them,
    a_client_that_does_not_read_is_dropped_and_its_buffer_freed,
    the_number_of_streams_is_capped_with_resource_exhausted,
    streams_joining_midway_and_many_at_once_see_every_event_once_in_order,
);

async fn idle_streams_read_nothing_and_a_commit_is_read_once_for_all_of_them(backend: Backend) {
    const STREAMS: usize = 100;
    const IDLE: Duration = Duration::from_secs(3);
    let (url, _db) = TestDb::create(&backend).await;
    let (server, port) = spawn_with_metrics(&url, &[]);
    let channel = Channel::from_shared(format!("http://{}", server.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    create_org(&channel, "first").await;

    // What the process reads on its own while nothing happens (the
    // follower's safety poll, the metrics sampler).
    let before = metric(port, READS).await;
    tokio::time::sleep(IDLE).await;
    let without_streams = metric(port, READS).await - before;

    // Streams that have caught up (both events of the creation) and wait;
    // each reports every event it receives.
    let (seen, mut received) = mpsc::unbounded_channel();
    let mut followers = Vec::new();
    for _ in 0..STREAMS {
        let mut stream = open_stream(&channel, "").await;
        let seen = seen.clone();
        followers.push(tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let _ = seen.send(message.event.unwrap().id);
            }
        }));
    }
    for _ in 0..STREAMS * 2 {
        tokio::time::timeout(Duration::from_secs(20), received.recv())
            .await
            .expect("every stream replays the log")
            .unwrap();
    }
    assert_eq!(
        metric(port, "roster_event_streams_open").await,
        STREAMS as f64
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = metric(port, READS).await;
    tokio::time::sleep(IDLE).await;
    let with_streams = metric(port, READS).await - before;
    // A little slack for timing: the polls drift, and on PostgreSQL a round
    // that sees another transaction running looks once more. Polling
    // streams would add about 2 reads per stream and second here: 600.
    assert!(
        with_streams <= without_streams + 4.0,
        "{STREAMS} idle streams read the change log {with_streams} times in {IDLE:?}, \
         against {without_streams} without them"
    );

    // One commit (two events) reaches every stream through one read.
    let before = metric(port, READS).await;
    create_org(&channel, "second").await;
    for _ in 0..STREAMS * 2 {
        tokio::time::timeout(Duration::from_secs(20), received.recv())
            .await
            .expect("every stream gets the new events")
            .unwrap();
    }
    let for_the_commit = metric(port, READS).await - before;
    // One, and at most two more: the follower's safety poll may fall in the
    // window, and on PostgreSQL a round that sees another transaction
    // running checks whether events wait behind it. Streams reading for
    // themselves would take at least one read each: 100.
    assert!(
        (1.0..=3.0).contains(&for_the_commit),
        "one commit followed by {STREAMS} streams took {for_the_commit} reads of the change log"
    );
    for follower in followers {
        follower.abort();
    }
    drop(server);
}

async fn a_client_that_does_not_read_is_dropped_and_its_buffer_freed(backend: Backend) {
    const BUFFER: usize = 100;
    const CREATES: usize = 300;
    let (url, db) = TestDb::create(&backend).await;
    let (server, port) = spawn_with_metrics(&url, &["--event-stream-buffer", &BUFFER.to_string()]);
    let address = format!("http://{}", server.address());
    let channel = Channel::from_shared(address.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The client that stops reading, on a connection of its own with a
    // small HTTP/2 window, so the transport soon stops taking its events.
    let stalled_channel = Channel::from_shared(address)
        .unwrap()
        .initial_stream_window_size(Some(16 * 1024))
        .connect()
        .await
        .unwrap();
    let mut stalled = open_stream(&stalled_channel, "").await;
    // A reading stream beside it keeps up and is not dropped.
    let mut reader = open_stream(&channel, "").await;
    create_org(&channel, "first").await;
    let first = next_event(&mut stalled, Duration::from_secs(10))
        .await
        .expect("the stream is live");
    assert_eq!(first.r#type, "organization.created");

    let writers = (0..4).map(|w| {
        let channel = channel.clone();
        async move {
            for i in 0..CREATES / 4 {
                create_org(&channel, &format!("w{w}-{i}")).await;
            }
        }
    });
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 2 + CREATES * 2 {
            match tokio::time::timeout(Duration::from_secs(30), reader.message()).await {
                Ok(Ok(Some(message))) => got.push(message.event.unwrap().id),
                other => panic!("the reading stream ended: {other:?}"),
            }
        }
        got
    });
    let mut most_buffered = 0f64;
    let writing = join_all(writers);
    tokio::pin!(writing);
    loop {
        tokio::select! {
            _ = &mut writing => break,
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                let text = scrape(port);
                if let Some(buffered) = sample(&text, "roster_event_streams_buffered_events") {
                    most_buffered = most_buffered.max(buffered);
                }
            }
        }
    }
    let all = 2 + CREATES * 2;
    let read_by_reader = reading.await.unwrap();
    assert_eq!(read_by_reader.len(), all, "the reading stream kept up");

    // Nothing beyond the bound was held for the client that did not read,
    // and once it was dropped, nothing at all.
    assert!(
        most_buffered <= (2 * BUFFER) as f64,
        "buffered {most_buffered} events for two streams of {BUFFER}"
    );
    assert_eq!(
        metric(port, "roster_event_streams_dropped_total").await,
        1.0
    );
    let started = Instant::now();
    while metric(port, "roster_event_streams_buffered_events").await != 0.0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "buffers not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // When the client reads again it gets what the transport held, in
    // order from where it was, then ABORTED telling it to resume.
    let mut got = vec![first];
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled.message()).await {
            Ok(Ok(Some(message))) => got.push(message.event.unwrap()),
            Ok(Ok(None)) => panic!("the dropped stream ended with OK"),
            Ok(Err(status)) => break status,
            Err(_) => panic!("the stream was not dropped (it held {} events)", got.len()),
        }
    };
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(reason(&status), "EVENT_STREAM_FELL_BEHIND", "{status:?}");
    assert!(got.len() < all, "it was dropped before it got everything");
    // Resuming from its last cursor gets the rest, with no gap.
    let mut resumed = open_stream(&channel, &got.last().unwrap().cursor).await;
    while got.len() < all {
        got.push(
            next_event(&mut resumed, Duration::from_secs(10))
                .await
                .expect("the rest after resuming"),
        );
    }
    let ids: Vec<String> = got.iter().map(|e| e.id.clone()).collect();
    let table = {
        let app_db = sea_orm::Database::connect(&url).await.unwrap();
        let ids = super::ids_in_log_order(&app_db).await;
        app_db.close().await.unwrap();
        ids
    };
    assert_eq!(ids, table, "every event once, in log order");
    drop(server);
    drop(db);
}

async fn the_number_of_streams_is_capped_with_resource_exhausted(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.limits.max_event_streams = 3).await;
    app.create_org("alice", "acme").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = app
            .event_follower()
            .stream_events(pb::StreamEventsRequest::default())
            .await
            .unwrap()
            .into_inner();
        next_event(&mut stream, Duration::from_secs(5))
            .await
            .expect("replayed");
        open.push(stream);
    }
    let refused = app
        .event_follower()
        .stream_events(pb::StreamEventsRequest::default())
        .await;
    assert_error(
        refused,
        Code::ResourceExhausted,
        "EVENT_STREAM_LIMIT_REACHED",
    );
    // ListEvents is not a stream: it still answers.
    assert_eq!(
        list_at_least(&mut app.event_follower(), "", 2).await.len(),
        2
    );

    // A stream that ends gives its place back.
    drop(open.pop());
    let started = Instant::now();
    loop {
        match app
            .event_follower()
            .stream_events(pb::StreamEventsRequest::default())
            .await
        {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the ended stream's place was not given back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Follows from `cursor` until it has `count` events.
async fn follow(mut client: Events, cursor: String, count: usize) -> Vec<pb::Event> {
    let mut stream = client
        .stream_events(pb::StreamEventsRequest {
            after_cursor: cursor,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < count {
        match next_event(&mut stream, Duration::from_secs(20)).await {
            Some(event) => seen.push(event),
            None => panic!("stalled after {} of {count} events", seen.len()),
        }
    }
    seen
}

async fn streams_joining_midway_and_many_at_once_see_every_event_once_in_order(backend: Backend) {
    const WRITERS: usize = 6;
    const CREATES: usize = 15;
    const FOLLOWERS: usize = 24;
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 1_000).await;
    app.create_org("alice", "first").await;
    let total = 2 + WRITERS * CREATES * 2;
    let writers = (0..WRITERS).map(|w| {
        let mut orgs = app.orgs(&format!("writer{w}"));
        async move {
            for i in 0..CREATES {
                orgs.create_organization(pb::CreateOrganizationRequest {
                    name: "W".into(),
                    slug: format!("w{w}-{i}"),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
        }
    });
    let writing = tokio::spawn(join_all(writers));
    // Followers join while the writers commit: from the start, and from a
    // cursor somewhere in the middle of what is there when each joins.
    let mut followers = Vec::new();
    for f in 0..FOLLOWERS {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let (cursor, skipped) = if f % 2 == 0 {
            (String::new(), 0)
        } else {
            let so_far = super::list_all(&mut app.event_follower(), String::new()).await;
            let middle = so_far.len() / 2;
            (so_far[middle].cursor.clone(), middle + 1)
        };
        followers.push(tokio::spawn(follow(
            app.event_follower(),
            cursor,
            total - skipped,
        )));
    }
    writing.await.unwrap();
    let table = table_ids(&app).await;
    assert_eq!(table.len(), total);
    for follower in followers {
        let seen = follower.await.unwrap();
        let ids: Vec<String> = seen.iter().map(|e| e.id.clone()).collect();
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "no event twice"
        );
        assert_eq!(
            ids,
            table[total - ids.len()..],
            "exactly the log after the cursor, in order"
        );
    }
}
