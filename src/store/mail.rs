//! The email outbox: rows written with the invitation change, then claimed,
//! sent and marked by the dispatcher.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, Set,
    sea_query::{Expr, ExprTrait, Func},
};
use tracing::instrument;
use uuid::Uuid;

use super::{
    entity::mail_outbox,
    lease::{self, Lease, Leased},
};
use crate::domain::{Error, email::EmailMessage};

/// An email waiting in (or claimed from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: Uuid,
    /// The invitation it is about.
    pub invitation_id: Uuid,
    pub message: EmailMessage,
    /// Delivery attempts made so far.
    pub attempts: i32,
}

const PENDING: &str = "pending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

/// Queues `message` in the caller's transaction.
#[instrument(skip_all, fields(mail_id = %id))]
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
        lease_token: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(())
}

impl Leased for mail_outbox::Entity {
    fn key() -> mail_outbox::Column {
        mail_outbox::Column::Id
    }
    fn lease_token() -> mail_outbox::Column {
        mail_outbox::Column::LeaseToken
    }
    fn next_attempt_at() -> mail_outbox::Column {
        mail_outbox::Column::NextAttemptAt
    }
}

/// Claims up to `limit` pending emails that are due, under `lease`
/// (see [`super::lease`]).
#[instrument(skip(conn))]
pub async fn claim_due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: &Lease,
    limit: u64,
) -> Result<Vec<OutboxMail>, Error> {
    let pending = Condition::all().add(mail_outbox::Column::State.eq(PENDING));
    let rows = lease::claim::<mail_outbox::Entity>(conn, pending, now, lease, limit).await?;
    Ok(rows
        .into_iter()
        .map(|row| OutboxMail {
            id: row.id,
            invitation_id: row.invitation_id,
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

/// Extends `lease` on one email right before it is attempted; false if the
/// lease ran out and another dispatcher has the email now.
#[instrument(skip(conn))]
pub async fn renew(
    conn: &impl ConnectionTrait,
    id: Uuid,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    lease::renew::<mail_outbox::Entity>(conn, id, lease, now).await
}

/// Records one delivery attempt under `lease`: counts it, applies
/// `changes` and ends the lease. Nothing happens if the lease was lost.
async fn record_attempt(
    conn: &impl ConnectionTrait,
    id: Uuid,
    lease: &Lease,
    changes: Vec<(mail_outbox::Column, Expr)>,
) -> Result<bool, Error> {
    let mut update = mail_outbox::Entity::update_many()
        .col_expr(
            mail_outbox::Column::Attempts,
            Expr::col(mail_outbox::Column::Attempts).add(1),
        )
        .col_expr(mail_outbox::Column::LeaseToken, Expr::value(None::<Uuid>));
    for (column, value) in changes {
        update = update.col_expr(column, value);
    }
    let update = update
        .filter(lease::held::<mail_outbox::Entity>(id, lease))
        .exec(conn)
        .await?;
    Ok(update.rows_affected > 0)
}

/// Records a delivery.
#[instrument(skip(conn))]
pub async fn mark_sent(
    conn: &impl ConnectionTrait,
    id: Uuid,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let changes = vec![
        (mail_outbox::Column::State, Expr::value(SENT)),
        (mail_outbox::Column::SentAt, Expr::value(Some(now))),
    ];
    record_attempt(conn, id, lease, changes).await.map(drop)
}

/// Records a failed attempt; the email is tried again at `next_attempt_at`.
#[instrument(skip(conn, error))]
pub async fn mark_retry(
    conn: &impl ConnectionTrait,
    id: Uuid,
    lease: &Lease,
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
    record_attempt(conn, id, lease, changes).await.map(drop)
}

/// Records a permanent refusal: the email is not tried again. False if the
/// lease ran out (another dispatcher has the email now).
#[instrument(skip(conn, error))]
pub async fn mark_failed(
    conn: &impl ConnectionTrait,
    id: Uuid,
    lease: &Lease,
    error: &str,
) -> Result<bool, Error> {
    let changes = vec![
        (mail_outbox::Column::State, Expr::value(FAILED)),
        (mail_outbox::Column::LastError, Expr::value(error)),
    ];
    record_attempt(conn, id, lease, changes).await
}

/// Emails not yet delivered (and not refused for good).
#[instrument(skip(conn))]
pub async fn pending_count(conn: &impl ConnectionTrait) -> Result<u64, Error> {
    Ok(mail_outbox::Entity::find()
        .filter(mail_outbox::Column::State.eq(PENDING))
        .count(conn)
        .await?)
}

/// An outbox row as erasure reads and rewrites it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxText {
    pub id: Uuid,
    /// The invitation it is about.
    pub invitation_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub last_error: String,
    /// Not yet delivered (nor refused for good).
    pub pending: bool,
}

/// Every email about one of `invitations`, queued by one of `events`, or
/// to one of `addresses` (compared in lower case: the caller compares
/// exactly).
#[instrument(skip_all)]
pub async fn touching(
    conn: &impl ConnectionTrait,
    invitations: &[Uuid],
    events: &[Uuid],
    addresses: &[String],
) -> Result<Vec<OutboxText>, Error> {
    let mut about = Condition::any();
    if !invitations.is_empty() {
        about = about.add(mail_outbox::Column::InvitationId.is_in(invitations.iter().copied()));
    }
    if !events.is_empty() {
        about = about.add(mail_outbox::Column::EventId.is_in(events.iter().copied()));
    }
    if !addresses.is_empty() {
        about = about.add(
            Expr::expr(Func::lower(Expr::col(mail_outbox::Column::Recipient)))
                .is_in(addresses.iter().map(String::as_str)),
        );
    }
    if about.is_empty() {
        return Ok(Vec::new());
    }
    let rows = mail_outbox::Entity::find().filter(about).all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|row| OutboxText {
            id: row.id,
            invitation_id: row.invitation_id,
            recipient: row.recipient,
            subject: row.subject,
            body: row.body,
            last_error: row.last_error,
            pending: row.state == PENDING,
        })
        .collect())
}

/// Rewrites an email's text; with `withdraw`, a pending email is given up
/// (`failed`, never sent) and any dispatcher's lease on it ends.
#[instrument(skip_all, fields(mail_id = %mail.id))]
pub async fn rewrite(
    conn: &impl ConnectionTrait,
    mail: &OutboxText,
    withdraw: bool,
) -> Result<(), Error> {
    let mut update = mail_outbox::Entity::update_many()
        .col_expr(
            mail_outbox::Column::Recipient,
            Expr::value(mail.recipient.clone()),
        )
        .col_expr(
            mail_outbox::Column::Subject,
            Expr::value(mail.subject.clone()),
        )
        .col_expr(mail_outbox::Column::Body, Expr::value(mail.body.clone()))
        .col_expr(
            mail_outbox::Column::LastError,
            Expr::value(mail.last_error.clone()),
        );
    if withdraw {
        update = update
            .col_expr(mail_outbox::Column::State, Expr::value(FAILED))
            .col_expr(mail_outbox::Column::LeaseToken, Expr::value(None::<Uuid>));
    }
    update
        .filter(mail_outbox::Column::Id.eq(mail.id))
        .exec(conn)
        .await?;
    Ok(())
}
