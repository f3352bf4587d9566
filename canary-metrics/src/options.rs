//! How to reach a Prometheus: its URL, credentials, CA, timeouts and
//! retries, checked before any request.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use canary_core::{Secret, UsageError};
use url::{Host, Url};

/// The setting that names the Prometheus URL, in errors.
pub(crate) const URL_SETTING: &str = "analysis.prometheus";

/// The setting that names the CA bundle, in errors (the one `ca_file` every
/// HTTP adapter shares).
pub(crate) const CA_SETTING: &str = "ca_file";

/// The credentials sent to Prometheus (or to the proxy in front of it).
///
/// `Debug` shows the kind and the user name, never a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrometheusAuth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP Basic.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
}

impl PrometheusAuth {
    /// Whether credentials are sent.
    pub fn is_some(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// How the credentials are named in messages (never their value).
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Self::None => "no credentials",
            Self::Bearer(_) => "the bearer token",
            Self::Basic { .. } => "the basic-auth user and password",
        }
    }

    /// Every text a message must never contain: the secrets, and what
    /// carries them on the wire (the base64 of `user:password`).
    pub(crate) fn secrets(&self) -> Vec<String> {
        use base64::Engine as _;
        match self {
            Self::None => Vec::new(),
            Self::Bearer(token) => vec![token.expose().to_string()],
            Self::Basic { username, password } => vec![
                password.expose().to_string(),
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose())),
            ],
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
    }
}

/// How to reach a Prometheus.
///
/// ```
/// use canary_core::Secret;
/// use canary_metrics::{PrometheusAuth, PrometheusOptions};
///
/// let options = PrometheusOptions {
///     auth: PrometheusAuth::Bearer(Secret::new("token")),
///     ..PrometheusOptions::new("https://metrics.example.com/prometheus")
/// };
/// assert_eq!(options.retries, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusOptions {
    /// The base URL, with any path prefix Prometheus is served under
    /// (`http://prometheus:9090`, `https://host/prometheus`); `/api/v1/…`
    /// is appended.
    pub url: String,
    /// The credentials.
    pub auth: PrometheusAuth,
    /// A PEM bundle of CA certificates to trust besides the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// How long one request may take, connecting included.
    pub timeout: Duration,
    /// How many times a request is retried after a connection error, a
    /// 5xx or a 429 (0: never).
    pub retries: u32,
    /// The first retry's backoff; it doubles per retry (with jitter), at
    /// most 8 s. Tests set it to zero.
    pub retry_delay: Duration,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        Self::new("")
    }
}

