//! Blobs (monolithic and chunked uploads, reads) and the referrers API:
//! what an OCI artifact (a config, a payload, a manifest with a `subject`)
//! needs from the registry.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::api::{
    error_response, is_digest, json_response, DOCKER_CONTENT_DIGEST, OCI_FILTERS_APPLIED,
};
use super::{sha256_digest, Store, OCI_INDEX, OCI_MANIFEST};

/// Largest blob an upload accepts: the sandbox keeps blobs in memory, and
/// what it stores is artifacts' payloads, not image layers.
pub(super) const MAX_BLOB: usize = 64 * 1024 * 1024;

fn blob_unknown() -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
        "blob unknown to registry",
    )
}

fn upload_unknown() -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
        "blob upload unknown to registry",
    )
}

fn unsupported() -> Response<Body> {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is unsupported",
    )
}

/// `GET`/`HEAD /v2/<name>/blobs/<digest>`. A digest that is not one is
/// simply unknown, as it is for a registry that routes it.
pub(super) fn get_blob(store: &Store, name: &str, digest: &str) -> Response<Body> {
    let repos = store.lock();
    let Some(bytes) = repos.get(name).and_then(|r| r.blobs.get(digest)) else {
        return blob_unknown();
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, bytes.len())
        .header(DOCKER_CONTENT_DIGEST, digest)
        .header(header::ETAG, format!("\"{digest}\""))
        .body(Body::from(bytes.clone()))
        .expect("a valid response")
}

/// The answer to a finished upload: `201`, where the blob is, its digest.
fn created(name: &str, digest: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/{digest}"))
        .header(DOCKER_CONTENT_DIGEST, digest)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("a valid response")
}

/// `202` for an open session holding `len` bytes.
fn accepted(name: &str, session: &str, len: usize) -> Response<Body> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(
            header::LOCATION,
            format!("/v2/{name}/blobs/uploads/{session}"),
        )
        .header(header::RANGE, format!("0-{}", len.saturating_sub(1)))
        .header("docker-upload-uuid", session)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("a valid response")
}

/// Stores `bytes` as blob `digest` of `name` if they hash to it.
fn finish(store: &Store, name: &str, digest: Option<&str>, bytes: Vec<u8>) -> Response<Body> {
    let Some(digest) = digest.filter(|d| is_digest(d)) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the upload names no valid digest",
        );
    };
    if digest != sha256_digest(&bytes) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        );
    }
    let mut repos = store.lock();
    let repo = repos.entry(name.to_string()).or_default();
    repo.blobs.insert(digest.to_string(), bytes);
    created(name, digest)
}

/// `POST /v2/<name>/blobs/uploads/` starts a session (or, with `?digest=`,
/// stores the body at once); `PATCH` appends to a session; `PUT ?digest=`
/// appends and finishes it; `GET` reports its progress; `DELETE` drops it.
/// A cross-repository `?mount=` is not supported: it gets a fresh session,
/// which the spec allows.
pub(super) fn upload(
    store: &Store,
    method: &Method,
    name: &str,
    session: Option<&str>,
    query: &[(String, String)],
    body: &Bytes,
) -> Response<Body> {
    let digest = query
        .iter()
        .find(|(k, _)| k == "digest")
        .map(|(_, v)| v.as_str());
    match (method, session) {
        (&Method::POST, None) => {
            if digest.is_some() {
                return finish(store, name, digest, body.to_vec());
            }
            let id = format!(
                "session-{}",
                store.next_upload.fetch_add(1, Ordering::Relaxed)
            );
            let mut repos = store.lock();
            let repo = repos.entry(name.to_string()).or_default();
            repo.uploads.insert(id.clone(), Vec::new());
            accepted(name, &id, 0)
        }
        (&Method::PATCH, Some(id)) => {
            let mut repos = store.lock();
            let Some(bytes) = repos.get_mut(name).and_then(|r| r.uploads.get_mut(id)) else {
                return upload_unknown();
            };
            if bytes.len() + body.len() > MAX_BLOB {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SIZE_INVALID",
                    "blob too large for the sandbox registry",
                );
            }
            bytes.extend_from_slice(body);
            accepted(name, id, bytes.len())
        }
        (&Method::PUT, Some(id)) => {
            let taken = store
                .lock()
                .get_mut(name)
                .and_then(|r| r.uploads.remove(id));
            let Some(mut bytes) = taken else {
                return upload_unknown();
            };
            bytes.extend_from_slice(body);
            finish(store, name, digest, bytes)
        }
        (&Method::GET, Some(id)) => {
            let repos = store.lock();
            match repos.get(name).and_then(|r| r.uploads.get(id)) {
                Some(bytes) => {
                    let mut response = accepted(name, id, bytes.len());
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    response
                }
                None => upload_unknown(),
            }
        }
        (&Method::DELETE, Some(id)) => {
            let removed = store
                .lock()
                .get_mut(name)
                .and_then(|r| r.uploads.remove(id));
            match removed {
                Some(_) => Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Body::empty())
                    .expect("a valid response"),
                None => upload_unknown(),
            }
        }
        _ => unsupported(),
    }
}

/// The descriptor of a stored manifest whose `subject` is `subject`, as the
/// referrers API lists it: `artifactType` (else, for an image manifest,
/// its config's media type) and `annotations` copied.
fn referrer(manifest: &super::StoredManifest, subject: &str) -> Option<Value> {
    let body: Value = serde_json::from_slice(&manifest.bytes).ok()?;
    if body.get("subject")?.get("digest")?.as_str()? != subject {
        return None;
    }
    let artifact_type = body
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| {
            (manifest.media_type == OCI_MANIFEST)
                .then(|| body.get("config")?.get("mediaType")?.as_str())
                .flatten()
        });
    let mut descriptor = json!({
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": manifest.bytes.len(),
    });
    if let Some(t) = artifact_type {
        descriptor["artifactType"] = json!(t);
    }
    if let Some(a) = body.get("annotations").filter(|a| a.is_object()) {
        descriptor["annotations"] = a.clone();
    }
    Some(descriptor)
}

/// `GET /v2/<name>/referrers/<digest>`: `200` with an OCI image index, also
/// when nothing (or no such repository) refers to the digest, as the spec
/// asks.
pub(super) fn referrers(
    store: &Store,
    name: &str,
    digest: &str,
    query: &[(String, String)],
) -> Response<Body> {
    if !is_digest(digest) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the subject is not a digest",
        );
    }
    let wanted = query
        .iter()
        .find(|(k, _)| k == "artifactType")
        .map(|(_, v)| v.as_str());
    let found: BTreeMap<String, Value> = store
        .lock()
        .get(name)
        .map(|repo| {
            repo.manifests
                .values()
                .filter_map(|m| referrer(m, digest).map(|d| (m.digest.clone(), d)))
                .collect()
        })
        .unwrap_or_default();
    let manifests: Vec<Value> = found
        .into_values()
        .filter(|d| wanted.is_none_or(|t| d.get("artifactType").and_then(Value::as_str) == Some(t)))
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = json_response(StatusCode::OK, &index);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(OCI_INDEX),
    );
    if wanted.is_some() {
        response.headers_mut().insert(
            OCI_FILTERS_APPLIED,
            header::HeaderValue::from_static("artifactType"),
        );
    }
    response
}
