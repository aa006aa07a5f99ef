//! Keys from a JWKS URL (`ROSTER_JWKS_URL`): a small HTTP server in the test
//! serves the JWKS, rotates it, counts its requests and goes away; roster
//! must follow the rotation without a restart, refetch at most once per
//! window however many made-up `kid`s arrive, and keep its last good keys
//! when the server is gone. The real binary shows what only a process
//! shows: that it does not start while the URL is unreachable, and the
//! refresh metrics on its Prometheus endpoint.
//!
//! The keys are the fixtures of `tests/fixtures/` (see its README).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use roster::{
    auth::{claims::OneOrMany, token::Claims},
    pb,
};
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::Code;

use roster_spawn::Spawn;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, assert_error},
    production::{sample, scrape},
};

/// The audience roster's tokens are minted for (a JWKS needs one).
const AUDIENCE: &str = "roster";

backend_tests!(
    a_rotated_key_is_fetched_on_its_first_token_and_made_up_kids_fetch_once_per_window,
    with_the_jwks_server_gone_the_last_good_keys_still_verify,
);

async fn a_rotated_key_is_fetched_on_its_first_token_and_made_up_kids_fetch_once_per_window(
    backend: Backend,
) {
    let jwks = JwksServer::start(keys(&["test-rsa"])).await;
    let window = Duration::from_secs(5);
    let app = TestApp::spawn_with(&backend, |c| {
        c.jwt.jwks_url = Some(jwks.url());
        c.jwt.jwt_audience = Some(AUDIENCE.into());
        c.jwt.jwks_refresh_interval = Duration::from_secs(3600);
        c.jwt.jwks_min_refresh_interval = window;
    })
    .await;
    assert_eq!(jwks.fetches(), 1, "fetched once at start");

    let alice = sign(Algorithm::RS256, "test-rsa", "alice", &rsa_key());
    assert!(list(&app, &alice).await.is_ok());

    // A flood of made-up kids: all refused, one fetch for all of them.
    let made_up: Vec<_> = (0..40)
        .map(|n| {
            sign(
                Algorithm::ES256,
                &format!("made-up-{n}"),
                "mallory",
                &ec_key(),
            )
        })
        .collect();
    let replies = futures::future::join_all(made_up.iter().map(|token| list(&app, token))).await;
    for reply in replies {
        assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
    }
    assert_eq!(jwks.fetches(), 2, "one fetch for the whole flood");

    // The identity provider rotates: the EC key replaces the RSA key. Once
    // the window has passed, the new kid's first token is accepted.
    jwks.serve(keys(&["test-ec"]));
    tokio::time::sleep(window + Duration::from_millis(500)).await;
    let bob = sign(Algorithm::ES256, "test-ec", "bob", &ec_key());
    let reply = list(&app, &bob).await;
    assert!(reply.is_ok(), "{reply:?}");
    assert_eq!(jwks.fetches(), 3);

    // Within the new window: more made-up kids, and the retired RSA key,
    // are refused without fetching again.
    let replies = futures::future::join_all(made_up.iter().map(|token| list(&app, token))).await;
    for reply in replies {
        assert_error(reply, Code::Unauthenticated, "INVALID_TOKEN");
    }
    let carol_retired = sign(Algorithm::RS256, "test-rsa", "carol", &rsa_key());
    assert_error(
        list(&app, &carol_retired).await,
        Code::Unauthenticated,
        "INVALID_TOKEN",
    );
    assert_eq!(jwks.fetches(), 3, "no fetch within the window");

    // A key the JWKS never had, and a known kid with another key's signature.
    let unknown = sign(Algorithm::EdDSA, "test-ed25519", "dave", &ed25519_key());
    let forged = sign(Algorithm::ES256, "test-ec", "erin", &other_ec_key());
    assert_error(
        list(&app, &unknown).await,
        Code::Unauthenticated,
        "INVALID_TOKEN",
    );
    assert_error(
        list(&app, &forged).await,
        Code::Unauthenticated,
        "INVALID_TOKEN",
    );
}

async fn with_the_jwks_server_gone_the_last_good_keys_still_verify(backend: Backend) {
    let mut jwks = JwksServer::start(keys(&["test-rsa", "test-ec"])).await;
    let app = TestApp::spawn_with(&backend, |c| {
        c.jwt.jwks_url = Some(jwks.url());
        c.jwt.jwt_audience = Some(AUDIENCE.into());
        c.jwt.jwks_refresh_interval = Duration::from_millis(200);
    })
    .await;
    let alice = sign(Algorithm::RS256, "test-rsa", "alice", &rsa_key());
    assert!(list(&app, &alice).await.is_ok());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        jwks.fetches() >= 3,
        "refreshed on schedule: {}",
        jwks.fetches()
    );

    jwks.stop().await;
    // Several scheduled refreshes fail, and so does the one a made-up kid asks for.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let made_up = sign(Algorithm::ES256, "made-up", "mallory", &ec_key());
    assert_error(
        list(&app, &made_up).await,
        Code::Unauthenticated,
        "INVALID_TOKEN",
    );

    // Tokens not seen before (so not in the verified-token cache), with known kids.
    let bob = sign(Algorithm::ES256, "test-ec", "bob", &ec_key());
    let carol = sign(Algorithm::RS256, "test-rsa", "carol", &rsa_key());
    let bob_reply = list(&app, &bob).await;
    let carol_reply = list(&app, &carol).await;
    assert!(bob_reply.is_ok(), "{bob_reply:?}");
    assert!(carol_reply.is_ok(), "{carol_reply:?}");
}

