//! Queries on memberships.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, LikeExpr},
};
use strum::VariantArray as _;
use tracing::instrument;

use super::{
    conflict_on,
    entity::{memberships, organizations, users},
    like_prefix,
};
use crate::domain::{
    Error, Reason,
    ids::{MembershipId, OrganizationId, UserId},
    input::OrganizationSearch,
    model::{Member, MembershipSource, Organization, Role, UserOrganization},
    page::{MemberFilter, PageRequest},
};

pub(crate) fn role_from_db(value: &str) -> Result<Role, Error> {
    Role::from_db(value)
        .ok_or_else(|| Error::internal(format!("unknown role {value:?} in the database")))
}

fn source_from_db(value: &str) -> Result<MembershipSource, Error> {
    MembershipSource::from_db(value).ok_or_else(|| {
        Error::internal(format!(
            "unknown membership source {value:?} in the database"
        ))
    })
}

fn member(row: memberships::Model, user: Option<users::Model>) -> Result<Member, Error> {
    let (email, display_name) = user.map(|u| (u.email, u.display_name)).unwrap_or_default();
    Ok(Member {
        id: MembershipId(row.id),
        organization_id: OrganizationId(row.organization_id),
        role: role_from_db(&row.role)?,
        user_id: UserId::from_trusted(row.user_id),
        email,
        display_name,
        joined_at: row.created_at,
        source: source_from_db(&row.source)?,
    })
}

/// The user's role in the organization, or `None` if they are not a member
/// or the organization is deleted (its memberships wait for a restore, and
/// grant nothing meanwhile). One statement, so a check can never see the
/// membership without seeing the deletion.
#[instrument(skip(conn))]
pub async fn role_of(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    user: &UserId,
) -> Result<Option<Role>, Error> {
    let role: Option<String> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::Role)
        .inner_join(organizations::Entity)
        .filter(memberships::Column::OrganizationId.eq(organization.0))
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .filter(organizations::Column::DeletedAt.is_null())
        .into_tuple()
        .one(conn)
        .await?;
    role.as_deref().map(role_from_db).transpose()
}

/// The user's role in the organization whether or not it is deleted: only
/// a restore asks, since the owners of a deleted organization may bring it back.
#[instrument(skip(conn))]
pub async fn role_in_any(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    user: &UserId,
) -> Result<Option<Role>, Error> {
    let role: Option<String> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::Role)
        .filter(memberships::Column::OrganizationId.eq(organization.0))
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .into_tuple()
        .one(conn)
        .await?;
    role.as_deref().map(role_from_db).transpose()
}

#[instrument(skip(conn))]
pub async fn find(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    user: &UserId,
) -> Result<Option<Member>, Error> {
    memberships::Entity::find()
        .find_also_related(users::Entity)
        .filter(memberships::Column::OrganizationId.eq(organization.0))
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .one(conn)
        .await?
        .map(|(row, user)| member(row, user))
        .transpose()
}

