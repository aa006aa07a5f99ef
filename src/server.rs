//! Assembles the gRPC server: the layers (observe, protect, auth), health,
//! reflection and roster's services, on a listener the caller has already
//! bound; the background tasks (email outbox, invitation expiry, change-log
//! follower, database health, metrics); and the graceful shutdown.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::DbBackend;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, transport::Server};
use tonic_health::{ServingStatus, server::HealthReporter};
use tracing::{info, warn};

use crate::{
    api::{
        authorization::AuthorizationApi, event::EventApi, membership::MembershipApi,
        organization::OrganizationApi,
    },
    auth::layer::AuthLayer,
    background::{self, Start, Wait},
    config::{Config, Ready},
    domain::Error,
    mail::{Mailer, dispatcher::Dispatcher},
    middleware::{observe::ObserveLayer, protect::ProtectLayer},
    pb::{
        self, authorization_service_server::AuthorizationServiceServer,
        event_service_server::EventServiceServer,
        membership_service_server::MembershipServiceServer,
        organization_service_server::OrganizationServiceServer,
    },
    provider_portal::{
        ProviderPortalSettings,
        client::PortalClient,
        reconcile,
        worker::{IdentityWorker, PortalHealth},
    },
    service::Roster,
    store::{self, Store, StoreOptions, lease::LeasePolicy},
    telemetry,
    transport::{self, connect::ConnectLayer, cors, grpc_web::GrpcWebOnlyLayer, listener},
};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database: {0}")]
    Database(#[source] Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("Provider Portal: {0}")]
    ProviderPortal(String),
    #[error("{0}; roster does not start without the keys to verify tokens")]
    Jwks(String),
    #[error("descriptors: {0}")]
    Descriptors(#[from] prost_reflect::DescriptorError),
}

/// The names health reports on: the server as a whole (`""`) and each service.
const HEALTH_NAMES: [&str; 5] = [
    "",
    <OrganizationServiceServer<OrganizationApi> as NamedService>::NAME,
    <MembershipServiceServer<MembershipApi> as NamedService>::NAME,
    <EventServiceServer<EventApi> as NamedService>::NAME,
    <AuthorizationServiceServer<AuthorizationApi> as NamedService>::NAME,
];

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    for name in HEALTH_NAMES {
        health.set_service_status(name, status).await;
    }
}

