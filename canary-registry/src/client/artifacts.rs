//! Artifacts: blobs (monolithic upload, bounded read) and OCI artifacts
//! attached to a manifest through its `subject`, listed through the
//! referrers API where the registry has it and the referrers tag schema
//! (`<alg>-<hex>` → an OCI index) where it does not.
//!
//! Every request goes through [`OciRegistry::api`]: auth (the token's scopes
//! cover `push` for uploads, as for every write), retries with
//! `Retry-After`, redaction, and the request counters.

use std::collections::BTreeSet;

use canary_core::{Digest, Error, ErrorKind, ImageRef, Manifest, Reference, Tag};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::operations::{announced_digest, next_link};
use super::transport::Request;
use super::{lock, Host, OciRegistry};
use crate::artifact::{Artifact, Referrer, OCI_EMPTY, OCI_EMPTY_BLOB};
use crate::errors::{protocol_error, Call};
use crate::manifest::{is_index, OCI_INDEX, OCI_MANIFEST};

/// Referrers pages followed at most, against a server whose `Link` loops.
const MAX_REFERRER_PAGES: usize = 1000;

/// The referrers tag schema's tag for `subject`: `<alg>-<hex>`, the hex cut
/// at 64 characters as the distribution spec says (a sha512 tag would
/// otherwise exceed the tag length limit).
pub(crate) fn referrers_tag(subject: &Digest) -> Tag {
    let hex = subject.hex();
    Tag::parse(&format!(
        "{}-{}",
        subject.algorithm().name(),
        &hex[..hex.len().min(64)]
    ))
    .expect("an algorithm name and hex make a valid tag")
}

fn blob_url(base: &Url, image: &ImageRef, digest: &Digest) -> Url {
    base.join(&format!("v2/{}/blobs/{digest}", image.path()))
        .expect("validated path")
}

/// An empty OCI index, the referrers tag schema's starting point.
fn empty_index() -> Value {
    json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] })
}

/// Whether a failed answer's body is a distribution error naming a missing
/// repository or manifest: a registry with the referrers API answering for
/// a subject it does not know, not a registry without the API.
fn names_missing_content(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors")?.as_array().cloned())
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                matches!(
                    e.get("code").and_then(Value::as_str),
                    Some("NAME_UNKNOWN" | "MANIFEST_UNKNOWN")
                )
            })
        })
}

/// The entries of a referrers listing (the API's answer, or the tag
/// schema's index), of `artifact_type` when given. An entry that is not a
/// descriptor (no digest) is skipped with a warning rather than failing
/// the whole listing, which other tools write too.
fn listing(body: &[u8], artifact_type: Option<&str>) -> Result<Vec<Referrer>, String> {
    let index: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
    let entries = match index.get("manifests") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err("`manifests` is not a list".into()),
    };
    let mut found = Vec::new();
    for entry in entries {
        let digest = entry
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok());
        let Some(digest) = digest else {
            tracing::warn!(entry = %entry, "referrers listing entry without a valid digest; skipped");
            continue;
        };
        let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
        let annotations = entry
            .get("annotations")
            .and_then(Value::as_object)
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        found.push(Referrer {
            digest,
            media_type: text("mediaType").unwrap_or_default(),
            size: entry.get("size").and_then(Value::as_u64).unwrap_or(0),
            artifact_type: text("artifactType"),
            annotations,
        });
    }
    // Filtered here too: a registry may ignore the filter (no
    // `OCI-Filters-Applied`), and the tag schema has none.
    found.retain(|r| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)));
    Ok(found)
}

impl OciRegistry {
    /// Uploads `bytes` as a blob of `image`'s repository, monolithically
    /// (`POST …/blobs/uploads/`, then `PUT <Location>?digest=`), unless a
    /// `HEAD` says the blob is already there. Returns its sha256 digest.
    ///
    /// A blob this client already pushed or found in that repository is not
    /// asked about again (the empty config every artifact shares costs its
    /// `HEAD` once per repository and run). The `Location` must be on the
    /// registry's own origin: canary's credentials go nowhere else.
    pub async fn push_blob(&self, image: &ImageRef, bytes: &[u8]) -> Result<Digest, Error> {
        let digest = Digest::sha256_of(bytes);
        let host = self.host(image.registry());
        let key = (image.path().to_string(), digest.clone());
        if lock(&host.known_blobs).contains(&key) {
            return Ok(digest);
        }
        let base = self.base(&host).await?;
        if !self.blob_exists(&host, &base, image, &digest).await? {
            self.upload(&host, &base, image, &digest, bytes).await?;
        }
        lock(&host.known_blobs).insert(key);
        Ok(digest)
    }

