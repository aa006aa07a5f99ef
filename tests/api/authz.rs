//! The permission model end to end: every RPC has a policy entry, and every
//! RPC called by an owner, an admin, a member, an outsider and an
//! invitation's recipient gets the code the product's rules say.

use prost::Message;
use prost_types::{FieldMask, FileDescriptorSet};
use roster::{
    auth::policy::Action,
    pb::{self, get_organization_request::Key},
};
use tonic::{Code, Status};

use crate::{
    backend_tests,
    helpers::{Backend, TestApp},
};

#[test]
fn every_rpc_in_the_served_descriptors_has_a_policy_entry() {
    let descriptors = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in descriptors
        .file
        .iter()
        .filter(|f| f.package() == "roster.v1")
    {
        for service in &file.service {
            for method in &service.method {
                methods.push(format!("/roster.v1.{}/{}", service.name(), method.name()));
            }
        }
    }
    for path in &methods {
        assert!(
            Action::from_path(path).is_some(),
            "{path} has no entry in auth::policy"
        );
    }
    assert_eq!(
        methods.len(),
        Action::ALL.len(),
        "the policy lists an RPC that is not served"
    );
}

/// Who calls, relative to the fixture organization.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Owner,
    Admin,
    Member,
    Outsider,
    /// Not a member; the fixture's pending invitation is addressed to them.
    Invitee,
    /// A service principal with the scope `authz.check`.
    Checker,
    /// A service principal with the scope `events.read`, whose token also
    /// has the verified email the fixture's invitation is addressed to.
    Follower,
    /// A service principal with the scope `organizations.read`.
    Reader,
    /// A service principal with all of them, limited to the fixture's
    /// organization (its token's `org_id`).
    Inside,
    /// The same, limited to another organization.
    Outside,
    /// A platform administrator: a service principal with the scope
    /// `organizations.admin`, not limited to any organization.
    Administrator,
    /// No token at all.
    Anonymous,
}

const CALLERS: [Caller; 11] = [
    Caller::Owner,
    Caller::Admin,
    Caller::Member,
    Caller::Outsider,
    Caller::Invitee,
    Caller::Checker,
    Caller::Follower,
    Caller::Reader,
    Caller::Inside,
    Caller::Outside,
    Caller::Administrator,
];

impl Caller {
    fn user(self) -> &'static str {
        match self {
            Caller::Owner => "owner",
            Caller::Admin => "admin",
            Caller::Member => "member",
            Caller::Outsider => "outsider",
            Caller::Invitee => "invitee",
            Caller::Checker => "checker",
            // The invitee's address: a service is not a recipient either.
            Caller::Follower => "invitee",
            Caller::Reader => "reader",
            Caller::Inside => "inside-service",
            Caller::Outside => "outside-service",
            Caller::Administrator => "platform-admin",
            Caller::Anonymous => "anonymous",
        }
    }

    /// The scopes of a service principal; none for a person.
    fn scopes(self) -> &'static [&'static str] {
        match self {
            Caller::Checker => &["authz.check"],
            Caller::Follower => &["events.read"],
            Caller::Reader => &["organizations.read"],
            Caller::Administrator => &["organizations.admin"],
            Caller::Inside | Caller::Outside => {
                &["authz.check", "events.read", "organizations.read"]
            }
            Caller::Owner
            | Caller::Admin
            | Caller::Member
            | Caller::Outsider
            | Caller::Invitee
            | Caller::Anonymous => &[],
        }
    }
}

