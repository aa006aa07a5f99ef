//! Membership invariants as plain functions of roles and counts. The caller
//! (a use-case) gathers the counts inside a transaction that holds the
//! organization's lock, so the answer cannot go stale before the write.

use super::{
    Error, Reason,
    model::{LimitOverrides, Role},
    permission::Permission,
};

/// Who makes a change to an organization's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// One of its members, with this role.
    Member(Role),
    /// A platform administrator (a service principal with
    /// `organizations.admin`): never a member, and not bound by the rule
    /// that only owners touch owners. The last-owner rule binds it as it
    /// binds everyone.
    Administrator,
}

impl Actor {
    fn manages_owners(self) -> bool {
        match self {
            Actor::Member(role) => role.grants(Permission::OwnersManage),
            Actor::Administrator => true,
        }
    }
}

/// May `actor` move a member from `current` to `new`? Only owners (and
/// administrators) touch owners.
pub fn check_role_change(actor: Actor, current: Role, new: Role) -> Result<(), Error> {
    check_touches_owner(actor, current == Role::Owner || new == Role::Owner)
}

/// May `actor` remove a member who holds `target`? Only owners (and
/// administrators) remove owners.
pub fn check_removal(actor: Actor, target: Role) -> Result<(), Error> {
    check_touches_owner(actor, target == Role::Owner)
}

fn check_touches_owner(actor: Actor, touches_owner: bool) -> Result<(), Error> {
    if touches_owner && !actor.manages_owners() {
        return Err(Error::PermissionDenied(Reason::OwnerRoleRequired));
    }
    Ok(())
}

/// How an owner stops being one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerLoss {
    /// Another member demotes or removes them.
    ByAnother,
    /// They leave, or remove themselves.
    OnTheirOwn,
}

/// An organization always keeps at least one owner: may one of its `owners`
/// (the number of owners now) stop being one? The reason differs so the
/// portal can tell an owner leaving on their own what to do.
pub fn check_owner_remains(owners: u64, loss: OwnerLoss) -> Result<(), Error> {
    if owners <= 1 {
        let reason = match loss {
            OwnerLoss::OnTheirOwn => Reason::OnlyOwnerCannotLeave,
            OwnerLoss::ByAnother => Reason::NoOwnerLeft,
        };
        return Err(Error::FailedPrecondition(reason));
    }
    Ok(())
}

/// What erasing a member does to one of their organizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// They are its only member: the organization goes with them.
    DeleteOrganization,
    /// They are its last owner and others remain: a new owner must be
    /// named before they leave.
    HandOver,
    /// Another owner stays (or they are not an owner): they just leave.
    Leave,
}

/// How a member who holds `role` leaves an organization with `members`
/// members of whom `owners` are owners, when they are erased.
pub fn departure(role: Role, members: u64, owners: u64) -> Departure {
    if members <= 1 {
        Departure::DeleteOrganization
    } else if role == Role::Owner && owners <= 1 {
        Departure::HandOver
    } else {
        Departure::Leave
    }
}

/// Limits a deployment sets (every limit is configurable); an
/// organization's own [`LimitOverrides`] replace the per-organization ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Organizations one user may own.
    pub max_owned_organizations: u64,
    /// Seats per organization: members plus pending invitations.
    pub max_members_per_organization: u64,
    /// Pending invitations per organization.
    pub max_pending_invitations_per_organization: u64,
}

/// The largest seat or pending-invitation limit an organization may be given.
pub const MAX_ORGANIZATION_LIMIT: u64 = 1_000_000;

/// The limits that hold for one organization: its own where set, the
/// server's otherwise, each with whether it is the organization's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrganizationLimits {
    pub max_members: u64,
    pub max_members_overridden: bool,
    pub max_pending_invitations: u64,
    pub max_pending_invitations_overridden: bool,
}

impl Limits {
    /// The limits that hold for an organization with `overrides`.
    pub fn for_organization(&self, overrides: &LimitOverrides) -> OrganizationLimits {
        OrganizationLimits {
            max_members: overrides
                .max_members
                .unwrap_or(self.max_members_per_organization),
            max_members_overridden: overrides.max_members.is_some(),
            max_pending_invitations: overrides
                .max_pending_invitations
                .unwrap_or(self.max_pending_invitations_per_organization),
            max_pending_invitations_overridden: overrides.max_pending_invitations.is_some(),
        }
    }
}

/// What an organization's seats hold now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatUsage {
    pub members: u64,
    /// Pending invitations that have not expired.
    pub pending: u64,
}