#[test]
fn roster_does_not_start_while_the_jwks_url_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("roster.db");
    // A port nothing listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/api/auth/jwks");

    let started = Spawn::new(env!("CARGO_BIN_EXE_roster"))
        .args([
            "--database-url",
            &format!("sqlite://{}?mode=rwc", database.display()),
        ])
        .args(["--jwks-url", &url, "--jwt-audience", AUDIENCE])
        .start(Duration::from_secs(60));

    let error = match started {
        Ok(_) => panic!("roster served without the keys of {url}"),
        Err(error) => error,
    };
    assert!(error.message.contains("exited before serving"), "{error}");
    let failure = error
        .log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no error line in:\n{}", error.log));
    let said = failure["error"].as_str().unwrap_or_default();
    assert!(
        said.contains(&format!("cannot fetch the JWKS from {url}"))
            && said.contains("roster does not start without the keys to verify tokens"),
        "{failure}"
    );
    // It gave up before opening the database.
    assert!(!database.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_failures_and_the_key_age_are_on_the_metrics_endpoint() {
    const FAILURES: &str = "roster_jwks_refresh_failures_total";
    const AGE: &str = "roster_jwks_age_seconds";
    let jwks = JwksServer::start(keys(&["test-rsa"])).await;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Spawn::new(env!("CARGO_BIN_EXE_roster"))
        .args(["--database-url", &database])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .args(["--jwks-url", &jwks.url(), "--jwt-audience", AUDIENCE])
        .args(["--jwks-refresh-interval", "200ms"])
        .start(Duration::from_secs(60))
        .unwrap();
    let metrics = |wanted: &dyn Fn(&str) -> bool, what: &str| {
        let started = std::time::Instant::now();
        loop {
            let text = scrape(metrics_port);
            if wanted(&text) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what}; metrics:\n{text}\nlog:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // Refreshing every 200 ms: the keys are never much older than that,
    // and nothing has failed.
    let text = metrics(
        &|text| jwks.fetches() >= 3 && sample(text, AGE).is_some(),
        "refreshes on schedule",
    );
    assert!(sample(&text, AGE).unwrap() < 2.0, "{text}");
    assert!(
        matches!(sample(&text, FAILURES), None | Some(0.0)),
        "{text}"
    );

    // The identity provider fails: every refresh fails, counted, and the
    // keys in use grow old.
    jwks.fail(true);
    let text = metrics(
        &|text| {
            sample(text, FAILURES).is_some_and(|n| n >= 3.0)
                && sample(text, AGE).is_some_and(|age| age >= 1.0)
        },
        "failures counted and the keys aging",
    );
    let failed = sample(&text, FAILURES).unwrap();

    // It is back: the next refresh succeeds, the keys are fresh again, and
    // failures are no longer counted.
    jwks.fail(false);
    let text = metrics(
        &|text| sample(text, AGE).is_some_and(|age| age < 0.5),
        "fresh keys after recovery",
    );
    let recovered = sample(&text, FAILURES).unwrap();
    assert!(recovered >= failed, "{text}");
    std::thread::sleep(Duration::from_secs(1));
    let text = scrape(metrics_port);
    assert_eq!(sample(&text, FAILURES), Some(recovered), "{text}");
}

/// A JWKS on loopback that can be rotated and stopped, counting requests.
struct JwksServer {
    address: std::net::SocketAddr,
    state: Arc<Mutex<Served>>,
    task: Option<JoinHandle<()>>,
}

struct Served {
    jwks: Value,
    fetches: usize,
    /// Answer 503 instead of the keys.
    failing: bool,
}

impl JwksServer {
    async fn start(jwks: Value) -> Self {
        let state = Arc::new(Mutex::new(Served {
            jwks,
            fetches: 0,
            failing: false,
        }));
        let router = Router::new()
            .route("/api/auth/jwks", get(answer))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            address,
            state,
            task: Some(task),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/api/auth/jwks", self.address)
    }

    fn fetches(&self) -> usize {
        self.state.lock().unwrap().fetches
    }

    fn serve(&self, jwks: Value) {
        self.state.lock().unwrap().jwks = jwks;
    }

    /// Answers 503 Service Unavailable from now on (`true`), or the keys again.
    fn fail(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    /// Stops listening: connections are refused from now on. Connections
    /// already open outlive the accept loop (axum serves each on its own
    /// task), so from now on they get 503: no fetch succeeds.
    async fn stop(&mut self) {
        self.fail(true);
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn answer(
    State(state): State<Arc<Mutex<Served>>>,
) -> Result<Json<Value>, axum::http::StatusCode> {
    let mut served = state.lock().unwrap();
    served.fetches += 1;
    if served.failing {
        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(Json(served.jwks.clone()))
}

/// The keys of `tests/fixtures/jwks.json` with these kids.
fn keys(kids: &[&str]) -> Value {
    let all: Value = serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|key| kids.contains(&key["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    assert_eq!(keys.len(), kids.len());
    serde_json::json!({ "keys": keys })
}

fn sign(algorithm: Algorithm, kid: &str, sub: &str, key: &EncodingKey) -> String {
    let claims = Claims {
        sub: sub.into(),
        exp: get_current_timestamp() + 3600,
        aud: Some(OneOrMany::One(AUDIENCE.into())),
        ..Claims::default()
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.into());
    encode(&header, &claims, key).unwrap()
}

async fn list(
    app: &TestApp,
    token: &str,
) -> Result<tonic::Response<pb::ListOrganizationsResponse>, tonic::Status> {
    app.orgs_with_token(Some(token))
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa_private.pem")).unwrap()).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&std::fs::read(fixture("ec_private.pem")).unwrap()).unwrap()
}

fn ed25519_key() -> EncodingKey {
    EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519_private.pem")).unwrap()).unwrap()
}

/// A P-256 key that is not the one the JWKS publishes, made for this test.
fn other_ec_key() -> EncodingKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap()
}
