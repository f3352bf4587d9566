//! [`HttpSuite`]: runs a [`Suite`] against tenants over HTTP, and the
//! rollout probe.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use canary_core::clock::duration_ms;
use canary_core::{
    CheckResult, CheckStatus, Error, ErrorKind, RunContext, SmokeSuite, Tenant, UsageError,
};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::suite::{Auth, Check, JsonExpect, JsonType, Suite};
use crate::template::Vars;

/// How many characters of a response body a failure quotes.
const BODY_SNIPPET_CHARS: usize = 300;

/// How the rollout probe reads a tenant's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The path to `GET` with the tenant's token (default `/admin/liveness`).
    pub path: String,
    /// The JSONPath of the version in the answer (default `$.version`).
    pub json_path: String,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            path: "/admin/liveness".to_string(),
            json_path: "$.version".to_string(),
        }
    }
}

/// HTTP settings of a suite run.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one attempt (request and whole answer) when the
    /// check sets no `timeout`; also the probe's timeout.
    pub default_timeout: Duration,
    /// Response bodies are read up to this many bytes; a longer body fails
    /// any expectation on it.
    pub max_body_bytes: usize,
    /// The rollout probe.
    pub probe: ProbeConfig,
    /// Extra CA certificates (PEM bundle) to trust, for tenants behind a
    /// private CA.
    pub ca_file: Option<PathBuf>,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            default_timeout: Duration::from_secs(10),
            max_body_bytes: 1024 * 1024,
            probe: ProbeConfig::default(),
            ca_file: None,
            user_agent: format!("canary/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

struct Inner {
    suite: Suite,
    options: HttpOptions,
    probe_path: JsonPath,
    client: reqwest::Client,
}

/// A [`Suite`] run over HTTP: implements [`SmokeSuite`].
///
/// Cheap to clone and to call concurrently: every call shares one
/// connection pool (rustls).
#[derive(Clone)]
pub struct HttpSuite {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSuite")
            .field("suite", &self.inner.suite.name())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl HttpSuite {
    /// A runner for `suite`. Fails on a bad probe setting or an unreadable
    /// CA file, before any request.
    pub fn new(suite: Suite, options: HttpOptions) -> Result<Self, UsageError> {
        if !options.probe.path.starts_with('/') {
            return Err(UsageError::new(
                format!("probe path `{}`", options.probe.path),
                "does not start with `/`",
                "write it relative to the tenant's URL, e.g. `/admin/liveness`",
            ));
        }
        let probe_path = JsonPath::parse(&options.probe.json_path).map_err(|e| {
            UsageError::new(
                format!("probe JSONPath `{}`", options.probe.json_path),
                format!("is invalid: {}", e.message()),
                "write an RFC 9535 JSONPath such as `$.version`",
            )
        })?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.clone())
            // A smoke check judges the answer the tenant gives, redirects
            // included; and a redirect must not carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                UsageError::new(
                    format!("CA file `{}`", path.display()),
                    format!("cannot be read: {e}"),
                    "point ca_file at a PEM bundle",
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                UsageError::new(
                    format!("CA file `{}`", path.display()),
                    format!("is not a PEM bundle: {e}"),
                    "point ca_file at a PEM file of CA certificates",
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| {
            UsageError::new(
                "HTTP client",
                format!("cannot be built: {e}"),
                "check the CA file and TLS settings",
            )
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                suite,
                options,
                probe_path,
                client,
            }),
        })
    }

    /// The suite it runs.
    pub fn suite(&self) -> &Suite {
        &self.inner.suite
    }

    /// The options it runs with.
    pub fn options(&self) -> &HttpOptions {
        &self.inner.options
    }
}

/// The nonce of one suite run on one tenant: hex only, so it is safe in a
/// path, a query and a JSON string. The first 8 characters derive from the
/// run id (grep a tenant's logs for one canary run); the rest are random, so
/// a re-run with the same run id (a re-run GitHub workflow keeps its run id)
/// never finds the previous run's data.
fn nonce(run_id: &str, tenant: &str) -> String {
    let mut h = DefaultHasher::new();
    run_id.hash(&mut h);
    let run = h.finish();
    let mut h = DefaultHasher::new();
    run_id.hash(&mut h);
    tenant.hash(&mut h);
    let per_tenant = h.finish() ^ rand::random::<u64>();
    format!("{:08x}{:012x}", run >> 32, per_tenant >> 16)
}

