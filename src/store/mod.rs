//! Persistence: the connection pool, migrations, and one module of queries
//! per aggregate. Every function takes the connection or transaction it is
//! given; transactions belong to the use-cases (`service/`).
//!
//! SQL errors become [`Error`] here and nowhere else ([`db_error`]): an
//! outage becomes `Unavailable`, a unique-index violation the matching
//! `AlreadyExists`, everything else `Internal`.

mod db_error;
pub mod entity;
pub mod event;
pub mod identity;
pub mod import;
pub mod invitation;
pub mod lease;
pub mod listen;
pub mod mail;
pub mod membership;
pub mod organization;
pub mod slug;
pub mod user;

pub(crate) use self::db_error::conflict_on;

use std::{path::Path, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    Statement, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};
use tracing::info;

use crate::domain::Error;

/// Arbitrary but fixed key of the PostgreSQL advisory lock that serializes
/// migrations when several replicas start at once.
const MIGRATION_LOCK_KEY: i64 = 0x726f_7374_6572; // "roster"

/// Metric: statements that read the change log, counted by the connection
/// as it runs them (whichever part of roster sent them): what following the
/// log costs the database.
pub const EVENT_LOG_READS: &str = "roster_event_log_reads_total";

fn count_change_log_reads(info: &sea_orm::metric::Info<'_>) {
    let sql = &info.statement.sql;
    if sql.starts_with("SELECT") && sql.contains(r#"FROM "events""#) {
        metrics::counter!(EVENT_LOG_READS).increment(1);
    }
}

/// How long a caller waits for a pooled connection (on SQLite, for its turn
/// at the writer) before the call fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the pools are sized; [`Store::connect`] takes the defaults but for
/// the pool size.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// Most connections in the pool (on SQLite: of the readers' pool).
    pub max_connections: u32,
    /// How long an SQLite write waits for the file's write lock while
    /// another process holds it. roster's own writers take turns on the one
    /// writer connection before they reach the lock.
    pub sqlite_busy_timeout: Duration,
}

impl StoreOptions {
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            sqlite_busy_timeout: SQLITE_BUSY_TIMEOUT,
        }
    }
}

