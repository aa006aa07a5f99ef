//! An organization's developer identity in the Provider Portal: the state
//! every read shows, and what its delivery knows.
//!
//! Delivery is a convergence, not a queue of calls: each developer id has
//! one intent saying whether the identity should exist in the Provider
//! Portal (`desired`) and what roster knows of it there (`confirmed`). The
//! worker makes calls until the two agree. One row per id, worked on by one
//! lease holder at a time, is what keeps a delete from overtaking its create.

use std::time::Duration;

use strum::{EnumString, IntoStaticStr, VariantArray};

use super::ids::{DeveloperId, OrganizationId};

/// What reads show of an organization's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum IdentityState {
    /// No Provider Portal is configured: the identity exists only in roster
    /// (and its change log).
    Local,
    /// Being created in the Provider Portal.
    Provisioning,
    /// Exists in the Provider Portal and is approved.
    Active,
    /// Exists in the Provider Portal, which has not approved it yet.
    PendingApproval,
    /// Being deleted from the Provider Portal (the organization is gone).
    Deprovisioning,
    /// Delivery is failing; the last error and the attempts say why.
    Failing,
}

impl IdentityState {
    /// Whether delivery is still going on (a create waits for this to end).
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            IdentityState::Provisioning | IdentityState::Deprovisioning | IdentityState::Failing
        )
    }
}

/// An organization's identity as reads show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub state: IdentityState,
    /// Delivery attempts that failed since the last success.
    pub attempts: u32,
    /// Why the last attempt failed; empty unless failing.
    pub last_error: String,
}

impl Identity {
    pub fn new(state: IdentityState) -> Self {
        Self {
            state,
            attempts: 0,
            last_error: String::new(),
        }
    }
}

/// Whether the identity should exist in the Provider Portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Desired {
    Present,
    Absent,
}

/// What roster knows of the identity in the Provider Portal. A new intent
/// starts `Unknown`: from the first attempt on, a create may have happened
/// even if its answer never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Confirmed {
    Present,
    Absent,
    Unknown,
}

/// The Provider Portal's `status` of a developer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum PortalStatus {
    /// Not known yet.
    #[strum(serialize = "")]
    Unknown,
    /// `pending`: the provider has not approved the developer.
    Pending,
    /// `active`.
    Active,
}

stored_names!(IdentityState, Desired, Confirmed, PortalStatus);

/// The delivery intent of one developer identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityIntent {
    pub developer_id: DeveloperId,
    pub organization_id: OrganizationId,
    pub desired: Desired,
    pub confirmed: Confirmed,
    pub portal_status: PortalStatus,
    /// Failed attempts since the last success.
    pub attempts: u32,
    pub last_error: String,
}

impl IdentityIntent {
    /// The call that brings the Provider Portal in line, if one is needed.
    pub fn next_call(&self) -> Option<Desired> {
        match (self.desired, self.confirmed) {
            (Desired::Present, Confirmed::Present) | (Desired::Absent, Confirmed::Absent) => None,
            (desired, _) => Some(desired),
        }
    }

    /// What reads show; `None` once a deleted organization's identity is gone.
    pub fn visible(&self) -> Option<Identity> {
        let failing = self.attempts > 0 && !self.last_error.is_empty();
        let state = match (self.desired, self.confirmed) {
            (Desired::Present, Confirmed::Present) => match self.portal_status {
                PortalStatus::Pending => IdentityState::PendingApproval,
                PortalStatus::Active | PortalStatus::Unknown => IdentityState::Active,
            },
            (Desired::Absent, Confirmed::Absent) => return None,
            _ if failing => IdentityState::Failing,
            (Desired::Present, _) => IdentityState::Provisioning,
            (Desired::Absent, _) => IdentityState::Deprovisioning,
        };
        Some(Identity {
            state,
            attempts: if failing { self.attempts } else { 0 },
            last_error: if failing {
                self.last_error.clone()
            } else {
                String::new()
            },
        })
    }
}

/// Delay before attempt `attempts + 1` of a delivery: 1 s, 2 s, 4 s, ... up
/// to `max`.
pub fn backoff(attempts: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << attempts.min(20)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(desired: Desired, confirmed: Confirmed) -> IdentityIntent {
        IdentityIntent {
            developer_id: DeveloperId::new(),
            organization_id: OrganizationId::new(),
            desired,
            confirmed,
            portal_status: PortalStatus::Unknown,
            attempts: 0,
            last_error: String::new(),
        }
    }

    #[test]
    fn the_visible_state_follows_the_intent() {
        let state = |i: &IdentityIntent| i.visible().map(|v| v.state);
        let mut i = intent(Desired::Present, Confirmed::Unknown);
        assert_eq!(state(&i), Some(IdentityState::Provisioning));
        assert_eq!(i.next_call(), Some(Desired::Present));
        i.attempts = 2;
        i.last_error = "HTTP 500".into();
        assert_eq!(state(&i), Some(IdentityState::Failing));
        assert_eq!(i.visible().map(|v| v.attempts), Some(2));
        i.confirmed = Confirmed::Present;
        i.portal_status = PortalStatus::Pending;
        i.attempts = 0;
        i.last_error.clear();
        assert_eq!(state(&i), Some(IdentityState::PendingApproval));
        assert_eq!(i.next_call(), None);
        i.desired = Desired::Absent;
        assert_eq!(state(&i), Some(IdentityState::Deprovisioning));
        assert_eq!(i.next_call(), Some(Desired::Absent));
        i.confirmed = Confirmed::Absent;
        assert_eq!(state(&i), None);
        assert_eq!(i.next_call(), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let max = Duration::from_secs(300);
        assert_eq!(backoff(0, max), Duration::from_secs(1));
        assert_eq!(backoff(3, max), Duration::from_secs(8));
        assert_eq!(backoff(9, max), max);
        assert_eq!(backoff(u32::MAX, max), max);
    }

    #[test]
    fn stored_names_round_trip() {
        for &state in IdentityState::VARIANTS {
            assert_eq!(IdentityState::from_db(state.as_str()), Some(state));
        }
    }
}
