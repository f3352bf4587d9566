//! [`HttpSuite`]: runs a [`Suite`] against tenants over HTTP, and the
//! rollout probe. How an answer is judged is in [`judge`]; the probe's
//! requests (also the fleet check's) are in [`probe`].

mod judge;
mod probe;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use canary_core::clock::duration_ms;
use canary_core::{
    CheckResult, CheckStatus, Clock, Error, RunContext, SmokeSuite, Tenant, UsageError,
};
use canary_http::SystemClock;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use serde_json_path::JsonPath;

pub(crate) use self::judge::judge_answer;
use self::judge::{judge, redact, scrub, Attempt};
use crate::suite::{Auth, Check, Suite};
use crate::template::Vars;

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
#[derive(Clone)]
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
    /// private CA. An empty or unparsable bundle is refused by
    /// [`HttpSuite::new`].
    pub ca_file: Option<PathBuf>,
    /// The `User-Agent` sent.
    pub user_agent: String,
    /// What the pause between a check's attempts (its `interval`) goes
    /// through; tests pass core's `ManualClock`, which returns at once.
    pub clock: Arc<dyn Clock>,
    /// The most one tenant's whole suite may take: attempts are cut to
    /// what is left of it, and checks not started by then are `not run`.
    /// It bounds the worst case of a tenant that answers each request just
    /// before its timeout.
    pub tenant_deadline: Duration,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("default_timeout", &self.default_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("probe", &self.probe)
            .field("ca_file", &self.ca_file)
            .field("user_agent", &self.user_agent)
            .field("tenant_deadline", &self.tenant_deadline)
            .finish_non_exhaustive()
    }
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
            clock: Arc::new(SystemClock),
            tenant_deadline: DEFAULT_TENANT_DEADLINE,
        }
    }
}

/// [`HttpOptions::tenant_deadline`] unless set: far above what a healthy
/// tenant needs for any sane suite, far below the sum of every timeout.
pub const DEFAULT_TENANT_DEADLINE: Duration = Duration::from_secs(300);

struct Inner {
    suite: Suite,
    options: HttpOptions,
    probe_path: JsonPath,
    /// TLS settings, built once; every tenant gets a client of its own
    /// from them (see [`Inner::client`]).
    tls: rustls::ClientConfig,
}

