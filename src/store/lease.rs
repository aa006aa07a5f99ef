//! Leases on outbox rows: how several replicas share one outbox (emails,
//! developer identities) without attempting one row twice at once.
//!
//! A worker claims due rows in one statement, writing a fresh lease token
//! and moving the rows' next attempt to the end of the lease, so other
//! workers skip them. Right before each attempt it renews the lease of that
//! row, which succeeds only while the token is still its own, and it cuts
//! every attempt off at the attempt timeout, which the lease outlives. So
//! however slow the other side is, a lease cannot run out while its holder
//! is still attempting; a worker that was held up long enough to lose a row
//! finds out when it renews, and skips the row. Every write of an outcome
//! names the token too, so only the holder records one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, Value,
    sea_query::{Expr, LockBehavior, LockType, Order, Query},
};
use uuid::Uuid;

use crate::domain::Error;

/// How long one attempt may take, and so how long a lease lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeasePolicy {
    /// Every attempt is cut off after this long.
    pub attempt_timeout: Duration,
}

/// What a lease adds to the attempt timeout: the round trips of renewing and
/// recording, and clocks of replicas that disagree a little.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

impl LeasePolicy {
    /// A lease's length: one attempt, doubled, plus a margin.
    pub fn lease(&self) -> Duration {
        self.attempt_timeout.saturating_mul(2) + LEASE_MARGIN
    }

    /// A fresh lease (a new token) under this policy.
    pub fn new_lease(&self) -> Lease {
        Lease {
            token: Uuid::now_v7(),
            length: self.lease(),
        }
    }
}

/// One worker's claim on some rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: Uuid,
    pub length: Duration,
}

impl Lease {
    /// When a lease taken or renewed at `now` runs out.
    pub fn until(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
        Ok(now + chrono::Duration::from_std(self.length).map_err(Error::internal)?)
    }
}

/// A table whose rows are leased: its key, its lease token and the time of
/// its next attempt (which is also when a lease runs out).
pub trait Leased: EntityTrait {
    fn key() -> Self::Column;
    fn lease_token() -> Self::Column;
    fn next_attempt_at() -> Self::Column;
}

/// Claims up to `limit` rows that are due at `now` and match `due`, under
/// `lease`. On PostgreSQL the rows are chosen `FOR UPDATE SKIP LOCKED`, so
/// workers claiming at the same moment take different rows instead of
/// waiting for each other.
pub async fn claim<E>(
    conn: &impl ConnectionTrait,
    due: Condition,
    now: DateTime<Utc>,
    lease: &Lease,
    limit: u64,
) -> Result<Vec<E::Model>, Error>
where
    E: Leased,
    E::Model: FromQueryResult + IntoActiveModel<E::ActiveModel> + Send + Sync,
{
    let chosen = Query::select()
        .column(E::key())
        .from(E::default())
        .cond_where(due)
        .and_where(E::next_attempt_at().lte(now))
        .order_by(E::next_attempt_at(), Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    Ok(E::update_many()
        .col_expr(E::lease_token(), Expr::value(Some(lease.token)))
        .col_expr(E::next_attempt_at(), Expr::value(lease.until(now)?))
        .filter(E::key().in_subquery(chosen))
        .exec_with_returning(conn)
        .await?)
}

/// Extends `lease` on row `key` from `now`; false if the row is no longer
/// under this lease (it ran out and another worker took the row, or the
/// row is done).
pub async fn renew<E: Leased>(
    conn: &impl ConnectionTrait,
    key: impl Into<Value>,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let result = E::update_many()
        .col_expr(E::next_attempt_at(), Expr::value(lease.until(now)?))
        .filter(held::<E>(key, lease))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The condition "row `key` is still under `lease`", for the writes that
/// record an attempt's outcome.
pub fn held<E: Leased>(key: impl Into<Value>, lease: &Lease) -> Condition {
    Condition::all()
        .add(E::key().eq(key.into()))
        .add(E::lease_token().eq(lease.token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlives_the_slowest_attempt() {
        let policy = LeasePolicy {
            attempt_timeout: Duration::from_secs(30),
        };
        assert!(policy.lease() > policy.attempt_timeout);
        assert_ne!(policy.new_lease().token, policy.new_lease().token);
    }
}
