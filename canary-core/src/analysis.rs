//! Metric analysis: the canary cohort against the baseline cohort, judged
//! from numbers a metric source (Prometheus) returns.
//!
//! [`MetricSource`] is the port (one instant query, one value per series);
//! [`Metric`] is a configured metric with its queries already resolved per
//! cohort; [`judge`] is pure: given the [`Sample`] read for a metric, it
//! returns a [`Verdict`] with every number behind it. [`analyze`] reads and
//! judges every metric once.
//!
//! The rules, in the words a reader of the summary needs:
//! - **Never a pass on too little data.** Fewer than `min_requests` in
//!   either cohort, an empty result, `NaN`, or a failing query is
//!   `inconclusive`. Query errors are counted apart from metric failures.
//! - **`error_rate`** compares two proportions. It fails when the canary is
//!   worse than the baseline by more than `max_increase` (in points) with
//!   the configured confidence: the lower end of Newcombe's hybrid score
//!   interval for canary − baseline is above `max_increase`. It passes only
//!   when the upper end is at or below it; in between the data cannot tell
//!   (`inconclusive`). A near-zero baseline is bounded by its Wilson
//!   interval, never taken as exactly zero: 0 errors in 10,000 is "at most
//!   0.03%", so neither any canary error nor no canary error decides alone.
//!   An optional `max_rate` caps the canary's own rate: fail when the lower
//!   end of its Wilson interval is above the cap.
//! - **`latency`** compares a quantile: canary / baseline must be at most
//!   `max_ratio`. A quantile carries no sample size, so `min_requests` is
//!   judged on the request-count queries when they are given.
//! - **`threshold`** bounds the canary's value alone (`max` and/or `min`).

mod stats;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::Error;

pub use stats::{newcombe, normal_cdf, normal_quantile, wilson, z_test_p};

/// The metric store canary reads: an instant query, answered with the value
/// of every series it returns (none: an empty vector).
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// Evaluates `query` now.
    async fn query(&self, query: &str) -> Result<Vec<f64>, Error>;

    /// Evaluates `query` at `at_ms` (ms since the Unix epoch). One read of
    /// a metric evaluates all its queries at one instant, so errors and
    /// totals cover the same window. A source without evaluation times
    /// answers [`MetricSource::query`].
    async fn query_at(&self, query: &str, at_ms: u64) -> Result<Vec<f64>, Error> {
        let _ = at_ms;
        self.query(query).await
    }
}

/// An in-memory [`MetricSource`]: each query answers its scripted values;
/// an unscripted query fails, as an unknown metric name would in PromQL
/// terms of "no such query here". Counts the queries it answered.
#[derive(Debug, Clone, Default)]
pub struct ScriptedMetrics {
    answers: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<f64>>>>,
    queries: Arc<std::sync::atomic::AtomicUsize>,
}

impl ScriptedMetrics {
    /// A source with no query scripted.
    pub fn new() -> Self {
        Self::default()
    }

    /// `query` answers one series of `value`.
    #[must_use]
    pub fn with(self, query: &str, value: f64) -> Self {
        self.set(query, vec![value]);
        self
    }

    /// Sets what `query` answers (empty: no series).
    pub fn set(&self, query: &str, values: Vec<f64>) {
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(query.to_string(), values);
    }

    /// How many queries were answered or refused.
    pub fn queries(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl MetricSource for ScriptedMetrics {
    async fn query(&self, query: &str) -> Result<Vec<f64>, Error> {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(query)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    crate::error::ErrorKind::Invalid,
                    format!("bad_data: unknown query `{query}`"),
                )
            })
    }
}

