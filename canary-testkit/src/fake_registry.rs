//! An in-process OCI distribution registry with fault injection.
//!
//! [`FakeRegistry`] serves the subset of the distribution API that canary
//! uses, over plain HTTP on `127.0.0.1:<free port>`, and stops when it is
//! dropped. It is what `canary demo` runs against (nothing to install), and
//! what tests use for faults a real registry will not produce on demand:
//! 5xx/429, connection resets, truncated bodies, wrong digests, slowness,
//! HTML error pages, token flows.
//!
//! # What it implements
//!
//! | request | answer |
//! |---|---|
//! | `GET /v2/` | `200 {}` (or the auth challenge) |
//! | `GET`/`HEAD /v2/<name>/manifests/<tag or digest>` | the exact stored bytes, `Content-Type`, `Content-Length`, `Docker-Content-Digest` |
//! | `PUT /v2/<name>/manifests/<tag or digest>` | stores the exact bytes and `Content-Type`; `201` with `Docker-Content-Digest` and `Location` |
//! | `GET /v2/<name>/tags/list?n=&last=` | sorted tags, paginated with a `Link: <…>; rel="next"` header |
//! | `GET /token?service=&scope=…` | a bearer token for the requested scopes (bearer mode only) |
//!
//! Errors use the distribution error JSON (`{"errors":[{"code":…}]}`):
//! `NAME_UNKNOWN`, `MANIFEST_UNKNOWN`, `MANIFEST_INVALID`, `DIGEST_INVALID`,
//! `NAME_INVALID`, `TAG_INVALID`, `UNAUTHORIZED` (with a `WWW-Authenticate`
//! challenge), `DENIED`, `BLOB_UNKNOWN`, `UNSUPPORTED`.
//!
//! Decisions:
//!
//! - Blobs are not stored and manifests are not checked against blobs: a PUT
//!   needs a JSON object body and a media type (`Content-Type`, or the body's
//!   `mediaType`), nothing more. A PUT by digest must match the body.
//! - `Accept` is recorded but not negotiated: a manifest is always served as
//!   stored, which is what registries do today for OCI and Docker v2 types.
//! - In bearer mode, tokens carry scopes and are enforced: a `pull` token
//!   cannot `PUT`. A request without a fitting token gets a `401` whose
//!   challenge names the scope it needs (`error="insufficient_scope"` when a
//!   token was sent). Tokens expire after the configured TTL, or at once with
//!   [`FakeRegistry::expire_tokens`].
//! - Faults are counted over `/v2` requests (auth challenges included, as a
//!   proxy in front of a registry would see them), over one method's `/v2`
//!   requests, or over token requests (`/token`); each fault strikes once.
//! - The fault machinery is not tied to the fake: [`FaultServer`] serves any
//!   axum router behind a [`FaultPlan`], e.g. a proxy that forwards to the
//!   real distribution registry.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use canary_testkit::fake_registry::{self, FakeRegistry, Fault, FaultKind};
//!
//! let registry = FakeRegistry::start().await;
//! let digest = registry.push_manifest(
//!     "acme/platform",
//!     "staging-4c1d56e",
//!     fake_registry::OCI_MANIFEST,
//!     fake_registry::image_manifest("platform", "amd64"),
//! );
//! assert_eq!(registry.tag_digest("acme/platform", "staging-4c1d56e"), Some(digest));
//! registry.inject(Fault::nth(1, FaultKind::Status(503)));
//! // `registry.host()` is the registry part of an image reference:
//! let image = format!("{}/acme/platform", registry.host());
//! # let _ = image;
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use canary_core::Secret;
use futures::StreamExt as _;
use rand::RngCore as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// `application/vnd.oci.image.manifest.v1+json`
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.config.v1+json`
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.image.layer.v1.tar+gzip`
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// `application/vnd.docker.distribution.manifest.v2+json`
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// `application/vnd.docker.distribution.manifest.list.v2+json`
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `service` the bearer challenge names.
pub const SERVICE: &str = "canary-fake-registry";

/// Largest manifest a PUT accepts (the distribution registry's limit).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

/// How clients authenticate.
#[derive(Clone, Debug, Default)]
pub enum FakeAuth {
    /// No authentication.
    #[default]
    None,
    /// HTTP Basic on every request (ECR-style, htpasswd).
    Basic {
        /// The accepted user name.
        username: String,
        /// The accepted password.
        password: Secret,
    },
    /// The token flow: `401` with a `Bearer realm=…/token` challenge; the
    /// token endpoint takes Basic credentials and returns a scoped token.
    Bearer {
        /// The accepted user name.
        username: String,
        /// The accepted password.
        password: Secret,
    },
}

/// How a [`FakeRegistry`] behaves. Build with [`Default`] and the `with_…`
/// methods.
#[derive(Clone, Debug)]
pub struct FakeRegistryOptions {
    /// Authentication mode.
    pub auth: FakeAuth,
    /// The largest tags-list page served, whatever `n` asks for (`None`: no
    /// cap, every tag in one page unless `n` is given).
    pub page_size: Option<usize>,
    /// How long a bearer token lives.
    pub token_ttl: Duration,
    /// Refuse every manifest PUT with `403 DENIED`, like a token without
    /// `packages: write`.
    pub push_denied: bool,
}

impl Default for FakeRegistryOptions {
    fn default() -> Self {
        Self {
            auth: FakeAuth::None,
            page_size: None,
            token_ttl: Duration::from_secs(300),
            push_denied: false,
        }
    }
}

