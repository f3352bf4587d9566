//! The reference tenant's own metrics, as a Prometheus scrape target sees
//! them: a request counter by method and status code, and a latency
//! histogram, in the text exposition format (0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The histogram's upper bounds, in seconds: Prometheus client libraries'
/// defaults, so the usual `histogram_quantile` queries read them.
pub(super) const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Requests served: the counter's name.
pub(super) const REQUESTS: &str = "canary_tenant_requests_total";

/// Time to answer: the histogram's name.
pub(super) const DURATION: &str = "canary_tenant_request_duration_seconds";

/// Counts per `(method, code)` and the latency histogram.
#[derive(Debug)]
pub(super) struct Metrics {
    requests: BTreeMap<(String, u16), u64>,
    /// Per bucket of [`BUCKETS`], not cumulative; the last is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    count: u64,
    sum: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        // The series a dashboard divides by exist from the first scrape
        // (at 0), so `increase` counts the first requests too.
        let requests = [200, 500]
            .into_iter()
            .map(|code| (("GET".to_string(), code), 0))
            .collect();
        Self {
            requests,
            buckets: [0; BUCKETS.len() + 1],
            count: 0,
            sum: 0.0,
        }
    }
}

impl Metrics {
    /// Requests answered, and how many of them with a 5xx.
    pub(super) fn totals(&self) -> (u64, u64) {
        self.requests
            .iter()
            .fold((0, 0), |(all, errors), ((_, code), n)| {
                (all + n, if *code >= 500 { errors + n } else { errors })
            })
    }

    /// Counts one answered request.
    pub(super) fn record(&mut self, method: &str, code: u16, took: Duration) {
        *self.requests.entry((method.to_string(), code)).or_default() += 1;
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum += secs;
    }

    /// The exposition text.
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {REQUESTS} Requests the tenant answered, by method and status code."
        );
        let _ = writeln!(out, "# TYPE {REQUESTS} counter");
        for ((method, code), n) in &self.requests {
            let _ = writeln!(out, "{REQUESTS}{{method=\"{method}\",code=\"{code}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP {DURATION} Time from a request's arrival to its answer."
        );
        let _ = writeln!(out, "# TYPE {DURATION} histogram");
        let mut cumulative = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n;
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), ToString::to_string);
            let _ = writeln!(out, "{DURATION}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{DURATION}_sum {}", self.sum);
        let _ = writeln!(out, "{DURATION}_count {}", self.count);
        out
    }
}

/// Whether request number `n` (1-based) of a tenant failing `per_million`
/// of its requests fails: exactly `⌊n · rate⌋` of the first `n` do, spread
/// evenly, so a test knows the count without a random seed.
pub(super) fn fails(n: u64, per_million: u32) -> bool {
    let p = u128::from(per_million.min(1_000_000));
    let n = u128::from(n);
    n * p / 1_000_000 > n.saturating_sub(1) * p / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_fraction_fails() {
        let failed = |per_million, n| (1..=n).filter(|&i| fails(i, per_million)).count();
        assert_eq!(failed(20_000, 5000), 100);
        assert_eq!(failed(1_000, 5000), 5);
        assert_eq!(failed(0, 5000), 0);
        assert_eq!(failed(1_000_000, 7), 7);
        assert_eq!(failed(2_000_000, 7), 7, "more than all is all");
        assert_eq!(failed(250_000, 3), 0);
        assert_eq!(failed(250_000, 4), 1);
    }

    #[test]
    fn exposition() {
        let mut m = Metrics::default();
        m.record("GET", 200, Duration::from_millis(3));
        m.record("GET", 500, Duration::from_millis(70));
        m.record("POST", 201, Duration::from_secs(20));
        let text = m.render();
        for line in [
            "canary_tenant_requests_total{method=\"GET\",code=\"200\"} 1",
            "canary_tenant_requests_total{method=\"GET\",code=\"500\"} 1",
            "canary_tenant_requests_total{method=\"POST\",code=\"201\"} 1",
            "canary_tenant_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "canary_tenant_request_duration_seconds_bucket{le=\"0.05\"} 1",
            "canary_tenant_request_duration_seconds_bucket{le=\"0.1\"} 2",
            "canary_tenant_request_duration_seconds_bucket{le=\"10\"} 2",
            "canary_tenant_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "canary_tenant_request_duration_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(Metrics::default()
            .render()
            .contains("canary_tenant_requests_total{method=\"GET\",code=\"500\"} 0"));
    }
}
