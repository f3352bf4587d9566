//! A plain in-process OCI distribution registry.
//!
//! [`Registry`] serves the subset of the distribution API that canary
//! uses, over plain HTTP on `127.0.0.1:<free port>`, and stops when it is
//! dropped. It is what `canary demo` runs against: nothing to install, no
//! credentials, nothing left behind.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v2/` | `200 {}` |
//! | `GET`/`HEAD /v2/<name>/manifests/<tag or digest>` | the exact stored bytes, `Content-Type`, `Content-Length`, `Docker-Content-Digest` |
//! | `PUT /v2/<name>/manifests/<tag or digest>` | stores the exact bytes and `Content-Type`; `201` with `Docker-Content-Digest` and `Location` |
//! | `GET /v2/<name>/tags/list?n=&last=` | sorted tags, paginated with a `Link: <…>; rel="next"` header |
//! | `POST /v2/<name>/blobs/uploads/` | `202` with `Location` of an upload session (or, with `?digest=` and the bytes, `201`: a one-request upload) |
//! | `PATCH`/`PUT /v2/<name>/blobs/uploads/<session>` | appends the body; the `PUT` with `?digest=` checks the digest, stores the blob and answers `201` with `Docker-Content-Digest` |
//! | `GET`/`HEAD /v2/<name>/blobs/<digest>` | the stored blob, `Content-Length`, `Docker-Content-Digest` |
//! | `GET /v2/<name>/referrers/<digest>?artifactType=` | an OCI image index of the manifests whose `subject` is that digest, with their `artifactType` and `annotations` (`OCI-Filters-Applied: artifactType` when filtered) |
//!
//! A manifest PUT whose body has a `subject` is answered with an
//! `OCI-Subject: <digest>` header, as the referrers API asks. With
//! [`RegistryOptions::referrers_api`] off, the registry behaves like CNCF
//! distribution 2.x and 3.x instead: no `OCI-Subject`, and the referrers
//! path is a plain `404 page not found`, so clients use the referrers tag
//! schema.
//!
//! Errors use the distribution error JSON (`{"errors":[{"code":…}]}`):
//! `NAME_UNKNOWN`, `MANIFEST_UNKNOWN`, `MANIFEST_INVALID`, `DIGEST_INVALID`,
//! `NAME_INVALID`, `TAG_INVALID`, `BLOB_UNKNOWN`, `BLOB_UPLOAD_UNKNOWN`,
//! `SIZE_INVALID`, `UNSUPPORTED`, `PAGINATION_NUMBER_INVALID`.
//!
//! Decisions:
//!
//! - Manifests are not checked against blobs: a manifest PUT needs a JSON
//!   object body and a media type (`Content-Type`, or the body's
//!   `mediaType`), nothing more, so a demo can seed images without their
//!   layers. A PUT by digest must match the body. Blobs that are uploaded are
//!   stored and served (an artifact's config and payload).
//! - `Accept` is not negotiated: a manifest is always served as stored,
//!   which is what registries do today for OCI and Docker v2 types.
//! - No authentication and no faults. Whatever must stand in front of the
//!   API (a test kit's fault injection, an auth gate) is a layer that
//!   [`Registry::serve_with`] lets the caller add; see [`api::Endpoint`] for
//!   routing requests the way the registry does.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use canary_sandbox::registry::{self, Registry};
//!
//! let registry = Registry::start().await;
//! let digest = registry.push_manifest(
//!     "acme/platform",
//!     "staging-4c1d56e",
//!     registry::OCI_MANIFEST,
//!     registry::image_manifest("platform", "amd64"),
//! );
//! assert_eq!(registry.tag_digest("acme/platform", "staging-4c1d56e"), Some(digest));
//! // `registry.host()` is the registry part of an image reference:
//! let image = format!("{}/acme/platform", registry.host());
//! # let _ = image;
//! # }
//! ```

pub mod api;
mod blobs;
mod images;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;

pub use images::{
    image_index, image_manifest, sha256_digest, IndexEntry, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
    OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
};

use crate::server::Server;

/// How a [`Registry`] behaves. Build with [`Default`] and the `with_…`
/// methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RegistryOptions {
    /// The largest tags-list page served, whatever `n` asks for (`None`: no
    /// cap, every tag in one page unless `n` is given). Real registries cap
    /// pages; a small cap makes clients walk the `Link` headers.
    pub page_size: Option<usize>,
    /// Whether the registry has the referrers API (`GET …/referrers/…`,
    /// `OCI-Subject` on a PUT). Default `true`; `false` behaves like CNCF
    /// distribution 2.x/3.x and GHCR, which have none.
    pub referrers_api: bool,
    /// How long a manifest PUT to a tag waits before the manifest is
    /// stored: a slow registry, so `canary demo` can show a run killed
    /// between two moves. Default none.
    pub tag_put_delay: std::time::Duration,
    /// Only tag PUTs to this repository wait (all when `None`).
    pub slow_repository: Option<String>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            page_size: None,
            referrers_api: true,
            tag_put_delay: std::time::Duration::ZERO,
            slow_repository: None,
        }
    }
}