/// How one attempt ended.
enum Attempt {
    Passed(Vec<(String, Value)>),
    /// The tenant answered wrong: the problems, and what it answered.
    Failed(String),
    /// No answer: transport error or timeout.
    NoAnswer(String),
}

/// Replaces every occurrence of the token with `***`.
fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "***")
    }
}

/// The body with every occurrence of the token replaced by `***`.
fn scrub(body: Vec<u8>, token: &str) -> Vec<u8> {
    let needle = token.as_bytes();
    if needle.is_empty() || !body.windows(needle.len()).any(|w| w == needle) {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(needle) {
            out.extend_from_slice(b"***");
            i += needle.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// A body for a failure message: control characters blanked, truncated.
fn snippet(body: &[u8], truncated_at_limit: bool) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == BODY_SNIPPET_CHARS {
            let _ = write!(out, "… ({} bytes)", body.len());
            return out;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    if truncated_at_limit {
        out.push_str("… (over the size limit)");
    }
    if out.trim().is_empty() {
        "(empty)".to_string()
    } else {
        out
    }
}

fn describe_transport(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", humantime::format_duration(timeout));
    }
    let mut out = if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the answer broke off".to_string()
    } else {
        "request failed".to_string()
    };
    // The source chain says why (connection refused, TLS, reset); the URL is
    // left out, the report already names the tenant.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Numbers compare by value (`1` equals `1.0`); everything else exactly.
/// Two integers compare exactly: as `f64`, integers above 2^53 that differ
/// would be equal.
fn json_eq(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => {
            l == r
                || ((l.is_f64() || r.is_f64())
                    && matches!((l.as_f64(), r.as_f64()), (Some(lf), Some(rf))
                        if (lf - rf).abs() <= f64::EPSILON * lf.abs().max(1.0)))
        }
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(k, v)| r.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => left == right,
    }
}

fn json_contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::String(h), Value::String(n)) => h.contains(n.as_str()),
        (Value::Array(items), n) => items.iter().any(|i| json_eq(i, n)),
        (Value::Object(map), Value::String(key)) => map.contains_key(key),
        _ => false,
    }
}

