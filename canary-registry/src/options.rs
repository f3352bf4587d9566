//! Configuration of an [`crate::OciRegistry`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canary_core::Clock;
use canary_http::SystemClock;

use crate::credentials::Credentials;

/// How an [`crate::OciRegistry`] connects and authenticates.
///
/// `Default` is anonymous, HTTPS-only (plain HTTP for loopback hosts),
/// the built-in (Mozilla) root certificates, [`RetryPolicy::default`], a
/// 30-second timeout per request, the [`SystemClock`].
#[derive(Clone)]
pub struct RegistryOptions {
    /// Registry hosts (`host` or `host:port`) that may be reached over plain
    /// HTTP. Loopback hosts (`127.0.0.0/8`, `::1`, `localhost`) always may.
    /// An entry without a port matches every port of that host.
    pub insecure: Vec<String>,
    /// A PEM file of extra CA certificates to trust, besides the built-in
    /// roots (a private registry's CA).
    pub ca_file: Option<PathBuf>,
    /// Where credentials come from.
    pub credentials: Credentials,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// Timeout of one request (connect, send, read the whole body).
    pub timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// What every wait between retries goes through, and whose time a
    /// `Retry-After` date is measured against; tests pass core's
    /// `ManualClock`, which returns at once and records each wait.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("insecure", &self.insecure)
            .field("ca_file", &self.ca_file)
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            ca_file: None,
            credentials: Credentials::anonymous(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            user_agent: format!("canary/{}", env!("CARGO_PKG_VERSION")),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Retries of requests that failed with 408, 429, 500, 502, 503, 504 or a
/// connection error: exponential backoff with jitter, `Retry-After`
/// honoured, at most `max_attempts` attempts in all.
///
/// The delay before attempt `n + 1` is a random duration between half and
/// all of `min(max_delay, base_delay · 2ⁿ⁻¹)`. A `Retry-After` header
/// replaces it when it is at most `max_delay`; a longer one ends the retries
/// at once (the error says how long the registry asked to wait), so a run
/// never blocks for longer than the policy allows.
///
/// The waits go through [`RegistryOptions::clock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The first backoff delay.
    pub base_delay: Duration,
    /// The longest delay, for backoff and for `Retry-After`.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// No retries: every failure is final.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (1-based), with jitter in
    /// `[d/2, d]`; `unit` in `[0, 1)` is the random part.
    pub(crate) fn backoff(&self, retry: u32, unit: f64) -> Duration {
        canary_http::backoff(self.base_delay, self.max_delay, retry, unit)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_micros(10);
        assert!(close(p.backoff(1, 0.999_999), Duration::from_millis(100)));
        assert!(close(p.backoff(1, 0.0), Duration::from_millis(50)));
        assert!(close(p.backoff(3, 0.0), Duration::from_millis(200)));
        assert!(p.backoff(30, 0.999) <= Duration::from_secs(1));
        assert!(p.backoff(u32::MAX, 0.5) <= Duration::from_secs(1));
    }
}
