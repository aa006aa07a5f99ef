//! Running roster for real: request ids, load shedding, deadlines, message
//! limits, metrics, logs, graceful shutdown, health that follows the
//! database, and TLS.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::join_all;
use roster::{
    auth::token::{DEVELOPMENT_SECRET, TokenRequest, mint_hs256},
    pb::{
        self, membership_service_client::MembershipServiceClient,
        organization_service_client::OrganizationServiceClient,
    },
};
use roster_spawn::{Server, Spawn};
use sea_orm::{ConnectionTrait, Database, Statement, TransactionTrait};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error, reason},
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A gRPC channel that, unlike tonic's, does not enforce a call's
/// `grpc-timeout` itself: plain HTTP/2 (hyper) to `address`.
async fn patient_channel(
    address: SocketAddr,
) -> impl tonic::client::GrpcService<
    tonic::body::Body,
    ResponseBody = hyper::body::Incoming,
    Error = hyper::Error,
    Future = impl Send,
> + Clone {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    tower::service_fn(move |mut request: http::Request<tonic::body::Body>| {
        let mut sender = sender.clone();
        // tonic's clients send the path only; HTTP/2 needs the origin too.
        let path = request.uri().path_and_query().unwrap().clone();
        *request.uri_mut() = http::Uri::builder()
            .scheme("http")
            .authority(address.to_string())
            .path_and_query(path)
            .build()
            .unwrap();
        async move { sender.send_request(request).await }
    })
}

fn with_token<T>(token: &str, mut request: Request<T>) -> Request<T> {
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Holds SQLite's write lock (a write transaction left open), so roster's
/// writes wait behind it: a way to make calls slow on purpose.
pub(crate) async fn hold_write_lock(
    app: &TestApp,
) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseTransaction) {
    let db = Database::connect(&app.config.database_url).await.unwrap();
    let txn = db.begin().await.unwrap();
    txn.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE users SET updated_at = updated_at",
    ))
    .await
    .unwrap();
    (db, txn)
}

