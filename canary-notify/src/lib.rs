#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use canary_core::report::NotificationReport;
use canary_core::{Clock, Outcome, PromotionReport, Secret};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use sha2::Sha256;

/// Attempts per notification, the first included.
pub const MAX_ATTEMPTS: u32 = 4;
/// The most one notification may take, retries and pauses included.
pub const MAX_TOTAL: Duration = Duration::from_secs(20);
/// One attempt's timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Canary-Signature";

/// The shape of a notification's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// [`canary_report::notify::webhook_json`], signed when a secret is set.
    Json,
    /// A Slack incoming-webhook message.
    Slack,
}

/// Where one kind of notification goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// How reports name it: the variable its URL came from.
    pub name: String,
    /// The URL (a secret: a Slack webhook URL is a credential).
    pub url: Secret,
    /// The HMAC key, when set.
    pub secret: Option<Secret>,
    /// The body's shape.
    pub format: Format,
    /// The outcomes sent there.
    pub on: Vec<Outcome>,
}

/// `sha256=<hex>` of HMAC-SHA256 over `body` with `key`: the value of
/// [`SIGNATURE_HEADER`]. A receiver recomputes it over the exact bytes it
/// received and compares in constant time.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends reports to every [`Target`] that wants their outcome.
#[derive(Clone)]
pub struct Notifier {
    targets: Vec<Target>,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    run_url: Option<String>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier for `targets`, pausing between attempts on `clock`.
    pub fn new(targets: Vec<Target>, clock: Arc<dyn Clock>) -> Self {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent(format!("canary/{}", env!("CARGO_PKG_VERSION")))
            // A webhook that redirects does not get the body twice.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            targets,
            client,
            clock,
            run_url: None,
        }
    }

    /// The run's URL (e.g. the GitHub Actions run), put in every body.
    #[must_use]
    pub fn with_run_url(mut self, run_url: Option<String>) -> Self {
        self.run_url = run_url;
        self
    }

    /// Whether any target is configured.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Sends `report` to every target that wants its outcome, all at once;
    /// returns what happened to each. Never fails: a notification that
    /// could not be delivered says why in its [`NotificationReport`].
    pub async fn send(&self, report: &PromotionReport) -> Vec<NotificationReport> {
        let sends = self
            .targets
            .iter()
            .filter(|t| t.on.contains(&report.outcome))
            .map(|t| self.send_one(t, report));
        futures::future::join_all(sends).await
    }

    async fn send_one(&self, target: &Target, report: &PromotionReport) -> NotificationReport {
        let run_url = self.run_url.as_deref();
        let body = match target.format {
            Format::Json => canary_report::notify::webhook_json(report, run_url),
            Format::Slack => canary_report::notify::slack_json(report, run_url),
        };
        let signature = target
            .secret
            .as_ref()
            .map(|key| signature(key.expose().as_bytes(), body.as_bytes()));
        let started = self.clock.now_ms();
        let mut attempts = 0;
        let mut last = String::new();
        while attempts < MAX_ATTEMPTS {
            attempts += 1;
            let mut request = self
                .client
                .post(target.url.expose())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(sig) = &signature {
                if let Ok(v) = HeaderValue::from_str(sig) {
                    request = request.header(SIGNATURE_HEADER, v);
                }
            }
            let retry = match request.send().await {
                Ok(r) if r.status().is_success() => {
                    return NotificationReport {
                        target: target.name.clone(),
                        event: report.outcome.as_str().to_string(),
                        sent: true,
                        attempts,
                        error: None,
                    }
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    last = format!("the webhook answered status {status}");
                    matches!(status, 408 | 429 | 500..=599)
                }
                Err(e) => {
                    // reqwest's message names the URL: never print it.
                    last = if e.is_timeout() {
                        format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs())
                    } else if e.is_connect() {
                        "could not connect".to_string()
                    } else {
                        "the request failed".to_string()
                    };
                    true
                }
            };
            let pause = canary_http::backoff(
                Duration::from_millis(500),
                Duration::from_secs(5),
                attempts,
                0.5,
            );
            let spent = Duration::from_millis(self.clock.now_ms().saturating_sub(started));
            if !retry || attempts == MAX_ATTEMPTS || spent + pause + ATTEMPT_TIMEOUT > MAX_TOTAL {
                break;
            }
            self.clock.sleep(pause).await;
        }
        NotificationReport {
            target: target.name.clone(),
            event: report.outcome.as_str().to_string(),
            sent: false,
            attempts,
            error: Some(redact(&last, target)),
        }
    }
}

/// Removes the target's URL and secret from `text`, in case a message
/// ever quotes them.
fn redact(text: &str, target: &Target) -> String {
    let mut out = text.replace(target.url.expose(), "***");
    if let Some(s) = &target.secret {
        if !s.expose().is_empty() {
            out = out.replace(s.expose(), "***");
        }
    }
    out
}
