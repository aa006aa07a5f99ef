//! `roster.v1.AuthorizationService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use crate::{
    auth::{Caller, RequestExt, policy::Action},
    domain::{
        Error, FieldViolation,
        error::all_valid,
        event::EventCursor,
        ids::{OrganizationId, UserId},
        input::Slug,
        model::UserOrganization,
        page::PageRequest,
        permission::Permission,
    },
    pb::{self, authorization_service_server::AuthorizationService},
    service::{CheckAnswer, CheckInput, OrganizationLookup, OrganizationRef, Roster, UserLookup},
};

/// Most checks in one `BatchCheckPermissions`.
pub const MAX_BATCH: usize = 100;

/// The gRPC face of permission checks.
#[derive(Debug, Clone)]
pub struct AuthorizationApi {
    roster: Arc<Roster>,
}

impl AuthorizationApi {
    pub fn new(roster: Arc<Roster>) -> Self {
        Self { roster }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Parses one check; `prefix` names it in errors (`check`, `checks[3]`).
fn check(caller: &Caller, prefix: &str, check: pb::PermissionCheck) -> Result<CheckInput, Error> {
    let user = if check.user_id.is_empty() {
        Ok(caller.user_id.clone())
    } else {
        UserId::parse(&format!("{prefix}.user_id"), &check.user_id)
    };
    let permission = permission(&format!("{prefix}.permission"), &check.permission);
    let (user, organization, permission) =
        all_valid((user, organization(prefix, &check), permission))?;
    Ok(CheckInput {
        user,
        organization,
        permission,
    })
}

/// A permission by its name.
fn permission(field: &str, name: &str) -> Result<Permission, FieldViolation> {
    Permission::from_name(name.trim())
        .ok_or_else(|| FieldViolation::new(field, format!("{name:?} is not a known permission")))
}

/// The organization a check names: exactly one of its id and its slug.
fn organization(
    prefix: &str,
    check: &pb::PermissionCheck,
) -> Result<OrganizationRef, FieldViolation> {
    organization_named(prefix, &check.organization_id, &check.organization_slug)
}

/// Exactly one of an organization's id and its slug; `prefix` names the
/// message the fields are in (empty: the request itself).
fn organization_named(
    prefix: &str,
    organization_id: &str,
    organization_slug: &str,
) -> Result<OrganizationRef, FieldViolation> {
    let field = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let by_id = !organization_id.trim().is_empty();
    let by_slug = !organization_slug.trim().is_empty();
    match (by_id, by_slug) {
        (true, true) => Err(FieldViolation::new(
            field("organization_slug"),
            "give either organization_id or organization_slug, not both",
        )),
        (false, true) => {
            Slug::parse(&field("organization_slug"), organization_slug).map(OrganizationRef::Slug)
        }
        (true, false) | (false, false) => {
            OrganizationId::parse(&field("organization_id"), organization_id)
                .map(OrganizationRef::Id)
                .map_err(|violation| {
                    if by_id {
                        violation
                    } else {
                        FieldViolation::new(
                            violation.field,
                            "is required (or give organization_slug instead)",
                        )
                    }
                })
        }
    }
}

fn revision(value: &str) -> Result<Option<EventCursor>, Error> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(EventCursor::parse("at_least_revision", value)?))
}

fn grant(entry: UserOrganization) -> pb::OrganizationGrant {
    let organization = entry.organization;
    pb::OrganizationGrant {
        organization_id: organization.id.to_string(),
        organization_slug: organization.slug,
        developer_id: organization.developer_id.as_str().to_owned(),
        role: convert::role_to_proto(entry.role),
        identity_state: convert::identity_state_to_proto(organization.identity.state),
    }
}

