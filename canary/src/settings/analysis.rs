//! `[analysis]` and `[[analysis.metric]]`: which Prometheus to ask, for how
//! long, and the metrics, each with its queries resolved per cohort. Only
//! variable names for credentials live in the file.

use std::path::PathBuf;
use std::time::Duration;

use canary_core::analysis::{Cohorts, Metric, Rule};
use canary_core::UsageError;
use serde::Deserialize;

/// `[analysis]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnalysisSection {
    pub(crate) prometheus: Option<String>,
    pub(crate) window: Option<String>,
    pub(crate) interval: Option<String>,
    pub(crate) cohort_label: Option<String>,
    pub(crate) canary_cohort: Option<String>,
    pub(crate) baseline_cohort: Option<String>,
    pub(crate) confidence: Option<f64>,
    pub(crate) token_env: Option<String>,
    pub(crate) username_env: Option<String>,
    pub(crate) password_env: Option<String>,
    pub(crate) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) metric: Vec<MetricSection>,
}

/// A query as written: one template naming the cohort with `{{cohort}}`,
/// or one query per cohort.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum QuerySection {
    Template(String),
    PerCohort { canary: String, baseline: String },
}

/// `[[analysis.metric]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricSection {
    pub(crate) name: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) errors: Option<QuerySection>,
    pub(crate) total: Option<QuerySection>,
    pub(crate) quantile: Option<QuerySection>,
    pub(crate) query: Option<String>,
    pub(crate) max_increase: Option<f64>,
    pub(crate) max_rate: Option<f64>,
    pub(crate) max_ratio: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) min: Option<f64>,
    pub(crate) min_requests: Option<f64>,
    pub(crate) confidence: Option<f64>,
}

/// The metric analysis, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisSettings {
    /// Prometheus' base URL.
    pub prometheus: String,
    /// How long a verify watches the metrics (0: one read).
    pub window: Duration,
    /// How often it reads them.
    pub interval: Duration,
    /// The variable holding a bearer token for Prometheus.
    pub token_env: Option<String>,
    /// The variables holding a basic-auth user and password.
    pub basic_env: Option<(String, String)>,
    /// A CA bundle (PEM) for Prometheus' certificate.
    pub ca_file: Option<PathBuf>,
    /// The metrics, queries resolved per cohort.
    pub metrics: Vec<Metric>,
}

fn err(file: &str, key: &str, problem: &str, fix: &str) -> UsageError {
    UsageError::new(format!("{key} (file {file})"), problem, fix)
}

fn var_name(file: &str, key: &str, raw: &str) -> Result<String, UsageError> {
    if !raw.is_empty()
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !raw.starts_with(|c: char| c.is_ascii_digit())
    {
        Ok(raw.to_string())
    } else {
        Err(err(
            file,
            &format!("analysis.{key}"),
            "is not an environment variable name",
            "name the variable that holds the credential (e.g. PROMETHEUS_TOKEN): credentials never go in the file",
        ))
    }
}

