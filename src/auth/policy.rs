//! What every RPC requires, in one table.
//!
//! [`Action`] has one variant per RPC roster serves (a test walks the
//! served descriptors and fails if one is missing here), and
//! [`Action::requirement`] says, without a wildcard, what the caller must
//! be. Use-cases call [`authorize`] with the caller's role in the target
//! organization; no handler compares roles itself.

use super::Caller;
use crate::domain::{Error, Reason, Resource, ids::UserId, model::Role, permission::Permission};

/// What the caller of an RPC must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Any authenticated caller; the call acts only on the caller's own data.
    Authenticated,
    /// A member of the target organization whose role grants the permission.
    Member(Permission),
    /// The recipient of the target invitation (verified email equal to its address).
    Recipient,
    /// Either of the above: a member with the permission, or the recipient.
    MemberOrRecipient(Permission),
    /// A service principal whose token carries this scope.
    Scope(&'static str),
    /// A service principal with this scope, or a user asking about themself.
    ScopeOrSelf(&'static str),
}

/// Scope of services that check other users' permissions.
pub const AUTHZ_CHECK: &str = "authz.check";

/// Scope of service principals that follow the change log (the Provider Portal).
pub const EVENTS_READ: &str = "events.read";

macro_rules! actions {
    ($($service:literal => { $($variant:ident),+ $(,)? })+) => {
        /// One variant per RPC.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($($variant,)+)+ }

        impl Action {
            /// Every RPC roster serves (besides health and reflection).
            pub const ALL: &'static [Action] = &[$($(Action::$variant,)+)+];

            /// The fully qualified service name and the method name.
            pub fn grpc_name(self) -> (&'static str, &'static str) {
                match self {
                    $($(Action::$variant => ($service, stringify!($variant)),)+)+
                }
            }
        }
    };
}

actions! {
    "roster.v1.OrganizationService" => {
        CreateOrganization, GetOrganization, ListOrganizations, UpdateOrganization,
        DeleteOrganization, CheckSlug, SetActiveOrganization, GetActiveOrganization,
    }
    "roster.v1.MembershipService" => {
        ListMembers, GetMember, UpdateMemberRole, RemoveMember, LeaveOrganization,
        TransferOwnership, CreateInvitation, GetInvitation, ListInvitations, ListMyInvitations,
        AcceptInvitation, RejectInvitation, CancelInvitation, ResendInvitation,
    }
    "roster.v1.EventService" => {
        StreamEvents, ListEvents, ListAuditEvents,
    }
    "roster.v1.AuthorizationService" => {
        CheckPermission, BatchCheckPermissions,
    }
}

impl Action {
    /// The policy table.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn requirement(self) -> Requirement {
        use Permission as P;
        use Requirement::{
            Authenticated, Member, MemberOrRecipient, Recipient, Scope, ScopeOrSelf,
        };
        match self {
            Action::CreateOrganization => Authenticated,
            Action::GetOrganization => Member(P::OrganizationRead),
            Action::ListOrganizations => Authenticated,
            Action::UpdateOrganization => Member(P::OrganizationUpdate),
            Action::DeleteOrganization => Member(P::OrganizationDelete),
            Action::CheckSlug => Authenticated,
            Action::SetActiveOrganization => Member(P::OrganizationRead),
            Action::GetActiveOrganization => Authenticated,
            Action::ListMembers => Member(P::MembersRead),
            Action::GetMember => Member(P::MembersRead),
            Action::UpdateMemberRole => Member(P::MembersManage),
            Action::RemoveMember => Member(P::MembersManage),
            // Any member may leave (owners only if another owner stays).
            Action::LeaveOrganization => Member(P::OrganizationRead),
            Action::TransferOwnership => Member(P::OwnersManage),
            Action::CreateInvitation => Member(P::InvitationsManage),
            Action::GetInvitation => MemberOrRecipient(P::InvitationsRead),
            Action::ListInvitations => Member(P::InvitationsRead),
            Action::ListMyInvitations => Authenticated,
            Action::AcceptInvitation => Recipient,
            Action::RejectInvitation => Recipient,
            Action::CancelInvitation => Member(P::InvitationsManage),
            Action::ResendInvitation => Member(P::InvitationsManage),
            Action::StreamEvents => Scope(EVENTS_READ),
            Action::ListEvents => Scope(EVENTS_READ),
            Action::ListAuditEvents => Member(P::AuditRead),
            Action::CheckPermission => ScopeOrSelf(AUTHZ_CHECK),
            Action::BatchCheckPermissions => ScopeOrSelf(AUTHZ_CHECK),
        }
    }

    /// The gRPC path, `/package.Service/Method`.
    pub fn path(self) -> String {
        let (service, method) = self.grpc_name();
        format!("/{service}/{method}")
    }

    /// The action for a gRPC request path, if roster serves it.
    pub fn from_path(path: &str) -> Option<Action> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.grpc_name() == (service, method))
    }
}

