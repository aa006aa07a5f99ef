//! Proto ⇄ domain. Requests are parsed into validated domain inputs (every
//! bad field named at once); replies are built from domain values.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::{
    domain::{
        Error, FieldViolation,
        error::all_valid,
        event::{Event, EventCursor, NO_ORGANIZATION},
        identity::IdentityState,
        ids::{DeveloperId, InvitationRef, OrganizationId, UserId, parse_request_id},
        input::{
            Email, OrganizationName, OrganizationSearch, SearchPrefix, Slug, person_display_name,
            person_email,
        },
        lifecycle::LifecycleState,
        logo::{LogoImage, NewLogo},
        model::{
            InvitableRole, Invitation, InvitationDelivery, InvitationState, LimitOverrides, Member,
            MembershipSource, Organization, Role, UserProfile,
        },
        page::{MemberFilter, PageRequest},
        rules::{MAX_ORGANIZATION_LIMIT, OrganizationLimits},
    },
    pb,
    service::{
        Erasure, InvitationFilter, ListedOrganization, MemberQuery, NewMember, NewOrganization,
        NewOwner, OrganizationDetail, OrganizationKey, OrganizationUpdate,
    },
};

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn identity_state_to_proto(state: IdentityState) -> i32 {
    match state {
        IdentityState::Local => pb::DeveloperIdentityState::Local,
        IdentityState::Provisioning => pb::DeveloperIdentityState::Provisioning,
        IdentityState::Active => pb::DeveloperIdentityState::Active,
        IdentityState::PendingApproval => pb::DeveloperIdentityState::PendingApproval,
        IdentityState::Deprovisioning => pb::DeveloperIdentityState::Deprovisioning,
        IdentityState::Failing => pb::DeveloperIdentityState::Failing,
    }
    .into()
}

pub fn role_to_proto(role: Role) -> i32 {
    match role {
        Role::Owner => pb::Role::Owner,
        Role::Admin => pb::Role::Admin,
        Role::Member => pb::Role::Member,
    }
    .into()
}

/// A role the request must name.
fn role(field: &str, value: i32) -> Result<Role, FieldViolation> {
    optional_role(field, value)?.ok_or_else(|| FieldViolation::new(field, "is required"))
}

/// `ROLE_UNSPECIFIED` means "no role given".
fn optional_role(field: &str, value: i32) -> Result<Option<Role>, FieldViolation> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified) => Ok(None),
        Ok(pb::Role::Owner) => Ok(Some(Role::Owner)),
        Ok(pb::Role::Admin) => Ok(Some(Role::Admin)),
        Ok(pb::Role::Member) => Ok(Some(Role::Member)),
        Err(_) => Err(FieldViolation::new(field, "is not a known Role")),
    }
}

pub fn state_to_proto(state: InvitationState) -> i32 {
    match state {
        InvitationState::Pending => pb::InvitationState::Pending,
        InvitationState::Accepted => pb::InvitationState::Accepted,
        InvitationState::Rejected => pb::InvitationState::Rejected,
        InvitationState::Cancelled => pb::InvitationState::Cancelled,
        InvitationState::Expired => pb::InvitationState::Expired,
    }
    .into()
}

fn optional_state(field: &str, value: i32) -> Result<Option<InvitationState>, FieldViolation> {
    match pb::InvitationState::try_from(value) {
        Ok(pb::InvitationState::Unspecified) => Ok(None),
        Ok(pb::InvitationState::Pending) => Ok(Some(InvitationState::Pending)),
        Ok(pb::InvitationState::Accepted) => Ok(Some(InvitationState::Accepted)),
        Ok(pb::InvitationState::Rejected) => Ok(Some(InvitationState::Rejected)),
        Ok(pb::InvitationState::Cancelled) => Ok(Some(InvitationState::Cancelled)),
        Ok(pb::InvitationState::Expired) => Ok(Some(InvitationState::Expired)),
        Err(_) => Err(FieldViolation::new(field, "is not a known InvitationState")),
    }
}

/// The proto's lifecycle state.
fn organization_state_to_proto(state: LifecycleState) -> i32 {
    match state {
        LifecycleState::Active => pb::OrganizationState::Active,
        LifecycleState::Suspended => pb::OrganizationState::Suspended,
        LifecycleState::Deleted => pb::OrganizationState::Deleted,
    }
    .into()
}

