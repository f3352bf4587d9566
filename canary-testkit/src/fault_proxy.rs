//! A fault-injecting reverse proxy in front of a real registry.
//!
//! [`FaultProxy`] listens on `127.0.0.1:<free port>` and forwards every
//! request to an upstream base URL (typically a
//! [`RealRegistry`]): method, path and
//! query, headers and body byte for byte, and the answer's status, headers
//! (`WWW-Authenticate`, `Docker-Content-Digest`, `Link`, `Location`, …) and
//! body back. It runs on the same fault machinery as the fake registry
//! ([`FaultServer`] and [`FaultPlan`]), so a test can make the Nth request
//! fail with a 5xx or 429, a connection reset, a truncated body, a wrong
//! `Docker-Content-Digest` or a delay, while everything else is the real
//! registry's behaviour. [`FaultProxy::host`] is the registry part of an
//! image reference (`127.0.0.1:PORT/acme/platform`).
//!
//! Decisions:
//!
//! - Requests are counted as the fault machinery counts them: every request
//!   under `/v2` (auth challenges included), or every request of one method
//!   under `/v2`, from the start of the proxy (1-based). A fresh proxy per
//!   scenario gives fresh counters; the upstream keeps its state.
//! - A fault strikes once. *Persistent* failure ([`FaultProxy::fail_from`])
//!   and bursts ([`FaultProxy::fail_range`]) arm one fault per request, so
//!   "every request from N on" means the next [`PERSISTENT_SPAN`] requests,
//!   far more than any single run makes.
//! - Faults that answer in place of the registry (statuses, resets) never
//!   reach the upstream: the request has no effect. Truncated bodies, wrong
//!   digest headers and delays are applied to the upstream's answer: the
//!   request did take effect, the client just cannot be sure of it.
//! - The upstream is asked with its own `Host`; `Location`, `Link` and the
//!   `realm` of `WWW-Authenticate` are rewritten to the proxy only where
//!   they name the upstream (`http[s]://<upstream host>`), so a client that
//!   follows them stays behind the proxy. Nothing else is changed.
//! - Hop-by-hop headers (`Connection`, `Keep-Alive`, `Transfer-Encoding`,
//!   `Upgrade`, `TE`, `Trailer`, `Proxy-*`) are not forwarded; bodies are
//!   buffered whole (manifests and test blobs are small), so the length is
//!   always known. Redirects are passed back, never followed.
//! - When the upstream cannot be reached the proxy answers `502` with a
//!   plain-text body naming the error.
//! - Dropping the proxy stops it: no new connections, idle ones closed,
//!   in-flight requests finished.
//! - A request can be *held* ([`FaultProxy::hold_nth`],
//!   [`FaultProxy::hold_when`]): it waits at the proxy, either on arrival
//!   (the registry has not seen it) or after the registry answered (it took
//!   effect, the client does not know yet), until the test lets it go on or
//!   refuses it. The test learns when it got there, so it can act at that
//!   exact point of a run, e.g. signal or kill the client. Holds count the
//!   requests under `/v2` that reach the forwarder (those no fault answered
//!   in place), in arrival order ([`FaultProxy::arrivals`]); the request
//!   log ([`FaultProxy::requests`]) is in completion order.
//!
//! # Example
//!
//! ```no_run
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() {
//! use canary_testkit::faults::FaultKind;
//! use canary_testkit::fault_proxy::FaultProxy;
//! use canary_testkit::real_registry::RealRegistry;
//!
//! let registry = RealRegistry::open();
//! let proxy = FaultProxy::in_front_of(&registry).await;
//! proxy.fail_nth(3, &FaultKind::Status(503)); // the third /v2 request
//! proxy.fail_from_method(&axum::http::Method::PUT, 2, &FaultKind::ResetConnection);
//! let image = format!("{}/acme/platform", proxy.host());
//! # let _ = image;
//! # }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use axum::Router;

use crate::faults::{Fault, FaultKind, FaultPlan, FaultServer, RecordedRequest};
use crate::real_registry::RealRegistry;

mod hold;

use hold::{refused, wait_for_verdict, Holds, Verdict};
pub use hold::{Arrival, Held, HoldAt};

/// How many requests a persistent fault ([`FaultProxy::fail_from`]) covers.
pub const PERSISTENT_SPAN: usize = 10_000;

/// Largest request or response body the proxy buffers.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus `Host` (the upstream gets its own) and `Content-Length` (set from
/// the buffered body).
const NOT_FORWARDED: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::CONTENT_LENGTH,
];

