//! Change events: what the Provider Portal follows and the audit log shows.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    FieldViolation,
    identity::{Identity, IdentityState},
    ids::{DeveloperId, InvitationId, OrganizationId, UserId},
    model::{Invitation, LimitOverrides, MembershipSource, Organization, Role},
};

/// How a member joined, for their `member.added` event.
#[derive(Debug, Clone, Copy)]
pub enum Joining<'a> {
    /// They created the organization.
    Creator,
    /// They accepted this invitation.
    Invitation(&'a Invitation),
    /// A platform administrator added them (or created the organization
    /// for them), giving this address, in the request with this id.
    Admin {
        email: &'a str,
        request_id: Option<Uuid>,
    },
}

impl Joining<'_> {
    /// The membership's source.
    pub fn source(self) -> MembershipSource {
        match self {
            Joining::Creator => MembershipSource::Creator,
            Joining::Invitation(_) => MembershipSource::Invitation,
            Joining::Admin { .. } => MembershipSource::Admin,
        }
    }
}

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
    /// A platform administrator suspended the organization: it reads, but
    /// takes no writes and its checks answer only reads.
    OrganizationSuspended,
    /// A platform administrator lifted the suspension.
    OrganizationResumed,
    /// Its owner or an administrator restored the deleted organization.
    OrganizationRestored,
    /// The deleted organization's retention ended: it is gone for good.
    OrganizationPurged,
    /// A person was erased on request (GDPR) by an administrator: about no
    /// organization ([`NO_ORGANIZATION`]); the member events of the
    /// erasure come before it.
    UserErased,
}

impl EventType {
    pub const ALL: [EventType; 22] = [
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
        EventType::OrganizationSuspended,
        EventType::OrganizationResumed,
        EventType::OrganizationRestored,
        EventType::OrganizationPurged,
        EventType::UserErased,
    ];

    /// The type named `name` ([`EventType::as_str`]), if roster knows it.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

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
            EventType::OrganizationSuspended => "organization.suspended",
            EventType::OrganizationResumed => "organization.resumed",
            EventType::OrganizationRestored => "organization.restored",
            EventType::OrganizationPurged => "organization.purged",
            EventType::UserErased => "user.erased",
        }
    }
}

/// The actor recorded for changes roster makes on its own (expiry, and the
/// delivery of developer identities).
pub const SYSTEM_ACTOR: &str = "system";

/// The field change naming an organization's slug: created (`""` → slug),
/// renamed (old → new), deleted (slug → `""`). Read caches follow it.
pub const SLUG_FIELD: &str = "slug";

/// The field change naming an organization's lifecycle state (`active`,
/// `suspended`, `deleted`; `""` once purged).
pub const STATE_FIELD: &str = "state";

/// The fact on `organization.deleted` saying when the organization will be
/// purged unless restored (RFC 3339).
pub const PURGE_TIME_FIELD: &str = "purge_time";

/// The actor recorded for organizations `roster import better-auth` brought
/// over: consumers tell an import from a creation by it (and by the event
/// type, `organization.imported`).
pub const BETTER_AUTH_IMPORT_ACTOR: &str = "import:better-auth";

/// The organization of an event about none (`user.erased`): the nil
/// UUID, which no organization has; replies show it as empty.
pub const NO_ORGANIZATION: OrganizationId = OrganizationId(Uuid::nil());

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
///
/// Made only by the constructors below, one per [`EventType`]: each event's
/// payload is written once, whichever use-case records it.
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
    /// Who acted for the actor (the token's RFC 8693 `act.sub`), if
    /// anyone: stamped by the use-case's write, not by the constructors.
    pub acting_party: Option<String>,
}

impl NewEvent {
    /// `organization` was created by `by` (who becomes its owner through
    /// the `member.added` recorded with it).
    pub fn organization_created(organization: &Organization, by: &UserId) -> Self {
        Self::new(EventType::OrganizationCreated, organization, by.as_str())
            .change("name", "", &organization.name)
            .change(SLUG_FIELD, "", &organization.slug)
            .change("logo_url", "", organization.logo.describe())
            .change("identity_state", "", organization.identity.state.as_str())
    }

    /// `by` changed the organization from `before` to `after`: the fields
    /// that differ (name, slug, logo).
    pub fn organization_updated(before: &Organization, after: &Organization, by: &UserId) -> Self {
        let mut event = Self::new(EventType::OrganizationUpdated, after, by.as_str());
        if before.name != after.name {
            event = event.change("name", &before.name, &after.name);
        }
        if before.slug != after.slug {
            event = event.change(SLUG_FIELD, &before.slug, &after.slug);
        }
        if before.logo != after.logo {
            event = event.change("logo_url", before.logo.describe(), after.logo.describe());
        }
        event
    }

