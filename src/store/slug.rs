//! Claimed slugs: each organization's current slug and the old slugs it
//! retains after a rename (`organization_slugs`). The table's primary key
//! is the slug, so a slug is claimed at most once, current or retained:
//! taking a claimed slug fails in the database (`ALREADY_EXISTS`), not in a
//! racy look-up. A retained slug whose time has passed is free: whoever
//! takes it first removes its row in the same transaction.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, Set, sea_query::Expr,
};
use tracing::instrument;

use super::{conflict_on, entity::organization_slugs};
use crate::domain::{Error, Reason, ids::OrganizationId, model::SlugTarget};

/// A retained row for `slug` that no longer counts: its time has passed.
fn lapsed(slug: &str, now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(organization_slugs::Column::Slug.eq(slug))
        .add(organization_slugs::Column::RetainedUntil.is_not_null())
        .add(organization_slugs::Column::RetainedUntil.lte(now))
}

fn claim_taken(err: sea_orm::DbErr) -> Error {
    conflict_on(err, "slug", Error::AlreadyExists(Reason::SlugTaken))
}

/// Claims `slug` as `organization`'s current slug (a new organization).
/// Taken by a current or a retained slug: `ALREADY_EXISTS`.
#[instrument(skip(conn))]
pub async fn claim(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    slug: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    organization_slugs::Entity::delete_many()
        .filter(lapsed(slug, now))
        .exec(conn)
        .await?;
    organization_slugs::ActiveModel {
        slug: Set(slug.to_owned()),
        organization_id: Set(organization.0),
        retained_until: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(claim_taken)?;
    Ok(())
}

/// Moves `organization`'s current slug from `old` to `new`, retaining `old`
/// for it until `retain_until`. `new` may be one of its own retained old
/// slugs; taken by another organization (current or retained):
/// `ALREADY_EXISTS`.
///
/// Call it after writing `organizations.slug`, as [`claim`] runs after the
/// insert: every transaction taking a slug then locks the two unique
/// indexes in the same order, so racing ones wait instead of deadlocking
/// (PostgreSQL).
#[instrument(skip(conn))]
pub async fn rename(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    old: &str,
    new: &str,
    retain_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    // Free `new` if it is this organization's own old slug, or lapsed.
    organization_slugs::Entity::delete_many()
        .filter(
            Condition::any().add(lapsed(new, now)).add(
                Condition::all()
                    .add(organization_slugs::Column::Slug.eq(new))
                    .add(organization_slugs::Column::OrganizationId.eq(organization.0))
                    .add(organization_slugs::Column::RetainedUntil.is_not_null()),
            ),
        )
        .exec(conn)
        .await?;
    let retained = organization_slugs::Entity::update_many()
        .col_expr(
            organization_slugs::Column::RetainedUntil,
            Expr::value(Some(retain_until)),
        )
        .filter(organization_slugs::Column::Slug.eq(old))
        .filter(organization_slugs::Column::OrganizationId.eq(organization.0))
        .filter(organization_slugs::Column::RetainedUntil.is_null())
        .exec(conn)
        .await?;
    if retained.rows_affected != 1 {
        return Err(Error::internal(format!(
            "organization {organization} has no current slug row for {old:?}"
        )));
    }
    organization_slugs::ActiveModel {
        slug: Set(new.to_owned()),
        organization_id: Set(organization.0),
        retained_until: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(claim_taken)?;
    Ok(())
}

/// Where `slug` leads at `now`, if anywhere.
#[instrument(skip(conn))]
pub async fn resolve(
    conn: &impl ConnectionTrait,
    slug: &str,
    now: DateTime<Utc>,
) -> Result<Option<SlugTarget>, Error> {
    let row = organization_slugs::Entity::find_by_id(slug.to_owned())
        .one(conn)
        .await?;
    Ok(row
        .map(|row| SlugTarget {
            organization: OrganizationId(row.organization_id),
            retained_until: row.retained_until,
        })
        .filter(|target| target.holds_at(now)))
}

/// Removes up to `limit` retained slugs whose time has passed; returns how
/// many it removed. They no longer resolve already; this frees the rows.
#[instrument(skip(conn))]
pub async fn purge_lapsed(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<u64, Error> {
    let lapsed: Vec<String> = organization_slugs::Entity::find()
        .select_only()
        .column(organization_slugs::Column::Slug)
        .filter(organization_slugs::Column::RetainedUntil.is_not_null())
        .filter(organization_slugs::Column::RetainedUntil.lte(now))
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if lapsed.is_empty() {
        return Ok(0);
    }
    // Re-checked in the delete: a row renamed back to current meanwhile stays.
    let result = organization_slugs::Entity::delete_many()
        .filter(organization_slugs::Column::Slug.is_in(lapsed))
        .filter(organization_slugs::Column::RetainedUntil.is_not_null())
        .filter(organization_slugs::Column::RetainedUntil.lte(now))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}
