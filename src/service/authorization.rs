//! Permission checks for other services: "may this user do X in this
//! organization?", the organization named by id or by slug, answered from
//! the read cache (memberships, organizations and the slug index).

use tracing::instrument;

use super::Roster;
use crate::{
    auth::{
        Caller,
        policy::{Action, authorize_subject},
    },
    domain::{
        Error, Reason,
        event::EventCursor,
        identity::IdentityState,
        ids::{DeveloperId, OrganizationId, UserId},
        input::Slug,
        lifecycle::Access,
        model::Role,
        permission::Permission,
    },
};

/// How a check names the organization.
#[derive(Debug, Clone)]
pub enum OrganizationRef {
    Id(OrganizationId),
    /// Its current slug, or an old one it still retains.
    Slug(Slug),
}

/// One validated question.
#[derive(Debug, Clone)]
pub struct CheckInput {
    pub user: UserId,
    pub organization: OrganizationRef,
    pub permission: Permission,
}

/// One answer: allowed or not, the user's role (`None`: not a member) and,
/// for members, the organization's id, developer id and developer identity
/// state. A non-member learns nothing about the organization, not even
/// whether it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    pub allowed: bool,
    pub role: Option<Role>,
    pub identity: Option<IdentityState>,
    pub organization: Option<(OrganizationId, DeveloperId)>,
    /// Why a member is refused what their role grants (a suspended
    /// organization's non-read permission); `None` otherwise.
    pub reason: Option<Reason>,
}

impl CheckAnswer {
    /// Not a member (or no such organization: the same answer).
    const OUTSIDER: CheckAnswer = CheckAnswer {
        allowed: false,
        role: None,
        identity: None,
        organization: None,
        reason: None,
    };
}

impl Roster {
    /// Answers `checks` in order, from state no older than `at_least`, with
    /// the revision the answers reflect at least.
    #[instrument(skip_all, fields(user_id = %caller.user_id, checks = checks.len()))]
    pub async fn check_permissions(
        &self,
        caller: &Caller,
        action: Action,
        checks: &[CheckInput],
        at_least: Option<EventCursor>,
    ) -> Result<(Vec<CheckAnswer>, EventCursor), Error> {
        for check in checks {
            authorize_subject(caller, action, &check.user)?;
        }
        let db = self.store.db();
        let revision = self.cache.evaluated_at(db, at_least).await?;
        let mut answers = Vec::with_capacity(checks.len());
        for check in checks {
            let organization = match &check.organization {
                OrganizationRef::Id(id) => Some(*id),
                OrganizationRef::Slug(slug) => {
                    self.cache.resolve_slug(db, slug.as_str(), at_least).await?
                }
            };
            // Outside the organizations a token is limited to, every
            // check is an outsider's "no", as for an unknown organization.
            let Some(organization) = organization.filter(|id| caller.reaches(*id)) else {
                answers.push(CheckAnswer::OUTSIDER);
                continue;
            };
            let role = self
                .cache
                .role(db, organization, &check.user, at_least)
                .await?;
            // The organization as of `at_least` too: its lifecycle decides
            // as much as the role does. A deleted one (or one deleted
            // between the two reads) answers as for an outsider.
            let found = match role {
                Some(_) => self.cache.organization(db, organization, at_least).await?,
                None => None,
            };
            let (Some(role), Some(found)) = (role, found) else {
                answers.push(CheckAnswer::OUTSIDER);
                continue;
            };
            let (allowed, reason) = match found.lifecycle.access(check.permission) {
                Access::Open => (role.grants(check.permission), None),
                Access::Refused(reason) => (false, Some(reason)),
                Access::Gone => {
                    answers.push(CheckAnswer::OUTSIDER);
                    continue;
                }
            };
            answers.push(CheckAnswer {
                allowed,
                role: Some(role),
                identity: Some(found.identity.state),
                organization: Some((found.id, found.developer_id)),
                reason,
            });
        }
        Ok((answers, revision))
    }
}
