//! The Prometheus HTTP API's answers: the `{"status": …, "data": …}`
//! envelope, the result types, and what every failing answer means (one
//! function, [`answer_error`]).

use std::collections::BTreeMap;

use canary_core::{Error, ErrorKind};
use serde::Deserialize;
use serde_json::Value;

/// Body characters quoted at most in a message.
const SNIPPET: usize = 300;

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the Unix epoch (Prometheus keeps milliseconds).
    pub time: f64,
    /// The value; `NaN` and the infinities are kept as such.
    pub value: f64,
}

/// A series a query returned: its labels and its points (one for an
/// instant vector or a scalar, a range for a matrix).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// The series' labels (none for a scalar or an aggregate without `by`).
    pub labels: BTreeMap<String, String>,
    /// The points, oldest first.
    pub points: Vec<Point>,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorItem>),
    Scalar((f64, String)),
    Matrix(Vec<MatrixItem>),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    histogram: Option<Value>,
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    #[serde(default)]
    histograms: Option<Value>,
}

/// A sample value as Prometheus writes it: a decimal string, or `NaN`,
/// `+Inf`, `-Inf`.
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

fn point((time, value): &(f64, String)) -> Result<Point, String> {
    let value = parse_value(value).ok_or_else(|| format!("the value `{value}` is not a number"))?;
    Ok(Point { time: *time, value })
}

const NATIVE: &str = "a native histogram is not a number; \
                      query a quantile of it (histogram_quantile) or its count";

/// The series of a successful answer's `data`.
fn series(data: Value) -> Result<Vec<Series>, String> {
    let data: Data = serde_json::from_value(data).map_err(|e| format!("unexpected data: {e}"))?;
    match data {
        Data::Vector(items) => items
            .into_iter()
            .map(|item| {
                let Some(value) = item.value else {
                    return Err(if item.histogram.is_some() {
                        NATIVE.to_string()
                    } else {
                        "a vector item has no value".to_string()
                    });
                };
                Ok(Series {
                    labels: item.metric,
                    points: vec![point(&value)?],
                })
            })
            .collect(),
        Data::Scalar(value) => Ok(vec![Series {
            labels: BTreeMap::new(),
            points: vec![point(&value)?],
        }]),
        Data::Matrix(items) => items
            .into_iter()
            .map(|item| {
                if item.values.is_empty() && item.histograms.is_some() {
                    return Err(NATIVE.to_string());
                }
                Ok(Series {
                    labels: item.metric,
                    points: item.values.iter().map(point).collect::<Result<_, _>>()?,
                })
            })
            .collect(),
        Data::String(_) => Err("the query returns a string, not a number".to_string()),
    }
}

/// What one request was, for messages.
pub(crate) struct Call<'a> {
    /// The base URL (`http://host/prometheus`).
    pub(crate) base: &'a str,
    /// The query, as sent.
    pub(crate) query: &'a str,
    /// How the credentials are named (`the bearer token`, `no credentials`).
    pub(crate) auth: &'a str,
    /// Whether credentials were sent.
    pub(crate) has_auth: bool,
    /// Texts to scrub from anything quoted.
    pub(crate) secrets: &'a [String],
}

impl Call<'_> {
    fn quoted_query(&self) -> String {
        let mut q: String = self.query.chars().take(SNIPPET).collect();
        if self.query.chars().count() > SNIPPET {
            q.push('…');
        }
        q
    }

    fn error(&self, kind: ErrorKind, what: impl std::fmt::Display) -> Error {
        Error::new(
            kind,
            scrub(&format!("Prometheus {}: {what}", self.base), self.secrets),
        )
    }
}

/// `text` with every secret replaced by `***`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

/// The body, on one line and cut short, for a message.
fn snippet(body: &[u8], secrets: &[String]) -> String {
    canary_http::one_line(&scrub(&String::from_utf8_lossy(body), secrets), SNIPPET)
}

/// The series of an answer, or what went wrong. `retry` in the error
/// case says whether the same request may succeed if sent again.
pub(crate) fn parse_answer(
    call: &Call<'_>,
    status: u16,
    body: &[u8],
) -> Result<Vec<Series>, (Error, bool)> {
    let envelope = serde_json::from_slice::<Envelope>(body).ok();
    match envelope {
        Some(Envelope {
            status: s,
            data: Some(data),
            ..
        }) if s == "success" && (200..300).contains(&status) => series(data).map_err(|why| {
            (
                call.error(
                    ErrorKind::Protocol,
                    format!("cannot read the answer to `{}`: {why}", call.quoted_query()),
                ),
                false,
            )
        }),
        _ => Err(answer_error(call, status, body, envelope.as_ref())),
    }
}

