//! [`OciLedger`]: records as OCI artifacts attached to the images.
//!
//! A record is one artifact manifest per image repository: `artifactType`
//! [`RECORD_ARTIFACT_TYPE`], the empty config, one layer holding the DSSE
//! envelope ([`ENVELOPE_MEDIA_TYPE`]), `subject` the image manifest it is
//! attached to, and the annotations of [`annotations`] (which registries
//! copy into the referrers listing, so a listing is readable without
//! fetching a blob). The record's id is the digest of that manifest.
//! [`OciRegistry::attach`] chooses the referrers API or the referrers tag
//! schema.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use canary_core::ledger::{Entry, Ledger, Record, RecordKind, Stored};
use canary_core::{Digest, Error, ErrorKind, ImageRef, Reference, Registry as _};
use canary_registry::{Artifact, OciRegistry};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;

use crate::dsse::{self, Envelope, Invalid, Verified, ENVELOPE_MEDIA_TYPE};
use crate::keys::{SigningKey, VerifyingKey};
use crate::statement::{rfc3339_seconds, Statement};

/// The `artifactType` of canary's records.
pub const RECORD_ARTIFACT_TYPE: &str = "application/vnd.canary.record.v1+dsse";

/// The largest envelope read back. A record is a few KiB; the limit keeps
/// a hostile artifact from filling memory.
pub const ENVELOPE_LIMIT: usize = 4 * 1024 * 1024;

/// Records fetched at once when listing.
const FETCH_CONCURRENCY: usize = 8;

/// The annotation keys of a record's manifest.
pub mod annotation {
    /// `intent` or `outcome`.
    pub const KIND: &str = "dev.canary.record.kind";
    /// The run id.
    pub const RUN_ID: &str = "dev.canary.run-id";
    /// The command (`verify`, `rollback`…).
    pub const COMMAND: &str = "dev.canary.command";
    /// The release's git sha.
    pub const SHA: &str = "dev.canary.sha";
    /// Outcome records: how the run ended (`promoted`…).
    pub const OUTCOME: &str = "dev.canary.outcome";
    /// When the record was made, RFC 3339.
    pub const CREATED: &str = "org.opencontainers.image.created";
    /// When the record was made, ms since the Unix epoch.
    pub const TIME_MS: &str = "dev.canary.time-ms";
}

/// The manifest annotations of `record`.
pub fn annotations(record: &Record) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        (annotation::KIND.into(), record.kind.as_str().into()),
        (annotation::RUN_ID.into(), record.run_id.clone()),
        (annotation::COMMAND.into(), record.command.as_str().into()),
        (annotation::SHA.into(), record.sha.to_string()),
        (annotation::CREATED.into(), rfc3339_seconds(record.time_ms)),
        (annotation::TIME_MS.into(), record.time_ms.to_string()),
    ]);
    if record.kind == RecordKind::Outcome {
        if let Some(outcome) = record.outcome {
            a.insert(annotation::OUTCOME.into(), outcome.as_str().into());
        }
    }
    a
}

/// The [`Ledger`] in an OCI registry.
pub struct OciLedger {
    registry: Arc<OciRegistry>,
    signing: Option<SigningKey>,
    verifier_id: String,
}

impl fmt::Debug for OciLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SigningKey's Debug shows its id only.
        f.debug_struct("OciLedger")
            .field("signing", &self.signing)
            .field("verifier_id", &self.verifier_id)
            .finish_non_exhaustive()
    }
}