fn short_json(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 80 {
        let mut t: String = s.chars().take(80).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// The problems with `body` against one `expect.json` entry, if any.
fn check_json(e: &JsonExpect, body: &Value, vars: &Vars) -> Option<String> {
    let nodes = e.path.query(body).all();
    let subject = if e.source == "$" {
        "body"
    } else {
        e.source.as_str()
    };
    if !e.exists {
        return (!nodes.is_empty()).then(|| format!("{subject} exists ({})", short_json(nodes[0])));
    }
    if nodes.is_empty() {
        return Some(format!("{subject} is missing"));
    }
    // Several nodes are compared as the array of them.
    let value = if nodes.len() == 1 {
        nodes[0].clone()
    } else {
        Value::Array(nodes.iter().map(|v| (*v).clone()).collect())
    };
    if let Some(ty) = e.ty {
        if let Some(bad) = nodes.iter().find(|v| JsonType::of(v) != ty) {
            return Some(format!(
                "{subject} is {} ({})",
                JsonType::of(bad),
                short_json(bad)
            ));
        }
    }
    if let Some(expected) = &e.equals {
        let expected = expected.render(vars);
        if !json_eq(&value, &expected) {
            return Some(format!("{subject} is {}", short_json(&value)));
        }
    }
    if let Some(needle) = &e.contains {
        let needle = needle.render(vars);
        if !json_contains(&value, &needle) {
            return Some(format!(
                "{subject} does not contain {} ({})",
                short_json(&needle),
                short_json(&value)
            ));
        }
    }
    None
}

impl Inner {
    fn url(tenant: &Tenant, path: &str) -> String {
        format!("{}{path}", tenant.url())
    }

    /// Reads the body up to the size limit: the bytes, and whether the body
    /// went on past the limit.
    async fn read_body(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<(Vec<u8>, bool), reqwest::Error> {
        let limit = self.options.max_body_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            let room = limit - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body, true));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, false))
    }

    async fn attempt(&self, check: &Check, tenant: &Tenant, vars: &Vars) -> Attempt {
        let timeout = check.timeout.unwrap_or(self.options.default_timeout);
        let url = Self::url(tenant, &check.path.render(vars, true));
        let mut request = self
            .client
            .request(check.method.clone(), &url)
            .timeout(timeout);
        if check.auth == Auth::Tenant {
            match HeaderValue::from_str(&format!("Bearer {}", tenant.token().expose())) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    request = request.header(AUTHORIZATION, v);
                }
                Err(_) => {
                    return Attempt::NoAnswer(
                        "the tenant's token is not a valid header value".to_string(),
                    )
                }
            }
        }
        for (name, value) in &check.headers {
            match HeaderValue::from_str(&value.render(vars, false)) {
                Ok(v) => request = request.header(name, v),
                Err(_) => {
                    return Attempt::NoAnswer(format!(
                        "header `{name}` renders to an invalid header value"
                    ))
                }
            }
        }
        if let Some(body) = &check.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.render(vars).to_string());
        }
        // The whole attempt (answer and body) is bounded by the timeout.
        let answer = tokio::time::timeout(timeout, async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let (body, over) = self.read_body(&mut response).await?;
            Ok::<_, reqwest::Error>((status, body, over))
        })
        .await;
        let (status, body, over) = match answer {
            Err(_) => {
                return Attempt::NoAnswer(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                ))
            }
            Ok(Err(e)) => return Attempt::NoAnswer(describe_transport(&e, timeout)),
            Ok(Ok(answer)) => answer,
        };
        // Redact before anything is cut or quoted, so no prefix of an echoed
        // token survives a truncated snippet.
        let body = scrub(body, tenant.token().expose());
        Self::judge(
            check,
            status,
            &body,
            over,
            self.options.max_body_bytes,
            vars,
        )
    }

    fn judge(
        check: &Check,
        status: u16,
        body: &[u8],
        over: bool,
        max_body_bytes: usize,
        vars: &Vars,
    ) -> Attempt {
        if !check.expect.status.iter().any(|s| s.matches(status)) {
            // A wrong status says it all; what the body lacks is noise.
            return Attempt::Failed(format!("status {status}, body: {}", snippet(body, over)));
        }
        let mut problems = Vec::new();
        let wants_json = !check.expect.json.is_empty() || !check.captures.is_empty();
        let mut captures = Vec::new();
        if wants_json {
            if over {
                problems.push(format!(
                    "body is larger than the limit of {max_body_bytes} bytes"
                ));
            } else {
                match serde_json::from_slice::<Value>(body) {
                    Err(e) => problems.push(format!("body is not JSON ({e})")),
                    Ok(json) => {
                        for e in &check.expect.json {
                            problems.extend(check_json(e, &json, vars));
                        }
                        for (name, source, path) in &check.captures {
                            match path.query(&json).all().first() {
                                Some(v) => captures.push((name.clone(), (*v).clone())),
                                None => problems
                                    .push(format!("{source} (captured as `{name}`) is missing")),
                            }
                        }
                    }
                }
            }
        }
        let text = String::from_utf8_lossy(body);
        for t in &check.expect.body_contains {
            let needle = t.render(vars, false);
            if !text.contains(&needle) {
                if over {
                    problems.push(format!(
                        "body does not contain {needle:?} within the first {max_body_bytes} bytes"
                    ));
                } else {
                    problems.push(format!("body does not contain {needle:?}"));
                }
            }
        }
        if problems.is_empty() {
            return Attempt::Passed(captures);
        }
        let mut actual = problems.join("; ");
        let _ = write!(actual, "; status {status}, body: {}", snippet(body, over));
        Attempt::Failed(actual)
    }

    async fn run_check(
        &self,
        check: &Check,
        tenant: &Tenant,
        vars: &Vars,
    ) -> (CheckResult, Vec<(String, Value)>) {
        let started = Instant::now();
        let attempts_max = check.retries.saturating_add(1);
        let mut attempts = 0;
        let mut last = Attempt::NoAnswer(String::new());
        while attempts < attempts_max {
            attempts += 1;
            last = self.attempt(check, tenant, vars).await;
            if matches!(last, Attempt::Passed(_)) || attempts == attempts_max {
                break;
            }
            tracing::debug!(
                tenant = tenant.url(),
                check = %check.name,
                attempt = attempts,
                of = attempts_max,
                "attempt did not pass; retrying"
            );
            tokio::time::sleep(check.interval).await;
        }
        let expected = check.describe(|t| t.render(vars, false), |j| j.render(vars));
        let token = tenant.token().expose();
        let tries = |n: u32| {
            if n == 1 {
                String::new()
            } else {
                format!(" (after {n} attempts)")
            }
        };
        let (status, actual, captures) = match last {
            Attempt::Passed(c) => (CheckStatus::Passed, String::new(), c),
            Attempt::Failed(a) => (
                CheckStatus::Failed,
                format!("{a}{}", tries(attempts)),
                Vec::new(),
            ),
            Attempt::NoAnswer(a) => (
                CheckStatus::Error,
                format!("{a}{}", tries(attempts)),
                Vec::new(),
            ),
        };
        let result = CheckResult {
            name: check.name.clone(),
            status,
            expected: redact(&expected, token),
            actual: redact(&actual, token),
            duration_ms: duration_ms(started.elapsed()),
            attempts,
        };
        (result, captures)
    }

    async fn run(&self, tenant: &Tenant, context: &RunContext) -> Vec<CheckResult> {
        let checks = self.suite.checks();
        let mut vars: Vars = HashMap::new();
        vars.insert(
            "nonce".to_string(),
            Value::String(nonce(&context.run_id, tenant.url())),
        );
        if let Some(sha) = &context.sha {
            vars.insert("sha".to_string(), Value::String(sha.to_string()));
        }
        let mut results: Vec<CheckResult> = Vec::with_capacity(checks.len());
        for check in checks {
            if let Some(blocker) = check
                .needs
                .iter()
                .find(|i| results[**i].status != CheckStatus::Passed)
            {
                let dep = &results[*blocker];
                let uses: Vec<String> = checks[*blocker]
                    .captures
                    .iter()
                    .filter(|(n, _, _)| check.vars().contains(&n.as_str()))
                    .map(|(n, _, _)| format!("`{{{{{n}}}}}`"))
                    .collect();
                let what = if uses.is_empty() {
                    format!("`{}`", dep.name)
                } else {
                    format!("{} captured by `{}`", uses.join(", "), dep.name)
                };
                let status = match dep.status {
                    CheckStatus::Failed => "failed",
                    CheckStatus::Error => "had no answer",
                    _ => "did not run",
                };
                results.push(CheckResult {
                    name: check.name.clone(),
                    status: CheckStatus::NotRun,
                    expected: check.expectation(),
                    actual: format!("not run: needs {what}, which {status}"),
                    duration_ms: 0,
                    attempts: 0,
                });
                continue;
            }
            if context.sha.is_none() && check.vars().contains(&"sha") {
                results.push(CheckResult {
                    name: check.name.clone(),
                    status: CheckStatus::Error,
                    expected: check.expectation(),
                    actual: "not run: the check uses {{sha}} and the run has no sha (pass --sha)"
                        .to_string(),
                    duration_ms: 0,
                    attempts: 0,
                });
                continue;
            }
            let (result, captures) = self.run_check(check, tenant, &vars).await;
            vars.extend(captures);
            results.push(result);
        }
        results
    }

    async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        let path = &self.options.probe.path;
        let what = format!("probe {}{path}", tenant.url());
        let timeout = self.options.default_timeout;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", tenant.token().expose()))
            .map_err(|_| {
                Error::new(
                    ErrorKind::Invalid,
                    format!("{what}: the tenant's token is not a valid header value"),
                )
            })?;
        value.set_sensitive(true);
        let request = self
            .client
            .get(Self::url(tenant, path))
            .timeout(timeout)
            .header(AUTHORIZATION, value);
        let answer = tokio::time::timeout(timeout, async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let (body, over) = self.read_body(&mut response).await?;
            Ok::<_, reqwest::Error>((status, body, over))
        })
        .await;
        let token = tenant.token().expose();
        let (status, body, over) = match answer {
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Transient,
                    format!(
                        "{what}: no answer within {}",
                        humantime::format_duration(timeout)
                    ),
                ))
            }
            Ok(Err(e)) => {
                return Err(Error::new(
                    ErrorKind::Transient,
                    redact(
                        &format!("{what}: {}", describe_transport(&e, timeout)),
                        token,
                    ),
                ))
            }
            Ok(Ok(a)) => a,
        };
        let body = scrub(body, token);
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
        let json: Value = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                redact(
                    &format!("{what}: body is not JSON ({e}): {}", snippet(&body, over)),
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
                        snippet(&body, over)
                    ),
                    token,
                ),
            )
            .with_hint("set the probe's JSONPath to where the tenant reports its version")),
        }
    }
}

