//! The resources roster keeps, as plain values.

use chrono::{DateTime, Utc};
use strum::{EnumString, IntoStaticStr, VariantArray};

use super::{
    error::FieldViolation,
    identity::Identity,
    ids::{DeveloperId, InvitationId, MembershipId, OrganizationId, UserId},
    lifecycle::Lifecycle,
    logo::Logo,
};

/// A member's role in one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

/// A role an invitation may offer: admin or member (owners are made, not
/// invited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitableRole(Role);

impl InvitableRole {
    /// `role`, if an invitation may offer it.
    pub fn parse(field: &str, role: Role) -> Result<Self, FieldViolation> {
        match role {
            Role::Admin | Role::Member => Ok(Self(role)),
            Role::Owner => Err(FieldViolation::new(
                field,
                "invitations offer ROLE_ADMIN or ROLE_MEMBER only",
            )),
        }
    }

    pub fn role(self) -> Role {
        self.0
    }
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum InvitationState {
    Pending,
    Accepted,
    Rejected,
    Cancelled,
    Expired,
}

/// How an invitation reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, IntoStaticStr, EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum InvitationDelivery {
    /// roster emails the link (and again on every resend).
    #[default]
    Email,
    /// roster sends nothing: the portal hands the link over itself.
    LinkOnly,
}

/// How a membership came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum MembershipSource {
    /// The user created the organization (and so became its owner).
    Creator,
    /// The user accepted an invitation.
    Invitation,
    /// A platform administrator added them (`AddMember`, or
    /// `CreateOrganization` on their behalf).
    Admin,
    /// `roster import` brought the membership over from another system.
    Import,
}

stored_names!(Role, InvitationState, InvitationDelivery, MembershipSource);

/// An organization (and, through `developer_id`, a developer identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub developer_id: DeveloperId,
    pub name: String,
    pub slug: String,
    /// Its logo, without an image's bytes.
    pub logo: Logo,
    /// Bumped by every update; the etag is derived from it.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its developer identity in the Provider Portal. Not part of the etag:
    /// delivery changes it, not the organization's owners.
    pub identity: Identity,
    /// Its own limits, where a platform administrator set them. Not part
    /// of the etag either: owners do not set them.
    pub limits: LimitOverrides,
    /// Active, suspended or deleted (and since when).
    pub lifecycle: Lifecycle,
}

/// An organization's own limits; `None` is the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// Seats: members plus pending invitations.
    pub max_members: Option<u64>,
    /// Pending invitations.
    pub max_pending_invitations: Option<u64>,
}

impl Organization {
    /// The opaque version tag clients pass back to guard an update.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// One person's membership in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: MembershipId,
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    pub source: MembershipSource,
}

/// An organization seen from one of its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOrganization {
    pub organization: Organization,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// An invitation of an email address to an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub organization_id: OrganizationId,
    pub organization_name: String,
    pub organization_slug: String,
    pub email: String,
    pub role: Role,
    /// The state as stored. A stored `Pending` past its expiry *is* expired:
    /// ask [`Invitation::state`], never read this directly to decide.
    pub stored_state: InvitationState,
    pub inviter_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivery: InvitationDelivery,
    /// The id it had in the system it was imported from, if that was not a
    /// UUID (see [`crate::domain::ids::InvitationRef::Source`]).
    pub source_id: Option<String>,
    /// The link that opens it in the portal, for those who may see it (its
    /// recipient, and members who may manage invitations); `None` otherwise.
    pub link: Option<String>,
}

impl Invitation {
    /// The state as everyone sees it at `now`: expiry is applied on read,
    /// without writing, so an expired invitation shows as expired everywhere.
    pub fn state(&self, now: DateTime<Utc>) -> InvitationState {
        match self.stored_state {
            InvitationState::Pending if self.expires_at <= now => InvitationState::Expired,
            state => state,
        }
    }
}

/// What roster knows of a person, from the claims of their latest token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
}

/// Where a slug leads: an organization's current slug, or an old one it
/// retains for a while after a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlugTarget {
    pub organization: OrganizationId,
    /// `None`: the organization's current slug; otherwise an old slug that
    /// resolves to it until then.
    pub retained_until: Option<DateTime<Utc>>,
}

impl SlugTarget {
    /// Whether the slug still leads to the organization at `now`.
    pub fn holds_at(&self, now: DateTime<Utc>) -> bool {
        self.retained_until.is_none_or(|until| until > now)
    }
}
