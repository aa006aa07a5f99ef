//! Change events: what the Provider Portal follows and the audit log shows.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    FieldViolation,
    ids::{DeveloperId, OrganizationId, UserId},
    model::Organization,
};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    OrganizationCreated,
    OrganizationUpdated,
    OrganizationDeleted,
    MemberAdded,
    MemberRoleChanged,
    MemberRemoved,
    InvitationCreated,
    InvitationResent,
    InvitationAccepted,
    InvitationRejected,
    InvitationCancelled,
    InvitationExpired,
    /// The invitation's email can never be delivered (the mail server
    /// refused it for good); it is not retried. The inviter sees it in the
    /// audit log and can invite another address.
    InvitationDeliveryFailed,
    /// The developer identity now exists in the Provider Portal.
    IdentityProvisioned,
    /// The developer identity of a deleted organization is gone from the
    /// Provider Portal.
    IdentityDeprovisioned,
    /// Any other change of the identity's state: delivery began failing (or
    /// fails differently), or the provider approved the developer.
    IdentityChanged,
    /// The organization was brought over from another system (with its
    /// members and invitations) by `roster import`, not created here.
    OrganizationImported,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        EventType::OrganizationCreated,
        EventType::OrganizationUpdated,
        EventType::OrganizationDeleted,
        EventType::MemberAdded,
        EventType::MemberRoleChanged,
        EventType::MemberRemoved,
        EventType::InvitationCreated,
        EventType::InvitationResent,
        EventType::InvitationAccepted,
        EventType::InvitationRejected,
        EventType::InvitationCancelled,
        EventType::InvitationExpired,
        EventType::InvitationDeliveryFailed,
        EventType::IdentityProvisioned,
        EventType::IdentityDeprovisioned,
        EventType::IdentityChanged,
        EventType::OrganizationImported,
    ];

    /// The name consumers see.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrganizationCreated => "organization.created",
            EventType::OrganizationUpdated => "organization.updated",
            EventType::OrganizationDeleted => "organization.deleted",
            EventType::MemberAdded => "member.added",
            EventType::MemberRoleChanged => "member.role_changed",
            EventType::MemberRemoved => "member.removed",
            EventType::InvitationCreated => "invitation.created",
            EventType::InvitationResent => "invitation.resent",
            EventType::InvitationAccepted => "invitation.accepted",
            EventType::InvitationRejected => "invitation.rejected",
            EventType::InvitationCancelled => "invitation.cancelled",
            EventType::InvitationExpired => "invitation.expired",
            EventType::InvitationDeliveryFailed => "invitation.delivery_failed",
            EventType::IdentityProvisioned => "organization.identity_provisioned",
            EventType::IdentityDeprovisioned => "organization.identity_deprovisioned",
            EventType::IdentityChanged => "organization.identity_changed",
            EventType::OrganizationImported => "organization.imported",
        }
    }
}

/// The actor recorded for changes roster makes on its own (expiry, and the
/// delivery of developer identities).
pub const SYSTEM_ACTOR: &str = "system";

/// The field change naming an organization's slug: created (`""` → slug),
/// renamed (old → new), deleted (slug → `""`). Read caches follow it.
pub const SLUG_FIELD: &str = "slug";

/// The actor recorded for organizations `roster import better-auth` brought
/// over: consumers tell an import from a creation by it (and by the event
/// type, `organization.imported`).
pub const BETTER_AUTH_IMPORT_ACTOR: &str = "import:better-auth";

/// One field's value before and after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(default)]
    pub old: String,
    #[serde(default)]
    pub new: String,
}

/// An event about to be recorded (in the transaction of its change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: Uuid,
    pub event_type: EventType,
    pub organization_id: OrganizationId,
    pub developer_id: DeveloperId,
    pub actor_id: String,
    pub subject_user_id: String,
    pub subject_email: String,
    pub changes: Vec<FieldChange>,
}