/// A running fault proxy. Stopped on drop.
pub struct FaultProxy {
    server: FaultServer,
    upstream: String,
    holds: Arc<Holds>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.server.addr())
            .field("upstream", &self.upstream)
            .field("plan", self.server.plan())
            .field("arrivals", &self.holds.lock().arrivals.len())
            .finish()
    }
}

struct Upstream {
    client: reqwest::Client,
    /// `http://127.0.0.1:5000`, without a trailing slash.
    base: String,
    /// `127.0.0.1:5000`.
    authority: String,
    /// `http://127.0.0.1:<proxy port>`.
    proxy_base: String,
    holds: Arc<Holds>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port` or
    /// `https://host:port`, system roots for HTTPS), on the current Tokio
    /// runtime.
    ///
    /// # Panics
    ///
    /// When `upstream` is not an `http`/`https` base URL, or no loopback port
    /// can be bound.
    pub async fn start(upstream: &str) -> Self {
        Self::start_with_ca(upstream, None).await
    }

    /// Starts a proxy in front of `registry`, trusting its CA in TLS mode.
    /// Credentials (Basic mode) are the client's business: the proxy passes
    /// `Authorization` and the challenge through.
    pub async fn in_front_of(registry: &RealRegistry) -> Self {
        Self::start_with_ca(&registry.base_url(), registry.ca_path().as_deref()).await
    }

    /// Starts a proxy in front of `upstream`, trusting the PEM CA
    /// certificate in `ca_file` (when given) for HTTPS.
    ///
    /// # Panics
    ///
    /// When `upstream` is not an `http`/`https` base URL, the CA file cannot
    /// be read, or no loopback port can be bound.
    pub async fn start_with_ca(upstream: &str, ca_file: Option<&Path>) -> Self {
        let base = upstream.trim_end_matches('/').to_string();
        let authority = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .unwrap_or_else(|| panic!("upstream `{upstream}` is not an http(s) base URL"))
            .to_string();
        assert!(
            !authority.is_empty() && !authority.contains('/'),
            "upstream `{upstream}` must be a base URL (scheme://host:port)"
        );
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .no_proxy();
        if let Some(ca) = ca_file {
            let pem = std::fs::read(ca)
                .unwrap_or_else(|e| panic!("cannot read CA file {}: {e}", ca.display()));
            let cert = reqwest::Certificate::from_pem(&pem)
                .unwrap_or_else(|e| panic!("{} is not a PEM certificate: {e}", ca.display()));
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().expect("an HTTP client");
        let holds = Arc::new(Holds::default());
        let server = FaultServer::start(FaultPlan::new(), |addr| {
            let state = Arc::new(Upstream {
                client,
                base: base.clone(),
                authority: authority.clone(),
                proxy_base: format!("http://{addr}"),
                holds: Arc::clone(&holds),
            });
            Router::new().fallback(forward).with_state(state)
        })
        .await;
        Self {
            server,
            upstream: base,
            holds,
        }
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference that goes
    /// through the proxy. Loopback, so clients may use plain HTTP.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The upstream base URL, as given (without a trailing slash).
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Arms a fault (see [`Fault`]): the full form, e.g. for the token
    /// endpoint.
    pub fn inject(&self, fault: Fault) {
        self.server.plan().inject(fault);
    }

    /// Fails the `n`th (1-based) request under `/v2`, whatever its method.
    pub fn fail_nth(&self, n: usize, kind: &FaultKind) {
        self.inject(Fault::nth(n, kind.clone()));
    }

    /// Fails the `n`th (1-based) request under `/v2` with `method`.
    pub fn fail_nth_method(&self, method: &Method, n: usize, kind: &FaultKind) {
        self.inject(Fault::nth_method(method.clone(), n, kind.clone()));
    }

    /// Fails `count` consecutive requests under `/v2`, the first being the
    /// `n`th: a burst, e.g. as many as the client's retry attempts so that
    /// one request fails for good and later ones succeed.
    pub fn fail_range(&self, n: usize, count: usize, kind: &FaultKind) {
        for k in n..n.saturating_add(count) {
            self.inject(Fault::nth(k, kind.clone()));
        }
    }

    /// Fails `count` consecutive requests with `method`, the first being
    /// the `n`th of that method.
    pub fn fail_range_method(&self, method: &Method, n: usize, count: usize, kind: &FaultKind) {
        for k in n..n.saturating_add(count) {
            self.inject(Fault::nth_method(method.clone(), k, kind.clone()));
        }
    }

    /// Fails every request under `/v2` from the `n`th on (persistent: the
    /// registry "goes down" at request `n`).
    pub fn fail_from(&self, n: usize, kind: &FaultKind) {
        self.fail_range(n, PERSISTENT_SPAN, kind);
    }

    /// Fails every request with `method` from the `n`th of that method on
    /// (e.g. every `PUT` from the second: writes break, reads still work).
    pub fn fail_from_method(&self, method: &Method, n: usize, kind: &FaultKind) {
        self.fail_range_method(method, n, PERSISTENT_SPAN, kind);
    }

    /// Every request so far, in arrival order, with the status sent and the
    /// fault that struck it.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.plan().requests()
    }

    /// How many faults have struck so far.
    pub fn struck(&self) -> usize {
        self.requests().iter().filter(|r| r.fault.is_some()).count()
    }

    /// Forgets the recorded requests (the fault counters keep counting).
    pub fn clear_requests(&self) {
        self.server.plan().clear_requests();
    }

    /// The fault plan, shared with the server.
    pub fn plan(&self) -> &FaultPlan {
        self.server.plan()
    }
}

async fn forward(State(up): State<Arc<Upstream>>, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("fault proxy: body: {e}")),
    };
    let path = parts.uri.path();
    let (arrival, hold, in_flight) = if path == "/v2" || path.starts_with("/v2/") {
        let full = parts
            .uri
            .path_and_query()
            .map_or_else(|| path.to_string(), ToString::to_string);
        let (arrival, hold, guard) = up.holds.arrive(&parts.method, &full);
        (Some(arrival), hold, Some(guard))
    } else {
        (None, None, None)
    };
    let (on_arrival, on_answer) = match hold {
        Some(h) if h.at == HoldAt::Arrival => (Some(h), None),
        other => (None, other),
    };
    if let (Some(hold), Some(arrival)) = (on_arrival, &arrival) {
        if wait_for_verdict(hold, arrival.clone()).await == Verdict::Refuse {
            return refused(arrival);
        }
    }
    let response = if up.holds.detached.load(Ordering::SeqCst) {
        // On a task of its own, the request is finished even when the
        // server drops this handler because the client went away.
        let task_up = Arc::clone(&up);
        let task = tokio::spawn(async move {
            let response = relay(&task_up, parts, body).await;
            drop(in_flight);
            response
        });
        match task.await {
            Ok(r) => r,
            Err(e) => text(StatusCode::BAD_GATEWAY, format!("fault proxy: {e}")),
        }
    } else {
        let response = relay(&up, parts, body).await;
        drop(in_flight);
        response
    };
    if let (Some(hold), Some(arrival)) = (on_answer, &arrival) {
        if wait_for_verdict(hold, arrival.clone()).await == Verdict::Refuse {
            return refused(arrival);
        }
    }
    response
}

