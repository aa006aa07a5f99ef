//! Connections that never complete their handshake, the connection cap,
//! and running out of file descriptors (issue 9, item 2), against the
//! `roster` binary, whose log the tests read.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use roster_spawn::{Server, Spawn};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    backend_tests,
    helpers::{Backend, TestDb},
};

backend_tests!(
    connections_that_do_not_complete_their_handshake_are_closed_after_the_timeout,
    silent_connections_at_the_cap_hold_a_real_client_only_until_they_time_out,
    running_out_of_file_descriptors_is_logged_and_roster_recovers,
    the_connection_metrics_count_open_connections_the_cap_and_handshake_timeouts,
);

/// `roster serve` on a database of its own with `args`; under a
/// descriptor limit of `nofile` when given (through `sh -c 'ulimit -n'`).
async fn spawn(
    backend: &Backend,
    args: &[&str],
    nofile: Option<u32>,
) -> (Server, TestDb, Option<tempfile::TempDir>) {
    let (url, db) = TestDb::create(backend).await;
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_roster"));
    let (program, script_dir) = match nofile {
        None => (exe, None),
        Some(limit) => {
            let dir = tempfile::tempdir().unwrap();
            let script = dir.path().join("roster-limited");
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nulimit -n {limit} || exit 97\nexec '{}' \"$@\"\n",
                    exe.display()
                ),
            )
            .unwrap();
            let mut permissions = std::fs::metadata(&script).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&script, permissions).unwrap();
            (script, Some(dir))
        }
    };
    let server = Spawn::new(program)
        .args(["--database-url", &url])
        .args(args)
        .start(Duration::from_secs(60))
        .unwrap_or_else(|err| panic!("{err}"));
    (server, db, script_dir)
}

/// How long until the server closes `socket` (end of stream or reset),
/// waiting at most `within`.
async fn closed_after(
    socket: &mut TcpStream,
    since: Instant,
    within: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let deadline = since + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            // The server's own HTTP/2 preface (SETTINGS) may come first.
            Ok(Ok(_)) => {}
        }
    }
}

/// One health check over a fresh connection.
async fn health(address: SocketAddr) -> Result<(), String> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|err| format!("connect: {err:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
        .map_err(|status| format!("{status:?}"))
}

async fn silent(address: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(TcpStream::connect(address).await.unwrap());
    }
    sockets
}

/// A socket that sent nothing, one that sent half of the HTTP/2 preface
/// and one that sent half of an HTTP/1 request head are closed once the
/// handshake timeout has passed; one that sent the whole preface is not.
async fn connections_that_do_not_complete_their_handshake_are_closed_after_the_timeout(
    backend: Backend,
) {
    let (server, _db, _script) = spawn(&backend, &["--handshake-timeout", "1s"], None).await;
    let address = server.address();
    let start = Instant::now();
    let mut stalled = silent(address, 3).await;
    stalled[1].write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    stalled[2]
        .write_all(b"POST /roster.v1.OrganizationService/GetOrganization HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut handshaken = TcpStream::connect(address).await.unwrap();
    // The preface and an empty SETTINGS frame.
    handshaken
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();

    for (i, socket) in stalled.iter_mut().enumerate() {
        let closed = closed_after(socket, start, Duration::from_secs(5)).await;
        let closed =
            closed.unwrap_or_else(|| panic!("stalled connection {i} still open after 5 s"));
        assert!(
            closed >= Duration::from_millis(900),
            "connection {i} closed after {closed:?}, before the timeout"
        );
    }
    assert_eq!(
        closed_after(&mut handshaken, Instant::now(), Duration::from_secs(2)).await,
        None,
        "a connection that sent the HTTP/2 preface is served past the handshake timeout"
    );
    health(address).await.unwrap();
}

/// With the cap at 4 and 4 connections that send nothing, a fifth (a real
/// client) is held, not refused, and served once they have timed out; the
/// cap is logged.
async fn silent_connections_at_the_cap_hold_a_real_client_only_until_they_time_out(
    backend: Backend,
) {
    let (server, _db, _script) = spawn(
        &backend,
        &["--max-connections", "4", "--handshake-timeout", "2s"],
        None,
    )
    .await;
    let address = server.address();
    let opened = Instant::now();
    let _silent = silent(address, 4).await;
    // Let roster accept all four before the real client connects.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(15), health(address))
        .await
        .expect("the real client is served within 15 s")
        .unwrap();
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "served after {waited:?}: the cap of 4 did not hold the fifth connection"
    );
    assert!(
        server
            .wait_for_line(Duration::from_secs(5), |line| line
                .contains("connection cap reached")
                && line.contains("WARN"))
            .is_some(),
        "no warning about the cap:\n{}",
        server.log()
    );
}

/// Under `ulimit -n 100`, 150 connections that send nothing exhaust
/// roster's descriptors: roster says so, keeps trying, and serves a real
/// client once the silent ones have timed out.
async fn running_out_of_file_descriptors_is_logged_and_roster_recovers(backend: Backend) {
    let (server, _db, _script) = spawn(
        &backend,
        &["--max-connections", "1000", "--handshake-timeout", "2s"],
        Some(100),
    )
    .await;
    let address = server.address();
    let _silent = silent(address, 150).await;
    assert!(
        server
            .wait_for_line(Duration::from_secs(10), |line| line
                .contains("out of file descriptors")
                && line.contains("WARN"))
            .is_some(),
        "no warning about running out of descriptors:\n{}",
        server.log()
    );
    tokio::time::timeout(Duration::from_secs(30), health(address))
        .await
        .expect("a real client is served within 30 s")
        .unwrap();
}

/// The connection cap and the handshake timeout on `/metrics`:
/// `roster_connections_open` follows the connections roster holds,
/// `roster_connection_cap_reached_total` counts the times new ones were
/// held back, and `roster_connection_handshake_timeouts_total` the
/// connections closed for not completing their handshake.
async fn the_connection_metrics_count_open_connections_the_cap_and_handshake_timeouts(
    backend: Backend,
) {
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let (server, _db, _script) = spawn(
        &backend,
        &[
            "--max-connections",
            "3",
            "--handshake-timeout",
            "1s",
            "--metrics-listen",
            &metrics_listen,
        ],
        None,
    )
    .await;
    let address = server.address();
    let wait_for = |series: &'static str, wanted: f64| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = crate::production::scrape(metrics_port);
            let value = crate::production::sample(&text, series);
            if value == Some(wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} is {value:?}, not {wanted}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    // A served client holds one place while its connection is open.
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    wait_for("roster_connections_open", 1.0).await;
    drop(channel);
    wait_for("roster_connections_open", 0.0).await;

    // Three silent sockets take every place; a fourth is held back.
    let _silent = silent(address, 4).await;
    wait_for("roster_connections_open", 3.0).await;
    let text = crate::production::scrape(metrics_port);
    let reached = crate::production::sample(&text, "roster_connection_cap_reached_total");
    assert!(
        reached.is_some_and(|n| n >= 1.0),
        "the cap was reached: {reached:?}\n{text}"
    );
    // All four time out (the fourth once it got a place), each counted once.
    wait_for("roster_connection_handshake_timeouts_total", 4.0).await;
    wait_for("roster_connections_open", 0.0).await;
}