impl FakeRegistryOptions {
    /// Bearer token auth; the token endpoint accepts `username`/`password`.
    #[must_use]
    pub fn with_bearer(mut self, username: &str, password: &str) -> Self {
        self.auth = FakeAuth::Bearer {
            username: username.to_string(),
            password: Secret::new(password),
        };
        self
    }

    /// HTTP Basic auth on every request.
    #[must_use]
    pub fn with_basic(mut self, username: &str, password: &str) -> Self {
        self.auth = FakeAuth::Basic {
            username: username.to_string(),
            password: Secret::new(password),
        };
        self
    }

    /// Caps tags-list pages at `page_size` tags.
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Sets the bearer token lifetime.
    #[must_use]
    pub fn with_token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Refuses every manifest PUT with `403 DENIED`.
    #[must_use]
    pub fn with_push_denied(mut self) -> Self {
        self.push_denied = true;
        self
    }
}

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
    /// of the registry (not from the call to [`FakeRegistry::inject`]).
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

/// A manifest as the registry stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredManifest {
    /// The media type it was pushed with.
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
}

#[derive(Default)]
struct Repo {
    manifests: HashMap<String, StoredManifest>,
    tags: BTreeMap<String, String>,
}

struct Grant {
    scopes: Vec<(String, Vec<String>)>,
    expires: Instant,
}

#[derive(Default)]
struct Data {
    repos: HashMap<String, Repo>,
    tokens: HashMap<String, Grant>,
}

struct Shared {
    options: FakeRegistryOptions,
    base_url: String,
    data: Mutex<Data>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        // A test that panicked while holding the lock left plain data behind.
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ---------------------------------------------------------------------------
// Fault injection for any server.

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
/// the connection). [`FakeRegistry`] runs on one; a fault proxy in front of a
/// real registry can run on another with a forwarding router. Dropping it
/// stops the server: no new connections, idle ones closed, in-flight
/// requests finished.
pub struct FaultServer {
    addr: SocketAddr,
    plan: FaultPlan,
    shutdown: Option<oneshot::Sender<()>>,
}

impl fmt::Debug for FaultServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultServer")
            .field("addr", &self.addr)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl FaultServer {
    /// Binds a free loopback port, builds the router with `app(address)`
    /// (so it can name its own URL) and serves it behind `plan`.
    pub async fn start(plan: FaultPlan, app: impl FnOnce(SocketAddr) -> Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let app = app(addr).layer(middleware::from_fn_with_state(plan.clone(), faults));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<ConnectionHandle>();
            let _ = axum::serve(ResettableListener(listener), service)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            plan,
            shutdown: Some(tx),
        }
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fault plan and request log.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------
// The registry.

/// A running fake registry. Dropping it stops the server: no new
/// connections, idle ones closed, in-flight requests finished.
pub struct FakeRegistry {
    shared: Arc<Shared>,
    server: FaultServer,
}

impl fmt::Debug for FakeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeRegistry")
            .field("server", &self.server)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl FakeRegistry {
    /// Starts an open registry (no auth) on a free loopback port.
    pub async fn start() -> Self {
        Self::start_with(FakeRegistryOptions::default()).await
    }

    /// Starts a registry with `options` on a free loopback port.
    pub async fn start_with(options: FakeRegistryOptions) -> Self {
        let mut slot = None;
        let server = FaultServer::start(FaultPlan::new(), |addr| {
            let shared = Arc::new(Shared {
                options,
                base_url: format!("http://{addr}"),
                data: Mutex::new(Data::default()),
            });
            slot = Some(shared.clone());
            Router::new().fallback(handle).with_state(shared)
        })
        .await;
        let shared = slot.expect("the router was built");
        Self { shared, server }
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference. Loopback,
    /// so clients may use plain HTTP.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Stores `bytes` as a manifest of `media_type` in `repo` and points
    /// `tag` at it, without recording a request. Returns the digest.
    pub fn push_manifest(&self, repo: &str, tag: &str, media_type: &str, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        let mut data = self.shared.lock();
        let r = data.repos.entry(repo.to_string()).or_default();
        r.manifests.insert(
            digest.clone(),
            StoredManifest {
                media_type: media_type.to_string(),
                bytes,
                digest: digest.clone(),
            },
        );
        r.tags.insert(tag.to_string(), digest.clone());
        digest
    }

    /// Stores a manifest by digest only (an index's child), without a tag.
    /// Returns the digest.
    pub fn push_blobless_child(&self, repo: &str, media_type: &str, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        let mut data = self.shared.lock();
        data.repos
            .entry(repo.to_string())
            .or_default()
            .manifests
            .insert(
                digest.clone(),
                StoredManifest {
                    media_type: media_type.to_string(),
                    bytes,
                    digest: digest.clone(),
                },
            );
        digest
    }

    /// Pushes a single-platform OCI image manifest (see [`image_manifest`])
    /// under `tag`. Returns its digest.
    pub fn push_image(&self, repo: &str, tag: &str, seed: &str) -> String {
        self.push_manifest(repo, tag, OCI_MANIFEST, image_manifest(seed, "amd64"))
    }

    /// Pushes an OCI index over one image manifest per architecture (the
    /// children by digest, the index under `tag`). Returns the index digest.
    pub fn push_index(&self, repo: &str, tag: &str, seed: &str, architectures: &[&str]) -> String {
        let children: Vec<IndexEntry> = architectures
            .iter()
            .map(|arch| {
                let bytes = image_manifest(seed, arch);
                let size = bytes.len();
                let digest = self.push_blobless_child(repo, OCI_MANIFEST, bytes);
                IndexEntry {
                    media_type: OCI_MANIFEST.to_string(),
                    digest,
                    size,
                    architecture: (*arch).to_string(),
                }
            })
            .collect();
        self.push_manifest(repo, tag, OCI_INDEX, image_index(&children))
    }

    /// The digest `tag` points to in `repo`, read without recording a request.
    pub fn tag_digest(&self, repo: &str, tag: &str) -> Option<String> {
        self.shared.lock().repos.get(repo)?.tags.get(tag).cloned()
    }

    /// The manifest `reference` (a tag or a digest) names in `repo`, read
    /// without recording a request.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<StoredManifest> {
        let data = self.shared.lock();
        let r = data.repos.get(repo)?;
        let digest = r.tags.get(reference).map_or(reference, String::as_str);
        r.manifests.get(digest).cloned()
    }

    /// Every tag of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        self.shared
            .lock()
            .repos
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Arms a fault. Faults strike once, in the order they match.
    pub fn inject(&self, fault: Fault) {
        self.server.plan().inject(fault);
    }

    /// Every request so far (token requests included), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.plan().requests()
    }

    /// Forgets the recorded requests (the fault counters keep counting).
    pub fn clear_requests(&self) {
        self.server.plan().clear_requests();
    }

    /// The fault plan, shared with the server (e.g. to hand to a helper).
    pub fn faults(&self) -> &FaultPlan {
        self.server.plan()
    }

    /// Expires every bearer token issued so far: the next request with one
    /// gets a `401` challenge, as after a token's lifetime.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for grant in self.shared.lock().tokens.values_mut() {
            grant.expires = now;
        }
    }
}

