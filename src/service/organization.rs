//! Creating, reading, changing and deleting organizations; the caller's
//! active organization.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use strum::VariantArray as _;
use tracing::{instrument, warn};
use uuid::Uuid;

use super::{OrganizationWrite, Roster, Write, expiry, now};
use crate::{
    auth::{
        Caller,
        policy::{Action, authorize_scope, authorize_subject, is_administrator, may_see_limits},
    },
    domain::{
        Error, Reason, Resource,
        event::Joining,
        event::{EventCursor, EventType, NewEvent},
        identity::{Identity, IdentityState},
        ids::{DeveloperId, OrganizationId, UserId},
        input::{OrganizationName, OrganizationSearch, Slug, SlugProblem},
        lifecycle::Lifecycle,
        logo::{LogoImage, MAX_PAGE_SIZE_WITH_LOGOS, NewLogo},
        model::{LimitOverrides, Organization, Role, UserProfile},
        page::{Page, PageRequest},
        rules::{self, OrganizationLimits},
    },
    store,
};

/// While a create waits for an identity another replica delivers, how
/// often it looks (besides being woken by this replica's worker).
const IDENTITY_POLL: Duration = Duration::from_millis(50);

/// A validated `CreateOrganization`.
#[derive(Debug)]
pub struct NewOrganization {
    pub name: OrganizationName,
    pub slug: Slug,
    pub logo: NewLogo,
    pub request_id: Option<Uuid>,
    /// The person who becomes its owner, when a platform administrator
    /// creates it for them; `None`: the caller.
    pub owner: Option<UserProfile>,
}

/// How `GetOrganization` names the organization.
#[derive(Debug)]
pub enum OrganizationKey {
    Id(OrganizationId),
    /// Normalized (lower case); not necessarily a valid slug.
    Slug(String),
    /// Its developer identity's id in the Provider Portal.
    DeveloperId(DeveloperId),
}

/// A validated `UpdateOrganization`: `None` leaves a field alone.
#[derive(Debug)]
pub struct OrganizationUpdate {
    pub id: OrganizationId,
    pub name: Option<OrganizationName>,
    /// A new slug; the old one keeps resolving for `--old-slug-ttl`.
    pub slug: Option<Slug>,
    pub logo: Option<NewLogo>,
    /// Required current etag, if the client sent one.
    pub etag: Option<String>,
}

/// One organization as its own replies show it: with its logo image, which
/// lists, the read cache and the change log never carry.
#[derive(Debug, Clone)]
pub struct OrganizationDetail {
    pub organization: Organization,
    pub logo_image: Option<LogoImage>,
    /// The limits that hold for it, for those who may see them
    /// ([`may_see_limits`]); `None` for others.
    pub limits: Option<OrganizationLimits>,
}

/// One organization of a `ListOrganizations` page: with the listed user's
/// role and join time in it, or none when an administrator lists every
/// organization.
#[derive(Debug, Clone)]
pub struct ListedOrganization {
    pub organization: Organization,
    pub membership: Option<(Role, DateTime<Utc>)>,
    pub logo_image: Option<LogoImage>,
}

/// The answer to `CheckSlug`.
#[derive(Debug, PartialEq, Eq)]
pub struct SlugAvailability {
    pub normalized: String,
    /// `None` when available; otherwise the reason and a sentence.
    pub unavailable: Option<(Reason, String)>,
}

