//! Fault injection for any axum server on loopback.
//!
//! A [`FaultServer`] serves a router behind a [`FaultPlan`]: every request
//! is counted and logged, and armed [`Fault`]s strike the Nth request they
//! count — 5xx/429, connection resets, truncated bodies, wrong digests,
//! slowness, HTML error pages. The fake registry runs on one (in front of
//! the sandbox registry); the fault proxy runs on another (in front of the
//! real registry).
//!
//! Faults are counted over `/v2` requests (auth challenges included, as a
//! proxy in front of a registry would see them), over one method's `/v2`
//! requests, or over token requests (`/token`); each fault strikes once.

mod reset;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::Router;
use canary_sandbox::registry::api::{error_response, DOCKER_CONTENT_DIGEST};
use canary_sandbox::registry::sha256_digest;
use canary_sandbox::server::{bind_loopback, Server};
use futures::StreamExt as _;

use reset::{ConnectionHandle, ResettableListener};

/// What an injected fault does to the request it strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status (500, 502, 503, 429, …), a distribution error
    /// body and `Retry-After: 0`; the request has no effect.
    Status(u16),
    /// Close the connection with a TCP reset before any response byte; the
    /// request has no effect.
    ResetConnection,
    /// Handle the request, then send the headers (with the full
    /// `Content-Length`) and only the first half of the body before closing
    /// the connection. Responses without a body (HEAD, PUT) are unchanged.
    TruncatedBody,
    /// Handle the request, then answer with a `Docker-Content-Digest` that
    /// is a valid digest of other bytes.
    WrongDigestHeader,
    /// Wait this long, then handle the request normally.
    Slow(Duration),
    /// Answer `200 text/html` with an HTML page (a captive portal or a
    /// misconfigured proxy); the request has no effect.
    HtmlBody,
}

/// Which requests a [`Fault`] counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultOn {
    /// Every request under `/v2`.
    Api,
    /// Requests under `/v2` with this method.
    Method(Method),
    /// Requests to the token endpoint.
    TokenEndpoint,
}

/// A fault that strikes the `nth` (1-based) request it counts, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The 1-based index of the request to strike, counted from the start
    /// of the registry (not from the call to [`FakeRegistry::inject`](crate::fake_registry::FakeRegistry::inject)).
    pub nth: usize,
    /// Which requests are counted.
    pub on: FaultOn,
    /// What happens.
    pub kind: FaultKind,
}

impl Fault {
    /// Strikes the `nth` request under `/v2`, whatever its method.
    pub fn nth(nth: usize, kind: FaultKind) -> Self {
        Self {
            nth,
            on: FaultOn::Api,
            kind,
        }
    }

    /// Strikes the `nth` request under `/v2` with `method`.
    pub fn nth_method(method: Method, nth: usize, kind: FaultKind) -> Self {
        Self {
            nth,
            on: FaultOn::Method(method),
            kind,
        }
    }

    /// Strikes the `nth` token request.
    pub fn nth_token(nth: usize, kind: FaultKind) -> Self {
        Self {
            nth,
            on: FaultOn::TokenEndpoint,
            kind,
        }
    }
}

/// One request the registry received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `HEAD`, `PUT`, …
    pub method: Method,
    /// The path with its query (`/v2/acme/platform/tags/list?n=2`).
    pub path: String,
    /// The status sent; `None` when the connection was reset instead.
    pub status: Option<u16>,
    /// The request's `Accept` header, if any.
    pub accept: Option<String>,
    /// The request's `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The fault that struck this request, if any.
    pub fault: Option<FaultKind>,
}

#[derive(Default)]
struct FaultState {
    faults: Vec<Fault>,
    api_count: usize,
    method_counts: HashMap<Method, usize>,
    token_count: usize,
    requests: Vec<RecordedRequest>,
}

/// The armed faults and the request log of a [`FaultServer`]. Cheap to
/// clone; clones share the same plan.
#[derive(Clone, Default)]
pub struct FaultPlan {
    inner: Arc<Mutex<FaultState>>,
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FaultPlan")
            .field("armed", &state.faults)
            .field("requests", &state.requests.len())
            .finish()
    }
}

