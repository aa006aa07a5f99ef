//! What each role may do: the whole permission model on one screen.
//!
//! Permissions are named strings (`applications.create`) because other
//! services ask for them by name. The RPC policy (`auth::policy`) and the
//! permission checks other services make read this same table.

use super::model::Role;

/// A named power within one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    OrganizationRead,
    OrganizationUpdate,
    OrganizationDelete,
    MembersRead,
    MembersManage,
    /// Granting or taking the owner role, acting on an owner, transferring ownership.
    OwnersManage,
    InvitationsRead,
    InvitationsManage,
    /// Reading the organization's audit log.
    AuditRead,
    ApplicationsRead,
    ApplicationsCreate,
    ApplicationsUpdate,
    ApplicationsDelete,
    SubscriptionsRead,
    SubscriptionsCreate,
    SubscriptionsUpdate,
    SubscriptionsDelete,
    CredentialsRead,
    CredentialsCreate,
    CredentialsUpdate,
    CredentialsDelete,
}

impl Permission {
    pub const ALL: [Permission; 21] = [
        Permission::OrganizationRead,
        Permission::OrganizationUpdate,
        Permission::OrganizationDelete,
        Permission::MembersRead,
        Permission::MembersManage,
        Permission::OwnersManage,
        Permission::InvitationsRead,
        Permission::InvitationsManage,
        Permission::AuditRead,
        Permission::ApplicationsRead,
        Permission::ApplicationsCreate,
        Permission::ApplicationsUpdate,
        Permission::ApplicationsDelete,
        Permission::SubscriptionsRead,
        Permission::SubscriptionsCreate,
        Permission::SubscriptionsUpdate,
        Permission::SubscriptionsDelete,
        Permission::CredentialsRead,
        Permission::CredentialsCreate,
        Permission::CredentialsUpdate,
        Permission::CredentialsDelete,
    ];

    /// The name other services use.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OrganizationRead => "organization.read",
            Permission::OrganizationUpdate => "organization.update",
            Permission::OrganizationDelete => "organization.delete",
            Permission::MembersRead => "members.read",
            Permission::MembersManage => "members.manage",
            Permission::OwnersManage => "owners.manage",
            Permission::InvitationsRead => "invitations.read",
            Permission::InvitationsManage => "invitations.manage",
            Permission::AuditRead => "audit.read",
            Permission::ApplicationsRead => "applications.read",
            Permission::ApplicationsCreate => "applications.create",
            Permission::ApplicationsUpdate => "applications.update",
            Permission::ApplicationsDelete => "applications.delete",
            Permission::SubscriptionsRead => "subscriptions.read",
            Permission::SubscriptionsCreate => "subscriptions.create",
            Permission::SubscriptionsUpdate => "subscriptions.update",
            Permission::SubscriptionsDelete => "subscriptions.delete",
            Permission::CredentialsRead => "credentials.read",
            Permission::CredentialsCreate => "credentials.create",
            Permission::CredentialsUpdate => "credentials.update",
            Permission::CredentialsDelete => "credentials.delete",
        }
    }

    /// Looks a permission up by name; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
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
        Role::ALL
            .into_iter()
            .filter(|role| role.grants(self))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::from_name(p.as_str()), Some(p));
        }
        assert_eq!(Permission::from_name("applications.fly"), None);
    }

    #[test]
    fn the_table_matches_the_product() {
        for p in Permission::ALL {
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
