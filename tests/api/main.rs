//! roster's integration tests: one binary, the real server, real clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod authorization;
mod authz;
mod cli;
mod clients;
mod events;
mod identity;
mod invitation;
mod membership;
mod organization;
mod production;
mod provider_sync;
mod races;
mod reflection;
mod smtp;
mod tls;
mod validation;
