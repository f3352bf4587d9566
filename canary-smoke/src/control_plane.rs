//! The control plane's admin API, as `canary fleet enroll` calls it:
//! `POST {url}/cp/admin/orgs/<slug>/canary` with `{"is_canary": true}` and
//! the admin token as a bearer. What each answer means is decided in one
//! function, [`judge`].

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use canary_core::fleet::enroll::{EnrollResult, OrgSlug};
use canary_core::{Secret, UsageError};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use url::{Host, Url};

/// How long the control plane may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Body bytes quoted at most in a message.
const SNIPPET: usize = 200;

/// A client of the control plane's admin API.
pub struct ControlPlane {
    url: String,
    token: Secret,
    client: reqwest::Client,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// A client of the control plane at `url` (its base URL; `url_name`
    /// names it in errors), sending `token`. Refused before any request:
    /// a URL that is not http(s), carries credentials, a query or a
    /// fragment, or is plain HTTP to a host that is not loopback (the admin
    /// token would travel in clear); a CA file that cannot be used.
    pub fn new(
        url: &str,
        url_name: &str,
        token: Secret,
        ca_file: Option<&Path>,
    ) -> Result<Self, UsageError> {
        let bad = |problem: &str, fix: &str| UsageError::new(url_name, problem, fix);
        let parsed = Url::parse(url.trim()).map_err(|e| {
            bad(
                &format!("is not a URL ({e})"),
                "give the control plane's base URL, e.g. https://cp.example.com",
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("is not an http(s) URL", "use an https:// URL"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "carries credentials (`user:password@`)",
                "remove them; the admin token is read from control_plane.token_env",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad(
                "has a query or a fragment",
                "give the base URL only; canary appends /cp/admin/orgs/…",
            ));
        }
        let loopback = match parsed.host() {
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => return Err(bad("has no host", "give the control plane's base URL")),
        };
        if parsed.scheme() == "http" && !loopback {
            return Err(bad(
                "is plain HTTP to a host that is not loopback; the admin token would travel in clear",
                "use https:// (plain http:// is allowed only for 127.0.0.1, ::1 and localhost)",
            ));
        }
        if token.expose().chars().any(|c| !c.is_ascii_graphic()) {
            return Err(UsageError::new(
                "the control plane's admin token",
                "contains a character an HTTP header cannot carry",
                "check the variable named by control_plane.token_env (printable ASCII only)",
            ));
        }
        let tls = canary_http::tls_config(ca_file, "ca_file")?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(format!("canary/{}", env!("CARGO_PKG_VERSION")))
            // A redirect must not carry the admin token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                UsageError::new(
                    "HTTP client",
                    format!("cannot be built: {e}"),
                    "check the CA file and TLS settings",
                )
            })?;
        Ok(Self {
            url: parsed.as_str().trim_end_matches('/').to_string(),
            token,
            client,
        })
    }

    /// The control plane's base URL, as requests use it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Makes `slug` a canary org: what the control plane said, and the
    /// detail worth quoting (never the token).
    pub async fn enroll(&self, slug: &OrgSlug) -> (EnrollResult, String) {
        let token = self.token.expose();
        let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
            return (
                EnrollResult::Failed,
                "the admin token is not a valid header value".to_string(),
            );
        };
        bearer.set_sensitive(true);
        let request = self
            .client
            .post(format!("{}/cp/admin/orgs/{slug}/canary", self.url))
            .timeout(TIMEOUT)
            .header(AUTHORIZATION, bearer)
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"is_canary":true}"#);
        let answer = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        match tokio::time::timeout(TIMEOUT, answer).await {
            Err(_) => (
                EnrollResult::Failed,
                format!(
                    "no answer from {} within {}",
                    self.url,
                    humantime::format_duration(TIMEOUT)
                ),
            ),
            Ok(Err(e)) => {
                let why = if e.is_timeout() {
                    "no answer in time"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "the request failed"
                };
                let mut detail = format!("{why} to {}", self.url);
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    let _ = write!(detail, ": {s}");
                    source = s.source();
                }
                (EnrollResult::Failed, redact(&detail, token))
            }
            Ok(Ok((status, body))) => {
                let (result, detail) = judge(status, &body);
                (result, redact(&detail, token))
            }
        }
    }
}

fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "***")
    }
}

/// The body, on one line and cut short, for a message.
fn snippet(body: &[u8]) -> String {
    canary_http::one_line(&String::from_utf8_lossy(body), SNIPPET)
}

/// What an answer to the enrolment means. 2xx: enrolled, or already a
/// canary org when the body says nothing changed (`"changed": false` or
/// `"already_canary": true`). 409: refused because the org is already
/// provisioned when the body says so (it mentions `provisioned`), or
/// already canary when it says that; any other conflict is a failure.
/// 404: no such org. 401 and 403: the admin token was refused. Anything
/// else is a failure, quoted.
pub fn judge(status: u16, body: &[u8]) -> (EnrollResult, String) {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let said = |status: u16| {
        let s = snippet(body);
        if s.is_empty() {
            format!("status {status}")
        } else {
            format!("status {status}: {s}")
        }
    };
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    match status {
        200..=299 => {
            let unchanged = json.as_ref().is_some_and(|v| {
                v.get("changed") == Some(&Value::Bool(false))
                    || v.get("already_canary") == Some(&Value::Bool(true))
            });
            if unchanged {
                (EnrollResult::AlreadyCanary, String::new())
            } else {
                (EnrollResult::Enrolled, String::new())
            }
        }
        409 if text.contains("provisioned") => (EnrollResult::AlreadyProvisioned, said(status)),
        409 if text.contains("already") && text.contains("canary") => {
            (EnrollResult::AlreadyCanary, String::new())
        }
        404 => (EnrollResult::NotFound, said(status)),
        401 | 403 => (EnrollResult::Unauthorized, said(status)),
        _ => (
            EnrollResult::Failed,
            format!("the control plane answered {}", said(status)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_has_one_meaning() {
        let cases: [(u16, &str, EnrollResult); 9] = [
            (200, r#"{"changed":true}"#, EnrollResult::Enrolled),
            (204, "", EnrollResult::Enrolled),
            (200, r#"{"changed":false}"#, EnrollResult::AlreadyCanary),
            (
                409,
                r#"{"error":"org is already canary"}"#,
                EnrollResult::AlreadyCanary,
            ),
            (
                409,
                r#"{"error":"org already provisioned","code":"already_provisioned"}"#,
                EnrollResult::AlreadyProvisioned,
            ),
            (409, "conflict", EnrollResult::Failed),
            (404, r#"{"error":"org not found"}"#, EnrollResult::NotFound),
            (401, "", EnrollResult::Unauthorized),
            (502, "<html>bad gateway</html>", EnrollResult::Failed),
        ];
        for (status, body, want) in cases {
            assert_eq!(judge(status, body.as_bytes()).0, want, "{status} {body}");
        }
        assert_eq!(
            judge(502, b"<html>bad\ngateway</html>").1,
            "the control plane answered status 502: <html>bad gateway</html>"
        );
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let new = |url: &str| ControlPlane::new(url, "control plane URL", Secret::new("t"), None);
        assert_eq!(
            new("https://cp.example/").unwrap().url(),
            "https://cp.example"
        );
        assert_eq!(
            new("http://127.0.0.1:8080").unwrap().url(),
            "http://127.0.0.1:8080"
        );
        for (url, problem) in [
            ("cp.example", "is not a URL"),
            ("ftp://cp.example", "is not an http(s) URL"),
            ("http://cp.example", "plain HTTP"),
            ("https://u:p@cp.example", "credentials"),
            ("https://cp.example/?token=x", "query"),
        ] {
            let e = new(url).unwrap_err();
            assert!(e.to_string().contains(problem), "{url}: {e}");
            assert!(e.to_string().starts_with("control plane URL"), "{e}");
        }
    }
}