/// Prometheus' duration syntax for `d`, in whole seconds (`300s`).
fn promql_duration(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

pub(super) fn resolve(
    file_name: &str,
    section: Option<AnalysisSection>,
) -> Result<Option<AnalysisSettings>, UsageError> {
    let Some(s) = section else {
        return Ok(None);
    };
    let f = file_name;
    let prometheus = match s.prometheus {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => {
            return Err(err(
                f,
                &format!("analysis.prometheus `{u}`"),
                "is not an http(s) URL",
                "give Prometheus' base URL, e.g. http://prometheus:9090",
            ))
        }
        None => {
            return Err(err(
                f,
                "[analysis]",
                "has no prometheus URL",
                "add prometheus = \"http://prometheus:9090\", or remove [analysis] to gate on the smoke suite alone",
            ))
        }
    };
    let dur = |key: &str, raw: Option<String>, default: &str| -> Result<Duration, UsageError> {
        let raw = raw.unwrap_or_else(|| default.to_string());
        humantime::parse_duration(raw.trim()).map_err(|e| {
            err(
                f,
                &format!("analysis.{key} `{raw}`"),
                &format!("is not a duration ({e})"),
                "write e.g. 5m, 30s or 0s",
            )
        })
    };
    let window = dur("window", s.window, "5m")?;
    let interval = dur("interval", s.interval, "1m")?;
    if !window.is_zero() && interval.is_zero() {
        return Err(err(
            f,
            "analysis.interval",
            "is 0 while the window is not",
            "read the metrics every minute or so (interval = \"1m\"), or set window = \"0s\" for one read",
        ));
    }
    let confidence = s.confidence.unwrap_or(0.95);
    check_confidence(f, "analysis.confidence", confidence)?;
    let label = s.cohort_label.unwrap_or_else(|| "release".to_string());
    if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err(
            f,
            &format!("analysis.cohort_label `{label}`"),
            "is not a Prometheus label name",
            "name the label that tells the cohorts apart, e.g. cohort_label = \"release\"",
        ));
    }
    let canary_value = s.canary_cohort.unwrap_or_else(|| "canary".to_string());
    let baseline_value = s.baseline_cohort.unwrap_or_else(|| "baseline".to_string());
    let matcher = |v: &str| {
        format!(
            "{label}=\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        )
    };
    let (canary_matcher, baseline_matcher) = (matcher(&canary_value), matcher(&baseline_value));
    let window_text = promql_duration(window);
    let fill = |q: &str, cohort: &str| {
        q.replace("{{cohort}}", cohort)
            .replace("{{window}}", &window_text)
    };
    let token_env = s
        .token_env
        .as_deref()
        .map(|v| var_name(f, "token_env", v))
        .transpose()?;
    let basic_env = match (s.username_env.as_deref(), s.password_env.as_deref()) {
        (None, None) => None,
        (Some(u), Some(p)) => Some((
            var_name(f, "username_env", u)?,
            var_name(f, "password_env", p)?,
        )),
        _ => {
            return Err(err(
                f,
                "analysis.username_env / password_env",
                "is half a credential pair",
                "set both (basic auth), or token_env alone (a bearer token)",
            ))
        }
    };
    if token_env.is_some() && basic_env.is_some() {
        return Err(err(
            f,
            "analysis.token_env and username_env",
            "are both set",
            "use one: a bearer token (token_env) or basic auth (username_env + password_env)",
        ));
    }

    let mut metrics = Vec::with_capacity(s.metric.len());
    for (i, m) in s.metric.into_iter().enumerate() {
        let at = |key: &str| format!("analysis.metric[{}].{key}", i + 1);
        let name = match m.name {
            Some(n) if !n.trim().is_empty() => n,
            _ => {
                return Err(err(
                    f,
                    &format!("analysis.metric[{}]", i + 1),
                    "has no name",
                    "add name = \"http-errors\": the report names each verdict by it",
                ))
            }
        };
        if metrics.iter().any(|x: &Metric| x.name == name) {
            return Err(err(
                f,
                &at("name"),
                &format!("`{name}` is used twice"),
                "give each metric its own name",
            ));
        }
        let cohorts = |key: &str, q: Option<QuerySection>| -> Result<Cohorts, UsageError> {
            match q {
                Some(QuerySection::Template(t)) if t.contains("{{cohort}}") => Ok(Cohorts {
                    canary: fill(&t, &canary_matcher),
                    baseline: fill(&t, &baseline_matcher),
                }),
                Some(QuerySection::Template(_)) => Err(err(
                    f,
                    &at(key),
                    "does not name the cohort",
                    "put {{cohort}} inside the selector (e.g. http_requests_total{ {{cohort}} }), or give one query per cohort: { canary = \"…\", baseline = \"…\" }",
                )),
                Some(QuerySection::PerCohort { canary, baseline }) => Ok(Cohorts {
                    canary: fill(&canary, &canary_matcher),
                    baseline: fill(&baseline, &baseline_matcher),
                }),
                None => Err(err(
                    f,
                    &at(key),
                    "is missing",
                    &format!("a {} metric needs `{key}`", m.kind.as_deref().unwrap_or("?")),
                )),
            }
        };
        let positive = |key: &str, v: Option<f64>| -> Result<Option<f64>, UsageError> {
            match v {
                Some(x) if !(x.is_finite() && x >= 0.0) => Err(err(
                    f,
                    &at(key),
                    &format!("`{x}` is not a number ≥ 0"),
                    "write a non-negative number",
                )),
                other => Ok(other),
            }
        };
        let kind = m.kind.clone().unwrap_or_default();
        let rule = match kind.as_str() {
            "error_rate" => {
                let max_increase = positive("max_increase", m.max_increase)?.unwrap_or(0.01);
                let max_rate = positive("max_rate", m.max_rate)?;
                if max_increase > 1.0 || max_rate.is_some_and(|r| r > 1.0) {
                    return Err(err(
                        f,
                        &at("max_increase"),
                        "is above 1",
                        "rates are fractions: 0.01 is one point (1%)",
                    ));
                }
                Rule::ErrorRate {
                    errors: cohorts("errors", m.errors)?,
                    total: cohorts("total", m.total)?,
                    max_increase,
                    max_rate,
                }
            }
            "latency" => Rule::Latency {
                quantile: cohorts("quantile", m.quantile)?,
                total: m.total.map(|q| cohorts("total", Some(q))).transpose()?,
                max_ratio: match positive("max_ratio", m.max_ratio)? {
                    Some(r) if r > 0.0 => r,
                    _ => {
                        return Err(err(
                            f,
                            &at("max_ratio"),
                            "is missing or 0",
                            "write the largest canary / baseline ratio that passes, e.g. max_ratio = 1.5",
                        ))
                    }
                },
            },
            "threshold" => {
                let Some(query) = m.query else {
                    return Err(err(
                        f,
                        &at("query"),
                        "is missing",
                        "a threshold metric needs `query`, the canary's value",
                    ));
                };
                if m.max.is_none() && m.min.is_none() {
                    return Err(err(
                        f,
                        &format!("analysis.metric[{}]", i + 1),
                        "has neither max nor min",
                        "bound the value: max = 0.8, min = 0.1, or both",
                    ));
                }
                let total = match m.total {
                    Some(QuerySection::Template(t)) => Some(fill(&t, &canary_matcher)),
                    Some(QuerySection::PerCohort { canary, .. }) => {
                        Some(fill(&canary, &canary_matcher))
                    }
                    None => None,
                };
                Rule::Threshold {
                    query: fill(&query, &canary_matcher),
                    total,
                    max: m.max,
                    min: m.min,
                }
            }
            other => {
                return Err(err(
                    f,
                    &format!("{} `{other}`", at("kind")),
                    "is not a metric kind",
                    "write kind = \"error_rate\", \"latency\" or \"threshold\"",
                ))
            }
        };
        let confidence = m.confidence.unwrap_or(confidence);
        check_confidence(f, &at("confidence"), confidence)?;
        metrics.push(Metric {
            name,
            rule,
            min_requests: positive("min_requests", m.min_requests)?.unwrap_or(100.0),
            confidence,
        });
    }
    if metrics.is_empty() {
        return Err(err(
            f,
            "[analysis]",
            "has no [[analysis.metric]]",
            "add at least one metric, or remove [analysis]",
        ));
    }
    Ok(Some(AnalysisSettings {
        prometheus,
        window,
        interval,
        token_env,
        basic_env,
        ca_file: s.ca_file,
        metrics,
    }))
}