impl FaultPlan {
    /// A plan with no faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a fault. Faults strike once, in the order they match.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Forgets the recorded requests (the fault counters keep counting).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Faults armed and not yet struck.
    pub fn pending(&self) -> Vec<Fault> {
        self.lock().faults.clone()
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An axum [`Router`] served on `127.0.0.1:<free port>` behind a
/// [`FaultPlan`]: every request is counted and logged, and armed faults
/// strike (including [`FaultKind::ResetConnection`], which needs control of
/// the connection). [`FakeRegistry`](crate::fake_registry::FakeRegistry) runs on one; a fault proxy in front of a
/// real registry can run on another with a forwarding router. Dropping it
/// stops the server: no new connections, idle ones closed, in-flight
/// requests finished.
pub struct FaultServer {
    server: Server,
    plan: FaultPlan,
}

impl fmt::Debug for FaultServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultServer")
            .field("addr", &self.server.addr())
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl FaultServer {
    /// Binds a free loopback port, builds the router with `app(address)`
    /// (so it can name its own URL) and serves it behind `plan`.
    pub async fn start(plan: FaultPlan, app: impl FnOnce(SocketAddr) -> Router) -> Self {
        let listener = bind_loopback().await;
        let addr = listener.local_addr().expect("local address");
        let app = app(addr).layer(middleware::from_fn_with_state(plan.clone(), faults));
        // The sandbox's server, on a listener whose connections a fault can
        // reset.
        let server = Server::spawn(addr, move |shutdown| async move {
            let service = app.into_make_service_with_connect_info::<ConnectionHandle>();
            let _ = axum::serve(ResettableListener(listener), service)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Self { server, plan }
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The fault plan and request log.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// The running server, for a handle that keeps the plan apart (the
    /// fake registry).
    pub(crate) fn into_server(self) -> Server {
        self.server
    }
}

// ---------------------------------------------------------------------------
// Fault injection and the request log.

enum Counted {
    Api,
    Token,
    Other,
}

async fn faults(State(plan): State<FaultPlan>, request: Request, next: Next) -> Response<Body> {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_string(), ToString::to_string);
    let accept = header_string(request.headers(), &header::ACCEPT);
    let content_type = header_string(request.headers(), &header::CONTENT_TYPE);
    let connection = request
        .extensions()
        .get::<ConnectInfo<ConnectionHandle>>()
        .map(|c| c.0.clone());

    let counted = if request.uri().path() == "/v2" || request.uri().path().starts_with("/v2/") {
        Counted::Api
    } else if request.uri().path() == "/token" {
        Counted::Token
    } else {
        Counted::Other
    };
    let fault = {
        let mut data = plan.lock();
        match counted {
            Counted::Api => {
                data.api_count += 1;
                let api = data.api_count;
                let count = data.method_counts.entry(method.clone()).or_default();
                *count += 1;
                let of_method = *count;
                take_fault(&mut data.faults, |f| match &f.on {
                    FaultOn::Api => f.nth == api,
                    FaultOn::Method(m) => *m == method && f.nth == of_method,
                    FaultOn::TokenEndpoint => false,
                })
            }
            Counted::Token => {
                data.token_count += 1;
                let n = data.token_count;
                take_fault(&mut data.faults, |f| {
                    f.on == FaultOn::TokenEndpoint && f.nth == n
                })
            }
            Counted::Other => None,
        }
    };

    let is_head = method == Method::HEAD;
    let response = match &fault {
        None => next.run(request).await,
        Some(FaultKind::Status(code)) => status_fault(*code),
        Some(FaultKind::ResetConnection) => {
            if let Some(handle) = &connection {
                handle.reset();
            }
            // Never written: the connection fails on its next write.
            Response::new(Body::empty())
        }
        Some(FaultKind::HtmlBody) => html_fault(),
        Some(FaultKind::Slow(delay)) => {
            tokio::time::sleep(*delay).await;
            next.run(request).await
        }
        Some(FaultKind::WrongDigestHeader) => {
            let mut response = next.run(request).await;
            if response.headers().contains_key(DOCKER_CONTENT_DIGEST) {
                let wrong = sha256_digest(b"canary-fake-registry: not the digest you want");
                response.headers_mut().insert(
                    DOCKER_CONTENT_DIGEST,
                    HeaderValue::from_str(&wrong).expect("a digest is a header value"),
                );
            }
            response
        }
        Some(FaultKind::TruncatedBody) => {
            let response = next.run(request).await;
            if is_head {
                response
            } else {
                truncate(response).await
            }
        }
    };

    let status = if fault == Some(FaultKind::ResetConnection) {
        None
    } else {
        Some(response.status().as_u16())
    };
    plan.lock().requests.push(RecordedRequest {
        method,
        path,
        status,
        accept,
        content_type,
        fault,
    });
    response
}

fn header_string(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn take_fault(faults: &mut Vec<Fault>, hit: impl Fn(&Fault) -> bool) -> Option<FaultKind> {
    let pos = faults.iter().position(hit)?;
    Some(faults.remove(pos).kind)
}

fn status_fault(code: u16) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        429 => ("TOOMANYREQUESTS", "too many requests"),
        503 => ("UNAVAILABLE", "service unavailable"),
        _ => ("UNKNOWN", "unknown error"),
    };
    let mut response = error_response(status, code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
    response
}

fn html_fault() -> Response<Body> {
    let page = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
                <body><h1>Please sign in to continue</h1></body></html>\n";
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_LENGTH, page.len())
        .body(Body::from(page))
        .expect("a valid response")
}

async fn truncate(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if bytes.is_empty() {
        return Response::from_parts(parts, Body::empty());
    }
    parts.headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(bytes.len() as u64),
    );
    let half = bytes.slice(..bytes.len() / 2);
    let head = futures::stream::once(async move { Ok::<Bytes, io::Error>(half) });
    // The pause lets the server flush headers and the first half before the
    // error aborts the connection; without it both could be dropped unsent.
    let tail = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "fault: truncated body",
        ))
    });
    Response::from_parts(parts, Body::from_stream(head.chain(tail)))
}
