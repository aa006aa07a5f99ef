//! `roster.v1.OrganizationService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use crate::{
    auth::RequestExt,
    domain::{error::all_valid, lifecycle::parse_suspend_reason},
    pb::{self, organization_service_server::OrganizationService},
    service::Roster,
};

/// The gRPC face of the organization use-cases.
#[derive(Debug, Clone)]
pub struct OrganizationApi {
    roster: Arc<Roster>,
}

impl OrganizationApi {
    pub fn new(roster: Arc<Roster>) -> Self {
        Self { roster }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl OrganizationService for OrganizationApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Reply<pb::CreateOrganizationResponse> {
        let caller = request.caller()?;
        let input = convert::new_organization(request.into_inner())?;
        let (organization, revision) = self.roster.create_organization(&caller, input).await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(organization.into()),
            revision: convert::revision(revision),
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Reply<pb::GetOrganizationResponse> {
        let caller = request.caller()?;
        let key = convert::organization_key(request.into_inner())?;
        let (organization, role) = self.roster.get_organization(&caller, key).await?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization.into()),
            role: role.map(convert::role_to_proto).unwrap_or_default(),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Reply<pb::ListOrganizationsResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let (user, search, page) = convert::list_organizations(&req)?;
        let page = self
            .roster
            .list_organizations(&caller, user, search, page, req.include_logos)
            .await?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Reply<pb::UpdateOrganizationResponse> {
        let caller = request.caller()?;
        let update = convert::organization_update(request.into_inner())?;
        let (organization, revision) = self.roster.update_organization(&caller, update).await?;
        Ok(Response::new(pb::UpdateOrganizationResponse {
            organization: Some(organization.into()),
            revision: revision.encode(),
        }))
    }

    async fn delete_organization(
        &self,
        request: Request<pb::DeleteOrganizationRequest>,
    ) -> Reply<pb::DeleteOrganizationResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let id = convert::organization_id("id", &req.id)?;
        let (deleted, revision) = self
            .roster
            .delete_organization(&caller, id, convert::non_empty(req.etag))
            .await?;
        Ok(Response::new(pb::DeleteOrganizationResponse {
            revision: revision.encode(),
            purge_time: deleted
                .lifecycle
                .deletion
                .map(|deletion| convert::timestamp(deletion.purge_at)),
        }))
    }

    async fn suspend_organization(
        &self,
        request: Request<pb::SuspendOrganizationRequest>,
    ) -> Reply<pb::SuspendOrganizationResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let (id, reason) = all_valid((
            convert::parse_organization("id", &req.id),
            parse_suspend_reason("reason", &req.reason),
        ))?;
        let (organization, revision) = self
            .roster
            .suspend_organization(&caller, id, reason)
            .await?;
        Ok(Response::new(pb::SuspendOrganizationResponse {
            organization: Some(organization.into()),
            revision: revision.encode(),
        }))
    }

    async fn resume_organization(
        &self,
        request: Request<pb::ResumeOrganizationRequest>,
    ) -> Reply<pb::ResumeOrganizationResponse> {
        let caller = request.caller()?;
        let id = convert::organization_id("id", &request.into_inner().id)?;
        let (organization, revision) = self.roster.resume_organization(&caller, id).await?;
        Ok(Response::new(pb::ResumeOrganizationResponse {
            organization: Some(organization.into()),
            revision: revision.encode(),
        }))
    }

    async fn restore_organization(
        &self,
        request: Request<pb::RestoreOrganizationRequest>,
    ) -> Reply<pb::RestoreOrganizationResponse> {
        let caller = request.caller()?;
        let id = convert::organization_id("id", &request.into_inner().id)?;
        let (organization, revision) = self.roster.restore_organization(&caller, id).await?;
        Ok(Response::new(pb::RestoreOrganizationResponse {
            organization: Some(organization.into()),
            revision: revision.encode(),
        }))
    }

    async fn check_slug(
        &self,
        request: Request<pb::CheckSlugRequest>,
    ) -> Reply<pb::CheckSlugResponse> {
        request.caller()?;
        let availability = self.roster.check_slug(&request.into_inner().slug).await?;
        let (reason, message) = availability
            .unavailable
            .map(|(reason, message)| (reason.as_str().to_owned(), message))
            .unwrap_or_default();
        Ok(Response::new(pb::CheckSlugResponse {
            available: reason.is_empty(),
            reason,
            message,
            normalized_slug: availability.normalized,
        }))
    }

    async fn set_active_organization(
        &self,
        request: Request<pb::SetActiveOrganizationRequest>,
    ) -> Reply<pb::SetActiveOrganizationResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let id = match req.organization_id.trim() {
            "" => None,
            id => Some(convert::organization_id("organization_id", id)?),
        };
        let active = self.roster.set_active_organization(&caller, id).await?;
        let (organization, role) = active.unzip();
        Ok(Response::new(pb::SetActiveOrganizationResponse {
            organization: organization.map(Into::into),
            role: role.map(convert::role_to_proto).unwrap_or_default(),
        }))
    }

    async fn get_active_organization(
        &self,
        request: Request<pb::GetActiveOrganizationRequest>,
    ) -> Reply<pb::GetActiveOrganizationResponse> {
        let caller = request.caller()?;
        let active = self.roster.get_active_organization(&caller).await?;
        let (organization, role) = active.unzip();
        Ok(Response::new(pb::GetActiveOrganizationResponse {
            organization: organization.map(Into::into),
            role: role.map(convert::role_to_proto).unwrap_or_default(),
        }))
    }

    async fn set_organization_limits(
        &self,
        request: Request<pb::SetOrganizationLimitsRequest>,
    ) -> Reply<pb::SetOrganizationLimitsResponse> {
        let caller = request.caller()?;
        let (organization, limits) = convert::organization_limits(request.get_ref())?;
        let (organization, revision) = self
            .roster
            .set_organization_limits(&caller, organization, limits)
            .await?;
        Ok(Response::new(pb::SetOrganizationLimitsResponse {
            organization: Some(organization.into()),
            revision: convert::revision(revision),
        }))
    }
}
