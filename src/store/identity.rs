//! Developer identities: the delivery intents (`developer_identities`) and
//! the state every read of an organization shows (its `identity_*` columns).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use tracing::instrument;
use uuid::Uuid;

use super::{
    entity::{developer_identities, organizations},
    lease::{self, Lease, Leased},
};
use crate::domain::{
    Error,
    identity::{Confirmed, Desired, Identity, IdentityIntent, IdentityState, PortalStatus},
    ids::{DeveloperId, OrganizationId},
};

impl Leased for developer_identities::Entity {
    fn key() -> developer_identities::Column {
        developer_identities::Column::DeveloperId
    }
    fn lease_token() -> developer_identities::Column {
        developer_identities::Column::LeaseToken
    }
    fn next_attempt_at() -> developer_identities::Column {
        developer_identities::Column::NextAttemptAt
    }
}

fn intent(row: developer_identities::Model) -> Result<IdentityIntent, Error> {
    let corrupt = || Error::internal(format!("developer identity row {:?}", row.developer_id));
    Ok(IdentityIntent {
        desired: Desired::from_db(&row.desired).ok_or_else(corrupt)?,
        confirmed: Confirmed::from_db(&row.confirmed).ok_or_else(corrupt)?,
        portal_status: PortalStatus::from_db(&row.portal_status).ok_or_else(corrupt)?,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        organization_id: OrganizationId(row.organization_id),
        last_error: row.last_error,
        developer_id: DeveloperId::from_trusted(row.developer_id),
    })
}

/// Calls still to make: the portal does not (yet) match the intent.
fn unsettled() -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(developer_identities::Column::Desired.eq(Desired::Present.as_str()))
                .add(developer_identities::Column::Confirmed.ne(Confirmed::Present.as_str())),
        )
        .add(
            Condition::all()
                .add(developer_identities::Column::Desired.eq(Desired::Absent.as_str()))
                .add(developer_identities::Column::Confirmed.ne(Confirmed::Absent.as_str())),
        )
}

