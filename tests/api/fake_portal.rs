//! A fake Provider Portal on loopback, following the developer part of
//! its OpenAPI description ("API7 Enterprise Developer Portal APIs",
//! `packages/portal-sdk/openapi.yaml` of api7/portal-sdk-typescript):
//!
//! - every call needs `Authorization: Bearer <token>`, else `401` with
//!   `{"status": 401, "message": ...}`;
//! - `POST /api/developers` with `{"developer_id": "<^[a-zA-Z0-9-_.]+$, 1-256>"}`
//!   answers `201` with a Developer, `400` for a bad or taken id;
//! - `DELETE /api/developers/{developer_id}` answers `204`, or `404` when
//!   there is none;
//! - `GET /api/developers?page=&page_size=&direction=&order_by=&search=`
//!   answers `200` with `{"list": [Developer...], "total": N}`; `page` and
//!   `page_size` are at least 1 (`400` otherwise);
//! - a Developer is `{"id", "name", "status" (pending|active), "created_at",
//!   "updated_at"}`.
//!
//! Faults are injected on purpose: not listening at first, `500`s, answers
//! slower than roster's timeout (the request is still carried out, as a
//! slow server would), a create carried out whose answer never arrives,
//! malformed answers, a token roster does not have.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{delete, get},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

/// The token the fake accepts unless told otherwise.
pub const TOKEN: &str = "a7prt-test-token";

/// One developer the fake keeps.
#[derive(Debug, Clone)]
pub struct Developer {
    pub status: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub seq: u64,
}

/// Faults to inject, each for the next `n` requests it applies to.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Answer `500` to the next n requests.
    pub server_errors: u32,
    /// Wait this long before carrying out the next n requests.
    pub slow: Option<(Duration, u32)>,
    /// Carry out the next n creates, then never answer.
    pub lost_create_answers: u32,
    /// Answer the next n requests with a body that is not JSON.
    pub malformed: u32,
}

#[derive(Default)]
struct Inner {
    token: String,
    developers: BTreeMap<String, Developer>,
    /// Creates carried out, per developer id.
    creates: HashMap<String, u32>,
    /// Requests being handled, per developer id, and the most at once.
    in_flight: HashMap<String, u32>,
    max_in_flight: u32,
    /// Every request: method and developer id (empty for listings).
    log: Vec<(String, String)>,
    /// Every request for a developer's resources, as it arrived.
    resource_requests: Vec<ResourceRequest>,
    faults: Faults,
    approval_required: bool,
    /// Error bodies as the TypeScript SDK reads them (`error_msg`).
    sdk_error_bodies: bool,
    seq: u64,
}

/// A request for a developer's resources (`/api/applications...`), as the
/// fake received it.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub method: String,
    /// With the query, e.g. `/api/applications?page=1`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ResourceRequest {
    /// The value of header `name`, if it was sent once, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Shared = Arc<Mutex<Inner>>;

/// A running (or not yet running) fake Provider Portal.
pub struct FakePortal {
    pub addr: SocketAddr,
    state: Shared,
    server: Option<JoinHandle<()>>,
}

impl FakePortal {
    /// A fake that answers at once.
    pub async fn start() -> FakePortal {
        let mut fake = Self::down().await;
        fake.come_up().await;
        fake
    }

    /// A fake whose port refuses connections until [`Self::come_up`].
    pub async fn down() -> FakePortal {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        FakePortal {
            addr,
            state: Arc::new(Mutex::new(Inner {
                token: TOKEN.to_owned(),
                ..Inner::default()
            })),
            server: None,
        }
    }