impl From<Organization> for pb::Organization {
    fn from(org: Organization) -> Self {
        let etag = org.etag();
        let state = organization_state_to_proto(org.lifecycle.state());
        let (suspend_time, suspend_reason) = org
            .lifecycle
            .suspension
            .map(|s| (Some(timestamp(s.at)), s.reason))
            .unwrap_or_default();
        let (delete_time, purge_time) = org
            .lifecycle
            .deletion
            .map(|d| (Some(timestamp(d.at)), Some(timestamp(d.purge_at))))
            .unwrap_or_default();
        pb::Organization {
            state,
            suspend_time,
            suspend_reason,
            delete_time,
            purge_time,
            id: org.id.to_string(),
            slug: org.slug,
            name: org.name,
            logo_url: org.logo.url().to_owned(),
            has_logo: org.logo.is_some(),
            developer_id: org.developer_id.to_string(),
            create_time: Some(timestamp(org.created_at)),
            update_time: Some(timestamp(org.updated_at)),
            etag,
            identity: Some(pb::DeveloperIdentity {
                state: identity_state_to_proto(org.identity.state),
                attempts: i32::try_from(org.identity.attempts).unwrap_or(i32::MAX),
                last_error: org.identity.last_error,
            }),
            limits: None,
        }
    }
}

impl From<OrganizationLimits> for pb::OrganizationLimits {
    fn from(limits: OrganizationLimits) -> Self {
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        pb::OrganizationLimits {
            max_members: count(limits.max_members),
            max_members_overridden: limits.max_members_overridden,
            max_pending_invitations: count(limits.max_pending_invitations),
            max_pending_invitations_overridden: limits.max_pending_invitations_overridden,
        }
    }
}

/// An organization with its logo image, if it has one and it was read.
pub fn organization_with_logo(org: Organization, image: Option<LogoImage>) -> pb::Organization {
    let mut reply = pb::Organization::from(org);
    if let Some(image) = image {
        reply.logo_url = image.data_url();
    }
    reply
}

impl From<OrganizationDetail> for pb::Organization {
    fn from(detail: OrganizationDetail) -> Self {
        let mut reply = organization_with_logo(detail.organization, detail.logo_image);
        reply.limits = detail.limits.map(Into::into);
        reply
    }
}

impl From<ListedOrganization> for pb::UserOrganization {
    fn from(entry: ListedOrganization) -> Self {
        let (role, joined_at) = entry.membership.unzip();
        pb::UserOrganization {
            organization: Some(organization_with_logo(entry.organization, entry.logo_image)),
            role: role.map(role_to_proto).unwrap_or_default(),
            join_time: joined_at.map(timestamp),
        }
    }
}

pub fn source_to_proto(source: MembershipSource) -> i32 {
    match source {
        MembershipSource::Creator => pb::MembershipSource::Creator,
        MembershipSource::Invitation => pb::MembershipSource::Invitation,
        MembershipSource::Admin => pb::MembershipSource::Admin,
        MembershipSource::Import => pb::MembershipSource::Import,
    }
    .into()
}

impl From<Member> for pb::Member {
    fn from(member: Member) -> Self {
        pb::Member {
            id: member.id.to_string(),
            organization_id: member.organization_id.to_string(),
            user_id: member.user_id.to_string(),
            email: member.email,
            display_name: member.display_name,
            role: role_to_proto(member.role),
            join_time: Some(timestamp(member.joined_at)),
            source: source_to_proto(member.source),
        }
    }
}

/// The reply form of an invitation, with its state as seen at `now`.
pub fn invitation(invitation: Invitation, now: DateTime<Utc>) -> pb::Invitation {
    pb::Invitation {
        id: invitation.id.to_string(),
        organization_id: invitation.organization_id.to_string(),
        state: state_to_proto(invitation.state(now)),
        organization_name: invitation.organization_name,
        organization_slug: invitation.organization_slug,
        email: invitation.email,
        role: role_to_proto(invitation.role),
        inviter_user_id: invitation.inviter_id.to_string(),
        create_time: Some(timestamp(invitation.created_at)),
        update_time: Some(timestamp(invitation.updated_at)),
        expire_time: Some(timestamp(invitation.expires_at)),
        link: invitation.link.unwrap_or_default(),
        delivery: delivery_to_proto(invitation.delivery),
        imported_id: invitation.source_id.unwrap_or_default(),
    }
}