impl NewEvent {
    /// An event about `organization`, caused by `actor` (a user id, or [`SYSTEM_ACTOR`]).
    pub fn new(event_type: EventType, organization: &Organization, actor: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type,
            organization_id: organization.id,
            developer_id: organization.developer_id.clone(),
            actor_id: actor.to_owned(),
            subject_user_id: String::new(),
            subject_email: String::new(),
            changes: Vec::new(),
        }
    }

    /// The member the event is about.
    pub fn about_user(mut self, user: &UserId) -> Self {
        self.subject_user_id = user.as_str().to_owned();
        self
    }

    /// The address the event is about.
    pub fn about_email(mut self, email: &str) -> Self {
        self.subject_email = email.to_owned();
        self
    }

    /// Records that `field` went from `old` to `new` (empty: absent).
    pub fn change(mut self, field: &str, old: impl Into<String>, new: impl Into<String>) -> Self {
        self.changes.push(FieldChange {
            field: field.to_owned(),
            old: old.into(),
            new: new.into(),
        });
        self
    }

    /// An event about the developer identity of organization
    /// `organization_id` (which may be deleted already), recorded by roster.
    pub fn about_identity(
        event_type: EventType,
        organization_id: OrganizationId,
        developer_id: &DeveloperId,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type,
            organization_id,
            developer_id: developer_id.clone(),
            actor_id: SYSTEM_ACTOR.to_owned(),
            subject_user_id: String::new(),
            subject_email: String::new(),
            changes: Vec::new(),
        }
    }

    /// Records `field` unchanged but worth knowing (e.g. the invitation id).
    pub fn fact(self, field: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        self.change(field, value.clone(), value)
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub cursor: EventCursor,
    pub id: Uuid,
    pub event_type: String,
    pub organization_id: OrganizationId,
    pub developer_id: DeveloperId,
    pub actor_id: String,
    pub subject_user_id: String,
    pub subject_email: String,
    pub changes: Vec<FieldChange>,
    pub created_at: DateTime<Utc>,
}

/// A position in the log: the writing transaction's id (0 on SQLite) and
/// the event's sequence number. The log is read in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventCursor {
    pub txid: i64,
    pub seq: i64,
}

impl EventCursor {
    /// The beginning of the log.
    pub const START: EventCursor = EventCursor { txid: -1, seq: -1 };

    /// 32 hex digits: fixed width, so later cursors also compare greater as strings.
    pub fn encode(self) -> String {
        // Both are non-negative in the database; START never leaves roster.
        format!("{:016x}{:016x}", self.txid.max(0), self.seq.max(0))
    }

    /// Parses a cursor from request field `field`; empty means the start.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::START);
        }
        let invalid = || FieldViolation::new(field, "is not a cursor roster issued");
        // Hex digits only: i64's parser would also take a sign, and a
        // negative half is not a place in the log.
        if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let (txid, seq) = value.split_at(16);
        let txid = i64::from_str_radix(txid, 16).map_err(|_| invalid())?;
        let seq = i64::from_str_radix(seq, 16).map_err(|_| invalid())?;
        Ok(Self { txid, seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_sort_as_strings() {
        let a = EventCursor { txid: 0, seq: 9 };
        let b = EventCursor { txid: 0, seq: 10 };
        let c = EventCursor { txid: 7, seq: 1 };
        for cursor in [a, b, c] {
            assert_eq!(EventCursor::parse("c", &cursor.encode()), Ok(cursor));
        }
        assert!(a.encode() < b.encode() && b.encode() < c.encode());
        assert_eq!(EventCursor::parse("c", ""), Ok(EventCursor::START));
        assert!(EventCursor::START < a);
        for bad in [
            "xyz",
            "0000000000000000000000000000000g",
            "ééééééééééééééé",
            "-000000000000001+000000000000001",
        ] {
            assert!(EventCursor::parse("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
    }
}
