//! Permission checks for other services: "may this user do X in this
//! organization?", answered from the membership cache.

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
        ids::{OrganizationId, UserId},
        model::Role,
        permission::Permission,
    },
};

/// One validated question.
#[derive(Debug, Clone)]
pub struct CheckInput {
    pub user: UserId,
    pub organization: OrganizationId,
    pub permission: Permission,
}

/// One answer: allowed or not, the user's role (`None`: not a member) and,
/// for members, the organization's developer identity state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckAnswer {
    pub allowed: bool,
    pub role: Option<Role>,
    pub identity: Option<IdentityState>,
}

impl Roster {
    /// Answers `checks` in order, from state no older than `at_least`.
    #[instrument(skip_all, fields(user_id = %caller.user_id, checks = checks.len()))]
    pub async fn check_permissions(
        &self,
        caller: &Caller,
        action: Action,
        checks: &[CheckInput],
        at_least: Option<EventCursor>,
    ) -> Result<Vec<CheckAnswer>, Error> {
        for check in checks {
            authorize_subject(caller, action, &check.user)?;
        }
        let mut answers = Vec::with_capacity(checks.len());
        for check in checks {
            let role = self
                .cache
                .role(self.store.db(), check.organization, &check.user, at_least)
                .await?;
            let identity = match role {
                Some(_) => self
                    .cache
                    .organization(self.store.db(), check.organization)
                    .await?
                    .map(|org| org.identity.state),
                None => None,
            };
            answers.push(CheckAnswer {
                allowed: role.is_some_and(|role| role.grants(check.permission)),
                role,
                identity,
            });
        }
        Ok(answers)
    }
}
