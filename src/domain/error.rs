//! The one error type of roster's use-cases.
//!
//! Each variant is something a client can act on; the gRPC code for each is
//! chosen in exactly one place, `api::status`. `Reason` is the stable,
//! upper-case name sent in `google.rpc.ErrorInfo.reason`; where the portal's
//! existing backend already has a name for a failure, we use that name, so the
//! portal's messages map one to one.

use strum::{IntoStaticStr, VariantArray};

use super::ids::OrganizationId;

/// Why a request was refused (or a slug is unavailable), as a stable
/// upper-case name: the variant's own name, unless it says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    // Identity
    MissingCredentials,
    InvalidToken,
    InvalidEmailClaim,
    InvalidActClaim,
    // Input
    InvalidArgument,
    // Permission
    InsufficientPermission,
    OwnerRoleRequired,
    MissingScope,
    #[strum(serialize = "CAN_ONLY_CHECK_OWN_PERMISSIONS")]
    OnlyOwnPermissions,
    #[strum(serialize = "CAN_ONLY_LIST_OWN_ORGANIZATIONS")]
    OnlyOwnOrganizations,
    #[strum(serialize = "SERVICE_PRINCIPAL_NOT_ALLOWED")]
    PeopleOnly,
    #[strum(serialize = "TOKEN_LIMITED_TO_ORGANIZATIONS")]
    LimitedToOrganizations,
    // Conflicts
    #[strum(serialize = "ORGANIZATION_SLUG_ALREADY_TAKEN")]
    SlugTaken,
    #[strum(serialize = "USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION")]
    AlreadyMember,
    #[strum(serialize = "USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION")]
    AlreadyInvited,
    // Slugs `CheckSlug` finds unavailable (besides `SlugTaken`)
    SlugInvalid,
    SlugReserved,
    SlugRetained,
    // Preconditions
    #[strum(serialize = "EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION")]
    EmailNotVerified,
    #[strum(serialize = "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER")]
    OnlyOwnerCannotLeave,
    #[strum(serialize = "YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER")]
    NoOwnerLeft,
    InvitationExpired,
    InvitationNotPending,
    OrganizationSuspended,
    OrganizationAlreadySuspended,
    OrganizationNotSuspended,
    OrganizationNotDeleted,
    NewOwnerRequired,
    // Limits
    #[strum(serialize = "YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_ORGANIZATIONS")]
    OrganizationLimit,
    #[strum(serialize = "ORGANIZATION_MEMBERSHIP_LIMIT_REACHED")]
    MembershipLimit,
    #[strum(serialize = "INVITATION_LIMIT_REACHED")]
    InvitationLimit,
    #[strum(serialize = "EVENT_STREAM_LIMIT_REACHED")]
    EventStreamLimit,
    // Concurrency
    EtagMismatch,
    EventStreamFellBehind,
    TransactionConflict,
    // The server itself
    ServerOverloaded,
    ShuttingDown,
    DeadlineExceeded,
    DatabaseUnavailable,
}

