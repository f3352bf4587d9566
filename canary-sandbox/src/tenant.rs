//! The reference tenant server: the six endpoints the `workspace-server`
//! smoke suite checks, implemented for real, with fault modes that each
//! break one thing a release can break.
//!
//! ```no_run
//! # async fn demo() {
//! use canary_sandbox::tenant::{TenantFault, TenantOptions, TenantServer};
//!
//! let tenant = TenantServer::start(TenantOptions {
//!     token: "admin-token".into(),
//!     version: "4c1d56e".into(),
//!     fault: TenantFault::None,
//! })
//! .await;
//! println!("tenant at {}", tenant.url());
//! // Dropping the server stops it.
//! # }
//! ```
//!
//! Endpoints (all but the unauthenticated liveness answer need
//! `Authorization: Bearer <token>`; without it they answer 401):
//!
//! | request | answer |
//! |---|---|
//! | `GET /admin/liveness` | `{"status":"ok","version":…,"subsystems":{…}}` |
//! | `GET /workspaces` | an array of workspaces |
//! | `POST /memories/commit` `{"content": "…"}` | 201 `{"id": n}`; the content is stored |
//! | `GET /memories/search?q=…` | an array of the stored memories whose content contains `q` |
//! | `GET /events` | an array of events (one per commit) |
//!
//! Two more, without authentication, for metric analysis:
//!
//! | request | answer |
//! |---|---|
//! | `GET /work` | `{"ok": true}`: a request that counts as traffic, for load generators |
//! | `GET /metrics` | Prometheus text: `canary_tenant_requests_total{method,code}` and the histogram `canary_tenant_request_duration_seconds` |
//!
//! Every request but `GET /metrics` is counted in both, faults included (a
//! 500 of [`TenantFault::ServerError`] is a `code="500"`); `/metrics` itself
//! is never faulted, delayed or counted, as a real scrape endpoint on its
//! own port would not be.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::lock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use crate::server::Server;

mod metrics;

use metrics::Metrics;

/// The version a tenant with [`TenantFault::OldVersion`] reports: a sha no
/// release has.
pub const OLD_VERSION: &str = "0000000000000000000000000000000000000000";

/// What is wrong with a reference tenant. Each fault breaks what one kind of
/// regression breaks; the smoke suite must catch each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TenantFault {
    /// Healthy.
    #[default]
    None,
    /// `GET /admin/liveness` answers 200 without a bearer token (an auth
    /// regression; the suite's last check guards against it).
    AuthBypass,
    /// `POST /memories/commit` answers 201 but stores nothing, so the search
    /// does not find the commit.
    BrokenRoundTrip,
    /// `GET /workspaces` answers an object, and liveness has no
    /// `subsystems`.
    WrongShapes,
    /// Every request answers 500, with a debug body that echoes the
    /// request's `Authorization` header (as careless error pages do).
    ServerError,
    /// Every answer is delayed by this long.
    Slow(Duration),
    /// Every answer is an HTML page with status 200.
    NonJson,
    /// The first N requests answer 503; after that the tenant is healthy.
    Flaky(u32),
    /// Healthy, but liveness reports [`OLD_VERSION`]: the tenant did not
    /// roll out the release.
    OldVersion,
    /// This many of every million requests answer 500 (spread evenly:
    /// exactly `⌊n · rate⌋` of the first `n` requests), the others are
    /// served normally: the regression only metrics see. Build it with
    /// [`TenantFault::error_rate`].
    ErrorRate {
        /// Failing requests per million.
        per_million: u32,
    },
}

impl TenantFault {
    /// [`TenantFault::ErrorRate`] failing `fraction` of the requests
    /// (`0.02`: 2%), clamped to `0..=1`.
    pub fn error_rate(fraction: f64) -> Self {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        // In 0..=1_000_000 after the clamp.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let per_million = (fraction * 1_000_000.0).round() as u32;
        Self::ErrorRate { per_million }
    }
}

/// How to start a reference tenant.
#[derive(Debug, Clone, Default)]
pub struct TenantOptions {
    /// The admin token the tenant accepts as `Authorization: Bearer …`.
    pub token: String,
    /// The version liveness reports (a sha).
    pub version: String,
    /// The fault, if any.
    pub fault: TenantFault,
}

struct Memory {
    id: u64,
    content: String,
}