/// The default of `--sqlite-busy-timeout`.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The database roster keeps everything in.
///
/// SQLite allows one writer at a time per file. Left to themselves, writers
/// on pooled connections collide on the file lock and retry it in SQLite's
/// busy handler, which sleeps and polls: no queue, no fairness, and a
/// writer can lose the race for seconds. So on an SQLite file every write
/// goes through [`Store::writer`], a pool of exactly one connection whose
/// waiters sqlx serves first come, first served; reads use the readers'
/// pool beside it, which WAL lets run while a write is in progress and see
/// every write committed before they began. On PostgreSQL (and an
/// in-memory SQLite, which lives in one pool) both are the same pool, and
/// row locks order the writers.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// The one writer connection of an SQLite file; `None` where writes
    /// share `db`.
    sqlite_writer: Option<DatabaseConnection>,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`) and
    /// applies every pending migration.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, Error> {
        Self::connect_with(url, StoreOptions::new(max_connections)).await
    }

    /// [`Store::connect`] with every setting of the pools.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, Error> {
        prepare_sqlite_directory(url)?;
        let store = if is_sqlite_file(url) {
            // The writer first: it creates the file and turns on WAL, which
            // the readers then find.
            let writer = connect_pool(url, options, Pool::SqliteWriter).await?;
            Self {
                db: connect_pool(url, options, Pool::SqliteReaders).await?,
                sqlite_writer: Some(writer),
            }
        } else {
            Self {
                db: connect_pool(url, options, Pool::Shared).await?,
                sqlite_writer: None,
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), Error> {
        let writer = self.writer();
        let backend = writer.get_database_backend();
        if backend == DbBackend::Postgres {
            // Session-level lock on one pooled connection: take a dedicated
            // transaction-scoped lock instead, so it cannot leak.
            let txn = writer.begin().await?;
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "SELECT pg_advisory_xact_lock($1)",
                [MIGRATION_LOCK_KEY.into()],
            ))
            .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        } else {
            Migrator::up(writer, None).await?;
        }
        info!(backend = ?backend, "database schema is up to date");
        Ok(())
    }

    /// The readers' pool, for reads that need no transaction.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The connection for a write that is one statement of its own, outside
    /// a transaction (claiming, renewing or settling a lease, purging). On
    /// SQLite the one writer connection, so it takes its turn with the
    /// transactions; on PostgreSQL the pool.
    pub fn writer(&self) -> &DatabaseConnection {
        self.sqlite_writer.as_ref().unwrap_or(&self.db)
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Begins a transaction that will write.
    ///
    /// On SQLite it runs on the writer connection, after the writes queued
    /// before it, and is `BEGIN IMMEDIATE`: it takes the database's write
    /// lock up front (another process may hold it), so a read-then-write
    /// inside the transaction can never act on a stale read. On PostgreSQL
    /// the use-cases lock the rows they decide on (`SELECT ... FOR UPDATE`).
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, Error> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        Ok(self.writer().begin_with_options(options).await?)
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self.db.ping().await?)
    }

    /// Closes every pooled connection.
    pub async fn close(&self) -> Result<(), Error> {
        self.db.close_by_ref().await?;
        if let Some(writer) = &self.sqlite_writer {
            writer.close_by_ref().await?;
        }
        Ok(())
    }

    /// The writer's own pool (SQLite files), for the pool gauges.
    pub fn sqlite_writer_pool(&self) -> Option<&sea_orm::sqlx::SqlitePool> {
        self.sqlite_writer
            .as_ref()
            .map(DatabaseConnection::get_sqlite_connection_pool)
    }
}

/// What a pool is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    /// The one writer connection of an SQLite file.
    SqliteWriter,
    /// The readers beside it, `query_only`: a write that bypassed the
    /// writer's queue fails at once (in the tests) instead of competing for
    /// the file lock with the queue (in production).
    SqliteReaders,
    /// The only pool, for reads and writes (PostgreSQL, in-memory SQLite).
    Shared,
}

/// Connects one pool on `url`, whose statements reading the change log are
/// counted.
async fn connect_pool(
    url: &str,
    options: StoreOptions,
    pool_for: Pool,
) -> Result<DatabaseConnection, Error> {
    let mut pool = Database::connect(pool_options(url, options, pool_for)).await?;
    pool.set_metric_callback(count_change_log_reads);
    Ok(pool)
}

/// Options of one pool on `url`. The SQLite writer is one connection and
/// skips the liveness test before each use: a local file connection does
/// not go away, and the test would be one more round trip on the path
/// every write queues for.
fn pool_options(url: &str, options: StoreOptions, pool_for: Pool) -> ConnectOptions {
    let max_connections = match pool_for {
        Pool::SqliteWriter => 1,
        Pool::SqliteReaders | Pool::Shared => options.max_connections,
    };
    let mut pool = ConnectOptions::new(url);
    pool.max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(pool_for != Pool::SqliteWriter)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts| {
            let opts = opts
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(options.sqlite_busy_timeout)
                .foreign_keys(true)
                .create_if_missing(true);
            if pool_for == Pool::SqliteReaders {
                opts.pragma("query_only", "ON")
            } else {
                opts
            }
        });
    pool
}

/// Whether `url` names an SQLite database in a file, which separate pools
/// can share (an in-memory one exists only inside its own pool).
fn is_sqlite_file(url: &str) -> bool {
    sqlite_path(url).is_some_and(|path| !path.is_empty() && path != ":memory:")
        && !url.contains("mode=memory")
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or_default())
}

/// SQLite creates the file but not its directory: create `./data/` and
/// friends so the default configuration works on a fresh checkout.
fn prepare_sqlite_directory(url: &str) -> Result<(), Error> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(Error::internal)?;
    }
    Ok(())
}

/// `LIKE` pattern matching values that start with `prefix`, with the
/// wildcards in `prefix` escaped (escape character `\`).
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On an SQLite file every write goes through the writer's queue; the
    /// readers' pool refuses one, so a write that slipped past the queue
    /// cannot pass the tests unnoticed.
    #[tokio::test]
    async fn the_sqlite_readers_refuse_writes_and_the_writer_takes_them() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let store = Store::connect(&url, 2)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let write = "CREATE TABLE scratch (n INTEGER); INSERT INTO scratch VALUES (1)";
        let refused = store.db().execute_unprepared(write).await;
        let Some(refused) = refused.err() else {
            unreachable!("the readers' pool wrote");
        };
        assert!(
            refused.to_string().contains("readonly"),
            "SQLITE_READONLY: {refused}"
        );
        store
            .writer()
            .execute_unprepared(write)
            .await
            .unwrap_or_else(|e| unreachable!("the writer: {e}"));
        // The readers see what the writer wrote.
        let row = store
            .db()
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM scratch",
            ))
            .await
            .unwrap_or_else(|e| unreachable!("{e}"))
            .unwrap_or_else(|| unreachable!("a count"));
        assert_eq!(row.try_get::<i64>("", "n").ok(), Some(1));
    }
}