fn delivery_to_proto(delivery: InvitationDelivery) -> i32 {
    match delivery {
        InvitationDelivery::Email => pb::InvitationDelivery::Email,
        InvitationDelivery::LinkOnly => pb::InvitationDelivery::LinkOnly,
    }
    .into()
}

fn delivery(field: &str, value: i32) -> Result<InvitationDelivery, FieldViolation> {
    match pb::InvitationDelivery::try_from(value) {
        Ok(pb::InvitationDelivery::Unspecified | pb::InvitationDelivery::Email) => {
            Ok(InvitationDelivery::Email)
        }
        Ok(pb::InvitationDelivery::LinkOnly) => Ok(InvitationDelivery::LinkOnly),
        Err(_) => Err(FieldViolation::new(
            field,
            "is not a known InvitationDelivery",
        )),
    }
}

pub fn event(event: Event) -> pb::Event {
    pb::Event {
        cursor: event.cursor.encode(),
        id: event.id.to_string(),
        r#type: event.event_type,
        // An event about no organization (user.erased) names none.
        organization_id: if event.organization_id == NO_ORGANIZATION {
            String::new()
        } else {
            event.organization_id.to_string()
        },
        developer_id: event.developer_id.to_string(),
        actor_user_id: event.actor_id,
        subject_user_id: event.subject_user_id,
        subject_email: event.subject_email,
        changes: event
            .changes
            .into_iter()
            .map(|c| pb::FieldChange {
                field: c.field,
                old_value: c.old,
                new_value: c.new,
            })
            .collect(),
        create_time: Some(timestamp(event.created_at)),
        acting_party: event.acting_party.unwrap_or_default(),
    }
}

/// A change's revision for a reply; empty when the call changed nothing.
pub fn revision(revision: Option<EventCursor>) -> String {
    revision.map(EventCursor::encode).unwrap_or_default()
}

/// Parses the organization a request is about, and notes it on the RPC's span.
pub fn parse_organization(field: &str, value: &str) -> Result<OrganizationId, FieldViolation> {
    let id = OrganizationId::parse(field, value)?;
    crate::rpc_span::record_organization(&id);
    Ok(id)
}

pub fn organization_id(field: &str, value: &str) -> Result<OrganizationId, Error> {
    Ok(parse_organization(field, value)?)
}

pub fn invitation_ref(value: &str) -> Result<InvitationRef, Error> {
    Ok(InvitationRef::parse("id", value)?)
}

pub fn new_organization(req: pb::CreateOrganizationRequest) -> Result<NewOrganization, Error> {
    let named = req.owner.is_some();
    let owner = req.owner.unwrap_or_default();
    let (name, slug, logo, request_id, owner_id, email, display_name) = all_valid((
        OrganizationName::parse("name", &req.name),
        Slug::parse("slug", &req.slug),
        NewLogo::parse("logo_url", &req.logo_url),
        parse_request_id("request_id", &req.request_id),
        named
            .then(|| UserId::parse("owner.user_id", &owner.user_id))
            .transpose(),
        person_email("owner.email", &owner.email),
        person_display_name("owner.display_name", &owner.display_name),
    ))?;
    let owner = owner_id.map(|id| UserProfile {
        id,
        email,
        display_name,
    });
    Ok(NewOrganization {
        name,
        slug,
        logo,
        request_id,
        owner,
    })
}

/// A validated `ListOrganizations`: whose (`None`: the caller's, or for an
/// administrator every organization), the search, and the page.
pub fn list_organizations(
    req: &pb::ListOrganizationsRequest,
) -> Result<(Option<UserId>, Option<OrganizationSearch>, PageRequest), Error> {
    let user = req.user_id.trim();
    let (user, search) = all_valid((
        (!user.is_empty())
            .then(|| UserId::parse("user_id", user))
            .transpose(),
        OrganizationSearch::parse("query", &req.query),
    ))?;
    // The token binds to whose organizations and to the search; a plain
    // listing keeps the filters it always had.
    let filters = match (&user, &search) {
        (None, None) => "organizations".to_owned(),
        _ => format!(
            "organizations;{};{}",
            user.as_ref().map(UserId::as_str).unwrap_or_default(),
            search
                .as_ref()
                .map(OrganizationSearch::as_str)
                .unwrap_or_default()
        ),
    };
    let page = page(req.page_size, &req.page_token, filters)?;
    Ok((user, search, page))
}

