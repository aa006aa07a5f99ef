//! What every RPC requires, in one table.
//!
//! [`Action`] has one variant per RPC roster serves (a test walks the
//! served descriptors and fails if one is missing here), and
//! [`Action::requirement`] says, without a wildcard, what the caller must
//! be. Use-cases call [`authorize`] with the caller's role in the target
//! organization; no handler compares roles itself.

use super::Caller;
use crate::domain::{
    Error, Reason, Resource,
    ids::UserId,
    input::Email,
    model::{Invitation, Role},
    permission::Permission,
};

/// What a person calling an RPC must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Any signed-in person; the call acts only on the caller's own data.
    Authenticated,
    /// A member of the target organization whose role grants the permission.
    Member(Permission),
    /// The recipient of the target invitation (verified email equal to its address).
    Recipient,
    /// Either of the above: a member with the permission, or the recipient.
    MemberOrRecipient(Permission),
    /// No person: only service principals (with the scope of [`ServiceAccess`]).
    ServicesOnly,
    /// A person asking about themself, refused about others with this
    /// reason (services: about anyone, with the scope).
    OnlySelf(Reason),
}

/// What a service principal calling an RPC must hold. A service is not a
/// person: it is never a member, never owns, joins or is invited to an
/// organization, and reaches an RPC only through a scope named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAccess {
    /// People only: refused to every service principal.
    Refused,
    /// Open to service principals whose token carries this scope.
    Scope(&'static str),
}

/// Scope of services that check other users' permissions.
pub const AUTHZ_CHECK: &str = "authz.check";

/// Scope of service principals that follow the change log (the Provider Portal).
pub const EVENTS_READ: &str = "events.read";

/// Scope of services that read any organization, its members and
/// invitations, and any user's organizations.
pub const ORGANIZATIONS_READ: &str = "organizations.read";

/// Scope of platform administrators: list and search every organization,
/// create one for a user, add members directly, change any role, remove
/// any member, delete any organization, set an organization's own limits,
/// erase a person (`EraseUser`). It includes everything [`ORGANIZATIONS_READ`] opens ([`IMPLIED_SCOPES`]).
pub const ORGANIZATIONS_ADMIN: &str = "organizations.admin";

/// Scopes that include others: a token with the first holds the second
/// too, wherever the policy table names the second.
pub const IMPLIED_SCOPES: &[(&str, &str)] = &[(ORGANIZATIONS_ADMIN, ORGANIZATIONS_READ)];

/// Whether `caller` holds `scope`: carries it, or one that implies it.
pub fn holds_scope(caller: &Caller, scope: &str) -> bool {
    caller.has_scope(scope)
        || IMPLIED_SCOPES
            .iter()
            .any(|(wider, implied)| *implied == scope && caller.has_scope(wider))
}

/// Every scope roster grants. A token carrying one of them is a service
/// principal's; other scopes (an identity provider's `openid email`) are
/// not roster's and leave a person a person.
pub const SERVICE_SCOPES: &[&str] = &[
    AUTHZ_CHECK,
    EVENTS_READ,
    ORGANIZATIONS_READ,
    ORGANIZATIONS_ADMIN,
];

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
        SetOrganizationLimits,
        SuspendOrganization, ResumeOrganization, RestoreOrganization,
    }
    "roster.v1.MembershipService" => {
        ListMembers, GetMember, UpdateMemberRole, RemoveMember, LeaveOrganization,
        TransferOwnership, CreateInvitation, GetInvitation, ListInvitations, ListMyInvitations,
        AcceptInvitation, RejectInvitation, CancelInvitation, ResendInvitation, EraseUser,
        AddMember,
    }
    "roster.v1.EventService" => {
        StreamEvents, ListEvents, ListAuditEvents,
    }
    "roster.v1.AuthorizationService" => {
        CheckPermission, BatchCheckPermissions, LookupOrganizations, LookupUsers,
    }
}