/// A configured analysis: where the metrics come from, which metrics, and
/// how long to watch them.
#[derive(Clone)]
pub struct Analysis {
    /// The metric store.
    pub source: Arc<dyn MetricSource>,
    /// The metrics, queries resolved per cohort.
    pub metrics: Vec<Metric>,
    /// How long the metrics are watched (0: one read).
    pub window: Duration,
    /// How often they are read during the window.
    pub interval: Duration,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("metrics", &self.metrics)
            .field("window", &self.window)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Analysis {
    /// Reads and judges every metric every `interval` over `window` (once
    /// when the window is 0), stopping at the first read in which a metric
    /// fails. The verdicts are the last read's: the one with the most data.
    pub async fn watch(&self, clock: &dyn Clock) -> AnalysisReport {
        let reads = if self.window.is_zero() || self.interval.is_zero() {
            1
        } else {
            1 + u32::try_from(self.window.as_millis() / self.interval.as_millis())
                .unwrap_or(u32::MAX)
        };
        let mut report = AnalysisReport::default();
        for i in 0..reads {
            if i > 0 {
                clock.sleep(self.interval).await;
            }
            report = analyze(self.source.as_ref(), &self.metrics, Some(clock.now_ms())).await;
            report.samples = i + 1;
            if report.status() == VerdictStatus::Fail {
                break;
            }
        }
        report
    }
}

/// A query per cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cohorts {
    /// The canary cohort's query.
    pub canary: String,
    /// The baseline cohort's query.
    pub baseline: String,
}

/// What a metric measures and how it is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// Errors over requests, canary against baseline.
    ErrorRate {
        /// The error count per cohort.
        errors: Cohorts,
        /// The request count per cohort.
        total: Cohorts,
        /// How much worse (a fraction: 0.01 is one point) the canary may be.
        max_increase: f64,
        /// The canary's own rate may not exceed this, if set.
        max_rate: Option<f64>,
    },
    /// A latency quantile, canary over baseline.
    Latency {
        /// The quantile per cohort (e.g. `histogram_quantile(0.95, …)`).
        quantile: Cohorts,
        /// The request count per cohort, for `min_requests`.
        total: Option<Cohorts>,
        /// The largest canary / baseline ratio that passes.
        max_ratio: f64,
    },
    /// An absolute bound on the canary alone.
    Threshold {
        /// The canary's value.
        query: String,
        /// The request count of the canary, for `min_requests`.
        total: Option<String>,
        /// Passes at or below.
        max: Option<f64>,
        /// Passes at or above.
        min: Option<f64>,
    },
}

impl Rule {
    /// The kind's one spelling (`error_rate`, `latency`, `threshold`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ErrorRate { .. } => "error_rate",
            Self::Latency { .. } => "latency",
            Self::Threshold { .. } => "threshold",
        }
    }

    /// Every query of the rule, each with the name [`Sample`] keeps it under.
    pub fn queries(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        match self {
            Self::ErrorRate { errors, total, .. } => {
                out.push(("canary_errors", errors.canary.as_str()));
                out.push(("baseline_errors", errors.baseline.as_str()));
                out.push(("canary_total", total.canary.as_str()));
                out.push(("baseline_total", total.baseline.as_str()));
            }
            Self::Latency {
                quantile, total, ..
            } => {
                out.push(("canary", quantile.canary.as_str()));
                out.push(("baseline", quantile.baseline.as_str()));
                if let Some(t) = total {
                    out.push(("canary_total", t.canary.as_str()));
                    out.push(("baseline_total", t.baseline.as_str()));
                }
            }
            Self::Threshold { query, total, .. } => {
                out.push(("canary", query.as_str()));
                if let Some(t) = total {
                    out.push(("canary_total", t.as_str()));
                }
            }
        }
        out
    }
}

/// A configured metric, queries resolved per cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Its name (`http-errors`).
    pub name: String,
    /// What it measures.
    pub rule: Rule,
    /// Fewer requests than this in either cohort: no verdict.
    pub min_requests: f64,
    /// The one-sided confidence of a statistical verdict (0.95).
    pub confidence: f64,
}

/// What one read of a metric returned: the value of each query by the name
/// [`Rule::queries`] gives it (`None`: no series), or the first query that
/// failed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    /// `(name, value)` per query, in the rule's order.
    pub values: Vec<(&'static str, Option<f64>)>,
    /// The query that failed and why.
    pub error: Option<String>,
}