fn i32_of(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A new intent row: due now, never attempted, under no lease.
fn new_row(
    developer: &DeveloperId,
    organization: OrganizationId,
    desired: Desired,
    confirmed: Confirmed,
    portal_status: PortalStatus,
    now: DateTime<Utc>,
) -> developer_identities::ActiveModel {
    developer_identities::ActiveModel {
        developer_id: Set(developer.as_str().to_owned()),
        organization_id: Set(organization.0),
        desired: Set(desired.as_str().to_owned()),
        confirmed: Set(confirmed.as_str().to_owned()),
        portal_status: Set(portal_status.as_str().to_owned()),
        attempts: Set(0),
        last_error: Set(String::new()),
        last_status: Set(0),
        next_attempt_at: Set(now),
        lease_token: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Records, in the caller's transaction, that the identity `developer`
/// of `organization` must exist in the Provider Portal. Nothing is known
/// of it there yet: from its first attempt on, a create may have happened.
#[instrument(skip(conn))]
pub async fn insert_present(
    conn: &impl ConnectionTrait,
    developer: &DeveloperId,
    organization: OrganizationId,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    new_row(
        developer,
        organization,
        Desired::Present,
        Confirmed::Unknown,
        PortalStatus::Unknown,
        now,
    )
    .insert(conn)
    .await?;
    Ok(())
}

/// Records, in the caller's transaction, that the identity must no longer
/// exist. An attempt in progress keeps its lease: the delete is attempted
/// after it (it sets the next attempt to "now" when it ends), never beside
/// it. Without a row yet (an identity roster never delivered), one is
/// written: roster cannot know the portal does not have it.
#[instrument(skip(conn))]
pub async fn request_absent(
    conn: &impl ConnectionTrait,
    developer: &DeveloperId,
    organization: OrganizationId,
    now: DateTime<Utc>,
) -> Result<IdentityIntent, Error> {
    let row = new_row(
        developer,
        organization,
        Desired::Absent,
        Confirmed::Unknown,
        PortalStatus::Unknown,
        now,
    );
    developer_identities::Entity::insert(row)
        .on_conflict(
            OnConflict::column(developer_identities::Column::DeveloperId)
                .update_columns([
                    developer_identities::Column::Desired,
                    developer_identities::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    // Due now, unless a worker is attempting it (its lease ends the wait).
    developer_identities::Entity::update_many()
        .col_expr(
            developer_identities::Column::NextAttemptAt,
            Expr::value(now),
        )
        .filter(developer_identities::Column::DeveloperId.eq(developer.as_str()))
        .filter(developer_identities::Column::LeaseToken.is_null())
        .exec(conn)
        .await?;
    find(conn, developer)
        .await?
        .ok_or_else(|| Error::internal("developer identity vanished"))
}

#[instrument(skip(conn))]
pub async fn find(
    conn: &impl ConnectionTrait,
    developer: &DeveloperId,
) -> Result<Option<IdentityIntent>, Error> {
    developer_identities::Entity::find_by_id(developer.as_str().to_owned())
        .one(conn)
        .await?
        .map(intent)
        .transpose()
}

/// The intent, if it is still under `lease`, locked until the transaction
/// ends (`FOR UPDATE`; SQLite's write transaction holds the only lock).
#[instrument(skip(conn))]
pub async fn find_held(
    conn: &impl ConnectionTrait,
    developer: &DeveloperId,
    lease: &Lease,
) -> Result<Option<IdentityIntent>, Error> {
    developer_identities::Entity::find()
        .filter(lease::held::<developer_identities::Entity>(
            developer.as_str(),
            lease,
        ))
        .lock_exclusive()
        .one(conn)
        .await?
        .map(intent)
        .transpose()
}

/// Claims up to `limit` identities whose calls are due (only `only`, if
/// given) under `lease`.
#[instrument(skip(conn))]
pub async fn claim_due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: &Lease,
    limit: u64,
    only: Option<&DeveloperId>,
) -> Result<Vec<IdentityIntent>, Error> {
    let mut due = Condition::all().add(unsettled());
    if let Some(developer) = only {
        due = due.add(developer_identities::Column::DeveloperId.eq(developer.as_str()));
    }
    lease::claim::<developer_identities::Entity>(conn, due, now, lease, limit)
        .await?
        .into_iter()
        .map(intent)
        .collect()
}

/// Extends `lease` on one identity right before its call.
#[instrument(skip(conn))]
pub async fn renew(
    conn: &impl ConnectionTrait,
    developer: &DeveloperId,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    lease::renew::<developer_identities::Entity>(conn, developer.as_str(), lease, now).await
}

/// Writes what an attempt under `lease` learned and ends the lease; the
/// next attempt (if the intent is still unsettled) is at `next_attempt_at`.
#[instrument(skip(conn, updated))]
pub async fn record_attempt(
    conn: &impl ConnectionTrait,
    updated: &IdentityIntent,
    lease: &Lease,
    last_status: u16,
    next_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    developer_identities::Entity::update_many()
        .col_expr(
            developer_identities::Column::Confirmed,
            Expr::value(updated.confirmed.as_str()),
        )
        .col_expr(
            developer_identities::Column::PortalStatus,
            Expr::value(updated.portal_status.as_str()),
        )
        .col_expr(
            developer_identities::Column::Attempts,
            Expr::value(i32_of(updated.attempts)),
        )
        .col_expr(
            developer_identities::Column::LastError,
            Expr::value(updated.last_error.clone()),
        )
        .col_expr(
            developer_identities::Column::LastStatus,
            Expr::value(i32::from(last_status)),
        )
        .col_expr(
            developer_identities::Column::NextAttemptAt,
            Expr::value(next_attempt_at),
        )
        .col_expr(
            developer_identities::Column::LeaseToken,
            Expr::value(None::<Uuid>),
        )
        .col_expr(developer_identities::Column::UpdatedAt, Expr::value(now))
        .filter(lease::held::<developer_identities::Entity>(
            updated.developer_id.as_str(),
            lease,
        ))
        .exec(conn)
        .await?;
    Ok(())
}

/// Corrects what roster believes of an identity that no worker holds
/// (reconciliation): what the portal has, and whether a call is due now.
#[instrument(skip(conn))]
pub async fn correct(
    conn: &impl ConnectionTrait,
    developer: &DeveloperId,
    organization: OrganizationId,
    desired: Desired,
    confirmed: Confirmed,
    portal_status: PortalStatus,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let row = new_row(
        developer,
        organization,
        desired,
        confirmed,
        portal_status,
        now,
    );
    let inserted = developer_identities::Entity::insert(row)
        .on_conflict(
            OnConflict::column(developer_identities::Column::DeveloperId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    if inserted > 0 {
        return Ok(true);
    }
    let result = developer_identities::Entity::update_many()
        .col_expr(
            developer_identities::Column::Desired,
            Expr::value(desired.as_str()),
        )
        .col_expr(
            developer_identities::Column::Confirmed,
            Expr::value(confirmed.as_str()),
        )
        .col_expr(
            developer_identities::Column::PortalStatus,
            Expr::value(portal_status.as_str()),
        )
        .col_expr(
            developer_identities::Column::NextAttemptAt,
            Expr::value(now),
        )
        .col_expr(developer_identities::Column::UpdatedAt, Expr::value(now))
        .filter(developer_identities::Column::DeveloperId.eq(developer.as_str()))
        .filter(developer_identities::Column::LeaseToken.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Shows `identity` on the organization that owns `developer`, if it still
/// exists.
#[instrument(skip(conn, identity))]
pub async fn show_on_organization(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    developer: &DeveloperId,
    identity: &Identity,
) -> Result<(), Error> {
    organizations::Entity::update_many()
        .col_expr(
            organizations::Column::IdentityState,
            Expr::value(identity.state.as_str()),
        )
        .col_expr(
            organizations::Column::IdentityAttempts,
            Expr::value(i32_of(identity.attempts)),
        )
        .col_expr(
            organizations::Column::IdentityLastError,
            Expr::value(identity.last_error.clone()),
        )
        .filter(organizations::Column::Id.eq(organization.0))
        .filter(organizations::Column::DeveloperId.eq(developer.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Identities whose calls are still to be made (due now or later).
#[instrument(skip(conn))]
pub async fn unsettled_count(conn: &impl ConnectionTrait) -> Result<u64, Error> {
    Ok(developer_identities::Entity::find()
        .filter(unsettled())
        .count(conn)
        .await?)
}

/// Every intent, for reconciliation.
#[instrument(skip(conn))]
pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<IdentityIntent>, Error> {
    developer_identities::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .map(intent)
        .collect()
}

/// One organization as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationIdentity {
    pub organization_id: OrganizationId,
    pub developer_id: DeveloperId,
    pub slug: String,
    pub state: IdentityState,
}

/// Every organization's developer id and identity state.
#[instrument(skip(conn))]
pub async fn organizations(
    conn: &impl ConnectionTrait,
) -> Result<Vec<OrganizationIdentity>, Error> {
    let rows: Vec<(Uuid, String, String, String)> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .column(organizations::Column::DeveloperId)
        .column(organizations::Column::Slug)
        .column(organizations::Column::IdentityState)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, developer, slug, state)| OrganizationIdentity {
            organization_id: OrganizationId(id),
            developer_id: DeveloperId::from_trusted(developer),
            slug,
            state: IdentityState::from_db(&state).unwrap_or(IdentityState::Local),
        })
        .collect())
}

/// The organization's shown identity state (`None`: no such organization).
#[instrument(skip(conn))]
pub async fn shown_state(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
) -> Result<Option<IdentityState>, Error> {
    let state: Option<String> = organizations::Entity::find_by_id(organization.0)
        .select_only()
        .column(organizations::Column::IdentityState)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(state.and_then(|s| IdentityState::from_db(&s)))
}
