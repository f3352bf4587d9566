//! The [`Registry`] trait and the in-memory [`MemoryRegistry`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::{Error, ErrorKind};
use crate::types::{Digest, ImageRef, Manifest, Reference, Tag};

/// The four registry operations canary needs. Retag, verify and restore are
/// built on these in [`crate::promoter`], so every registry gets the same
/// semantics. [`crate::conformance::registry_conformance`] checks the
/// contract below on an implementation.
///
/// # Contract
///
/// An implementation must guarantee:
///
/// - `get_manifest` returns the exact bytes the registry stores, the media
///   type it served them with, and their digest; it checks the bytes against
///   the digest the registry announced (and against the requested digest when
///   fetched by digest), returning [`ErrorKind::Integrity`] on a mismatch.
/// - `head_manifest` returns `Ok(None)` when the manifest or tag does not
///   exist and `Ok(Some(digest))` otherwise; it never returns a digest it has
///   not been told or computed from the stored bytes.
/// - `put_manifest` stores exactly `manifest.bytes()` with
///   `manifest.media_type()` under `tag`, never a re-serialisation, and
///   returns the digest the registry reports (or the manifest's own).
/// - `list_tags` returns every tag of the repository, following pagination;
///   an unknown repository is an empty list, not an error (a registry's
///   `NAME_UNKNOWN` answer is mapped to it).
/// - Errors are classified by [`ErrorKind`] and never contain a credential.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Registry: Send + Sync {
    /// Reads a manifest (raw bytes, media type, digest).
    async fn get_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Manifest, Error>;

    /// Reads only the digest (HEAD); `None` when it does not exist.
    async fn head_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error>;

    /// Writes the manifest's exact bytes under `tag`.
    async fn put_manifest(
        &self,
        image: &ImageRef,
        tag: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error>;

    /// Lists every tag of the repository.
    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<Tag>, Error>;
}

macro_rules! forward_registry {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Registry + ?Sized> Registry for $ty {
            async fn get_manifest(
                &self,
                image: &ImageRef,
                reference: &Reference,
            ) -> Result<Manifest, Error> {
                (**self).get_manifest(image, reference).await
            }
            async fn head_manifest(
                &self,
                image: &ImageRef,
                reference: &Reference,
            ) -> Result<Option<Digest>, Error> {
                (**self).head_manifest(image, reference).await
            }
            async fn put_manifest(
                &self,
                image: &ImageRef,
                tag: &Tag,
                manifest: &Manifest,
            ) -> Result<Digest, Error> {
                (**self).put_manifest(image, tag, manifest).await
            }
            async fn list_tags(&self, image: &ImageRef) -> Result<Vec<Tag>, Error> {
                (**self).list_tags(image).await
            }
        }
    };
}
forward_registry!(Arc<T>);
forward_registry!(Box<T>);

/// A registry operation, for fault injection and call logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `get_manifest`
    Get,
    /// `head_manifest`
    Head,
    /// `put_manifest`
    Put,
    /// `list_tags`
    List,
}

/// When an injected fault strikes relative to the operation's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTiming {
    /// The call fails and changes nothing.
    Before,
    /// The call takes effect, then reports failure (a PUT whose response was
    /// lost). Only meaningful for [`Op::Put`].
    After,
}

#[derive(Debug, Clone)]
struct Fault {
    op: Option<Op>,
    nth: usize,
    kind: ErrorKind,
    timing: FaultTiming,
}

/// One call recorded by [`MemoryRegistry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The operation.
    pub op: Op,
    /// The image.
    pub image: ImageRef,
    /// The tag or digest (empty for `List`).
    pub reference: String,
}

#[derive(Default)]
struct Repo {
    manifests: HashMap<Digest, Manifest>,
    tags: BTreeMap<Tag, Digest>,
}

#[derive(Default)]
struct Inner {
    repos: HashMap<ImageRef, Repo>,
    faults: Vec<Fault>,
    calls: Vec<Call>,
}

/// An in-memory registry, after object_store's `InMemory`: exact bytes,
/// tags, digests, a call log and fault injection ("fail the Nth call of a
/// kind").
#[derive(Clone, Default)]
pub struct MemoryRegistry {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `manifest` under `tag` (a push), without recording a call.
    pub fn push(&self, image: &ImageRef, tag: &Tag, manifest: Manifest) {
        let mut inner = self.lock();
        let repo = inner.repos.entry(image.clone()).or_default();
        repo.tags.insert(tag.clone(), manifest.digest().clone());
        repo.manifests.insert(manifest.digest().clone(), manifest);
    }

    /// The digest `tag` points to, read without recording a call.
    pub fn tag_digest(&self, image: &ImageRef, tag: &Tag) -> Option<Digest> {
        self.lock().repos.get(image)?.tags.get(tag).cloned()
    }

    /// The manifest stored under `digest`, read without recording a call.
    pub fn manifest(&self, image: &ImageRef, digest: &Digest) -> Option<Manifest> {
        self.lock().repos.get(image)?.manifests.get(digest).cloned()
    }