/// A [`Suite`] run over HTTP: implements [`SmokeSuite`].
///
/// Cheap to clone and to call concurrently. Each tenant's suite runs on a
/// connection pool of its own, closed when the suite ends: a fleet holds
/// connections only for the tenants in flight, never one per tenant until
/// exit (rustls; the TLS settings are built once).
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
    /// A runner for `suite`. Fails on a bad probe setting or a CA file that
    /// cannot be read or holds no certificate, before any request.
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
        let tls = canary_http::tls_config(options.ca_file.as_deref(), "ca_file")?;
        let inner = Inner {
            suite,
            options,
            probe_path,
            tls,
        };
        inner.client().map_err(|e| {
            UsageError::new(
                "HTTP client",
                format!("cannot be built: {e}"),
                "check the CA file and TLS settings",
            )
        })?;
        Ok(Self {
            inner: Arc::new(inner),
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

/// What is left of one tenant's deadline.
struct Budget {
    deadline: Duration,
    started_ms: u64,
}

impl Budget {
    fn start(deadline: Duration, clock: &dyn Clock) -> Self {
        Self {
            deadline,
            started_ms: clock.now_ms(),
        }
    }

    fn left(&self, clock: &dyn Clock) -> Duration {
        let spent = Duration::from_millis(clock.now_ms().saturating_sub(self.started_ms));
        self.deadline.saturating_sub(spent)
    }

    fn spent(&self) -> String {
        format!(
            "the tenant's deadline of {} passed",
            humantime::format_duration(self.deadline)
        )
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

impl Inner {
    /// A client of its own for one tenant's suite (or one probe): its
    /// connections close when it is dropped.
    fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.tls.clone())
            .connect_timeout(self.options.connect_timeout)
            .user_agent(self.options.user_agent.clone())
            // A smoke check judges the answer the tenant gives, redirects
            // included; and a redirect must not carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
    }

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

    async fn attempt(
        &self,
        client: &reqwest::Client,
        check: &Check,
        tenant: &Tenant,
        vars: &Vars,
        budget: &Budget,
    ) -> Attempt {
        let own = check.timeout.unwrap_or(self.options.default_timeout);
        let timeout = own.min(budget.left(&*self.options.clock));
        let url = Self::url(tenant, &check.path.render(vars, true));
        // No timeout of reqwest's on top: the one below bounds the whole
        // attempt, and a second timer per request is CPU a large fleet pays.
        let mut request = client.request(check.method.clone(), &url);
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
            Err(_) if timeout < own => return Attempt::Unreachable(budget.spent()),
            Err(_) => {
                return Attempt::Unreachable(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                ))
            }
            Ok(Err(e)) if e.is_timeout() && timeout < own => {
                return Attempt::Unreachable(budget.spent())
            }
            Ok(Err(e)) => return Attempt::Unreachable(describe_transport(&e, timeout)),
            Ok(Ok(answer)) => answer,
        };
        // Redact before anything is cut or quoted, so no prefix of an echoed
        // token survives a truncated snippet.
        let body = scrub(body, tenant.token().expose());
        judge(
            check,
            status,
            &body,
            over,
            self.options.max_body_bytes,
            vars,
        )
    }

    /// One check, with its retries; and whether the tenant never answered
    /// (a transport error or timeout on the last attempt).
    async fn run_check(
        &self,
        client: &reqwest::Client,
        check: &Check,
        tenant: &Tenant,
        vars: &Vars,
        budget: &Budget,
    ) -> (CheckResult, Vec<(String, Value)>, bool) {
        let started = Instant::now();
        let attempts_max = check.retries.saturating_add(1);
        let mut attempts = 0;
        let mut last = Attempt::NoAnswer(String::new());
        while attempts < attempts_max {
            attempts += 1;
            last = self.attempt(client, check, tenant, vars, budget).await;
            if matches!(last, Attempt::Passed(_))
                || attempts == attempts_max
                || budget.left(&*self.options.clock).is_zero()
            {
                break;
            }
            tracing::debug!(
                tenant = tenant.url(),
                check = %check.name,
                attempt = attempts,
                of = attempts_max,
                "attempt did not pass; retrying"
            );
            self.options.clock.sleep(check.interval).await;
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
        let unreachable = matches!(last, Attempt::Unreachable(_));
        let (status, actual, captures) = match last {
            Attempt::Passed(c) => (CheckStatus::Passed, String::new(), c),
            Attempt::Failed(a) => (
                CheckStatus::Failed,
                format!("{a}{}", tries(attempts)),
                Vec::new(),
            ),
            Attempt::NoAnswer(a) | Attempt::Unreachable(a) => (
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
        (result, captures, unreachable)
    }

    async fn run(&self, tenant: &Tenant, context: &RunContext) -> Vec<CheckResult> {
        let checks = self.suite.checks();
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => {
                return vec![CheckResult::error(
                    "suite",
                    format!("the HTTP client cannot be built: {e}"),
                )]
            }
        };
        let budget = Budget::start(self.options.tenant_deadline, &*self.options.clock);
        // Once the tenant did not answer one check, or its deadline passed,
        // the rest are not tried: they would only spend the same timeouts.
        let mut stop: Option<String> = None;
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
            if stop.is_none() && budget.left(&*self.options.clock).is_zero() {
                stop = Some(budget.spent());
            }
            if let Some(why) = &stop {
                results.push(CheckResult {
                    name: check.name.clone(),
                    status: CheckStatus::NotRun,
                    expected: check.expectation(),
                    actual: format!("not run: {why}"),
                    duration_ms: 0,
                    attempts: 0,
                });
                continue;
            }
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
            let (result, captures, unreachable) =
                self.run_check(&client, check, tenant, &vars, &budget).await;
            if unreachable {
                stop = Some(if budget.left(&*self.options.clock).is_zero() {
                    budget.spent()
                } else {
                    format!("the tenant did not answer `{}`", check.name)
                });
            }
            vars.extend(captures);
            results.push(result);
        }
        results
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

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::{ManualClock, Secret};
    use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

    /// The pause between a check's attempts goes through the options'
    /// clock: an hour-long interval costs a test clock nothing.
    #[tokio::test]
    async fn retries_wait_through_the_clock() {
        const SHA: &str = "4c1d56e0123456789abcdef0123456789abcdef0";
        let server = TenantServer::start(TenantOptions {
            token: "tok-clock".to_string(),
            version: SHA.to_string(),
            fault: TenantFault::Flaky(2),
        })
        .await;
        let hour = Duration::from_secs(3600);
        let suite = Suite::builtin("workspace-server")
            .unwrap()
            .with_retries(2, hour)
            .with_timeout(Duration::from_secs(5));
        let clock = Arc::new(ManualClock::new(0));
        let runner = HttpSuite::new(
            suite,
            HttpOptions {
                clock: clock.clone(),
                // Two hour-long pauses fit the tenant's deadline.
                tenant_deadline: 3 * hour,
                ..HttpOptions::default()
            },
        )
        .unwrap();
        let context = RunContext {
            sha: Some(SHA.parse().unwrap()),
            run_id: "clock-run".to_string(),
        };
        let started = Instant::now();
        let results = runner
            .run(
                &Tenant::new(server.url(), Secret::new("tok-clock")),
                &context,
            )
            .await;
        assert!(
            results.iter().all(|r| r.status == CheckStatus::Passed),
            "{results:#?}"
        );
        assert_eq!(results[0].attempts, 3, "two 503s, then a pass");
        assert_eq!(clock.sleeps(), vec![hour, hour], "one pause per retry");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing really slept: {:?}",
            started.elapsed()
        );
    }

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
}
