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
        Error,
        event::EventCursor,
        identity::IdentityState,
        ids::{DeveloperId, OrganizationId, UserId},
        input::Slug,
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
}

impl CheckAnswer {
    /// Not a member (or no such organization: the same answer).
    const OUTSIDER: CheckAnswer = CheckAnswer {
        allowed: false,
        role: None,
        identity: None,
        organization: None,
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
            let found = match role {
                Some(_) => self.cache.organization(db, organization).await?,
                None => None,
            };
            answers.push(CheckAnswer {
                allowed: role.is_some_and(|role| role.grants(check.permission)),
                role,
                identity: found.as_ref().map(|org| org.identity.state),
                organization: found.map(|org| (org.id, org.developer_id)),
            });
        }
        Ok((answers, revision))
    }
}
