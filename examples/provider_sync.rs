//! A reference consumer of roster's change log, as the Provider Portal
//! would run it: follows `StreamEvents` with a service token (scope
//! `events.read`), keeps a local mirror of developer identities, saves it
//! with its cursor after every event, and resumes from that cursor after a
//! restart or a lost connection.
//!
//! ```sh
//! cargo run --example provider_sync -- --token "$(cargo run -q -- token --sub provider-portal --scope events.read)"
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "provider_sync/mirror.rs"]
mod mirror;

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use mirror::Mirror;
use roster::pb::{self, event_service_client::EventServiceClient};
use tonic::{metadata::MetadataValue, transport::Channel};

/// Follow roster's events into a local mirror.
#[derive(Debug, Parser)]
struct Args {
    /// roster's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// A service token with the scope `events.read`.
    #[arg(long, env = "ROSTER_TOKEN", hide_env_values = true)]
    token: String,
    /// Where the mirror (and its cursor) is kept.
    #[arg(long, default_value = "provider_mirror.json")]
    state: PathBuf,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut mirror = match Mirror::load(&args.state) {
        Ok(mirror) => mirror,
        Err(err) => {
            eprintln!("cannot read {}: {err}", args.state.display());
            std::process::exit(1);
        }
    };
    println!(
        "resuming after cursor {:?} with {} identities",
        mirror.cursor,
        mirror.identities.len()
    );
    let mut backoff = Duration::from_millis(250);
    loop {
        match follow(&args, &mut mirror).await {
            Ok(()) => println!("stream ended; reconnecting"),
            Err(err) => eprintln!("stream interrupted: {err}; reconnecting in {backoff:?}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Streams from the mirror's cursor, applying and saving each event.
async fn follow(args: &Args, mirror: &mut Mirror) -> Result<(), Box<dyn std::error::Error>> {
    let channel = Channel::from_shared(args.server.clone())?.connect().await?;
    let bearer: MetadataValue<_> = format!("Bearer {}", args.token).parse()?;
    let mut client =
        EventServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        });
    let mut stream = client
        .stream_events(pb::StreamEventsRequest {
            after_cursor: mirror.cursor.clone(),
        })
        .await?
        .into_inner();
    while let Some(reply) = stream.message().await? {
        let Some(event) = reply.event else { continue };
        mirror.apply(&event);
        mirror.save(&args.state)?;
        println!(
            "{} {} {}",
            event.cursor, event.r#type, event.organization_id
        );
    }
    Ok(())
}
