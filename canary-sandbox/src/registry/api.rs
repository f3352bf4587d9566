//! The distribution API as the sandbox registry serves it: how a path is
//! routed, what a valid name, tag and digest are, and the shape of its
//! answers. Public so that a layer in front of the registry (the test kit's
//! auth gate) routes and answers exactly as the registry does.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use axum::Router;
use serde_json::{json, Value};

use super::{blobs, sha256_digest, Store};

/// `Docker-Content-Digest`: the digest of the manifest a response is about.
pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// `Docker-Distribution-API-Version`, sent as `registry/2.0`.
pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
/// `OCI-Subject`: on a manifest PUT's answer, the `subject` digest the
/// registry indexed for the referrers API.
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
/// `OCI-Filters-Applied`: the referrers filters the registry applied.
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// Largest manifest a PUT accepts (the distribution registry's limit).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// A path the registry serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/v2/` (or `/v2`): the API version check.
    Ping,
    /// `/v2/<name>/tags/list`.
    Tags {
        /// The repository.
        name: &'a str,
    },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// The repository.
        name: &'a str,
        /// A tag or a digest, not yet validated (see [`is_tag`],
        /// [`is_digest`]).
        reference: &'a str,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// The repository.
        name: &'a str,
        /// The digest, not yet validated.
        digest: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/` (start an upload) and
    /// `/v2/<name>/blobs/uploads/<session>` (continue or finish one).
    BlobUpload {
        /// The repository.
        name: &'a str,
        /// The upload session; `None` for the start.
        session: Option<&'a str>,
    },
    /// `/v2/<name>/referrers/<digest>`: the manifests whose `subject` is
    /// that digest.
    Referrers {
        /// The repository.
        name: &'a str,
        /// The subject digest, not yet validated.
        digest: &'a str,
    },
}

/// Why a path is not an [`Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unrouted {
    /// Not a path of the distribution API (`404 NOT_FOUND`).
    NotFound,
    /// An endpoint whose repository name is invalid (`400 NAME_INVALID`).
    NameInvalid,
}

impl Unrouted {
    /// The answer the registry gives.
    pub fn response(self) -> Response<Body> {
        match self {
            Self::NotFound => {
                error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
            }
            Self::NameInvalid => error_response(
                StatusCode::BAD_REQUEST,
                "NAME_INVALID",
                "invalid repository name",
            ),
        }
    }
}

impl<'a> Endpoint<'a> {
    /// Routes `path` (without its query).
    pub fn parse(path: &'a str) -> Result<Self, Unrouted> {
        if path == "/v2" || path == "/v2/" {
            return Ok(Self::Ping);
        }
        let rest = path.strip_prefix("/v2/").ok_or(Unrouted::NotFound)?;
        let endpoint = if let Some(name) = rest.strip_suffix("/tags/list") {
            Self::Tags { name }
        } else if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
            Self::Manifest { name, reference }
        } else if let Some((name, session)) = rest.rsplit_once("/blobs/uploads/") {
            Self::BlobUpload {
                name,
                session: (!session.is_empty()).then_some(session),
            }
        } else if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
            Self::Blob { name, digest }
        } else if let Some((name, digest)) = rest.rsplit_once("/referrers/") {
            Self::Referrers { name, digest }
        } else {
            return Err(Unrouted::NotFound);
        };
        match endpoint.repository() {
            Some(name) if !valid_name(name) => Err(Unrouted::NameInvalid),
            _ => Ok(endpoint),
        }
    }

    /// The repository the endpoint is about; `None` for [`Endpoint::Ping`].
    pub fn repository(&self) -> Option<&'a str> {
        match *self {
            Self::Ping => None,
            Self::Tags { name }
            | Self::Manifest { name, .. }
            | Self::Blob { name, .. }
            | Self::BlobUpload { name, .. }
            | Self::Referrers { name, .. } => Some(name),
        }
    }
}

/// The distribution API over `store`.
pub(super) fn router(store: Arc<Store>) -> Router {
    Router::new().fallback(handle).with_state(store)
}

async fn handle(State(store): State<Arc<Store>>, request: Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let endpoint = match Endpoint::parse(parts.uri.path()) {
        Ok(endpoint) => endpoint,
        Err(unrouted) => return unrouted.response(),
    };
    let response = match endpoint {
        Endpoint::Ping => json_response(StatusCode::OK, &json!({})),
        Endpoint::Tags { name } => {
            if parts.method == Method::GET {
                let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                    .map(|q| q.0)
                    .unwrap_or_default();
                tags_list(&store, name, &query)
            } else {
                unsupported()
            }
        }
        Endpoint::Manifest { name, reference } => {
            if !is_tag(reference) && !is_digest(reference) {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "TAG_INVALID",
                    "manifest reference is neither a valid tag nor a digest",
                );
            }
            match parts.method {
                Method::GET | Method::HEAD => get_manifest(&store, name, reference),
                Method::PUT => {
                    let slow = store
                        .options
                        .slow_repository
                        .as_deref()
                        .is_none_or(|r| r == name);
                    if is_tag(reference) && slow && !store.options.tag_put_delay.is_zero() {
                        // A client that goes away meanwhile cancels the
                        // write, as with a real registry behind a proxy.
                        tokio::time::sleep(store.options.tag_put_delay).await;
                    }
                    let Ok(bytes) = axum::body::to_bytes(body, MAX_MANIFEST).await else {
                        return error_response(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "MANIFEST_INVALID",
                            "manifest too large",
                        );
                    };
                    put_manifest(&store, &parts.headers, name, reference, &bytes)
                }
                _ => unsupported(),
            }
        }
        Endpoint::Blob { name, digest } => match parts.method {
            Method::GET | Method::HEAD => blobs::get_blob(&store, name, digest),
            _ => unsupported(),
        },
        Endpoint::BlobUpload { name, session } => {
            let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map(|q| q.0)
                .unwrap_or_default();
            let Ok(bytes) = axum::body::to_bytes(body, blobs::MAX_BLOB).await else {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SIZE_INVALID",
                    "blob too large for the sandbox registry",
                );
            };
            blobs::upload(&store, &parts.method, name, session, &query, &bytes)
        }
        Endpoint::Referrers { .. } if !store.options.referrers_api => {
            // What a registry without the API answers: its router has no
            // such route (CNCF distribution: `404 page not found`).
            Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Body::from("404 page not found\n"))
                .expect("a valid response")
        }
        Endpoint::Referrers { name, digest } => {
            if parts.method == Method::GET {
                let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                    .map(|q| q.0)
                    .unwrap_or_default();
                blobs::referrers(&store, name, digest, &query)
            } else {
                unsupported()
            }
        }
    };
    with_api_version(response)
}

