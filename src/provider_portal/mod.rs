//! The Provider Portal: every organization is a developer identity there.
//!
//! [`client`] speaks its HTTP API; [`worker`] delivers the identity intents
//! that creating and deleting organizations write (an outbox, with leases
//! and backoff); [`reconcile`] compares both sides, on demand and
//! periodically; [`config`] holds the settings.

pub mod cli;
pub mod client;
pub mod config;
pub mod reconcile;
pub mod worker;
