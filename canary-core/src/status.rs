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
    /// The ledger record that put the promoted tag here (`None`: no ledger,
    /// or moved outside canary — see `explained`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSummary>,
    /// Whether the ledger was read for this image.
    #[serde(default)]
    pub explained: bool,
}

/// A ledger record, as `status` and `history` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    /// The record's id (its artifact's digest).
    pub id: Digest,
    /// Intent or outcome.
    pub kind: crate::ledger::RecordKind,
    /// The run.
    pub run_id: String,
    /// The command.
    pub command: crate::report::Command,
    /// The release.
    pub sha: crate::types::GitSha,
    /// The outcome (outcome records).
    pub outcome: Option<crate::machine::Outcome>,
    /// Whether the checks passed on the canary fleet.
    pub verified: bool,
    /// When, ms since the Unix epoch.
    pub time_ms: u64,
    /// Who.
    pub actor: Option<String>,
    /// Why (outcome records), or the manual promotion's reason.
    pub reason: String,
    /// Whether the envelope was signed.
    pub signed: bool,
}

impl From<&crate::ledger::Stored> for RecordSummary {
    fn from(s: &crate::ledger::Stored) -> Self {
        let r = &s.record;
        Self {
            id: s.id.clone(),
            kind: r.kind,
            run_id: r.run_id.clone(),
            command: r.command,
            sha: r.sha.clone(),
            outcome: r.outcome,
            verified: r.verified,
            time_ms: r.time_ms,
            actor: r.actor.clone(),
            reason: r
                .manual_reason
                .clone()
                .filter(|_| r.reason.is_empty())
                .unwrap_or_else(|| r.reason.clone()),
            signed: s.signed,
        }
    }
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
    /// A run that announced a move and never recorded its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<RecordSummary>,
    /// Whether the images' promoted tags belong to different releases.
    #[serde(default)]
    pub mixed: bool,
    /// The one release (sha) every image's promoted tag is on, when the
    /// ledger records or staging tags name exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<crate::types::GitSha>,
}

impl StatusReport {
    /// Whether some image could not be read.
    pub fn unreadable(&self) -> bool {
        self.images.iter().any(|i| i.error.is_some())
    }

    /// The exit code of `canary status`: 4 when the release is mixed or an
    /// interrupted run is pending, 3 when an image could not be read, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.mixed || self.interrupted.is_some() {
            4
        } else if self.unreadable() {
            3
        } else {
            0
        }
    }
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
                let mut report = StatusReport {
                    images: out,
                    tenants: vec![TenantState {
                        url: "(fleet)".to_string(),
                        version: None,
                        error: Some(e.chain()),
                    }],
                    interrupted: None,
                    mixed: false,
                    release: None,
                };
                self.explain(&mut report, staging).await;
                return Ok(report);
            }
        };
        let suite = self.suite();
        // As they finish, then in fleet order (a slow tenant holds one slot).
        let mut probed: Vec<(usize, TenantState)> = stream::iter(tenants.into_iter().enumerate())
            .map(|(i, t)| async move {
                let state = match suite.probe(&t).await {
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
                };
                (i, state)
            })
            .buffer_unordered(self.policy().concurrency.max(1))
            .collect()
            .await;
        probed.sort_unstable_by_key(|(i, _)| *i);
        let tenants = probed.into_iter().map(|(_, t)| t).collect();
        let mut report = StatusReport {
            images: out,
            tenants,
            interrupted: None,
            mixed: false,
            release: None,
        };
        self.explain(&mut report, staging).await;
        Ok(report)
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
            record: None,
            explained: false,
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
        match self
            .staging_tags_of(image, staging, &digest, max_scan)
            .await
        {
            Ok(found) => {
                state.scanned = found.scanned;
                state.truncated = found.truncated;
                state.staging_tags = found.tags;
            }
            Err(e) => state.error = Some(e.chain()),
        }
        state
    }

    /// The staging tags of `image` (the newest `max_scan` of them, read
    /// with HEAD) that point at `digest`: which release a digest is.
    pub(crate) async fn staging_tags_of(
        &self,
        image: &ImageRef,
        staging: &TagTemplate,
        digest: &Digest,
        max_scan: usize,
    ) -> Result<StagingScan, crate::error::Error> {
        let registry = self.registry();
        let tags = registry.list_tags(image).await?;
        let mut candidates: Vec<Tag> = tags
            .into_iter()
            .filter(|t| staging.sha_of(t).is_some())
            .collect();
        // Tag lists are lexical; scan from the end so the bound keeps a
        // stable, documented subset.
        candidates.reverse();
        let truncated = candidates.len() > max_scan;
        candidates.truncate(max_scan);
        let scanned = candidates.len();
        let found: Vec<Option<Tag>> = stream::iter(candidates)
            .map(|t| async move {
                match registry
                    .head_manifest(image, &Reference::Tag(t.clone()))
                    .await
                {
                    Ok(Some(d)) if &d == digest => Some(t),
                    _ => None,
                }
            })
            .buffered(8)
            .collect()
            .await;
        Ok(StagingScan {
            tags: found.into_iter().flatten().collect(),
            scanned,
            truncated,
        })
    }
}

/// What [`Promoter::staging_tags_of`] found.
pub(crate) struct StagingScan {
    /// The staging tags pointing at the digest.
    pub(crate) tags: Vec<Tag>,
    /// How many staging tags were read.
    pub(crate) scanned: usize,
    /// Whether more were left unread.
    pub(crate) truncated: bool,
}

/// `canary history`: one image's ledger, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    /// The image whose ledger was read.
    pub image: crate::types::ImageRef,
    /// The records, newest first.
    pub records: Vec<RecordSummary>,
    /// Why the ledger could not be read (then `records` is what was read).
    pub error: Option<String>,
}

impl History {
    /// 0, or 3 when the ledger could not be read.
    pub fn exit_code(&self) -> i32 {
        if self.error.is_some() {
            3
        } else {
            0
        }
    }
}

/// `canary verify-record`: whether a record's signature holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordCheck {
    /// The image.
    pub image: crate::types::ImageRef,
    /// The digest the record is attached to.
    pub subject: Option<crate::types::Digest>,
    /// The record checked.
    pub record: Option<RecordSummary>,
    /// Whether the signature verified with the public key.
    pub valid: bool,
    /// Why not, or which key verified it.
    pub reason: String,
    /// A registry failure (exit 3).
    pub error: Option<String>,
}

impl RecordCheck {
    /// 0 valid, 1 invalid or unsigned, 3 the record could not be read.
    pub fn exit_code(&self) -> i32 {
        match (&self.error, self.valid) {
            (Some(_), _) => 3,
            (None, true) => 0,
            (None, false) => 1,
        }
    }
}