/// Sends one request upstream and turns its answer into the proxy's.
async fn relay(up: &Upstream, parts: axum::http::request::Parts, body: Bytes) -> Response<Body> {
    let target = format!(
        "{}{}",
        up.base,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut headers = parts.headers;
    strip(&mut headers);
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .expect("a method the server accepted");
    let mut builder = up.client.request(method, &target).headers(headers);
    // A body that was sent (even an empty one with a length) goes on.
    if !body.is_empty()
        || parts.method == Method::PUT
        || parts.method == Method::POST
        || parts.method == Method::PATCH
    {
        builder = builder.body(body);
    }
    let reply = match builder.send().await {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("fault proxy: upstream {}: {e}", up.base),
            )
        }
    };
    let status = reply.status();
    let mut headers = reply.headers().clone();
    let length = headers.get(header::CONTENT_LENGTH).cloned();
    let bytes = match reply.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("fault proxy: upstream body: {e}"),
            )
        }
    };
    strip(&mut headers);
    for name in [header::LOCATION, header::LINK, header::WWW_AUTHENTICATE] {
        rewrite(&mut headers, &name, up);
    }
    if parts.method == Method::HEAD {
        // No body, but the length of the one a GET would carry.
        if let Some(length) = length {
            headers.insert(header::CONTENT_LENGTH, length);
        }
    }
    let mut response = Response::new(if parts.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    });
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn strip(headers: &mut HeaderMap) {
    // `Connection` may name more hop-by-hop headers.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in NOT_FORWARDED.iter().chain(&named) {
        headers.remove(name);
    }
    let proxy_headers: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy_headers {
        headers.remove(name);
    }
}