impl OciLedger {
    /// A ledger writing through `registry`, signing with `signing` when
    /// given (unsigned envelopes otherwise), naming `verifier_id` as the
    /// VSA's verifier (see [`crate::statement::verifier_id`]).
    pub fn new(
        registry: Arc<OciRegistry>,
        signing: Option<SigningKey>,
        verifier_id: String,
    ) -> Self {
        Self {
            registry,
            signing,
            verifier_id,
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<OciRegistry> {
        &self.registry
    }

    /// Whether records are signed.
    pub fn signs(&self) -> bool {
        self.signing.is_some()
    }

    /// The envelope `append` stores for `record`.
    pub fn seal(&self, record: &Record) -> Envelope {
        let statement = Statement::new(record, &self.verifier_id);
        dsse::seal(&statement.to_json(), self.signing.as_ref())
    }

    /// The artifact `append` attaches for `record`.
    pub fn artifact(&self, record: &Record) -> Artifact {
        Artifact {
            artifact_type: RECORD_ARTIFACT_TYPE.to_string(),
            blob_media_type: ENVELOPE_MEDIA_TYPE.to_string(),
            blob: self.seal(record).to_json(),
            annotations: annotations(record),
        }
    }
}

#[async_trait]
impl Ledger for OciLedger {
    async fn append(
        &self,
        image: &ImageRef,
        subject: &Digest,
        record: &Record,
    ) -> Result<Digest, Error> {
        self.registry
            .attach(image, subject, &self.artifact(record))
            .await
    }

    async fn attached(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Stored>, Error> {
        let referrers = self
            .registry
            .referrers(image, subject, Some(RECORD_ARTIFACT_TYPE))
            .await?;
        let registry = &*self.registry;
        // `referrers` filters by artifactType, also where the registry does not.
        futures::stream::iter(referrers)
            .map(|r| async move {
                match fetch_record(registry, image, &r.digest).await {
                    // Listed but gone (deleted since, or a stale entry of
                    // a referrers index): not attached any more.
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    other => other.map(Some),
                }
            })
            .buffered(FETCH_CONCURRENCY)
            .try_filter_map(|s| async move { Ok(s) })
            .try_collect()
            .await
    }

    async fn get(&self, image: &ImageRef, id: &Digest) -> Result<Stored, Error> {
        fetch_record(&self.registry, image, id).await
    }

    /// The referrers listing alone: kind, run id and time ride in the
    /// manifest annotations, so no record is fetched. An entry without them
    /// (written by another tool) is fetched to be read.
    async fn list(&self, image: &ImageRef, subject: &Digest) -> Result<Vec<Entry>, Error> {
        let referrers = self
            .registry
            .referrers(image, subject, Some(RECORD_ARTIFACT_TYPE))
            .await?;
        let mut entries = Vec::with_capacity(referrers.len());
        for r in referrers {
            let a = &r.annotations;
            let kind = match a.get(annotation::KIND).map(String::as_str) {
                Some("intent") => Some(RecordKind::Intent),
                Some("outcome") => Some(RecordKind::Outcome),
                _ => None,
            };
            let time = a
                .get(annotation::TIME_MS)
                .and_then(|t| t.parse::<u64>().ok());
            match (kind, a.get(annotation::RUN_ID), time) {
                (Some(kind), Some(run_id), Some(time_ms)) => entries.push(Entry {
                    id: r.digest,
                    kind,
                    run_id: run_id.clone(),
                    time_ms,
                }),
                _ => match fetch_record(&self.registry, image, &r.digest).await {
                    Ok(stored) => entries.push(Entry::from(&stored)),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(entries)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

/// The DSSE envelope of record `id` in `image`'s repository, as stored
/// (for `verify-record`).
pub async fn fetch_envelope(
    registry: &OciRegistry,
    image: &ImageRef,
    id: &Digest,
) -> Result<Envelope, Error> {
    let unreadable = |what: String| {
        Error::new(
            ErrorKind::Protocol,
            format!("{image}@{id}: not a canary record: {what}"),
        )
        .with_hint("check the record id (`canary history` lists them)")
    };
    let manifest = registry
        .get_manifest(image, &Reference::Digest(id.clone()))
        .await?;
    let m: ArtifactManifest = serde_json::from_slice(manifest.bytes())
        .map_err(|e| unreadable(format!("the manifest is not an OCI manifest: {e}")))?;
    if m.artifact_type.as_deref() != Some(RECORD_ARTIFACT_TYPE) {
        return Err(unreadable(format!(
            "its artifactType is {:?}, not `{RECORD_ARTIFACT_TYPE}`",
            m.artifact_type.unwrap_or_default()
        )));
    }
    let layer = m
        .layers
        .iter()
        .find(|l| l.media_type == ENVELOPE_MEDIA_TYPE)
        .ok_or_else(|| unreadable(format!("no `{ENVELOPE_MEDIA_TYPE}` layer")))?;
    let size = usize::try_from(layer.size).unwrap_or(usize::MAX);
    if size > ENVELOPE_LIMIT {
        return Err(unreadable(format!(
            "its envelope is {} bytes, over the {ENVELOPE_LIMIT}-byte limit",
            layer.size
        )));
    }
    let digest = Digest::parse(&layer.digest)
        .map_err(|_| unreadable("its layer digest is malformed".to_string()))?;
    // get_blob checks the bytes against the digest.
    let blob = registry.get_blob(image, &digest, ENVELOPE_LIMIT).await?;
    Envelope::from_json(&blob).map_err(|e| unreadable(e.to_string()))
}

/// Record `id` of `image`'s repository, read without checking a signature
/// (`signed` says whether it has one).
pub async fn fetch_record(
    registry: &OciRegistry,
    image: &ImageRef,
    id: &Digest,
) -> Result<Stored, Error> {
    let envelope = fetch_envelope(registry, image, id).await?;
    let statement = dsse::open(&envelope).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("{image}@{id}: not a canary record: {e}"),
        )
    })?;
    Ok(Stored {
        id: id.clone(),
        signed: envelope.is_signed(),
        record: statement.predicate.canary,
    })
}

/// Checks record `id` of `image`'s repository against `key`. The outer
/// error: the record could not be read; the inner: it was read and is
/// not validly signed by `key`, with the reason.
pub async fn verify_record(
    registry: &OciRegistry,
    image: &ImageRef,
    id: &Digest,
    key: &VerifyingKey,
) -> Result<Result<Verified, Invalid>, Error> {
    let envelope = fetch_envelope(registry, image, id).await?;
    Ok(dsse::verify(&envelope, key))
}

#[cfg(test)]
mod tests {
    use canary_core::ledger::{RecordKind, RECORD_SCHEMA};
    use canary_core::{Command, GitSha, Outcome};

    use super::*;

    fn record(kind: RecordKind) -> Record {
        Record {
            schema: RECORD_SCHEMA,
            kind,
            run_id: "run-7".into(),
            command: Command::Rollback,
            sha: GitSha::parse("4c1d56e").unwrap(),
            promoted_tag: "latest".into(),
            time_ms: 1_700_000_000_123,
            images: Vec::new(),
            outcome: (kind == RecordKind::Outcome).then_some(Outcome::RolledBack),
            reason: String::new(),
            manual_reason: None,
            verified: false,
            checks: None,
            actor: None,
            run_url: None,
            previous: None,
            analysis: None,
        }
    }

    #[test]
    fn annotations_name_the_record() {
        let a = annotations(&record(RecordKind::Outcome));
        let want: BTreeMap<String, String> = [
            ("dev.canary.record.kind", "outcome"),
            ("dev.canary.run-id", "run-7"),
            ("dev.canary.command", "rollback"),
            ("dev.canary.sha", "4c1d56e"),
            ("dev.canary.outcome", "rolled_back"),
            ("org.opencontainers.image.created", "2023-11-14T22:13:20Z"),
            ("dev.canary.time-ms", "1700000000123"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(a, want);
        let intent = annotations(&record(RecordKind::Intent));
        assert_eq!(intent["dev.canary.record.kind"], "intent");
        assert!(!intent.contains_key("dev.canary.outcome"));
    }
}
