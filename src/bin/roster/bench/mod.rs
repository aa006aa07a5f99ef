//! `roster bench`: a load generator that measures roster over real gRPC on
//! loopback, against a roster server it starts as a child process with
//! `roster-spawn` (so the server's memory can be read on its own).
//!
//! It seeds its own data, then runs each workload for a fixed time with a
//! fixed number of requests in flight, and reports requests per second,
//! latency percentiles, errors, and each workload's throughput as a ratio of
//! `grpc.health.v1.Health/Check` measured in the same run on the same server:
//! the machines this runs on are shared and noisy, so the ratio is the
//! figure that travels.

mod idle_streams;
mod load;
mod seed;

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use serde::Serialize;

pub use load::Workload;
use roster::{config::defaults, store::Store};
use roster_spawn::{Server, Spawn};

/// `roster bench` options.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// How long each workload is measured.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured run-in before each workload.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Database for the server: a fresh `postgres://` database, or, by
    /// default, an SQLite file in a temporary directory. It is seeded first.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Memberships to seed in all (the permission-check key space).
    #[arg(long, default_value_t = 20_000)]
    pub memberships: usize,
    /// Members of the one big organization ListMembers pages through.
    #[arg(long, default_value_t = 10_000)]
    pub big_organization_members: usize,
    /// Members of every other organization.
    #[arg(long, default_value_t = 100)]
    pub members_per_organization: usize,
    /// Which workloads to run (comma-separated); all by default. The health
    /// baseline always runs first.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub workloads: Vec<Workload>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The permission-check cache of the server under test.
    #[arg(long, default_value_t = defaults::AUTHZ_CACHE_CAPACITY)]
    pub authz_cache_capacity: u64,
    /// The database pool of the server under test.
    #[arg(long, default_value_t = defaults::DATABASE_MAX_CONNECTIONS)]
    pub database_max_connections: u32,
    /// StreamEvents the `idle-streams` workload holds open.
    #[arg(long, default_value_t = 1_000)]
    pub idle_streams: usize,
}

/// One workload's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub workload: String,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_second: f64,
    /// For batches: the checks per second (10 per request).
    pub checks_per_second: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// requests_per_second / the health baseline's.
    pub ratio_to_health: f64,
    /// With idle streams open: requests_per_second / that of the same
    /// workload measured just before, without them.
    pub ratio_to_without_streams: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub database: String,
    pub cores: usize,
    pub concurrency: usize,
    pub connections: usize,
    pub duration_seconds: f64,
    pub memberships: usize,
    pub big_organization_members: usize,
    pub outcomes: Vec<Outcome>,
    /// The server's resident memory after the run, in MiB (Linux only).
    pub server_rss_mib: Option<f64>,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

fn fail(context: &str) -> impl Fn(&dyn std::fmt::Display) -> BenchError + '_ {
    move |err| BenchError(format!("{context}: {err}"))
}

