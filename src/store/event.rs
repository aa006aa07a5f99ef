//! The change log: written in the transaction of each change, read in
//! (txid, seq) order by consumers and per organization by the audit log.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, NotSet,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
    sea_query::{Expr, ExprTrait, Func},
};
use tracing::instrument;
use uuid::Uuid;

use super::entity::events;
use crate::domain::{
    Error,
    event::{Event, EventCursor, EventType, FieldChange, NewEvent},
    ids::{DeveloperId, OrganizationId, UserId},
    page::PageRequest,
};

/// The PostgreSQL channel on which every committed batch of events is
/// announced (by the trigger of migration `m20261129_000003`).
pub const NOTIFY_CHANNEL: &str = "roster_events";

fn event(row: events::Model) -> Result<Event, Error> {
    let changes: Vec<FieldChange> = serde_json::from_str(&row.data).map_err(Error::internal)?;
    Ok(Event {
        cursor: EventCursor {
            txid: row.txid,
            seq: row.seq,
        },
        id: row.id,
        event_type: row.event_type,
        organization_id: OrganizationId(row.organization_id),
        developer_id: DeveloperId::from_trusted(row.developer_id),
        actor_id: row.actor_id,
        subject_user_id: row.subject_user_id,
        subject_email: row.subject_email,
        changes,
        created_at: row.created_at,
        acting_party: row.acting_party,
    })
}

/// Records `event` in the caller's transaction and returns its cursor (the
/// change's revision). On PostgreSQL a trigger on `events` queues a NOTIFY
/// on [`NOTIFY_CHANNEL`], which PostgreSQL delivers when (and only if) the
/// transaction commits, waking consumers on every replica.
#[instrument(skip_all, fields(event_type = event.event_type.as_str(), org_id = %event.organization_id))]
pub async fn record(conn: &impl ConnectionTrait, event: NewEvent) -> Result<EventCursor, Error> {
    let data = serde_json::to_string(&event.changes).map_err(Error::internal)?;
    let row = events::ActiveModel {
        seq: NotSet,
        // The database's default: the writing transaction (PostgreSQL) or 0 (SQLite).
        txid: NotSet,
        id: Set(event.id),
        event_type: Set(event.event_type.as_str().to_owned()),
        organization_id: Set(event.organization_id.0),
        developer_id: Set(event.developer_id.as_str().to_owned()),
        actor_id: Set(event.actor_id),
        subject_user_id: Set(event.subject_user_id),
        subject_email: Set(event.subject_email),
        data: Set(data),
        created_at: Set(crate::domain::now()),
        acting_party: Set(event.acting_party),
    }
    .insert(conn)
    .await?;
    Ok(EventCursor {
        txid: row.txid,
        seq: row.seq,
    })
}

/// The cursor of the newest event consumers can be handed now; `START`
/// if there is none. A follower that starts here misses nothing that
/// matters to a cache loaded from the database after this call.
#[instrument(skip(conn))]
pub async fn latest_visible(conn: &impl ConnectionTrait) -> Result<EventCursor, Error> {
    let mut query = events::Entity::find()
        .select_only()
        .column(events::Column::Txid)
        .column(events::Column::Seq);
    if conn.get_database_backend() == DbBackend::Postgres {
        query = query.filter(visible());
    }
    let newest: Option<(i64, i64)> = query
        .order_by_desc(events::Column::Txid)
        .order_by_desc(events::Column::Seq)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(newest.map_or(EventCursor::START, |(txid, seq)| EventCursor { txid, seq }))
}

/// The cursor of the organization's first event of `event_type`, if any
/// (a retried create answers with its first revision).
#[instrument(skip(conn))]
pub async fn first_cursor(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    event_type: EventType,
) -> Result<Option<EventCursor>, Error> {
    let first: Option<(i64, i64)> = events::Entity::find()
        .select_only()
        .column(events::Column::Txid)
        .column(events::Column::Seq)
        .filter(events::Column::OrganizationId.eq(organization.0))
        .filter(events::Column::EventType.eq(event_type.as_str()))
        .order_by_asc(events::Column::Seq)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(first.map(|(txid, seq)| EventCursor { txid, seq }))
}

/// Where the log's visible part ends right now (PostgreSQL): events of
/// transactions below `visible_below` are final; transactions from
/// `next_txid` on had not started. Both `None` on SQLite, where whatever is
/// committed is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub visible_below: Option<i64>,
    pub next_txid: Option<i64>,
}