impl Reason {
    /// The name clients match on. Never change one: add a new one.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A sentence for people reading the error.
    pub fn message(self) -> &'static str {
        match self {
            Reason::MissingCredentials => "an `authorization: Bearer <token>` header is required",
            Reason::InvalidToken => "the bearer token is invalid or expired",
            Reason::InvalidEmailClaim => {
                "the token's email claim is longer than 254 characters or contains control \
                 characters; roster cannot use it"
            }
            Reason::InvalidActClaim => {
                "the token's act claim (RFC 8693) must be an object whose sub is a non-empty \
                 string of at most 255 characters without control characters, and whose nested \
                 act, if any, is one too"
            }
            Reason::InvalidArgument => "the request has invalid fields",
            Reason::InsufficientPermission => "your role in this organization does not allow this",
            Reason::OwnerRoleRequired => "only owners may grant, take or act on the owner role",
            Reason::MissingScope => "this service principal lacks the scope this call needs",
            Reason::OnlyOwnPermissions => {
                "without the authz.check scope, a caller may check only their own permissions"
            }
            Reason::OnlyOwnOrganizations => {
                "without the organizations.read scope, a caller may list only their own \
                 organizations"
            }
            Reason::PeopleOnly => {
                "this call acts for a signed-in person; a service principal is never a member \
                 and acts on organizations only through its scopes"
            }
            Reason::LimitedToOrganizations => {
                "this token is limited to some organizations (its org_id claim) and cannot act \
                 outside them, so it cannot create one"
            }
            Reason::SlugTaken => "organization slug already taken",
            Reason::AlreadyMember => "user is already a member of this organization",
            Reason::AlreadyInvited => "user is already invited to this organization",
            Reason::SlugInvalid => "the slug breaks the slug rules",
            Reason::SlugReserved => "this slug is reserved",
            Reason::SlugRetained => {
                "an organization was renamed from this slug recently; its old links still lead \
                 to it, so the slug is not available yet"
            }
            Reason::EmailNotVerified => {
                "email verification required before accepting or rejecting an invitation"
            }
            Reason::OnlyOwnerCannotLeave => "you cannot leave the organization as the only owner",
            Reason::NoOwnerLeft => "the organization would be left without an owner",
            Reason::InvitationExpired => "the invitation has expired",
            Reason::InvitationNotPending => "the invitation has already been answered or withdrawn",
            Reason::OrganizationSuspended => {
                "the organization is suspended by a platform administrator: it can be read, \
                 but not changed"
            }
            Reason::OrganizationAlreadySuspended => "the organization is already suspended",
            Reason::OrganizationNotSuspended => "the organization is not suspended",
            Reason::OrganizationNotDeleted => {
                "the organization is not deleted; only a deleted organization can be restored"
            }
            Reason::NewOwnerRequired => {
                "the user is the last owner of organizations that have other members; name a \
                 new owner for each of them"
            }
            Reason::OrganizationLimit => "you have reached the maximum number of organizations",
            Reason::MembershipLimit => "the organization has reached its member limit",
            Reason::InvitationLimit => "the organization has reached its pending invitation limit",
            Reason::EventStreamLimit => {
                "the server has as many event streams open as it allows; retry with backoff \
                 (or on another replica), or page with ListEvents"
            }
            Reason::EtagMismatch => "the resource changed since it was read; read it again",
            Reason::EventStreamFellBehind => {
                "the stream was ended because its client did not keep up and its buffer \
                 filled; resume from the last cursor received"
            }
            Reason::TransactionConflict => {
                "the write collided with a concurrent one (a deadlock or serialization \
                 failure) and was rolled back with nothing changed; retry it"
            }
            Reason::ServerOverloaded => {
                "the server is at its concurrency limit; retry with backoff"
            }
            Reason::ShuttingDown => "the server is shutting down; retry on another replica",
            Reason::DeadlineExceeded => "the call did not finish within its deadline",
            Reason::DatabaseUnavailable => {
                "the database cannot be reached or used right now; retry with backoff"
            }
        }
    }
}

/// What a `NotFound` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Organization,
    Member,
    Invitation,
}

impl Resource {
    pub fn reason(self) -> &'static str {
        match self {
            Resource::Organization => "ORGANIZATION_NOT_FOUND",
            Resource::Member => "MEMBER_NOT_FOUND",
            Resource::Invitation => "INVITATION_NOT_FOUND",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Resource::Organization => "organization not found",
            Resource::Member => "member not found",
            Resource::Invitation => "invitation not found",
        }
    }
}

/// One bad field of a request and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Everything a use-case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{}", .0.message())]
    Unauthenticated(Reason),
    #[error("{}", .0.message())]
    NotFound(Resource),
    #[error("{}", .0.message())]
    PermissionDenied(Reason),
    #[error("{}", .0.message())]
    AlreadyExists(Reason),
    #[error("{}", .0.message())]
    FailedPrecondition(Reason),
    /// Erasing a user who is the last owner of these organizations, which
    /// have other members, needs a new owner named for each
    /// (`FAILED_PRECONDITION` `NEW_OWNER_REQUIRED`, naming them).
    #[error("{}: {}", Reason::NewOwnerRequired.message(), list(.0))]
    NewOwnerRequired(Vec<OrganizationId>),
    #[error("{}", .0.message())]
    ResourceExhausted(Reason),
    #[error("{}", .0.message())]
    Aborted(Reason),
    #[error("{}", .0.message())]
    Unavailable(Reason),
    #[error("{}", .0.message())]
    DeadlineExceeded(Reason),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(source.into())
    }
}

