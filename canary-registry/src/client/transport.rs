//! Transport: one request sent and retried, its answer read, a failed
//! answer mapped to an error. Knows nothing of auth beyond the header it is
//! handed.

use std::time::{Duration, Instant, UNIX_EPOCH};

use canary_core::Error;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, Url};

use super::{lock, Host, OciRegistry};
use crate::endpoint;
use crate::errors::{parse_error, protocol_error, transport_error, Call, Failure};

/// Largest manifest accepted (the distribution registry's own limit).
const MAX_MANIFEST: usize = 4 << 20;
/// Largest tags-list page or other body accepted.
const MAX_BODY: usize = 16 << 20;

/// An HTTP answer, body read.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) url: Url,
    /// The registry asked (Retry-After) for a longer wait than allowed.
    pub(super) retry_after_refused: Option<Duration>,
}

impl Reply {
    pub(super) fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request, before auth: [`OciRegistry::send`] adds the
/// `Authorization` header it is given, afresh on every attempt.
#[derive(Clone)]
pub(super) struct Request<'a> {
    pub(super) call: Call,
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<&'a [u8]>,
    /// The repository the request is about, for token scopes and errors.
    pub(super) repository: Option<&'a str>,
}

/// `4 MiB`, or `1000 bytes` below a MiB.
fn size_text(limit: usize) -> String {
    if limit >= 1 << 20 && limit % (1 << 20) == 0 {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    }
}

fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Never follow a redirect from HTTPS down to plain HTTP (Authorization is
/// already dropped by reqwest on a change of host).
pub(super) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
            && attempt.url().scheme() == "http"
            && !attempt.url().host_str().is_some_and(endpoint::is_loopback);
        if downgrade {
            attempt.error("refusing a redirect from HTTPS to plain HTTP")
        } else if attempt.previous().len() >= 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

async fn read_reply(
    mut resp: reqwest::Response,
    req: &Request<'_>,
    registry: &str,
) -> Result<Reply, Error> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let url = resp.url().clone();
    let limit = match req.call {
        Call::GetManifest => MAX_MANIFEST,
        Call::GetBlob { limit } => limit,
        _ => MAX_BODY,
    };
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(protocol_error(
                        req.method.as_str(),
                        url.as_str(),
                        status,
                        registry,
                        &format!("the body is larger than {}", size_text(limit)),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(transport_error(
                    req.method.as_str(),
                    url.as_str(),
                    registry,
                    &e,
                    &[],
                ))
            }
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
        url,
        retry_after_refused: None,
    })
}

impl OciRegistry {
    /// Sends one request with retries on 408/429/5xx and connection errors.
    /// A final retryable status comes back as a `Reply` for the caller to
    /// map; a final transport error as an `Error`.
    pub(super) async fn send(
        &self,
        host: &Host,
        req: &Request<'_>,
        auth: Option<&HeaderValue>,
        max_attempts: u32,
    ) -> Result<Reply, Error> {
        let policy = &self.inner.options.retry;
        let clock = &self.inner.options.clock;
        let secrets = lock(&host.secrets).clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.count(host, |s| {
                match req.call {
                    Call::Ping | Call::Token => s.auth += 1,
                    Call::HeadManifest | Call::HeadBlob => s.head += 1,
                    Call::PutManifest | Call::PutBlob => s.put += 1,
                    Call::StartUpload => s.post += 1,
                    Call::GetManifest
                    | Call::ListTags
                    | Call::GetBlob { .. }
                    | Call::GetReferrers => s.get += 1,
                }
                if attempt > 1 {
                    s.retries += 1;
                }
            });
            let mut builder = self
                .inner
                .http
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(value) = auth {
                builder = builder.header(AUTHORIZATION, value.clone());
            }
            if let Some(body) = req.body {
                builder = builder.body(body.to_vec());
            }
            let started = Instant::now();
            let outcome = match builder.send().await {
                Ok(resp) => read_reply(resp, req, &host.registry).await,
                Err(e) => Err(transport_error(
                    req.method.as_str(),
                    req.url.as_str(),
                    &host.registry,
                    &e,
                    &secrets,
                )),
            };
            match outcome {
                Ok(mut reply) => {
                    tracing::debug!(
                        method = %req.method,
                        url = %req.url,
                        status = reply.status,
                        attempt,
                        elapsed_ms = started.elapsed().as_millis(),
                        "registry request"
                    );
                    if !retryable_status(reply.status) || attempt >= max_attempts {
                        return Ok(reply);
                    }
                    let now = UNIX_EPOCH + Duration::from_millis(clock.now_ms());
                    let delay = match canary_http::retry_after(&reply.headers, now) {
                        Some(d) if d > policy.max_delay => {
                            reply.retry_after_refused = Some(d);
                            return Ok(reply);
                        }
                        Some(d) => d,
                        None => policy.backoff(attempt, rand::random()),
                    };
                    tracing::info!(
                        method = %req.method,
                        url = %req.url,
                        status = reply.status,
                        delay_ms = delay.as_millis(),
                        "registry asked to retry"
                    );
                    clock.sleep(delay).await;
                }
                Err(error) => {
                    tracing::debug!(
                        method = %req.method,
                        url = %req.url,
                        attempt,
                        error = %error,
                        "registry request failed"
                    );
                    if !error.retryable() || attempt >= max_attempts {
                        return Err(error);
                    }
                    clock.sleep(policy.backoff(attempt, rand::random())).await;
                }
            }
        }
    }

    /// Maps a failed reply through the one error mapping.
    pub(super) fn fail(&self, host: &Host, req: &Request<'_>, reply: &Reply) -> Error {
        let secrets = lock(&host.secrets).clone();
        let error = parse_error(&Failure {
            call: req.call,
            method: req.method.as_str(),
            url: reply.url.as_str(),
            registry: &host.registry,
            repository: req.repository,
            status: reply.status,
            body: &reply.body,
            secrets: &secrets,
        });
        match reply.retry_after_refused {
            Some(d) => error.with_hint(format!(
                "the registry asked canary to wait {}s before retrying, longer than the \
                 retry policy's max_delay ({}s); retry later",
                d.as_secs(),
                self.inner.options.retry.max_delay.as_secs()
            )),
            None => error,
        }
    }

    /// One attempt, not counted as a request unless it got an answer: the
    /// HTTPS probe of a host that may speak plain HTTP.
    pub(super) async fn send_probe(&self, host: &Host, req: &Request<'_>) -> Result<Reply, Error> {
        let secrets = lock(&host.secrets).clone();
        match self
            .inner
            .http
            .request(req.method.clone(), req.url.clone())
            .send()
            .await
        {
            Ok(resp) => {
                self.count(host, |s| s.auth += 1);
                read_reply(resp, req, &host.registry).await
            }
            Err(e) => Err(transport_error(
                req.method.as_str(),
                req.url.as_str(),
                &host.registry,
                &e,
                &secrets,
            )),
        }
    }
}