/// One child of an index built by [`image_index`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The child's media type.
    pub media_type: String,
    /// The child's digest.
    pub digest: String,
    /// The child's size in bytes.
    pub size: usize,
    /// Its `platform.architecture` (`amd64`, `arm64`); the OS is `linux`.
    pub architecture: String,
}

/// The bytes of a small, valid-looking OCI image manifest for `seed` and
/// `architecture`. Config and layer digests are derived from both, so two
/// seeds (two releases) give two digests. The blobs do not exist anywhere:
/// [`FakeRegistry`] does not check them.
pub fn image_manifest(seed: &str, architecture: &str) -> Vec<u8> {
    let config = format!(
        r#"{{"architecture":"{architecture}","os":"linux","config":{{"Labels":{{"canary.seed":"{seed}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let layer = format!("layer of {seed} for {architecture}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": sha256_digest(config.as_bytes()),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": OCI_LAYER,
            "digest": sha256_digest(layer.as_bytes()),
            "size": layer.len(),
        }],
        "annotations": { "org.opencontainers.image.revision": seed },
    });
    serde_json::to_vec(&manifest).expect("a JSON value serialises")
}

/// The bytes of an OCI image index over `children`.
pub fn image_index(children: &[IndexEntry]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|c| {
            json!({
                "mediaType": c.media_type,
                "digest": c.digest,
                "size": c.size,
                "platform": { "architecture": c.architecture, "os": "linux" },
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    serde_json::to_vec(&index).expect("a JSON value serialises")
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------
// Connections that a fault can reset.

/// The listener: a `TcpListener` whose connections carry a reset switch.
struct ResettableListener(TcpListener);

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        ResettableStream {
                            stream,
                            reset: Arc::new(AtomicBool::new(false)),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: wait, try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that fails every read and write once its switch is on,
/// with `SO_LINGER` 0 so that closing it sends a TCP reset.
struct ResettableStream {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResettableStream {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::SeqCst) {
            // A zero linger does not block on close; it turns FIN into RST.
            #[allow(deprecated)]
            let _ = self.stream.set_linger(Some(Duration::ZERO));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fault: connection reset",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The reset switch of the connection a request came in on.
#[derive(Clone)]
struct ConnectionHandle(Arc<AtomicBool>);

impl Connected<IncomingStream<'_, ResettableListener>> for ConnectionHandle {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        Self(stream.io().reset.clone())
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
                handle.0.store(true, Ordering::SeqCst);
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

// ---------------------------------------------------------------------------
// The distribution API.

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query().unwrap_or(""));

    if path == "/token" {
        return token(&shared, &parts.headers, &query);
    }
    if path == "/v2" || path == "/v2/" {
        if let Some(denied) = authorize(&shared, &parts.headers, None) {
            return denied;
        }
        return with_api_version(json_response(StatusCode::OK, &json!({})));
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint");
    };

    let route = if let Some(name) = rest.strip_suffix("/tags/list") {
        Route::Tags(name.to_string())
    } else if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        Route::Manifest(name.to_string(), reference.to_string())
    } else if let Some((name, _)) = rest.rsplit_once("/blobs/") {
        Route::Blob(name.to_string())
    } else {
        return error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint");
    };
    let name = match &route {
        Route::Tags(n) | Route::Manifest(n, _) | Route::Blob(n) => n.clone(),
    };
    if !valid_name(&name) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
        );
    }
    let push = parts.method == Method::PUT;
    if let Some(denied) = authorize(&shared, &parts.headers, Some((&name, push))) {
        return denied;
    }

    let response = match route {
        Route::Tags(name) => {
            if parts.method == Method::GET {
                tags_list(&shared, &name, &query)
            } else {
                unsupported()
            }
        }
        Route::Manifest(name, reference) => {
            if !valid_tag(&reference) && !valid_digest(&reference) {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "TAG_INVALID",
                    "manifest reference is neither a valid tag nor a digest",
                );
            }
            match parts.method {
                Method::GET | Method::HEAD => get_manifest(&shared, &name, &reference),
                Method::PUT => {
                    if shared.options.push_denied {
                        return error_response(
                            StatusCode::FORBIDDEN,
                            "DENIED",
                            "requested access to the resource is denied",
                        );
                    }
                    let Ok(bytes) = axum::body::to_bytes(body, MAX_MANIFEST).await else {
                        return error_response(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "MANIFEST_INVALID",
                            "manifest too large",
                        );
                    };
                    put_manifest(&shared, &parts.headers, &name, &reference, &bytes)
                }
                _ => unsupported(),
            }
        }
        Route::Blob(_) => error_response(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry (the fake registry stores no blobs)",
        ),
    };
    with_api_version(response)
}

enum Route {
    Tags(String),
    Manifest(String, String),
    Blob(String),
}

fn get_manifest(shared: &Shared, name: &str, reference: &str) -> Response<Body> {
    let data = shared.lock();
    let Some(repo) = data.repos.get(name) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    let digest = repo.tags.get(reference).map_or(reference, String::as_str);
    let Some(m) = repo.manifests.get(digest) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        );
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &m.media_type)
        .header(header::CONTENT_LENGTH, m.bytes.len())
        .header(DOCKER_CONTENT_DIGEST, &m.digest)
        .header(header::ETAG, format!("\"{}\"", m.digest))
        .body(Body::from(m.bytes.clone()))
        .expect("a valid response")
}

