//! What each role may do: the whole permission model on one screen.
//!
//! Permissions are named strings (`applications.create`) because other
//! services ask for them by name. The RPC policy (`auth::policy`) and the
//! permission checks other services make read this same table.

use strum::{EnumString, IntoStaticStr, VariantArray};

use super::model::Role;

/// A named power within one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
pub enum Permission {
    #[strum(serialize = "organization.read")]
    OrganizationRead,
    #[strum(serialize = "organization.update")]
    OrganizationUpdate,
    #[strum(serialize = "organization.delete")]
    OrganizationDelete,
    #[strum(serialize = "members.read")]
    MembersRead,
    #[strum(serialize = "members.manage")]
    MembersManage,
    /// Granting or taking the owner role, acting on an owner, transferring ownership.
    #[strum(serialize = "owners.manage")]
    OwnersManage,
    #[strum(serialize = "invitations.read")]
    InvitationsRead,
    #[strum(serialize = "invitations.manage")]
    InvitationsManage,
    /// Reading the organization's audit log.
    #[strum(serialize = "audit.read")]
    AuditRead,
    #[strum(serialize = "applications.read")]
    ApplicationsRead,
    #[strum(serialize = "applications.create")]
    ApplicationsCreate,
    #[strum(serialize = "applications.update")]
    ApplicationsUpdate,
    #[strum(serialize = "applications.delete")]
    ApplicationsDelete,
    #[strum(serialize = "subscriptions.read")]
    SubscriptionsRead,
    #[strum(serialize = "subscriptions.create")]
    SubscriptionsCreate,
    #[strum(serialize = "subscriptions.update")]
    SubscriptionsUpdate,
    #[strum(serialize = "subscriptions.delete")]
    SubscriptionsDelete,
    #[strum(serialize = "credentials.read")]
    CredentialsRead,
    #[strum(serialize = "credentials.create")]
    CredentialsCreate,
    #[strum(serialize = "credentials.update")]
    CredentialsUpdate,
    #[strum(serialize = "credentials.delete")]
    CredentialsDelete,
}

impl Permission {
    /// The name other services use.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether it only reads (`*.read`): what a suspended organization still allows.
    pub fn is_read(self) -> bool {
        self.as_str().ends_with(".read")
    }

    /// Looks a permission up by name; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// The least role that holds this permission. Owners hold everything;
    /// admins everything but deleting the organization and managing owners;
    /// members only what reads, except the audit log.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn minimum_role(self) -> Role {
        match self {
            Permission::OrganizationDelete | Permission::OwnersManage => Role::Owner,
            Permission::OrganizationUpdate
            | Permission::MembersManage
            | Permission::InvitationsManage
            | Permission::AuditRead
            | Permission::ApplicationsCreate
            | Permission::ApplicationsUpdate
            | Permission::ApplicationsDelete
            | Permission::SubscriptionsCreate
            | Permission::SubscriptionsUpdate
            | Permission::SubscriptionsDelete
            | Permission::CredentialsCreate
            | Permission::CredentialsUpdate
            | Permission::CredentialsDelete => Role::Admin,
            Permission::OrganizationRead
            | Permission::MembersRead
            | Permission::InvitationsRead
            | Permission::ApplicationsRead
            | Permission::SubscriptionsRead
            | Permission::CredentialsRead => Role::Member,
        }
    }
}

impl Role {
    /// Owners outrank admins, who outrank members.
    fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
        }
    }

    /// Whether this role holds `permission`.
    pub fn grants(self, permission: Permission) -> bool {
        self.rank() >= permission.minimum_role().rank()
    }
}

impl Permission {
    /// The roles that hold this permission.
    pub fn holders(self) -> Vec<Role> {
        Role::VARIANTS
            .iter()
            .copied()
            .filter(|role| role.grants(self))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &p in Permission::VARIANTS {
            assert_eq!(Permission::from_name(p.as_str()), Some(p));
        }
        assert_eq!(Permission::from_name("applications.fly"), None);
    }

    #[test]
    fn the_table_matches_the_product() {
        for &p in Permission::VARIANTS {
            assert!(Role::Owner.grants(p), "owners hold {}", p.as_str());
            let owner_only = matches!(p, Permission::OrganizationDelete | Permission::OwnersManage);
            assert_eq!(
                Role::Admin.grants(p),
                !owner_only,
                "admin and {}",
                p.as_str()
            );
            assert_eq!(
                Role::Member.grants(p),
                p.as_str().ends_with(".read") && p != Permission::AuditRead,
                "member and {}",
                p.as_str()
            );
        }
    }
}