fn result(answer: CheckAnswer) -> pb::PermissionResult {
    let (organization_id, developer_id) = answer
        .organization
        .map(|(id, developer)| (id.to_string(), developer.as_str().to_owned()))
        .unwrap_or_default();
    pb::PermissionResult {
        organization_id,
        developer_id,
        allowed: answer.allowed,
        role: answer.role.map(convert::role_to_proto).unwrap_or_default(),
        identity_state: answer
            .identity
            .map(convert::identity_state_to_proto)
            .unwrap_or_default(),
        reason: answer
            .reason
            .map(|reason| reason.as_str().to_owned())
            .unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl AuthorizationService for AuthorizationApi {
    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Reply<pb::CheckPermissionResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let input = check(&caller, "check", req.check.unwrap_or_default())?;
        let at_least = revision(&req.at_least_revision)?;
        let (answers, revision) = self
            .roster
            .check_permissions(&caller, Action::CheckPermission, &[input], at_least)
            .await?;
        Ok(Response::new(pb::CheckPermissionResponse {
            result: answers.into_iter().next().map(result),
            revision: revision.encode(),
        }))
    }

    async fn batch_check_permissions(
        &self,
        request: Request<pb::BatchCheckPermissionsRequest>,
    ) -> Reply<pb::BatchCheckPermissionsResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        if req.checks.is_empty() || req.checks.len() > MAX_BATCH {
            return Err(Error::invalid("checks", "must hold 1 to 100 checks").into());
        }
        let mut inputs = Vec::with_capacity(req.checks.len());
        let mut violations = Vec::new();
        for (i, c) in req.checks.into_iter().enumerate() {
            match check(&caller, &format!("checks[{i}]"), c) {
                Ok(input) => inputs.push(input),
                Err(Error::InvalidArgument(mut found)) => violations.append(&mut found),
                Err(other) => return Err(other.into()),
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations).into());
        }
        let at_least = revision(&req.at_least_revision)?;
        let (answers, revision) = self
            .roster
            .check_permissions(&caller, Action::BatchCheckPermissions, &inputs, at_least)
            .await?;
        Ok(Response::new(pb::BatchCheckPermissionsResponse {
            results: answers.into_iter().map(result).collect(),
            revision: revision.encode(),
        }))
    }

    async fn lookup_organizations(
        &self,
        request: Request<pb::LookupOrganizationsRequest>,
    ) -> Reply<pb::LookupOrganizationsResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let user = if req.user_id.is_empty() {
            Ok(caller.user_id.clone())
        } else {
            UserId::parse("user_id", &req.user_id)
        };
        let (user, permission, page) = all_valid((
            user,
            permission("permission", &req.permission),
            PageRequest::parse(
                req.page_size,
                &req.page_token,
                format!(
                    "lookup-organizations;{};{}",
                    req.user_id,
                    req.permission.trim()
                ),
            ),
        ))?;
        // A page is read from the database, which holds every committed
        // change: the revision asked for is parsed (a malformed one is an
        // error) and always met.
        revision(&req.at_least_revision)?;
        let (page, revision) = self
            .roster
            .lookup_organizations(
                &caller,
                OrganizationLookup {
                    user,
                    permission,
                    page,
                },
            )
            .await?;
        Ok(Response::new(pb::LookupOrganizationsResponse {
            organizations: page.items.into_iter().map(grant).collect(),
            next_page_token: page.next_page_token,
            revision: revision.encode(),
        }))
    }

    async fn lookup_users(
        &self,
        request: Request<pb::LookupUsersRequest>,
    ) -> Reply<pb::LookupUsersResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let (organization, permission, page) = all_valid((
            organization_named("", &req.organization_id, &req.organization_slug),
            permission("permission", &req.permission),
            PageRequest::parse(
                req.page_size,
                &req.page_token,
                format!(
                    "lookup-users;{};{};{}",
                    req.organization_id.trim(),
                    req.organization_slug.trim(),
                    req.permission.trim()
                ),
            ),
        ))?;
        revision(&req.at_least_revision)?;
        let (page, revision) = self
            .roster
            .lookup_users(
                &caller,
                UserLookup {
                    organization,
                    permission,
                    page,
                },
            )
            .await?;
        Ok(Response::new(pb::LookupUsersResponse {
            users: page
                .items
                .into_iter()
                .map(|(user, role)| pb::UserGrant {
                    user_id: user.as_str().to_owned(),
                    role: convert::role_to_proto(role),
                })
                .collect(),
            next_page_token: page.next_page_token,
            revision: revision.encode(),
        }))
    }
}
