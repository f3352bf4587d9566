//! The sandbox registry with fault injection and auth, for tests.
//!
//! [`FakeRegistry`] is [`canary_sandbox::Registry`] — the plain registry
//! `canary demo` runs, which serves the distribution API canary uses —
//! served behind a [`FaultPlan`] and an auth gate. Tests use it for faults
//! a real registry will not produce on demand: 5xx/429, connection resets,
//! truncated bodies, wrong digests, slowness, HTML error pages, token flows.
//! Everything the sandbox registry offers (`host`, `push_image`,
//! `tag_digest`, …) is reachable on a `FakeRegistry` through `Deref`.
//!
//! # What it adds to the sandbox registry
//!
//! | request | answer |
//! |---|---|
//! | any | an armed [`Fault`], when one strikes |
//! | `GET /v2/` and repository requests | `401 UNAUTHORIZED` with a `WWW-Authenticate` challenge, without fitting credentials |
//! | `PUT /v2/<name>/manifests/<ref>` | `403 DENIED` when pushes are denied |
//! | `GET /token?service=&scope=…` | a bearer token for the requested scopes (bearer mode only) |
//!
//! Decisions:
//!
//! - In bearer mode, tokens carry scopes and are enforced: a `pull` token
//!   cannot write (a manifest `PUT`, a blob upload's `POST`, `PATCH` and
//!   `PUT`). A request without a fitting token gets a `401` whose
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

mod auth;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use canary_core::Secret;
use canary_sandbox::registry::{Registry, RegistryOptions};

pub use crate::faults::{Fault, FaultKind, FaultOn, FaultPlan, FaultServer, RecordedRequest};
pub use canary_sandbox::registry::{
    image_index, image_manifest, sha256_digest, IndexEntry, StoredManifest, DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
};

/// The `service` the bearer challenge names.
pub const SERVICE: &str = "canary-fake-registry";

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
    /// Whether the registry has the referrers API (default `true`); without
    /// it, clients use the referrers tag schema, as on CNCF distribution.
    pub referrers_api: bool,
}

impl Default for FakeRegistryOptions {
    fn default() -> Self {
        Self {
            auth: FakeAuth::None,
            page_size: None,
            token_ttl: Duration::from_secs(300),
            push_denied: false,
            referrers_api: true,
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

    /// Serves no referrers API (a `404` on `…/referrers/…`, no
    /// `OCI-Subject`), like CNCF distribution 2.x/3.x and GHCR.
    #[must_use]
    pub fn without_referrers_api(mut self) -> Self {
        self.referrers_api = false;
        self
    }
}

/// A running fake registry. Dropping it stops the server: no new
/// connections, idle ones closed, in-flight requests finished.
///
/// It dereferences to the [`Registry`] it wraps: a fake registry *is* the
/// sandbox registry plus faults and auth, so its content methods are the
/// sandbox's own rather than a copy.
pub struct FakeRegistry {
    registry: Registry,
    plan: FaultPlan,
    gate: Arc<auth::Gate>,
    options: FakeRegistryOptions,
}

impl fmt::Debug for FakeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeRegistry")
            .field("registry", &self.registry)
            .field("plan", &self.plan)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Deref for FakeRegistry {
    type Target = Registry;

    fn deref(&self) -> &Registry {
        &self.registry
    }
}

impl FakeRegistry {
    /// Starts an open registry (no auth) on a free loopback port.
    pub async fn start() -> Self {
        Self::start_with(FakeRegistryOptions::default()).await
    }

    /// Starts a registry with `options` on a free loopback port.
    pub async fn start_with(options: FakeRegistryOptions) -> Self {
        let plan = FaultPlan::new();
        let mut registry_options = RegistryOptions::default();
        registry_options.page_size = options.page_size;
        registry_options.referrers_api = options.referrers_api;
        let mut slot = None;
        let registry = Registry::serve_with(registry_options, |api| {
            let plan = plan.clone();
            let gate_options = options.clone();
            let slot = &mut slot;
            async move {
                // Faults outermost: they strike before the gate, as they
                // would on the wire in front of a registry.
                FaultServer::start(plan, |addr| {
                    let gate = Arc::new(auth::Gate::new(gate_options, format!("http://{addr}")));
                    *slot = Some(gate.clone());
                    api.layer(middleware::from_fn_with_state(gate, auth::gate))
                })
                .await
                .into_server()
            }
        })
        .await;
        let gate = slot.expect("the router was built");
        Self {
            registry,
            plan,
            gate,
            options,
        }
    }

    /// Arms a fault. Faults strike once, in the order they match.
    pub fn inject(&self, fault: Fault) {
        self.plan.inject(fault);
    }

    /// Every request so far (token requests included), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.plan.requests()
    }

    /// Forgets the recorded requests (the fault counters keep counting).
    pub fn clear_requests(&self) {
        self.plan.clear_requests();
    }

    /// The fault plan, shared with the server (e.g. to hand to a helper).
    pub fn faults(&self) -> &FaultPlan {
        &self.plan
    }

    /// Expires every bearer token issued so far: the next request with one
    /// gets a `401` challenge, as after a token's lifetime.
    pub fn expire_tokens(&self) {
        self.gate.expire_tokens();
    }
}
