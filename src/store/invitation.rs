//! Queries on invitations.
//!
//! Expiry is applied on read: a row stored as `pending` whose `expires_at`
//! has passed is expired, and every filter here treats it so. The sweeper
//! and the write paths store the `expired` state later; reads never write.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use tracing::instrument;
use uuid::Uuid;

use super::{
    conflict_on,
    entity::{invitations, organizations},
    membership::role_from_db,
};
use crate::domain::{
    Error, Reason,
    ids::{InvitationId, OrganizationId, UserId},
    input::Email,
    model::{Invitation, InvitationDelivery, InvitationState, Role},
    page::PageRequest,
};

fn invitation(
    row: invitations::Model,
    organization: Option<organizations::Model>,
) -> Result<Invitation, Error> {
    let (organization_name, organization_slug) =
        organization.map(|o| (o.name, o.slug)).unwrap_or_default();
    let stored_state = InvitationState::from_db(&row.state).ok_or_else(|| {
        Error::internal(format!(
            "unknown invitation state {:?} in the database",
            row.state
        ))
    })?;
    let delivery = InvitationDelivery::from_db(&row.delivery).ok_or_else(|| {
        Error::internal(format!(
            "unknown invitation delivery {:?} in the database",
            row.delivery
        ))
    })?;
    Ok(Invitation {
        id: InvitationId(row.id),
        organization_id: OrganizationId(row.organization_id),
        organization_name,
        organization_slug,
        email: row.email,
        role: role_from_db(&row.role)?,
        stored_state,
        inviter_id: UserId::from_trusted(row.inviter_id),
        expires_at: row.expires_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        delivery,
        source_id: row.source_id,
        // The use-case decides who sees it.
        link: None,
    })
}

/// The rows whose *visible* state is `state` at `now`.
fn in_state(state: InvitationState, now: DateTime<Utc>) -> Condition {
    let stored = |s: InvitationState| invitations::Column::State.eq(s.as_str());
    match state {
        InvitationState::Pending => Condition::all()
            .add(stored(InvitationState::Pending))
            .add(invitations::Column::ExpiresAt.gt(now)),
        InvitationState::Expired => Condition::any().add(stored(InvitationState::Expired)).add(
            Condition::all()
                .add(stored(InvitationState::Pending))
                .add(invitations::Column::ExpiresAt.lte(now)),
        ),
        InvitationState::Accepted | InvitationState::Rejected | InvitationState::Cancelled => {
            Condition::all().add(stored(state))
        }
    }
}

/// An invitation to insert: a new one (pending), or one imported in the
/// state it stands in elsewhere.
#[derive(Debug)]
pub struct InvitationRow<'a> {
    pub id: InvitationId,
    pub organization: OrganizationId,
    pub email: &'a Email,
    pub role: Role,
    pub state: InvitationState,
    pub inviter: &'a UserId,
    pub request_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub delivery: InvitationDelivery,
    pub created_at: DateTime<Utc>,
    /// An imported invitation's former id, when it is not a UUID.
    pub source_id: Option<&'a str>,
}

/// Inserts an invitation. A second pending invitation for the same email
/// and organization is refused by the partial unique index.
#[instrument(skip_all, fields(invitation_id = %row.id, org_id = %row.organization))]
pub async fn insert(conn: &impl ConnectionTrait, row: InvitationRow<'_>) -> Result<(), Error> {
    invitations::ActiveModel {
        id: Set(row.id.0),
        organization_id: Set(row.organization.0),
        email: Set(row.email.as_str().to_owned()),
        email_lower: Set(row.email.folded().to_owned()),
        role: Set(row.role.as_str().to_owned()),
        state: Set(row.state.as_str().to_owned()),
        inviter_id: Set(row.inviter.as_str().to_owned()),
        create_request_id: Set(row.request_id),
        expires_at: Set(row.expires_at),
        created_at: Set(row.created_at),
        updated_at: Set(row.created_at),
        delivery: Set(row.delivery.as_str().to_owned()),
        source_id: Set(row.source_id.map(str::to_owned)),
    }
    .insert(conn)
    .await
    .map_err(|err| {
        conflict_on(
            err,
            "email_lower",
            Error::AlreadyExists(Reason::AlreadyInvited),
        )
    })?;
    Ok(())
}