/// The current [`Horizon`].
#[instrument(skip(conn))]
pub async fn horizon(conn: &impl ConnectionTrait) -> Result<Horizon, Error> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(Horizon {
            visible_below: None,
            next_txid: None,
        });
    }
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT {VISIBLE_BELOW} AS xmin, \
                 pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax"
            ),
        ))
        .await?
        .ok_or_else(|| Error::internal("no snapshot"))?;
    Ok(Horizon {
        visible_below: Some(row.try_get("", "xmin")?),
        next_txid: Some(row.try_get("", "xmax")?),
    })
}

/// Up to `limit` events after `cursor` that were final at `horizon`, in log order.
#[instrument(skip(conn))]
pub async fn list_final(
    conn: &impl ConnectionTrait,
    cursor: EventCursor,
    limit: u64,
    horizon: Horizon,
) -> Result<Vec<Event>, Error> {
    let visibility = horizon
        .visible_below
        .map(|below| events::Column::Txid.lt(below));
    read_after(conn, cursor, limit, visibility, None).await
}

/// Up to `limit` events after `cursor` that pass `visibility` (and are
/// about one of `only`, if given), in log order.
async fn read_after(
    conn: &impl ConnectionTrait,
    cursor: EventCursor,
    limit: u64,
    visibility: Option<sea_orm::sea_query::SimpleExpr>,
    only: Option<&[OrganizationId]>,
) -> Result<Vec<Event>, Error> {
    let mut query = events::Entity::find().filter(after(cursor));
    if let Some(visibility) = visibility {
        query = query.filter(visibility);
    }
    if let Some(only) = only {
        query = query.filter(about(only));
    }
    query
        .order_by_asc(events::Column::Txid)
        .order_by_asc(events::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(event)
        .collect()
}

/// PostgreSQL: the oldest transaction still running *in this database*
/// (as a full 64-bit id, like `events.txid`), or the next id to be assigned
/// when none is: every event written below it is final.
///
/// A snapshot's `xmin` is cluster-wide, so a long transaction in another
/// database on the same server would hold our change log back although it
/// can never write to our `events`. So the snapshot's running ids are taken
/// minus those that `pg_stat_activity` and `pg_prepared_xacts` positively
/// place in another database. An id that has vanished from those views by
/// the time they are read (its transaction ended after the snapshot) or
/// that they do not show (a role without `pg_read_all_stats` sees no
/// `backend_xid` of other roles' sessions) still counts: the exclusion can
/// only be too small, never too large, because a running transaction's id
/// belongs to exactly one database. The views know only 32-bit ids, hence
/// the comparison modulo 2^32.
const VISIBLE_BELOW: &str = "COALESCE(\
     (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x \
      WHERE (x::text::bigint % 4294967296) NOT IN (\
        SELECT backend_xid::text::bigint FROM pg_stat_activity \
        WHERE backend_xid IS NOT NULL AND datname <> current_database() \
        UNION ALL \
        SELECT transaction::text::bigint FROM pg_prepared_xacts \
        WHERE database <> current_database())), \
     pg_snapshot_xmax(pg_current_snapshot())::text::bigint)";

/// PostgreSQL: written by a transaction older than every one still running
/// in this database ([`VISIBLE_BELOW`]).
fn visible() -> sea_orm::sea_query::SimpleExpr {
    Expr::col(events::Column::Txid).lt(Expr::cust(VISIBLE_BELOW))
}

/// Up to `limit` events after `cursor`, in log order, of transactions that
/// can no longer be followed by an earlier-sorting commit.
///
/// On PostgreSQL an event is handed out only once every transaction that
/// started before its own has finished (`txid < xmin` of a fresh snapshot):
/// any transaction still running will sort after it, so a consumer that
/// moves past it never skips anything. On SQLite writers are serialized,
/// so whatever is committed is final in `seq` order.
#[instrument(skip(conn))]
pub async fn list_after(
    conn: &impl ConnectionTrait,
    cursor: EventCursor,
    limit: u64,
    only: Option<&[OrganizationId]>,
) -> Result<Vec<Event>, Error> {
    let visibility = (conn.get_database_backend() == DbBackend::Postgres).then(visible);
    read_after(conn, cursor, limit, visibility, only).await
}

/// Events about one of `only`.
fn about(only: &[OrganizationId]) -> sea_orm::sea_query::SimpleExpr {
    events::Column::OrganizationId.is_in(only.iter().map(|id| id.0))
}

/// Whether any committed event sorts after `cursor` (about one of
/// `only`, if given), handed out yet or not (one can be committed but still held back behind an older running
/// transaction).
#[instrument(skip(conn))]
pub async fn exists_after(
    conn: &impl ConnectionTrait,
    cursor: EventCursor,
    only: Option<&[OrganizationId]>,
) -> Result<bool, Error> {
    let mut query = events::Entity::find().filter(after(cursor));
    if let Some(only) = only {
        query = query.filter(about(only));
    }
    let found: Option<i64> = query
        .select_only()
        .column(events::Column::Seq)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(found.is_some())
}

/// `(txid, seq) > cursor`
fn after(cursor: EventCursor) -> sea_orm::sea_query::SimpleExpr {
    Expr::tuple([
        Expr::col(events::Column::Txid),
        Expr::col(events::Column::Seq),
    ])
    .gt(Expr::tuple([Expr::val(cursor.txid), Expr::val(cursor.seq)]))
}

/// A page of one organization's events, newest first.
#[instrument(skip(conn, page))]
pub async fn list_for_organization(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    page: &PageRequest,
) -> Result<Vec<Event>, Error> {
    let mut query =
        events::Entity::find().filter(events::Column::OrganizationId.eq(organization.0));
    if let Some(before) = page.after {
        query = query.filter(events::Column::Id.lt(before));
    }
    query
        .order_by_desc(events::Column::Id)
        .limit(page.fetch_limit())
        .all(conn)
        .await?
        .into_iter()
        .map(event)
        .collect()
}

/// The id of an event, as the audit log's page key.
pub fn page_key(event: &Event) -> Uuid {
    event.id
}

/// The addresses the log associates with `user`: those of the events about
/// them that carry one (the invitations they accepted or rejected).
#[instrument(skip(conn))]
pub async fn addresses_of(
    conn: &impl ConnectionTrait,
    user: &UserId,
) -> Result<Vec<String>, Error> {
    let addresses: Vec<String> = events::Entity::find()
        .select_only()
        .column(events::Column::SubjectEmail)
        .distinct()
        .filter(events::Column::SubjectUserId.eq(user.as_str()))
        .filter(events::Column::SubjectEmail.ne(""))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(addresses)
}

/// Every event that may hold something of `user`'s: made by them, about
/// them, or about one of `addresses` (as stored, or in lower case: the
/// caller compares exactly). The log has no index for these: erasure is
/// rare, and reads it whole.
#[instrument(skip_all, fields(user_id = %user))]
pub async fn touching(
    conn: &impl ConnectionTrait,
    user: &UserId,
    addresses: &[String],
) -> Result<Vec<Event>, Error> {
    let mut about = Condition::any()
        .add(events::Column::ActorId.eq(user.as_str()))
        .add(events::Column::SubjectUserId.eq(user.as_str()));
    if !addresses.is_empty() {
        about = about
            .add(events::Column::SubjectEmail.is_in(addresses.iter().map(String::as_str)))
            .add(
                Expr::expr(Func::lower(Expr::col(events::Column::SubjectEmail)))
                    .is_in(addresses.iter().map(String::as_str)),
            );
    }
    events::Entity::find()
        .filter(about)
        .order_by_asc(events::Column::Seq)
        .all(conn)
        .await?
        .into_iter()
        .map(event)
        .collect()
}

/// Rewrites what the event at `cursor` says about whom: its subject
/// address and its field changes. Its place in the log (cursor, id, time)
/// stays, so consumers' cursors stay valid.
#[instrument(skip_all, fields(seq = cursor.seq))]
pub async fn rewrite(
    conn: &impl ConnectionTrait,
    cursor: EventCursor,
    subject_email: &str,
    changes: &[FieldChange],
) -> Result<(), Error> {
    let data = serde_json::to_string(changes).map_err(Error::internal)?;
    events::Entity::update_many()
        .col_expr(events::Column::SubjectEmail, Expr::value(subject_email))
        .col_expr(events::Column::Data, Expr::value(data))
        .filter(events::Column::Seq.eq(cursor.seq))
        .exec(conn)
        .await?;
    Ok(())
}
