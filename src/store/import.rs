//! Writes of `roster import`: rows that keep the ids and times they had
//! in the system they come from, where the other modules mint both.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use tracing::instrument;
use uuid::Uuid;

use super::{
    conflict_on,
    entity::{memberships, organization_slugs, organizations, users},
};
use crate::domain::{
    Error, Reason,
    ids::{MembershipId, OrganizationId, UserId},
    model::{MembershipSource, Role},
};

/// Every organization's id, developer id and slug.
#[instrument(skip(conn))]
pub async fn organizations(
    conn: &impl ConnectionTrait,
) -> Result<Vec<(OrganizationId, String, String)>, Error> {
    let rows: Vec<(Uuid, String, String)> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .column(organizations::Column::DeveloperId)
        .column(organizations::Column::Slug)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, developer, slug)| (OrganizationId(id), developer, slug))
        .collect())
}

/// Old slugs organizations still retain after a rename (at `now`), with
/// the organization retaining each: no other organization may take them.
#[instrument(skip(conn))]
pub async fn retained_slugs(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<(String, OrganizationId)>, Error> {
    let rows: Vec<(String, Uuid)> = organization_slugs::Entity::find()
        .select_only()
        .column(organization_slugs::Column::Slug)
        .column(organization_slugs::Column::OrganizationId)
        .filter(organization_slugs::Column::RetainedUntil.gt(now))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(slug, id)| (slug, OrganizationId(id)))
        .collect())
}

/// Writes a profile for `user` unless roster has one: one roster already
/// knows came from their own, newer token.
#[instrument(skip(conn, email, name))]
pub async fn insert_user_if_missing(
    conn: &impl ConnectionTrait,
    user: &UserId,
    email: &str,
    name: &str,
    created_at: DateTime<Utc>,
) -> Result<bool, Error> {
    let row = users::ActiveModel {
        id: Set(user.as_str().to_owned()),
        email: Set(email.to_owned()),
        email_lower: Set(email.to_lowercase()),
        display_name: Set(name.to_owned()),
        display_name_lower: Set(name.to_lowercase()),
        active_organization_id: Set(None),
        created_at: Set(created_at),
        updated_at: Set(created_at),
    };
    let inserted = users::Entity::insert(row)
        .on_conflict(
            OnConflict::column(users::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted > 0)
}

/// Adds a membership with its own id and join date.
#[instrument(skip(conn))]
pub async fn insert_membership(
    conn: &impl ConnectionTrait,
    id: MembershipId,
    organization: OrganizationId,
    user: &UserId,
    role: Role,
    joined_at: DateTime<Utc>,
) -> Result<(), Error> {
    memberships::ActiveModel {
        id: Set(id.0),
        organization_id: Set(organization.0),
        user_id: Set(user.as_str().to_owned()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(joined_at),
        updated_at: Set(joined_at),
        source: Set(MembershipSource::Import.as_str().to_owned()),
    }
    .insert(conn)
    .await
    .map_err(|err| conflict_on(err, "user_id", Error::AlreadyExists(Reason::AlreadyMember)))?;
    Ok(())
}

/// Sets `user`'s active organization unless they have one already.
#[instrument(skip(conn))]
pub async fn set_active_if_unset(
    conn: &impl ConnectionTrait,
    user: &UserId,
    organization: OrganizationId,
) -> Result<bool, Error> {
    let result = users::Entity::update_many()
        .col_expr(
            users::Column::ActiveOrganizationId,
            Expr::value(Some(organization.0)),
        )
        .filter(users::Column::Id.eq(user.as_str()))
        .filter(users::Column::ActiveOrganizationId.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}
