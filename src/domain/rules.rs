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

/// An organization always keeps at least one owner. `owners` is the number
/// of owners now; `losing_owner` whether the change takes one away.
/// `leaving_self` picks the portal's message for an owner leaving on their own.
pub fn check_owner_remains(
    owners: u64,
    losing_owner: bool,
    leaving_self: bool,
) -> Result<(), Error> {
    if losing_owner && owners <= 1 {
        let reason = if leaving_self {
            Reason::OnlyOwnerCannotLeave
        } else {
            Reason::NoOwnerLeft
        };
        return Err(Error::FailedPrecondition(reason));
    }
    Ok(())
}

/// Invitations offer admin or member only.
pub fn check_invitable(field: &str, role: Role) -> Result<(), Error> {
    if role.is_invitable() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "invitations offer ROLE_ADMIN or ROLE_MEMBER only",
        ))
    }
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
        assert!(check_owner_remains(1, true, false).is_err());
        assert!(check_owner_remains(1, false, false).is_ok());
        assert!(check_owner_remains(2, true, true).is_ok());
        assert!(matches!(
            check_owner_remains(1, true, true),
            Err(Error::FailedPrecondition(Reason::OnlyOwnerCannotLeave))
        ));
    }
}