impl Action {
    /// The policy table: what a person must be, and what a service
    /// principal must hold, for each RPC. A service holds a scope it
    /// carries, or one that implies it ([`IMPLIED_SCOPES`]): an
    /// administrator reaches every `Scope(ORGANIZATIONS_READ)` row too.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn rule(self) -> (Requirement, ServiceAccess) {
        use Permission as P;
        use Reason::{OnlyOwnOrganizations, OnlyOwnPermissions};
        use Requirement::{
            Authenticated, Member, MemberOrRecipient, OnlySelf, Recipient, ServicesOnly,
        };
        use ServiceAccess::{Refused, Scope};
        match self {
            // Administrators create organizations for a user (`owner`).
            Action::CreateOrganization => (Authenticated, Scope(ORGANIZATIONS_ADMIN)),
            Action::GetOrganization => (Member(P::OrganizationRead), Scope(ORGANIZATIONS_READ)),
            Action::ListOrganizations => {
                (OnlySelf(OnlyOwnOrganizations), Scope(ORGANIZATIONS_READ))
            }
            Action::UpdateOrganization => (Member(P::OrganizationUpdate), Refused),
            Action::DeleteOrganization => {
                (Member(P::OrganizationDelete), Scope(ORGANIZATIONS_ADMIN))
            }
            Action::CheckSlug => (Authenticated, Refused),
            Action::SetActiveOrganization => (Member(P::OrganizationRead), Refused),
            Action::GetActiveOrganization => (Authenticated, Refused),
            Action::SetOrganizationLimits => (ServicesOnly, Scope(ORGANIZATIONS_ADMIN)),
            Action::ListMembers => (Member(P::MembersRead), Scope(ORGANIZATIONS_READ)),
            Action::GetMember => (Member(P::MembersRead), Scope(ORGANIZATIONS_READ)),
            // Administrators change any role, the owner role included.
            Action::UpdateMemberRole => (Member(P::MembersManage), Scope(ORGANIZATIONS_ADMIN)),
            Action::RemoveMember => (Member(P::MembersManage), Scope(ORGANIZATIONS_ADMIN)),
            // Any member may leave (owners only if another owner stays).
            Action::LeaveOrganization => (Member(P::OrganizationRead), Refused),
            Action::TransferOwnership => (Member(P::OwnersManage), Refused),
            Action::CreateInvitation => (Member(P::InvitationsManage), Refused),
            Action::GetInvitation => (
                MemberOrRecipient(P::InvitationsRead),
                Scope(ORGANIZATIONS_READ),
            ),
            Action::ListInvitations => (Member(P::InvitationsRead), Scope(ORGANIZATIONS_READ)),
            Action::ListMyInvitations => (Authenticated, Refused),
            Action::AcceptInvitation => (Recipient, Refused),
            Action::RejectInvitation => (Recipient, Refused),
            Action::CancelInvitation => (Member(P::InvitationsManage), Refused),
            Action::ResendInvitation => (Member(P::InvitationsManage), Refused),
            Action::EraseUser => (ServicesOnly, Scope(ORGANIZATIONS_ADMIN)),
            // People join through invitations; administrators add directly.
            Action::AddMember => (ServicesOnly, Scope(ORGANIZATIONS_ADMIN)),
            Action::StreamEvents => (ServicesOnly, Scope(EVENTS_READ)),
            Action::ListEvents => (ServicesOnly, Scope(EVENTS_READ)),
            Action::ListAuditEvents => (Member(P::AuditRead), Refused),
            Action::CheckPermission => (OnlySelf(OnlyOwnPermissions), Scope(AUTHZ_CHECK)),
            Action::BatchCheckPermissions => (OnlySelf(OnlyOwnPermissions), Scope(AUTHZ_CHECK)),
            Action::LookupOrganizations => (OnlySelf(OnlyOwnPermissions), Scope(AUTHZ_CHECK)),
            Action::LookupUsers => (ServicesOnly, Scope(AUTHZ_CHECK)),
            Action::SuspendOrganization => (ServicesOnly, Scope(ORGANIZATIONS_ADMIN)),
            Action::ResumeOrganization => (ServicesOnly, Scope(ORGANIZATIONS_ADMIN)),
            // Whoever may delete (its owners) may take the deletion back.
            Action::RestoreOrganization => {
                (Member(P::OrganizationDelete), Scope(ORGANIZATIONS_ADMIN))
            }
        }
    }

    /// What a person calling this RPC must be.
    pub fn requirement(self) -> Requirement {
        self.rule().0
    }

    /// What a service principal calling this RPC must hold.
    pub fn service_access(self) -> ServiceAccess {
        self.rule().1
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

/// Whether `action` changes the organization it names (its settings, its
/// members or its invitations): what a suspended organization refuses
/// (`FAILED_PRECONDITION` `ORGANIZATION_SUSPENDED`). Choosing one's active
/// organization changes the caller, not the organization; the lifecycle
/// RPCs are what suspends and restores, and decide their own preconditions.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn writes_organization(action: Action) -> bool {
    match action {
        Action::UpdateOrganization
        | Action::DeleteOrganization
        | Action::UpdateMemberRole
        | Action::RemoveMember
        | Action::LeaveOrganization
        | Action::TransferOwnership
        | Action::CreateInvitation
        | Action::AcceptInvitation
        | Action::RejectInvitation
        | Action::CancelInvitation
        | Action::ResendInvitation
        | Action::AddMember
        | Action::SetOrganizationLimits => true,
        Action::CreateOrganization
        | Action::GetOrganization
        | Action::ListOrganizations
        | Action::CheckSlug
        | Action::SetActiveOrganization
        | Action::GetActiveOrganization
        | Action::SuspendOrganization
        | Action::ResumeOrganization
        | Action::RestoreOrganization
        | Action::ListMembers
        | Action::GetMember
        | Action::GetInvitation
        | Action::ListInvitations
        | Action::ListMyInvitations
        | Action::StreamEvents
        | Action::ListEvents
        | Action::ListAuditEvents
        | Action::CheckPermission
        | Action::BatchCheckPermissions
        | Action::LookupOrganizations
        | Action::LookupUsers
        // Acts on a person, across organizations, with rules of its own.
        | Action::EraseUser => false,
    }
}