/// Runs the benchmark and prints the table.
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    let scratch = tempfile::tempdir().map_err(|e| fail("temporary directory")(&e))?;
    let database_url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            scratch.path().join("bench.db").display()
        )
    });
    let database = if database_url.starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    };
    eprintln!(
        "seeding {} memberships into {database} ...",
        args.memberships
    );
    let store = Store::connect(&database_url, 4)
        .await
        .map_err(|e| fail("database")(&e))?;
    let shape = seed::Shape {
        big_organization_members: args.big_organization_members,
        total_memberships: args.memberships.max(args.big_organization_members),
        members_per_organization: args.members_per_organization,
    };
    let seeded = seed::seed(&store, shape)
        .await
        .map_err(|e| fail("seeding")(&e))?;
    store.close().await.map_err(|e| fail("database")(&e))?;

    let mut server = start_server(&database_url, &args)?;
    let address = server.address();
    let result = async {
        let runner = load::Runner::new(address, &args, seeded).await?;
        let mut workloads = if args.workloads.is_empty() {
            Workload::value_variants().to_vec()
        } else {
            args.workloads.clone()
        };
        workloads.retain(|w| *w != Workload::Health);
        workloads.insert(0, Workload::Health);
        let mut outcomes: Vec<Outcome> = Vec::new();
        for workload in workloads {
            eprintln!("running {} ...", workload.name());
            let measured = if workload == Workload::IdleStreams {
                idle_streams::measure(&runner, address, args.idle_streams).await?
            } else {
                vec![runner.measure(workload).await]
            };
            for mut outcome in measured {
                let baseline = outcomes
                    .first()
                    .map_or(outcome.requests_per_second, |h| h.requests_per_second);
                outcome.ratio_to_health = if baseline > 0.0 {
                    outcome.requests_per_second / baseline
                } else {
                    0.0
                };
                outcomes.push(outcome);
            }
        }
        Ok::<_, BenchError>(outcomes)
    }
    .await;
    let server_rss_mib = server.rss_mib();
    server.kill();
    if result.is_err() {
        eprintln!("the server's log:\n{}", server.log());
    }
    let report = Report {
        database: database.to_owned(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        concurrency: args.concurrency,
        connections: args.connections,
        duration_seconds: args.duration.as_secs_f64(),
        memberships: shape.total_memberships,
        big_organization_members: args.big_organization_members,
        outcomes: result?,
        server_rss_mib,
    };
    println!("{}", table(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| fail("json")(&e))?;
        std::fs::write(path, json).map_err(|e| fail("writing the JSON report")(&e))?;
    }
    Ok(report)
}

/// The report as a table.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "roster bench: {} on {} cores, {} in flight over {} connections, {:.0} s per workload, {} memberships",
        report.database,
        report.cores,
        report.concurrency,
        report.connections,
        report.duration_seconds,
        report.memberships
    );
    let _ = writeln!(
        out,
        "{:<30} {:>10} {:>9} {:>9} {:>9} {:>8} {:>10}",
        "workload", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "vs health"
    );
    for o in &report.outcomes {
        let _ = writeln!(
            out,
            "{:<30} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>9.2}x",
            o.workload,
            o.requests_per_second,
            o.p50_ms,
            o.p99_ms,
            o.p999_ms,
            o.errors,
            o.ratio_to_health
        );
        if let Some(checks) = o.checks_per_second {
            let _ = writeln!(out, "{:<30} {:>10.0} checks/s", "", checks);
        }
        if let Some(ratio) = o.ratio_to_without_streams {
            let _ = writeln!(out, "{:<30} {:>9.2}x without the streams", "", ratio);
        }
    }
    if let Some(rss) = report.server_rss_mib {
        let _ = writeln!(out, "server resident memory after the run: {rss:.1} MiB");
    }
    out
}

/// Starts the server under test: this same binary, `roster serve` on an
/// ephemeral loopback port, with its defaults except raised limits (so the
/// write workloads never hit them) and the pool and cache of `args`.
fn start_server(database_url: &str, args: &BenchArgs) -> Result<Server, BenchError> {
    let exe = std::env::current_exe().map_err(|e| fail("locating roster")(&e))?;
    let huge = "1000000000";
    // Spawn drops the shell's ROSTER_* variables: the bench mints tokens
    // with the development secret, so the server must use it too.
    Spawn::new(exe)
        .args(["--database-url", database_url])
        .args(["--max-owned-organizations", huge])
        .args(["--max-members-per-organization", huge])
        .args(["--max-pending-invitations-per-organization", huge])
        .args([
            "--authz-cache-capacity",
            &args.authz_cache_capacity.to_string(),
        ])
        .args([
            "--database-max-connections",
            &args.database_max_connections.to_string(),
        ])
        .args([
            "--max-event-streams",
            &(args.idle_streams.max(1) + 100).to_string(),
        ])
        .log_filter("warn")
        .start(Duration::from_secs(30))
        .map_err(|e| fail("starting the server")(&e))
}
