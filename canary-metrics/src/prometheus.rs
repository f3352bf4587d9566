//! [`PrometheusSource`]: the Prometheus HTTP API (`/api/v1/query`,
//! `/api/v1/query_range`) as canary's [`MetricSource`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use canary_core::analysis::MetricSource;
use canary_core::{Error, ErrorKind, UsageError};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use url::Url;

use crate::api::{self, Call, Series};
use crate::options::{PrometheusAuth, PrometheusOptions, CA_SETTING};

/// The largest answer read; a query returning more is a mistake (a
/// missing `sum`), not a result.
const MAX_BODY: usize = 32 << 20;

/// The longest backoff between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The Prometheus HTTP API, read by canary's analysis.
///
/// [`MetricSource::query`] is an instant query evaluated now (or at the
/// time [`PrometheusSource::at`] pins): one value per
/// series (the last point of a range vector), a scalar as one value, no
/// series as an empty vector. `NaN` and `±Inf` are returned as such (the
/// judge turns them into `inconclusive`). [`PrometheusSource::instant`] and
/// [`PrometheusSource::query_range`] keep the labels and the times.
///
/// A connection error, a 5xx (but a query timeout) or a 429 is retried
/// [`PrometheusOptions::retries`] times with a jittered backoff; every
/// other failure is returned at once, as an [`Error`] whose kind says what
/// went wrong (`invalid` for bad PromQL, `unauthorized`, `transient`…) and
/// whose message names the Prometheus, the query and Prometheus's own
/// `errorType` and `error`, never a credential.
#[derive(Clone)]
pub struct PrometheusSource {
    inner: Arc<Inner>,
    /// When instant queries are evaluated; now when `None`.
    time: Option<SystemTime>,
}

struct Inner {
    base: String,
    client: reqwest::Client,
    auth: PrometheusAuth,
    secrets: Vec<String>,
    retries: u32,
    retry_delay: Duration,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("url", &self.inner.base)
            .field("auth", &self.inner.auth)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl PrometheusSource {
    /// A client of the Prometheus `options` name. Makes no request; refuses
    /// (before any) a URL that is not http(s), carries credentials, a query
    /// or a fragment, or is plain HTTP to a host that is not loopback while
    /// credentials are set; credentials a header cannot carry; a zero
    /// timeout; a CA file that cannot be used.
    pub fn new(options: PrometheusOptions) -> Result<Self, UsageError> {
        let base = options.base_url()?;
        options.check_auth()?;
        options.check_limits()?;
        let tls = canary_http::tls_config(options.ca_file.as_deref(), CA_SETTING)?;
        let user_agent = canary_http::user_agent(&options.user_agent)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .timeout(options.timeout)
            .user_agent(user_agent)
            // A redirect must not carry the credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                UsageError::new(
                    "HTTP client for Prometheus",
                    format!("cannot be built: {e}"),
                    "check the CA file and TLS settings",
                )
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                base: base.as_str().trim_end_matches('/').to_string(),
                client,
                secrets: options.auth.secrets(),
                auth: options.auth,
                retries: options.retries,
                retry_delay: options.retry_delay,
            }),
            time: None,
        })
    }

    /// The same source, evaluating [`MetricSource::query`] at `time`
    /// instead of now (it shares the connections).
    ///
    /// One read of a metric runs several queries one after the other; a
    /// source pinned to one instant makes their ranges end together, so
    /// `increase` extrapolates every series by the same factor and an
    /// error rate is errors and total from the same window. It also reads
    /// a past window again (`canary analyze` after the fact).
    #[must_use]
    pub fn at(&self, time: SystemTime) -> Self {
        Self {
            inner: self.inner.clone(),
            time: Some(time),
        }
    }

    /// The evaluation time [`MetricSource::query`] uses (`None`: now).
    pub fn time(&self) -> Option<SystemTime> {
        self.time
    }

    /// The base URL requests go to (`/api/v1/…` is appended).
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// An instant query evaluated at `time` (now when `None`), with every
    /// series' labels.
    pub async fn instant(
        &self,
        query: &str,
        time: Option<SystemTime>,
    ) -> Result<Vec<Series>, Error> {
        let mut params = vec![("query", query.to_string())];
        if let Some(t) = time {
            params.push(("time", seconds(t)));
        }
        self.get("query", query, &params).await
    }

    /// A range query from `start` to `end` every `step`: each series with
    /// its points.
    pub async fn query_range(
        &self,
        query: &str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> Result<Vec<Series>, Error> {
        if step.is_zero() || end < start {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "Prometheus {}: a range query needs start ≤ end and a step above zero",
                    self.inner.base
                ),
            ));
        }
        let params = [
            ("query", query.to_string()),
            ("start", seconds(start)),
            ("end", seconds(end)),
            ("step", format!("{:.3}", step.as_secs_f64())),
        ];
        self.get("query_range", query, &params).await
    }

    async fn get(
        &self,
        endpoint: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<Series>, Error> {
        let inner = &*self.inner;
        let mut url = Url::parse(&format!("{}/api/v1/{endpoint}", inner.base)).map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!("Prometheus {}: cannot build the URL: {e}", inner.base),
            )
        })?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let call = Call {
            base: &inner.base,
            query,
            auth: inner.auth.describe(),
            has_auth: inner.auth.is_some(),
            secrets: &inner.secrets,
        };
        let mut retry = 0;
        loop {
            let (error, retryable, wait) = match self.once(&url, &call).await {
                Ok(series) => return Ok(series),
                Err(failure) => failure,
            };
            if !retryable || retry >= inner.retries {
                return Err(if retry > 0 {
                    after_attempts(&error, retry + 1)
                } else {
                    error
                });
            }
            retry += 1;
            let backoff =
                canary_http::backoff(inner.retry_delay, MAX_BACKOFF, retry, rand::random::<f64>());
            tokio::time::sleep(wait.unwrap_or(backoff).min(MAX_BACKOFF)).await;
        }
    }

    /// One request: the series, or the error, whether to retry, and the
    /// server's `Retry-After`.
    async fn once(
        &self,
        url: &Url,
        call: &Call<'_>,
    ) -> Result<Vec<Series>, (Error, bool, Option<Duration>)> {
        let inner = &*self.inner;
        let mut request = inner
            .client
            .get(url.clone())
            .header(ACCEPT, "application/json");
        match &inner.auth {
            PrometheusAuth::None => {}
            PrometheusAuth::Bearer(token) => {
                // Checked printable in `new`.
                if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                {
                    value.set_sensitive(true);
                    request = request.header(AUTHORIZATION, value);
                }
            }
            PrometheusAuth::Basic { username, password } => {
                request = request.basic_auth(username, Some(password.expose()));
            }
        }
        let mut response = request.send().await.map_err(|e| transport(call, &e))?;
        let status = response.status().as_u16();
        let retry_after = canary_http::retry_after(response.headers(), SystemTime::now());
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err((
                            Error::new(
                                ErrorKind::Protocol,
                                format!(
                                    "Prometheus {}: the answer to `{}` is larger than {} MiB; \
                                     aggregate it (sum, topk)",
                                    call.base,
                                    call.query,
                                    MAX_BODY >> 20
                                ),
                            ),
                            false,
                            None,
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(transport(call, &e)),
            }
        }
        api::parse_answer(call, status, &body).map_err(|(e, retry)| (e, retry, retry_after))
    }
}

