//! Assembles the gRPC server: authentication layer, health, reflection and
//! roster's services, on a listener the caller has already bound.

use std::{future::Future, sync::Arc};

use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tracing::info;

use crate::{
    api::{membership::MembershipApi, organization::OrganizationApi},
    auth::layer::AuthLayer,
    config::{Config, ConfigError},
    domain::Error,
    mail::Mailer,
    pb::{
        self, membership_service_server::MembershipServiceServer,
        organization_service_server::OrganizationServiceServer,
    },
    service::Roster,
    store::Store,
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
}

/// Serves roster on `listener` until `shutdown` completes.
pub async fn serve(
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
    let roster = Arc::new(Roster::new(store.clone(), config.settings(), mailer));

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<OrganizationServiceServer<OrganizationApi>>()
        .await;
    health
        .set_serving::<MembershipServiceServer<MembershipApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    info!(address = %listener.local_addr().map_err(|e| ServeError::Database(Error::internal(e)))?, "roster is serving");
    let result = Server::builder()
        .layer(AuthLayer::new(verifier))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(OrganizationServiceServer::new(OrganizationApi::new(
            roster.clone(),
        )))
        .add_service(MembershipServiceServer::new(MembershipApi::new(roster)))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await;
    store.close().await.map_err(ServeError::Database)?;
    Ok(result?)
}
