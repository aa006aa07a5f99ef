//! The Provider Portal: every organization is a developer identity there.
//!
//! [`client`] speaks its HTTP API; [`worker`] delivers the identity intents
//! that creating and deleting organizations write (an outbox, with leases
//! and backoff); [`reconcile`] compares both sides, on demand and
//! periodically; [`ProviderPortalSettings`] are its checked settings.

pub mod client;
mod config;
pub mod reconcile;
pub mod worker;

pub use config::ProviderPortalSettings;
