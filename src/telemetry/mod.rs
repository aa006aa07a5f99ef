//! Logs, metrics and traces, set up once per process.

pub mod traces;

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::PrometheusBuilder;
use sea_orm::DbBackend;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

pub use self::traces::{Exporter, OtlpExport};
use crate::{
    background::{self, Start, Wait},
    config::LogFormat,
    store::Store,
};

/// Installs the global subscriber: log lines at the level `RUST_LOG` says
/// (default `info`) in `format`, and, with `traces`, the span exporter,
/// which the caller keeps until it stops. Later calls install nothing.
/// With `traces`, it must run inside the Tokio runtime.
pub fn init(format: LogFormat, traces: Option<&OtlpExport>) -> Result<Option<Exporter>, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log = fmt::layer().with_target(false);
    let log: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Pretty => log.boxed(),
        LogFormat::Json => log.json().flatten_event(true).boxed(),
    };
    let (exporter, export) = match traces {
        Some(traces) => {
            let (exporter, layer) = traces::exporter(traces)?;
            (Some(exporter), Some(layer))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(export)
        .with(filter)
        .try_init();
    Ok(exporter)
}

/// Metric: database pool connections, by state (`idle`, `in_use`).
pub const DB_POOL_CONNECTIONS: &str = "roster_db_pool_connections";
/// Metric: the newest event's sequence number (the log's head).
pub const EVENTS_NEWEST_SEQ: &str = "roster_events_newest_seq";
/// Metric: invitation emails not yet delivered.
pub const MAIL_UNDELIVERED: &str = "roster_mail_outbox_undelivered";

static METRICS: OnceLock<Result<(), String>> = OnceLock::new();

/// Whether a metrics recorder is installed (so labels are worth building).
pub fn metrics_enabled() -> bool {
    matches!(METRICS.get(), Some(Ok(())))
}

/// Serves Prometheus metrics on `address` (`GET /metrics`, or any path).
/// The recorder is process-wide: a second call, even with another
/// address, keeps the first.
pub fn install_metrics(address: SocketAddr) -> Result<(), String> {
    METRICS
        .get_or_init(|| {
            PrometheusBuilder::new()
                .with_http_listener(address)
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .and_then(|builder| builder.install())
                .map_err(|err| format!("cannot serve metrics on {address}: {err}"))
        })
        .clone()
}

/// Samples the gauges at once and then every `interval` until `stop` is cancelled.
pub async fn sample_gauges(store: Store, interval: Duration, stop: CancellationToken) {
    let store = &store;
    background::repeat(&stop, None, Start::Now, move || async move {
        sample_once(store).await;
        Wait::Until(interval)
    })
    .await;
}

/// Sets every gauge once.
async fn sample_once(store: &Store) {
    let (size, idle) = match store.backend() {
        DbBackend::Postgres => {
            let pool = store.db().get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            // The readers and, on a file, the one writer beside them.
            let pools = std::iter::once(store.db().get_sqlite_connection_pool())
                .chain(store.sqlite_writer_pool());
            pools.fold((0, 0), |(size, idle), pool| {
                (size + pool.size(), idle + pool.num_idle())
            })
        }
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    match crate::store::event::latest_visible(store.db()).await {
        Ok(cursor) => {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(EVENTS_NEWEST_SEQ).set(cursor.seq.max(0) as f64);
        }
        Err(err) => warn!(error = %err, "metrics: cannot read the event log head"),
    }
    match crate::store::mail::pending_count(store.db()).await {
        #[allow(clippy::cast_precision_loss)]
        Ok(count) => metrics::gauge!(MAIL_UNDELIVERED).set(count as f64),
        Err(err) => warn!(error = %err, "metrics: cannot count the email outbox"),
    }
}
