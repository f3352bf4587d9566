//! Turning registry answers into [`canary_core::Error`]s.
//!
//! Every HTTP status a registry may answer is mapped in one function,
//! [`parse_error`] (OpenDAL's `parse_error`): the distribution-spec error
//! JSON first (`{"errors":[{"code","message","detail"}]}`), the status when
//! the body says nothing, and a protocol error when the body is an HTML page
//! or garbage. Hints for known cases (ECR immutable tags, GHCR's
//! `packages: write`, Docker Hub rate limits) are added here too.
//!
//! Text that comes from the server is scrubbed of every secret canary holds
//! for that registry before it is put in an error, in case a server or a
//! proxy echoes a header back.

use canary_core::{Error, ErrorKind};
use serde::Deserialize;

/// What canary was doing when the request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// `GET /v2/`.
    Ping,
    /// The token request of a Bearer challenge.
    Token,
    /// `GET /v2/<name>/manifests/<ref>`.
    GetManifest,
    /// `HEAD /v2/<name>/manifests/<ref>`.
    HeadManifest,
    /// `PUT /v2/<name>/manifests/<tag>`.
    PutManifest,
    /// `GET /v2/<name>/tags/list`.
    ListTags,
    /// `HEAD /v2/<name>/blobs/<digest>`.
    HeadBlob,
    /// `GET /v2/<name>/blobs/<digest>`, its body read up to `limit` bytes.
    GetBlob {
        /// The largest body accepted.
        limit: usize,
    },
    /// `POST /v2/<name>/blobs/uploads/`.
    StartUpload,
    /// `PUT <upload location>?digest=`.
    PutBlob,
    /// `GET /v2/<name>/referrers/<digest>`.
    GetReferrers,
}

impl Call {
    fn writes(self) -> bool {
        matches!(self, Self::PutManifest | Self::StartUpload | Self::PutBlob)
    }
}

/// A failed answer, with everything [`parse_error`] needs.
pub(crate) struct Failure<'a> {
    pub(crate) call: Call,
    pub(crate) method: &'a str,
    /// The request URL (never carries credentials).
    pub(crate) url: &'a str,
    /// The registry as written in the image name (`ghcr.io`).
    pub(crate) registry: &'a str,
    /// The repository path, if the call had one.
    pub(crate) repository: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) body: &'a [u8],
    /// Strings to scrub from server text.
    pub(crate) secrets: &'a [String],
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Replaces every secret in `text` with `***`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

fn status_kind(status: u16) -> ErrorKind {
    match status {
        400 | 405 | 409 | 412 | 413 | 414 | 415 | 416 | 422 => ErrorKind::Invalid,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Denied,
        404 | 410 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited,
        408 | 500..=599 => ErrorKind::Transient,
        300..=399 => ErrorKind::Protocol,
        _ => ErrorKind::Other,
    }
}

fn code_kind(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN" => {
            ErrorKind::NotFound
        }
        "UNAUTHORIZED" => ErrorKind::Unauthorized,
        "DENIED" => ErrorKind::Denied,
        "TOOMANYREQUESTS" => ErrorKind::RateLimited,
        "UNAVAILABLE" => ErrorKind::Transient,
        "TAG_INVALID"
        | "MANIFEST_INVALID"
        | "MANIFEST_UNVERIFIED"
        | "MANIFEST_BLOB_UNKNOWN"
        | "NAME_INVALID"
        | "DIGEST_INVALID"
        | "SIZE_INVALID"
        | "BLOB_UPLOAD_INVALID"
        | "RANGE_INVALID"
        | "PAGINATION_NUMBER_INVALID"
        | "UNSUPPORTED" => ErrorKind::Invalid,
        _ => return None,
    })
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// A body that is a web page rather than a registry answer.
fn looks_like_html(body: &[u8]) -> bool {
    let start: String = String::from_utf8_lossy(&body[..body.len().min(512)])
        .trim_start()
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    start.starts_with("<!doctype html") || start.starts_with("<html") || start.starts_with("<?xml")
}