/// What a failing answer means: the error and whether to retry. The API's
/// own `errorType` decides when there is one; the status otherwise.
fn answer_error(
    call: &Call<'_>,
    status: u16,
    body: &[u8],
    envelope: Option<&Envelope>,
) -> (Error, bool) {
    let api = envelope.filter(|e| e.status == "error");
    if let Some(api) = api {
        let error_type = api.error_type.as_deref().unwrap_or("error");
        let text = scrub(api.error.as_deref().unwrap_or(""), call.secrets);
        // Prometheus: 400 bad_data, 422 execution, 503 timeout / canceled,
        // 500 internal; a proxy in front may add its own.
        let (kind, retry) = match (error_type, status) {
            (_, 401) => (ErrorKind::Unauthorized, false),
            (_, 403) => (ErrorKind::Denied, false),
            ("bad_data" | "execution", _) => (ErrorKind::Invalid, false),
            ("not_found", _) => (ErrorKind::NotFound, false),
            // A query that ran out of time will run out again.
            ("timeout" | "canceled", _) => (ErrorKind::Transient, false),
            (_, 429) => (ErrorKind::RateLimited, true),
            (_, 500..=599) => (ErrorKind::Transient, true),
            _ => (ErrorKind::Other, false),
        };
        if matches!(kind, ErrorKind::Unauthorized | ErrorKind::Denied) {
            return (auth_error(call, status), false);
        }
        let mut e = call.error(
            kind,
            format!(
                "the query `{}` failed ({status}): {error_type}: {text}",
                call.quoted_query()
            ),
        );
        if kind == ErrorKind::Invalid {
            e = e.with_hint(
                "check the query's PromQL: paste it into Prometheus's expression browser",
            );
        }
        return (e, retry);
    }
    match status {
        401 | 403 => (auth_error(call, status), false),
        404 => (
            call.error(
                ErrorKind::NotFound,
                "404 Not Found for /api/v1/query: this is not Prometheus's base URL",
            )
            .with_hint(
                "give the URL Prometheus's web UI is served under, with its path prefix if \
                 any (e.g. http://host/prometheus)",
            ),
            false,
        ),
        300..=399 => (
            call.error(
                ErrorKind::Protocol,
                format!("answered a redirect ({status}); canary does not follow redirects"),
            )
            .with_hint("give the URL the redirect leads to"),
            false,
        ),
        429 => (
            call.error(ErrorKind::RateLimited, "429 Too Many Requests"),
            true,
        ),
        500..=599 => (
            call.error(
                ErrorKind::Transient,
                format!("answered {status}: {}", snippet(body, call.secrets)),
            ),
            true,
        ),
        200..=299 => (
            call.error(
                ErrorKind::Protocol,
                format!(
                    "the answer is not the Prometheus API ({}): {}",
                    if envelope.is_some() {
                        "no `data`"
                    } else {
                        "not its JSON"
                    },
                    snippet(body, call.secrets)
                ),
            )
            .with_hint("check that the URL points at Prometheus (or a compatible API)"),
            false,
        ),
        _ => (
            call.error(
                ErrorKind::Other,
                format!("answered {status}: {}", snippet(body, call.secrets)),
            ),
            false,
        ),
    }
}

fn auth_error(call: &Call<'_>, status: u16) -> Error {
    // The body of a refused request is not quoted: a careless proxy may
    // echo the Authorization header back.
    if status == 403 {
        return call
            .error(
                ErrorKind::Denied,
                format!("403 Forbidden: {} is not allowed to query", call.auth),
            )
            .with_hint("grant the credentials read access to the query API");
    }
    if call.has_auth {
        call.error(
            ErrorKind::Unauthorized,
            format!("401 Unauthorized: {} was refused", call.auth),
        )
        .with_hint("check the credentials (expired or for another Prometheus?)")
    } else {
        call.error(
            ErrorKind::Unauthorized,
            "401 Unauthorized: it asks for credentials and none were given",
        )
        .with_hint("give a bearer token or a basic-auth user and password for Prometheus")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("0.25"), Some(0.25));
        assert_eq!(parse_value("1e3"), Some(1000.0));
        assert_eq!(parse_value("nope"), None);
        assert_eq!(parse_value("inf"), None, "only Prometheus's spelling");
    }

    #[test]
    fn result_types() {
        let v = serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {"a": "b"}, "values": [[1.0, "1"], [2.5, "NaN"]]}
        ]});
        let s = series(v).unwrap();
        assert_eq!(s[0].labels["a"], "b");
        assert_eq!(s[0].points.len(), 2);
        assert!(s[0].points[1].value.is_nan());
        let v = serde_json::json!({"resultType": "string", "result": [1.0, "x"]});
        assert!(series(v).unwrap_err().contains("string"));
        let v = serde_json::json!({"resultType": "vector", "result": [
            {"metric": {}, "histogram": [1.0, {"count": "3"}]}
        ]});
        assert!(series(v).unwrap_err().contains("native histogram"));
    }
}
