//! `DbErr` → [`Error`], by kind, once.
//!
//! A client must be able to tell "retry later" from "roster is broken":
//! a database that cannot be reached, a connection that died under a call,
//! an exhausted pool or a PostgreSQL that is shutting down is `Unavailable`
//! (`DATABASE_UNAVAILABLE`), which standard retry policies retry; a
//! transaction PostgreSQL rolled back to break a deadlock or a serialization
//! failure is `Aborted` (`TRANSACTION_CONFLICT`): nothing was written and the
//! same call may simply be made again; a unique index violation is the
//! conflict its caller names ([`conflict_on`]); everything else is a roster
//! bug, `Internal`.

use sea_orm::{
    DbErr, RuntimeErr, SqlErr,
    sqlx::{self, error::DatabaseError, postgres::PgDatabaseError, sqlite::SqliteError},
};
use tracing::warn;

use crate::domain::{Error, Reason};

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            // Not a bug, but an operator wants to see it: once, here.
            warn!(error = %err, "the database is unavailable");
            Error::Unavailable(Reason::DatabaseUnavailable)
        } else if is_conflict(&err) {
            Error::Aborted(Reason::TransactionConflict)
        } else {
            Error::internal(err)
        }
    }
}

/// Whether `err` says the database could not be reached or used right now,
/// rather than that the statement was wrong.
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(err)) | DbErr::Query(RuntimeErr::SqlxError(err)) => {
            sqlx_unavailable(err)
        }
        _ => false,
    }
}

/// Whether the database rolled the transaction back because it collided
/// with a concurrent one: PostgreSQL's class 40 transaction rollbacks
/// (40001 serialization failure, 40P01 deadlock detected; 40002 and 40003
/// too). SQLite has no such error: its writers take turns on one lock.
fn is_conflict(err: &DbErr) -> bool {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(err)) | DbErr::Query(RuntimeErr::SqlxError(err)) => {
            match &**err {
                sqlx::Error::Database(db) => db
                    .try_downcast_ref::<PgDatabaseError>()
                    .is_some_and(|pg| pg_conflict(pg.code())),
                _ => false,
            }
        }
        _ => false,
    }
}

fn pg_conflict(sqlstate: &str) -> bool {
    sqlstate.starts_with("40")
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => database_unavailable(db.as_ref()),
        _ => false,
    }
}

/// The database's own codes for "not now".
fn database_unavailable(db: &dyn DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        return pg_unavailable(pg.code());
    }
    if let Some(sqlite) = db.try_downcast_ref::<SqliteError>() {
        return sqlite
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(sqlite_unavailable);
    }
    false
}

/// PostgreSQL SQLSTATEs of an outage: connection exceptions (class 08),
/// the server shutting down or not yet accepting (57P01-57P03, the first
/// being what `pg_terminate_backend` sends), insufficient resources (53),
/// system I/O errors (58), and a read-only standby after a failover (25006).
fn pg_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || sqlstate.starts_with("58")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "25006")
}

/// SQLite primary result codes (the low byte of the extended code) of a
/// database that cannot be used now: BUSY and LOCKED beyond the busy
/// timeout, READONLY, IOERR, FULL, CANTOPEN, NOMEM.
fn sqlite_unavailable(extended_code: i32) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const NOMEM: i32 = 7;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    matches!(
        extended_code & 0xff,
        BUSY | LOCKED | NOMEM | READONLY | IOERR | FULL | CANTOPEN
    )
}

/// The message of a unique-constraint violation, if `err` is one. It names
/// the index (PostgreSQL) or the columns (SQLite), which callers match on.
fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => Some(message),
        _ => None,
    }
}

/// Turns a failed insert into `conflict` when it broke a unique index whose
/// name or columns mention `needle`; any other failure is mapped by kind.
pub(crate) fn conflict_on(err: DbErr, needle: &str, conflict: Error) -> Error {
    match unique_violation(&err) {
        Some(message) if message.contains(needle) => conflict,
        _ => Error::from(err),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ConnAcquireErr;

    use super::*;

    #[test]
    fn outages_are_unavailable_and_the_rest_internal() {
        let unavailable = |err: DbErr| matches!(Error::from(err), Error::Unavailable(_));
        assert!(unavailable(DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
        assert!(unavailable(DbErr::Conn(RuntimeErr::Internal(
            "refused".into()
        ))));
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(unavailable(DbErr::Query(RuntimeErr::SqlxError(io.into()))));
        assert!(!unavailable(DbErr::Custom("a bug".into())));
        let decode = sqlx::Error::ColumnNotFound("n".into());
        assert!(!unavailable(DbErr::Query(RuntimeErr::SqlxError(
            decode.into()
        ))));
    }

    #[test]
    fn database_codes_name_outages() {
        for code in [
            "08006", "08P01", "57P01", "57P03", "53300", "58030", "25006",
        ] {
            assert!(pg_unavailable(code), "{code}");
        }
        for code in ["23505", "22021", "40001", "42P01", "57014"] {
            assert!(!pg_unavailable(code), "{code}");
        }
        for code in ["40001", "40P01", "40002"] {
            assert!(pg_conflict(code), "{code}");
        }
        for code in ["23505", "08006", "57P01", "42P01"] {
            assert!(!pg_conflict(code), "{code}");
        }
        // SQLITE_BUSY_SNAPSHOT (517) is BUSY; SQLITE_CONSTRAINT_UNIQUE (2067) is not an outage.
        assert!(sqlite_unavailable(5));
        assert!(sqlite_unavailable(517));
        assert!(sqlite_unavailable(266)); // SQLITE_IOERR_READ
        assert!(!sqlite_unavailable(2067));
        assert!(!sqlite_unavailable(11)); // SQLITE_CORRUPT
    }
}