/// The one mapping from a failed registry answer to an [`Error`].
pub(crate) fn parse_error(f: &Failure<'_>) -> Error {
    let status_text = format!("{} {}", f.status, reason(f.status))
        .trim()
        .to_string();
    let head = format!("{} {}: {status_text}", f.method, f.url);

    let parsed: Option<ErrorBody> = serde_json::from_slice(f.body)
        .ok()
        .filter(|b: &ErrorBody| !b.errors.is_empty());
    let (kind, message, codes) = if let Some(body) = parsed {
        let first = &body.errors[0];
        let kind = code_kind(&first.code).unwrap_or_else(|| status_kind(f.status));
        let detail = body
            .errors
            .iter()
            .map(|e| {
                // One line: a registry's text must not start a workflow
                // command in a CI log.
                let msg: String = scrub(&e.message, f.secrets)
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                let code: String = e.code.chars().filter(|c| !c.is_control()).collect();
                match (code.is_empty(), msg.is_empty()) {
                    (false, false) => format!("{code}: {msg}"),
                    (false, true) => code,
                    _ => msg,
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let codes = body
            .errors
            .iter()
            .map(|e| (e.code.clone(), e.message.clone()))
            .collect::<Vec<_>>();
        // ECR answers an expired token with 403 DENIED; it is an
        // authentication problem, not a permission one.
        let kind = if f.status == 403 && is_expired_token_text(&detail) {
            ErrorKind::Unauthorized
        } else {
            kind
        };
        (kind, format!("{head}: {detail}"), codes)
    } else if f.body.iter().all(u8::is_ascii_whitespace) {
        (status_kind(f.status), head, Vec::new())
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(f.body).is_ok() {
        (
            status_kind(f.status),
            format!("{head}: {}", excerpt(f.body, f.secrets)),
            Vec::new(),
        )
    } else {
        // HTML or garbage. A retryable status keeps its kind (a load
        // balancer's 503 page is still a 503); anything else means we are
        // not talking to a registry API.
        let what = if looks_like_html(f.body) {
            "an HTML page"
        } else {
            "a body that is not JSON"
        };
        let kind = match status_kind(f.status) {
            k @ (ErrorKind::Transient | ErrorKind::RateLimited) => k,
            ErrorKind::Unauthorized if f.call == Call::Token => ErrorKind::Unauthorized,
            _ => ErrorKind::Protocol,
        };
        let error = Error::new(
            kind,
            format!("{head}: the registry answered with {what}, not a registry response"),
        );
        return if kind == ErrorKind::Protocol {
            error.with_hint(format!(
                "is `{}` an OCI registry? check the image name's host, and any proxy or \
                 captive portal between canary and the registry",
                f.registry
            ))
        } else {
            add_hint(error, f, &[])
        };
    };
    add_hint(Error::new(kind, message), f, &codes)
}

/// A short excerpt of a JSON body that is not the error format.
fn excerpt(body: &[u8], secrets: &[String]) -> String {
    // Scrub the whole text before cutting, so no prefix of a secret that
    // straddles the cut survives; blank control characters (one line).
    let text = scrub(String::from_utf8_lossy(body).trim(), secrets);
    text.chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub(crate) fn is_expired_token_text(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("expired") && (t.contains("token") || t.contains("authorization"))
}

fn add_hint(error: Error, f: &Failure<'_>, codes: &[(String, String)]) -> Error {
    let has = |code: &str| codes.iter().any(|(c, _)| c == code);
    let text = codes
        .iter()
        .map(|(c, m)| format!("{c} {m}"))
        .collect::<Vec<_>>()
        .join(" ");
    let ghcr = f.registry == "ghcr.io";
    let docker_hub = crate::endpoint::is_docker_hub(f.registry);
    let repo = f.repository.unwrap_or("the repository");
    let hint = match error.kind() {
        ErrorKind::Invalid
            if text.contains("ImageTagAlreadyExistsException")
                || text.to_ascii_lowercase().contains("immutable")
                || (has("TAG_INVALID") && f.call.writes()) =>
        {
            Some(format!(
                "the tags of {repo} are immutable (ECR tag immutability): the promoted tag \
                 cannot be moved. Make the repository's tags mutable (`aws ecr \
                 put-image-tag-mutability --image-tag-mutability MUTABLE`, or \
                 IMMUTABLE_WITH_EXCLUSION for the promoted tag), or use a promoted tag that \
                 is written once"
            ))
        }
        ErrorKind::Invalid if has("MANIFEST_BLOB_UNKNOWN") || has("BLOB_UNKNOWN") => Some(
            "the manifest references blobs this repository does not have; a retag works \
             inside one repository, and the staging image must have been pushed completely"
                .to_string(),
        ),
        ErrorKind::Denied if ghcr && f.call.writes() => Some(
            "GitHub Container Registry refused the write: the token lacks `packages: write`. \
             In GitHub Actions add `permissions: packages: write` to the job, and in the \
             package's settings give this repository write access (Manage Actions access)"
                .to_string(),
        ),
        ErrorKind::Denied if ghcr => Some(
            "GitHub Container Registry refused access: the token cannot read this package. \
             Grant the workflow `packages: read` (or `write`) and give this repository \
             access to the package"
                .to_string(),
        ),
        ErrorKind::Denied => Some(format!(
            "the credentials for {} are valid but may not {} {repo}",
            f.registry,
            if f.call.writes() { "push to" } else { "read" }
        )),
        ErrorKind::Unauthorized if is_expired_token_text(&text) => Some(
            "the registry token has expired (ECR tokens last 12 hours): refresh it, e.g. \
             `aws ecr get-login-password | docker login …`, or use the ECR credential helper"
                .to_string(),
        ),
        ErrorKind::Unauthorized => Some(format!(
            "credentials for {} are missing or wrong. canary reads, in order: \
             CANARY_REGISTRY_USERNAME + CANARY_REGISTRY_PASSWORD, CANARY_REGISTRY_TOKEN, \
             GITHUB_ACTOR + GITHUB_TOKEN (ghcr.io), then the docker config \
             (credHelpers, credsStore, auths)",
            f.registry
        )),
        ErrorKind::RateLimited if docker_hub => Some(
            "Docker Hub's pull rate limit: log in (docker config or CANARY_REGISTRY_*) to \
             raise it, and retry later"
                .to_string(),
        ),
        ErrorKind::RateLimited => {
            Some("the registry is rate-limiting canary; retry later".to_string())
        }
        ErrorKind::NotFound if has("NAME_UNKNOWN") => Some(format!(
            "the repository {repo} does not exist on {}: check the image name",
            f.registry
        )),
        ErrorKind::Transient => Some(format!(
            "{} is failing or overloaded; canary retried with backoff. Retry later",
            f.registry
        )),
        _ => None,
    };
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}

/// A success answer canary cannot use (HTML, garbage, a manifest kind it
/// does not handle): a protocol error naming the URL and status.
pub(crate) fn protocol_error(
    method: &str,
    url: &str,
    status: u16,
    registry: &str,
    problem: &str,
) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!(
            "{method} {url}: {}: {problem}",
            format!("{status} {}", reason(status)).trim()
        ),
    )
    .with_hint(format!(
        "is `{registry}` an OCI registry? check the image name's host, and any proxy in between"
    ))
}

/// A request that got no answer: connection refused, DNS, TLS, timeout.
pub(crate) fn transport_error(
    method: &str,
    url: &str,
    registry: &str,
    error: &reqwest::Error,
    secrets: &[String],
) -> Error {
    let root = root_cause(error);
    let lower = root.to_ascii_lowercase();
    let (kind, what, hint) = if error.is_timeout() {
        (
            ErrorKind::Transient,
            "timed out",
            format!("{registry} did not answer in time; retry, or raise the timeout ([registry] timeout, --registry-timeout, CANARY_REGISTRY_TIMEOUT)"),
        )
    } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        (
            ErrorKind::Other,
            "TLS certificate does not name the host",
            format!(
                "the certificate of {registry} does not name `{registry}` (its trust is not the                  problem): reach the registry by a name the certificate was issued for, or                  reissue it with this name in its subjectAltName"
            ),
        )
    } else if lower.contains("certificate") || lower.contains("unknownissuer") {
        (
            ErrorKind::Other,
            "TLS certificate not trusted",
            format!(
                "the certificate of {registry} is not signed by a trusted CA: pass the CA \
                 with `[registry] ca_file`"
            ),
        )
    } else if lower.contains("corrupt message")
        || lower.contains("invalidcontenttype")
        || lower.contains("invalid content type")
        || lower.contains("wrong version number")
    {
        (
            ErrorKind::Other,
            "TLS handshake failed",
            format!(
                "{registry} does not speak HTTPS on this port. If it is a plain-HTTP registry \
                 on a network you trust, list it under `[registry] insecure`"
            ),
        )
    } else if error.is_redirect() {
        // A loop, or a downgrade to plain HTTP: asking again changes
        // nothing.
        (
            ErrorKind::Protocol,
            "redirect refused",
            format!(
                "{registry} (or a proxy in front of it) sends canary round in redirects: check \
                 the registry's and the proxy's base URL settings"
            ),
        )
    } else if error.is_connect() {
        (
            ErrorKind::Transient,
            "cannot connect",
            format!("is the registry at {registry} running and reachable from here?"),
        )
    } else {
        (
            ErrorKind::Transient,
            "request failed",
            format!("the connection to {registry} broke; retry later"),
        )
    };
    Error::new(
        kind,
        format!("{method} {url}: {what}: {}", scrub(&root, secrets)),
    )
    .with_hint(hint)
}

/// The innermost message of an error chain (`Connection refused (os error
/// 111)`), which says more than reqwest's "error sending request".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = vec![error.to_string()];
    let mut next = error.source();
    while let Some(e) = next {
        messages.push(e.to_string());
        next = e.source();
    }
    // Skip wrappers that only restate the URL.
    messages
        .iter()
        .rev()
        .find(|m| !m.is_empty())
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(call: Call, registry: &str, status: u16, body: &str) -> Error {
        let secrets = vec!["hunter2-secret".to_string()];
        parse_error(&Failure {
            call,
            method: "PUT",
            url: "https://r.example/v2/acme/app/manifests/latest",
            registry,
            repository: Some("acme/app"),
            status,
            body: body.as_bytes(),
            secrets: &secrets,
        })
    }

    #[test]
    fn codes_win_over_status() {
        let e = fail(
            Call::GetManifest,
            "r.example",
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e
            .message()
            .contains("404 Not Found: MANIFEST_UNKNOWN: manifest unknown"));
        assert!(e
            .message()
            .contains("https://r.example/v2/acme/app/manifests/latest"));
        let e = fail(
            Call::GetManifest,
            "r.example",
            400,
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn status_when_the_body_is_silent() {
        for (status, kind) in [
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::Denied),
            (404, ErrorKind::NotFound),
            (429, ErrorKind::RateLimited),
            (503, ErrorKind::Transient),
            (408, ErrorKind::Transient),
            (400, ErrorKind::Invalid),
            (418, ErrorKind::Other),
        ] {
            assert_eq!(
                fail(Call::GetManifest, "r", status, "").kind(),
                kind,
                "{status}"
            );
        }
    }

    #[test]
    fn html_is_a_protocol_error_unless_retryable() {
        let e = fail(
            Call::GetManifest,
            "r.example",
            404,
            "<!DOCTYPE html><html>nope</html>",
        );
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("HTML page"));
        assert!(e.message().contains("404"));
        assert!(e.message().contains("https://r.example/v2/"));
        let e = fail(
            Call::GetManifest,
            "r.example",
            502,
            "<html>bad gateway</html>",
        );
        assert_eq!(e.kind(), ErrorKind::Transient);
        let e = fail(Call::GetManifest, "r.example", 400, "\u{0}\u{1}garbage");
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn ecr_immutable_tag() {
        let e = fail(
            Call::PutManifest,
            "1234.dkr.ecr.eu-west-1.amazonaws.com",
            400,
            r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag 'latest' already exists in the 'app' repository and cannot be overwritten because the repository is immutable."}]}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.message().contains("TAG_INVALID"));
        assert!(e.hint().unwrap().contains("immutable"));
        assert!(e.hint().unwrap().contains("MUTABLE"));
    }

    #[test]
    fn ghcr_denied_asks_for_packages_write() {
        let body = r#"{"errors":[{"code":"DENIED","message":"permission_denied: write_package"}]}"#;
        let e = fail(Call::PutManifest, "ghcr.io", 403, body);
        assert_eq!(e.kind(), ErrorKind::Denied);
        assert!(e.hint().unwrap().contains("packages: write"));
        let e = fail(Call::PutManifest, "r.example", 403, body);
        assert!(!e.hint().unwrap().contains("packages: write"));
    }

    #[test]
    fn ecr_expired_token_is_unauthorized() {
        let e = fail(
            Call::GetManifest,
            "1234.dkr.ecr.eu-west-1.amazonaws.com",
            403,
            r#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.hint().unwrap().contains("expired"));
    }

    #[test]
    fn server_text_is_scrubbed() {
        let e = fail(
            Call::GetManifest,
            "r.example",
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password hunter2-secret"}]}"#,
        );
        assert!(!e.chain().contains("hunter2-secret"));
        assert!(e.message().contains("bad password ***"));
        let e = fail(
            Call::GetManifest,
            "r.example",
            400,
            r#"{"echo":"hunter2-secret"}"#,
        );
        assert!(!e.message().contains("hunter2-secret"));
    }
}
