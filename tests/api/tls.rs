//! TLS and mutual TLS on the gRPC port, with certificates made for the test.

use std::{path::PathBuf, sync::Arc, time::Duration};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use roster::{config::Config, mail::MemoryMailer, pb};
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
    sync::oneshot,
    time::Instant,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, ServerName, pem::PemObject},
    },
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A test CA, a server certificate for `localhost`, and a client certificate.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn leaf(
    names: Vec<String>,
    purpose: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, &KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    params.extended_key_usages = vec![purpose];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn pki() -> Pki {
    let (ca_params, ca_key, ca_pem) = ca("roster test CA");
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let (server_cert, server_key) = leaf(
        vec!["localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    );
    let (client_cert_pem, client_key_pem) = leaf(
        vec!["applications.example".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.pem"), server_cert).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    Pki {
        dir,
        ca_pem,
        client_cert_pem,
        client_key_pem,
    }
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// roster with TLS on a loopback port; returns the port and a stopper.
async fn serve_tls(pki: &Pki, mutual: bool) -> (u16, oneshot::Sender<()>, tempfile::TempDir) {
    serve_tls_with(pki, mutual, |_| {}).await
}

/// [`serve_tls`] with the configuration adjusted by `configure`.
async fn serve_tls_with(
    pki: &Pki,
    mutual: bool,
    configure: impl FnOnce(&mut Config),
) -> (u16, oneshot::Sender<()>, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::with_database(format!(
        "sqlite://{}?mode=rwc",
        data.path().join("r.db").display()
    ));
    config.tls.tls_cert = Some(pki.path("server.pem"));
    config.tls.tls_key = Some(pki.path("server.key"));
    if mutual {
        config.tls.tls_client_ca = Some(pki.path("ca.pem"));
    }
    configure(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let ready = config
        .validate()
        .unwrap()
        .with_mailer(Arc::new(MemoryMailer::default()));
    tokio::spawn(roster::serve(ready, listener, async move {
        let _ = stopped.await;
    }));
    (port, stop, data)
}

async fn channel(
    port: u16,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    endpoint.connect().await
}

/// Health over `tls`, retried while the server starts.
async fn health(port: u16, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..100 {
        match channel(port, tls.clone()).await {
            Ok(channel) => match HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
            {
                Ok(_) => return Ok(()),
                Err(status) => last = format!("{status:?}"),
            },
            Err(err) => last = format!("{err:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

/// One health call, for a server known to be up.
async fn health_once(port: u16, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let channel = channel(port, tls).await.map_err(|err| format!("{err:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
        .map_err(|status| format!("{status:?}"))
}

fn trusting(pki: &Pki) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roster_serves_tls_and_plaintext_clients_get_nothing() {
    let pki = pki();
    let (port, _stop, _data) = serve_tls(&pki, false).await;
    health(port, Some(trusting(&pki))).await.unwrap();

    // A real call, with a token, over TLS.
    let token = roster::auth::token::mint_hs256(
        roster::auth::token::DEVELOPMENT_SECRET,
        &roster::auth::token::TokenRequest {
            sub: "alice".into(),
            ttl: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .unwrap();
    let mut orgs = pb::organization_service_client::OrganizationServiceClient::new(
        channel(port, Some(trusting(&pki))).await.unwrap(),
    );
    let mut request = tonic::Request::new(pb::CheckSlugRequest {
        slug: "acme".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert!(
        orgs.check_slug(request)
            .await
            .unwrap()
            .into_inner()
            .available
    );

    // Plaintext to the TLS port fails.
    assert!(health_once(port, None).await.is_err());
    // So does TLS that does not trust roster's CA.
    let (_, _, other_ca) = ca("someone else");
    let distrusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(other_ca))
        .domain_name("localhost");
    assert!(health_once(port, Some(distrusting)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_client_ca_only_clients_with_a_certificate_from_it_get_in() {
    let pki = pki();
    let (port, _stop, _data) = serve_tls(&pki, true).await;
    let identity = Identity::from_pem(&pki.client_cert_pem, &pki.client_key_pem);
    health(port, Some(trusting(&pki).identity(identity)))
        .await
        .unwrap();

    assert!(
        health(port, Some(trusting(&pki))).await.is_err(),
        "no client certificate"
    );

    let (stranger_params, stranger_key, _) = ca("a stranger's CA");
    let stranger = Issuer::from_params(&stranger_params, &stranger_key);
    let (cert, key) = leaf(
        vec!["intruder.example".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
        &stranger,
    );
    let forged = trusting(&pki).identity(Identity::from_pem(cert, key));
    assert!(
        health(port, Some(forged)).await.is_err(),
        "a certificate from another CA"
    );
}

#[test]
fn a_client_ca_without_a_server_certificate_is_a_configuration_error() {
    let mut config = Config::with_database("sqlite::memory:");
    config.tls.tls_client_ca = Some("/nonexistent/ca.pem".into());
    assert!(config.validate().is_err());
    config.tls.tls_client_ca = None;
    config.tls.tls_cert = Some("/nonexistent/cert.pem".into());
    config.tls.tls_key = Some("/nonexistent/key.pem".into());
    let error = config.validate().unwrap_err();
    assert!(error.0.contains("/nonexistent/cert.pem"), "{error}");
}

/// Issue 9, item 2, over TLS: a connection that sends nothing (not even a
/// ClientHello), and one that completes TLS but never sends the HTTP/2
/// preface, are both closed once the handshake timeout has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_connections_that_stall_in_the_handshake_are_closed_after_the_timeout() {
    let pki = pki();
    let (port, _stop, _data) = serve_tls_with(&pki, false, |config| {
        config.limits.handshake_timeout = Duration::from_secs(1);
    })
    .await;
    health(port, Some(trusting(&pki))).await.unwrap();

    let start = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(
        CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()).map(Result::unwrap),
    );
    let client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut quiet_after_tls = TlsConnector::from(Arc::new(client))
        .connect(
            ServerName::try_from("localhost").unwrap(),
            TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
        )
        .await
        .expect("the TLS handshake itself completes");

    let mut buf = [0u8; 256];
    let silent_read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(silent_read, Ok(Ok(0) | Err(_))),
        "a connection that sent nothing is still open after 5 s"
    );
    let closed = start.elapsed();
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}"
    );
    let quiet_read = tokio::time::timeout(
        Duration::from_secs(5),
        quiet_after_tls.read_to_end(&mut Vec::new()),
    )
    .await;
    assert!(
        quiet_read.is_ok(),
        "a TLS connection without an HTTP/2 preface is still open after 5 s"
    );
    health_once(port, Some(trusting(&pki))).await.unwrap();
}