impl Roster {
    /// Creates an organization, with its developer identity, owned by the
    /// caller, or, when a platform administrator creates it, by the person
    /// it names (`input.owner`, required then and refused otherwise). A
    /// retry with the same `request_id` (for the same owner) returns the
    /// first result.
    #[instrument(skip_all, fields(user_id = %caller.user_id, slug = input.slug.as_str()))]
    pub async fn create_organization(
        &self,
        caller: &Caller,
        input: NewOrganization,
    ) -> Result<(OrganizationDetail, Option<EventCursor>), Error> {
        let owner = self.owner_of_new(caller, input.owner.clone())?;
        let now = now();
        let txn = self.begin_write(caller).await?;
        // Also locks the owner's row (PostgreSQL), serializing this user's
        // creations so the ownership limit and the retry check below hold.
        let joining = match &owner {
            Owner::Caller(profile) => {
                store::user::upsert_profile(&txn, profile, now).await?;
                Joining::Creator
            }
            Owner::Named(profile) => {
                store::user::ensure_profile(&txn, profile, now).await?;
                Joining::Admin {
                    email: &profile.email,
                    request_id: input.request_id,
                }
            }
        };
        let owner = owner.profile();
        if let Some(request_id) = input.request_id
            && let Some(existing) =
                store::organization::find_by_request(&txn, &owner.id, request_id).await?
        {
            let revision =
                store::event::first_cursor(&txn, existing.id, EventType::MemberAdded).await?;
            let logo_image = store::organization::logo_image(&txn, &existing).await?;
            self.commit(txn).await?;
            let organization = OrganizationDetail {
                limits: Some(self.limits_of(&existing)),
                organization: existing,
                logo_image,
            };
            return Ok((organization, revision));
        }
        let owned = store::organization::count_owned_by(&txn, &owner.id).await?;
        rules::check_may_own_another(&self.settings.limits, owned)?;
        let identity = if self.identities.is_some() {
            IdentityState::Provisioning
        } else {
            IdentityState::Local
        };
        let organization = Organization {
            id: OrganizationId::new(),
            developer_id: DeveloperId::new(),
            name: input.name.as_str().to_owned(),
            slug: input.slug.as_str().to_owned(),
            logo: input.logo.logo(),
            version: 1,
            created_at: now,
            updated_at: now,
            identity: Identity::new(identity),
            limits: LimitOverrides::default(),
            lifecycle: Lifecycle::default(),
        };
        // `created_by` is the owner it was made for: the retry check and
        // the ownership limit are theirs, whoever asked.
        store::organization::insert(
            &txn,
            &organization,
            input.logo.image(),
            &owner.id,
            input.request_id,
        )
        .await?;
        if identity == IdentityState::Provisioning {
            // The outbox intent, in the organization's own transaction.
            store::identity::insert_present(&txn, &organization.developer_id, organization.id, now)
                .await?;
        }
        let source = joining.source();
        store::membership::insert(&txn, organization.id, &owner.id, Role::Owner, source, now)
            .await?;
        // The actor is whoever asked: the person, or the administrator's subject.
        let actor = &caller.user_id;
        txn.record(NewEvent::organization_created(&organization, actor))
            .await?;
        let revision = txn
            .record(NewEvent::member_added(
                &organization,
                actor,
                &owner.id,
                Role::Owner,
                joining,
            ))
            .await?;
        self.commit(txn).await?;
        let organization = self.await_identity(organization).await;
        let logo_image = match input.logo {
            NewLogo::Image(image) => Some(image),
            NewLogo::None | NewLogo::Url(_) => None,
        };
        let organization = OrganizationDetail {
            // Its owner, or an administrator, sees them.
            limits: Some(self.limits_of(&organization)),
            organization,
            logo_image,
        };
        Ok((organization, Some(revision)))
    }

    /// Who owns an organization `caller` creates: the caller, or the
    /// person an administrator names. An administrator must name one, a
    /// person must not, and an administrator whose token is limited to some
    /// organizations creates none (a new one would lie outside them).
    fn owner_of_new(&self, caller: &Caller, named: Option<UserProfile>) -> Result<Owner, Error> {
        if caller.is_service() {
            authorize_scope(caller, Action::CreateOrganization)?;
        }
        match (is_administrator(caller), named) {
            (true, _) if caller.organizations.is_some() => {
                Err(Error::PermissionDenied(Reason::LimitedToOrganizations))
            }
            (true, Some(owner)) => Ok(Owner::Named(owner)),
            (true, None) => Err(Error::invalid(
                "owner",
                "is required for a platform administrator, which creates organizations for a user",
            )),
            (false, Some(_)) => Err(Error::invalid(
                "owner",
                "is for platform administrators (organizations.admin); a person creates \
                 organizations they own themselves",
            )),
            (false, None) => Ok(Owner::Caller(caller.profile())),
        }
    }

    /// The limits that hold for `organization`.
    pub(super) fn limits_of(&self, organization: &Organization) -> OrganizationLimits {
        self.settings.limits.for_organization(&organization.limits)
    }