/// Aborts a spawned task when its handle is dropped (the caller gave up).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl SmokeSuite for HttpSuite {
    /// Runs on a task of its own, so that a fleet fanned out in one task
    /// (the promoter's `buffered` stream) still uses every core. Dropping
    /// the returned future aborts the task.
    async fn run(&self, tenant: &Tenant, context: &RunContext) -> Vec<CheckResult> {
        let inner = self.inner.clone();
        let (t, c) = (tenant.clone(), context.clone());
        let mut task = AbortOnDrop(tokio::spawn(async move { inner.run(&t, &c).await }));
        match (&mut task.0).await {
            Ok(results) => results,
            Err(e) => {
                let why = if e.is_panic() {
                    "the check runner panicked"
                } else {
                    "the check runner was cancelled"
                };
                vec![CheckResult::error("suite", why)]
            }
        }
    }

    async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        self.inner.probe(tenant).await
    }
}

/// How an answer is judged, without a client (for the fuzz targets): the
/// captured values when every expectation holds, else the failure message.
pub(crate) fn judge_answer(
    check: &Check,
    status: u16,
    body: &[u8],
    over: bool,
    max_body_bytes: usize,
    vars: &Vars,
) -> Result<Vec<(String, Value)>, String> {
    match Inner::judge(check, status, body, over, max_body_bytes, vars) {
        Attempt::Passed(captures) => Ok(captures),
        Attempt::Failed(problems) | Attempt::NoAnswer(problems) => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nonces_are_hex_and_unique() {
        let a = nonce("run-1", "https://a");
        let b = nonce("run-1", "https://a");
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(a[..8], b[..8]);
        assert_ne!(a[..8], nonce("run-2", "https://a")[..8]);
    }

    #[test]
    fn snippets_are_bounded_and_clean() {
        let long = "x".repeat(1000);
        let s = snippet(long.as_bytes(), false);
        assert!(s.starts_with(&"x".repeat(BODY_SNIPPET_CHARS)));
        assert!(s.ends_with("(1000 bytes)"), "{s}");
        assert_eq!(snippet(b"a\x1b[31mb\n", false), "a [31mb ");
        assert_eq!(snippet(b"", false), "(empty)");
        assert_eq!(redact("Bearer s3cret!", "s3cret"), "Bearer ***!");
        assert_eq!(redact("x", ""), "x");
        // An echoed token straddling the snippet's cut must not leave a prefix.
        let token = "tok-0123456789";
        let body = format!("{}{token}", "y".repeat(BODY_SNIPPET_CHARS - 4)).into_bytes();
        let s = snippet(&scrub(body, token), false);
        assert!(!s.contains("tok-"), "{s}");
        assert_eq!(scrub(b"a tok b tok".to_vec(), "tok"), b"a *** b ***");
    }

    #[test]
    fn json_comparisons() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": [1, "x"]}), &json!({"a": [1.0, "x"]})));
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert!(json_contains(&json!("abc"), &json!("b")));
        assert!(json_contains(&json!([1, 2]), &json!(2)));
        assert!(json_contains(&json!({"k": 1}), &json!("k")));
        assert!(!json_contains(&json!(5), &json!(5)));
    }

    /// Found by `cargo fuzz run json_expect`: an `equals` integer a few
    /// units away from the body's 7290609220566515194 passed, as both round
    /// to the same `f64`.
    #[test]
    fn big_integers_compare_exactly() {
        assert!(!json_eq(
            &json!(7_290_609_220_566_515_194_i64),
            &json!(7_290_609_220_566_515_195_i64)
        ));
        assert!(!json_eq(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992_u64)
        ));
        assert!(!json_eq(
            &json!(-9_007_199_254_740_993_i64),
            &json!(-9_007_199_254_740_992_i64)
        ));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(json_eq(&json!(3), &json!(3.0)));
        assert!(json_eq(&json!(-3.0), &json!(-3)));
    }
}