    /// `by` deleted `organization` (as it now stands, deleted): it is
    /// hidden at once and purged at its purge time unless restored first.
    /// Its developer identity stays in the Provider Portal until the purge.
    pub fn organization_deleted(organization: &Organization, by: &UserId) -> Self {
        let event = Self::new(EventType::OrganizationDeleted, organization, by.as_str())
            .change("name", &organization.name, "")
            .change(SLUG_FIELD, &organization.slug, "")
            .fact("identity_state", organization.identity.state.as_str());
        match &organization.lifecycle.deletion {
            Some(deletion) => event.fact(PURGE_TIME_FIELD, deletion.purge_at.to_rfc3339()),
            None => event,
        }
    }

    /// Administrator `by` suspended `organization` (as it now stands).
    pub fn organization_suspended(organization: &Organization, by: &UserId) -> Self {
        let reason = organization
            .lifecycle
            .suspension
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        Self::new(EventType::OrganizationSuspended, organization, by.as_str())
            .change(STATE_FIELD, "active", "suspended")
            .change("suspend_reason", "", reason)
    }

    /// Administrator `by` lifted `before`'s suspension.
    pub fn organization_resumed(before: &Organization, by: &UserId) -> Self {
        let reason = before
            .lifecycle
            .suspension
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        Self::new(EventType::OrganizationResumed, before, by.as_str())
            .change(STATE_FIELD, "suspended", "active")
            .change("suspend_reason", reason, "")
    }

    /// `by` restored the deleted `organization` (as it now stands): it is
    /// back with its name, slug, members and invitations, and suspended
    /// again if it was when deleted.
    pub fn organization_restored(organization: &Organization, by: &UserId) -> Self {
        let state = match organization.lifecycle.suspension {
            Some(_) => "suspended",
            None => "active",
        };
        Self::new(EventType::OrganizationRestored, organization, by.as_str())
            .change("name", "", &organization.name)
            .change(SLUG_FIELD, "", &organization.slug)
            .change(STATE_FIELD, "deleted", state)
            .fact("identity_state", organization.identity.state.as_str())
    }

    /// The deleted `organization`'s retention ended and roster removed it
    /// with its memberships, invitations and slugs; its developer identity
    /// is now `identity` (`None`: there was none in the Provider Portal).
    pub fn organization_purged(
        organization: &Organization,
        identity: Option<IdentityState>,
    ) -> Self {
        Self::new(EventType::OrganizationPurged, organization, SYSTEM_ACTOR)
            .change(STATE_FIELD, "deleted", "")
            .change(
                "identity_state",
                organization.identity.state.as_str(),
                identity.map(IdentityState::as_str).unwrap_or_default(),
            )
    }

    /// `roster import better-auth` brought `organization` over with
    /// `members` members and `pending` pending invitations; its developer
    /// id is the Better Auth organization's id.
    pub fn organization_imported(
        organization: &Organization,
        members: usize,
        pending: usize,
    ) -> Self {
        Self::new(
            EventType::OrganizationImported,
            organization,
            BETTER_AUTH_IMPORT_ACTOR,
        )
        .change("name", "", &organization.name)
        .change(SLUG_FIELD, "", &organization.slug)
        .change("logo_url", "", organization.logo.describe())
        .change("identity_state", "", organization.identity.state.as_str())
        .change("members", "", members.to_string())
        .change("pending_invitations", "", pending.to_string())
        .fact("better_auth_id", organization.developer_id.as_str())
    }

    /// `user` became a member as `role`, added by `by`, in the way
    /// `joining` says (its `source` field names the
    /// [`MembershipSource`]): on creating the organization, by accepting an
    /// invitation (then also about its address and id), or added by a
    /// platform administrator (with the address given, and the request's id).
    pub fn member_added(
        organization: &Organization,
        by: &UserId,
        user: &UserId,
        role: Role,
        joining: Joining<'_>,
    ) -> Self {
        let mut event = Self::new(EventType::MemberAdded, organization, by.as_str())
            .about_user(user)
            .fact("source", joining.source().as_str());
        match joining {
            Joining::Creator => {}
            Joining::Invitation(invitation) => {
                event = event
                    .about_email(&invitation.email)
                    .fact("invitation_id", invitation.id.to_string());
            }
            Joining::Admin { email, request_id } => {
                event = event.about_email(email);
                if let Some(request_id) = request_id {
                    event = event.fact("request_id", request_id.to_string());
                }
            }
        }
        event.change("role", "", role.as_str())
    }