/// Serves roster on `listener` until `shutdown` completes, with the parts
/// [`crate::config::Config::validate`] built.
///
/// When `shutdown` completes: health turns NOT_SERVING, new calls are
/// refused, event streams end, calls in flight get up to
/// `config.shutdown_grace` to finish, then the database pool closes.
pub async fn serve(
    ready: Ready,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let Ready {
        config,
        verifier,
        mailer,
        tls,
        provider_portal,
        invitation_links,
        cors_origins,
        // Installed with the log subscriber, before serving (`telemetry::init`).
        traces: _,
    } = ready;
    if tls.is_none() && !config.listen.ip().is_loopback() {
        warn!(address = %config.listen, "serving plaintext gRPC on a non-loopback address: put TLS in front, or set ROSTER_TLS_CERT");
    }
    if config.jwt.accepts_any_audience() {
        warn!(
            "ROSTER_JWT_ANY_AUDIENCE: tokens from the JWKS are accepted whatever their audience, also those minted for other clients of the identity provider"
        );
    }
    if let Some(address) = config.metrics_listen {
        telemetry::install_metrics(address).map_err(ServeError::Metrics)?;
        info!(%address, "serving Prometheus metrics");
    }
    if let Some(remote) = verifier.remote() {
        // Decided: no start without keys. A roster up but refusing every
        // token would look healthy to a load balancer while failing every
        // call; exiting says what is wrong, and the orchestrator retries.
        verifier
            .refresh()
            .await
            .map_err(|err| ServeError::Jwks(err.to_string()))?;
        info!(url = %remote.url(), "JWKS fetched");
    }
    let store = Store::connect_with(
        &config.database_url,
        StoreOptions {
            max_connections: config.database_max_connections,
            sqlite_busy_timeout: config.sqlite_busy_timeout,
        },
    )
    .await
    .map_err(ServeError::Database)?;
    // Cancelled once, when shutdown begins: ends the event streams and the
    // background loops, and makes the protect layer refuse new calls.
    let stop = CancellationToken::new();
    let mut roster = Roster::new(
        store.clone(),
        config.settings(invitation_links),
        stop.clone(),
    );
    let identities = identity_worker(provider_portal, &store, &roster)?;
    if let Some(worker) = &identities {
        roster.deliver_identities_with(worker.clone());
    }
    let roster = Arc::new(roster);
    roster
        .start_following()
        .await
        .map_err(ServeError::Database)?;

    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::Serving).await;
    let mut background = spawn_background(&config, &store, &roster, mailer, &health, &stop);
    background.extend(verifier.spawn_refresh(stop.clone()));
    if let Some(worker) = identities {
        background.extend(spawn_identity_tasks(
            &config, &store, worker, &health, &stop,
        ));
    }

    let limits = config.limits;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let keepalive =
        (!limits.http2_keepalive_interval.is_zero()).then_some(limits.http2_keepalive_interval);
    // TLS, TCP options and the connection limits are the listener's
    // (`transport::listener`), which hands tonic connections ready to serve.
    let builder = Server::builder()
        // gRPC-Web and Connect clients (browsers, curl) speak HTTP/1.1 too.
        .accept_http1(true)
        .http2_keepalive_interval(keepalive)
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout));
    let size = limits.max_message_bytes;
    // Outside in (see `transport`): CORS, gRPC-Web, observe, Connect,
    // protect, auth; so every protocol is observed, limited and
    // authenticated as the gRPC call it becomes.
    let router = builder
        .layer(tower::util::option_layer(cors::layer(&cors_origins)))
        .layer(GrpcWebOnlyLayer)
        .layer(ObserveLayer)
        .layer(ConnectLayer::new(transport::descriptors()?, size))
        .layer(ProtectLayer::new(
            limits.max_concurrent_rpcs,
            limits.rpc_timeout,
            stop.clone(),
        ))
        .layer(AuthLayer::new(verifier))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            OrganizationServiceServer::new(OrganizationApi::new(roster.clone()))
                .max_decoding_message_size(size)
                .max_encoding_message_size(size),
        )
        .add_service(
            MembershipServiceServer::new(MembershipApi::new(roster.clone()))
                .max_decoding_message_size(size)
                .max_encoding_message_size(size),
        )
        .add_service(
            EventServiceServer::new(EventApi::new(roster.clone()))
                .max_decoding_message_size(size)
                .max_encoding_message_size(size),
        )
        .add_service(
            AuthorizationServiceServer::new(AuthorizationApi::new(roster))
                .max_decoding_message_size(size)
                .max_encoding_message_size(size),
        );

    // roster-spawn (the bench and the tests) reads the bound address from
    // this line: its message and its `address` field.
    info!(address = %listener.local_addr()?, "roster is serving");
    let draining = {
        let health = health.clone();
        let stop = stop.clone();
        async move {
            shutdown.await;
            info!(
                "shutting down: health NOT_SERVING, refusing new calls, finishing calls in flight"
            );
            set_health(&health, ServingStatus::NotServing).await;
            stop.cancel();
        }
    };
    let max_connections = limits.connection_cap();
    info!(
        max_connections,
        handshake_timeout = ?limits.handshake_timeout,
        "accepting connections"
    );
    let incoming = listener::incoming(
        listener,
        listener::Settings {
            max_connections,
            handshake_timeout: limits.handshake_timeout,
            tls,
        },
    );
    let server = router.serve_with_incoming_shutdown(incoming, draining);
    let grace = config.shutdown_grace;
    let result = tokio::select! {
        result = server => result,
        () = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            warn!(?grace, "grace period over: stopping with calls still in flight");
            Ok(())
        }
    };
    for task in background {
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            warn!("a background task did not stop in time");
        }
    }
    store.close().await.map_err(ServeError::Database)?;
    info!("roster stopped");
    Ok(result?)
}

