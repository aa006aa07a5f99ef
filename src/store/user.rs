//! Queries on users: the profile roster shows for members (from their
//! latest token) and their active organization.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use tracing::instrument;

use super::entity::users;
use crate::domain::{
    Error,
    ids::{OrganizationId, UserId},
    input::Email,
    model::UserProfile,
};

/// Records the caller's profile (email and display name from their token).
/// On PostgreSQL the upsert also locks the user's row until the transaction
/// ends, which serializes a user's concurrent organization creations.
/// The row of a person first seen at `now`, as their profile says.
fn profile_row(profile: &UserProfile, now: DateTime<Utc>) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(profile.id.as_str().to_owned()),
        email: Set(profile.email.clone()),
        email_lower: Set(Email::fold(&profile.email)),
        display_name: Set(profile.display_name.clone()),
        display_name_lower: Set(profile.display_name.to_lowercase()),
        active_organization_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

#[instrument(skip_all, fields(user_id = %profile.id))]
pub async fn upsert_profile(
    conn: &impl ConnectionTrait,
    profile: &UserProfile,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let row = profile_row(profile, now);
    users::Entity::insert(row)
        .on_conflict(
            OnConflict::column(users::Column::Id)
                .update_columns([
                    users::Column::Email,
                    users::Column::EmailLower,
                    users::Column::DisplayName,
                    users::Column::DisplayNameLower,
                    users::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Records `profile` for a person someone else names (a platform
/// administrator), unless roster has one already: a profile from their own
/// token is theirs, and wins. Then locks their row until the transaction
/// ends (PostgreSQL), as [`upsert_profile`] does, so their organization
/// creations stay serialized whoever asks for them.
#[instrument(skip_all, fields(user_id = %profile.id))]
pub async fn ensure_profile(
    conn: &impl ConnectionTrait,
    profile: &UserProfile,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let row = profile_row(profile, now);
    users::Entity::insert(row)
        .on_conflict(
            OnConflict::column(users::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    let _locked: Option<String> = users::Entity::find_by_id(profile.id.as_str().to_owned())
        .select_only()
        .column(users::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .one(conn)
        .await?;
    Ok(())
}

/// Sets or clears the user's active organization.
#[instrument(skip(conn))]
pub async fn set_active_organization(
    conn: &impl ConnectionTrait,
    user: &UserId,
    organization: Option<OrganizationId>,
) -> Result<(), Error> {
    users::Entity::update_many()
        .col_expr(
            users::Column::ActiveOrganizationId,
            Expr::value(organization.map(|id| id.0)),
        )
        .filter(users::Column::Id.eq(user.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Clears `user`'s active organization if it is `organization` (they have
/// just lost their membership in it).
#[instrument(skip(conn))]
pub async fn clear_active_organization(
    conn: &impl ConnectionTrait,
    user: &UserId,
    organization: OrganizationId,
) -> Result<(), Error> {
    users::Entity::update_many()
        .col_expr(
            users::Column::ActiveOrganizationId,
            Expr::value(Option::<uuid::Uuid>::None),
        )
        .filter(users::Column::Id.eq(user.as_str()))
        .filter(users::Column::ActiveOrganizationId.eq(organization.0))
        .exec(conn)
        .await?;
    Ok(())
}

/// The user's active organization as stored; the caller re-checks membership.
#[instrument(skip(conn))]
pub async fn active_organization(
    conn: &impl ConnectionTrait,
    user: &UserId,
) -> Result<Option<OrganizationId>, Error> {
    let active: Option<Option<uuid::Uuid>> = users::Entity::find_by_id(user.as_str().to_owned())
        .select_only()
        .column(users::Column::ActiveOrganizationId)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(active.flatten().map(OrganizationId))
}

/// The profile roster holds for `user`, if any.
#[instrument(skip(conn))]
pub async fn find(
    conn: &impl ConnectionTrait,
    user: &UserId,
) -> Result<Option<UserProfile>, Error> {
    Ok(users::Entity::find_by_id(user.as_str().to_owned())
        .one(conn)
        .await?
        .map(|row| UserProfile {
            id: UserId::from_trusted(row.id),
            email: row.email,
            display_name: row.display_name,
        }))
}

/// Locks `user`'s row until the transaction ends (PostgreSQL; SQLite's
/// one writer already excludes every other write). Every use-case that
/// adds a membership writes this row first, so none can add one to the
/// user while the lock is held. Whether the row exists.
#[instrument(skip(conn))]
pub async fn lock(conn: &impl ConnectionTrait, user: &UserId) -> Result<bool, Error> {
    let found: Option<String> = users::Entity::find_by_id(user.as_str().to_owned())
        .select_only()
        .column(users::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .one(conn)
        .await?;
    Ok(found.is_some())
}

/// Deletes `user`'s profile (email, name, active organization); whether
/// there was one. Their memberships must be gone already.
#[instrument(skip(conn))]
pub async fn delete(conn: &impl ConnectionTrait, user: &UserId) -> Result<bool, Error> {
    let result = users::Entity::delete_by_id(user.as_str().to_owned())
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}