    /// Makes the `nth` (1-based) future call of `op` fail with `kind`.
    pub fn fail_nth(&self, op: Op, nth: usize, kind: ErrorKind, timing: FaultTiming) {
        self.lock().faults.push(Fault {
            op: Some(op),
            nth,
            kind,
            timing,
        });
    }

    /// Makes the `nth` (1-based) future call of any operation fail.
    pub fn fail_nth_call(&self, nth: usize, kind: ErrorKind, timing: FaultTiming) {
        self.lock().faults.push(Fault {
            op: None,
            nth,
            kind,
            timing,
        });
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls of `op` so far.
    pub fn count(&self, op: Op) -> usize {
        self.lock().calls.iter().filter(|c| c.op == op).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the call and returns the fault that strikes it, if any.
    fn record(inner: &mut Inner, op: Op, image: &ImageRef, reference: String) -> Option<Fault> {
        inner.calls.push(Call {
            op,
            image: image.clone(),
            reference,
        });
        let total = inner.calls.len();
        let of_op = inner.calls.iter().filter(|c| c.op == op).count();
        let pos = inner.faults.iter().position(|f| match f.op {
            Some(fop) => fop == op && f.nth == of_op,
            None => f.nth == total,
        })?;
        Some(inner.faults.remove(pos))
    }

    fn injected(op: Op, image: &ImageRef, fault: &Fault) -> Error {
        Error::new(
            fault.kind,
            format!("injected {:?} fault on {op:?} {image}", fault.kind),
        )
    }
}

/// The registry of a promoter that has none ([`crate::Promoter::without_registry`]):
/// every call is refused, so a path that should not touch a registry cannot
/// do so by accident.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoRegistry;

impl NoRegistry {
    fn refuse(image: &ImageRef) -> Error {
        Error::new(
            ErrorKind::Invalid,
            format!("{image}: this run has no registry configured"),
        )
    }
}

#[async_trait]
impl Registry for NoRegistry {
    async fn get_manifest(&self, image: &ImageRef, _: &Reference) -> Result<Manifest, Error> {
        Err(Self::refuse(image))
    }
    async fn head_manifest(
        &self,
        image: &ImageRef,
        _: &Reference,
    ) -> Result<Option<Digest>, Error> {
        Err(Self::refuse(image))
    }
    async fn put_manifest(&self, image: &ImageRef, _: &Tag, _: &Manifest) -> Result<Digest, Error> {
        Err(Self::refuse(image))
    }
    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<Tag>, Error> {
        Err(Self::refuse(image))
    }
}

fn not_found(image: &ImageRef, reference: &Reference) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("{image}:{reference} not found"),
    )
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn get_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Manifest, Error> {
        let mut inner = self.lock();
        if let Some(f) = Self::record(&mut inner, Op::Get, image, reference.to_string()) {
            return Err(Self::injected(Op::Get, image, &f));
        }
        let repo = inner
            .repos
            .get(image)
            .ok_or_else(|| not_found(image, reference))?;
        let digest = match reference {
            Reference::Tag(t) => repo
                .tags
                .get(t)
                .ok_or_else(|| not_found(image, reference))?,
            Reference::Digest(d) => d,
        };
        repo.manifests
            .get(digest)
            .cloned()
            .ok_or_else(|| not_found(image, reference))
    }

    async fn head_manifest(
        &self,
        image: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        let mut inner = self.lock();
        if let Some(f) = Self::record(&mut inner, Op::Head, image, reference.to_string()) {
            return Err(Self::injected(Op::Head, image, &f));
        }
        let Some(repo) = inner.repos.get(image) else {
            return Ok(None);
        };
        Ok(match reference {
            Reference::Tag(t) => repo.tags.get(t).cloned(),
            Reference::Digest(d) => repo.manifests.contains_key(d).then(|| d.clone()),
        })
    }

    async fn put_manifest(
        &self,
        image: &ImageRef,
        tag: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        let mut inner = self.lock();
        let fault = Self::record(&mut inner, Op::Put, image, tag.to_string());
        if let Some(f) = &fault {
            if f.timing == FaultTiming::Before {
                return Err(Self::injected(Op::Put, image, f));
            }
        }
        let repo = inner.repos.entry(image.clone()).or_default();
        repo.tags.insert(tag.clone(), manifest.digest().clone());
        repo.manifests
            .insert(manifest.digest().clone(), manifest.clone());
        match fault {
            Some(f) => Err(Self::injected(Op::Put, image, &f)),
            None => Ok(manifest.digest().clone()),
        }
    }

    async fn list_tags(&self, image: &ImageRef) -> Result<Vec<Tag>, Error> {
        let mut inner = self.lock();
        if let Some(f) = Self::record(&mut inner, Op::List, image, String::new()) {
            return Err(Self::injected(Op::List, image, &f));
        }
        Ok(inner
            .repos
            .get(image)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default())
    }
}
