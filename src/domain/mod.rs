//! Plain Rust types and rules: no gRPC and no SQL in here.
//!
//! Inputs are parsed into newtypes at the edge ([`input`]), so everything
//! past the transport layer holds values that already obey the input rules.

pub mod clock;
pub mod email;
pub mod error;
pub mod event;
pub mod identity;
pub mod ids;
pub mod input;
pub mod link;
pub mod logo;
pub mod model;
pub mod page;
pub mod permission;
pub mod rules;

pub use clock::now;
pub use error::{Error, FieldViolation, Reason, Resource};

/// The names are derived from the variants (strum): renaming a variant
/// must not rename what clients, the database and the change log read.
#[cfg(test)]
mod wire_names {
    #[test]
    fn every_name_stays_what_clients_and_the_database_read() {
        use crate::domain::{
            error::Reason, identity::*, logo::ImageFormat, model::*, permission::Permission,
        };
        assert_eq!(Role::Owner.as_str(), "owner");
        assert_eq!(Role::from_db("owner"), Some(Role::Owner));
        assert_eq!(Role::Admin.as_str(), "admin");
        assert_eq!(Role::from_db("admin"), Some(Role::Admin));
        assert_eq!(Role::Member.as_str(), "member");
        assert_eq!(Role::from_db("member"), Some(Role::Member));
        assert_eq!(InvitationState::Pending.as_str(), "pending");
        assert_eq!(
            InvitationState::from_db("pending"),
            Some(InvitationState::Pending)
        );
        assert_eq!(InvitationState::Accepted.as_str(), "accepted");
        assert_eq!(
            InvitationState::from_db("accepted"),
            Some(InvitationState::Accepted)
        );
        assert_eq!(InvitationState::Rejected.as_str(), "rejected");
        assert_eq!(
            InvitationState::from_db("rejected"),
            Some(InvitationState::Rejected)
        );
        assert_eq!(InvitationState::Cancelled.as_str(), "cancelled");
        assert_eq!(
            InvitationState::from_db("cancelled"),
            Some(InvitationState::Cancelled)
        );
        assert_eq!(InvitationState::Expired.as_str(), "expired");
        assert_eq!(
            InvitationState::from_db("expired"),
            Some(InvitationState::Expired)
        );
        assert_eq!(InvitationDelivery::Email.as_str(), "email");
        assert_eq!(
            InvitationDelivery::from_db("email"),
            Some(InvitationDelivery::Email)
        );
        assert_eq!(InvitationDelivery::LinkOnly.as_str(), "link_only");
        assert_eq!(
            InvitationDelivery::from_db("link_only"),
            Some(InvitationDelivery::LinkOnly)
        );
        assert_eq!(Permission::OrganizationRead.as_str(), "organization.read");
        assert_eq!(
            Permission::from_name("organization.read"),
            Some(Permission::OrganizationRead)
        );
        assert_eq!(
            Permission::OrganizationUpdate.as_str(),
            "organization.update"
        );
        assert_eq!(
            Permission::from_name("organization.update"),
            Some(Permission::OrganizationUpdate)
        );
        assert_eq!(
            Permission::OrganizationDelete.as_str(),
            "organization.delete"
        );
        assert_eq!(
            Permission::from_name("organization.delete"),
            Some(Permission::OrganizationDelete)
        );
        assert_eq!(Permission::MembersRead.as_str(), "members.read");
        assert_eq!(
            Permission::from_name("members.read"),
            Some(Permission::MembersRead)
        );
        assert_eq!(Permission::MembersManage.as_str(), "members.manage");
        assert_eq!(
            Permission::from_name("members.manage"),
            Some(Permission::MembersManage)
        );
        assert_eq!(Permission::OwnersManage.as_str(), "owners.manage");
        assert_eq!(
            Permission::from_name("owners.manage"),
            Some(Permission::OwnersManage)
        );
        assert_eq!(Permission::InvitationsRead.as_str(), "invitations.read");
        assert_eq!(
            Permission::from_name("invitations.read"),
            Some(Permission::InvitationsRead)
        );
        assert_eq!(Permission::InvitationsManage.as_str(), "invitations.manage");
        assert_eq!(
            Permission::from_name("invitations.manage"),
            Some(Permission::InvitationsManage)
        );
        assert_eq!(Permission::AuditRead.as_str(), "audit.read");
        assert_eq!(
            Permission::from_name("audit.read"),
            Some(Permission::AuditRead)
        );
        assert_eq!(Permission::ApplicationsRead.as_str(), "applications.read");
        assert_eq!(
            Permission::from_name("applications.read"),
            Some(Permission::ApplicationsRead)
        );
        assert_eq!(
            Permission::ApplicationsCreate.as_str(),
            "applications.create"
        );
        assert_eq!(
            Permission::from_name("applications.create"),
            Some(Permission::ApplicationsCreate)
        );
        assert_eq!(
            Permission::ApplicationsUpdate.as_str(),
            "applications.update"
        );
        assert_eq!(
            Permission::from_name("applications.update"),
            Some(Permission::ApplicationsUpdate)
        );
        assert_eq!(
            Permission::ApplicationsDelete.as_str(),
            "applications.delete"
        );
        assert_eq!(
            Permission::from_name("applications.delete"),
            Some(Permission::ApplicationsDelete)
        );
        assert_eq!(Permission::SubscriptionsRead.as_str(), "subscriptions.read");
        assert_eq!(
            Permission::from_name("subscriptions.read"),
            Some(Permission::SubscriptionsRead)
        );
        assert_eq!(
            Permission::SubscriptionsCreate.as_str(),
            "subscriptions.create"
        );
        assert_eq!(
            Permission::from_name("subscriptions.create"),
            Some(Permission::SubscriptionsCreate)
        );
        assert_eq!(
            Permission::SubscriptionsUpdate.as_str(),
            "subscriptions.update"
        );
        assert_eq!(
            Permission::from_name("subscriptions.update"),
            Some(Permission::SubscriptionsUpdate)
        );
        assert_eq!(
            Permission::SubscriptionsDelete.as_str(),
            "subscriptions.delete"
        );
        assert_eq!(
            Permission::from_name("subscriptions.delete"),
            Some(Permission::SubscriptionsDelete)
        );
        assert_eq!(Permission::CredentialsRead.as_str(), "credentials.read");
        assert_eq!(
            Permission::from_name("credentials.read"),
            Some(Permission::CredentialsRead)
        );
        assert_eq!(Permission::CredentialsCreate.as_str(), "credentials.create");
        assert_eq!(
            Permission::from_name("credentials.create"),
            Some(Permission::CredentialsCreate)
        );
        assert_eq!(Permission::CredentialsUpdate.as_str(), "credentials.update");
        assert_eq!(
            Permission::from_name("credentials.update"),
            Some(Permission::CredentialsUpdate)
        );
        assert_eq!(Permission::CredentialsDelete.as_str(), "credentials.delete");
        assert_eq!(
            Permission::from_name("credentials.delete"),
            Some(Permission::CredentialsDelete)
        );
        assert_eq!(Reason::MissingCredentials.as_str(), "MISSING_CREDENTIALS");
        assert_eq!(Reason::InvalidToken.as_str(), "INVALID_TOKEN");
        assert_eq!(Reason::InvalidEmailClaim.as_str(), "INVALID_EMAIL_CLAIM");
        assert_eq!(Reason::InvalidArgument.as_str(), "INVALID_ARGUMENT");
        assert_eq!(
            Reason::InsufficientPermission.as_str(),
            "INSUFFICIENT_PERMISSION"
        );
        assert_eq!(Reason::OwnerRoleRequired.as_str(), "OWNER_ROLE_REQUIRED");
        assert_eq!(Reason::MissingScope.as_str(), "MISSING_SCOPE");
        assert_eq!(
            Reason::OnlyOwnPermissions.as_str(),
            "CAN_ONLY_CHECK_OWN_PERMISSIONS"
        );
        assert_eq!(
            Reason::OnlyOwnOrganizations.as_str(),
            "CAN_ONLY_LIST_OWN_ORGANIZATIONS"
        );
        assert_eq!(Reason::PeopleOnly.as_str(), "SERVICE_PRINCIPAL_NOT_ALLOWED");
        assert_eq!(
            Reason::SlugTaken.as_str(),
            "ORGANIZATION_SLUG_ALREADY_TAKEN"
        );
        assert_eq!(
            Reason::AlreadyMember.as_str(),
            "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION"
        );
        assert_eq!(
            Reason::AlreadyInvited.as_str(),
            "USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION"
        );
        assert_eq!(
            Reason::EmailNotVerified.as_str(),
            "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION"
        );
        assert_eq!(
            Reason::OnlyOwnerCannotLeave.as_str(),
            "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER"
        );
        assert_eq!(
            Reason::NoOwnerLeft.as_str(),
            "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER"
        );
        assert_eq!(Reason::InvitationExpired.as_str(), "INVITATION_EXPIRED");
        assert_eq!(
            Reason::InvitationNotPending.as_str(),
            "INVITATION_NOT_PENDING"
        );
        assert_eq!(
            Reason::OrganizationLimit.as_str(),
            "YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_ORGANIZATIONS"
        );
        assert_eq!(
            Reason::MembershipLimit.as_str(),
            "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED"
        );
        assert_eq!(Reason::InvitationLimit.as_str(), "INVITATION_LIMIT_REACHED");
        assert_eq!(
            Reason::EventStreamLimit.as_str(),
            "EVENT_STREAM_LIMIT_REACHED"
        );
        assert_eq!(Reason::EtagMismatch.as_str(), "ETAG_MISMATCH");
        assert_eq!(
            Reason::EventStreamFellBehind.as_str(),
            "EVENT_STREAM_FELL_BEHIND"
        );
        assert_eq!(Reason::ServerOverloaded.as_str(), "SERVER_OVERLOADED");
        assert_eq!(Reason::ShuttingDown.as_str(), "SHUTTING_DOWN");
        assert_eq!(Reason::DeadlineExceeded.as_str(), "DEADLINE_EXCEEDED");
        assert_eq!(Reason::DatabaseUnavailable.as_str(), "DATABASE_UNAVAILABLE");
        assert_eq!(IdentityState::Local.as_str(), "local");
        assert_eq!(IdentityState::from_db("local"), Some(IdentityState::Local));
        assert_eq!(IdentityState::Provisioning.as_str(), "provisioning");
        assert_eq!(
            IdentityState::from_db("provisioning"),
            Some(IdentityState::Provisioning)
        );
        assert_eq!(IdentityState::Active.as_str(), "active");
        assert_eq!(
            IdentityState::from_db("active"),
            Some(IdentityState::Active)
        );
        assert_eq!(IdentityState::PendingApproval.as_str(), "pending_approval");
        assert_eq!(
            IdentityState::from_db("pending_approval"),
            Some(IdentityState::PendingApproval)
        );
        assert_eq!(IdentityState::Deprovisioning.as_str(), "deprovisioning");
        assert_eq!(
            IdentityState::from_db("deprovisioning"),
            Some(IdentityState::Deprovisioning)
        );
        assert_eq!(IdentityState::Failing.as_str(), "failing");
        assert_eq!(
            IdentityState::from_db("failing"),
            Some(IdentityState::Failing)
        );
        assert_eq!(Desired::Present.as_str(), "present");
        assert_eq!(Desired::from_db("present"), Some(Desired::Present));
        assert_eq!(Desired::Absent.as_str(), "absent");
        assert_eq!(Desired::from_db("absent"), Some(Desired::Absent));
        assert_eq!(Confirmed::Present.as_str(), "present");
        assert_eq!(Confirmed::from_db("present"), Some(Confirmed::Present));
        assert_eq!(Confirmed::Absent.as_str(), "absent");
        assert_eq!(Confirmed::from_db("absent"), Some(Confirmed::Absent));
        assert_eq!(Confirmed::Unknown.as_str(), "unknown");
        assert_eq!(Confirmed::from_db("unknown"), Some(Confirmed::Unknown));
        assert_eq!(PortalStatus::Unknown.as_str(), "");
        assert_eq!(PortalStatus::from_db(""), Some(PortalStatus::Unknown));
        assert_eq!(PortalStatus::Pending.as_str(), "pending");
        assert_eq!(
            PortalStatus::from_db("pending"),
            Some(PortalStatus::Pending)
        );
        assert_eq!(PortalStatus::Active.as_str(), "active");
        assert_eq!(PortalStatus::from_db("active"), Some(PortalStatus::Active));
        assert_eq!(ImageFormat::Png.as_str(), "png");
        assert_eq!(ImageFormat::from_db("png"), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::Jpeg.as_str(), "jpeg");
        assert_eq!(ImageFormat::from_db("jpeg"), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::Webp.as_str(), "webp");
        assert_eq!(ImageFormat::from_db("webp"), Some(ImageFormat::Webp));
        assert_eq!(ImageFormat::Gif.as_str(), "gif");
        assert_eq!(ImageFormat::from_db("gif"), Some(ImageFormat::Gif));
        assert_eq!(Reason::SlugInvalid.as_str(), "SLUG_INVALID");
        assert_eq!(Reason::SlugReserved.as_str(), "SLUG_RESERVED");
        assert_eq!(Reason::SlugRetained.as_str(), "SLUG_RETAINED");
    }
}
