//! Assembles the gRPC server: authentication layer, health, reflection and
//! roster's services, on a listener the caller has already bound; and the
//! background tasks (email outbox, invitation expiry, event notifications).

use std::{future::Future, sync::Arc};

use sea_orm::DbBackend;
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::{Server, server::TcpIncoming};
use tracing::info;

use crate::{
    api::{
        authorization::AuthorizationApi, event::EventApi, membership::MembershipApi,
        organization::OrganizationApi,
    },
    auth::layer::AuthLayer,
    config::{Config, ConfigError},
    domain::Error,
    mail::{Mailer, dispatcher::Dispatcher},
    pb::{
        self, authorization_service_server::AuthorizationServiceServer,
        event_service_server::EventServiceServer,
        membership_service_server::MembershipServiceServer,
        organization_service_server::OrganizationServiceServer,
    },
    service::Roster,
    store::{self, Store},
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Database(#[source] Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
}

/// Serves roster on `listener` until `shutdown` completes, delivering email
/// with the mailer the configuration names (SMTP, or the log).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mailer = config.smtp.mailer()?;
    serve_with_mailer(config, listener, mailer, shutdown).await
}

/// [`serve`], delivering email through `mailer`.
pub async fn serve_with_mailer(
    config: Config,
    listener: TcpListener,
    mailer: Arc<dyn Mailer>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    config.validate()?;
    let verifier = Arc::new(config.jwt.verifier()?);
    let store = Store::connect(&config.database_url, config.database_max_connections)
        .await
        .map_err(ServeError::Database)?;
    let (stop, stopped) = watch::channel(false);
    let roster = Arc::new(Roster::new(
        store.clone(),
        config.settings(),
        stopped.clone(),
    ));

    roster
        .start_following()
        .await
        .map_err(ServeError::Database)?;
    let mut background = Vec::new();
    background.push(tokio::spawn({
        let roster = roster.clone();
        let wake = roster.events_signal().clone();
        let stopped = stopped.clone();
        async move { roster.follow_changes(wake, stopped).await }
    }));
    background.push(tokio::spawn(
        Dispatcher::new(
            store.clone(),
            mailer,
            roster.mail_signal().clone(),
            config.mail_poll_interval,
        )
        .run(stopped.clone()),
    ));
    background.push(tokio::spawn({
        let roster = roster.clone();
        let stopped = stopped.clone();
        let interval = config.expiry_sweep_interval;
        async move { roster.run_expiry_sweeper(interval, stopped).await }
    }));
    if store.backend() == DbBackend::Postgres {
        background.push(tokio::spawn(store::listen::relay_notifications(
            store.clone(),
            roster.events_signal().clone(),
            stopped.clone(),
        )));
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<OrganizationServiceServer<OrganizationApi>>()
        .await;
    health
        .set_serving::<MembershipServiceServer<MembershipApi>>()
        .await;
    health.set_serving::<EventServiceServer<EventApi>>().await;
    health
        .set_serving::<AuthorizationServiceServer<AuthorizationApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    info!(address = %listener.local_addr()?, "roster is serving");
    let result = Server::builder()
        .layer(AuthLayer::new(verifier))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(OrganizationServiceServer::new(OrganizationApi::new(
            roster.clone(),
        )))
        .add_service(MembershipServiceServer::new(MembershipApi::new(
            roster.clone(),
        )))
        .add_service(EventServiceServer::new(EventApi::new(roster.clone())))
        .add_service(AuthorizationServiceServer::new(AuthorizationApi::new(
            roster,
        )))
        // Without TCP_NODELAY, replies larger than one segment wait on
        // Nagle's algorithm and the client's delayed ACK: 40 ms each.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                shutdown.await;
                // Ends event streams and background loops, so the server's
                // graceful shutdown is not held up by calls that never finish.
                let _ = stop.send(true);
            },
        )
        .await;
    for task in background {
        let _ = task.await;
    }
    store.close().await.map_err(ServeError::Database)?;
    Ok(result?)
}