    /// Starts answering on the port.
    pub async fn come_up(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the fake's port");
        let app = Router::new()
            .route("/api/developers", get(list).post(create))
            .route("/api/developers/{developer_id}", delete(remove))
            .fallback(resource)
            .with_state(self.state.clone());
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Stops answering (connections are refused).
    pub fn go_down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn set_token(&self, token: &str) {
        self.with(|s| s.token = token.to_owned());
    }

    pub fn inject(&self, faults: Faults) {
        self.with(|s| s.faults = faults);
    }

    pub fn require_approval(&self, required: bool) {
        self.with(|s| s.approval_required = required);
    }

    pub fn use_sdk_error_bodies(&self) {
        self.with(|s| s.sdk_error_bodies = true);
    }

    /// The provider approves a developer.
    pub fn approve(&self, id: &str) {
        self.with(|s| {
            if let Some(d) = s.developers.get_mut(id) {
                d.status = "active";
            }
        });
    }

    /// Adds a developer as someone else (the Dashboard, another system) would.
    pub fn add_developer(&self, id: &str) {
        self.with(|s| {
            s.seq += 1;
            let seq = s.seq;
            s.developers.insert(
                id.to_owned(),
                Developer {
                    status: "active",
                    created_at: chrono::Utc::now(),
                    seq,
                },
            );
        });
    }

    /// Deletes a developer as an administrator of the portal would.
    pub fn remove_developer(&self, id: &str) {
        self.with(|s| s.developers.remove(id));
    }

    pub fn developer_ids(&self) -> Vec<String> {
        self.with(|s| s.developers.keys().cloned().collect())
    }

    /// How often each id was created (a create carried out, answered or not).
    pub fn creates(&self) -> HashMap<String, u32> {
        self.with(|s| s.creates.clone())
    }

    /// The most requests about one developer id that were handled at once.
    pub fn max_in_flight_per_developer(&self) -> u32 {
        self.with(|s| s.max_in_flight)
    }

    /// Every request so far: (method, developer id).
    pub fn log(&self) -> Vec<(String, String)> {
        self.with(|s| s.log.clone())
    }

    pub fn request_count(&self) -> usize {
        self.with(|s| s.log.len())
    }

    /// Every request for a developer's resources so far, in order.
    pub fn resource_requests(&self) -> Vec<ResourceRequest> {
        self.with(|s| s.resource_requests.clone())
    }
}

impl Drop for FakePortal {
    fn drop(&mut self) {
        self.go_down();
    }
}

fn error(state: &Shared, status: StatusCode, message: &str) -> Response {
    let sdk = state.lock().unwrap().sdk_error_bodies;
    let body = if sdk {
        json!({ "error_msg": message })
    } else {
        json!({ "status": status.as_u16(), "message": message })
    };
    (status, Json(body)).into_response()
}

fn developer_json(id: &str, d: &Developer) -> Value {
    let time = d
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "id": id,
        "name": id,
        "status": d.status,
        "created_at": time,
        "updated_at": time,
    })
}

/// What the fault plan says about one request, decided when it arrives.
struct Plan {
    delay: Option<Duration>,
    server_error: bool,
    malformed: bool,
    lose_answer: bool,
}

/// Checks the token, logs the request and takes its faults; `None` if the
/// token is wrong.
fn arrive(state: &Shared, headers: &HeaderMap, method: &str, id: &str) -> Option<Plan> {
    let mut s = state.lock().unwrap();
    s.log.push((method.to_owned(), id.to_owned()));
    let expected = format!("Bearer {}", s.token);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        return None;
    }
    let f = &mut s.faults;
    let delay = match &mut f.slow {
        Some((delay, n)) if *n > 0 => {
            *n -= 1;
            Some(*delay)
        }
        _ => None,
    };
    let take = |n: &mut u32| {
        let hit = *n > 0;
        *n = n.saturating_sub(1);
        hit
    };
    let server_error = take(&mut f.server_errors);
    let malformed = !server_error && take(&mut f.malformed);
    let lose_answer =
        method == "POST" && !server_error && !malformed && take(&mut f.lost_create_answers);
    if !id.is_empty() {
        let count = s.in_flight.entry(id.to_owned()).or_default();
        *count += 1;
        let now = *count;
        s.max_in_flight = s.max_in_flight.max(now);
    }
    Some(Plan {
        delay,
        server_error,
        malformed,
        lose_answer,
    })
}

/// Counts a request as handled when dropped: also when its client went
/// away and the server dropped the handler.
struct Leave<'a> {
    state: &'a Shared,
    id: &'a str,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        if let Ok(mut s) = self.state.lock()
            && let Some(count) = s.in_flight.get_mut(self.id)
        {
            *count = count.saturating_sub(1);
        }
    }
}