fn put_manifest(
    shared: &Shared,
    headers: &HeaderMap,
    name: &str,
    reference: &str,
    bytes: &Bytes,
) -> Response<Body> {
    let invalid =
        |message: &str| error_response(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message);
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(bytes) else {
        return invalid("manifest is not a JSON object");
    };
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            object
                .get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let Some(media_type) = media_type else {
        return invalid("no Content-Type and no mediaType in the manifest");
    };
    let digest = sha256_digest(bytes);
    let is_digest = valid_digest(reference);
    if is_digest && reference != digest {
        return error_response(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        );
    }
    {
        let mut data = shared.lock();
        let repo = data.repos.entry(name.to_string()).or_default();
        repo.manifests.insert(
            digest.clone(),
            StoredManifest {
                media_type,
                bytes: bytes.to_vec(),
                digest: digest.clone(),
            },
        );
        if !is_digest {
            repo.tags.insert(reference.to_string(), digest.clone());
        }
    }
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header(DOCKER_CONTENT_DIGEST, &digest)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("a valid response")
}

fn tags_list(shared: &Shared, name: &str, query: &[(String, String)]) -> Response<Body> {
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let n = match param("n").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
            )
        }
    };
    let limit = match (n, shared.options.page_size) {
        (Some(n), Some(cap)) => Some(n.min(cap)),
        (n, cap) => n.or(cap),
    };
    let last = param("last");
    let data = shared.lock();
    let Some(repo) = data.repos.get(name) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    };
    let mut remaining = repo
        .tags
        .keys()
        .filter(|t| last.is_none_or(|l| t.as_str() > l))
        .peekable();
    let mut page = Vec::new();
    while limit.is_none_or(|l| page.len() < l) {
        match remaining.next() {
            Some(t) => page.push(t.clone()),
            None => break,
        }
    }
    let more = remaining.peek().is_some() && !page.is_empty();
    let mut response = json_response(StatusCode::OK, &json!({ "name": name, "tags": page }));
    if more {
        let n = limit.unwrap_or(page.len());
        let link = format!(
            "</v2/{name}/tags/list?n={n}&last={}>; rel=\"next\"",
            page.last().expect("page is not empty")
        );
        response.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&link).expect("tags and names are header-safe"),
        );
    }
    response
}

fn unsupported() -> Response<Body> {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is unsupported",
    )
}

// ---------------------------------------------------------------------------
// Authentication.

/// `None` when the request may go on; otherwise the `401`/`403` to send.
/// `target` is `(repository, push)` for repository requests.
fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    target: Option<(&str, bool)>,
) -> Option<Response<Body>> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match &shared.options.auth {
        FakeAuth::None => None,
        FakeAuth::Basic { username, password } => {
            if basic_matches(authorization, username, password) {
                None
            } else {
                Some(unauthorized(&format!("Basic realm=\"{SERVICE}\"")))
            }
        }
        FakeAuth::Bearer { .. } => {
            let scope = target.map(|(repo, push)| {
                let actions = if push { "pull,push" } else { "pull" };
                format!("repository:{repo}:{actions}")
            });
            let token = authorization.and_then(|a| a.strip_prefix("Bearer "));
            let ok = token.is_some_and(|t| {
                let data = shared.lock();
                data.tokens.get(t).is_some_and(|grant| {
                    grant.expires > Instant::now()
                        && target.is_none_or(|(repo, push)| {
                            grant.scopes.iter().any(|(r, actions)| {
                                r == repo
                                    && actions.iter().any(|a| a == "pull" || a == "*")
                                    && (!push || actions.iter().any(|a| a == "push" || a == "*"))
                            })
                        })
                })
            });
            if ok {
                return None;
            }
            let mut challenge = format!(
                "Bearer realm=\"{}/token\",service=\"{SERVICE}\"",
                shared.base_url
            );
            if let Some(scope) = scope {
                challenge.push_str(",scope=\"");
                challenge.push_str(&scope);
                challenge.push('"');
            }
            if token.is_some() {
                challenge.push_str(",error=\"insufficient_scope\"");
            }
            Some(unauthorized(&challenge))
        }
    }
}