/// A validated `AddMember`.
pub fn new_member(req: pb::AddMemberRequest) -> Result<NewMember, Error> {
    let (organization, id, email, display_name, role, request_id) = all_valid((
        parse_organization("organization_id", &req.organization_id),
        UserId::parse("user_id", &req.user_id),
        person_email("email", &req.email),
        person_display_name("display_name", &req.display_name),
        role("role", req.role),
        parse_request_id("request_id", &req.request_id),
    ))?;
    Ok(NewMember {
        organization,
        person: UserProfile {
            id,
            email,
            display_name,
        },
        role,
        request_id,
    })
}

/// A validated `SetOrganizationLimits`.
pub fn organization_limits(
    req: &pb::SetOrganizationLimitsRequest,
) -> Result<(OrganizationId, LimitOverrides), Error> {
    let bounded = |field: &str, value: Option<i32>, min: u64| {
        value
            .map(|n| {
                u64::try_from(n)
                    .ok()
                    .filter(|n| (min..=MAX_ORGANIZATION_LIMIT).contains(n))
                    .ok_or_else(|| {
                        FieldViolation::new(
                            field,
                            format!("must be {min} to {MAX_ORGANIZATION_LIMIT}, or unset for the server's default"),
                        )
                    })
            })
            .transpose()
    };
    let (organization, max_members, max_pending_invitations) = all_valid((
        parse_organization("organization_id", &req.organization_id),
        bounded("max_members", req.max_members, 1),
        bounded("max_pending_invitations", req.max_pending_invitations, 0),
    ))?;
    Ok((
        organization,
        LimitOverrides {
            max_members,
            max_pending_invitations,
        },
    ))
}

pub fn organization_key(req: pb::GetOrganizationRequest) -> Result<OrganizationKey, Error> {
    use pb::get_organization_request::Key;
    match req.key {
        Some(Key::Id(id)) => Ok(OrganizationKey::Id(organization_id("id", &id)?)),
        Some(Key::Slug(slug)) if !slug.trim().is_empty() => {
            Ok(OrganizationKey::Slug(Slug::lookup("slug", &slug)?))
        }
        Some(Key::Slug(_)) => Err(Error::invalid("slug", "is required")),
        Some(Key::DeveloperId(developer)) => Ok(OrganizationKey::DeveloperId(DeveloperId::parse(
            "developer_id",
            developer.trim(),
        )?)),
        None => Err(Error::invalid(
            "key",
            "give one of id, slug and developer_id",
        )),
    }
}

/// Field mask paths `UpdateOrganization` accepts.
const UPDATABLE: &[&str] = &["name", "slug", "logo_url"];

pub fn organization_update(
    req: pb::UpdateOrganizationRequest,
) -> Result<OrganizationUpdate, Error> {
    let organization = req
        .organization
        .ok_or_else(|| Error::invalid("organization", "is required"))?;
    let paths: Vec<String> = req.update_mask.map(|m| m.paths).unwrap_or_default();
    let everything = paths.is_empty() || paths.iter().any(|p| p == "*");
    if let Some(unknown) = paths
        .iter()
        .find(|p| *p != "*" && !UPDATABLE.contains(&p.as_str()))
    {
        return Err(Error::invalid(
            "update_mask",
            format!("cannot update {unknown:?}; updatable fields are name, slug and logo_url"),
        ));
    }
    let wants = |field: &str| everything || paths.iter().any(|p| p == field);
    // A rename must be asked for by name: an empty mask or "*" keeps meaning
    // name and logo_url, so a client that never sends slugs renames nothing.
    let renames = paths.iter().any(|p| p == "slug");
    let (id, name, slug, logo) = all_valid((
        parse_organization("organization.id", &organization.id),
        wants("name")
            .then(|| OrganizationName::parse("organization.name", &organization.name))
            .transpose(),
        renames
            .then(|| Slug::parse("organization.slug", &organization.slug))
            .transpose(),
        wants("logo_url")
            .then(|| NewLogo::parse("organization.logo_url", &organization.logo_url))
            .transpose(),
    ))?;
    Ok(OrganizationUpdate {
        id,
        name,
        slug,
        logo,
        etag: non_empty(organization.etag),
    })
}

pub fn non_empty(value: String) -> Option<String> {
    (!value.trim().is_empty()).then_some(value)
}

pub fn page(
    page_size: i32,
    page_token: &str,
    filters: String,
) -> Result<PageRequest, FieldViolation> {
    PageRequest::parse(page_size, page_token, filters)
}