impl Sample {
    fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| *v)
    }
}

/// A metric's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    /// Within bounds, with enough data to say so.
    Pass,
    /// Outside bounds, with enough data to say so.
    Fail,
    /// No verdict: too little data, no data, or a failing query.
    Inconclusive,
}

impl VerdictStatus {
    /// The status's one spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Inconclusive => "inconclusive",
        }
    }
}

/// A metric's verdict and every number behind it. Only finite numbers are
/// kept (a `NaN` is "no data"), so equality is an equivalence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The metric.
    pub name: String,
    /// `error_rate`, `latency` or `threshold`.
    pub kind: String,
    /// Pass, fail or inconclusive.
    pub status: VerdictStatus,
    /// The canary's value (a rate, a quantile, the bounded value).
    pub canary: Option<f64>,
    /// The baseline's value.
    pub baseline: Option<f64>,
    /// The bound, in words (`canary − baseline ≤ 1.00 pt`).
    pub threshold: String,
    /// Requests in the canary cohort.
    pub canary_requests: Option<f64>,
    /// Requests in the baseline cohort.
    pub baseline_requests: Option<f64>,
    /// The one-sided p-value of "worse by more than the bound" (error rate).
    pub p_value: Option<f64>,
    /// The confidence interval of the compared quantity, `(lower, upper)`.
    pub interval: Option<(f64, f64)>,
    /// Whether a query failed (counted apart from metric failures).
    pub query_error: bool,
    /// One sentence a person can check.
    pub detail: String,
}

impl Eq for Verdict {}

/// Every metric's verdict from one analysis.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AnalysisReport {
    /// Per metric, in configuration order.
    pub verdicts: Vec<Verdict>,
    /// How many times the metrics were read.
    pub samples: u32,
}

impl Eq for AnalysisReport {}

impl AnalysisReport {
    /// Metrics that failed.
    pub fn failed(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts
            .iter()
            .filter(|v| v.status == VerdictStatus::Fail)
    }

    /// Metrics without a verdict.
    pub fn inconclusive(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts
            .iter()
            .filter(|v| v.status == VerdictStatus::Inconclusive)
    }

    /// Verdicts whose queries failed (a subset of the inconclusive ones).
    pub fn query_errors(&self) -> usize {
        self.verdicts.iter().filter(|v| v.query_error).count()
    }

    /// Fail when any metric failed, inconclusive when any has no verdict,
    /// else pass (also when no metric is configured).
    pub fn status(&self) -> VerdictStatus {
        if self.failed().next().is_some() {
            VerdictStatus::Fail
        } else if self.inconclusive().next().is_some() {
            VerdictStatus::Inconclusive
        } else {
            VerdictStatus::Pass
        }
    }

    /// One line for the run's reason: which metrics failed or had no
    /// verdict, with their numbers.
    pub fn summary(&self) -> String {
        let bad: Vec<String> = self
            .failed()
            .chain(self.inconclusive())
            .map(|v| format!("metric `{}` {}: {}", v.name, v.status.as_str(), v.detail))
            .collect();
        if bad.is_empty() {
            format!("all {} metrics passed", self.verdicts.len())
        } else {
            bad.join("; ")
        }
    }
}

/// Reads every query of `metric` from `source`, all evaluated at `at_ms`
/// when given (stopping at the first that fails).
pub async fn read(source: &dyn MetricSource, metric: &Metric, at_ms: Option<u64>) -> Sample {
    let mut sample = Sample::default();
    for (name, query) in metric.rule.queries() {
        let answer = match at_ms {
            Some(at) => source.query_at(query, at).await,
            None => source.query(query).await,
        };
        match answer {
            Ok(values) => {
                let value = if values.is_empty() {
                    None
                } else {
                    Some(values.iter().sum())
                };
                sample.values.push((name, value));
            }
            Err(e) => {
                sample.error = Some(format!("query `{name}` failed: {}", e.chain()));
                return sample;
            }
        }
    }
    sample
}