struct Shared {
    token: String,
    version: Mutex<String>,
    fault: Mutex<TenantFault>,
    requests: AtomicU64,
    memories: Mutex<Vec<Memory>>,
    metrics: Mutex<Metrics>,
}

/// A running reference tenant on `127.0.0.1` and a free port. Dropping it
/// stops the server.
pub struct TenantServer {
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TenantServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantServer")
            .field("url", &self.url())
            .field("fault", &self.fault())
            .finish_non_exhaustive()
    }
}

impl TenantServer {
    /// Starts a tenant on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start(options: TenantOptions) -> Self {
        let shared = Arc::new(Shared {
            token: options.token,
            version: Mutex::new(options.version),
            fault: Mutex::new(options.fault),
            requests: AtomicU64::new(0),
            memories: Mutex::new(Vec::new()),
            metrics: Mutex::new(Metrics::default()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(|_| app).await;
        Self { server, shared }
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Changes the version liveness reports (a rollout).
    pub fn set_version(&self, version: impl Into<String>) {
        *lock(&self.shared.version) = version.into();
    }

    /// Changes the fault. Setting [`TenantFault::Flaky`] restarts its count
    /// from the number of requests served so far.
    pub fn set_fault(&self, fault: TenantFault) {
        let fault = match fault {
            TenantFault::Flaky(n) => {
                let served = self.requests();
                TenantFault::Flaky(n.saturating_add(u32::try_from(served).unwrap_or(u32::MAX)))
            }
            other => other,
        };
        *lock(&self.shared.fault) = fault;
    }

    /// The current fault.
    pub fn fault(&self) -> TenantFault {
        *lock(&self.shared.fault)
    }

    /// How many requests the tenant has received (scrapes of `/metrics`
    /// aside).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests answered so far (as `/metrics` counts them), and how many
    /// with a 5xx.
    pub fn served(&self) -> (u64, u64) {
        self.counters().served()
    }

    /// A handle on the tenant's request counters that does not borrow it
    /// (for a metrics endpoint answering from them).
    pub fn counters(&self) -> Counters {
        Counters(Arc::clone(&self.shared))
    }

    /// What `GET /metrics` answers now.
    pub fn metrics_text(&self) -> String {
        lock(&self.shared.metrics).render()
    }

    /// The contents committed so far.
    pub fn memories(&self) -> Vec<String> {
        lock(&self.shared.memories)
            .iter()
            .map(|m| m.content.clone())
            .collect()
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if method == Method::GET && uri.path() == "/metrics" {
        let text = lock(&shared.metrics).render();
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response();
    }
    let started = Instant::now();
    let response = serve(&shared, method.clone(), &uri, &headers, query, body).await;
    lock(&shared.metrics).record(
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn serve(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let fault = *lock(&shared.fault);
    if let TenantFault::Slow(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match fault {
        TenantFault::Flaky(first) if n <= u64::from(first) => {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "starting up"}),
            );
        }
        TenantFault::ServerError => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({
                    "error": "internal server error",
                    "debug": {"path": uri.path(), "authorization": authorization},
                }),
            );
        }
        TenantFault::NonJson => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>Welcome to nginx!</h1></body></html>",
            )
                .into_response();
        }
        TenantFault::ErrorRate { per_million } if metrics::fails(n, per_million) => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "internal server error"}),
            );
        }
        _ => {}
    }
    if method == Method::GET && uri.path() == "/work" {
        return json_response(StatusCode::OK, &json!({"ok": true}));
    }
    let authorized = authorization
        .strip_prefix("Bearer ")
        .is_some_and(|t| !shared.token.is_empty() && t == shared.token);
    let path = uri.path();
    let liveness_open = fault == TenantFault::AuthBypass && path == "/admin/liveness";
    if !authorized && !liveness_open {
        return json_response(StatusCode::UNAUTHORIZED, &json!({"error": "unauthorized"}));
    }
    match (method, path) {
        (Method::GET, "/admin/liveness") => {
            let version = if fault == TenantFault::OldVersion {
                OLD_VERSION.to_string()
            } else {
                lock(&shared.version).clone()
            };
            let body = if fault == TenantFault::WrongShapes {
                json!({"status": "ok", "version": version})
            } else {
                json!({
                    "status": "ok",
                    "version": version,
                    "subsystems": {"db": "ok", "auth": "ok", "memories": "ok"},
                })
            };
            json_response(StatusCode::OK, &body)
        }
        (Method::GET, "/workspaces") => {
            let workspaces = json!([{"id": "ws-1", "name": "default"}]);
            let body = if fault == TenantFault::WrongShapes {
                json!({"workspaces": workspaces})
            } else {
                workspaces
            };
            json_response(StatusCode::OK, &body)
        }
        (Method::POST, "/memories/commit") => {
            let content = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("content").and_then(Value::as_str).map(str::to_string));
            let Some(content) = content else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "expected a JSON body {\"content\": \"…\"}"}),
                );
            };
            let mut memories = lock(&shared.memories);
            let id = memories.len() as u64 + 1;
            if fault != TenantFault::BrokenRoundTrip {
                memories.push(Memory { id, content });
            }
            json_response(StatusCode::CREATED, &json!({"id": id}))
        }
        (Method::GET, "/memories/search") => {
            let q = query.get("q").map_or("", String::as_str);
            let found: Vec<Value> = lock(&shared.memories)
                .iter()
                .filter(|m| !q.is_empty() && m.content.contains(q))
                .map(|m| json!({"id": m.id, "content": m.content}))
                .collect();
            json_response(StatusCode::OK, &Value::Array(found))
        }
        (Method::GET, "/events") => {
            let events: Vec<Value> = lock(&shared.memories)
                .iter()
                .map(|m| json!({"type": "memory.committed", "id": m.id}))
                .collect();
            json_response(StatusCode::OK, &Value::Array(events))
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(fault: TenantFault) -> TenantServer {
        TenantServer::start(TenantOptions {
            token: "t0k".into(),
            version: "abc1234".into(),
            fault,
        })
        .await
    }

    async fn get(server: &TenantServer, path: &str, auth: bool) -> (u16, String) {
        let mut r = reqwest::Client::new().get(format!("{}{path}", server.url()));
        if auth {
            r = r.bearer_auth("t0k");
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    #[tokio::test]
    async fn healthy_endpoints_and_auth() {
        let s = start(TenantFault::None).await;
        let (status, body) = get(&s, "/admin/liveness", true).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["version"], "abc1234");
        assert!(v["subsystems"].is_object());
        assert_eq!(get(&s, "/admin/liveness", false).await.0, 401);
        assert_eq!(get(&s, "/workspaces", false).await.0, 401);
        let (status, body) = get(&s, "/workspaces", true).await;
        assert_eq!((status, body.starts_with('[')), (200, true));
        assert_eq!(get(&s, "/nope", true).await.0, 404);
        let wrong = reqwest::Client::new()
            .get(format!("{}/events", s.url()))
            .bearer_auth("other")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
        assert_eq!(s.requests(), 6);
    }

    #[tokio::test]
    async fn memories_round_trip_unless_broken() {
        for (fault, found) in [(TenantFault::None, 1), (TenantFault::BrokenRoundTrip, 0)] {
            let s = start(fault).await;
            let resp = reqwest::Client::new()
                .post(format!("{}/memories/commit", s.url()))
                .bearer_auth("t0k")
                .body(r#"{"content":"hello canary"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 201);
            let (status, body) = get(&s, "/memories/search?q=canary", true).await;
            assert_eq!(status, 200);
            let v: Vec<Value> = serde_json::from_str(&body).unwrap();
            assert_eq!(v.len(), found, "{fault:?}");
            let (_, events) = get(&s, "/events", true).await;
            assert_eq!(
                serde_json::from_str::<Vec<Value>>(&events).unwrap().len(),
                found
            );
        }
    }

    #[tokio::test]
    async fn faults_can_change_at_run_time() {
        let s = start(TenantFault::None).await;
        s.set_fault(TenantFault::Flaky(2));
        assert_eq!(get(&s, "/workspaces", true).await.0, 503);
        assert_eq!(get(&s, "/workspaces", true).await.0, 503);
        assert_eq!(get(&s, "/workspaces", true).await.0, 200);
        s.set_fault(TenantFault::AuthBypass);
        assert_eq!(get(&s, "/admin/liveness", false).await.0, 200);
        assert_eq!(get(&s, "/events", false).await.0, 401);
        s.set_fault(TenantFault::OldVersion);
        s.set_version("fff0000");
        assert!(get(&s, "/admin/liveness", true)
            .await
            .1
            .contains(OLD_VERSION));
        s.set_fault(TenantFault::None);
        assert!(get(&s, "/admin/liveness", true).await.1.contains("fff0000"));
    }

    /// The value of the series `series` (name and labels, as written) in
    /// the exposition text, as written.
    fn metric<'a>(text: &'a str, series: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    const OK: &str = r#"canary_tenant_requests_total{method="GET",code="200"}"#;
    const FAILED: &str = r#"canary_tenant_requests_total{method="GET",code="500"}"#;

    #[tokio::test]
    async fn metrics_count_every_request_by_code_and_are_open() {
        let s = start(TenantFault::None).await;
        let (status, text) = get(&s, "/metrics", false).await;
        assert_eq!(status, 200);
        assert_eq!((metric(&text, OK), metric(&text, FAILED)), ("0", "0"));
        assert_eq!(get(&s, "/workspaces", true).await.0, 200);
        assert_eq!(get(&s, "/workspaces", false).await.0, 401);
        assert_eq!(get(&s, "/work", false).await.0, 200);
        s.set_fault(TenantFault::ServerError);
        assert_eq!(get(&s, "/work", false).await.0, 500);
        // Faults never reach the scrape endpoint, and scrapes are not
        // requests.
        let (status, text) = get(&s, "/metrics", false).await;
        assert_eq!(status, 200);
        assert_eq!(text, s.metrics_text());
        assert_eq!(metric(&text, OK), "2");
        assert_eq!(metric(&text, FAILED), "1");
        assert_eq!(
            metric(
                &text,
                r#"canary_tenant_requests_total{method="GET",code="401"}"#
            ),
            "1"
        );
        assert_eq!(
            metric(&text, "canary_tenant_request_duration_seconds_count"),
            "4"
        );
        assert_eq!(
            metric(
                &text,
                r#"canary_tenant_request_duration_seconds_bucket{le="+Inf"}"#
            ),
            "4"
        );
        assert_eq!(s.requests(), 4);
    }

    #[tokio::test]
    async fn an_error_rate_fails_exactly_that_fraction() {
        let s = start(TenantFault::error_rate(0.25)).await;
        assert_eq!(
            s.fault(),
            TenantFault::ErrorRate {
                per_million: 250_000
            }
        );
        let mut failed = 0;
        for _ in 0..100 {
            if get(&s, "/work", false).await.0 == 500 {
                failed += 1;
            }
        }
        assert_eq!(failed, 25);
        let text = s.metrics_text();
        assert_eq!((metric(&text, OK), metric(&text, FAILED)), ("75", "25"));
        // The other requests are served as usual, auth included.
        s.set_fault(TenantFault::error_rate(0.0));
        assert_eq!(get(&s, "/workspaces", true).await.0, 200);
        assert_eq!(get(&s, "/workspaces", false).await.0, 401);
        assert_eq!(
            TenantFault::error_rate(7.0),
            TenantFault::ErrorRate {
                per_million: 1_000_000
            }
        );
    }

    #[tokio::test]
    async fn slowness_shows_in_the_latency_histogram() {
        let s = start(TenantFault::Slow(Duration::from_millis(60))).await;
        for _ in 0..3 {
            assert_eq!(get(&s, "/work", false).await.0, 200);
        }
        let text = s.metrics_text();
        let bucket = |le: &str| {
            metric(
                &text,
                &format!("canary_tenant_request_duration_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.05"), "0");
        assert_eq!(bucket("+Inf"), "3");
        let sum: f64 = metric(&text, "canary_tenant_request_duration_seconds_sum")
            .parse()
            .unwrap();
        assert!(sum >= 0.18, "{sum}");
    }

    #[tokio::test]
    async fn dropping_the_server_closes_its_port() {
        let s = start(TenantFault::None).await;
        let addr = s.addr();
        drop(s);
        let mut closed = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(closed, "{addr} still accepts connections");
    }
}

/// A tenant's request counters, read live ([`TenantServer::counters`]).
#[derive(Clone)]
pub struct Counters(Arc<Shared>);

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Counters").field(&self.served()).finish()
    }
}

impl Counters {
    /// Requests answered so far, and how many with a 5xx.
    pub fn served(&self) -> (u64, u64) {
        lock(&self.0.metrics).totals()
    }
}
