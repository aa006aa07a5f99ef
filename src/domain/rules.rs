//! Membership invariants as plain functions of roles and counts. The caller
//! (a use-case) gathers the counts inside a transaction that holds the
//! organization's lock, so the answer cannot go stale before the write.

use super::{Error, Reason, model::Role, permission::Permission};

/// May `actor` move a member from `current` to `new`? Only owners touch owners.
pub fn check_role_change(actor: Role, current: Role, new: Role) -> Result<(), Error> {
    check_touches_owner(actor, current == Role::Owner || new == Role::Owner)
}

/// May `actor` remove a member who holds `target`? Only owners remove owners.
pub fn check_removal(actor: Role, target: Role) -> Result<(), Error> {
    check_touches_owner(actor, target == Role::Owner)
}

fn check_touches_owner(actor: Role, touches_owner: bool) -> Result<(), Error> {
    if touches_owner && !actor.grants(Permission::OwnersManage) {
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

/// Limits a deployment sets (every limit is configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Organizations one user may own.
    pub max_owned_organizations: u64,
    /// Seats per organization: members plus pending invitations.
    pub max_members_per_organization: u64,
    /// Pending invitations per organization.
    pub max_pending_invitations_per_organization: u64,
}

/// What an organization's seats hold now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatUsage {
    pub members: u64,
    /// Pending invitations that have not expired.
    pub pending: u64,
}

/// Pending invitations within their limit, and members plus pending
/// invitations within the seats.
pub fn check_seats(limits: &Limits, usage: SeatUsage) -> Result<(), Error> {
    if usage.pending > limits.max_pending_invitations_per_organization {
        return Err(Error::ResourceExhausted(Reason::InvitationLimit));
    }
    if usage.members + usage.pending > limits.max_members_per_organization {
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
        assert!(check_role_change(Role::Admin, Role::Member, Role::Admin).is_ok());
        assert!(check_role_change(Role::Admin, Role::Member, Role::Owner).is_err());
        assert!(check_role_change(Role::Admin, Role::Owner, Role::Admin).is_err());
        assert!(check_role_change(Role::Owner, Role::Owner, Role::Admin).is_ok());
        assert!(check_removal(Role::Admin, Role::Owner).is_err());
        assert!(check_removal(Role::Admin, Role::Admin).is_ok());
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
        assert!(check_seats(&LIMITS, usage(2, 3)).is_ok());
        assert!(matches!(
            check_seats(&LIMITS, usage(1, 4)),
            Err(Error::ResourceExhausted(Reason::InvitationLimit))
        ));
        assert!(matches!(
            check_seats(&LIMITS, usage(3, 3)),
            Err(Error::ResourceExhausted(Reason::MembershipLimit))
        ));
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
