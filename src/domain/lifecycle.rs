//! An organization's lifecycle: active, suspended by a platform
//! administrator, or deleted (soft: restorable until its purge time).
//!
//! The rules live here as plain functions of the lifecycle, so every
//! use-case asks the same question the same way:
//! - a suspended organization can be read, but every write to it is
//!   refused (`FAILED_PRECONDITION` `ORGANIZATION_SUSPENDED`), and every
//!   permission check but the `*.read` ones answers no with that reason;
//! - a deleted organization is gone for everyone (`NOT_FOUND`, every check
//!   no) except whoever may restore it, until it is purged.

use chrono::{DateTime, Utc};

use super::{Error, FieldViolation, Reason, permission::Permission};

/// The longest suspension reason (characters), as the schema bounds it.
pub const MAX_SUSPEND_REASON: usize = 500;

/// Why and since when an administrator suspended an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub at: DateTime<Utc>,
    /// As the administrator gave it; may be empty.
    pub reason: String,
}

/// When an organization was deleted, and when it is purged for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    pub at: DateTime<Utc>,
    pub purge_at: DateTime<Utc>,
}

/// Where an organization stands in its lifecycle. Both may be set: a
/// suspended organization that was deleted is suspended again once restored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    pub suspension: Option<Suspension>,
    pub deletion: Option<Deletion>,
}

/// The state clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleState {
    Active,
    Suspended,
    Deleted,
}

impl Lifecycle {
    /// Deleted wins over suspended: a deleted organization is gone.
    pub fn state(&self) -> LifecycleState {
        match (&self.deletion, &self.suspension) {
            (Some(_), _) => LifecycleState::Deleted,
            (None, Some(_)) => LifecycleState::Suspended,
            (None, None) => LifecycleState::Active,
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deletion.is_some()
    }

    /// Every write to the organization asks this first (after its lock).
    pub fn check_writable(&self) -> Result<(), Error> {
        match self.state() {
            LifecycleState::Active => Ok(()),
            LifecycleState::Suspended => {
                Err(Error::FailedPrecondition(Reason::OrganizationSuspended))
            }
            LifecycleState::Deleted => Err(Error::NotFound(super::Resource::Organization)),
        }
    }

    /// What the lifecycle leaves of a member's `permission` (their role
    /// granting it or not is asked separately). Reads stay open in a
    /// suspended organization; a deleted one answers as if it did not exist.
    pub fn access(&self, permission: Permission) -> Access {
        match self.state() {
            LifecycleState::Active => Access::Open,
            LifecycleState::Suspended if permission.is_read() => Access::Open,
            LifecycleState::Suspended => Access::Refused(Reason::OrganizationSuspended),
            LifecycleState::Deleted => Access::Gone,
        }
    }
}

/// See [`Lifecycle::access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// As the role says.
    Open,
    /// No, whatever the role, for this reason.
    Refused(Reason),
    /// No, as for someone who is not a member.
    Gone,
}

/// A validated suspension reason: trimmed, at most [`MAX_SUSPEND_REASON`]
/// characters, no control characters but line breaks and tabs.
pub fn parse_suspend_reason(field: &str, raw: &str) -> Result<String, FieldViolation> {
    let reason = raw.trim();
    if reason.chars().count() > MAX_SUSPEND_REASON {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_SUSPEND_REASON} characters"),
        ));
    }
    if reason
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now;

    #[test]
    fn suspended_refuses_writes_and_non_read_permissions_only() {
        let suspended = Lifecycle {
            suspension: Some(Suspension {
                at: now(),
                reason: String::new(),
            }),
            deletion: None,
        };
        assert_eq!(suspended.state(), LifecycleState::Suspended);
        assert!(matches!(
            suspended.check_writable(),
            Err(Error::FailedPrecondition(Reason::OrganizationSuspended))
        ));
        assert_eq!(suspended.access(Permission::ApplicationsRead), Access::Open);
        assert_eq!(
            suspended.access(Permission::ApplicationsCreate),
            Access::Refused(Reason::OrganizationSuspended)
        );
        assert_eq!(
            Lifecycle::default().access(Permission::OrganizationDelete),
            Access::Open
        );
        assert!(Lifecycle::default().check_writable().is_ok());
        let deleted = Lifecycle {
            deletion: Some(Deletion {
                at: now(),
                purge_at: now(),
            }),
            ..suspended
        };
        assert_eq!(deleted.state(), LifecycleState::Deleted);
        assert!(matches!(deleted.check_writable(), Err(Error::NotFound(_))));
        assert_eq!(deleted.access(Permission::ApplicationsRead), Access::Gone);
    }

    #[test]
    fn a_reason_is_bounded_and_printable() {
        assert_eq!(
            parse_suspend_reason("reason", "  abuse \n").ok().as_deref(),
            Some("abuse")
        );
        assert!(parse_suspend_reason("reason", &"x".repeat(MAX_SUSPEND_REASON)).is_ok());
        assert!(parse_suspend_reason("reason", &"x".repeat(MAX_SUSPEND_REASON + 1)).is_err());
        assert!(parse_suspend_reason("reason", "bad\u{7}bell").is_err());
    }
}
