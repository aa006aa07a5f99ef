//! Queries on organizations.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, OnConflict, Query},
};
use tracing::instrument;
use uuid::Uuid;

use super::{
    conflict_on,
    entity::{memberships, organization_logos, organizations},
};
use crate::domain::{
    Error, Reason,
    identity::{Identity, IdentityState},
    ids::{DeveloperId, OrganizationId, UserId},
    input::OrganizationSearch,
    lifecycle::{Deletion, Lifecycle, Suspension},
    logo::{ImageFormat, Logo, LogoImage, NewLogo},
    model::{InvitationState, LimitOverrides, Organization, Role},
    page::PageRequest,
};

impl From<organizations::Model> for Organization {
    fn from(row: organizations::Model) -> Self {
        Organization {
            id: OrganizationId(row.id),
            developer_id: DeveloperId::from_trusted(row.developer_id),
            name: row.name,
            slug: row.slug,
            logo: stored_logo(row.logo_url, row.logo_image_format, row.logo_image_sha256),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            identity: Identity {
                // The schema's CHECK admits only known states.
                state: IdentityState::from_db(&row.identity_state).unwrap_or(IdentityState::Local),
                attempts: u32::try_from(row.identity_attempts).unwrap_or(0),
                last_error: row.identity_last_error,
            },
            // The schema's CHECKs keep both within 0..=1_000_000.
            limits: LimitOverrides {
                max_members: row.max_members.and_then(|n| u64::try_from(n).ok()),
                max_pending_invitations: row
                    .max_pending_invitations
                    .and_then(|n| u64::try_from(n).ok()),
            },
            lifecycle: Lifecycle {
                suspension: row.suspended_at.map(|at| Suspension {
                    at,
                    reason: row.suspend_reason.unwrap_or_default(),
                }),
                // The schema's CHECK sets both or neither.
                deletion: row
                    .deleted_at
                    .zip(row.purge_at)
                    .map(|(at, purge_at)| Deletion { at, purge_at }),
            },
        }
    }
}

/// Organizations whose name or slug contains `search` (lower case). Slugs
/// are stored lower case; names are compared through the database's
/// `lower()`, which folds every letter on PostgreSQL and A-Z only on SQLite.
pub(super) fn matching(search: &OrganizationSearch) -> Condition {
    let pattern = format!("%{}", super::like_prefix(search.as_str()));
    Condition::any()
        .add(
            Expr::expr(Func::lower(Expr::col((
                organizations::Entity,
                organizations::Column::Name,
            ))))
            .like(LikeExpr::new(pattern.clone()).escape('\\')),
        )
        .add(
            Expr::col((organizations::Entity, organizations::Column::Slug))
                .like(LikeExpr::new(pattern).escape('\\')),
        )
}