/// A page of `user`'s organizations in which they hold one of `roles`,
/// in the order they joined them; with `only`, of those among them; with
/// `search`, of those whose name or slug contains it. Deleted organizations
/// are left out, and suspended ones too unless `with_suspended`.
#[instrument(skip(conn, page))]
pub async fn list_for_user(
    conn: &impl ConnectionTrait,
    user: &UserId,
    roles: &[Role],
    only: Option<&[OrganizationId]>,
    search: Option<&OrganizationSearch>,
    with_suspended: bool,
    page: &PageRequest,
) -> Result<Vec<(MembershipId, UserOrganization)>, Error> {
    let mut query = memberships::Entity::find()
        .find_also_related(organizations::Entity)
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .filter(organizations::Column::DeletedAt.is_null());
    if !with_suspended {
        query = query.filter(organizations::Column::SuspendedAt.is_null());
    }
    if let Some(search) = search {
        query = query.filter(super::organization::matching(search));
    }
    if roles.len() < Role::VARIANTS.len() {
        query = query.filter(memberships::Column::Role.is_in(roles.iter().map(|r| r.as_str())));
    }
    if let Some(only) = only {
        query = query.filter(memberships::Column::OrganizationId.is_in(only.iter().map(|id| id.0)));
    }
    if let Some(after) = page.after {
        query = query.filter(memberships::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(memberships::Column::Id)
        .limit(page.fetch_limit())
        .all(conn)
        .await?;
    rows.into_iter()
        .filter_map(|(row, org)| org.map(|org| (row, org)))
        .map(|(row, org)| {
            Ok((
                MembershipId(row.id),
                UserOrganization {
                    organization: Organization::from(org),
                    role: role_from_db(&row.role)?,
                    joined_at: row.created_at,
                },
            ))
        })
        .collect()
}

/// A page of the users who hold one of `roles` in the organization, with
/// their role, in the order they joined.
#[instrument(skip(conn, page))]
pub async fn list_holders(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    roles: &[Role],
    page: &PageRequest,
) -> Result<Vec<(MembershipId, UserId, Role)>, Error> {
    let mut query = memberships::Entity::find()
        .select_only()
        .columns([
            memberships::Column::Id,
            memberships::Column::UserId,
            memberships::Column::Role,
        ])
        .filter(memberships::Column::OrganizationId.eq(organization.0));
    if roles.len() < Role::VARIANTS.len() {
        query = query.filter(memberships::Column::Role.is_in(roles.iter().map(|r| r.as_str())));
    }
    if let Some(after) = page.after {
        query = query.filter(memberships::Column::Id.gt(after));
    }
    let rows: Vec<(uuid::Uuid, String, String)> = query
        .order_by_asc(memberships::Column::Id)
        .limit(page.fetch_limit())
        .into_tuple()
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|(id, user, role)| {
            Ok((
                MembershipId(id),
                UserId::from_trusted(user),
                role_from_db(&role)?,
            ))
        })
        .collect()
}

/// A page of the organization's members, in the order they joined.
#[instrument(skip(conn, page))]
pub async fn list(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    filter: &MemberFilter,
    page: &PageRequest,
) -> Result<Vec<Member>, Error> {
    // Only the columns a member needs: this is the hottest listing.
    let mut query = memberships::Entity::find()
        .select_only()
        .columns([
            memberships::Column::Id,
            memberships::Column::OrganizationId,
            memberships::Column::UserId,
            memberships::Column::Role,
            memberships::Column::CreatedAt,
            memberships::Column::Source,
        ])
        .column_as(users::Column::Email, "email")
        .column_as(users::Column::DisplayName, "display_name")
        .left_join(users::Entity)
        .filter(memberships::Column::OrganizationId.eq(organization.0));
    if let Some(role) = filter.role {
        query = query.filter(memberships::Column::Role.eq(role.as_str()));
    }
    if let Some(search) = &filter.search {
        let pattern = like_prefix(search.as_str());
        query = query.filter(
            Condition::any()
                .add(
                    Expr::col((users::Entity, users::Column::EmailLower))
                        .like(LikeExpr::new(pattern.clone()).escape('\\')),
                )
                .add(
                    Expr::col((users::Entity, users::Column::DisplayNameLower))
                        .like(LikeExpr::new(pattern).escape('\\')),
                ),
        );
    }
    if let Some(after) = page.after {
        query = query.filter(memberships::Column::Id.gt(after));
    }
    query
        .order_by_asc(memberships::Column::Id)
        .limit(page.fetch_limit())
        .into_model::<MemberRow>()
        .all(conn)
        .await?
        .into_iter()
        .map(MemberRow::into_member)
        .collect()
}

/// A member as `list` selects it.
#[derive(Debug, FromQueryResult)]
struct MemberRow {
    id: uuid::Uuid,
    organization_id: uuid::Uuid,
    user_id: String,
    role: String,
    created_at: DateTime<Utc>,
    source: String,
    email: Option<String>,
    display_name: Option<String>,
}

impl MemberRow {
    fn into_member(self) -> Result<Member, Error> {
        Ok(Member {
            id: MembershipId(self.id),
            organization_id: OrganizationId(self.organization_id),
            role: role_from_db(&self.role)?,
            user_id: UserId::from_trusted(self.user_id),
            email: self.email.unwrap_or_default(),
            display_name: self.display_name.unwrap_or_default(),
            joined_at: self.created_at,
            source: source_from_db(&self.source)?,
        })
    }
}

/// Adds a membership that came about through `source`. A second
/// membership of the same user in the same organization is refused by the
/// unique index: `ALREADY_EXISTS`.
#[instrument(skip(conn))]
pub async fn insert(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    user: &UserId,
    role: Role,
    source: MembershipSource,
    now: DateTime<Utc>,
) -> Result<MembershipId, Error> {
    let id = MembershipId::new();
    memberships::ActiveModel {
        id: Set(id.0),
        organization_id: Set(organization.0),
        user_id: Set(user.as_str().to_owned()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        source: Set(source.as_str().to_owned()),
    }
    .insert(conn)
    .await
    .map_err(|err| conflict_on(err, "user_id", Error::AlreadyExists(Reason::AlreadyMember)))?;
    Ok(id)
}

#[instrument(skip(conn))]
pub async fn set_role(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    user: &UserId,
    role: Role,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let result = memberships::Entity::update_many()
        .col_expr(memberships::Column::Role, Expr::value(role.as_str()))
        .col_expr(memberships::Column::UpdatedAt, Expr::value(now))
        .filter(memberships::Column::OrganizationId.eq(organization.0))
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

#[instrument(skip(conn))]
pub async fn delete(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    user: &UserId,
) -> Result<bool, Error> {
    let result = memberships::Entity::delete_many()
        .filter(memberships::Column::OrganizationId.eq(organization.0))
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Members of the organization, optionally only those with `role`.
#[instrument(skip(conn))]
pub async fn count(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    role: Option<Role>,
) -> Result<u64, Error> {
    let mut query =
        memberships::Entity::find().filter(memberships::Column::OrganizationId.eq(organization.0));
    if let Some(role) = role {
        query = query.filter(memberships::Column::Role.eq(role.as_str()));
    }
    Ok(query.count(conn).await?)
}

/// Whether someone whose (case-folded) email is `email_lower` is already a member.
#[instrument(skip(conn, email_lower))]
pub async fn email_is_member(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    email_lower: &str,
) -> Result<bool, Error> {
    let found = memberships::Entity::find()
        .inner_join(users::Entity)
        .filter(memberships::Column::OrganizationId.eq(organization.0))
        .filter(users::Column::EmailLower.eq(email_lower))
        .count(conn)
        .await?;
    Ok(found > 0)
}

/// Every organization `user` is a member of, with their role, in id order.
#[instrument(skip(conn))]
pub async fn of_user(
    conn: &impl ConnectionTrait,
    user: &UserId,
) -> Result<Vec<(OrganizationId, Role)>, Error> {
    let rows: Vec<(uuid::Uuid, String)> = memberships::Entity::find()
        .select_only()
        .columns([
            memberships::Column::OrganizationId,
            memberships::Column::Role,
        ])
        .filter(memberships::Column::UserId.eq(user.as_str()))
        .order_by_asc(memberships::Column::OrganizationId)
        .into_tuple()
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|(organization, role)| Ok((OrganizationId(organization), role_from_db(&role)?)))
        .collect()
}
