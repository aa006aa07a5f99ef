//! Lookups for other services: the organizations in which a user holds a
//! permission, and the users who hold a permission in an organization.
//!
//! Unlike a check, a lookup's answer is a set that can be long, so it is
//! paged (by membership, in join order) and read from the database with
//! one indexed query per page rather than from the read cache, which holds
//! single memberships, not whole sets: a page therefore reflects every
//! committed change, `at_least_revision` included, on any replica. Each
//! page says which revision it reflects at least.

use tracing::instrument;

use super::{OrganizationRef, Roster, now};
use crate::{
    auth::{
        Caller,
        policy::{Action, authorize_scope, authorize_subject},
    },
    domain::{
        Error,
        event::EventCursor,
        ids::{OrganizationId, UserId},
        lifecycle::Access,
        model::{Role, UserOrganization},
        page::{Page, PageRequest},
        permission::Permission,
    },
    store,
};

/// A validated `LookupOrganizations`.
#[derive(Debug)]
pub struct OrganizationLookup {
    pub user: UserId,
    pub permission: Permission,
    pub page: PageRequest,
}

/// A validated `LookupUsers`.
#[derive(Debug)]
pub struct UserLookup {
    pub organization: OrganizationRef,
    pub permission: Permission,
    pub page: PageRequest,
}

impl Roster {
    /// A page of the organizations in which the user holds the permission,
    /// with the revision it reflects.
    #[instrument(skip_all, fields(user_id = %caller.user_id, permission = lookup.permission.as_str()))]
    pub async fn lookup_organizations(
        &self,
        caller: &Caller,
        lookup: OrganizationLookup,
    ) -> Result<(Page<UserOrganization>, EventCursor), Error> {
        authorize_subject(caller, Action::LookupOrganizations, &lookup.user)?;
        let db = self.store.db();
        // Read before the page: every change up to it is committed, so the
        // page reflects it.
        let revision = store::event::latest_visible(db).await?;
        let rows = store::membership::list_for_user(
            db,
            &lookup.user,
            &lookup.permission.holders(),
            caller.organizations.as_deref(),
            None,
            // A suspended organization grants its reads only.
            lookup.permission.is_read(),
            &lookup.page,
        )
        .await?;
        let page = lookup
            .page
            .finish(rows, |(id, _)| id.0)
            .map(|(_, organization)| organization);
        Ok((page, revision))
    }

    /// A page of the users who hold the permission in the organization,
    /// with the revision it reflects. An unknown organization, or one the
    /// caller's token does not reach, has no such users.
    #[instrument(skip_all, fields(user_id = %caller.user_id, permission = lookup.permission.as_str()))]
    pub async fn lookup_users(
        &self,
        caller: &Caller,
        lookup: UserLookup,
    ) -> Result<(Page<(UserId, Role)>, EventCursor), Error> {
        authorize_scope(caller, Action::LookupUsers)?;
        let db = self.store.db();
        let revision = store::event::latest_visible(db).await?;
        // From the database, as the page is: the slug as of the revision.
        let organization: Option<OrganizationId> = match &lookup.organization {
            OrganizationRef::Id(id) => Some(*id),
            OrganizationRef::Slug(slug) => store::slug::resolve(db, slug.as_str(), now())
                .await?
                .map(|target| target.organization),
        };
        // A deleted organization has no such users, and a suspended one
        // none for a permission that is not a read.
        let organization = match organization.filter(|id| caller.reaches(*id)) {
            Some(id) => store::organization::find(db, id).await?,
            None => None,
        };
        let Some(organization) = organization
            .filter(|org| org.lifecycle.access(lookup.permission) == Access::Open)
            .map(|org| org.id)
        else {
            let nothing = Page {
                items: Vec::new(),
                next_page_token: String::new(),
            };
            return Ok((nothing, revision));
        };
        let rows = store::membership::list_holders(
            db,
            organization,
            &lookup.permission.holders(),
            &lookup.page,
        )
        .await?;
        let page = lookup
            .page
            .finish(rows, |(id, _, _)| id.0)
            .map(|(_, user, role)| (user, role));
        Ok((page, revision))
    }
}
