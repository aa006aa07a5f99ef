//! The command line of the `roster` binary: `serve` (the default), `token`,
//! `bench`, `provider-portal reconcile`, `import better-auth` and `openapi`. The server's own settings are [`roster::config::Config`].

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use roster::config::{Config, JwtConfig};

use crate::{bench::BenchArgs, import::ImportArgs, provider_portal::ProviderPortalArgs};

/// roster: the organization service of the Developer Portal.
#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, roster serves.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (the default).
    Serve(Box<Config>),
    /// Print a development token signed with the configured HS256 secret.
    Token(TokenArgs),
    /// Measure roster under load over loopback gRPC (starts its own server).
    Bench(BenchArgs),
    /// The Provider Portal: compare and repair developer identities.
    ProviderPortal(ProviderPortalArgs),
    /// Bring organizations over from another system (Better Auth).
    Import(ImportArgs),
    /// Print the OpenAPI description of the Connect JSON API (the source of
    /// `openapi/roster.v1.json`).
    Openapi,
}

/// `roster token`: a development token for grpcurl and scripts.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// The user's email (`email`).
    #[arg(long)]
    pub email: Option<String>,
    /// The user's display name (`name`).
    #[arg(long)]
    pub name: Option<String>,
    /// Mark the email as not verified (`email_verified: false`).
    #[arg(long)]
    pub unverified: bool,
    /// Scopes for a service principal (repeatable or space-separated), e.g. `events.read`.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Limit a service principal's token to these organizations (repeatable
    /// or comma-separated; the `org_id` claim).
    #[arg(long = "org-id")]
    pub organizations: Vec<String>,
    /// Someone acting for the user: the RFC 8693 `act` claim `{"sub": ACT}`,
    /// recorded as the acting party of the events the token's calls write.
    #[arg(long)]
    pub act: Option<String>,
    /// How long the token is valid.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    #[command(flatten)]
    pub jwt: JwtConfig,
}
