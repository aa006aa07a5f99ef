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

/// How long a SQLite writer waits for the write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The database roster keeps everything in.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`) and
    /// applies every pending migration.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, Error> {
        prepare_sqlite_directory(url)?;
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false)
            // WAL lets readers run beside the one writer; writers queue on
            // the lock for up to SQLITE_BUSY_TIMEOUT instead of failing.
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
                    .create_if_missing(true)
            });
        let mut db = Database::connect(options).await?;
        db.set_metric_callback(count_change_log_reads);
        let store = Self { db };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), Error> {
        let backend = self.db.get_database_backend();
        if backend == DbBackend::Postgres {
            // Session-level lock on one pooled connection: take a dedicated
            // transaction-scoped lock instead, so it cannot leak.
            let txn = self.db.begin().await?;
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                "SELECT pg_advisory_xact_lock($1)",
                [MIGRATION_LOCK_KEY.into()],
            ))
            .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        } else {
            Migrator::up(&self.db, None).await?;
        }
        info!(backend = ?backend, "database schema is up to date");
        Ok(())
    }

    /// The pool, for reads that need no transaction.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Begins a transaction that will write.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: it takes the database's write lock
    /// up front, so writers are serialized and a read-then-write inside the
    /// transaction can never act on a stale read. On PostgreSQL the
    /// use-cases lock the rows they decide on (`SELECT ... FOR UPDATE`).
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, Error> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        Ok(self.db.begin_with_options(options).await?)
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self.db.ping().await?)
    }

    /// Closes every pooled connection.
    pub async fn close(&self) -> Result<(), Error> {
        Ok(self.db.close_by_ref().await?)
    }
}

/// SQLite creates the file but not its directory: create `./data/` and
/// friends so the default configuration works on a fresh checkout.
fn prepare_sqlite_directory(url: &str) -> Result<(), Error> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = rest.split('?').next().unwrap_or_default();
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