fn check_confidence(file: &str, key: &str, c: f64) -> Result<(), UsageError> {
    if c > 0.5 && c < 1.0 {
        Ok(())
    } else {
        Err(err(
            file,
            &format!("{key} `{c}`"),
            "is not between 0.5 and 1",
            "write the one-sided confidence of a verdict, e.g. 0.95",
        ))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the values compared are parsed, not computed
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<AnalysisSettings>, UsageError> {
        #[derive(Deserialize)]
        struct Wrapper {
            analysis: Option<AnalysisSection>,
        }
        let w: Wrapper = toml::from_str(text).expect("toml");
        resolve("canary.toml", w.analysis)
    }

    #[test]
    fn the_design_example_resolves_cohorts_and_defaults() {
        let a = parse(
            r#"
[analysis]
prometheus = "http://prometheus:9090/"
window = "5m"
cohort_label = "release"

[[analysis.metric]]
name = "http-errors"
kind = "error_rate"
errors = 'sum(increase(http_requests_total{code=~"5..", {{cohort}}}[{{window}}]))'
total = 'sum(increase(http_requests_total{ {{cohort}} }[5m]))'
max_increase = 0.01
min_requests = 200
"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.prometheus, "http://prometheus:9090");
        assert_eq!(a.window, Duration::from_secs(300));
        assert_eq!(a.interval, Duration::from_secs(60));
        let m = &a.metrics[0];
        assert_eq!(m.min_requests, 200.0);
        assert_eq!(m.confidence, 0.95);
        let Rule::ErrorRate { errors, total, .. } = &m.rule else {
            panic!("{m:?}")
        };
        assert_eq!(
            errors.canary,
            r#"sum(increase(http_requests_total{code=~"5..", release="canary"}[300s]))"#
        );
        assert_eq!(
            total.baseline,
            r#"sum(increase(http_requests_total{ release="baseline" }[5m]))"#
        );
    }

    #[test]
    fn bad_analysis_settings_are_named_with_their_fix() {
        for (text, words) in [
            ("[analysis]\nwindow = \"5m\"\n", "has no prometheus URL"),
            ("[analysis]\nprometheus = \"prom:9090\"\n", "is not an http(s) URL"),
            (
                "[analysis]\nprometheus = \"http://p\"\n[[analysis.metric]]\nname = \"e\"\nkind = \"error_rate\"\nerrors = \"sum(x)\"\ntotal = \"sum(y{ {{cohort}} })\"\n",
                "does not name the cohort",
            ),
            (
                "[analysis]\nprometheus = \"http://p\"\n[[analysis.metric]]\nname = \"e\"\nkind = \"p99\"\n",
                "is not a metric kind",
            ),
            (
                "[analysis]\nprometheus = \"http://p\"\nconfidence = 1.5\n[[analysis.metric]]\nname = \"t\"\nkind = \"threshold\"\nquery = \"q\"\nmax = 1\n",
                "is not between 0.5 and 1",
            ),
            (
                "[analysis]\nprometheus = \"http://p\"\ntoken_env = \"abc-def\"\n",
                "is not an environment variable name",
            ),
            ("[analysis]\nprometheus = \"http://p\"\n", "has no [[analysis.metric]]"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(words), "{text}: {e}");
            assert!(e.contains("canary.toml"), "{e}");
        }
    }

    #[test]
    fn per_cohort_queries_and_no_section() {
        assert_eq!(parse("").unwrap(), None);
        let a = parse(
            "[analysis]\nprometheus = \"https://p\"\nwindow = \"0s\"\n[[analysis.metric]]\nname = \"p95\"\nkind = \"latency\"\nquantile = { canary = \"qc\", baseline = \"qb\" }\nmax_ratio = 1.5\n",
        )
        .unwrap()
        .unwrap();
        let Rule::Latency { quantile, .. } = &a.metrics[0].rule else {
            panic!()
        };
        assert_eq!(
            (quantile.canary.as_str(), quantile.baseline.as_str()),
            ("qc", "qb")
        );
    }
}