/// roster's id of the invitation imported with the former id `source`.
#[instrument(skip(conn))]
pub async fn find_by_source(
    conn: &impl ConnectionTrait,
    source: &str,
) -> Result<Option<InvitationId>, Error> {
    Ok(invitations::Entity::find()
        .select_only()
        .column(invitations::Column::Id)
        .filter(invitations::Column::SourceId.eq(source))
        .into_tuple::<Uuid>()
        .one(conn)
        .await?
        .map(InvitationId))
}

#[instrument(skip(conn))]
pub async fn find(
    conn: &impl ConnectionTrait,
    id: InvitationId,
) -> Result<Option<Invitation>, Error> {
    invitations::Entity::find_by_id(id.0)
        .find_also_related(organizations::Entity)
        .filter(organizations::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .map(|(row, org)| invitation(row, org))
        .transpose()
}

/// The invitation a retried `CreateInvitation` already made, if any.
#[instrument(skip(conn))]
pub async fn find_by_request(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    inviter: &UserId,
    request_id: Uuid,
) -> Result<Option<Invitation>, Error> {
    invitations::Entity::find()
        .find_also_related(organizations::Entity)
        .filter(invitations::Column::OrganizationId.eq(organization.0))
        .filter(invitations::Column::InviterId.eq(inviter.as_str()))
        .filter(invitations::Column::CreateRequestId.eq(request_id))
        .filter(organizations::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .map(|(row, org)| invitation(row, org))
        .transpose()
}

/// Whose invitations to list.
#[derive(Debug, Clone, Copy)]
pub enum Addressee<'a> {
    /// An organization's invitations.
    Organization(OrganizationId),
    /// The invitations sent to one (case-folded) address, across organizations.
    Email(&'a str),
}

/// A page of invitations, oldest first, optionally in one visible state.
#[instrument(skip(conn, page))]
pub async fn list(
    conn: &impl ConnectionTrait,
    addressee: Addressee<'_>,
    state: Option<InvitationState>,
    page: &PageRequest,
    now: DateTime<Utc>,
) -> Result<Vec<Invitation>, Error> {
    let mut query = invitations::Entity::find()
        .find_also_related(organizations::Entity)
        .filter(organizations::Column::DeletedAt.is_null());
    query = match addressee {
        Addressee::Organization(id) => query.filter(invitations::Column::OrganizationId.eq(id.0)),
        Addressee::Email(email_lower) => {
            query.filter(invitations::Column::EmailLower.eq(email_lower))
        }
    };
    if let Some(state) = state {
        query = query.filter(in_state(state, now));
    }
    if let Some(after) = page.after {
        query = query.filter(invitations::Column::Id.gt(after));
    }
    query
        .order_by_asc(invitations::Column::Id)
        .limit(page.fetch_limit())
        .all(conn)
        .await?
        .into_iter()
        .map(|(row, org)| invitation(row, org))
        .collect()
}

/// Invitations stored as pending whose expiry has passed (oldest first).
#[instrument(skip(conn))]
pub async fn list_lapsed(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Invitation>, Error> {
    invitations::Entity::find()
        .find_also_related(organizations::Entity)
        .filter(invitations::Column::State.eq(InvitationState::Pending.as_str()))
        .filter(invitations::Column::ExpiresAt.lte(now))
        .order_by_asc(invitations::Column::ExpiresAt)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|(row, org)| invitation(row, org))
        .collect()
}

/// Stores `expired` on the organization's pending invitations for
/// `email_lower` that have run out, so a fresh invitation may take their
/// place under the one-pending-per-email index. Returns the ones it expired,
/// with their addresses as stored.
#[instrument(skip(conn, email_lower))]
pub async fn expire_lapsed_for_email(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    email_lower: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(InvitationId, String)>, Error> {
    let lapsed: Vec<(Uuid, String)> = invitations::Entity::find()
        .select_only()
        .column(invitations::Column::Id)
        .column(invitations::Column::Email)
        .filter(invitations::Column::OrganizationId.eq(organization.0))
        .filter(invitations::Column::EmailLower.eq(email_lower))
        .filter(invitations::Column::State.eq(InvitationState::Pending.as_str()))
        .filter(invitations::Column::ExpiresAt.lte(now))
        .into_tuple()
        .all(conn)
        .await?;
    for (id, _) in &lapsed {
        transition(
            conn,
            InvitationId(*id),
            InvitationState::Expired,
            now,
            Guard::Lapsed,
        )
        .await?;
    }
    Ok(lapsed
        .into_iter()
        .map(|(id, email)| (InvitationId(id), email))
        .collect())
}

/// Which rows a [`transition`] may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Stored pending and not yet expired: the only state an answer or a
    /// cancellation may leave.
    Live,
    /// Stored pending but past expiry: only the expiry may move these.
    Lapsed,
}

/// Moves the invitation from pending to `to` if `guard` still holds at
/// `now`; `false` if it does not (already answered, or expired), in which
/// case nothing changed. The condition is in the `UPDATE` itself, so two
/// racing answers cannot both succeed.
#[instrument(skip(conn))]
pub async fn transition(
    conn: &impl ConnectionTrait,
    id: InvitationId,
    to: InvitationState,
    now: DateTime<Utc>,
    guard: Guard,
) -> Result<bool, Error> {
    let expiry = match guard {
        Guard::Live => invitations::Column::ExpiresAt.gt(now),
        Guard::Lapsed => invitations::Column::ExpiresAt.lte(now),
    };
    let result = invitations::Entity::update_many()
        .col_expr(invitations::Column::State, Expr::value(to.as_str()))
        .col_expr(invitations::Column::UpdatedAt, Expr::value(now))
        .filter(invitations::Column::Id.eq(id.0))
        .filter(invitations::Column::State.eq(InvitationState::Pending.as_str()))
        .filter(expiry)
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Gives a pending or expired invitation a fresh expiry (and makes it
/// pending again), recording who resent it. `false` if it was answered or
/// cancelled meanwhile. Reviving an expired one can collide with a newer
/// pending invitation for the same address: `ALREADY_EXISTS`.
#[instrument(skip(conn))]
pub async fn renew(
    conn: &impl ConnectionTrait,
    id: InvitationId,
    inviter: &UserId,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let result = invitations::Entity::update_many()
        .col_expr(
            invitations::Column::State,
            Expr::value(InvitationState::Pending.as_str()),
        )
        .col_expr(invitations::Column::ExpiresAt, Expr::value(expires_at))
        .col_expr(
            invitations::Column::InviterId,
            Expr::value(inviter.as_str()),
        )
        .col_expr(invitations::Column::UpdatedAt, Expr::value(now))
        .filter(invitations::Column::Id.eq(id.0))
        .filter(invitations::Column::State.is_in([
            InvitationState::Pending.as_str(),
            InvitationState::Expired.as_str(),
        ]))
        .exec(conn)
        .await
        .map_err(|err| {
            conflict_on(
                err,
                "email_lower",
                Error::AlreadyExists(Reason::AlreadyInvited),
            )
        })?;
    Ok(result.rows_affected > 0)
}

/// Every invitation, in any state and organization, addressed to one of
/// `emails_lower` (case-folded), oldest first.
#[instrument(skip_all)]
pub async fn addressed_to(
    conn: &impl ConnectionTrait,
    emails_lower: &[String],
) -> Result<Vec<Invitation>, Error> {
    if emails_lower.is_empty() {
        return Ok(Vec::new());
    }
    invitations::Entity::find()
        .find_also_related(organizations::Entity)
        .filter(invitations::Column::EmailLower.is_in(emails_lower.iter().map(String::as_str)))
        .order_by_asc(invitations::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|(row, org)| invitation(row, org))
        .collect()
}

/// Replaces the address of every invitation to one of `emails_lower` with
/// `marker`, and its comparison form with the empty string, which no
/// caller's email folds to: an erased address is never matched again.
/// None of them may be pending (the one-pending-per-address index).
#[instrument(skip_all)]
pub async fn redact_addressed_to(
    conn: &impl ConnectionTrait,
    emails_lower: &[String],
    marker: &str,
) -> Result<u64, Error> {
    if emails_lower.is_empty() {
        return Ok(0);
    }
    let result = invitations::Entity::update_many()
        .col_expr(invitations::Column::Email, Expr::value(marker))
        .col_expr(invitations::Column::EmailLower, Expr::value(""))
        .filter(invitations::Column::EmailLower.is_in(emails_lower.iter().map(String::as_str)))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
