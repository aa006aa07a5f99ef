//! The email outbox: rows written with the invitation change, then claimed,
//! sent and marked by the dispatcher.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query},
};
use tracing::instrument;
use uuid::Uuid;

use super::entity::mail_outbox;
use crate::{domain::Error, mail::EmailMessage};

/// An email waiting in (or claimed from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: Uuid,
    pub message: EmailMessage,
    /// Delivery attempts made so far.
    pub attempts: i32,
}

const PENDING: &str = "pending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

/// Queues `message` in the caller's transaction.
#[instrument(skip_all, fields(mail_id = %id), err)]
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    id: Uuid,
    event_id: Uuid,
    invitation_id: Uuid,
    message: &EmailMessage,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    mail_outbox::ActiveModel {
        id: Set(id),
        event_id: Set(event_id),
        invitation_id: Set(invitation_id),
        recipient: Set(message.to.clone()),
        subject: Set(message.subject.clone()),
        body: Set(message.body.clone()),
        message_id: Set(message.message_id.clone()),
        state: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(String::new()),
        created_at: Set(now),
        sent_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Claims up to `limit` pending emails that are due, by pushing their next
/// attempt `lease` into the future: other dispatchers (on other replicas)
/// skip them until the lease runs out. One statement: the rows are chosen
/// with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so dispatchers claiming at
/// the same moment take different rows instead of waiting for each other.
#[instrument(skip(conn), err)]
pub async fn claim_due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<OutboxMail>, Error> {
    let due = Query::select()
        .column(mail_outbox::Column::Id)
        .from(mail_outbox::Entity)
        .and_where(mail_outbox::Column::State.eq(PENDING))
        .and_where(mail_outbox::Column::NextAttemptAt.lte(now))
        .order_by(mail_outbox::Column::NextAttemptAt, Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let until = now + chrono::Duration::from_std(lease).map_err(Error::internal)?;
    let rows = mail_outbox::Entity::update_many()
        .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(until))
        .filter(mail_outbox::Column::Id.in_subquery(due))
        .exec_with_returning(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| OutboxMail {
            id: row.id,
            attempts: row.attempts,
            message: EmailMessage {
                to: row.recipient,
                subject: row.subject,
                body: row.body,
                message_id: row.message_id,
            },
        })
        .collect())
}

/// Records one delivery attempt: counts it and applies `changes`.
async fn record_attempt(
    conn: &impl ConnectionTrait,
    id: Uuid,
    changes: Vec<(mail_outbox::Column, Expr)>,
) -> Result<(), Error> {
    let mut update = mail_outbox::Entity::update_many().col_expr(
        mail_outbox::Column::Attempts,
        Expr::col(mail_outbox::Column::Attempts).add(1),
    );
    for (column, value) in changes {
        update = update.col_expr(column, value);
    }
    update
        .filter(mail_outbox::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Records a delivery.
#[instrument(skip(conn), err)]
pub async fn mark_sent(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let changes = vec![
        (mail_outbox::Column::State, Expr::value(SENT)),
        (mail_outbox::Column::SentAt, Expr::value(Some(now))),
    ];
    record_attempt(conn, id, changes).await
}

/// Records a failed attempt; the email is tried again at `next_attempt_at`.
#[instrument(skip(conn, error), err)]
pub async fn mark_retry(
    conn: &impl ConnectionTrait,
    id: Uuid,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), Error> {
    let changes = vec![
        (
            mail_outbox::Column::NextAttemptAt,
            Expr::value(next_attempt_at),
        ),
        (mail_outbox::Column::LastError, Expr::value(error)),
    ];
    record_attempt(conn, id, changes).await
}

/// Records a permanent refusal: the email is not tried again.
#[instrument(skip(conn, error), err)]
pub async fn mark_failed(conn: &impl ConnectionTrait, id: Uuid, error: &str) -> Result<(), Error> {
    let changes = vec![
        (mail_outbox::Column::State, Expr::value(FAILED)),
        (mail_outbox::Column::LastError, Expr::value(error)),
    ];
    record_attempt(conn, id, changes).await
}

/// Emails not yet delivered (and not refused for good).
#[instrument(skip(conn), err)]
pub async fn pending_count(conn: &impl ConnectionTrait) -> Result<u64, Error> {
    Ok(mail_outbox::Entity::find()
        .filter(mail_outbox::Column::State.eq(PENDING))
        .count(conn)
        .await?)
}
