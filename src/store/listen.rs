//! Follows PostgreSQL's NOTIFY for committed events, so this replica's
//! event streams wake up when any replica writes. (SQLite has one process;
//! there the in-process signal alone suffices.)

use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Store, event::NOTIFY_CHANNEL};
use crate::signal::Signal;

/// Rings `signal` on every notification until `stop` is cancelled.
pub async fn relay_notifications(store: Store, signal: Signal, stop: CancellationToken) {
    let pool = store.db().get_postgres_connection_pool().clone();
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                warn!(error = %err, "cannot listen for event notifications; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        if let Err(err) = listener.listen(NOTIFY_CHANNEL).await {
            warn!(error = %err, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        debug!("listening for event notifications");
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => signal.notify(),
                    // The connection dropped and notifications may have been
                    // lost: wake readers so they look for themselves.
                    Ok(None) => signal.notify(),
                    Err(err) => {
                        warn!(error = %err, "event notifications interrupted; reconnecting");
                        signal.notify();
                        break;
                    }
                },
                () = stop.cancelled() => return,
            }
        }
    }
}