#[async_trait]
impl MetricSource for PrometheusSource {
    async fn query(&self, query: &str) -> Result<Vec<f64>, Error> {
        Ok(self
            .instant(query, self.time)
            .await?
            .into_iter()
            .filter_map(|s| s.points.last().map(|p| p.value))
            .collect())
    }

    async fn query_at(&self, query: &str, at_ms: u64) -> Result<Vec<f64>, Error> {
        self.at(std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms))
            .query(query)
            .await
    }
}

/// `error`, saying how many attempts it took.
fn after_attempts(error: &Error, attempts: u32) -> Error {
    let e = Error::new(
        error.kind(),
        format!("{} (after {attempts} attempts)", error.message()),
    );
    match error.hint() {
        Some(hint) => e.with_hint(hint),
        None => e,
    }
}

/// `t` as Prometheus's float seconds.
fn seconds(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// A request that got no answer: connection errors (and answers cut off)
/// are retried, a timeout is not (the same query would take as long
/// again).
fn transport(call: &Call<'_>, e: &reqwest::Error) -> (Error, bool, Option<Duration>) {
    let (what, retry) = if e.is_timeout() {
        ("no answer in time", false)
    } else if e.is_connect() {
        ("could not connect", true)
    } else if e.is_body() || e.is_decode() {
        ("the answer broke off", true)
    } else if e.is_request() {
        // Typically a pooled connection the server closed while idle (a
        // restarted Prometheus): a new connection may well work.
        ("the request failed", true)
    } else {
        ("the request failed", false)
    };
    let mut detail = what.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            let _ = write!(detail, ": {text}");
        }
        source = s.source();
    }
    let kind = if retry || e.is_timeout() {
        ErrorKind::Transient
    } else {
        ErrorKind::Other
    };
    let error = Error::new(
        kind,
        api::scrub(&format!("Prometheus {}: {detail}", call.base), call.secrets),
    )
    .with_hint(if e.is_timeout() {
        "simplify the query or raise the timeout"
    } else {
        "is Prometheus running at this URL, and reachable from here?"
    });
    (error, retry, None)
}