    /// A platform administrator `by` set the organization's own limits
    /// from `before` to `after`: a change per limit that differs, its
    /// value the organization's own (empty: the server's default).
    pub fn organization_limits_set(
        organization: &Organization,
        by: &UserId,
        before: &LimitOverrides,
        after: &LimitOverrides,
    ) -> Self {
        let shown = |limit: Option<u64>| limit.map(|n| n.to_string()).unwrap_or_default();
        let mut event = Self::new(EventType::OrganizationUpdated, organization, by.as_str());
        if before.max_members != after.max_members {
            event = event.change(
                "max_members",
                shown(before.max_members),
                shown(after.max_members),
            );
        }
        if before.max_pending_invitations != after.max_pending_invitations {
            event = event.change(
                "max_pending_invitations",
                shown(before.max_pending_invitations),
                shown(after.max_pending_invitations),
            );
        }
        event
    }

    /// `by` changed `user`'s role from `from` to `to`.
    pub fn member_role_changed(
        organization: &Organization,
        by: &UserId,
        user: &UserId,
        from: Role,
        to: Role,
    ) -> Self {
        Self::new(EventType::MemberRoleChanged, organization, by.as_str())
            .about_user(user)
            .change("role", from.as_str(), to.as_str())
    }

    /// `user`, who had `role`, is no longer a member: removed by `by`, or
    /// left (`by` is `user`).
    pub fn member_removed(
        organization: &Organization,
        by: &UserId,
        user: &UserId,
        role: Role,
    ) -> Self {
        Self::new(EventType::MemberRemoved, organization, by.as_str())
            .about_user(user)
            .change("role", role.as_str(), "")
    }

    /// `by` invited `invitation`'s address.
    pub fn invitation_created(
        organization: &Organization,
        by: &UserId,
        invitation: &Invitation,
    ) -> Self {
        Self::new(EventType::InvitationCreated, organization, by.as_str())
            .about_email(&invitation.email)
            .fact("invitation_id", invitation.id.to_string())
            .fact("delivery", invitation.delivery.as_str())
            .change("role", "", invitation.role.as_str())
            .change("expire_time", "", invitation.expires_at.to_rfc3339())
    }

    /// `by` sent the invitation again: `before` and `after` the renewal;
    /// `revived` if it had expired.
    pub fn invitation_resent(
        organization: &Organization,
        by: &UserId,
        before: &Invitation,
        after: &Invitation,
        revived: bool,
    ) -> Self {
        let event = Self::new(EventType::InvitationResent, organization, by.as_str())
            .about_email(&after.email)
            .fact("invitation_id", after.id.to_string())
            .fact("delivery", after.delivery.as_str())
            .change(
                "expire_time",
                before.expires_at.to_rfc3339(),
                after.expires_at.to_rfc3339(),
            );
        if revived {
            event.change("state", "expired", "pending")
        } else {
            event
        }
    }

    /// Its recipient `user` accepted `invitation` (as it now stands).
    pub fn invitation_accepted(
        organization: &Organization,
        user: &UserId,
        invitation: &Invitation,
    ) -> Self {
        Self::new(EventType::InvitationAccepted, organization, user.as_str())
            .about_user(user)
            .answered(invitation)
    }

    /// Its recipient `user` rejected `invitation` (as it now stands).
    pub fn invitation_rejected(
        organization: &Organization,
        user: &UserId,
        invitation: &Invitation,
    ) -> Self {
        Self::new(EventType::InvitationRejected, organization, user.as_str())
            .about_user(user)
            .answered(invitation)
    }

    /// `by` cancelled `invitation` (as it now stands).
    pub fn invitation_cancelled(
        organization: &Organization,
        by: &UserId,
        invitation: &Invitation,
    ) -> Self {
        Self::new(EventType::InvitationCancelled, organization, by.as_str()).answered(invitation)
    }

    /// roster stored `expired` on the pending invitation `invitation` to
    /// `email` (its address as stored) whose time had passed.
    pub fn invitation_expired(
        organization: &Organization,
        invitation: InvitationId,
        email: &str,
    ) -> Self {
        Self::new(EventType::InvitationExpired, organization, SYSTEM_ACTOR)
            .about_email(email)
            .fact("invitation_id", invitation.to_string())
            .change("state", "pending", "expired")
    }

    /// The mail server refused `invitation`'s email for good, saying
    /// `error` (addresses masked by the caller).
    pub fn invitation_delivery_failed(
        organization: &Organization,
        invitation: &Invitation,
        error: &str,
    ) -> Self {
        Self::new(
            EventType::InvitationDeliveryFailed,
            organization,
            SYSTEM_ACTOR,
        )
        .about_email(&invitation.email)
        .fact("invitation_id", invitation.id.to_string())
        .fact("error", error)
    }