/// A page of every organization, in the order they were created (their
/// UUIDv7 ids), suspended ones included, deleted ones not; with `only`, of
/// those among them; with `search`, of those whose name or slug contains it.
#[instrument(skip(conn, page))]
pub async fn list_all(
    conn: &impl ConnectionTrait,
    only: Option<&[OrganizationId]>,
    search: Option<&OrganizationSearch>,
    page: &PageRequest,
) -> Result<Vec<Organization>, Error> {
    // Deleted organizations are hidden from every list.
    let mut query = organizations::Entity::find().filter(not_deleted());
    if let Some(only) = only {
        query = query.filter(organizations::Column::Id.is_in(only.iter().map(|id| id.0)));
    }
    if let Some(search) = search {
        query = query.filter(matching(search));
    }
    if let Some(after) = page.after {
        query = query.filter(organizations::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(organizations::Column::Id)
        .limit(page.fetch_limit())
        .all(conn)
        .await?
        .into_iter()
        .map(Organization::from)
        .collect())
}

/// Sets the organization's own limits (`None`: the server's default).
#[instrument(skip(conn))]
pub async fn set_limits(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
    limits: LimitOverrides,
) -> Result<(), Error> {
    let column = |limit: Option<u64>| -> Result<Option<i32>, Error> {
        limit
            .map(i32::try_from)
            .transpose()
            .map_err(Error::internal)
    };
    organizations::Entity::update_many()
        .col_expr(
            organizations::Column::MaxMembers,
            Expr::value(column(limits.max_members)?),
        )
        .col_expr(
            organizations::Column::MaxPendingInvitations,
            Expr::value(column(limits.max_pending_invitations)?),
        )
        .filter(organizations::Column::Id.eq(id.0))
        .exec(conn)
        .await?;
    Ok(())
}

/// Organizations that are not deleted: everything but a restore and the
/// purge sees only these.
fn not_deleted() -> sea_orm::Condition {
    sea_orm::Condition::all().add(organizations::Column::DeletedAt.is_null())
}

/// The logo a row describes. The schema's CHECKs admit only a known
/// format, with its digest, and no URL beside an image.
fn stored_logo(url: String, format: Option<String>, digest: Option<String>) -> Logo {
    match (format.as_deref().and_then(ImageFormat::from_db), digest) {
        (Some(format), Some(digest)) => Logo::Image { format, digest },
        _ if url.is_empty() => Logo::None,
        _ => Logo::Url(url),
    }
}

/// The logo columns of `organizations` for `logo`: (url, format, digest).
fn logo_columns(logo: &Logo) -> (String, Option<String>, Option<String>) {
    match logo {
        Logo::None => (String::new(), None, None),
        Logo::Url(url) => (url.clone(), None, None),
        Logo::Image { format, digest } => (
            String::new(),
            Some(format.as_str().to_owned()),
            Some(digest.clone()),
        ),
    }
}

/// Inserts a new organization (with its logo image, if it has one) and
/// claims its slug. A taken slug (another organization's current one, or an
/// old one it still retains) is `ALREADY_EXISTS`, decided by the unique
/// indexes rather than a racy look-up.
#[instrument(skip_all, fields(org_id = %organization.id))]
pub async fn insert(
    conn: &impl ConnectionTrait,
    organization: &Organization,
    image: Option<&LogoImage>,
    created_by: &UserId,
    request_id: Option<Uuid>,
) -> Result<(), Error> {
    let (logo_url, logo_image_format, logo_image_sha256) = logo_columns(&organization.logo);
    organizations::ActiveModel {
        id: Set(organization.id.0),
        developer_id: Set(organization.developer_id.as_str().to_owned()),
        name: Set(organization.name.clone()),
        slug: Set(organization.slug.clone()),
        logo_url: Set(logo_url),
        logo_image_format: Set(logo_image_format),
        logo_image_sha256: Set(logo_image_sha256),
        version: Set(organization.version),
        created_by: Set(created_by.as_str().to_owned()),
        create_request_id: Set(request_id),
        created_at: Set(organization.created_at),
        updated_at: Set(organization.updated_at),
        identity_state: Set(organization.identity.state.as_str().to_owned()),
        identity_attempts: Set(i32::try_from(organization.identity.attempts).unwrap_or(i32::MAX)),
        identity_last_error: Set(organization.identity.last_error.clone()),
        max_members: Set(None),
        max_pending_invitations: Set(None),
        suspended_at: Set(None),
        suspend_reason: Set(None),
        deleted_at: Set(None),
        purge_at: Set(None),
    }
    .insert(conn)
    .await
    .map_err(|err| conflict_on(err, "slug", Error::AlreadyExists(Reason::SlugTaken)))?;
    if let Some(image) = image {
        put_logo_image(conn, organization.id, image).await?;
    }
    super::slug::claim(
        conn,
        organization.id,
        &organization.slug,
        organization.created_at,
    )
    .await
}

/// Stores (or replaces) the organization's logo image.
async fn put_logo_image(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
    image: &LogoImage,
) -> Result<(), Error> {
    organization_logos::Entity::insert(organization_logos::ActiveModel {
        organization_id: Set(id.0),
        image: Set(image.bytes().to_vec()),
    })
    .on_conflict(
        OnConflict::column(organization_logos::Column::OrganizationId)
            .update_column(organization_logos::Column::Image)
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

/// The organization's logo image, if its logo is one. Only the replies
/// about one organization read this; lists and the read cache never do.
#[instrument(skip(conn))]
pub async fn logo_image(
    conn: &impl ConnectionTrait,
    organization: &Organization,
) -> Result<Option<LogoImage>, Error> {
    let Logo::Image { format, .. } = organization.logo else {
        return Ok(None);
    };
    let row = organization_logos::Entity::find_by_id(organization.id.0)
        .one(conn)
        .await?;
    Ok(row.map(|row| LogoImage::from_trusted(format, row.image)))
}

/// The organization, unless it is deleted (deleted ones do not exist for
/// reads).
#[instrument(skip(conn))]
pub async fn find(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
) -> Result<Option<Organization>, Error> {
    Ok(organizations::Entity::find_by_id(id.0)
        .filter(not_deleted())
        .one(conn)
        .await?
        .map(Organization::from))
}

/// The organization whose developer identity is `developer`, if any and
/// not deleted.
#[instrument(skip(conn))]
pub async fn find_by_developer(
    conn: &impl ConnectionTrait,
    developer: &DeveloperId,
) -> Result<Option<Organization>, Error> {
    Ok(organizations::Entity::find()
        .filter(organizations::Column::DeveloperId.eq(developer.as_str()))
        .filter(not_deleted())
        .one(conn)
        .await?
        .map(Organization::from))
}

/// The organization a retried `CreateOrganization` already made, if any.
#[instrument(skip(conn))]
pub async fn find_by_request(
    conn: &impl ConnectionTrait,
    created_by: &UserId,
    request_id: Uuid,
) -> Result<Option<Organization>, Error> {
    Ok(organizations::Entity::find()
        .filter(organizations::Column::CreatedBy.eq(created_by.as_str()))
        .filter(organizations::Column::CreateRequestId.eq(request_id))
        .one(conn)
        .await?
        .map(Organization::from))
}

/// Reads the organization and locks its row until the transaction ends
/// (`FOR UPDATE` on PostgreSQL; on SQLite the write transaction already
/// holds the database's only write lock). Every change to an organization's
/// memberships or invitations takes this lock first, so decisions such as
/// "is this the last owner?" cannot interleave. A deleted organization is
/// locked and returned too (with its lifecycle): the caller decides, since
/// a restore, the purge and the identity worker act on deleted ones.
#[instrument(skip(conn))]
pub async fn lock(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
) -> Result<Option<Organization>, Error> {
    Ok(organizations::Entity::find_by_id(id.0)
        .lock_exclusive()
        .one(conn)
        .await?
        .map(Organization::from))
}

/// The logo images of those of `organizations` whose logo is one, by
/// organization, in one query.
#[instrument(skip_all)]
pub async fn logo_images<'a>(
    conn: &impl ConnectionTrait,
    organizations: impl IntoIterator<Item = &'a Organization>,
) -> Result<HashMap<OrganizationId, LogoImage>, Error> {
    let formats: HashMap<OrganizationId, ImageFormat> = organizations
        .into_iter()
        .filter_map(|org| match org.logo {
            Logo::Image { format, .. } => Some((org.id, format)),
            Logo::None | Logo::Url(_) => None,
        })
        .collect();
    if formats.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = organization_logos::Entity::find()
        .filter(organization_logos::Column::OrganizationId.is_in(formats.keys().map(|id| id.0)))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let id = OrganizationId(row.organization_id);
            let format = formats.get(&id)?;
            Some((id, LogoImage::from_trusted(*format, row.image)))
        })
        .collect())
}