/// The first check of every call, made by the auth layer before any
/// handler runs: a service principal reaches only the RPCs its scopes open
/// (and a person none that only services may call). What a person may do
/// in an organization is decided later, by the use-case, with their role.
pub fn admit(caller: &Caller, action: Action) -> Result<(), Error> {
    if caller.is_service() {
        return authorize_scope(caller, action);
    }
    match action.requirement() {
        Requirement::ServicesOnly => Err(Error::PermissionDenied(Reason::MissingScope)),
        Requirement::Authenticated
        | Requirement::Member(_)
        | Requirement::Recipient
        | Requirement::MemberOrRecipient(_)
        | Requirement::OnlySelf(_) => Ok(()),
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
        | Requirement::ServicesOnly
        | Requirement::OnlySelf(_) => {
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

/// How the caller stands to an invitation [`authorize_recipient`] let them see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Its recipient, with a verified email.
    Recipient,
    /// Anyone else: a [`Requirement::MemberOrRecipient`] action goes on to
    /// [`authorize`] with the caller's role in the invitation's organization.
    Other,
}

/// Checks the recipient half of `action`'s requirement against the
/// invitation the request named (`found`: `None` if there is none), and
/// hands it back with how the caller stands to it.
///
/// - [`Requirement::Recipient`] (accept, reject): the caller's email must be
///   verified, and that is checked first, whatever was found: a caller whose
///   unverified email names the invitation's address gets the answer a
///   random id gets, or the refusal would tell them that an invitation to
///   that address exists. An invitation addressed to someone else is
///   answered exactly as an id that does not exist (`NOT_FOUND`): telling
///   the two apart would let anyone probe which invitation ids exist.
/// - [`Requirement::MemberOrRecipient`] (get): its recipient must have a
///   verified email; anyone else is [`Standing::Other`].
pub fn authorize_recipient(
    caller: &Caller,
    action: Action,
    found: Option<Invitation>,
) -> Result<(Invitation, Standing), Error> {
    let not_found = || Error::NotFound(Resource::Invitation);
    match action.requirement() {
        Requirement::Recipient => {
            caller.verified_email()?;
            let invitation = found
                .filter(|invitation| is_recipient(caller, invitation))
                .ok_or_else(not_found)?;
            Ok((invitation, Standing::Recipient))
        }
        Requirement::MemberOrRecipient(_) => {
            let invitation = found.ok_or_else(not_found)?;
            if !is_recipient(caller, &invitation) {
                return Ok((invitation, Standing::Other));
            }
            caller.verified_email()?;
            Ok((invitation, Standing::Recipient))
        }
        Requirement::Authenticated
        | Requirement::Member(_)
        | Requirement::ServicesOnly
        | Requirement::OnlySelf(_) => Err(Error::internal(format!(
            "{action:?} is not authorized by recipient"
        ))),
    }
}

/// Whether the caller's token names the invitation's address (verified or
/// not). A service principal never is the person an invitation is for,
/// whatever email its token carries.
fn is_recipient(caller: &Caller, invitation: &Invitation) -> bool {
    !caller.is_service()
        && caller
            .email
            .as_deref()
            .is_some_and(|email| Email::fold(email) == Email::fold(&invitation.email))
}

/// Whether an invitation's `link` is shown: it opens the invitation, so its
/// recipient sees it, and so do members who may manage invitations (they
/// may hand it over themselves); other members see the invitation without.
pub fn may_see_invitation_link(role: Option<Role>, recipient: bool) -> bool {
    recipient || role.is_some_and(|role| role.grants(Permission::InvitationsManage))
}

/// Whether the caller sees an organization's limits: platform
/// administrators, and members who may invite (owners and admins), whom
/// the limits bind.
pub fn may_see_limits(caller: &Caller, role: Option<Role>) -> bool {
    if caller.is_service() {
        return holds_scope(caller, ORGANIZATIONS_ADMIN);
    }
    role.is_some_and(|role| role.grants(Permission::InvitationsManage))
}

/// Whether the caller is a platform administrator: a service principal
/// whose token carries `organizations.admin`. The use-cases that act for
/// one differ (an organization created for another user, every
/// organization listed) ask this, not the scope list.
pub fn is_administrator(caller: &Caller) -> bool {
    caller.is_service() && holds_scope(caller, ORGANIZATIONS_ADMIN)
}

/// Checks that the caller is a service principal whose token carries the
/// scope `action` opens to services (a person never does).
pub fn authorize_scope(caller: &Caller, action: Action) -> Result<(), Error> {
    match action.service_access() {
        ServiceAccess::Scope(scope) if caller.is_service() && holds_scope(caller, scope) => Ok(()),
        ServiceAccess::Scope(_) => Err(Error::PermissionDenied(Reason::MissingScope)),
        ServiceAccess::Refused => Err(Error::PermissionDenied(Reason::PeopleOnly)),
    }
}

/// Checks that the caller may ask `action` about `subject`: a service
/// with the scope the action opens, about anyone; a person, only about
/// themself.
pub fn authorize_subject(caller: &Caller, action: Action, subject: &UserId) -> Result<(), Error> {
    if caller.is_service() {
        return authorize_scope(caller, action);
    }
    match action.requirement() {
        Requirement::OnlySelf(_) if *subject == caller.user_id => Ok(()),
        Requirement::OnlySelf(reason) => Err(Error::PermissionDenied(reason)),
        Requirement::Authenticated
        | Requirement::Member(_)
        | Requirement::Recipient
        | Requirement::MemberOrRecipient(_)
        | Requirement::ServicesOnly => Err(Error::internal(format!(
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

    fn caller(scopes: &[&str]) -> Caller {
        Caller {
            user_id: UserId::from_trusted("someone".into()),
            email: Some("someone@example.com".into()),
            email_unusable: false,
            email_verified: true,
            name: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            organizations: None,
            acting_party: None,
        }
    }

    #[test]
    fn a_service_reaches_only_what_its_scopes_open_and_a_person_what_people_may() {
        let person = caller(&["openid", "email"]);
        assert!(!person.is_service());
        for scope in SERVICE_SCOPES {
            let service = caller(&[scope]);
            assert!(service.is_service(), "{scope}");
            for action in Action::ALL.iter().copied() {
                let opened = match action.service_access() {
                    ServiceAccess::Scope(needed) => {
                        needed == *scope || IMPLIED_SCOPES.contains(&(*scope, needed))
                    }
                    ServiceAccess::Refused => false,
                };
                assert_eq!(
                    admit(&service, action).is_ok(),
                    opened,
                    "{scope} {action:?}"
                );
            }
        }
        for action in Action::ALL.iter().copied() {
            let for_people = action.requirement() != Requirement::ServicesOnly;
            assert_eq!(admit(&person, action).is_ok(), for_people, "{action:?}");
        }
        assert!(matches!(
            admit(&caller(&[AUTHZ_CHECK]), Action::SetActiveOrganization),
            Err(Error::PermissionDenied(Reason::PeopleOnly))
        ));
        // Only an administrator creates organizations among services.
        assert!(matches!(
            admit(&caller(&[AUTHZ_CHECK]), Action::CreateOrganization),
            Err(Error::PermissionDenied(Reason::MissingScope))
        ));
        assert!(matches!(
            admit(&caller(&[AUTHZ_CHECK]), Action::ListEvents),
            Err(Error::PermissionDenied(Reason::MissingScope))
        ));
        // An administrator reads what a reader reads, and a reader does
        // not administer.
        assert!(admit(&caller(&[ORGANIZATIONS_ADMIN]), Action::ListMembers).is_ok());
        assert!(matches!(
            admit(&caller(&[ORGANIZATIONS_READ]), Action::AddMember),
            Err(Error::PermissionDenied(Reason::MissingScope))
        ));
    }

    fn invitation_to(email: &str) -> Invitation {
        let now = crate::domain::now();
        Invitation {
            id: crate::domain::ids::InvitationId::new(),
            organization_id: crate::domain::ids::OrganizationId::new(),
            organization_name: "Acme".into(),
            organization_slug: "acme".into(),
            email: email.into(),
            role: Role::Member,
            stored_state: crate::domain::model::InvitationState::Pending,
            inviter_id: UserId::from_trusted("inviter".into()),
            expires_at: now,
            created_at: now,
            updated_at: now,
            delivery: crate::domain::model::InvitationDelivery::Email,
            source_id: None,
            link: None,
        }
    }

    fn outcome(result: Result<(Invitation, Standing), Error>) -> Result<Standing, String> {
        result
            .map(|(_, standing)| standing)
            .map_err(|err| match err {
                Error::NotFound(resource) => resource.reason().to_owned(),
                Error::FailedPrecondition(reason) => reason.as_str().to_owned(),
                other => other.to_string(),
            })
    }

    #[test]
    fn the_verified_recipient_answers_and_reads_and_others_learn_nothing() {
        const GONE: &str = "INVITATION_NOT_FOUND";
        const VERIFY: &str = "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION";
        let recipient = caller(&[]);
        let unverified = Caller {
            email_verified: false,
            ..caller(&[])
        };
        // A service is never the recipient, whatever its token's email.
        let service = caller(&[ORGANIZATIONS_READ]);
        // An invitation to the caller's address (written otherwise), one to
        // someone else, and none.
        let found = |which: usize| {
            [" SomeOne@Example.com", "else@example.com"]
                .get(which)
                .map(|email| invitation_to(email))
        };
        let (me, other) = (Ok(Standing::Recipient), Ok(Standing::Other));
        let gone = || Err(GONE.to_owned());
        let verify = || Err(VERIFY.to_owned());
        // Unverified, accepting or rejecting: the same answer for an
        // invitation to them, to someone else, and for none at all.
        let answering = [
            (&recipient, [me.clone(), gone(), gone()]),
            (&unverified, [verify(), verify(), verify()]),
            (&service, [gone(), gone(), gone()]),
        ];
        let reading = [
            (&recipient, [me.clone(), other.clone(), gone()]),
            (&unverified, [verify(), other.clone(), gone()]),
            (&service, [other.clone(), other, gone()]),
        ];
        for (action, table) in [
            (Action::AcceptInvitation, &answering),
            (Action::RejectInvitation, &answering),
            (Action::GetInvitation, &reading),
        ] {
            for (caller, wants) in table {
                for (which, want) in wants.iter().enumerate() {
                    let got = outcome(authorize_recipient(caller, action, found(which)));
                    assert_eq!(&got, want, "{action:?} {which} {caller:?}");
                }
            }
        }
        // Only the recipient RPCs are decided here.
        assert!(matches!(
            authorize_recipient(&recipient, Action::ListInvitations, found(0)),
            Err(Error::Internal(_))
        ));
    }
}