    /// `by` (an administrator) erased `user`: left `left` organizations,
    /// deleted `deleted` of which they were the only member, cancelled
    /// `cancelled` invitations to their address. Carries nothing personal
    /// but the user id, which the rest of the log refers to.
    pub fn user_erased(
        user: &UserId,
        by: &UserId,
        left: usize,
        deleted: usize,
        cancelled: usize,
    ) -> Self {
        Self::blank(
            EventType::UserErased,
            NO_ORGANIZATION,
            &DeveloperId::from_trusted(String::new()),
            by.as_str(),
        )
        .about_user(user)
        .change("organizations_left", "", left.to_string())
        .change("organizations_deleted", "", deleted.to_string())
        .change("invitations_cancelled", "", cancelled.to_string())
    }

    /// The developer identity of organization `organization_id` (which may
    /// be deleted already) went from `was` to `now_is` as reads show it
    /// (`None`: gone): `organization.identity_provisioned` when it came to
    /// exist, `_deprovisioned` when it is gone, `_changed` otherwise (it
    /// began failing, fails differently, or was approved). `None` if reads
    /// show no difference.
    pub fn identity_changed(
        organization_id: OrganizationId,
        developer_id: &DeveloperId,
        was: Option<&Identity>,
        now_is: Option<&Identity>,
    ) -> Option<Self> {
        let state = |i: Option<&Identity>| i.map(|i| i.state);
        let error = |i: Option<&Identity>| i.map(|i| i.last_error.clone());
        if state(was) == state(now_is) && error(was) == error(now_is) {
            return None;
        }
        let event_type = match (state(was), state(now_is)) {
            (_, None) => EventType::IdentityDeprovisioned,
            (
                Some(IdentityState::Provisioning | IdentityState::Failing | IdentityState::Local)
                | None,
                Some(IdentityState::Active | IdentityState::PendingApproval),
            ) => EventType::IdentityProvisioned,
            _ => EventType::IdentityChanged,
        };
        let name = |s: Option<IdentityState>| s.map(IdentityState::as_str).unwrap_or_default();
        let mut event = Self::blank(event_type, organization_id, developer_id, SYSTEM_ACTOR)
            .change("identity_state", name(state(was)), name(state(now_is)));
        if let Some(identity) = now_is.filter(|i| i.state == IdentityState::Failing) {
            event = event
                .fact("identity_attempts", identity.attempts.to_string())
                .fact("identity_last_error", identity.last_error.clone());
        }
        Some(event)
    }

    /// An event about `organization`, caused by `actor` (a user id, or [`SYSTEM_ACTOR`]).
    fn new(event_type: EventType, organization: &Organization, actor: &str) -> Self {
        Self::blank(
            event_type,
            organization.id,
            &organization.developer_id,
            actor,
        )
    }

    /// An event about the organization (which may be deleted already) with
    /// developer identity `developer_id`, about no one yet, changing nothing yet.
    fn blank(
        event_type: EventType,
        organization_id: OrganizationId,
        developer_id: &DeveloperId,
        actor: &str,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type,
            organization_id,
            developer_id: developer_id.clone(),
            actor_id: actor.to_owned(),
            subject_user_id: String::new(),
            subject_email: String::new(),
            changes: Vec::new(),
            acting_party: None,
        }
    }

    /// The member the event is about.
    fn about_user(mut self, user: &UserId) -> Self {
        self.subject_user_id = user.as_str().to_owned();
        self
    }

    /// The address the event is about.
    fn about_email(mut self, email: &str) -> Self {
        self.subject_email = email.to_owned();
        self
    }

    /// Records that `field` went from `old` to `new` (empty: absent).
    fn change(mut self, field: &str, old: impl Into<String>, new: impl Into<String>) -> Self {
        self.changes.push(FieldChange {
            field: field.to_owned(),
            old: old.into(),
            new: new.into(),
        });
        self
    }

    /// Records `field` unchanged but worth knowing (e.g. the invitation id).
    fn fact(self, field: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        self.change(field, value.clone(), value)
    }

    /// About an invitation that left `pending` (answered or cancelled): its
    /// address, its id and the state change.
    fn answered(self, invitation: &Invitation) -> Self {
        self.about_email(&invitation.email)
            .fact("invitation_id", invitation.id.to_string())
            .change("state", "pending", invitation.stored_state.as_str())
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
    /// Who acted for the actor (RFC 8693 `act.sub`), if anyone.
    pub acting_party: Option<String>,
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
    fn names_are_distinct_and_parse_back() {
        let names: std::collections::HashSet<_> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
        let parsed: Vec<_> = names
            .iter()
            .filter_map(|name| EventType::parse(name))
            .collect();
        assert_eq!(parsed.len(), names.len(), "every name parses");
        assert!(parsed.iter().all(|t| names.contains(t.as_str())));
        assert_eq!(EventType::parse("organization.renamed"), None);
    }
}