impl RegistryOptions {
    /// Makes every manifest PUT to a tag wait `delay` before it is stored.
    #[must_use]
    pub fn with_tag_put_delay(mut self, delay: std::time::Duration) -> Self {
        self.tag_put_delay = delay;
        self
    }

    /// Makes only the tag PUTs to `repository` wait `delay`: one image of a
    /// release written, the other still on its way.
    #[must_use]
    pub fn with_slow_repository(mut self, repository: &str, delay: std::time::Duration) -> Self {
        self.tag_put_delay = delay;
        self.slow_repository = Some(repository.to_string());
        self
    }

    /// Turns the referrers API on or off.
    #[must_use]
    pub fn with_referrers_api(mut self, referrers_api: bool) -> Self {
        self.referrers_api = referrers_api;
        self
    }

    /// Caps tags-list pages at `page_size` tags.
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = Some(page_size);
        self
    }
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
    /// Blobs by digest.
    blobs: HashMap<String, Vec<u8>>,
    /// Upload sessions by id: the bytes received so far.
    uploads: HashMap<String, Vec<u8>>,
}

/// The registry's content, shared by the request handlers and the
/// [`Registry`] handle.
struct Store {
    options: RegistryOptions,
    repos: Mutex<HashMap<String, Repo>>,
    /// Numbers upload sessions.
    next_upload: AtomicU64,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Repo>> {
        // A caller that panicked while holding the lock left plain data
        // behind; there is no invariant it could have broken half-way.
        self.repos.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `bytes` in `repo` and points `tag` at them, if given. Returns
    /// the digest.
    fn insert(&self, repo: &str, media_type: &str, bytes: Vec<u8>, tag: Option<&str>) -> String {
        let digest = sha256_digest(&bytes);
        let mut repos = self.lock();
        let r = repos.entry(repo.to_string()).or_default();
        r.manifests.insert(
            digest.clone(),
            StoredManifest {
                media_type: media_type.to_string(),
                bytes,
                digest: digest.clone(),
            },
        );
        if let Some(tag) = tag {
            r.tags.insert(tag.to_string(), digest.clone());
        }
        digest
    }
}

/// A running registry. Dropping it stops the server: no new connections,
/// idle ones closed, in-flight requests finished.
pub struct Registry {
    store: Arc<Store>,
    server: Server,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("addr", &self.server.addr())
            .field("options", &self.store.options)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a registry on a free loopback port.
    pub async fn start() -> Self {
        Self::start_with(RegistryOptions::default()).await
    }

    /// Starts a registry with `options` on a free loopback port.
    pub async fn start_with(options: RegistryOptions) -> Self {
        Self::serve_with(options, |api| Server::start(|_| api)).await
    }

    /// Starts a registry with `options`, served by `serve`: it gets the
    /// distribution API as a router and returns the running server, with
    /// whatever it put in front (a test kit's faults and auth).
    pub async fn serve_with<F, Fut>(options: RegistryOptions, serve: F) -> Self
    where
        F: FnOnce(Router) -> Fut,
        Fut: Future<Output = Server>,
    {
        let store = Arc::new(Store {
            options,
            repos: Mutex::new(HashMap::new()),
            next_upload: AtomicU64::new(1),
        });
        let server = serve(api::router(store.clone())).await;
        Self { store, server }
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference. Loopback,
    /// so clients may use plain HTTP.
    pub fn host(&self) -> String {
        self.server.host()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Stores `bytes` as a manifest of `media_type` in `repo` and points
    /// `tag` at it, as a build's push would. Returns the digest.
    pub fn push_manifest(&self, repo: &str, tag: &str, media_type: &str, bytes: Vec<u8>) -> String {
        self.store.insert(repo, media_type, bytes, Some(tag))
    }

    /// Stores a manifest by digest only (an index's child), without a tag.
    /// Returns the digest.
    pub fn push_blobless_child(&self, repo: &str, media_type: &str, bytes: Vec<u8>) -> String {
        self.store.insert(repo, media_type, bytes, None)
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

    /// The digest `tag` points to in `repo`, read without a request.
    pub fn tag_digest(&self, repo: &str, tag: &str) -> Option<String> {
        self.store.lock().get(repo)?.tags.get(tag).cloned()
    }

    /// The manifest `reference` (a tag or a digest) names in `repo`, read
    /// without a request.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<StoredManifest> {
        let repos = self.store.lock();
        let r = repos.get(repo)?;
        let digest = r.tags.get(reference).map_or(reference, String::as_str);
        r.manifests.get(digest).cloned()
    }

    /// The blob `digest` of `repo`, read without a request.
    pub fn blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        self.store.lock().get(repo)?.blobs.get(digest).cloned()
    }

    /// Every tag of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        self.store
            .lock()
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }
}
