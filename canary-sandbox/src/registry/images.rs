//! Media types and small, valid-looking image manifests and indexes to seed
//! a registry with.

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

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
/// the sandbox registry does not check them.
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