/// Organization ids, comma-separated.
pub fn list(organizations: &[OrganizationId]) -> String {
    organizations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<FieldViolation> for Error {
    fn from(violation: FieldViolation) -> Self {
        Error::InvalidArgument(vec![violation])
    }
}

/// Checks several fields at once, so one reply names every bad field:
/// `let (name, slug) = all_valid((OrganizationName::parse(..), Slug::parse(..)))?;`
pub fn all_valid<T: AllValid>(results: T) -> Result<T::Output, Error> {
    results.all_valid()
}

/// A tuple of per-field parse results; see [`all_valid`].
pub trait AllValid {
    type Output;
    fn all_valid(self) -> Result<Self::Output, Error>;
}

macro_rules! impl_all_valid {
    ($($name:ident: $ty:ident),+) => {
        impl<$($ty),+> AllValid for ($(Result<$ty, FieldViolation>,)+) {
            type Output = ($($ty,)+);
            fn all_valid(self) -> Result<Self::Output, Error> {
                let ($($name,)+) = self;
                let mut violations = Vec::new();
                $(if let Err(v) = &$name { violations.push(v.clone()); })+
                match ($($name,)+) {
                    ($(Ok($name),)+) => Ok(($($name,)+)),
                    _ => Err(Error::InvalidArgument(violations)),
                }
            }
        }
    };
}

impl_all_valid!(a: A);
impl_all_valid!(a: A, b: B);
impl_all_valid!(a: A, b: B, c: C);
impl_all_valid!(a: A, b: B, c: C, d: D);
impl_all_valid!(a: A, b: B, c: C, d: D, e: E);
impl_all_valid!(a: A, b: B, c: C, d: D, e: E, f: F);
impl_all_valid!(a: A, b: B, c: C, d: D, e: E, f: F, g: G);

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients match on these names and most are derived from the variants'
    /// names: renaming a variant must not rename what clients read.
    #[test]
    fn reason_names_never_change() {
        let names: Vec<&str> = Reason::VARIANTS.iter().map(|r| r.as_str()).collect();
        let pinned = "MISSING_CREDENTIALS INVALID_TOKEN INVALID_EMAIL_CLAIM INVALID_ACT_CLAIM \
            INVALID_ARGUMENT \
            INSUFFICIENT_PERMISSION OWNER_ROLE_REQUIRED MISSING_SCOPE \
            CAN_ONLY_CHECK_OWN_PERMISSIONS CAN_ONLY_LIST_OWN_ORGANIZATIONS \
            SERVICE_PRINCIPAL_NOT_ALLOWED TOKEN_LIMITED_TO_ORGANIZATIONS \
            ORGANIZATION_SLUG_ALREADY_TAKEN \
            USER_IS_ALREADY_A_MEMBER_OF_THIS_ORGANIZATION \
            USER_IS_ALREADY_INVITED_TO_THIS_ORGANIZATION SLUG_INVALID SLUG_RESERVED \
            SLUG_RETAINED \
            EMAIL_VERIFICATION_REQUIRED_BEFORE_ACCEPTING_OR_REJECTING_INVITATION \
            YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER \
            YOU_CANNOT_LEAVE_THE_ORGANIZATION_WITHOUT_AN_OWNER INVITATION_EXPIRED \
            INVITATION_NOT_PENDING ORGANIZATION_SUSPENDED ORGANIZATION_ALREADY_SUSPENDED \
            ORGANIZATION_NOT_SUSPENDED ORGANIZATION_NOT_DELETED NEW_OWNER_REQUIRED \
            YOU_HAVE_REACHED_THE_MAXIMUM_NUMBER_OF_ORGANIZATIONS \
            ORGANIZATION_MEMBERSHIP_LIMIT_REACHED INVITATION_LIMIT_REACHED \
            EVENT_STREAM_LIMIT_REACHED ETAG_MISMATCH EVENT_STREAM_FELL_BEHIND \
            TRANSACTION_CONFLICT SERVER_OVERLOADED SHUTTING_DOWN DEADLINE_EXCEEDED \
            DATABASE_UNAVAILABLE";
        assert_eq!(names.join(" "), pinned);
    }
}