/// The expected outcome per caller, in the order of [`CALLERS`]:
/// owner, admin, member, outsider, invitee, then the services: checker
/// (`authz.check`), follower (`events.read`), reader (`organizations.read`),
/// all three scopes limited to the fixture's organization (inside) or
/// to another (outside: as if the fixture's did not exist), and the
/// administrator (`organizations.admin`, which includes what
/// `organizations.read` opens). Written out by hand from the product's
/// rules (the README's "Roles and rules", "Backend services" and
/// "Administrators"), not derived from the code under test.
fn expected(action: Action) -> [Code; 11] {
    use Code::{NotFound as NF, Ok as OK, PermissionDenied as PD};
    // A service principal is not a person: every RPC a scope does not open
    // is refused to it (PERMISSION_DENIED), whatever it would be to a person.
    let people = |p: [Code; 5]| [p[0], p[1], p[2], p[3], p[4], PD, PD, PD, PD, PD, PD];
    // ... and what `organizations.read` opens: reads of any organization
    // (an administrator reads too).
    let readable = |p: [Code; 5]| [p[0], p[1], p[2], p[3], p[4], PD, PD, OK, OK, NF, OK];
    // ... and what `organizations.admin` opens besides: the writes an
    // administrator makes in any organization.
    let administered = |p: [Code; 5]| [p[0], p[1], p[2], p[3], p[4], PD, PD, PD, PD, PD, OK];
    // Only administrators, no person.
    let admin_only = [PD, PD, PD, PD, PD, PD, PD, PD, PD, PD, OK];
    match action {
        // An administrator creates one for a user (the call names the owner).
        Action::CreateOrganization => administered([OK, OK, OK, OK, OK]),
        Action::GetOrganization => readable([OK, OK, OK, NF, NF]),
        // A user's organizations, as far as the token reaches: none outside.
        Action::ListOrganizations => [OK, OK, OK, OK, OK, PD, PD, OK, OK, OK, OK],
        Action::UpdateOrganization => people([OK, OK, PD, NF, NF]),
        Action::DeleteOrganization => administered([OK, PD, PD, NF, NF]),
        Action::CheckSlug => people([OK, OK, OK, OK, OK]),
        Action::SetActiveOrganization => people([OK, OK, OK, NF, NF]),
        Action::GetActiveOrganization => people([OK, OK, OK, OK, OK]),
        Action::SetOrganizationLimits => admin_only,
        Action::ListMembers => readable([OK, OK, OK, NF, NF]),
        Action::GetMember => readable([OK, OK, OK, NF, NF]),
        Action::UpdateMemberRole => administered([OK, OK, PD, NF, NF]),
        Action::RemoveMember => administered([OK, OK, PD, NF, NF]),
        Action::LeaveOrganization => people([OK, OK, OK, NF, NF]),
        Action::TransferOwnership => people([OK, PD, PD, NF, NF]),
        Action::CreateInvitation => people([OK, OK, PD, NF, NF]),
        Action::GetInvitation => readable([OK, OK, OK, NF, OK]),
        Action::ListInvitations => readable([OK, OK, OK, NF, NF]),
        Action::ListMyInvitations => people([OK, OK, OK, OK, OK]),
        // To anyone but its recipient, an invitation does not exist (issue 9, item 12).
        Action::AcceptInvitation => people([NF, NF, NF, NF, OK]),
        Action::RejectInvitation => people([NF, NF, NF, NF, OK]),
        Action::CancelInvitation => people([OK, OK, PD, NF, NF]),
        Action::ResendInvitation => people([OK, OK, PD, NF, NF]),
        // Administrators only (`organizations.admin`): no person, whatever
        // their role, and no other service.
        Action::EraseUser => admin_only,
        // People join through invitations; administrators add directly.
        Action::AddMember => admin_only,
        // People, whatever their role, are not service principals with `events.read`.
        Action::StreamEvents => [PD, PD, PD, PD, PD, PD, OK, PD, OK, OK, PD],
        Action::ListEvents => [PD, PD, PD, PD, PD, PD, OK, PD, OK, OK, PD],
        Action::ListAuditEvents => people([OK, OK, PD, NF, NF]),
        // A person may check their own permissions (the answer may be "no");
        // a service needs `authz.check`.
        Action::CheckPermission => [OK, OK, OK, OK, OK, OK, PD, PD, OK, OK, PD],
        Action::BatchCheckPermissions => [OK, OK, OK, OK, OK, OK, PD, PD, OK, OK, PD],
        Action::LookupOrganizations => [OK, OK, OK, OK, OK, OK, PD, PD, OK, OK, PD],
        // Who may act in an organization: services only.
        Action::LookupUsers => [PD, PD, PD, PD, PD, OK, PD, PD, OK, OK, PD],
        // The lifecycle: suspending and resuming are for administrators
        // alone (the fixture is suspended first for a resume).
        Action::SuspendOrganization => admin_only,
        Action::ResumeOrganization => admin_only,
        // The fixture is deleted first: its owners and administrators may
        // restore it, and to its other members it is gone (NOT_FOUND).
        Action::RestoreOrganization => [OK, NF, NF, NF, NF, PD, PD, PD, PD, PD, OK],
    }
}

/// An organization with an owner (and a second owner, so the first may
/// leave), an admin, a member, a member to act on, and a pending invitation.
struct Fixture {
    org: pb::Organization,
    invitation: pb::Invitation,
}

async fn fixture(app: &TestApp, slug: &str) -> Fixture {
    let org = app.create_org("owner", slug).await;
    app.add_member("owner", &org.id, "owner2", pb::Role::Owner)
        .await;
    app.add_member("owner", &org.id, "admin", pb::Role::Admin)
        .await;
    app.add_member("owner", &org.id, "member", pb::Role::Member)
        .await;
    app.add_member("owner", &org.id, "target", pb::Role::Member)
        .await;
    let invitation = app
        .invite("owner", &org.id, "invitee", pb::Role::Member)
        .await;
    Fixture { org, invitation }
}