fn create(slug: &str) -> pb::CreateOrganizationRequest {
    pb::CreateOrganizationRequest {
        name: "Org".into(),
        slug: slug.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_reply_carries_a_request_id_and_a_given_one_is_kept() {
    let app = TestApp::spawn(&Backend::Sqlite).await;
    let reply = app
        .orgs("alice")
        .check_slug(pb::CheckSlugRequest {
            slug: "free".into(),
        })
        .await
        .unwrap();
    let generated = reply
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let mut request = Request::new(pb::CheckSlugRequest {
        slug: "free".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "trace-42.abc".parse().unwrap());
    let reply = app.orgs("alice").check_slug(request).await.unwrap();
    assert_eq!(
        reply.metadata().get("x-request-id").unwrap(),
        "trace-42.abc"
    );

    // An error reply carries it too; an unusable one is replaced.
    let mut request = Request::new(pb::GetOrganizationRequest { key: None });
    request
        .metadata_mut()
        .insert("x-request-id", "has spaces in it".parse().unwrap());
    let status = app
        .orgs("alice")
        .get_organization(request)
        .await
        .unwrap_err();
    let replaced = status
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beyond_the_concurrency_limit_calls_are_shed_with_resource_exhausted() {
    let app = TestApp::spawn_with(&Backend::Sqlite, |c| c.limits.max_concurrent_rpcs = 2).await;
    let (_db, lock) = hold_write_lock(&app).await;
    // Two writes wait behind the lock and take both slots...
    let blocked: Vec<_> = (0..2)
        .map(|i| {
            let mut orgs = app.orgs("alice");
            tokio::spawn(async move {
                orgs.create_organization(create(&format!("slow-{i}")))
                    .await
                    .map(drop)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...so a third call is refused at once instead of queueing.
    let started = Instant::now();
    let shed = app
        .orgs("bob")
        .check_slug(pb::CheckSlugRequest {
            slug: "free".into(),
        })
        .await;
    assert_error(shed, Code::ResourceExhausted, "SERVER_OVERLOADED");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Health still answers.
    HealthClient::new(app.channel())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    lock.rollback().await.unwrap();
    for call in join_all(blocked).await {
        call.unwrap().unwrap();
    }
    app.orgs("bob")
        .check_slug(pb::CheckSlugRequest {
            slug: "free".into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_past_its_deadline_is_deadline_exceeded() {
    let app = TestApp::spawn_with(&Backend::Sqlite, |c| {
        c.limits.rpc_timeout = Duration::from_millis(400)
    })
    .await;
    let (_db, lock) = hold_write_lock(&app).await;
    let started = Instant::now();
    let late = app.orgs("alice").create_organization(create("late")).await;
    assert_error(late, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A client's shorter deadline wins over the server's, and roster
    // answers it itself: DEADLINE_EXCEEDED with its reason. A tonic
    // channel would give up at that deadline on its own (as CANCELLED), and
    // tonic's server would end the call too (CANCELLED, no reason); this
    // client only sends the header, so the answer is roster's.
    let mut request = Request::new(create("later"));
    request.set_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let status = OrganizationServiceClient::new(patient_channel(app.address()).await)
        .create_organization(with_token(&app.token("alice"), request))
        .await;
    assert_error(status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(
        started.elapsed() < Duration::from_millis(380),
        "{:?}",
        started.elapsed()
    );
    lock.rollback().await.unwrap();
    // Neither timed-out call left an organization behind... or both may
    // have committed after their callers gave up; either way the database
    // stays consistent: a retry sees the slug taken or free, never half-made.
    app.orgs("alice")
        .check_slug(pb::CheckSlugRequest {
            slug: "late".into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_over_the_size_limit_are_refused() {
    let app = TestApp::spawn_with(&Backend::Sqlite, |c| c.limits.max_message_bytes = 2048).await;
    let huge = pb::CreateOrganizationRequest {
        name: "n".repeat(4096),
        slug: "huge".into(),
        ..Default::default()
    };
    let status = app
        .orgs("alice")
        .create_organization(huge)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    app.orgs("alice")
        .create_organization(create("small"))
        .await
        .unwrap();
}

/// roster with metrics on, as a process of its own: the metrics recorder
/// is process-wide, so in this test binary the servers of other tests
/// would count into it too. The metrics port is chosen here (the exporter
/// binds it itself); if another process takes it first, roster exits and
/// the next attempt uses another.
pub(crate) fn start_with_metrics(database_url: &str) -> (Server, u16) {
    let mut last = None;
    for _ in 0..3 {
        let port = free_port();
        match Spawn::new(env!("CARGO_BIN_EXE_roster"))
            .args(["--database-url", database_url])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .args(["--health-check-interval", "200ms"])
            .start(Duration::from_secs(60))
        {
            Ok(server) => return (server, port),
            Err(err) => last = Some(err),
        }
    }
    panic!("roster with metrics did not start: {last:?}");
}

/// A token for `user` (with a verified `<user>@example.com`), signed by
/// the development secret, as a roster started without a secret accepts.
pub fn user_token(user: &str) -> String {
    mint_hs256(
        DEVELOPMENT_SECRET,
        &TokenRequest {
            sub: user.to_owned(),
            email: Some(format!("{user}@example.com")),
            email_verified: true,
            ttl: Duration::from_secs(600),
            ..TokenRequest::default()
        },
    )
    .unwrap()
}

/// `message` as `user`, with a token signed by the development secret.
pub fn as_user<T>(user: &str, message: T) -> Request<T> {
    let token = user_token(user);
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The value of the sample `series` (name and labels, as exposed) in `text`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_method_and_code_and_show_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let (server, port) = start_with_metrics(&url);
    let channel = Channel::from_shared(format!("http://{}", server.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let org = OrganizationServiceClient::new(channel.clone())
        .create_organization(as_user("alice", create("acme")))
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    MembershipServiceClient::new(channel.clone())
        .create_invitation(as_user(
            "alice",
            pb::CreateInvitationRequest {
                organization_id: org.id,
                email: "bob@example.com".into(),
                role: pb::Role::Member.into(),
                request_id: String::new(),
                delivery: pb::InvitationDelivery::Unspecified.into(),
            },
        ))
        .await
        .unwrap();
    let refused = OrganizationServiceClient::new(channel)
        .get_organization(as_user("mallory", pb::GetOrganizationRequest { key: None }))
        .await;
    assert_error(refused, Code::InvalidArgument, "INVALID_ARGUMENT");

    // The gauges are sampled in the background (every 200 ms here), the
    // log's head before the outbox. Three events were written: once a
    // sample shows them, its outbox count was taken after the invitation's
    // email was queued (in the same transaction as its event), so 0 there
    // means the email was delivered.
    let (head, outbox) = ("roster_events_newest_seq", "roster_mail_outbox_undelivered");
    let mut text = String::new();
    let started = Instant::now();
    while sample(&text, head) != Some(3.0) || sample(&text, outbox) != Some(0.0) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no sample with {head} 3 and {outbox} 0:\n{text}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = scrape(port);
    }
    // This process served exactly these calls: the counts are exact.
    for (series, count) in [
        (
            r#"roster_rpc_requests_total{service="roster.v1.OrganizationService",method="CreateOrganization",code="Ok"}"#,
            1.0,
        ),
        (
            r#"roster_rpc_requests_total{service="roster.v1.MembershipService",method="CreateInvitation",code="Ok"}"#,
            1.0,
        ),
        (
            r#"roster_rpc_requests_total{service="roster.v1.OrganizationService",method="GetOrganization",code="InvalidArgument"}"#,
            1.0,
        ),
        (
            r#"roster_rpc_request_duration_seconds_count{service="roster.v1.MembershipService",method="CreateInvitation"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(count), "{series} in:\n{text}");
    }
    let idle = sample(&text, r#"roster_db_pool_connections{state="idle"}"#);
    let in_use = sample(&text, r#"roster_db_pool_connections{state="in_use"}"#);
    assert!(idle.unwrap() + in_use.unwrap() >= 1.0, "{text}");
}

/// GET /metrics over plain HTTP/1.1.
pub fn scrape(port: u16) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ =
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

backend_tests!(shutdown_under_load_loses_no_acknowledged_write,);

async fn shutdown_under_load_loses_no_acknowledged_write(backend: Backend) {
    let mut app = TestApp::spawn_with(&backend, |c| {
        c.max_owned_organizations = 100_000;
        c.shutdown_grace = Duration::from_secs(10);
    })
    .await;
    // A health watcher opened before the shutdown sees NOT_SERVING first.
    let mut watch = HealthClient::new(app.channel())
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    // Acknowledged writes so far: the shutdown begins once the load is
    // real, however slow a busy machine makes the first writes.
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let mut orgs = app.orgs(&format!("writer{w}"));
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0.. {
                    let slug = format!("w{w}-{i}");
                    let sent = Instant::now();
                    let result = orgs.create_organization(create(&slug)).await;
                    let failed = result.is_err();
                    if !failed {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    outcomes.push((
                        slug,
                        sent,
                        result.map(|r| r.into_inner().organization.unwrap().id),
                    ));
                    if failed {
                        break;
                    }
                }
                outcomes
            })
        })
        .collect();
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < 40 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shutdown_began = Instant::now();
    app.stop().await.unwrap();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );

    let mut acknowledged = Vec::new();
    for writer in join_all(writers).await {
        for (slug, sent, result) in writer.unwrap() {
            match result {
                Ok(id) => acknowledged.push((slug, id)),
                Err(status) => {
                    // A call sent well before the shutdown was in flight
                    // when it began: it must have finished normally.
                    assert!(
                        sent + Duration::from_millis(20) >= shutdown_began,
                        "{slug} was in flight at shutdown and failed: {status:?}"
                    );
                    // Later calls are refused: by the server while it
                    // drains (UNAVAILABLE, SHUTTING_DOWN), or by the
                    // client's transport once the connection is closed;
                    // never an answer from a half-done call.
                    let refused_by_server =
                        status.code() == Code::Unavailable && reason(&status) == "SHUTTING_DOWN";
                    let refused_by_transport = std::error::Error::source(&status)
                        .is_some_and(|source| source.is::<tonic::transport::Error>());
                    assert!(
                        refused_by_server || refused_by_transport,
                        "{slug}: {status:?} (reason {})",
                        reason(&status)
                    );
                }
            }
        }
    }
    assert!(
        acknowledged.len() > 10,
        "the load was real: {} writes",
        acknowledged.len()
    );
    // Every acknowledged write is in the database.
    let db = Database::connect(&app.config.database_url).await.unwrap();
    for (slug, id) in &acknowledged {
        let sql = format!("SELECT COUNT(*) AS n FROM organizations WHERE slug = '{slug}'");
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        assert_eq!(n, 1, "acknowledged {slug} ({id}) is missing");
    }
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_in_flight_at_shutdown_finishes_within_the_grace_period() {
    let mut app = TestApp::spawn_with(&Backend::Sqlite, |c| {
        c.shutdown_grace = Duration::from_secs(10)
    })
    .await;
    let (_db, lock) = hold_write_lock(&app).await;
    let in_flight = {
        let mut orgs = app.orgs("alice");
        tokio::spawn(async move { orgs.create_organization(create("in-flight")).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut health = HealthClient::new(app.channel())
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    let stopping = tokio::spawn(async move {
        app.stop().await.unwrap();
        app
    });
    // The shutdown has begun while the call waits behind the lock; it is
    // released only now, so the call's normal reply below was given during
    // the shutdown.
    assert_eq!(
        health.message().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );
    assert!(
        !stopping.is_finished(),
        "the server waits for the call in flight"
    );
    lock.rollback().await.unwrap();
    let reply = in_flight.await.unwrap();
    assert!(
        reply.is_ok(),
        "the call in flight finished normally: {reply:?}"
    );
    let app = stopping.await.unwrap();
    drop(app);
}

/// A PostgreSQL of the test's own (its own data directory and port), so it
/// can be stopped and started without touching the machine's.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl PrivatePostgres {
    /// Needs PostgreSQL's server binaries and root (the server runs as the
    /// `postgres` user); the test was built to run, so their absence fails it.
    fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .max()
            })
            .filter(|bin| bin.join("initdb").exists());
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        let (Some(bin), true) = (bin, root) else {
            panic!(
                "built with ROSTER_REQUIRE_PRIVATE_POSTGRES=1, but PostgreSQL's initdb is missing \
                 or we are not root"
            );
        };
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        let initdb = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb failed");
        let server = PrivatePostgres {
            dir,
            port: free_port(),
            bin,
        };
        server.pg_ctl("start");
        server
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data);
        match action {
            "start" => command
                .args(["-w", "-o", &options, "-l"])
                .arg(self.dir.path().join("log"))
                .arg("start"),
            _ => command.args(["-w", "-m", "fast", "stop"]),
        };
        let status = command.stdout(Stdio::null()).status().unwrap();
        assert!(status.success(), "pg_ctl {action} failed");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn health_of(app: &TestApp, service: &str) -> ServingStatus {
    HealthClient::new(app.channel())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

async fn wait_for_health(app: &TestApp, wanted: ServingStatus, within: Duration) {
    let started = Instant::now();
    while health_of(app, "roster.v1.OrganizationService").await != wanted {
        assert!(
            started.elapsed() < within,
            "health did not become {wanted:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health_of(app, "").await, wanted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(private_postgres_tests),
    ignore = "ROSTER_REQUIRE_PRIVATE_POSTGRES=1 was not set when the tests were built"
)]
async fn health_follows_the_database_down_and_back_up() {
    let postgres = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let url = postgres.url();
    let app = TestApp::spawn_with(&Backend::Sqlite, |c| {
        c.database_url = url;
        c.health_check_interval = Duration::from_millis(200);
    })
    .await;
    wait_for_health(&app, ServingStatus::Serving, Duration::from_secs(5)).await;
    app.create_org("alice", "before").await;

    tokio::task::spawn_blocking({
        let postgres_dir = postgres.dir.path().to_owned();
        let bin = postgres.bin.clone();
        move || {
            let status = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("pg_ctl"))
                .arg("-D")
                .arg(postgres_dir.join("data"))
                .args(["-w", "-m", "fast", "stop"])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        }
    })
    .await
    .unwrap();
    wait_for_health(&app, ServingStatus::NotServing, Duration::from_secs(10)).await;

    let postgres = tokio::task::spawn_blocking(move || {
        postgres.pg_ctl("start");
        postgres
    })
    .await
    .unwrap();
    wait_for_health(&app, ServingStatus::Serving, Duration::from_secs(20)).await;
    app.create_org("alice", "after").await;
    drop(app);
    drop(postgres);
}
