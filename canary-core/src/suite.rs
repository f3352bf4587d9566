//! The [`SmokeSuite`] trait, check results, and the scripted fake
//! [`ScriptedSuite`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::types::{GitSha, Tenant};

/// What a suite run knows about the release under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    /// The release's sha (`{{sha}}` in suite templates), if there is one.
    pub sha: Option<GitSha>,
    /// A value unique to this run; suites derive per-tenant nonces from it.
    pub run_id: String,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Every expectation held.
    Passed,
    /// The tenant answered, and an expectation did not hold: evidence
    /// against the release.
    Failed,
    /// No verdict: the tenant could not be reached or timed out, after the
    /// check's retries.
    Error,
    /// Not run, because a check it depends on did not pass.
    NotRun,
}

impl CheckStatus {
    /// The status's one spelling, the same as in the JSON report and the
    /// `failed-checks` step output (`not_run`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::NotRun => "not_run",
        }
    }
}

/// The result of one check against one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// How it ended.
    pub status: CheckStatus,
    /// What was expected (`status 200 and $.subsystems is an object`).
    pub expected: String,
    /// What was seen (`status 503, body: …`), truncated and redacted.
    pub actual: String,
    /// Wall time of all attempts, in milliseconds.
    pub duration_ms: u64,
    /// How many attempts were made (0 when not run).
    pub attempts: u32,
}

impl CheckResult {
    /// A passed check.
    pub fn passed(name: impl Into<String>) -> Self {
        Self::with(name, CheckStatus::Passed, "", "")
    }

    /// A failed check with expected and actual.
    pub fn failed(
        name: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Self::with(name, CheckStatus::Failed, expected, actual)
    }

    /// A check with no verdict.
    pub fn error(name: impl Into<String>, actual: impl Into<String>) -> Self {
        Self::with(name, CheckStatus::Error, "a response", actual)
    }

    fn with(
        name: impl Into<String>,
        status: CheckStatus,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            status,
            expected: expected.into(),
            actual: actual.into(),
            duration_ms: 0,
            attempts: u32::from(status != CheckStatus::NotRun),
        }
    }
}

/// A smoke suite: the checks that make up the evidence for a release, and the
/// rollout probe.
///
/// # Contract
///
/// - `run` runs every check against one tenant, in order, and returns one
///   result per check, in order, with expected and actual filled in for
///   every non-passing check. It does not fail as a whole: transport
///   problems become [`CheckStatus::Error`] results.
/// - A check that passes after retries is [`CheckStatus::Passed`], with
///   `attempts` saying how many it took.
/// - `probe` returns the version the tenant reports running; a transport
///   failure is an [`Error`] (the promoter treats it as "not yet converged").
/// - Neither ever puts the tenant's token in a result or an error.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SmokeSuite: Send + Sync {
    /// Runs every check against `tenant`.
    async fn run(&self, tenant: &Tenant, context: &RunContext) -> Vec<CheckResult>;

    /// The version `tenant` reports running.
    async fn probe(&self, tenant: &Tenant) -> Result<String, Error>;
}

#[async_trait]
impl<T: SmokeSuite + ?Sized> SmokeSuite for Arc<T> {
    async fn run(&self, tenant: &Tenant, context: &RunContext) -> Vec<CheckResult> {
        (**self).run(tenant, context).await
    }
    async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        (**self).probe(tenant).await
    }
}

#[async_trait]
impl<T: SmokeSuite + ?Sized> SmokeSuite for Box<T> {
    async fn run(&self, tenant: &Tenant, context: &RunContext) -> Vec<CheckResult> {
        (**self).run(tenant, context).await
    }
    async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        (**self).probe(tenant).await
    }
}

#[derive(Default)]
struct Script {
    results: HashMap<String, Vec<CheckResult>>,
    versions: HashMap<String, Vec<Option<String>>>,
    probes: HashMap<String, usize>,
    runs: Vec<String>,
}

/// A suite whose answers are scripted per tenant URL.
///
/// Tenants without a script pass one check named `scripted`. Versions are
/// answered in order, the last one repeating; `None` is an unreachable
/// tenant.
#[derive(Clone, Default)]
pub struct ScriptedSuite {
    script: Arc<Mutex<Script>>,
}

impl ScriptedSuite {
    /// A suite in which every tenant passes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts the check results of the tenant at `url`.
    #[must_use]
    pub fn results(self, url: &str, results: Vec<CheckResult>) -> Self {
        self.lock().results.insert(url.to_string(), results);
        self
    }

    /// Scripts the versions the tenant at `url` reports, probe after probe.
    #[must_use]
    pub fn versions(self, url: &str, versions: Vec<Option<&str>>) -> Self {
        self.lock().versions.insert(
            url.to_string(),
            versions
                .into_iter()
                .map(|v| v.map(str::to_string))
                .collect(),
        );
        self
    }

    /// The tenants `run` was called for, in call order.
    pub fn runs(&self) -> Vec<String> {
        self.lock().runs.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SmokeSuite for ScriptedSuite {
    async fn run(&self, tenant: &Tenant, _context: &RunContext) -> Vec<CheckResult> {
        let mut script = self.lock();
        script.runs.push(tenant.url().to_string());
        script
            .results
            .get(tenant.url())
            .cloned()
            .unwrap_or_else(|| vec![CheckResult::passed("scripted")])
    }

    async fn probe(&self, tenant: &Tenant) -> Result<String, Error> {
        let mut script = self.lock();
        let n = {
            let count = script.probes.entry(tenant.url().to_string()).or_insert(0);
            *count += 1;
            *count
        };
        let Some(versions) = script.versions.get(tenant.url()) else {
            return Ok("unknown".to_string());
        };
        let answer = versions.get(n - 1).or(versions.last()).cloned().flatten();
        answer.ok_or_else(|| {
            Error::new(
                ErrorKind::Transient,
                format!("tenant {} unreachable", tenant.url()),
            )
        })
    }
}