fn name_unknown() -> Response<Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        "repository name not known to registry",
    )
}

fn get_manifest(store: &Store, name: &str, reference: &str) -> Response<Body> {
    let repos = store.lock();
    let Some(repo) = repos.get(name) else {
        return name_unknown();
    };
    let digest = repo.tags.get(reference).map_or(reference, String::as_str);
    let Some(m) = repo.manifests.get(digest) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        );
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &m.media_type)
        .header(header::CONTENT_LENGTH, m.bytes.len())
        .header(DOCKER_CONTENT_DIGEST, &m.digest)
        .header(header::ETAG, format!("\"{}\"", m.digest))
        .body(Body::from(m.bytes.clone()))
        .expect("a valid response")
}

fn put_manifest(
    store: &Store,
    headers: &HeaderMap,
    name: &str,
    reference: &str,
    bytes: &Bytes,
) -> Response<Body> {
    let invalid =
        |message: &str| error_response(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message);
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(bytes) else {
        return invalid("manifest is not a JSON object");
    };
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .or_else(|| object.get("mediaType").and_then(Value::as_str));
    let Some(media_type) = media_type else {
        return invalid("no Content-Type and no mediaType in the manifest");
    };
    let by_digest = is_digest(reference);
    if by_digest && reference != sha256_digest(bytes) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        );
    }
    let subject = object
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(Value::as_str)
        .filter(|d| is_digest(d))
        .map(str::to_string);
    let tag = (!by_digest).then_some(reference);
    let digest = store.insert(name, media_type, bytes.to_vec(), tag);
    let mut response = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header(DOCKER_CONTENT_DIGEST, &digest)
        .header(header::CONTENT_LENGTH, 0);
    if let Some(subject) = subject.filter(|_| store.options.referrers_api) {
        response = response.header(OCI_SUBJECT, subject);
    }
    response.body(Body::empty()).expect("a valid response")
}

fn tags_list(store: &Store, name: &str, query: &[(String, String)]) -> Response<Body> {
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let n = match param("n").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
            )
        }
    };
    let limit = match (n, store.options.page_size) {
        (Some(n), Some(cap)) => Some(n.min(cap)),
        (n, cap) => n.or(cap),
    };
    let last = param("last");
    let repos = store.lock();
    let Some(repo) = repos.get(name) else {
        return name_unknown();
    };
    let mut remaining = repo
        .tags
        .keys()
        .filter(|t| last.is_none_or(|l| t.as_str() > l))
        .peekable();
    let mut page = Vec::new();
    while limit.is_none_or(|l| page.len() < l) {
        match remaining.next() {
            Some(t) => page.push(t.clone()),
            None => break,
        }
    }
    let more = remaining.peek().is_some() && !page.is_empty();
    let mut response = json_response(StatusCode::OK, &json!({ "name": name, "tags": page }));
    if more {
        let n = limit.unwrap_or(page.len());
        let link = format!(
            "</v2/{name}/tags/list?n={n}&last={}>; rel=\"next\"",
            page.last().expect("page is not empty")
        );
        response.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&link).expect("tags and names are header-safe"),
        );
    }
    response
}

fn unsupported() -> Response<Body> {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is unsupported",
    )
}

/// A JSON answer with `Content-Type` and `Content-Length`.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("a JSON value serialises");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("a valid response")
}

/// A distribution error: `{"errors":[{"code":…,"message":…,"detail":null}]}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({ "errors": [{ "code": code, "message": message, "detail": null }] }),
    )
}

/// Adds `Docker-Distribution-API-Version: registry/2.0`, as the registry
/// does on every answer of a routed endpoint.
pub fn with_api_version(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

/// A repository name of the distribution spec: lowercase alphanumeric
/// components separated by `/`, with `.`, `_`, `-` inside.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|component| {
            let b = component.as_bytes();
            let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && alnum(b[0])
                && alnum(b[b.len() - 1])
                && b.iter()
                    .all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
        })
}

/// A tag of the distribution spec: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(reference: &str) -> bool {
    let b = reference.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A `sha256:` or `sha512:` digest with lowercase hex of the right length.
pub fn is_digest(reference: &str) -> bool {
    let Some((algorithm, hex)) = reference.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