pub fn member_query(req: pb::ListMembersRequest) -> Result<MemberQuery, Error> {
    let (organization, role, search) = all_valid((
        parse_organization("organization_id", &req.organization_id),
        optional_role("role", req.role),
        SearchPrefix::parse("search", &req.search),
    ))?;
    let filters = format!(
        "members;{};{};{}",
        organization,
        role.map(Role::as_str).unwrap_or_default(),
        search
            .as_ref()
            .map(SearchPrefix::as_str)
            .unwrap_or_default()
    );
    let page = page(req.page_size, &req.page_token, filters)?;
    Ok(MemberQuery {
        organization,
        filter: MemberFilter { role, search },
        page,
    })
}

pub fn member_key(organization_id: &str, user_id: &str) -> Result<(OrganizationId, UserId), Error> {
    all_valid((
        parse_organization("organization_id", organization_id),
        UserId::parse("user_id", user_id),
    ))
}

pub fn role_change(
    req: pb::UpdateMemberRoleRequest,
) -> Result<(OrganizationId, UserId, Role), Error> {
    all_valid((
        parse_organization("organization_id", &req.organization_id),
        UserId::parse("user_id", &req.user_id),
        role("role", req.role),
    ))
}

pub fn transfer(req: pb::TransferOwnershipRequest) -> Result<(OrganizationId, UserId), Error> {
    all_valid((
        parse_organization("organization_id", &req.organization_id),
        UserId::parse("new_owner_user_id", &req.new_owner_user_id),
    ))
}

/// A validated `CreateInvitation`.
pub struct CreateInvitationInput {
    pub organization: OrganizationId,
    pub email: Email,
    pub role: InvitableRole,
    pub request_id: Option<uuid::Uuid>,
    pub delivery: InvitationDelivery,
}

pub fn create_invitation(req: pb::CreateInvitationRequest) -> Result<CreateInvitationInput, Error> {
    let (organization, email, role, request_id, delivery) = all_valid((
        parse_organization("organization_id", &req.organization_id),
        Email::parse("email", &req.email),
        role("role", req.role).and_then(|role| InvitableRole::parse("role", role)),
        parse_request_id("request_id", &req.request_id),
        delivery("delivery", req.delivery),
    ))?;
    Ok(CreateInvitationInput {
        organization,
        email,
        role,
        request_id,
        delivery,
    })
}

pub fn invitation_filter(
    scope: &str,
    state: i32,
    page_size: i32,
    page_token: &str,
) -> Result<InvitationFilter, Error> {
    let state = optional_state("state", state)?;
    let filters = format!(
        "invitations;{scope};{}",
        state.map(InvitationState::as_str).unwrap_or_default()
    );
    let page = page(page_size, page_token, filters)?;
    Ok(InvitationFilter { state, page })
}

/// A validated `EraseUser`: every bad field named at once, new owners by
/// their index (`new_owners[2].user_id`).
pub fn erasure(req: pb::EraseUserRequest) -> Result<Erasure, Error> {
    let user = UserId::parse("user_id", &req.user_id);
    let mut violations: Vec<FieldViolation> = user.as_ref().err().cloned().into_iter().collect();
    let mut new_owners = Vec::with_capacity(req.new_owners.len());
    for (index, entry) in req.new_owners.iter().enumerate() {
        let field = |name: &str| format!("new_owners[{index}].{name}");
        let organization = OrganizationId::parse(&field("organization_id"), &entry.organization_id);
        let new_owner =
            UserId::parse(&field("user_id"), &entry.user_id).and_then(|new_owner| match &user {
                Ok(user) if *user == new_owner => Err(FieldViolation::new(
                    field("user_id"),
                    "must be another member, not the user being erased",
                )),
                _ => Ok(new_owner),
            });
        let organization = organization.and_then(|organization| {
            if new_owners
                .iter()
                .any(|named: &NewOwner| named.organization == organization)
            {
                Err(FieldViolation::new(
                    field("organization_id"),
                    "names an organization an earlier entry names: one new owner per organization",
                ))
            } else {
                Ok(organization)
            }
        });
        match (organization, new_owner) {
            (Ok(organization), Ok(user)) => new_owners.push(NewOwner { organization, user }),
            (organization, new_owner) => {
                violations.extend(organization.err());
                violations.extend(new_owner.err());
            }
        }
    }
    match user {
        Ok(user) if violations.is_empty() => Ok(Erasure { user, new_owners }),
        _ => Err(Error::InvalidArgument(violations)),
    }
}
