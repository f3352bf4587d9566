//! Manifest media types, and reading (never writing) an index with
//! `oci-spec`.

use canary_core::{Digest, Error, ErrorKind, Manifest};

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` header of every manifest GET and HEAD: indexes first, so a
/// registry never picks one platform's manifest for us.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

const SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1",
];

/// Whether `media_type` is an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Why a manifest answer cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// The body is not a manifest at all (HTML, garbage): a protocol error.
    NotAManifest(String),
    /// A manifest canary does not retag (schema 1): an invalid request.
    Unsupported(String),
}

/// The media type to store a fetched manifest under: the `Content-Type` the
/// registry served, without parameters. Some registries serve
/// `application/json` (or nothing); then the manifest's own `mediaType`
/// field decides, else its shape (`manifests` → OCI index, `config` and
/// `layers` → OCI manifest), so the PUT of a retag names the real type.
pub(crate) fn media_type_of(content_type: Option<&str>, body: &[u8]) -> Result<String, Unusable> {
    let served = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if SCHEMA1.contains(&served.as_str()) {
        return Err(Unusable::Unsupported(format!(
            "the registry served a Docker schema 1 manifest (`{served}`), which canary does not retag"
        )));
    }
    if served.contains("html") {
        return Err(Unusable::NotAManifest(format!(
            "the registry answered `{served}`, an HTML page, not a manifest"
        )));
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Err(Unusable::NotAManifest(
            "the body is not JSON, so not a manifest".to_string(),
        ));
    };
    let generic = served.is_empty()
        || matches!(
            served.as_str(),
            "application/json" | "text/plain" | "application/octet-stream"
        );
    if !generic {
        return Ok(served);
    }
    if let Some(mt) = json.get("mediaType").and_then(|v| v.as_str()) {
        if SCHEMA1.contains(&mt) {
            return Err(Unusable::Unsupported(
                "the manifest is Docker schema 1, which canary does not retag".to_string(),
            ));
        }
        return Ok(mt.to_string());
    }
    if json
        .get("schemaVersion")
        .and_then(serde_json::Value::as_u64)
        == Some(1)
    {
        return Err(Unusable::Unsupported(
            "the manifest is Docker schema 1, which canary does not retag".to_string(),
        ));
    }
    if json
        .get("manifests")
        .is_some_and(serde_json::Value::is_array)
    {
        return Ok(OCI_INDEX.to_string());
    }
    if json.get("config").is_some() && json.get("layers").is_some() {
        return Ok(OCI_MANIFEST.to_string());
    }
    Err(Unusable::NotAManifest(format!(
        "the body is JSON but not a manifest (served as `{}`)",
        if served.is_empty() {
            "no Content-Type"
        } else {
            &served
        }
    )))
}

/// One manifest an index points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexChild {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// `os/architecture[/variant]`, when the index names a platform.
    pub platform: Option<String>,
}

/// The manifests an index (OCI index or Docker manifest list) points to;
/// empty for an image manifest. Reads the bytes with `oci-spec`; canary
/// never writes a manifest it parsed.
pub fn index_children(manifest: &Manifest) -> Result<Vec<IndexChild>, Error> {
    if !is_index(manifest.media_type()) {
        return Ok(Vec::new());
    }
    let index = oci_spec::image::ImageIndex::from_reader(manifest.bytes()).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("index {} cannot be read: {e}", manifest.digest()),
        )
    })?;
    index
        .manifests()
        .iter()
        .map(|d| {
            let digest = Digest::parse(d.digest().as_ref()).map_err(|e| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("index {} names a bad digest: {e}", manifest.digest()),
                )
            })?;
            let platform = d.platform().as_ref().map(|p| {
                let mut s = format!("{}/{}", p.os(), p.architecture());
                if let Some(v) = p.variant() {
                    s.push('/');
                    s.push_str(v);
                }
                s
            });
            Ok(IndexChild {
                digest,
                media_type: d.media_type().to_string(),
                size: d.size(),
                platform,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_type_wins_without_parameters() {
        assert_eq!(
            media_type_of(
                Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
                b"{}"
            ),
            Ok(OCI_INDEX.to_string())
        );
    }

    #[test]
    fn application_json_reads_the_body() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert_eq!(
            media_type_of(Some("application/json"), docker),
            Ok(DOCKER_MANIFEST_LIST.to_string())
        );
        assert_eq!(
            media_type_of(None, br#"{"schemaVersion":2,"manifests":[]}"#),
            Ok(OCI_INDEX.to_string())
        );
        assert_eq!(
            media_type_of(
                Some("application/json"),
                br#"{"schemaVersion":2,"config":{},"layers":[]}"#
            ),
            Ok(OCI_MANIFEST.to_string())
        );
        assert!(matches!(
            media_type_of(Some("application/json"), br#"{"hello":1}"#),
            Err(Unusable::NotAManifest(_))
        ));
    }

    #[test]
    fn html_garbage_and_schema1() {
        assert!(matches!(
            media_type_of(Some("text/html"), b"<html></html>"),
            Err(Unusable::NotAManifest(_))
        ));
        assert!(matches!(
            media_type_of(Some(OCI_MANIFEST), b"\x00\x01"),
            Err(Unusable::NotAManifest(_))
        ));
        assert!(matches!(
            media_type_of(
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                b"{}"
            ),
            Err(Unusable::Unsupported(_))
        ));
        assert!(matches!(
            media_type_of(Some("application/json"), br#"{"schemaVersion":1}"#),
            Err(Unusable::Unsupported(_))
        ));
    }

    #[test]
    fn children_of_an_index() {
        let d1 = Digest::sha256_of(b"a");
        let d2 = Digest::sha256_of(b"b");
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
              {{"mediaType":"{DOCKER_MANIFEST_V2}","digest":"{d1}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{DOCKER_MANIFEST_V2}","digest":"{d2}","size":11,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#
        );
        let m = Manifest::new(DOCKER_MANIFEST_LIST, body.into_bytes());
        let children = index_children(&m).unwrap();
        assert_eq!(children.len(), 2);
        assert_eq!(children[0].digest, d1);
        assert_eq!(children[0].platform.as_deref(), Some("linux/amd64"));
        assert_eq!(children[1].platform.as_deref(), Some("linux/arm64/v8"));
        assert_eq!(children[1].size, 11);
        let single = Manifest::new(OCI_MANIFEST, b"{}".to_vec());
        assert!(index_children(&single).unwrap().is_empty());
        let broken = Manifest::new(OCI_INDEX, b"{".to_vec());
        assert_eq!(
            index_children(&broken).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }
}