/// Checks that a caller whose role in the target organization is `role`
/// (`None`: not a member) may perform `action`, returning the role.
///
/// A non-member gets `NOT_FOUND`, never `PERMISSION_DENIED`: the existence
/// of an organization is not revealed to outsiders.
pub fn authorize(action: Action, role: Option<Role>) -> Result<Role, Error> {
    let permission = match action.requirement() {
        Requirement::Member(p) | Requirement::MemberOrRecipient(p) => p,
        Requirement::Authenticated
        | Requirement::Recipient
        | Requirement::Scope(_)
        | Requirement::ScopeOrSelf(_) => {
            return Err(Error::internal(format!(
                "{action:?} is not authorized by organization role"
            )));
        }
    };
    let role = role.ok_or(Error::NotFound(Resource::Organization))?;
    if role.grants(permission) {
        Ok(role)
    } else {
        Err(Error::PermissionDenied(Reason::InsufficientPermission))
    }
}

/// Whether an invitation's `link` is shown: it opens the invitation, so its
/// recipient sees it, and so do members who may manage invitations (they
/// may hand it over themselves); other members see the invitation without.
pub fn may_see_invitation_link(role: Option<Role>, recipient: bool) -> bool {
    recipient || role.is_some_and(|role| role.grants(Permission::InvitationsManage))
}

/// Checks that the caller's token carries the scope `action` requires.
pub fn authorize_scope(caller: &Caller, action: Action) -> Result<(), Error> {
    match action.requirement() {
        Requirement::Scope(scope) if caller.has_scope(scope) => Ok(()),
        Requirement::Scope(_) => Err(Error::PermissionDenied(Reason::MissingScope)),
        Requirement::Authenticated
        | Requirement::Member(_)
        | Requirement::Recipient
        | Requirement::MemberOrRecipient(_)
        | Requirement::ScopeOrSelf(_) => Err(Error::internal(format!(
            "{action:?} is not authorized by scope"
        ))),
    }
}

/// Checks that the caller may ask `action` about `subject`: with the scope
/// the action names, about anyone; without it, only about themself.
pub fn authorize_subject(caller: &Caller, action: Action, subject: &UserId) -> Result<(), Error> {
    match action.requirement() {
        Requirement::ScopeOrSelf(scope) if caller.has_scope(scope) => Ok(()),
        Requirement::ScopeOrSelf(_) if *subject == caller.user_id => Ok(()),
        Requirement::ScopeOrSelf(_) => Err(Error::PermissionDenied(Reason::OnlyOwnPermissions)),
        Requirement::Authenticated
        | Requirement::Member(_)
        | Requirement::Recipient
        | Requirement::MemberOrRecipient(_)
        | Requirement::Scope(_) => Err(Error::internal(format!(
            "{action:?} is not authorized by subject"
        ))),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn paths_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::from_path(&action.path()), Some(*action));
        }
        assert_eq!(
            Action::from_path("/roster.v1.OrganizationService/Nope"),
            None
        );
        assert_eq!(Action::from_path("garbage"), None);
    }

    #[test]
    fn non_members_see_nothing_and_members_only_what_their_role_grants() {
        assert!(matches!(
            authorize(Action::GetOrganization, None),
            Err(Error::NotFound(Resource::Organization))
        ));
        assert!(authorize(Action::GetOrganization, Some(Role::Member)).is_ok());
        assert!(matches!(
            authorize(Action::UpdateOrganization, Some(Role::Member)),
            Err(Error::PermissionDenied(_))
        ));
        assert!(authorize(Action::UpdateOrganization, Some(Role::Admin)).is_ok());
        assert!(authorize(Action::DeleteOrganization, Some(Role::Admin)).is_err());
        assert!(authorize(Action::TransferOwnership, Some(Role::Admin)).is_err());
        assert!(authorize(Action::TransferOwnership, Some(Role::Owner)).is_ok());
    }
}