/// Calls `action` as `caller` with a request that is valid in every other respect.
async fn call(
    app: &TestApp,
    action: Action,
    caller: Caller,
    f: &Fixture,
    n: usize,
) -> Result<(), Status> {
    let token = match caller {
        Caller::Anonymous => None,
        Caller::Inside | Caller::Outside => {
            let limit = match caller {
                Caller::Inside => f.org.id.clone(),
                _ => uuid::Uuid::now_v7().to_string(),
            };
            Some(app.token_with(roster::auth::token::TokenRequest {
                sub: caller.user().into(),
                scopes: caller.scopes().iter().map(|s| (*s).to_owned()).collect(),
                organizations: vec![limit],
                ttl: std::time::Duration::from_secs(3600),
                ..Default::default()
            }))
        }
        _ if !caller.scopes().is_empty() => Some(crate::services::service_token(
            app,
            caller.user(),
            caller.scopes(),
        )),
        _ => Some(app.token(caller.user())),
    };
    let mut orgs = app.orgs_with_token(token.as_deref());
    let mut members = app.members_with_token(token.as_deref());
    let mut events = app.events_with_token(token.as_deref());
    let mut authz = app.authz_with_token(token.as_deref());
    let own_check = pb::PermissionCheck {
        user_id: String::new(),
        organization_id: f.org.id.clone(),
        permission: "applications.read".into(),
        ..Default::default()
    };
    let org_id = f.org.id.clone();
    let invitation_id = f.invitation.id.clone();
    match action {
        // A service names the owner (only an administrator may).
        Action::CreateOrganization => orgs
            .create_organization(pb::CreateOrganizationRequest {
                name: "New".into(),
                slug: format!("new-{n}"),
                owner: (!caller.scopes().is_empty()).then(|| pb::OrganizationOwner {
                    user_id: "outsider".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map(drop),
        Action::GetOrganization => orgs
            .get_organization(pb::GetOrganizationRequest {
                key: Some(Key::Id(org_id)),
            })
            .await
            .map(drop),
        // A service has no organizations of its own: it names a user.
        Action::ListOrganizations => orgs
            .list_organizations(pb::ListOrganizationsRequest {
                user_id: if caller.scopes().is_empty() {
                    String::new()
                } else {
                    "member".into()
                },
                ..Default::default()
            })
            .await
            .map(drop),
        Action::UpdateOrganization => orgs
            .update_organization(pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    id: org_id,
                    name: "Renamed".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["name".into()],
                }),
            })
            .await
            .map(drop),
        Action::DeleteOrganization => orgs
            .delete_organization(pb::DeleteOrganizationRequest {
                id: org_id,
                etag: String::new(),
            })
            .await
            .map(drop),
        Action::CheckSlug => orgs
            .check_slug(pb::CheckSlugRequest {
                slug: "free-slug".into(),
            })
            .await
            .map(drop),
        Action::SetActiveOrganization => orgs
            .set_active_organization(pb::SetActiveOrganizationRequest {
                organization_id: org_id,
            })
            .await
            .map(drop),
        Action::GetActiveOrganization => orgs
            .get_active_organization(pb::GetActiveOrganizationRequest {})
            .await
            .map(drop),
        Action::SetOrganizationLimits => orgs
            .set_organization_limits(pb::SetOrganizationLimitsRequest {
                organization_id: org_id,
                max_members: Some(20),
                max_pending_invitations: None,
            })
            .await
            .map(drop),
        Action::ListMembers => members
            .list_members(pb::ListMembersRequest {
                organization_id: org_id,
                ..Default::default()
            })
            .await
            .map(drop),
        Action::GetMember => members
            .get_member(pb::GetMemberRequest {
                organization_id: org_id,
                user_id: "target".into(),
            })
            .await
            .map(drop),
        Action::UpdateMemberRole => members
            .update_member_role(pb::UpdateMemberRoleRequest {
                organization_id: org_id,
                user_id: "target".into(),
                role: pb::Role::Admin.into(),
            })
            .await
            .map(drop),
        Action::RemoveMember => members
            .remove_member(pb::RemoveMemberRequest {
                organization_id: org_id,
                user_id: "target".into(),
            })
            .await
            .map(drop),
        Action::LeaveOrganization => members
            .leave_organization(pb::LeaveOrganizationRequest {
                organization_id: org_id,
            })
            .await
            .map(drop),
        Action::TransferOwnership => members
            .transfer_ownership(pb::TransferOwnershipRequest {
                organization_id: org_id,
                new_owner_user_id: "target".into(),
            })
            .await
            .map(drop),
        Action::CreateInvitation => members
            .create_invitation(pb::CreateInvitationRequest {
                organization_id: org_id,
                email: format!("new-{n}@example.com"),
                role: pb::Role::Member.into(),
                request_id: String::new(),
                delivery: pb::InvitationDelivery::Unspecified.into(),
            })
            .await
            .map(drop),
        Action::GetInvitation => members
            .get_invitation(pb::GetInvitationRequest { id: invitation_id })
            .await
            .map(drop),
        Action::ListInvitations => members
            .list_invitations(pb::ListInvitationsRequest {
                organization_id: org_id,
                ..Default::default()
            })
            .await
            .map(drop),
        Action::ListMyInvitations => members
            .list_my_invitations(pb::ListMyInvitationsRequest::default())
            .await
            .map(drop),
        Action::AcceptInvitation => members
            .accept_invitation(pb::AcceptInvitationRequest { id: invitation_id })
            .await
            .map(drop),
        Action::RejectInvitation => members
            .reject_invitation(pb::RejectInvitationRequest { id: invitation_id })
            .await
            .map(drop),
        Action::CancelInvitation => members
            .cancel_invitation(pb::CancelInvitationRequest { id: invitation_id })
            .await
            .map(drop),
        Action::ResendInvitation => members
            .resend_invitation(pb::ResendInvitationRequest { id: invitation_id })
            .await
            .map(drop),
        Action::EraseUser => members
            .erase_user(pb::EraseUserRequest {
                user_id: "target".into(),
                new_owners: Vec::new(),
            })
            .await
            .map(drop),
        Action::AddMember => members
            .add_member(pb::AddMemberRequest {
                organization_id: org_id,
                user_id: "newcomer".into(),
                role: pb::Role::Member.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Action::StreamEvents => events
            .stream_events(pb::StreamEventsRequest::default())
            .await
            .map(drop),
        Action::ListEvents => events
            .list_events(pb::ListEventsRequest::default())
            .await
            .map(drop),
        Action::ListAuditEvents => events
            .list_audit_events(pb::ListAuditEventsRequest {
                organization_id: org_id,
                ..Default::default()
            })
            .await
            .map(drop),
        Action::CheckPermission => authz
            .check_permission(pb::CheckPermissionRequest {
                check: Some(own_check),
                at_least_revision: String::new(),
            })
            .await
            .map(drop),
        Action::BatchCheckPermissions => authz
            .batch_check_permissions(pb::BatchCheckPermissionsRequest {
                checks: vec![own_check],
                at_least_revision: String::new(),
            })
            .await
            .map(drop),
        Action::LookupOrganizations => authz
            .lookup_organizations(pb::LookupOrganizationsRequest {
                // People ask about themselves; services about a member.
                user_id: if caller.scopes().is_empty() {
                    String::new()
                } else {
                    "member".into()
                },
                permission: "applications.read".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Action::LookupUsers => authz
            .lookup_users(pb::LookupUsersRequest {
                organization_id: org_id,
                permission: "applications.read".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        Action::SuspendOrganization => orgs
            .suspend_organization(pb::SuspendOrganizationRequest {
                id: org_id,
                reason: "matrix".into(),
            })
            .await
            .map(drop),
        Action::ResumeOrganization => {
            // Set up only where the call gets past authentication.
            if !matches!(caller, Caller::Anonymous) {
                crate::lifecycle::suspend(app, &org_id, "matrix").await;
            }
            orgs.resume_organization(pb::ResumeOrganizationRequest { id: org_id })
                .await
                .map(drop)
        }
        Action::RestoreOrganization => {
            if !matches!(caller, Caller::Anonymous) {
                crate::lifecycle::delete(app, "owner", &org_id).await;
            }
            orgs.restore_organization(pb::RestoreOrganizationRequest { id: org_id })
                .await
                .map(drop)
        }
    }
}

backend_tests!(
    every_rpc_answers_each_role_as_the_product_says,
    every_rpc_refuses_calls_without_a_token,
);

async fn every_rpc_answers_each_role_as_the_product_says(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.max_owned_organizations = 1_000).await;
    let mut failures = Vec::new();
    let mut n = 0;
    for action in Action::ALL.iter().copied() {
        for (caller, want) in CALLERS.into_iter().zip(expected(action)) {
            n += 1;
            // A fresh organization per call: a call may change what the next would see.
            let f = fixture(&app, &format!("org-{n}")).await;
            let got = match call(&app, action, caller, &f, n).await {
                Ok(()) => Code::Ok,
                Err(status) => status.code(),
            };
            if got != want {
                failures.push(format!(
                    "{action:?} as {caller:?}: want {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "role matrix mismatches:\n{}",
        failures.join("\n")
    );
}

async fn every_rpc_refuses_calls_without_a_token(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let f = fixture(&app, "acme").await;
    for (n, action) in Action::ALL.iter().copied().enumerate() {
        let status = call(&app, action, Caller::Anonymous, &f, n)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{action:?}");
        assert_eq!(
            crate::helpers::reason(&status),
            "MISSING_CREDENTIALS",
            "{action:?}"
        );
    }
}