/// Runs `handle` under the request's fault plan.
async fn serve(
    state: &Shared,
    headers: &HeaderMap,
    method: &str,
    id: &str,
    handle: impl FnOnce(&Shared) -> Response,
) -> Response {
    let Some(plan) = arrive(state, headers, method, id) else {
        return error(state, StatusCode::UNAUTHORIZED, "unauthorized");
    };
    let leave = Leave { state, id };
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    let answer = if plan.server_error {
        (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
    } else if plan.malformed {
        (StatusCode::OK, "<html>maintenance</html>").into_response()
    } else {
        handle(state)
    };
    drop(leave);
    if plan.lose_answer {
        // Carried out; the answer never arrives.
        std::future::pending::<()>().await;
    }
    answer
}

fn valid_id(id: &str) -> bool {
    (1..=256).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("developer_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(id) = id.filter(|id| valid_id(id)) else {
        return serve(&state, &headers, "POST", "", |state| {
            error(state, StatusCode::BAD_REQUEST, "invalid developer_id")
        })
        .await;
    };
    let key = id.clone();
    serve(&state, &headers, "POST", &key, move |state| {
        let mut s = state.lock().unwrap();
        if s.developers.contains_key(&id) {
            drop(s);
            return error(state, StatusCode::BAD_REQUEST, "developer already exists");
        }
        s.seq += 1;
        let developer = Developer {
            status: if s.approval_required {
                "pending"
            } else {
                "active"
            },
            created_at: chrono::Utc::now(),
            seq: s.seq,
        };
        let body = developer_json(&id, &developer);
        s.developers.insert(id.clone(), developer);
        *s.creates.entry(id).or_default() += 1;
        (StatusCode::CREATED, Json(body)).into_response()
    })
    .await
}

async fn remove(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let key = id.clone();
    serve(&state, &headers, "DELETE", &key, move |state| {
        let removed = state.lock().unwrap().developers.remove(&id);
        match removed {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => error(state, StatusCode::NOT_FOUND, "resource not found"),
        }
    })
    .await
}

async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    serve(&state, &headers, "GET", "", move |state| {
        let number = |name: &str, default: i64| -> Option<i64> {
            match query.get(name) {
                None => Some(default),
                Some(v) => v.parse().ok().filter(|n| *n >= 1),
            }
        };
        let (Some(page), Some(page_size)) = (number("page", 1), number("page_size", 10)) else {
            return error(
                state,
                StatusCode::BAD_REQUEST,
                "page and page_size must be at least 1",
            );
        };
        let descending = match query.get("direction").map(String::as_str) {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => return error(state, StatusCode::BAD_REQUEST, "invalid direction"),
        };
        if !matches!(
            query.get("order_by").map(String::as_str),
            None | Some("created_at" | "last_active_at")
        ) {
            return error(state, StatusCode::BAD_REQUEST, "invalid order_by");
        }
        let s = state.lock().unwrap();
        let search = query.get("search").cloned().unwrap_or_default();
        let mut matching: Vec<_> = s
            .developers
            .iter()
            .filter(|(id, _)| id.contains(&search))
            .collect();
        matching.sort_by_key(|(_, d)| d.seq);
        if descending {
            matching.reverse();
        }
        let total = matching.len();
        let skip = usize::try_from((page - 1) * page_size).unwrap_or(usize::MAX);
        let take = usize::try_from(page_size).unwrap_or(usize::MAX);
        let list: Vec<Value> = matching
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|(id, d)| developer_json(id, d))
            .collect();
        Json(json!({ "list": list, "total": total })).into_response()
    })
    .await
}

/// A developer's resources: recorded, then answered with an echo of the
/// request if the token and the developer are right.
async fn resource(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let developer = headers
        .get("x-portal-developer-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut s = state.lock().unwrap();
    s.resource_requests.push(ResourceRequest {
        method: method.to_string(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let expected = format!("Bearer {}", s.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        drop(s);
        return error(&state, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if !path.starts_with("/api/") || !s.developers.contains_key(&developer) {
        drop(s);
        return error(&state, StatusCode::NOT_FOUND, "resource not found");
    }
    let status = if method == Method::POST {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let echo = json!({
        "method": method.as_str(),
        "path": path,
        "developer_id": developer,
        "body": String::from_utf8_lossy(&body),
    });
    (status, [("x-fake-portal", "echo")], Json(echo)).into_response()
}