    /// Reads blob `digest` of `image`'s repository, at most `limit` bytes
    /// (a larger body is a protocol error), and checks it hashes to
    /// `digest`.
    pub async fn get_blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        limit: usize,
    ) -> Result<Vec<u8>, Error> {
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let req = Request {
            call: Call::GetBlob { limit },
            method: Method::GET,
            url: blob_url(&base, image, digest),
            headers: HeaderMap::new(),
            body: None,
            repository: Some(image.path()),
        };
        let reply = self.api(&host, req.clone()).await?;
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        if !digest.matches(&reply.body) {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "GET {}: the blob hashes to {}, not the requested {digest}",
                    reply.url,
                    digest.compute_like(&reply.body)
                ),
            ));
        }
        Ok(reply.body)
    }

    /// Attaches `artifact` to the manifest `subject` of `image`'s
    /// repository; returns the digest of the artifact's manifest.
    ///
    /// Reads the subject's descriptor with a `HEAD` (media type and size),
    /// pushes the empty config and the blob (those three in parallel), then
    /// `PUT`s by digest an OCI image manifest with `artifactType`,
    /// `subject` and the annotations. A registry with the referrers API
    /// answers that `PUT` with `OCI-Subject`; without it, canary adds the
    /// artifact's descriptor to the referrers tag schema index (`GET` the
    /// `<alg>-<hex>` tag, a 404 being an empty index; `PUT` it back with
    /// the entry added, unless already listed). That read–modify–write is
    /// not atomic: two writers attaching to the same subject at the same
    /// moment can lose an entry (the artifact stays, unlisted), a limit
    /// of the tag schema itself.
    pub async fn attach(
        &self,
        image: &ImageRef,
        subject: &Digest,
        artifact: &Artifact,
    ) -> Result<Digest, Error> {
        if artifact.artifact_type.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{image}: an artifact needs an artifactType"),
            ));
        }
        let host = self.host(image.registry());
        let base = self.base(&host).await?;
        let ((subject_type, subject_size), config, layer) = tokio::try_join!(
            self.subject_descriptor(&host, &base, image, subject),
            self.push_blob(image, OCI_EMPTY_BLOB),
            self.push_blob(image, &artifact.blob),
        )?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact.artifact_type,
            "config": {
                "mediaType": OCI_EMPTY,
                "digest": config.to_string(),
                "size": OCI_EMPTY_BLOB.len(),
            },
            "layers": [{
                "mediaType": artifact.blob_media_type,
                "digest": layer.to_string(),
                "size": artifact.blob.len(),
            }],
            "subject": {
                "mediaType": subject_type,
                "digest": subject.to_string(),
                "size": subject_size,
            },
        });
        if !artifact.annotations.is_empty() {
            manifest["annotations"] = json!(artifact.annotations);
        }
        let bytes = serde_json::to_vec(&manifest).expect("a JSON value serialises");
        let digest = Digest::sha256_of(&bytes);

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCI_MANIFEST));
        let req = Request {
            call: Call::PutManifest,
            method: Method::PUT,
            url: Self::manifest_url(&base, image, &digest.to_string()),
            headers,
            body: Some(&bytes),
            repository: Some(image.path()),
        };
        let reply = self.api(&host, req.clone()).await?;
        if !reply.success() {
            return Err(self.fail(&host, &req, &reply));
        }
        if let Some(d) = announced_digest(&reply, "PUT", &host.registry)? {
            if d != digest {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "PUT {}: the registry reports digest {d} for the artifact {digest}; \
                         it did not store the exact bytes",
                        reply.url
                    ),
                ));
            }
        }
        // The spec: a registry that indexed the subject says so; one that
        // did not leaves the listing to the client.
        let api = reply
            .header("oci-subject")
            .is_some_and(|v| !v.trim().is_empty());
        lock(&host.referrers_api).insert(image.path().to_string(), api);
        if !api {
            let mut entry = json!({
                "mediaType": OCI_MANIFEST,
                "digest": digest.to_string(),
                "size": bytes.len(),
                "artifactType": artifact.artifact_type,
            });
            if !artifact.annotations.is_empty() {
                entry["annotations"] = json!(artifact.annotations);
            }
            self.add_to_tag_index(image, subject, &digest, entry)
                .await?;
        }
        Ok(digest)
    }

    /// The referrers of `subject` in `image`'s repository, of
    /// `artifact_type` when given, in the registry's order (the tag
    /// schema's: oldest first).
    ///
    /// Asks the referrers API unless this repository is known to lack it:
    /// a `200` index is the answer (following `Link` pages on the same
    /// origin); a `404` means the registry has no API, and the tag schema
    /// index is read instead (a `404` there: no referrers). A 5xx is
    /// retried like any request and, if it persists, is an error, never a
    /// reason to switch. What the registry answered is remembered per
    /// repository, so later calls make one request. (A `404` carrying a
    /// `NAME_UNKNOWN`/`MANIFEST_UNKNOWN` error is a registry with the API
    /// that does not know the subject: it falls back for this call, but is
    /// not remembered.)
    pub async fn referrers(
        &self,
        image: &ImageRef,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, Error> {
        let host = self.host(image.registry());
        let known = lock(&host.referrers_api).get(image.path()).copied();
        if known != Some(false) {
            if let Some(found) = self
                .referrers_by_api(&host, image, subject, artifact_type)
                .await?
            {
                return Ok(found);
            }
        }
        self.referrers_by_tag(image, subject, artifact_type).await
    }

    async fn blob_exists(
        &self,
        host: &Host,
        base: &Url,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<bool, Error> {
        let req = Request {
            call: Call::HeadBlob,
            method: Method::HEAD,
            url: blob_url(base, image, digest),
            headers: HeaderMap::new(),
            body: None,
            repository: Some(image.path()),
        };
        let reply = self.api(host, req.clone()).await?;
        match reply.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.fail(host, &req, &reply)),
        }
    }

    async fn upload(
        &self,
        host: &Host,
        base: &Url,
        image: &ImageRef,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let start = Request {
            call: Call::StartUpload,
            method: Method::POST,
            url: base
                .join(&format!("v2/{}/blobs/uploads/", image.path()))
                .expect("validated path"),
            headers: HeaderMap::new(),
            // An explicit empty body: `Content-Length: 0`, which some
            // proxies require on a POST.
            body: Some(&[]),
            repository: Some(image.path()),
        };
        let reply = self.api(host, start.clone()).await?;
        if !reply.success() {
            return Err(self.fail(host, &start, &reply));
        }
        let garbage = |problem: &str| {
            protocol_error(
                "POST",
                reply.url.as_str(),
                reply.status,
                &host.registry,
                problem,
            )
        };
        let location = reply
            .header("location")
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| garbage("the upload answer has no Location"))?;
        let mut url = reply
            .url
            .join(location)
            .map_err(|_| garbage("the upload Location is not a URL"))?;
        if url.origin() != base.origin() {
            return Err(garbage(&format!(
                "the upload Location points to another origin ({}); canary does not send \
                 its credentials there",
                url.origin().ascii_serialization()
            )));
        }
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let put = Request {
            call: Call::PutBlob,
            method: Method::PUT,
            url,
            headers,
            body: Some(bytes),
            repository: Some(image.path()),
        };
        let reply = self.api(host, put.clone()).await?;
        if !reply.success() {
            let error = self.fail(host, &put, &reply);
            // A PUT retried after its first attempt landed finds the
            // session closed; the blob is there all the same.
            if error.kind() == ErrorKind::NotFound
                && self.blob_exists(host, base, image, digest).await?
            {
                return Ok(());
            }
            return Err(error);
        }
        if let Some(d) = announced_digest(&reply, "PUT", &host.registry)? {
            if &d != digest {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "PUT {}: the registry reports digest {d} for the blob {digest}",
                        reply.url
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The media type and size of manifest `subject`, from a `HEAD`; from a
    /// `GET` when the `HEAD` does not say (no manifest `Content-Type`, no
    /// `Content-Length`).
    async fn subject_descriptor(
        &self,
        host: &Host,
        base: &Url,
        image: &ImageRef,
        subject: &Digest,
    ) -> Result<(String, u64), Error> {
        let reference = Reference::Digest(subject.clone());
        let req = Self::manifest_read(Call::HeadManifest, Method::HEAD, base, image, &reference);
        let reply = self.api(host, req.clone()).await?;
        if !reply.success() {
            return Err(self
                .fail(host, &req, &reply)
                .context(format!("the subject {image}@{subject}")));
        }
        if let Some(d) = announced_digest(&reply, "HEAD", &host.registry)? {
            if d.algorithm() == subject.algorithm() && &d != subject {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "HEAD {}: Docker-Content-Digest says {d}, not the requested {subject}",
                        reply.url
                    ),
                ));
            }
        }
        let media_type = reply
            .header("content-type")
            .and_then(|ct| ct.split(';').next())
            .map(|ct| ct.trim().to_ascii_lowercase())
            .filter(|ct| ct.starts_with("application/vnd."));
        let size = reply
            .header("content-length")
            .and_then(|n| n.trim().parse::<u64>().ok())
            .filter(|&n| n > 0);
        if let (Some(media_type), Some(size)) = (media_type, size) {
            return Ok((media_type, size));
        }
        let manifest = self.get_inner(image, &reference).await?;
        Ok((
            manifest.media_type().to_string(),
            manifest.bytes().len() as u64,
        ))
    }

    /// Adds `entry` (the descriptor of artifact `digest`) to the referrers
    /// tag schema index of `subject`: read, add unless listed, write back.
    async fn add_to_tag_index(
        &self,
        image: &ImageRef,
        subject: &Digest,
        digest: &Digest,
        entry: Value,
    ) -> Result<(), Error> {
        let tag = referrers_tag(subject);
        let mut index = match self.get_inner(image, &Reference::Tag(tag.clone())).await {
            Ok(current) => tag_index(image, &tag, &current)?,
            Err(e) if e.kind() == ErrorKind::NotFound => empty_index(),
            Err(e) => return Err(e),
        };
        let manifests = index
            .as_object_mut()
            .expect("checked: an object")
            .entry("manifests")
            .or_insert_with(|| json!([]));
        let manifests = manifests.as_array_mut().expect("checked: a list");
        let listed = manifests
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(digest.to_string().as_str()));
        if listed {
            return Ok(());
        }
        manifests.push(entry);
        let bytes = serde_json::to_vec(&index).expect("a JSON value serialises");
        self.put_inner(image, &tag, &Manifest::new(OCI_INDEX, bytes))
            .await?;
        Ok(())
    }

    async fn referrers_by_api(
        &self,
        host: &Host,
        image: &ImageRef,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Referrer>>, Error> {
        let base = self.base(host).await?;
        let mut url = base
            .join(&format!("v2/{}/referrers/{subject}", image.path()))
            .expect("validated path");
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let mut found = Vec::new();
        let mut seen = BTreeSet::new();
        for page in 0..MAX_REFERRER_PAGES {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static(OCI_INDEX));
            let req = Request {
                call: Call::GetReferrers,
                method: Method::GET,
                url: url.clone(),
                headers,
                body: None,
                repository: Some(image.path()),
            };
            let reply = self.api(host, req.clone()).await?;
            if page == 0 && reply.status == 404 {
                if !names_missing_content(&reply.body) {
                    lock(&host.referrers_api).insert(image.path().to_string(), false);
                }
                return Ok(None);
            }
            if !reply.success() {
                return Err(self.fail(host, &req, &reply));
            }
            let garbage = |problem: &str| {
                protocol_error(
                    "GET",
                    reply.url.as_str(),
                    reply.status,
                    &host.registry,
                    problem,
                )
            };
            found.extend(
                listing(&reply.body, artifact_type)
                    .map_err(|p| garbage(&format!("not a referrers index: {p}")))?,
            );
            lock(&host.referrers_api).insert(image.path().to_string(), true);
            seen.insert(url.to_string());
            let Some(next) = next_link(&reply) else {
                return Ok(Some(found));
            };
            let next = reply
                .url
                .join(&next)
                .map_err(|_| garbage("the Link header is not a URL"))?;
            if next.origin() != base.origin() {
                return Err(garbage(&format!(
                    "the Link header points to another host ({next}); not followed"
                )));
            }
            if seen.contains(next.as_str()) {
                return Ok(Some(found));
            }
            url = next;
        }
        Err(protocol_error(
            "GET",
            url.as_str(),
            200,
            &host.registry,
            &format!("more than {MAX_REFERRER_PAGES} pages of referrers"),
        ))
    }

    async fn referrers_by_tag(
        &self,
        image: &ImageRef,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, Error> {
        let tag = referrers_tag(subject);
        let index = match self.get_inner(image, &Reference::Tag(tag.clone())).await {
            Ok(index) => index,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        tag_index(image, &tag, &index)?;
        listing(index.bytes(), artifact_type).map_err(|p| {
            Error::new(
                ErrorKind::Protocol,
                format!("{image}:{tag}: not a referrers index: {p}"),
            )
        })
    }
}

/// The referrers tag schema index held by `tag`, as JSON to add to: an OCI
/// index object whose `manifests` (if present) is a list. Anything else
/// under that tag is not canary's to overwrite.
fn tag_index(image: &ImageRef, tag: &Tag, current: &Manifest) -> Result<Value, Error> {
    let refuse = |problem: &str| {
        Error::new(
            ErrorKind::Invalid,
            format!("{image}:{tag} {problem}, not a referrers tag schema index"),
        )
        .with_hint(format!(
            "the tag `{tag}` is reserved for the referrers of {}; move what it holds to \
             another tag",
            tag.as_str().replacen('-', ":", 1)
        ))
    };
    if !is_index(current.media_type()) || current.media_type() != OCI_INDEX {
        return Err(refuse(&format!("holds a {}", current.media_type())));
    }
    let value: Value = serde_json::from_slice(current.bytes())
        .map_err(|_| refuse("holds a body that is not JSON"))?;
    match value.get("manifests") {
        None | Some(Value::Array(_)) if value.is_object() => Ok(value),
        _ => Err(refuse("holds an index whose `manifests` is not a list")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn tag_schema_names() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(referrers_tag(&d).as_str(), format!("sha256-{}", d.hex()));
        let long = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap();
        assert_eq!(
            referrers_tag(&long).as_str(),
            format!("sha512-{}", "a".repeat(64))
        );
    }

    #[test]
    fn listings_filter_and_skip_bad_entries() {
        let d1 = Digest::sha256_of(b"1");
        let d2 = Digest::sha256_of(b"2");
        let body = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                { "mediaType": OCI_MANIFEST, "digest": d1.to_string(), "size": 10,
                  "artifactType": "a/x", "annotations": { "k": "v", "n": 1 } },
                { "mediaType": OCI_MANIFEST, "digest": "nope", "size": 1 },
                { "mediaType": OCI_MANIFEST, "digest": d2.to_string(), "size": 11,
                  "artifactType": "a/y" },
            ],
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        let all = listing(&bytes, None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].digest, d1);
        assert_eq!(all[0].size, 10);
        assert_eq!(
            all[0].annotations,
            BTreeMap::from([("k".to_string(), "v".to_string())])
        );
        let only_y = listing(&bytes, Some("a/y")).unwrap();
        assert_eq!(only_y.len(), 1);
        assert_eq!(only_y[0].digest, d2);
        assert!(listing(b"{}", None).unwrap().is_empty());
        assert!(listing(b"<html>", None).is_err());
        assert!(listing(br#"{"manifests":{}}"#, None).is_err());
    }

    #[test]
    fn missing_content_is_not_a_missing_api() {
        assert!(names_missing_content(
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"x"}]}"#
        ));
        assert!(!names_missing_content(b"404 page not found\n"));
        assert!(!names_missing_content(
            br#"{"errors":[{"code":"NOT_FOUND","message":"x"}]}"#
        ));
    }
}
