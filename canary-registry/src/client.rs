//! [`OciRegistry`]: the distribution API client, in three layers, each an
//! `impl OciRegistry` block of its own module:
//!
//! - [`transport`]: one request sent, retried (backoff, `Retry-After`,
//!   waits through the options' clock), its answer read within a size
//!   limit, a failed answer mapped to an [`canary_core::Error`];
//! - [`auth`]: the ping that picks the scheme, the `WWW-Authenticate`
//!   challenge, credentials and the token cache, and the authenticated
//!   request that re-authenticates once on a 401;
//! - [`operations`]: the [`canary_core::Registry`] methods (manifest GET,
//!   HEAD, PUT; the tags list), each an authenticated request plus its
//!   checks of what came back;
//! - [`artifacts`]: blobs (upload, read) and OCI artifacts attached to a
//!   manifest (`attach`, `referrers`), through the referrers API or the
//!   referrers tag schema.
//!
//! This module holds the client and its per-host state.

mod artifacts;
mod auth;
mod operations;
mod transport;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use canary_core::{Digest, ImageRef, UsageError};

use self::auth::AuthState;
use crate::endpoint::{self, Insecure};
use crate::options::RegistryOptions;
use crate::stats::RequestStats;

/// The [`canary_core::Registry`] of canary over the OCI distribution API.
///
/// Each trait method is one HTTP request once authenticated (plus retries;
/// plus one GET when a HEAD answer lacks `Docker-Content-Digest`; one per
/// page for `list_tags`). Authentication happens once per registry host:
/// a `GET /v2/` ping, then, for a Bearer challenge, one token request that
/// covers every repository of that registry canary knows of (those passed
/// to [`OciRegistry::check_image`], and any used since), with `pull,push`.
/// Cheap to clone; clones share connections, tokens and counters.
#[derive(Clone)]
pub struct OciRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    options: RegistryOptions,
    insecure: Insecure,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    stats: Mutex<HashMap<String, RequestStats>>,
}

/// One registry host and its auth state.
struct Host {
    /// As written in image names (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    /// Where the API is (`registry-1.docker.io`).
    api_authority: String,
    /// Loopback or listed as insecure: plain HTTP allowed.
    allow_http: bool,
    /// Repositories seen, for the scopes of the next token.
    repos: Mutex<BTreeSet<String>>,
    /// Strings never to print: credentials and tokens of this host.
    secrets: Mutex<Vec<String>>,
    state: tokio::sync::Mutex<AuthState>,
    /// Per repository: whether the registry has the referrers API, once a
    /// referrers GET or an artifact PUT told.
    referrers_api: Mutex<HashMap<String, bool>>,
    /// Blobs (repository, digest) this client pushed or saw with a HEAD, so
    /// the empty config of every artifact is checked once per repository.
    known_blobs: Mutex<HashSet<(String, Digest)>>,
}

impl fmt::Debug for OciRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = lock(&self.inner.hosts).keys().cloned().collect();
        f.debug_struct("OciRegistry")
            .field("options", &self.inner.options)
            .field("hosts", &hosts)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl OciRegistry {
    /// A client with `options`. Checks the options (the CA file, the
    /// insecure list, the user agent) and makes no request: every problem
    /// here is a [`UsageError`].
    pub fn new(options: RegistryOptions) -> Result<Self, UsageError> {
        let insecure = Insecure::parse(&options.insecure)?;
        if options.timeout.is_zero() {
            return Err(UsageError::new(
                "registry timeout",
                "is zero",
                "give a timeout such as `30s`",
            ));
        }
        if options.retry.max_attempts == 0 {
            return Err(UsageError::new(
                "registry retry max_attempts",
                "is zero",
                "use 1 for no retries",
            ));
        }
        let user_agent = canary_http::user_agent(&options.user_agent)?;
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .redirect(transport::redirect_policy());
        if let Some(path) = &options.ca_file {
            for cert in canary_http::load_ca_bundle("registry.ca_file", path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            UsageError::new(
                "registry options",
                format!("cannot build an HTTP client: {e}"),
                "check ca_file",
            )
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                options,
                insecure,
                hosts: Mutex::new(HashMap::new()),
                stats: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Checks that `image` can be reached under these options, without a
    /// request, and remembers its repository so the registry's one token
    /// request covers it. Call it for every image of a release before the
    /// first request.
    ///
    /// Refuses an image on port 80 (plain HTTP) of a host that is neither
    /// loopback nor listed in [`RegistryOptions::insecure`].
    pub fn check_image(&self, image: &ImageRef) -> Result<(), UsageError> {
        let registry = image.registry();
        let (_, port) = endpoint::split_host_port(registry);
        let allow_http = endpoint::is_loopback(registry) || self.inner.insecure.lists(registry);
        if port == Some("80") && !allow_http {
            return Err(UsageError::new(
                format!("image `{image}`"),
                "names port 80, plain HTTP, on a host that is not loopback",
                format!(
                    "use the registry's HTTPS address, or list `{registry}` under \
                     `[registry] insecure` if it is on a network you trust"
                ),
            ));
        }
        let host = self.host(registry);
        lock(&host.repos).insert(image.path().to_string());
        Ok(())
    }

    /// Requests sent so far, all registries together.
    pub fn stats(&self) -> RequestStats {
        let mut total = RequestStats::default();
        for s in lock(&self.inner.stats).values() {
            total += *s;
        }
        total
    }

    /// Requests sent so far to one registry (as written in image names).
    pub fn stats_for(&self, registry: &str) -> RequestStats {
        lock(&self.inner.stats)
            .get(&registry.to_ascii_lowercase())
            .copied()
            .unwrap_or_default()
    }

    fn count(&self, host: &Host, f: impl FnOnce(&mut RequestStats)) {
        f(lock(&self.inner.stats)
            .entry(host.registry.clone())
            .or_default());
    }

    fn host(&self, registry: &str) -> Arc<Host> {
        let key = registry.to_ascii_lowercase();
        let mut hosts = lock(&self.inner.hosts);
        hosts
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Host {
                    allow_http: endpoint::is_loopback(&key) || self.inner.insecure.lists(&key),
                    api_authority: endpoint::api_host(&key),
                    registry: key,
                    repos: Mutex::new(BTreeSet::new()),
                    secrets: Mutex::new(Vec::new()),
                    state: tokio::sync::Mutex::new(AuthState::default()),
                    referrers_api: Mutex::new(HashMap::new()),
                    known_blobs: Mutex::new(HashSet::new()),
                })
            })
            .clone()
    }
}
