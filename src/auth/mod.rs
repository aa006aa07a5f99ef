//! Who is calling, and what the call needs.
//!
//! [`layer::AuthLayer`] verifies the bearer token of every call (except
//! health and reflection) and stores the [`Caller`] in the request's
//! extensions; handlers read it with [`RequestExt::caller`], which fails
//! closed. [`policy`] says what each RPC requires.

pub mod claims;
pub mod jwks;
pub mod layer;
pub mod policy;
pub mod token;

/// Health checks and reflection: anyone may call them (they say nothing
/// about any organization), and they are answered even under load and while
/// draining, so load balancers and operators can see what is going on.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

use crate::domain::{
    Error, Reason,
    ids::{OrganizationId, UserId},
    model::UserProfile,
};

/// The authenticated principal of one call, from its token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `sub`
    pub user_id: UserId,
    /// `email`, if the token has a usable one ([`claims::email`]).
    pub email: Option<String>,
    /// The token has an `email` claim roster cannot use (too long, or with
    /// a control character): the calls that need an email refuse.
    pub email_unusable: bool,
    /// `email_verified` (see [`claims::EmailVerified`])
    pub email_verified: bool,
    /// `name`
    pub name: Option<String>,
    /// The token's scopes, from `scope` and `scp` (each a space-separated
    /// string or an array; see [`claims::OneOrMany`]): what a service
    /// principal may do.
    /// With one of roster's scopes the caller is a service principal
    /// ([`Caller::is_service`]), not a person.
    pub scopes: Vec<String>,
    /// The organizations a service principal's token is limited to (its
    /// `org_id` claim); `None`: no limit. Every scope then acts only there.
    pub organizations: Option<Vec<OrganizationId>>,
    /// Who acts for the subject, if anyone: the `sub` of the token's RFC
    /// 8693 `act` claim (the current actor, the outermost one of a chain;
    /// see [`claims::acting_party`]). Recorded with every event the call
    /// writes.
    pub acting_party: Option<String>,
}

impl Caller {
    /// The profile roster records for this person when they act.
    pub fn profile(&self) -> UserProfile {
        UserProfile {
            id: self.user_id.clone(),
            email: self.email.clone().unwrap_or_default(),
            display_name: self.name.clone().unwrap_or_default(),
        }
    }

    /// The caller's email, case-folded, if it is verified.
    pub fn verified_email(&self) -> Result<String, Error> {
        self.email_claim_usable()?;
        let email = self
            .email
            .as_deref()
            .filter(|e| !e.is_empty())
            .ok_or(Error::FailedPrecondition(Reason::EmailNotVerified))?;
        if !self.email_verified {
            return Err(Error::FailedPrecondition(Reason::EmailNotVerified));
        }
        Ok(crate::domain::input::Email::fold(email))
    }

    /// Refuses a caller whose token has an `email` claim roster cannot use,
    /// before any call that matches the caller's email (it could match nothing).
    pub fn email_claim_usable(&self) -> Result<(), Error> {
        if self.email_unusable {
            return Err(Error::Unauthenticated(Reason::InvalidEmailClaim));
        }
        Ok(())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the caller's token lets it act on `organization` at all:
    /// always, unless it is limited to other organizations.
    pub fn reaches(&self, organization: OrganizationId) -> bool {
        self.organizations
            .as_ref()
            .is_none_or(|ids| ids.contains(&organization))
    }

    /// Whether this is a service principal: its token carries one of
    /// roster's scopes ([`policy::SERVICE_SCOPES`]). A service is never a
    /// person: it acts on organizations only through its scopes.
    pub fn is_service(&self) -> bool {
        policy::SERVICE_SCOPES
            .iter()
            .any(|scope| self.has_scope(scope))
    }
}

/// Reads the [`Caller`] the auth layer attached.
pub trait RequestExt {
    /// The caller, or `UNAUTHENTICATED` if none was attached: a handler
    /// reached without authentication fails closed, never as "anyone".
    fn caller(&self) -> Result<Caller, Error>;
}

impl<T> RequestExt for tonic::Request<T> {
    fn caller(&self) -> Result<Caller, Error> {
        self.extensions()
            .get::<Caller>()
            .cloned()
            .ok_or(Error::Unauthenticated(Reason::MissingCredentials))
    }
}
