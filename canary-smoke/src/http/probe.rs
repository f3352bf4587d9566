//! The rollout probe (`GET` of the probe path with the tenant's token, the
//! version read at the probe's JSONPath) and the fleet check's requests of
//! the same path, with any token or none ([`TenantProbe`]).

use async_trait::async_trait;
use canary_core::fleet::check::{ProbeAnswer, TenantProbe};
use canary_core::{Error, ErrorKind, Secret, Tenant};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde_json::Value;

use super::judge::{redact, scrub, short_json, snippet};
use super::{describe_transport, HttpSuite, Inner};

/// How a request of the probe path ended.
enum Got {
    /// An answer: the status, the body (redacted, read up to the size
    /// limit) and whether it went on past the limit.
    Answer(u16, Vec<u8>, bool),
    /// No answer: why.
    Nothing(String),
}

impl Inner {
    /// One `GET` of the probe path under `url`, with the token as a bearer
    /// when given and no `Authorization` header otherwise; bounded by the
    /// default timeout. The token never appears in what comes back.
    async fn get_probe_path(&self, url: &str, token: Option<&Secret>) -> Result<Got, Error> {
        let path = &self.options.probe.path;
        let timeout = self.options.default_timeout;
        let client = self.client().map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!("the HTTP client cannot be built: {e}"),
            )
        })?;
        // No timeout of reqwest's on top: the one below bounds the whole
        // request, and the rollout probe asks every tenant, every interval.
        let mut request = client.get(format!("{url}{path}"));
        if let Some(token) = token {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Error::new(
                        ErrorKind::Invalid,
                        "the tenant's token is not a valid header value",
                    )
                })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let answer = tokio::time::timeout(timeout, async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let (body, over) = self.read_body(&mut response).await?;
            Ok::<_, reqwest::Error>((status, body, over))
        })
        .await;
        let token = token.map_or("", Secret::expose);
        Ok(match answer {
            Err(_) => Got::Nothing(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            )),
            Ok(Err(e)) => Got::Nothing(redact(&describe_transport(&e, timeout), token)),
            Ok(Ok((status, body, over))) => Got::Answer(status, scrub(body, token), over),
        })
    }

    pub(super) async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        let path = &self.options.probe.path;
        let what = format!("probe {}{path}", tenant.url());
        let token = tenant.token().expose();
        let got = self
            .get_probe_path(tenant.url(), Some(tenant.token()))
            .await
            .map_err(|e| Error::new(e.kind(), format!("{what}: {}", e.message())))?;
        let (status, body, over) = match got {
            Got::Nothing(why) => {
                return Err(Error::new(ErrorKind::Transient, format!("{what}: {why}")))
            }
            Got::Answer(status, body, over) => (status, body, over),
        };
        if !(200..300).contains(&status) {
            let kind = match status {
                401 | 403 => ErrorKind::Unauthorized,
                408 | 429 | 500..=599 => ErrorKind::Transient,
                404 => ErrorKind::NotFound,
                _ => ErrorKind::Protocol,
            };
            let mut e = Error::new(
                kind,
                redact(
                    &format!("{what}: status {status}, body: {}", snippet(&body, over)),
                    token,
                ),
            );
            if kind == ErrorKind::Unauthorized {
                e = e.with_hint(
                    "check the tenant's admin token (same position in the tokens list as its URL)",
                );
            }
            return Err(e);
        }
        self.version_in(&what, &body, over, token)
    }

    /// The version at the probe's JSONPath in a 2xx answer.
    fn version_in(
        &self,
        what: &str,
        body: &[u8],
        over: bool,
        token: &str,
    ) -> Result<String, Error> {
        let json: Value = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                redact(
                    &format!("{what}: body is not JSON ({e}): {}", snippet(body, over)),
                    token,
                ),
            )
        })?;
        match self.probe_path.query(&json).all().first() {
            // A version is shown in logs and step summaries: refuse control
            // characters (a newline could start a workflow command) and
            // anything longer than a version plausibly is.
            Some(Value::String(s)) if s.len() > 200 || s.chars().any(char::is_control) => {
                Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "{what}: {} is not a plain version string ({} bytes{})",
                        self.options.probe.json_path,
                        s.len(),
                        if s.chars().any(char::is_control) {
                            ", control characters"
                        } else {
                            ""
                        }
                    ),
                ))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(Error::new(
                ErrorKind::Protocol,
                redact(
                    &format!(
                        "{what}: {} is {}, not a version string",
                        self.options.probe.json_path,
                        short_json(other)
                    ),
                    token,
                ),
            )),
            None => Err(Error::new(
                ErrorKind::Protocol,
                redact(
                    &format!(
                        "{what}: {} is missing in {}",
                        self.options.probe.json_path,
                        snippet(body, over)
                    ),
                    token,
                ),
            )
            .with_hint("set the probe's JSONPath to where the tenant reports its version")),
        }
    }

    async fn knock(&self, url: &str, token: Option<&Secret>) -> ProbeAnswer {
        let got = match self.get_probe_path(url, token).await {
            Ok(got) => got,
            Err(e) => return ProbeAnswer::NoAnswer(e.message().to_string()),
        };
        let (status, body, over) = match got {
            Got::Nothing(why) => return ProbeAnswer::NoAnswer(why),
            Got::Answer(status, body, over) => (status, body, over),
        };
        let token = token.map_or("", Secret::expose);
        match status {
            200..=299 => {
                let what = self.options.probe.path.as_str();
                ProbeAnswer::Accepted(
                    self.version_in(what, &body, over, token)
                        .map_err(|e| e.message().to_string()),
                )
            }
            401 | 403 => ProbeAnswer::Refused(status),
            _ => ProbeAnswer::Status(status, redact(&snippet(&body, over), token)),
        }
    }
}

/// The fleet check's requests: the rollout probe's, with any token or none.
#[async_trait]
impl TenantProbe for HttpSuite {
    async fn knock(&self, url: &str, token: Option<&Secret>) -> ProbeAnswer {
        self.inner.knock(url, token).await
    }
}