impl PrometheusOptions {
    /// The defaults for the Prometheus at `url`: no credentials, 30 s per
    /// request, 2 retries from 500 ms.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: PrometheusAuth::None,
            ca_file: None,
            timeout: Duration::from_secs(30),
            retries: 2,
            retry_delay: Duration::from_millis(500),
            user_agent: format!("canary/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The checked base URL, without a trailing slash.
    pub(crate) fn base_url(&self) -> Result<Url, UsageError> {
        let input = format!("{URL_SETTING} `{}`", self.url.escape_debug());
        let bad = |problem: &str, fix: &str| UsageError::new(input.clone(), problem, fix);
        if self.url.trim().is_empty() {
            return Err(UsageError::new(
                URL_SETTING,
                "is empty",
                "give Prometheus's base URL, e.g. http://prometheus:9090",
            ));
        }
        let mut url = Url::parse(self.url.trim()).map_err(|e| {
            bad(
                &format!("is not a URL ({e})"),
                "give Prometheus's base URL, e.g. http://prometheus:9090",
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(
                "is not an http(s) URL",
                "use an http:// or https:// URL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "carries credentials (`user:password@`)",
                "remove them and give them as the basic-auth user and password",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "has a query or a fragment",
                "give the base URL only; canary appends /api/v1/query",
            ));
        }
        let loopback = match url.host() {
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => {
                return Err(bad(
                    "has no host",
                    "give Prometheus's base URL, e.g. http://prometheus:9090",
                ))
            }
        };
        // An open Prometheus inside a cluster is usually plain HTTP, and
        // that is fine; credentials are not sent in clear beyond loopback.
        if url.scheme() == "http" && self.auth.is_some() && !loopback {
            return Err(bad(
                &format!(
                    "is plain HTTP to a host that is not loopback; {} would travel in clear",
                    self.auth.describe()
                ),
                "use https:// (plain http:// with credentials is allowed only for 127.0.0.1, \
                 ::1 and localhost)",
            ));
        }
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Ok(url)
    }

    /// Checks the credentials can be sent in a header.
    pub(crate) fn check_auth(&self) -> Result<(), UsageError> {
        let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        match &self.auth {
            PrometheusAuth::None => Ok(()),
            PrometheusAuth::Bearer(token) => {
                if token.is_empty() || !token.expose().chars().all(|c| c.is_ascii_graphic()) {
                    Err(UsageError::new(
                        "the Prometheus bearer token",
                        "is empty or contains a character an HTTP header cannot carry",
                        "check the variable that holds it (printable ASCII, no spaces)",
                    ))
                } else {
                    Ok(())
                }
            }
            PrometheusAuth::Basic { username, password } => {
                if username.is_empty() || username.contains(':') || !printable(username) {
                    Err(UsageError::new(
                        format!("the Prometheus user name `{}`", username.escape_debug()),
                        "is empty, contains `:` or a character a header cannot carry",
                        "give the basic-auth user name (printable ASCII, no `:`)",
                    ))
                } else if !printable(password.expose()) {
                    Err(UsageError::new(
                        "the Prometheus password",
                        "contains a character an HTTP header cannot carry",
                        "check the variable that holds it (printable ASCII)",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    pub(crate) fn check_limits(&self) -> Result<(), UsageError> {
        if self.timeout.is_zero() {
            return Err(UsageError::new(
                "the Prometheus timeout",
                "is zero",
                "give a timeout such as `30s`",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(url: &str, auth: PrometheusAuth) -> PrometheusOptions {
        PrometheusOptions {
            auth,
            ..PrometheusOptions::new(url)
        }
    }

    #[test]
    fn base_urls() {
        let ok = |url: &str| with(url, PrometheusAuth::None).base_url().unwrap();
        assert_eq!(
            ok("http://prometheus:9090").as_str(),
            "http://prometheus:9090/"
        );
        assert_eq!(
            ok("https://host/prometheus/").as_str(),
            "https://host/prometheus"
        );
        for bad in [
            "",
            "prometheus:9090",
            "ftp://host",
            "http://u:p@host",
            "http://host/?x=1",
            "http://host/#f",
        ] {
            let e = with(bad, PrometheusAuth::None).base_url().unwrap_err();
            assert!(e.input().contains(URL_SETTING), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_never_go_in_clear_beyond_loopback() {
        let bearer = PrometheusAuth::Bearer(Secret::new("s3cret"));
        let e = with("http://prometheus:9090", bearer.clone())
            .base_url()
            .unwrap_err();
        assert!(
            e.problem()
                .contains("the bearer token would travel in clear"),
            "{e}"
        );
        assert!(!format!("{e:?}").contains("s3cret"));
        assert!(with("http://127.0.0.1:9090", bearer.clone())
            .base_url()
            .is_ok());
        assert!(with("https://prometheus", bearer).base_url().is_ok());
    }

    #[test]
    fn header_safe_credentials() {
        let check = |auth| with("https://p", auth).check_auth();
        assert!(check(PrometheusAuth::Bearer(Secret::new("a b"))).is_err());
        assert!(check(PrometheusAuth::Bearer(Secret::new(""))).is_err());
        assert!(check(PrometheusAuth::Basic {
            username: "a:b".into(),
            password: Secret::new("x"),
        })
        .is_err());
        assert!(check(PrometheusAuth::Basic {
            username: "reader".into(),
            password: Secret::new("pass word"),
        })
        .is_ok());
        let debug = format!(
            "{:?}",
            PrometheusAuth::Basic {
                username: "reader".into(),
                password: Secret::new("hunter2"),
            }
        );
        assert!(
            debug.contains("reader") && !debug.contains("hunter2"),
            "{debug}"
        );
    }
}