/// Reads and judges every metric once, every query evaluated at `at_ms`
/// when given.
pub async fn analyze(
    source: &dyn MetricSource,
    metrics: &[Metric],
    at_ms: Option<u64>,
) -> AnalysisReport {
    let mut verdicts = Vec::with_capacity(metrics.len());
    for m in metrics {
        let sample = read(source, m, at_ms).await;
        verdicts.push(judge(m, &sample));
    }
    AnalysisReport {
        verdicts,
        samples: 1,
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn pts(x: f64) -> String {
    format!("{:.2} pt", x * 100.0)
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

/// Judges one metric from its sample. Pure.
pub fn judge(metric: &Metric, sample: &Sample) -> Verdict {
    let mut v = Verdict {
        name: metric.name.clone(),
        kind: metric.rule.kind().to_string(),
        status: VerdictStatus::Inconclusive,
        canary: None,
        baseline: None,
        threshold: threshold_words(&metric.rule),
        canary_requests: None,
        baseline_requests: None,
        p_value: None,
        interval: None,
        query_error: false,
        detail: String::new(),
    };
    if let Some(e) = &sample.error {
        v.query_error = true;
        v.detail = format!("{e}; no verdict");
        return v;
    }
    // Every query answered (a failed one ended the read above); a query
    // without a series, or a value that is no number, is no verdict.
    let names = |keep: fn(Option<f64>) -> bool| -> Vec<&str> {
        sample
            .values
            .iter()
            .filter(|(_, x)| keep(*x))
            .map(|(n, _)| *n)
            .collect()
    };
    let absent = names(|x| x.is_none());
    if !absent.is_empty() {
        v.detail = format!("no data for {}; no verdict", absent.join(", "));
        return v;
    }
    let not_numbers = names(|x| x.is_some_and(|x| !x.is_finite()));
    if !not_numbers.is_empty() {
        v.detail = format!("{} is not a number; no verdict", not_numbers.join(", "));
        return v;
    }
    // Present and finite from here on.
    let value = |name: &str| sample.get(name).unwrap_or_default();
    match &metric.rule {
        Rule::ErrorRate {
            max_increase,
            max_rate,
            ..
        } => {
            let (ce, be, cn, bn) = (
                value("canary_errors"),
                value("baseline_errors"),
                value("canary_total"),
                value("baseline_total"),
            );
            v.canary_requests = Some(cn);
            v.baseline_requests = Some(bn);
            if let Some(why) = too_few(cn, Some(bn), metric.min_requests) {
                v.detail = why;
                return v;
            }
            if ce < 0.0 || be < 0.0 || ce > cn || be > bn {
                v.detail = format!(
                    "errors outside 0..requests (canary {} of {}, baseline {} of {}); no verdict",
                    num(ce),
                    num(cn),
                    num(be),
                    num(bn)
                );
                return v;
            }
            let (pc, pb) = (ce / cn, be / bn);
            v.canary = Some(pc);
            v.baseline = Some(pb);
            let z = normal_quantile(metric.confidence);
            let (lower, upper) = newcombe(ce, cn, be, bn, z);
            v.interval = Some((lower, upper));
            v.p_value = z_test_p(ce, cn, be, bn, *max_increase);
            let conf = format!("{:.0}%", metric.confidence * 100.0);
            let seen = format!(
                "canary {} ({} of {}) vs baseline {} ({} of {}); canary − baseline in [{}, {}] at {conf}",
                pct(pc),
                num(ce),
                num(cn),
                pct(pb),
                num(be),
                num(bn),
                pts(lower),
                pts(upper)
            );
            let cap_lower = max_rate.map(|_| wilson(ce, cn, z).0);
            if let (Some(cap), Some(low)) = (max_rate, cap_lower) {
                if low > *cap {
                    v.status = VerdictStatus::Fail;
                    v.detail = format!(
                        "{seen}; the canary's rate is above the cap {} (at least {} at {conf})",
                        pct(*cap),
                        pct(low)
                    );
                    return v;
                }
            }
            if lower > *max_increase {
                v.status = VerdictStatus::Fail;
                v.detail = format!("{seen}: worse by more than {}", pts(*max_increase));
            } else if upper <= *max_increase {
                v.status = VerdictStatus::Pass;
                v.detail = format!("{seen}: not worse by more than {}", pts(*max_increase));
            } else {
                v.detail = format!(
                    "{seen}: the data cannot tell whether it is worse by more than {}; no verdict",
                    pts(*max_increase)
                );
            }
        }
        Rule::Latency { max_ratio, .. } => {
            let (c, b) = (value("canary"), value("baseline"));
            v.canary = Some(c);
            v.baseline = Some(b);
            v.canary_requests = sample.get("canary_total");
            v.baseline_requests = sample.get("baseline_total");
            if let Some(cn) = v.canary_requests {
                if let Some(why) = too_few(cn, v.baseline_requests, metric.min_requests) {
                    v.detail = why;
                    return v;
                }
            }
            if b <= 0.0 {
                v.detail = format!(
                    "baseline {} is not above 0, so there is no ratio; no verdict",
                    num(b)
                );
                return v;
            }
            let ratio = c / b;
            let seen = format!("canary {} vs baseline {}: ratio {ratio:.2}", num(c), num(b));
            if ratio > *max_ratio {
                v.status = VerdictStatus::Fail;
                v.detail = format!("{seen} > {max_ratio:.2}");
            } else {
                v.status = VerdictStatus::Pass;
                v.detail = format!("{seen} ≤ {max_ratio:.2}");
            }
        }
        Rule::Threshold { max, min, .. } => {
            let c = value("canary");
            v.canary = Some(c);
            v.canary_requests = sample.get("canary_total");
            if let Some(cn) = v.canary_requests {
                if let Some(why) = too_few(cn, None, metric.min_requests) {
                    v.detail = why;
                    return v;
                }
            }
            let above = max.filter(|m| c > *m);
            let below = min.filter(|m| c < *m);
            if let Some(m) = above {
                v.status = VerdictStatus::Fail;
                v.detail = format!("canary {} > {}", num(c), num(m));
            } else if let Some(m) = below {
                v.status = VerdictStatus::Fail;
                v.detail = format!("canary {} < {}", num(c), num(m));
            } else {
                v.status = VerdictStatus::Pass;
                v.detail = format!("canary {} within {}", num(c), v.threshold);
            }
        }
    }
    v
}

fn too_few(canary: f64, baseline: Option<f64>, min: f64) -> Option<String> {
    let short: Vec<String> = [("canary", Some(canary)), ("baseline", baseline)]
        .into_iter()
        .filter_map(|(who, n)| n.filter(|n| *n < min).map(|n| format!("{who} {}", num(n))))
        .collect();
    (!short.is_empty()).then(|| {
        format!(
            "too few requests ({} < min_requests {}); no verdict",
            short.join(", "),
            num(min)
        )
    })
}

fn threshold_words(rule: &Rule) -> String {
    match rule {
        Rule::ErrorRate {
            max_increase,
            max_rate,
            ..
        } => {
            let mut s = format!("canary − baseline ≤ {}", pts(*max_increase));
            if let Some(cap) = max_rate {
                let _ = write!(s, ", canary ≤ {}", pct(*cap));
            }
            s
        }
        Rule::Latency { max_ratio, .. } => format!("canary / baseline ≤ {max_ratio:.2}"),
        Rule::Threshold { max, min, .. } => match (min, max) {
            (Some(lo), Some(hi)) => format!("{} ≤ canary ≤ {}", num(*lo), num(*hi)),
            (None, Some(hi)) => format!("canary ≤ {}", num(*hi)),
            (Some(lo), None) => format!("canary ≥ {}", num(*lo)),
            (None, None) => "no bound".to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
