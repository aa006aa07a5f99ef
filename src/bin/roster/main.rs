//! The `roster` binary: parse the command line, then serve, mint a token
//! (`token.rs`), benchmark (`bench/`) or reconcile with the Provider Portal
//! (`provider_portal.rs`), or print the OpenAPI description. The service itself is the library;
//! the token and bench commands are tools around it and live here.

mod bench;
mod cli;
mod import;
mod provider_portal;
mod token;

use std::process::ExitCode;

use clap::Parser;
use roster::config::Config;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::{
    cli::{Cli, Command},
    import::{ImportArgs, ImportCommand},
    provider_portal::{ProviderPortalArgs, ProviderPortalCommand, Verdict},
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => token::run(args),
        Some(Command::Bench(args)) => match bench::run(args).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("roster bench: {err}");
                ExitCode::FAILURE
            }
        },
        Some(Command::ProviderPortal(args)) => provider_portal(args).await,
        Some(Command::Import(args)) => import(args).await,
        Some(Command::Openapi) => openapi(),
        Some(Command::Serve(config)) => serve(*config).await,
        None => serve(cli.serve).await,
    }
}

/// Prints the OpenAPI description; `> openapi/roster.v1.json` regenerates
/// the checked-in copy.
fn openapi() -> ExitCode {
    match roster::transport::openapi::json() {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("roster openapi: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let ready = match config.validate() {
        Ok(ready) => ready,
        Err(err) => {
            eprintln!("roster: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let exporter = match roster::telemetry::init(config.log_format, ready.traces.as_ref()) {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("roster: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    if config.jwt.uses_development_secret() {
        warn!(
            "using the built-in development JWT secret: fine on your machine, never in production"
        );
    }
    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            error!(address = %config.listen, error = %err, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match roster::serve(ready, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = %err, "roster failed");
            ExitCode::FAILURE
        }
    };
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    outcome
}

/// `roster provider-portal reconcile`: exit status 0 when roster and the
/// Provider Portal agree, 1 when they differ, 2 when it could not compare.
async fn provider_portal(args: ProviderPortalArgs) -> ExitCode {
    let ProviderPortalCommand::Reconcile(args) = args.command;
    match provider_portal::run(args).await {
        Ok(Verdict::InSync) => ExitCode::SUCCESS,
        Ok(Verdict::Differ) => ExitCode::from(1),
        Err(err) => {
            eprintln!("roster provider-portal reconcile: {err}");
            ExitCode::from(2)
        }
    }
}

/// `roster import better-auth`: exit status 0 when nothing is wrong (the
/// import is done, or a dry run found it could be), 1 when problems
/// refuse it, 2 when it could not run (usage, connection, a failed write).
async fn import(args: ImportArgs) -> ExitCode {
    let ImportCommand::BetterAuth(args) = args.command;
    match import::run(args).await {
        Ok(import::Verdict::Clean) => ExitCode::SUCCESS,
        Ok(import::Verdict::Refused) => ExitCode::from(1),
        Err(err) => {
            // The whole chain: a failed write names its cause.
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("roster import better-auth: {message}; nothing written");
            ExitCode::from(2)
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    info!("shutting down");
}