/// The fields an update may change.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub name: Option<String>,
    /// The new current slug; its claim is moved right after, in the same
    /// transaction ([`super::slug::rename`]).
    pub slug: Option<String>,
    pub logo: Option<&'a NewLogo>,
}

/// Applies `changes` if the organization is still at `expected_version`;
/// `None` if it has moved on (or is gone).
#[instrument(skip(conn, changes))]
pub async fn update(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
    expected_version: i64,
    changes: Changes<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Organization>, Error> {
    let mut update = organizations::Entity::update_many()
        .col_expr(
            organizations::Column::Version,
            Expr::col(organizations::Column::Version).add(1),
        )
        .col_expr(organizations::Column::UpdatedAt, Expr::value(now))
        .filter(organizations::Column::Id.eq(id.0))
        .filter(organizations::Column::Version.eq(expected_version));
    if let Some(name) = changes.name {
        update = update.col_expr(organizations::Column::Name, Expr::value(name));
    }
    if let Some(slug) = changes.slug {
        update = update.col_expr(organizations::Column::Slug, Expr::value(slug));
    }
    if let Some(logo) = changes.logo {
        let (url, format, digest) = logo_columns(&logo.logo());
        update = update
            .col_expr(organizations::Column::LogoUrl, Expr::value(url))
            .col_expr(organizations::Column::LogoImageFormat, Expr::value(format))
            .col_expr(organizations::Column::LogoImageSha256, Expr::value(digest));
    }
    let updated = update
        .exec(conn)
        .await
        .map_err(|err| conflict_on(err, "slug", Error::AlreadyExists(Reason::SlugTaken)))?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    match changes.logo.map(NewLogo::image) {
        Some(Some(image)) => put_logo_image(conn, id, image).await?,
        Some(None) => {
            organization_logos::Entity::delete_by_id(id.0)
                .exec(conn)
                .await?;
        }
        None => {}
    }
    find(conn, id).await
}

/// An update that bumps the version (the etag changes: what was read
/// before no longer holds) and the update time of the organizations it
/// is filtered to.
fn changed(now: DateTime<Utc>) -> sea_orm::UpdateMany<organizations::Entity> {
    organizations::Entity::update_many()
        .col_expr(
            organizations::Column::Version,
            Expr::col(organizations::Column::Version).add(1),
        )
        .col_expr(organizations::Column::UpdatedAt, Expr::value(now))
}

/// Sets (or with `None` lifts) the organization's suspension, and bumps its
/// version (its etag changes: what was read before no longer holds). The
/// organization as it now stands.
#[instrument(skip(conn))]
pub async fn set_suspension(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
    suspension: Option<&Suspension>,
    now: DateTime<Utc>,
) -> Result<Option<Organization>, Error> {
    changed(now)
        .col_expr(
            organizations::Column::SuspendedAt,
            Expr::value(suspension.map(|s| s.at)),
        )
        .col_expr(
            organizations::Column::SuspendReason,
            Expr::value(suspension.map(|s| s.reason.clone())),
        )
        .filter(organizations::Column::Id.eq(id.0))
        .exec(conn)
        .await?;
    find_any(conn, id).await
}

/// Marks the organization deleted (or with `None` restores it), bumping
/// its version. Its rows stay: memberships, invitations and slugs wait for
/// a restore or the purge. The organization as it now stands.
#[instrument(skip(conn))]
pub async fn set_deletion(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
    deletion: Option<Deletion>,
    now: DateTime<Utc>,
) -> Result<Option<Organization>, Error> {
    changed(now)
        .col_expr(
            organizations::Column::DeletedAt,
            Expr::value(deletion.map(|d| d.at)),
        )
        .col_expr(
            organizations::Column::PurgeAt,
            Expr::value(deletion.map(|d| d.purge_at)),
        )
        .filter(organizations::Column::Id.eq(id.0))
        .exec(conn)
        .await?;
    find_any(conn, id).await
}

/// Deletes the organization at once, for good (erasure of its only
/// member); its memberships and invitations go with it (`ON DELETE
/// CASCADE`), and it stops being anyone's active organization.
#[instrument(skip(conn))]
pub async fn delete(conn: &impl ConnectionTrait, id: OrganizationId) -> Result<bool, Error> {
    let result = organizations::Entity::delete_by_id(id.0).exec(conn).await?;
    Ok(result.rows_affected > 0)
}

/// The organization whatever its lifecycle, deleted ones included.
#[instrument(skip(conn))]
pub async fn find_any(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
) -> Result<Option<Organization>, Error> {
    Ok(organizations::Entity::find_by_id(id.0)
        .one(conn)
        .await?
        .map(Organization::from))
}

/// Up to `limit` deleted organizations whose purge time has come, soonest first.
#[instrument(skip(conn))]
pub async fn list_due_for_purge(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrganizationId>, Error> {
    let ids: Vec<Uuid> = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .filter(organizations::Column::PurgeAt.lte(now))
        .order_by_asc(organizations::Column::PurgeAt)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(ids.into_iter().map(OrganizationId).collect())
}

/// Removes a deleted organization whose purge time has come, for good: its
/// memberships, invitations, slugs and logo go with it (`ON DELETE
/// CASCADE`), and it stops being anyone's active organization (`ON DELETE
/// SET NULL`). The statement re-checks both, so a restore that committed
/// first, or a purge time moved on, wins. Whether it removed the row.
#[instrument(skip(conn))]
pub async fn purge(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let result = organizations::Entity::delete_many()
        .filter(organizations::Column::Id.eq(id.0))
        .filter(organizations::Column::DeletedAt.is_not_null())
        .filter(organizations::Column::PurgeAt.lte(now))
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// How many organizations `user` owns (the organization limit counts these,
/// not every membership); deleted ones do not count, so that deleting one
/// makes room at once, as it did before deletions could be taken back.
#[instrument(skip(conn))]
pub async fn count_owned_by(conn: &impl ConnectionTrait, user: &UserId) -> Result<u64, Error> {
    Ok(memberships::Entity::find()
        .inner_join(organizations::Entity)
        .filter(organizations::Column::DeletedAt.is_null())
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .filter(memberships::Column::Role.eq(Role::Owner.as_str()))
        .count(conn)
        .await?)
}

/// Seats in use: (members, pending unexpired invitations), in one query.
#[instrument(skip(conn))]
pub async fn seat_usage(
    conn: &impl ConnectionTrait,
    id: OrganizationId,
    now: DateTime<Utc>,
) -> Result<(u64, u64), Error> {
    use super::entity::invitations;
    let members = Query::select()
        .expr(Expr::col(memberships::Column::Id).count())
        .from(memberships::Entity)
        .and_where(memberships::Column::OrganizationId.eq(id.0))
        .to_owned();
    let pending = Query::select()
        .expr(Expr::col(invitations::Column::Id).count())
        .from(invitations::Entity)
        .and_where(invitations::Column::OrganizationId.eq(id.0))
        .and_where(invitations::Column::State.eq(InvitationState::Pending.as_str()))
        .and_where(invitations::Column::ExpiresAt.gt(now))
        .to_owned();
    let query = Query::select()
        .expr_as(Expr::from(members), "members")
        .expr_as(Expr::from(pending), "pending")
        .to_owned();
    let row = conn
        .query_one(&query)
        .await?
        .ok_or_else(|| Error::internal("seat count returned no row"))?;
    let count = |column: &str| -> Result<u64, Error> {
        let value: i64 = row.try_get("", column)?;
        u64::try_from(value).map_err(Error::internal)
    };
    Ok((count("members")?, count("pending")?))
}
