//! What inner layers add to the per-RPC span that `middleware::observe`
//! opens (and declares these fields on): the caller, once authenticated, and
//! the organization, once the request is parsed. Below every layer, so that
//! `auth` and `api` need not reach up into the middleware.

use tracing::Span;

/// Records the organization a call is about on the current RPC span.
pub fn record_organization(organization: &impl std::fmt::Display) {
    Span::current().record("org_id", tracing::field::display(organization));
}

/// Records the authenticated caller on the current RPC span.
pub fn record_caller(user_id: &str) {
    Span::current().record("caller", user_id);
}