fn basic_matches(authorization: Option<&str>, username: &str, password: &Secret) -> bool {
    let Some(encoded) = authorization.and_then(|a| a.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = BASE64.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{username}:{}", password.expose());
    decoded == expected.as_bytes()
}

fn unauthorized(challenge: &str) -> Response<Body> {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(challenge).expect("a challenge is a header value"),
    );
    with_api_version(response)
}

fn token(shared: &Shared, headers: &HeaderMap, query: &[(String, String)]) -> Response<Body> {
    let FakeAuth::Bearer { username, password } = &shared.options.auth else {
        return error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "no token endpoint");
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !basic_matches(authorization, username, password) {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid username or password",
        );
    }
    let scopes: Vec<(String, Vec<String>)> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, repo, actions) = (parts.next()?, parts.next()?, parts.next()?);
            (kind == "repository").then(|| {
                (
                    repo.to_string(),
                    actions.split(',').map(str::to_string).collect(),
                )
            })
        })
        .collect();
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let ttl = shared.options.token_ttl;
    shared.lock().tokens.insert(
        token.clone(),
        Grant {
            scopes,
            expires: Instant::now() + ttl,
        },
    );
    json_response(
        StatusCode::OK,
        &json!({ "token": token, "access_token": token, "expires_in": ttl.as_secs() }),
    )
}

// ---------------------------------------------------------------------------
// Small helpers.

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("a JSON value serialises");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("a valid response")
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({ "errors": [{ "code": code, "message": message, "detail": null }] }),
    )
}

