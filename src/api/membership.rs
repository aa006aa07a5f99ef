//! `roster.v1.MembershipService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use crate::{
    auth::RequestExt,
    domain::now,
    pb::{self, membership_service_server::MembershipService},
    service::Roster,
};

/// The gRPC face of the membership and invitation use-cases.
#[derive(Debug, Clone)]
pub struct MembershipApi {
    roster: Arc<Roster>,
}

impl MembershipApi {
    pub fn new(roster: Arc<Roster>) -> Self {
        Self { roster }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl MembershipService for MembershipApi {
    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Reply<pb::ListMembersResponse> {
        let caller = request.caller()?;
        let query = convert::member_query(request.into_inner())?;
        let page = self.roster.list_members(&caller, query).await?;
        Ok(Response::new(pb::ListMembersResponse {
            members: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Reply<pb::GetMemberResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let (organization, user) = convert::member_key(&req.organization_id, &req.user_id)?;
        let member = self.roster.get_member(&caller, organization, user).await?;
        Ok(Response::new(pb::GetMemberResponse {
            member: Some(member.into()),
        }))
    }

    async fn update_member_role(
        &self,
        request: Request<pb::UpdateMemberRoleRequest>,
    ) -> Reply<pb::UpdateMemberRoleResponse> {
        let caller = request.caller()?;
        let (organization, user, role) = convert::role_change(request.into_inner())?;
        let (member, revision) = self
            .roster
            .update_member_role(&caller, organization, user, role)
            .await?;
        Ok(Response::new(pb::UpdateMemberRoleResponse {
            member: Some(member.into()),
            revision: convert::revision(revision),
        }))
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Reply<pb::RemoveMemberResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let (organization, user) = convert::member_key(&req.organization_id, &req.user_id)?;
        let revision = self
            .roster
            .remove_member(&caller, organization, user)
            .await?;
        Ok(Response::new(pb::RemoveMemberResponse {
            revision: revision.encode(),
        }))
    }

    async fn leave_organization(
        &self,
        request: Request<pb::LeaveOrganizationRequest>,
    ) -> Reply<pb::LeaveOrganizationResponse> {
        let caller = request.caller()?;
        let organization =
            convert::organization_id("organization_id", &request.into_inner().organization_id)?;
        let revision = self
            .roster
            .leave_organization(&caller, organization)
            .await?;
        Ok(Response::new(pb::LeaveOrganizationResponse {
            revision: revision.encode(),
        }))
    }

    async fn transfer_ownership(
        &self,
        request: Request<pb::TransferOwnershipRequest>,
    ) -> Reply<pb::TransferOwnershipResponse> {
        let caller = request.caller()?;
        let (organization, new_owner) = convert::transfer(request.into_inner())?;
        let (new_owner, previous_owner, revision) = self
            .roster
            .transfer_ownership(&caller, organization, new_owner)
            .await?;
        Ok(Response::new(pb::TransferOwnershipResponse {
            new_owner: Some(new_owner.into()),
            previous_owner: Some(previous_owner.into()),
            revision: revision.encode(),
        }))
    }

    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Reply<pb::CreateInvitationResponse> {
        let caller = request.caller()?;
        let input = convert::create_invitation(request.into_inner())?;
        let invitation = self
            .roster
            .create_invitation(
                &caller,
                input.organization,
                input.email,
                input.role,
                input.request_id,
                input.delivery,
            )
            .await?;
        Ok(Response::new(pb::CreateInvitationResponse {
            invitation: Some(convert::invitation(invitation, now())),
        }))
    }

    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Reply<pb::GetInvitationResponse> {
        let caller = request.caller()?;
        let named = convert::invitation_ref(&request.into_inner().id)?;
        let id = self.roster.invitation_id(named).await?;
        let invitation = self.roster.get_invitation(&caller, id).await?;
        Ok(Response::new(pb::GetInvitationResponse {
            invitation: Some(convert::invitation(invitation, now())),
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Reply<pb::ListInvitationsResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let organization = convert::organization_id("organization_id", &req.organization_id)?;
        let filter = convert::invitation_filter(
            &organization.to_string(),
            req.state,
            req.page_size,
            &req.page_token,
        )?;
        let page = self
            .roster
            .list_invitations(&caller, organization, filter)
            .await?;
        let now = now();
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations: page
                .items
                .into_iter()
                .map(|i| convert::invitation(i, now))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn list_my_invitations(
        &self,
        request: Request<pb::ListMyInvitationsRequest>,
    ) -> Reply<pb::ListMyInvitationsResponse> {
        let caller = request.caller()?;
        let req = request.into_inner();
        let filter = convert::invitation_filter("mine", req.state, req.page_size, &req.page_token)?;
        let page = self.roster.list_my_invitations(&caller, filter).await?;
        let now = now();
        Ok(Response::new(pb::ListMyInvitationsResponse {
            invitations: page
                .items
                .into_iter()
                .map(|i| convert::invitation(i, now))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Reply<pb::AcceptInvitationResponse> {
        let caller = request.caller()?;
        let named = convert::invitation_ref(&request.into_inner().id)?;
        let id = self.roster.invitation_id(named).await?;
        let (invitation, member, revision) = self.roster.accept_invitation(&caller, id).await?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            invitation: Some(convert::invitation(invitation, now())),
            member: Some(member.into()),
            revision: revision.encode(),
        }))
    }

    async fn reject_invitation(
        &self,
        request: Request<pb::RejectInvitationRequest>,
    ) -> Reply<pb::RejectInvitationResponse> {
        let caller = request.caller()?;
        let named = convert::invitation_ref(&request.into_inner().id)?;
        let id = self.roster.invitation_id(named).await?;
        let invitation = self.roster.reject_invitation(&caller, id).await?;
        Ok(Response::new(pb::RejectInvitationResponse {
            invitation: Some(convert::invitation(invitation, now())),
        }))
    }

    async fn cancel_invitation(
        &self,
        request: Request<pb::CancelInvitationRequest>,
    ) -> Reply<pb::CancelInvitationResponse> {
        let caller = request.caller()?;
        let named = convert::invitation_ref(&request.into_inner().id)?;
        let id = self.roster.invitation_id(named).await?;
        let invitation = self.roster.cancel_invitation(&caller, id).await?;
        Ok(Response::new(pb::CancelInvitationResponse {
            invitation: Some(convert::invitation(invitation, now())),
        }))
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Reply<pb::ResendInvitationResponse> {
        let caller = request.caller()?;
        let named = convert::invitation_ref(&request.into_inner().id)?;
        let id = self.roster.invitation_id(named).await?;
        let invitation = self.roster.resend_invitation(&caller, id).await?;
        Ok(Response::new(pb::ResendInvitationResponse {
            invitation: Some(convert::invitation(invitation, now())),
        }))
    }

    async fn erase_user(
        &self,
        request: Request<pb::EraseUserRequest>,
    ) -> Reply<pb::EraseUserResponse> {
        let caller = request.caller()?;
        let erasure = convert::erasure(request.into_inner())?;
        let erased = self.roster.erase_user(&caller, erasure).await?;
        let ids = |ids: Vec<_>| ids.into_iter().map(|id| format!("{id}")).collect();
        Ok(Response::new(pb::EraseUserResponse {
            revision: convert::revision(erased.revision),
            left_organization_ids: ids(erased.left),
            deleted_organization_ids: ids(erased.deleted),
            cancelled_invitation_ids: erased
                .cancelled
                .into_iter()
                .map(|id| id.to_string())
                .collect(),
        }))
    }
}