/// Pending invitations within their limit, and members plus pending
/// invitations within the seats, of an organization with `overrides`
/// (its own limits replace the server's).
pub fn check_seats(
    limits: &Limits,
    overrides: &LimitOverrides,
    usage: SeatUsage,
) -> Result<(), Error> {
    let limits = limits.for_organization(overrides);
    if usage.pending > limits.max_pending_invitations {
        return Err(Error::ResourceExhausted(Reason::InvitationLimit));
    }
    if usage.members + usage.pending > limits.max_members {
        return Err(Error::ResourceExhausted(Reason::MembershipLimit));
    }
    Ok(())
}

/// May a user who owns `owned` organizations create (and so own) another?
pub fn check_may_own_another(limits: &Limits, owned: u64) -> Result<(), Error> {
    if owned >= limits.max_owned_organizations {
        return Err(Error::ResourceExhausted(Reason::OrganizationLimit));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_touch_owners() {
        let (owner, admin) = (Actor::Member(Role::Owner), Actor::Member(Role::Admin));
        assert!(check_role_change(admin, Role::Member, Role::Admin).is_ok());
        assert!(check_role_change(admin, Role::Member, Role::Owner).is_err());
        assert!(check_role_change(admin, Role::Owner, Role::Admin).is_err());
        assert!(check_role_change(owner, Role::Owner, Role::Admin).is_ok());
        assert!(check_removal(admin, Role::Owner).is_err());
        assert!(check_removal(admin, Role::Admin).is_ok());
        // A platform administrator may touch owners.
        assert!(check_role_change(Actor::Administrator, Role::Member, Role::Owner).is_ok());
        assert!(check_removal(Actor::Administrator, Role::Owner).is_ok());
    }

    #[test]
    fn the_last_owner_stays() {
        assert!(matches!(
            check_owner_remains(1, OwnerLoss::ByAnother),
            Err(Error::FailedPrecondition(Reason::NoOwnerLeft))
        ));
        assert!(check_owner_remains(2, OwnerLoss::OnTheirOwn).is_ok());
        assert!(matches!(
            check_owner_remains(1, OwnerLoss::OnTheirOwn),
            Err(Error::FailedPrecondition(Reason::OnlyOwnerCannotLeave))
        ));
    }

    const LIMITS: Limits = Limits {
        max_owned_organizations: 2,
        max_members_per_organization: 5,
        max_pending_invitations_per_organization: 3,
    };

    #[test]
    fn seats_count_members_and_pending_invitations() {
        let usage = |members, pending| SeatUsage { members, pending };
        let none = LimitOverrides::default();
        assert!(check_seats(&LIMITS, &none, usage(2, 3)).is_ok());
        assert!(matches!(
            check_seats(&LIMITS, &none, usage(1, 4)),
            Err(Error::ResourceExhausted(Reason::InvitationLimit))
        ));
        assert!(matches!(
            check_seats(&LIMITS, &none, usage(3, 3)),
            Err(Error::ResourceExhausted(Reason::MembershipLimit))
        ));
    }

    #[test]
    fn an_organizations_own_limits_replace_the_servers() {
        let usage = |members, pending| SeatUsage { members, pending };
        let own = LimitOverrides {
            max_members: Some(2),
            max_pending_invitations: None,
        };
        assert!(check_seats(&LIMITS, &own, usage(1, 1)).is_ok());
        assert!(matches!(
            check_seats(&LIMITS, &own, usage(2, 1)),
            Err(Error::ResourceExhausted(Reason::MembershipLimit))
        ));
        let more = LimitOverrides {
            max_members: Some(50),
            max_pending_invitations: Some(10),
        };
        assert!(check_seats(&LIMITS, &more, usage(20, 10)).is_ok());
        assert!(matches!(
            check_seats(&LIMITS, &more, usage(1, 11)),
            Err(Error::ResourceExhausted(Reason::InvitationLimit))
        ));
        let shown = LIMITS.for_organization(&own);
        assert_eq!((shown.max_members, shown.max_members_overridden), (2, true));
        assert_eq!(
            (
                shown.max_pending_invitations,
                shown.max_pending_invitations_overridden
            ),
            (3, false)
        );
    }

    #[test]
    fn owned_organizations_are_limited() {
        assert!(check_may_own_another(&LIMITS, 1).is_ok());
        assert!(matches!(
            check_may_own_another(&LIMITS, 2),
            Err(Error::ResourceExhausted(Reason::OrganizationLimit))
        ));
    }
}