fn with_api_version(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|component| {
            let b = component.as_bytes();
            let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && alnum(b[0])
                && alnum(b[b.len() - 1])
                && b.iter()
                    .all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
        })
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_digest(reference: &str) -> bool {
    let Some((algorithm, hex)) = reference.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(u8::try_from(hi * 16 + lo).expect("two hex digits make a byte"));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "acme/platform";

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn error_code(body: &[u8]) -> String {
        let v: Value = serde_json::from_slice(body).unwrap();
        v["errors"][0]["code"].as_str().unwrap().to_string()
    }

    fn header(r: &reqwest::Response, name: &str) -> String {
        r.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn serves_pushed_manifests_byte_for_byte() {
        let registry = FakeRegistry::start().await;
        let base = registry.base_url();
        let bytes = image_manifest("4c1d56e", "amd64");
        let digest = registry.push_manifest(REPO, "staging-4c1d56e", OCI_MANIFEST, bytes.clone());
        assert_eq!(digest, sha256_digest(&bytes));
        let c = client();

        let r = c.get(format!("{base}/v2/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "docker-distribution-api-version"),
            "registry/2.0"
        );

        for reference in ["staging-4c1d56e", digest.as_str()] {
            let url = format!("{base}/v2/{REPO}/manifests/{reference}");
            let r = c.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
            assert_eq!(header(&r, "docker-content-digest"), digest);
            assert_eq!(header(&r, "content-length"), bytes.len().to_string());
            assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

            let r = c.head(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "docker-content-digest"), digest);
            assert_eq!(header(&r, "content-length"), bytes.len().to_string());
            assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        }
    }

    #[tokio::test]
    async fn put_stores_exact_bytes_and_media_type() {
        let registry = FakeRegistry::start().await;
        let base = registry.base_url();
        let c = client();
        // Odd whitespace and key order: a re-serialisation would change the digest.
        let bytes =
            b"{ \"schemaVersion\":2,\n  \"mediaType\": \"x\", \"manifests\":[] }\n".to_vec();
        let r = c
            .put(format!("{base}/v2/{REPO}/manifests/latest"))
            .header("content-type", DOCKER_MANIFEST_LIST)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let digest = sha256_digest(&bytes);
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(
            header(&r, "location"),
            format!("/v2/{REPO}/manifests/{digest}")
        );
        let stored = registry.manifest(REPO, "latest").unwrap();
        assert_eq!(stored.bytes, bytes);
        assert_eq!(stored.media_type, DOCKER_MANIFEST_LIST);
        assert_eq!(registry.tag_digest(REPO, "latest"), Some(digest.clone()));

        let r = c
            .get(format!("{base}/v2/{REPO}/manifests/latest"))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "content-type"), DOCKER_MANIFEST_LIST);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // By digest: must match; stores without moving a tag.
        let other = image_manifest("x", "arm64");
        let r = c
            .put(format!("{base}/v2/{REPO}/manifests/{digest}"))
            .header("content-type", OCI_MANIFEST)
            .body(other.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(error_code(&r.bytes().await.unwrap()), "DIGEST_INVALID");
        let r = c
            .put(format!(
                "{base}/v2/{REPO}/manifests/{}",
                sha256_digest(&other)
            ))
            .body(other.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // No Content-Type: the body's mediaType is used.
        assert_eq!(
            registry
                .manifest(REPO, &sha256_digest(&other))
                .unwrap()
                .media_type,
            OCI_MANIFEST
        );
        assert_eq!(registry.tags(REPO), vec!["latest".to_string()]);

        let r = c
            .put(format!("{base}/v2/{REPO}/manifests/latest"))
            .header("content-type", OCI_MANIFEST)
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(error_code(&r.bytes().await.unwrap()), "MANIFEST_INVALID");
        assert_eq!(registry.tag_digest(REPO, "latest"), Some(digest));
    }

    #[tokio::test]
    async fn unknown_names_and_manifests_use_distribution_errors() {
        let registry = FakeRegistry::start().await;
        let base = registry.base_url();
        registry.push_image(REPO, "staging-1", "1");
        let c = client();
        let cases = [
            ("acme/nope/manifests/latest", 404, "NAME_UNKNOWN"),
            ("acme/platform/manifests/latest", 404, "MANIFEST_UNKNOWN"),
            ("acme/nope/tags/list", 404, "NAME_UNKNOWN"),
            ("Acme/platform/manifests/latest", 400, "NAME_INVALID"),
            ("acme/platform/manifests/-bad", 400, "TAG_INVALID"),
            ("acme/platform/blobs/sha256:00", 404, "BLOB_UNKNOWN"),
        ];
        for (path, status, code) in cases {
            let r = c.get(format!("{base}/v2/{path}")).send().await.unwrap();
            assert_eq!(r.status(), status, "{path}");
            assert_eq!(error_code(&r.bytes().await.unwrap()), code, "{path}");
        }
        let r = c
            .head(format!("{base}/v2/{REPO}/manifests/latest"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = c
            .delete(format!("{base}/v2/{REPO}/manifests/staging-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }

    async fn all_tags(c: &reqwest::Client, base: &str, first: &str) -> (Vec<String>, usize) {
        let mut url = format!("{base}{first}");
        let mut tags = Vec::new();
        let mut pages = 0;
        loop {
            let r = c.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            pages += 1;
            let next = r.headers().get("link").map(|l| {
                let l = l.to_str().unwrap();
                assert!(l.ends_with(">; rel=\"next\""), "{l}");
                l[1..l.find('>').unwrap()].to_string()
            });
            let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            assert_eq!(v["name"], REPO);
            tags.extend(
                v["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string()),
            );
            match next {
                Some(next) => url = format!("{base}{next}"),
                None => return (tags, pages),
            }
        }
    }

    #[tokio::test]
    async fn tags_list_paginates_with_link_headers() {
        let registry =
            FakeRegistry::start_with(FakeRegistryOptions::default().with_page_size(3)).await;
        let base = registry.base_url();
        let mut expected: Vec<String> = (0..8).map(|i| format!("staging-{i:02}")).collect();
        expected.push("latest".to_string());
        for t in &expected {
            registry.push_image(REPO, t, t);
        }
        expected.sort();
        let c = client();
        let list = format!("/v2/{REPO}/tags/list");
        assert_eq!(all_tags(&c, &base, &list).await, (expected.clone(), 3));
        assert_eq!(
            all_tags(&c, &base, &format!("{list}?n=2")).await,
            (expected.clone(), 5)
        );
        // `n` above the cap is capped; `last` starts after a tag.
        let (tags, _) = all_tags(&c, &base, &format!("{list}?n=100&last=staging-05")).await;
        assert_eq!(tags, expected[7..].to_vec());
        let r = c.get(format!("{base}{list}?n=x")).send().await.unwrap();
        assert_eq!(r.status(), 400);

        let open = FakeRegistry::start().await;
        for t in &expected {
            open.push_image(REPO, t, t);
        }
        assert_eq!(all_tags(&c, &open.base_url(), &list).await, (expected, 1));
    }

    fn parse_challenge(value: &str) -> HashMap<String, String> {
        let rest = value.strip_prefix("Bearer ").unwrap();
        rest.split("\",")
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect()
    }

    async fn fetch_token(
        c: &reqwest::Client,
        challenge: &str,
        password: &str,
    ) -> reqwest::Response {
        let ch = parse_challenge(challenge);
        c.get(&ch["realm"])
            .query(&[
                ("service", ch["service"].as_str()),
                ("scope", ch["scope"].as_str()),
            ])
            .basic_auth("ci", Some(password))
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn bearer_flow_enforces_scopes_and_expiry() {
        let registry =
            FakeRegistry::start_with(FakeRegistryOptions::default().with_bearer("ci", "s3cret"))
                .await;
        let base = registry.base_url();
        registry.push_image(REPO, "staging-1", "1");
        let c = client();
        let manifest_url = format!("{base}/v2/{REPO}/manifests/staging-1");

        let r = c.get(format!("{base}/v2/")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let ch = parse_challenge(&header(&r, "www-authenticate"));
        assert_eq!(ch["realm"], format!("{base}/token"));
        assert_eq!(ch["service"], SERVICE);
        assert_eq!(error_code(&r.bytes().await.unwrap()), "UNAUTHORIZED");

        let r = c.get(&manifest_url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let challenge = header(&r, "www-authenticate");
        assert_eq!(
            parse_challenge(&challenge)["scope"],
            format!("repository:{REPO}:pull")
        );

        let r = fetch_token(&c, &challenge, "wrong").await;
        assert_eq!(r.status(), 401);
        let r = fetch_token(&c, &challenge, "s3cret").await;
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        let pull = v["token"].as_str().unwrap().to_string();
        assert_eq!(v["access_token"], v["token"]);

        let r = c
            .get(&manifest_url)
            .bearer_auth(&pull)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .get(format!("{base}/v2/acme/other/manifests/x"))
            .bearer_auth(&pull)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "a token is for its repository only");

        let put_url = format!("{base}/v2/{REPO}/manifests/latest");
        let body = image_manifest("1", "amd64");
        let r = c
            .put(&put_url)
            .bearer_auth(&pull)
            .header("content-type", OCI_MANIFEST)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let challenge = header(&r, "www-authenticate");
        let ch = parse_challenge(&challenge);
        assert_eq!(ch["scope"], format!("repository:{REPO}:pull,push"));
        assert_eq!(ch["error"], "insufficient_scope");
        assert_eq!(registry.tag_digest(REPO, "latest"), None);

        let r = fetch_token(&c, &challenge, "s3cret").await;
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        let push = v["token"].as_str().unwrap().to_string();
        let r = c
            .put(&put_url)
            .bearer_auth(&push)
            .header("content-type", OCI_MANIFEST)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);

        registry.expire_tokens();
        let r = c
            .get(&manifest_url)
            .bearer_auth(&push)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // Several scopes in one token request.
        let r = c
            .get(format!("{base}/token"))
            .query(&[
                ("service", SERVICE),
                ("scope", "repository:acme/platform:pull"),
                ("scope", "repository:acme/tenant:pull,push"),
            ])
            .basic_auth("ci", Some("s3cret"))
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        let both = v["token"].as_str().unwrap();
        let r = c
            .head(&manifest_url)
            .bearer_auth(both)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .put(format!("{base}/v2/acme/tenant/manifests/latest"))
            .bearer_auth(both)
            .header("content-type", OCI_MANIFEST)
            .body(image_manifest("2", "amd64"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert!(format!("{registry:?}").contains("***"));
        assert!(!format!("{registry:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn basic_auth_and_push_denied() {
        let registry = FakeRegistry::start_with(
            FakeRegistryOptions::default()
                .with_basic("AWS", "pw")
                .with_push_denied(),
        )
        .await;
        let base = registry.base_url();
        registry.push_image(REPO, "staging-1", "1");
        let c = client();
        let url = format!("{base}/v2/{REPO}/manifests/staging-1");
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            format!("Basic realm=\"{SERVICE}\"")
        );
        let r = c
            .get(&url)
            .basic_auth("AWS", Some("nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .get(&url)
            .basic_auth("AWS", Some("pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .put(format!("{base}/v2/{REPO}/manifests/latest"))
            .basic_auth("AWS", Some("pw"))
            .header("content-type", OCI_MANIFEST)
            .body(image_manifest("1", "amd64"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(error_code(&r.bytes().await.unwrap()), "DENIED");
        assert_eq!(registry.tag_digest(REPO, "latest"), None);
    }

    #[tokio::test]
    async fn status_and_html_faults_have_no_effect() {
        let registry = FakeRegistry::start().await;
        let base = registry.base_url();
        let c = client();
        let url = format!("{base}/v2/{REPO}/manifests/latest");
        let body = image_manifest("1", "amd64");
        registry.inject(Fault::nth(1, FaultKind::Status(503)));
        registry.inject(Fault::nth(2, FaultKind::Status(429)));
        registry.inject(Fault::nth(3, FaultKind::HtmlBody));
        for (status, code) in [
            (503, Some("UNAVAILABLE")),
            (429, Some("TOOMANYREQUESTS")),
            (200, None),
        ] {
            let r = c
                .put(&url)
                .header("content-type", OCI_MANIFEST)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status);
            if let Some(code) = code {
                assert_eq!(header(&r, "retry-after"), "0");
                assert_eq!(error_code(&r.bytes().await.unwrap()), code);
            } else {
                assert!(header(&r, "content-type").starts_with("text/html"));
                assert!(r.text().await.unwrap().contains("<html>"));
            }
            assert_eq!(registry.tag_digest(REPO, "latest"), None);
        }
        let r = c
            .put(&url)
            .header("content-type", OCI_MANIFEST)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let faults: Vec<_> = registry
            .requests()
            .into_iter()
            .map(|r| (r.status, r.fault))
            .collect();
        assert_eq!(
            faults,
            vec![
                (Some(503), Some(FaultKind::Status(503))),
                (Some(429), Some(FaultKind::Status(429))),
                (Some(200), Some(FaultKind::HtmlBody)),
                (Some(201), None),
            ]
        );
    }

    #[tokio::test]
    async fn reset_connection_sends_nothing_and_changes_nothing() {
        let registry = FakeRegistry::start().await;
        let base = registry.base_url();
        let c = client();
        let url = format!("{base}/v2/{REPO}/manifests/latest");
        registry.inject(Fault::nth_method(
            Method::PUT,
            1,
            FaultKind::ResetConnection,
        ));
        // Warm a pooled connection first: the reset must hit a reused one too.
        assert_eq!(
            c.get(format!("{base}/v2/")).send().await.unwrap().status(),
            200
        );
        let err = c
            .put(&url)
            .header("content-type", OCI_MANIFEST)
            .body(image_manifest("1", "amd64"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_request() || err.is_connect(), "{err:?}");
        assert_eq!(registry.tag_digest(REPO, "latest"), None);
        let last = registry.requests().pop().unwrap();
        assert_eq!(
            (last.method, last.status, last.fault),
            (Method::PUT, None, Some(FaultKind::ResetConnection))
        );
        let r = c
            .put(&url)
            .header("content-type", OCI_MANIFEST)
            .body(image_manifest("1", "amd64"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    #[tokio::test]
    async fn truncated_body_and_wrong_digest() {
        let registry = FakeRegistry::start().await;
        let base = registry.base_url();
        let bytes = image_manifest("1", "amd64");
        let digest = registry.push_manifest(REPO, "staging-1", OCI_MANIFEST, bytes.clone());
        let c = client();
        let url = format!("{base}/v2/{REPO}/manifests/staging-1");
        registry.inject(Fault::nth_method(Method::GET, 1, FaultKind::TruncatedBody));
        registry.inject(Fault::nth_method(
            Method::GET,
            2,
            FaultKind::WrongDigestHeader,
        ));
        registry.inject(Fault::nth_method(
            Method::HEAD,
            1,
            FaultKind::WrongDigestHeader,
        ));

        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-length"), bytes.len().to_string());
        assert!(r.bytes().await.is_err(), "the body must end early");

        let r = c.get(&url).send().await.unwrap();
        let announced = header(&r, "docker-content-digest");
        assert_ne!(announced, digest);
        assert!(valid_digest(&announced));
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

        let r = c.head(&url).send().await.unwrap();
        assert_ne!(header(&r, "docker-content-digest"), digest);

        let r = c.get(&url).send().await.unwrap();
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }

    #[tokio::test]
    async fn slow_fault_delays_and_counts_per_method() {
        let registry = FakeRegistry::start().await;
        let base = registry.base_url();
        registry.push_image(REPO, "staging-1", "1");
        let c = client();
        let url = format!("{base}/v2/{REPO}/manifests/staging-1");
        // The 2nd HEAD, whatever comes in between.
        registry.inject(Fault::nth_method(
            Method::HEAD,
            2,
            FaultKind::Slow(Duration::from_millis(300)),
        ));
        c.head(&url).send().await.unwrap();
        c.get(&url).send().await.unwrap();
        let start = Instant::now();
        let r = c.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(start.elapsed() >= Duration::from_millis(300));
        let requests = registry.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(
            requests[2].fault,
            Some(FaultKind::Slow(Duration::from_millis(300)))
        );
        assert_eq!(requests[2].path, format!("/v2/{REPO}/manifests/staging-1"));
    }

    #[tokio::test]
    async fn token_endpoint_faults_are_counted_apart() {
        let registry =
            FakeRegistry::start_with(FakeRegistryOptions::default().with_bearer("ci", "pw")).await;
        let base = registry.base_url();
        registry.inject(Fault::nth_token(1, FaultKind::HtmlBody));
        let c = client();
        let token =
            format!("{base}/token?service={SERVICE}&scope=repository%3Aacme%2Fplatform%3Apull");
        let r = c
            .get(&token)
            .basic_auth("ci", Some("pw"))
            .send()
            .await
            .unwrap();
        assert!(header(&r, "content-type").starts_with("text/html"));
        let r = c
            .get(&token)
            .basic_auth("ci", Some("pw"))
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert!(v["token"].is_string());
        let r = c
            .get(format!("{base}/v2/{REPO}/tags/list"))
            .bearer_auth(v["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        // Percent-decoded scope granted pull on acme/platform; the repo is unknown.
        assert_eq!(r.status(), 404);
    }

    #[tokio::test]
    async fn index_helpers_build_a_consistent_index() {
        let registry = FakeRegistry::start().await;
        let digest = registry.push_index(REPO, "staging-1", "1", &["amd64", "arm64"]);
        let index = registry.manifest(REPO, &digest).unwrap();
        assert_eq!(index.media_type, OCI_INDEX);
        let v: Value = serde_json::from_slice(&index.bytes).unwrap();
        let children = v["manifests"].as_array().unwrap();
        assert_eq!(children.len(), 2);
        for child in children {
            let child_digest = child["digest"].as_str().unwrap();
            let stored = registry.manifest(REPO, child_digest).unwrap();
            assert_eq!(stored.bytes.len() as u64, child["size"].as_u64().unwrap());
        }
        assert_ne!(image_manifest("1", "amd64"), image_manifest("2", "amd64"));
        assert_eq!(registry.tags(REPO), vec!["staging-1".to_string()]);
    }

    #[tokio::test]
    async fn fault_server_wraps_any_router() {
        let plan = FaultPlan::new();
        let server = FaultServer::start(plan.clone(), |addr| {
            Router::new().fallback(move || async move { format!("served by {addr}") })
        })
        .await;
        plan.inject(Fault::nth(2, FaultKind::Status(502)));
        let c = client();
        let url = format!("{}/v2/acme/x/manifests/latest", server.base_url());
        let first = c.get(&url).send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(
            first.text().await.unwrap(),
            format!("served by {}", server.addr())
        );
        assert_eq!(c.get(&url).send().await.unwrap().status(), 502);
        // Not under /v2: neither counted nor struck.
        plan.inject(Fault::nth(3, FaultKind::Status(500)));
        assert_eq!(
            c.get(format!("{}/other", server.base_url()))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(plan.pending().len(), 1);
        assert_eq!(c.get(&url).send().await.unwrap().status(), 500);
        let statuses: Vec<_> = server.plan().requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![Some(200), Some(502), Some(200), Some(500)]);
    }

    #[tokio::test]
    async fn drop_stops_the_server() {
        let registry = FakeRegistry::start().await;
        let host = registry.host();
        drop(registry);
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(&host).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "{host} still accepts connections");
    }
}