/// Starts the background tasks; they end when `stop` is cancelled.
fn spawn_background(
    config: &Config,
    store: &Store,
    roster: &Arc<Roster>,
    mailer: Arc<dyn Mailer>,
    health: &HealthReporter,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(
            Dispatcher::new(
                store.clone(),
                mailer,
                roster.mail_signal().clone(),
                roster.events_signal().clone(),
                config.mail_poll_interval,
                LeasePolicy {
                    attempt_timeout: config.mail_attempt_timeout,
                },
            )
            .run(stop.clone()),
        ),
        tokio::spawn({
            let roster = roster.clone();
            let stop = stop.clone();
            let interval = config.expiry_sweep_interval;
            async move { roster.run_expiry_sweeper(interval, &stop).await }
        }),
        tokio::spawn({
            let roster = roster.clone();
            let stop = stop.clone();
            async move {
                let wake = roster.events_signal().clone();
                roster.follow_changes(&wake, &stop).await;
            }
        }),
        tokio::spawn(monitor_database(
            store.clone(),
            health.clone(),
            config.health_check_interval,
            stop.clone(),
        )),
    ];
    if store.backend() == DbBackend::Postgres {
        tasks.push(tokio::spawn(store::listen::relay_notifications(
            store.clone(),
            roster.events_signal().clone(),
            stop.clone(),
        )));
    }
    if config.metrics_listen.is_some() {
        tasks.push(tokio::spawn(telemetry::sample_gauges(
            store.clone(),
            Duration::from_secs(5).min(config.health_check_interval),
            stop.clone(),
        )));
    }
    tasks
}

/// The health name whose status says whether the Provider Portal answers
/// (NOT_SERVING while it fails as a whole: a refused token, an outage).
pub const PROVIDER_PORTAL_HEALTH: &str = "roster.ProviderPortal";

/// The developer identity worker, if a Provider Portal is configured.
fn identity_worker(
    settings: Option<ProviderPortalSettings>,
    store: &Store,
    roster: &Roster,
) -> Result<Option<Arc<IdentityWorker>>, ServeError> {
    let Some(settings) = settings else {
        info!(
            "no Provider Portal configured (ROSTER_PROVIDER_PORTAL_URL): developer identities exist only in roster and its change log"
        );
        return Ok(None);
    };
    let client = PortalClient::new(&settings).map_err(ServeError::ProviderPortal)?;
    info!(url = %settings.base_url, "creating and deleting developer identities in the Provider Portal");
    Ok(Some(Arc::new(IdentityWorker::new(
        store.clone(),
        client,
        roster.events_signal().clone(),
        settings.timeout,
        settings.poll_interval,
        settings.max_backoff,
    ))))
}

/// Starts the identity worker, the periodic reconciliation and the health
/// detail that follows the portal.
fn spawn_identity_tasks(
    config: &Config,
    store: &Store,
    worker: Arc<IdentityWorker>,
    health: &HealthReporter,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let interval = config.provider_portal.provider_portal_reconcile_interval;
    let mut portal = worker.health();
    let health = health.clone();
    let stopping = stop.clone();
    vec![
        tokio::spawn(worker.clone().run(stop.clone())),
        tokio::spawn(reconcile::run_periodically(
            store.clone(),
            worker,
            interval,
            stop.clone(),
        )),
        tokio::spawn(async move {
            loop {
                let status = match &*portal.borrow_and_update() {
                    PortalHealth::Failing { .. } => ServingStatus::NotServing,
                    PortalHealth::Answering | PortalHealth::Unknown => ServingStatus::Serving,
                };
                health
                    .set_service_status(PROVIDER_PORTAL_HEALTH, status)
                    .await;
                tokio::select! {
                    changed = portal.changed() => if changed.is_err() { return },
                    () = stopping.cancelled() => return,
                }
            }
        }),
    ]
}

/// Reports NOT_SERVING while the database does not answer, SERVING when it
/// does again (not after shutdown has begun).
async fn monitor_database(
    store: Store,
    health: HealthReporter,
    interval: Duration,
    stop: CancellationToken,
) {
    let serving = &AtomicBool::new(true);
    let (store, health, stopping) = (&store, &health, &stop);
    background::repeat(&stop, None, Start::After(interval), move || async move {
        let answers = matches!(
            tokio::time::timeout(interval.max(Duration::from_secs(1)), store.ping()).await,
            Ok(Ok(()))
        );
        if !stopping.is_cancelled() && serving.swap(answers, Ordering::Relaxed) != answers {
            if answers {
                info!("the database answers again: SERVING");
                set_health(health, ServingStatus::Serving).await;
            } else {
                warn!("the database does not answer: NOT_SERVING");
                set_health(health, ServingStatus::NotServing).await;
            }
        }
        Wait::Until(interval)
    })
    .await;
}
