//! OCI artifacts attached to a manifest: what to attach ([`Artifact`]) and
//! what a referrers listing says ([`Referrer`]).

use std::collections::BTreeMap;
use std::fmt;

use canary_core::Digest;

/// The OCI empty descriptor's media type: the config of an artifact that
/// has none.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The digest of the empty config's blob, `{}`.
pub const OCI_EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The empty config's bytes.
pub(crate) const OCI_EMPTY_BLOB: &[u8] = b"{}";

/// An artifact to attach: its type, one blob and the manifest annotations.
///
/// [`crate::OciRegistry::attach`] stores it as an OCI image manifest with
/// `artifactType`, the empty config, one layer (the blob, of
/// `blob_media_type`) and `annotations`. Registries copy the annotations
/// into referrers listings, so a listing can be read without the blobs.
#[derive(Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `artifactType` of the manifest (`application/vnd.example+json`).
    pub artifact_type: String,
    /// The media type of the one layer.
    pub blob_media_type: String,
    /// The layer's bytes.
    pub blob: Vec<u8>,
    /// The manifest's `annotations` (omitted when empty).
    pub annotations: BTreeMap<String, String>,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("artifact_type", &self.artifact_type)
            .field("blob_media_type", &self.blob_media_type)
            .field("blob_len", &self.blob.len())
            .field("annotations", &self.annotations)
            .finish()
    }
}

/// One entry of a referrers listing: the descriptor of a manifest whose
/// `subject` is the digest asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The manifest's digest; read it with
    /// `Registry::get_manifest(image, &Reference::Digest(digest))`.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Its `artifactType`, when the listing names one.
    pub artifact_type: Option<String>,
    /// Its annotations, as the listing copies them.
    pub annotations: BTreeMap<String, String>,
}
