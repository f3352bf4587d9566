//! `canary status`: where `latest` points for every image, which staging tag
//! that is, and what every canary tenant runs.

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::error::UsageError;
use crate::promoter::Promoter;
use crate::types::{Digest, ImageRef, Reference, Tag, TagTemplate};

/// One image's promoted tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageState {
    /// The repository.
    pub image: ImageRef,
    /// The promoted tag.
    pub promoted_tag: Tag,
    /// Its digest (`None`: the tag does not exist).
    pub digest: Option<Digest>,
    /// The staging tags at the same digest, among those scanned.
    pub staging_tags: Vec<Tag>,
    /// How many staging tags were read.
    pub scanned: usize,
    /// Whether more staging tags exist than were read.
    pub truncated: bool,
    /// Why the image could not be read.
    pub error: Option<String>,
}

/// What one tenant reports running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantState {
    /// The tenant's base URL.
    pub url: String,
    /// The version it reports.
    pub version: Option<String>,
    /// Why it could not be probed.
    pub error: Option<String>,
}

/// The answer of `canary status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Every image.
    pub images: Vec<ImageState>,
    /// Every canary tenant.
    pub tenants: Vec<TenantState>,
}

impl Promoter {
    /// Reads, per image, the promoted tag's digest and the staging tags (at
    /// most `max_scan` of them, read with HEAD) that point to the same
    /// digest; and probes every tenant for its version. Changes nothing.
    pub async fn status(
        &self,
        images: &[ImageRef],
        staging: &TagTemplate,
        promoted: &TagTemplate,
        max_scan: usize,
    ) -> Result<StatusReport, UsageError> {
        if promoted.has_sha() {
            return Err(UsageError::new(
                format!("promoted tag template `{promoted}`"),
                "contains `{sha}`, so there is no single promoted tag to read",
                "use a fixed promoted tag such as `latest`",
            ));
        }
        let promoted_tag = Tag::parse(&promoted.to_string())?;
        let mut out = Vec::with_capacity(images.len());
        for image in images {
            out.push(
                self.image_state(image, staging, &promoted_tag, max_scan)
                    .await,
            );
        }
        let tenants = match self.fleet().tenants().await {
            Ok(t) => t,
            Err(e) => {
                return Ok(StatusReport {
                    images: out,
                    tenants: vec![TenantState {
                        url: "(fleet)".to_string(),
                        version: None,
                        error: Some(e.chain()),
                    }],
                })
            }
        };
        let suite = self.suite();
        let tenants = stream::iter(tenants)
            .map(|t| async move {
                match suite.probe(&t).await {
                    Ok(v) => TenantState {
                        url: t.url().to_string(),
                        version: Some(v),
                        error: None,
                    },
                    Err(e) => TenantState {
                        url: t.url().to_string(),
                        version: None,
                        error: Some(e.chain()),
                    },
                }
            })
            .buffered(self.policy().concurrency.max(1))
            .collect()
            .await;
        Ok(StatusReport {
            images: out,
            tenants,
        })
    }

    async fn image_state(
        &self,
        image: &ImageRef,
        staging: &TagTemplate,
        promoted: &Tag,
        max_scan: usize,
    ) -> ImageState {
        let registry = self.registry();
        let mut state = ImageState {
            image: image.clone(),
            promoted_tag: promoted.clone(),
            digest: None,
            staging_tags: Vec::new(),
            scanned: 0,
            truncated: false,
            error: None,
        };
        let digest = match registry
            .head_manifest(image, &Reference::Tag(promoted.clone()))
            .await
        {
            Ok(Some(d)) => d,
            Ok(None) => return state,
            Err(e) => {
                state.error = Some(e.chain());
                return state;
            }
        };
        state.digest = Some(digest.clone());
        let tags = match registry.list_tags(image).await {
            Ok(t) => t,
            Err(e) => {
                state.error = Some(e.chain());
                return state;
            }
        };
        let mut candidates: Vec<Tag> = tags
            .into_iter()
            .filter(|t| staging.sha_of(t).is_some())
            .collect();
        // Tag lists are lexical; scan from the end so the bound keeps a
        // stable, documented subset.
        candidates.reverse();
        state.truncated = candidates.len() > max_scan;
        candidates.truncate(max_scan);
        state.scanned = candidates.len();
        let found: Vec<Option<Tag>> = stream::iter(candidates)
            .map(|t| {
                let digest = &digest;
                async move {
                    match registry
                        .head_manifest(image, &Reference::Tag(t.clone()))
                        .await
                    {
                        Ok(Some(d)) if &d == digest => Some(t),
                        _ => None,
                    }
                }
            })
            .buffered(8)
            .collect()
            .await;
        state.staging_tags = found.into_iter().flatten().collect();
        state
    }
}
