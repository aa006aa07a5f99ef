//! roster: the organization service of a Developer Portal.
//!
//! Layers, outside in: `server` (tonic assembly) → `transport` (gRPC-Web,
//! Connect, CORS) and `middleware` (request ids, logs, metrics, limits) → `auth` (who is calling,
//! what each RPC needs) → `api` (gRPC handlers and conversions) → `service`
//! (use-cases and transactions) → `domain` (plain types and rules) and
//! `store` (SeaORM queries); below them all, [`signal`] and [`rpc_span`].
//! Imports run in that direction only. The binary (`src/bin/roster/`) and
//! the tests share [`serve`], with the parts [`config::Config::validate`]
//! made.

pub mod api;
pub mod auth;
pub mod background;
pub mod config;
pub mod domain;
pub mod import;
pub mod mail;
pub mod middleware;
pub mod pb;
pub mod provider_portal;
pub mod rpc_span;
pub mod server;
pub mod service;
pub mod signal;
pub mod store;
pub mod telemetry;
pub mod transport;

pub use server::{ServeError, serve};