    /// Delivers a new organization's identity now and waits for it, up to
    /// the configured time; the organization as it then stands. Delivery
    /// goes on in the background if it takes longer (or fails for now).
    async fn await_identity(&self, organization: Organization) -> Organization {
        let Some(worker) = self.identities.clone() else {
            return organization;
        };
        let wait = self.settings.identity_create_wait;
        if wait.is_zero() || worker.portal_failing() {
            // Not worth a caller's wait: the background worker retries.
            worker.wake_signal().notify();
            return organization;
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut settled = worker.settled_signal().subscribe();
        let developer = organization.developer_id.clone();
        // A task of its own: if the wait ends first, the attempt goes on.
        let attempt = tokio::spawn({
            let worker = worker.clone();
            async move { worker.deliver_now(&developer).await }
        });
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(Ok(Some(identity)))) => {
                return Organization {
                    identity,
                    ..organization
                };
            }
            // Another replica holds it: watch for its result below.
            Ok(Ok(Ok(None))) => {}
            Ok(Ok(Err(err))) => {
                warn!(error = %err, "cannot deliver the new developer identity now; the background worker retries");
                worker.wake_signal().notify();
                return organization;
            }
            Ok(Err(err)) => {
                warn!(error = %err, "the identity delivery task failed; the background worker retries");
                worker.wake_signal().notify();
                return organization;
            }
            Err(_) => return organization,
        }
        loop {
            match store::organization::find(self.store.db(), organization.id).await {
                Ok(Some(found)) if !found.identity.state.is_in_flight() => return found,
                Ok(_) | Err(_) => {}
            }
            let ready = tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    _ = settled.changed() => {}
                    () = tokio::time::sleep(IDENTITY_POLL) => {}
                }
            });
            if ready.await.is_err() {
                return organization;
            }
        }
    }

    /// An organization the caller belongs to, with the caller's role. By
    /// slug: its current slug, or an old one it still retains.
    #[instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn get_organization(
        &self,
        caller: &Caller,
        key: OrganizationKey,
    ) -> Result<(OrganizationDetail, Option<Role>), Error> {
        let db = self.store.db();
        let id = match key {
            OrganizationKey::Id(id) => Some(id),
            OrganizationKey::Slug(slug) => self.cache.resolve_slug(db, &slug, None).await?,
            OrganizationKey::DeveloperId(developer) => {
                store::organization::find_by_developer(db, &developer)
                    .await?
                    .map(|org| org.id)
            }
        };
        let id = id.ok_or(Error::NotFound(Resource::Organization))?;
        let role = self
            .authorize_read(caller, Action::GetOrganization, id)
            .await?;
        let organization = self
            .cache
            .organization(db, id, None)
            .await?
            .ok_or(Error::NotFound(Resource::Organization))?;
        let shown = may_see_limits(caller, role);
        Ok((self.detail(organization, shown).await?, role))
    }

    /// `organization` with its logo image read from the store, if it has
    /// one, and its limits if `limits_shown`.
    pub(super) async fn detail(
        &self,
        organization: Organization,
        limits_shown: bool,
    ) -> Result<OrganizationDetail, Error> {
        let logo_image = store::organization::logo_image(self.store.db(), &organization).await?;
        Ok(OrganizationDetail {
            limits: limits_shown.then(|| self.limits_of(&organization)),
            organization,
            logo_image,
        })
    }

    /// `user`'s organizations (the caller's, if `None`) with their role in
    /// each; with `search`, those whose name or slug contains it. Another
    /// user's need a service principal with the scope; a service must name
    /// a user, except a platform administrator, for whom `None` means every
    /// organization (as far as its token reaches), in the order they were
    /// created. With `include_logos`, each carries its logo image, and a
    /// page holds at most [`MAX_PAGE_SIZE_WITH_LOGOS`] of them.
    #[instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn list_organizations(
        &self,
        caller: &Caller,
        user: Option<UserId>,
        search: Option<OrganizationSearch>,
        page: PageRequest,
        include_logos: bool,
    ) -> Result<Page<ListedOrganization>, Error> {
        let db = self.store.db();
        let page = if include_logos {
            page.capped(MAX_PAGE_SIZE_WITH_LOGOS)
        } else {
            page
        };
        let only = caller.organizations.as_deref();
        let page = match user {
            None if is_administrator(caller) => {
                authorize_scope(caller, Action::ListOrganizations)?;
                let rows = store::organization::list_all(db, only, search.as_ref(), &page).await?;
                page.finish(rows, |org| org.id.0)
                    .map(|organization| (organization, None))
            }
            None if caller.is_service() => {
                return Err(Error::invalid(
                    "user_id",
                    "is required for a service principal, which has no organizations of its own",
                ));
            }
            user => {
                let user = user.unwrap_or_else(|| caller.user_id.clone());
                authorize_subject(caller, Action::ListOrganizations, &user)?;
                let rows = store::membership::list_for_user(
                    db,
                    &user,
                    Role::VARIANTS,
                    only,
                    search.as_ref(),
                    // Suspended organizations are listed (they can be
                    // read); deleted ones are not.
                    true,
                    &page,
                )
                .await?;
                page.finish(rows, |(id, _)| id.0)
                    .map(|(_, entry)| (entry.organization, Some((entry.role, entry.joined_at))))
            }
        };
        let mut images = if include_logos {
            store::organization::logo_images(db, page.items.iter().map(|(org, _)| org)).await?
        } else {
            HashMap::new()
        };
        Ok(page.map(|(organization, membership)| ListedOrganization {
            logo_image: images.remove(&organization.id),
            organization,
            membership,
        }))
    }

    /// Changes the name, slug and/or logo, if the etag (when given) still
    /// matches; returns the organization and the change's revision. A
    /// renamed organization retains its old slug for `--old-slug-ttl`.
    #[instrument(skip_all, fields(user_id = %caller.user_id, org_id = %update.id))]
    pub async fn update_organization(
        &self,
        caller: &Caller,
        update: OrganizationUpdate,
    ) -> Result<(OrganizationDetail, EventCursor), Error> {
        let OrganizationWrite { txn, org, .. } = self
            .begin_organization_write(caller, Action::UpdateOrganization, update.id)
            .await?;
        check_etag(&org, update.etag.as_deref())?;
        let now = now();
        let new_slug = update
            .slug
            .map(|slug| slug.as_str().to_owned())
            .filter(|slug| *slug != org.slug);
        let changes = store::organization::Changes {
            name: update.name.map(|n| n.as_str().to_owned()),
            slug: new_slug.clone(),
            logo: update.logo.as_ref(),
        };
        let updated = store::organization::update(&txn, org.id, org.version, changes, now)
            .await?
            .ok_or(Error::Aborted(Reason::EtagMismatch))?;
        // After the organization's row, as a create does (row, then claim):
        // two transactions taking the same slug then wait on the same index
        // entry first, and one fails cleanly instead of deadlocking.
        if let Some(new_slug) = &new_slug {
            let retain_until = expiry(now, self.settings.old_slug_ttl);
            store::slug::rename(&txn, org.id, &org.slug, new_slug, retain_until, now).await?;
        }
        let revision = txn
            .record(NewEvent::organization_updated(
                &org,
                &updated,
                &caller.user_id,
            ))
            .await?;
        let logo_image = match update.logo {
            Some(NewLogo::Image(image)) => Some(image),
            Some(NewLogo::None | NewLogo::Url(_)) => None,
            None => store::organization::logo_image(&txn, &updated).await?,
        };
        self.commit(txn).await?;
        let updated = OrganizationDetail {
            // Owners and admins (who alone may update) see them.
            limits: Some(self.limits_of(&updated)),
            organization: updated,
            logo_image,
        };
        Ok((updated, revision))
    }

    /// Deletes `org` for good, which `txn` holds locked, with its
    /// memberships and invitations, and records `organization.deleted` by
    /// `by` followed at once by `organization.purged`; its developer
    /// identity is to be deleted too. Only `EraseUser` does this, for an
    /// organization whose only member it erases: nobody is left to restore
    /// it. (`DeleteOrganization` is the soft delete in `lifecycle`.) After the commit, call
    /// [`Roster::wake_identity_delivery`].
    pub(super) async fn delete_locked(
        &self,
        txn: &Write,
        org: &Organization,
        by: &UserId,
    ) -> Result<EventCursor, Error> {
        store::organization::delete(txn, org.id).await?;
        // An identity that may exist in the Provider Portal must go too
        // (also one delivered while a portal was configured, if none is now:
        // it is deleted once one is again).
        let identity = if self.identities.is_some() || org.identity.state != IdentityState::Local {
            let intent =
                store::identity::request_absent(txn, &org.developer_id, org.id, now()).await?;
            intent.visible().map(|i| i.state)
        } else {
            None
        };
        txn.record(NewEvent::organization_deleted(org, by)).await?;
        txn.record(NewEvent::organization_purged(org, identity))
            .await
    }

    /// Has the identity worker deliver what committed writes asked of it
    /// (a deletion) now rather than at its next poll.
    pub(super) fn wake_identity_delivery(&self) {
        if let Some(worker) = &self.identities {
            worker.wake_signal().notify();
        }
    }

    /// Whether `slug` could name a new organization now, and if not, why: an
    /// organization's current slug is taken; an old slug an organization
    /// retains after a rename is unavailable until its time is up.
    #[instrument(skip(self))]
    pub async fn check_slug(&self, slug: &str) -> Result<SlugAvailability, Error> {
        let normalized = Slug::normalize(slug);
        let because = |reason: Reason| Some((reason, reason.message().to_owned()));
        let unavailable = match Slug::check(slug) {
            Err(SlugProblem::Invalid(rule)) => Some((Reason::SlugInvalid, format!("slug {rule}"))),
            Err(SlugProblem::Reserved) => because(Reason::SlugReserved),
            Ok(valid) => {
                match store::slug::resolve(self.store.db(), valid.as_str(), now()).await? {
                    None => None,
                    Some(target) if target.retained_until.is_none() => because(Reason::SlugTaken),
                    Some(_) => because(Reason::SlugRetained),
                }
            }
        };
        Ok(SlugAvailability {
            normalized,
            unavailable,
        })
    }

    /// Sets (or with `None` clears) the caller's active organization.
    #[instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn set_active_organization(
        &self,
        caller: &Caller,
        organization: Option<OrganizationId>,
    ) -> Result<Option<(OrganizationDetail, Role)>, Error> {
        let Some(id) = organization else {
            let txn = self.store.begin_write().await?;
            store::user::upsert_profile(&txn, &caller.profile(), now()).await?;
            store::user::set_active_organization(&txn, &caller.user_id, None).await?;
            txn.commit().await?;
            return Ok(None);
        };
        let write = self
            .begin_organization_write(caller, Action::SetActiveOrganization, id)
            .await?;
        let role = write.member_role()?;
        let OrganizationWrite { txn, org, .. } = write;
        store::user::upsert_profile(&txn, &caller.profile(), now()).await?;
        store::user::set_active_organization(&txn, &caller.user_id, Some(org.id)).await?;
        self.commit(txn).await?;
        let shown = may_see_limits(caller, Some(role));
        Ok(Some((self.detail(org, shown).await?, role)))
    }

    /// The caller's active organization, if set and still theirs. Reading
    /// never changes state: a lost membership simply reads as none.
    #[instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn get_active_organization(
        &self,
        caller: &Caller,
    ) -> Result<Option<(OrganizationDetail, Role)>, Error> {
        let db = self.store.db();
        let Some(id) = store::user::active_organization(db, &caller.user_id).await? else {
            return Ok(None);
        };
        let Some(role) = store::membership::role_of(db, id, &caller.user_id).await? else {
            return Ok(None);
        };
        let Some(organization) = store::organization::find(db, id).await? else {
            return Ok(None);
        };
        let shown = may_see_limits(caller, Some(role));
        Ok(Some((self.detail(organization, shown).await?, role)))
    }
}

/// Who a new organization's owner is.
enum Owner {
    /// The person calling.
    Caller(UserProfile),
    /// The person a platform administrator named.
    Named(UserProfile),
}

impl Owner {
    fn profile(&self) -> &UserProfile {
        match self {
            Owner::Caller(profile) | Owner::Named(profile) => profile,
        }
    }
}

/// An etag, when given, must be the organization's current one.
pub(super) fn check_etag(org: &Organization, etag: Option<&str>) -> Result<(), Error> {
    match etag {
        Some(etag) if etag != org.etag() => Err(Error::Aborted(Reason::EtagMismatch)),
        _ => Ok(()),
    }
}