/// Points every value of `name` that names the upstream at the proxy.
fn rewrite(headers: &mut HeaderMap, name: &HeaderName, up: &Upstream) {
    let values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    let upstream_urls = [
        format!("http://{}", up.authority),
        format!("https://{}", up.authority),
    ];
    let mut changed = false;
    let rewritten: Vec<HeaderValue> = values
        .into_iter()
        .map(|value| {
            let Ok(text) = value.to_str() else {
                return value;
            };
            let mut out = text.to_string();
            for from in &upstream_urls {
                out = replace_url_prefix(&out, from, &up.proxy_base);
            }
            if out == text {
                return value;
            }
            changed = true;
            HeaderValue::from_str(&out).unwrap_or(value)
        })
        .collect();
    if changed {
        headers.remove(name);
        for value in rewritten {
            headers.append(name.clone(), value);
        }
    }
}

/// Replaces `from` with `to` where `from` is a whole authority: followed by
/// the end, `/`, `?`, `#`, `>` or `"` (so `:5000` does not match `:50001`).
fn replace_url_prefix(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(from) {
        let after = &rest[pos + from.len()..];
        let whole = after
            .chars()
            .next()
            .is_none_or(|c| matches!(c, '/' | '?' | '#' | '>' | '"' | ',' | ';' | ' '));
        out.push_str(&rest[..pos]);
        out.push_str(if whole { to } else { from });
        rest = after;
    }
    out.push_str(rest);
    out
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from(message)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{self, Fixture};
    use crate::real_registry::Mode;

    const REPO: &str = "acme/proxied";

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap()
    }

    const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                          application/vnd.oci.image.manifest.v1+json";

    #[test]
    fn url_prefix_replacement_respects_the_authority() {
        let from = "http://127.0.0.1:5000";
        let to = "http://127.0.0.1:7";
        assert_eq!(
            replace_url_prefix(r#"Bearer realm="http://127.0.0.1:5000/token""#, from, to),
            r#"Bearer realm="http://127.0.0.1:7/token""#
        );
        assert_eq!(
            replace_url_prefix("<http://127.0.0.1:5000/v2/x?n=1>; rel=\"next\"", from, to),
            "<http://127.0.0.1:7/v2/x?n=1>; rel=\"next\""
        );
        assert_eq!(
            replace_url_prefix("http://127.0.0.1:50001/v2/", from, to),
            "http://127.0.0.1:50001/v2/"
        );
        assert_eq!(
            replace_url_prefix("/v2/x/tags/list", from, to),
            "/v2/x/tags/list"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forwards_byte_exactly_and_rewrites_upstream_urls() {
        let registry = RealRegistry::open();
        let layout = Fixture::index("proxy").build();
        layout.push(&registry, REPO, "staging-1");
        layout.push(&registry, "acme/other", "staging-2");
        let raw = oci::inspect_raw(&registry, REPO, "staging-1");
        let digest = oci::sha256(&raw);
        let proxy = FaultProxy::in_front_of(&registry).await;
        let c = client();
        let manifest = |base: String, tag: &str| format!("{base}/v2/{REPO}/manifests/{tag}");

        // GET: same status, body, digest, type and length as directly.
        let direct = c
            .get(manifest(registry.base_url(), "staging-1"))
            .header(header::ACCEPT, ACCEPT)
            .send()
            .await
            .unwrap();
        let proxied = c
            .get(manifest(proxy.base_url(), "staging-1"))
            .header(header::ACCEPT, ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status(), direct.status());
        for name in [
            "docker-content-digest",
            "content-type",
            "content-length",
            "etag",
        ] {
            assert_eq!(
                proxied.headers().get(name),
                direct.headers().get(name),
                "{name}"
            );
        }
        assert_eq!(proxied.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(proxied.bytes().await.unwrap(), raw);

        // HEAD keeps the length of the body it does not carry.
        let head = c
            .head(manifest(proxy.base_url(), "staging-1"))
            .header(header::ACCEPT, ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(
            head.headers()["content-length"],
            raw.len().to_string().as_str()
        );

        // PUT: the exact bytes arrive; Location names the proxy.
        let media_type = serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["mediaType"]
            .as_str()
            .unwrap()
            .to_string();
        let put = c
            .put(manifest(proxy.base_url(), "latest"))
            .header(header::CONTENT_TYPE, media_type)
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{:?}", put.text().await);
        assert_eq!(put.headers()["docker-content-digest"], digest.as_str());
        let location = put.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&format!("{}/v2/", proxy.base_url())),
            "{location}"
        );
        assert_eq!(oci::digest_of(&registry, REPO, "latest"), digest);

        // A paginated catalog: the Link header comes through (relative, or
        // pointing at the proxy), and the page is the registry's.
        let page = c
            .get(format!("{}/v2/_catalog?n=1", proxy.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let link = page.headers()["link"].to_str().unwrap().to_string();
        assert!(!link.contains(&registry.host()), "{link}");
        assert!(link.contains("rel=\"next\""), "{link}");
        let catalog: serde_json::Value =
            serde_json::from_slice(&page.bytes().await.unwrap()).unwrap();
        assert_eq!(catalog["repositories"].as_array().unwrap().len(), 1);

        let log = proxy.requests();
        assert_eq!(log.len(), 4);
        assert_eq!(log[0].method, Method::GET);
        assert_eq!(log[2].method, Method::PUT);
        assert_eq!(log[3].path, "/v2/_catalog?n=1");
        assert!(log.iter().all(|r| r.fault.is_none()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_auth_challenge_and_credentials_through() {
        let registry = RealRegistry::start(Mode::Basic);
        let proxy = FaultProxy::in_front_of(&registry).await;
        let c = client();
        let ping = format!("{}/v2/", proxy.base_url());
        let denied = c.get(&ping).send().await.unwrap();
        assert_eq!(denied.status(), 401);
        let challenge = denied.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
        let (user, password) = registry.credentials().unwrap();
        let ok = c
            .get(&ping)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fronts_a_tls_registry_with_its_ca() {
        let registry = RealRegistry::tls();
        let proxy = FaultProxy::in_front_of(&registry).await;
        assert!(proxy.upstream().starts_with("https://"));
        let r = client()
            .get(format!("{}/v2/", proxy.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("docker-distribution-api-version"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn faults_strike_by_count_method_and_persistently() {
        let registry = RealRegistry::open();
        Fixture::single("faults")
            .build()
            .push(&registry, REPO, "v1");
        let proxy = FaultProxy::in_front_of(&registry).await;
        let c = client();
        let url = format!("{}/v2/{REPO}/manifests/v1", proxy.base_url());
        proxy.fail_nth(2, &FaultKind::Status(503));
        proxy.fail_nth_method(&Method::HEAD, 2, &FaultKind::WrongDigestHeader);
        proxy.fail_nth(5, &FaultKind::ResetConnection);
        proxy.fail_from(7, &FaultKind::Status(500));

        let get = |c: &reqwest::Client| c.get(&url).header(header::ACCEPT, ACCEPT).send();
        assert_eq!(get(&c).await.unwrap().status(), 200); // 1
        let r = get(&c).await.unwrap(); // 2
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "0");
        let right = c
            .head(&url)
            .header(header::ACCEPT, ACCEPT)
            .send()
            .await
            .unwrap(); // 3
        let wrong = c
            .head(&url)
            .header(header::ACCEPT, ACCEPT)
            .send()
            .await
            .unwrap(); // 4
        assert_eq!(wrong.status(), 200);
        assert_ne!(
            right.headers()["docker-content-digest"],
            wrong.headers()["docker-content-digest"]
        );
        assert!(get(&c).await.is_err(), "5 is reset"); // 5
        assert_eq!(get(&c).await.unwrap().status(), 200); // 6
        for _ in 7..12 {
            assert_eq!(get(&c).await.unwrap().status(), 500);
        }
        let faults: Vec<_> = proxy.requests().into_iter().map(|r| r.fault).collect();
        assert_eq!(faults[0], None);
        assert_eq!(faults[1], Some(FaultKind::Status(503)));
        assert_eq!(faults[3], Some(FaultKind::WrongDigestHeader));
        assert_eq!(faults[4], Some(FaultKind::ResetConnection));
        assert_eq!(faults[5], None);
        assert_eq!(proxy.struck(), 3 + 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncated_bodies_still_reach_the_registry() {
        let registry = RealRegistry::open();
        Fixture::single("trunc").build().push(&registry, REPO, "v1");
        let raw = oci::inspect_raw(&registry, REPO, "v1");
        let proxy = FaultProxy::in_front_of(&registry).await;
        proxy.fail_nth(1, &FaultKind::TruncatedBody);
        let c = client();
        let r = c
            .get(format!("{}/v2/{REPO}/manifests/v1", proxy.base_url()))
            .header(header::ACCEPT, ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-length"],
            raw.len().to_string().as_str()
        );
        assert!(r.bytes().await.is_err(), "the body ends early");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_upstream_is_a_502_and_drop_stops_the_proxy() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = FaultProxy::start(&format!("http://{free}")).await;
        let r = client()
            .get(format!("{}/v2/", proxy.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
        let host = proxy.host();
        drop(proxy);
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&host).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "{host} still accepts connections");
    }
}
