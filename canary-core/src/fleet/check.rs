//! `canary fleet check`: is every canary tenant reachable, does it take the
//! token in its position of the token list and refuse a request without
//! one, what does it run and how fast does it answer.
//!
//! A token its own tenant refuses is either wrong, or in the wrong place:
//! when another tenant of the list takes it, the two lists are out of
//! order, and the report says which tenant the token belongs to. A wrong
//! token is a configuration error found at once, not a rollout that has
//! not converged yet.
//!
//! The requests go through [`TenantProbe`] (the HTTP adapter sends the
//! rollout probe's request); which requests to send and every verdict are
//! decided here, without a network.

use async_trait::async_trait;
use futures::stream::{self, StreamExt as _};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::types::{GitSha, Secret, Tenant};

/// The version of the fleet check's JSON shape.
pub const FLEET_CHECK_SCHEMA: u32 = 1;

/// The most requests spent looking for the tenants that take refused
/// tokens. Each refused token is tried on every other tenant while that
/// fits; else only on the other tenants that refused theirs (a swap or a
/// shuffled list is found either way); else not at all.
pub const MAX_CROSS_CHECKS: usize = 4096;

/// How a tenant answered one request of its probe path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// A 2xx answer, and the version read from it (or why none could be
    /// read).
    Accepted(Result<String, String>),
    /// 401 or 403: the credential (or its absence) was refused.
    Refused(u16),
    /// Any other status, with a short description of the answer.
    Status(u16, String),
    /// No answer: why (connection refused, timeout, TLS).
    NoAnswer(String),
}

impl ProbeAnswer {
    /// The HTTP status, when there was an answer (any 2xx reads as 200).
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Accepted(_) => Some(200),
            Self::Refused(s) | Self::Status(s, _) => Some(*s),
            Self::NoAnswer(_) => None,
        }
    }
}

/// One request to a tenant's probe path (the path the rollout probe reads
/// the version from), as `canary fleet check` sends it.
///
/// # Contract
///
/// - `knock` sends one `GET` of the probe path under `url` (a tenant's base
///   URL, as listed), with `Authorization: Bearer <token>` when a token is
///   given and no `Authorization` header at all otherwise.
/// - It follows no redirect: a redirect must not carry a token elsewhere.
/// - Its wait is bounded; no answer in time is [`ProbeAnswer::NoAnswer`].
/// - No token appears in what it returns, also when a tenant echoes it.
#[async_trait]
pub trait TenantProbe: Send + Sync {
    /// One request; see the trait's contract.
    async fn knock(&self, url: &str, token: Option<&Secret>) -> ProbeAnswer;
}

/// What a tenant is, after the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Reachable, takes its token, refuses a request without one (and runs
    /// the expected version, when one was given).
    Healthy,
    /// Did not answer.
    Unreachable,
    /// Refuses the token in its position, which another tenant of the
    /// list takes: the lists are out of order.
    Misaligned,
    /// Refuses the token in its position, and no other tenant takes it.
    WrongToken,
    /// Answers its probe without a token: the admin endpoint is open.
    Unprotected,
    /// Answered, but not as a tenant should (a 5xx, no version, no 401
    /// without a token).
    Broken,
    /// Runs another version than the expected one.
    OldVersion,
}

impl Health {
    /// The one spelling, the same as in the JSON report (`wrong_token`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unreachable => "unreachable",
            Self::Misaligned => "misaligned",
            Self::WrongToken => "wrong_token",
            Self::Unprotected => "unprotected",
            Self::Broken => "broken",
            Self::OldVersion => "old_version",
        }
    }
}

/// The fleet's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetOutcome {
    /// Every tenant is healthy: exit 0.
    Healthy,
    /// At least one tenant is not: exit 1.
    Unhealthy,
    /// No tenant answered at all, so nothing could be checked: exit 3 (a
    /// transport failure, like a registry that does not answer).
    Unreachable,
}

impl FleetOutcome {
    /// The one spelling, the same as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unreachable => "unreachable",
        }
    }

    /// The exit code: 0 healthy, 1 unhealthy, 3 unreachable (2, bad input,
    /// never gets this far).
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Healthy => 0,
            Self::Unhealthy => 1,
            Self::Unreachable => 3,
        }
    }
}

/// One tenant of the fleet, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCheck {
    /// Its position in both lists, from 1.
    pub position: usize,
    /// Its base URL.
    pub url: String,
    /// The verdict.
    pub health: Health,
    /// The version it reports, when it took its token.
    pub version: Option<String>,
    /// How long the request with its token took (ms), when it answered.
    pub response_ms: Option<u64>,
    /// The status it answered with its token (`None`: no answer).
    pub status_with_token: Option<u16>,
    /// The status it answered without a token (`None`: not asked, or no
    /// answer).
    pub status_without_token: Option<u16>,
    /// A misaligned token: the position of the tenant that takes it.
    pub token_belongs_to: Option<usize>,
    /// What is wrong, in a sentence; empty when healthy.
    pub detail: String,
}

/// The whole fleet, checked: `canary fleet check`'s report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCheckReport {
    /// [`FLEET_CHECK_SCHEMA`].
    pub schema: u32,
    /// The verdict.
    pub outcome: FleetOutcome,
    /// Its exit code.
    pub exit_code: i32,
    /// Why, in one sentence an operator can act on.
    pub reason: String,
    /// Where the URLs came from (a variable, a file).
    pub urls_from: String,
    /// Where the tokens came from.
    pub tokens_from: String,
    /// The version every tenant should run, when given.
    pub expected_version: Option<GitSha>,
    /// Every tenant, in list order.
    pub tenants: Vec<TenantCheck>,
    /// What the check could not do, and other remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl FleetCheckReport {
    /// The tenants that are not healthy.
    pub fn unhealthy(&self) -> impl Iterator<Item = &TenantCheck> {
        self.tenants.iter().filter(|t| t.health != Health::Healthy)
    }
}

/// How to check a fleet.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Every tenant must run this release (matched as the rollout probe
    /// matches it).
    pub expected: Option<GitSha>,
    /// Tenants asked at once.
    pub concurrency: usize,
    /// Where the URLs came from, for the report (`CANARY_TENANT_URLS`).
    pub urls_from: String,
    /// Where the tokens came from, for the report.
    pub tokens_from: String,
}

/// What one tenant answered with its own token and without one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    own: ProbeAnswer,
    /// `None` when not asked (no answer with the token).
    bare: Option<ProbeAnswer>,
    response_ms: u64,
}

/// Checks every tenant of `tenants` (in list order) through `probe`: with
/// its token (timed by `clock`), without one, and, for each refused token,
/// on the other tenants of the list. Sends at most `options.concurrency`
/// requests at once.
pub async fn check(
    probe: &dyn TenantProbe,
    tenants: &[Tenant],
    options: &CheckOptions,
    clock: &dyn Clock,
) -> FleetCheckReport {
    let at_once = options.concurrency.max(1);
    let observed: Vec<Observed> = stream::iter(tenants)
        .map(|t| async move {
            let started = clock.now_ms();
            let own = probe.knock(t.url(), Some(t.token())).await;
            let response_ms = clock.now_ms().saturating_sub(started);
            let bare = match own {
                ProbeAnswer::NoAnswer(_) => None,
                _ => Some(probe.knock(t.url(), None).await),
            };
            Observed {
                own,
                bare,
                response_ms,
            }
        })
        .buffered(at_once)
        .collect()
        .await;
    let (pairs, note) = cross_pairs(&observed);
    let mut takes: Vec<(usize, usize)> = stream::iter(pairs)
        .map(|(i, j)| async move {
            let answer = probe
                .knock(tenants[j].url(), Some(tenants[i].token()))
                .await;
            (i, j, answer)
        })
        .buffer_unordered(at_once)
        .filter_map(|(i, j, answer)| async move {
            matches!(answer, ProbeAnswer::Accepted(_)).then_some((i, j))
        })
        .collect()
        .await;
    takes.sort_unstable();
    let urls: Vec<&str> = tenants.iter().map(Tenant::url).collect();
    judge(&urls, &observed, &takes, options, note)
}

/// Which refused tokens to try on which other tenants: pairs `(i, j)`,
/// token `i` on URL `j`. A tenant that answers without a token proves
/// nothing by taking one, and one that did not answer cannot: neither is
/// asked. The note says when the search was narrowed or skipped.
fn cross_pairs(observed: &[Observed]) -> (Vec<(usize, usize)>, Option<String>) {
    let refused: Vec<usize> = (0..observed.len())
        .filter(|&i| matches!(observed[i].own, ProbeAnswer::Refused(_)))
        .collect();
    let can_tell = |j: usize| {
        !matches!(observed[j].own, ProbeAnswer::NoAnswer(_))
            && !matches!(observed[j].bare, Some(ProbeAnswer::Accepted(_)))
    };
    let others = observed.len().saturating_sub(1);
    let everywhere = refused.len().saturating_mul(others);
    let (targets, note): (Vec<usize>, _) = if everywhere <= MAX_CROSS_CHECKS {
        ((0..observed.len()).collect(), None)
    } else if refused.len().saturating_mul(refused.len()) <= MAX_CROSS_CHECKS {
        (
            refused.clone(),
            Some(format!(
                "{} tokens were refused: each was tried on the other tenants that refused theirs only (a token that belongs to a tenant whose own token works is not found)",
                refused.len()
            )),
        )
    } else {
        return (
            Vec::new(),
            Some(format!(
                "{} tokens were refused: too many to look for the tenants they belong to; check that the two lists are in the same order",
                refused.len()
            )),
        );
    };
    let pairs = refused
        .iter()
        .flat_map(|&i| targets.iter().map(move |&j| (i, j)))
        .filter(|&(i, j)| i != j && can_tell(j))
        .collect();
    (pairs, note)
}

/// The verdicts, from what was observed and which tenant took which refused
/// token (`takes`: `(token position, tenant position)`, 0-based, sorted).
fn judge(
    urls: &[&str],
    observed: &[Observed],
    takes: &[(usize, usize)],
    options: &CheckOptions,
    note: Option<String>,
) -> FleetCheckReport {
    let tenants: Vec<TenantCheck> = urls
        .iter()
        .zip(observed)
        .enumerate()
        .map(|(i, (url, o))| {
            let belongs = takes.iter().find(|(t, _)| *t == i).map(|(_, j)| *j);
            tenant_verdict(i, url, o, belongs.map(|j| (j, urls[j])), options)
        })
        .collect();
    let n = tenants.len();
    let bad: Vec<&TenantCheck> = tenants
        .iter()
        .filter(|t| t.health != Health::Healthy)
        .collect();
    let (outcome, reason) = if bad.is_empty() {
        let runs = options
            .expected
            .as_ref()
            .map(|sha| format!(", and run {sha}"))
            .unwrap_or_default();
        (
            FleetOutcome::Healthy,
            format!(
                "{} healthy: reachable, {} with {} token and refuse requests without one{runs}",
                if n == 1 {
                    "the tenant is".to_string()
                } else {
                    format!("all {n} tenants are")
                },
                if n == 1 { "answers" } else { "answer" },
                if n == 1 { "its" } else { "their" },
            ),
        )
    } else if n > 0 && bad.iter().all(|t| t.health == Health::Unreachable) && bad.len() == n {
        (
            FleetOutcome::Unreachable,
            format!(
                "no tenant answered, nothing could be checked: {}",
                listed(&bad)
            ),
        )
    } else {
        (
            FleetOutcome::Unhealthy,
            format!("{} of {n} tenants unhealthy: {}", bad.len(), listed(&bad)),
        )
    };
    let mut notes: Vec<String> = note.into_iter().collect();
    if options.expected.is_none() {
        let mut versions: Vec<&str> = tenants
            .iter()
            .filter_map(|t| t.version.as_deref())
            .collect();
        versions.sort_unstable();
        versions.dedup();
        if versions.len() > 1 {
            notes.push(format!(
                "the fleet runs {} versions ({}); pass the release's sha to name the tenants behind",
                versions.len(),
                versions.join(", ")
            ));
        }
    }
    FleetCheckReport {
        schema: FLEET_CHECK_SCHEMA,
        outcome,
        exit_code: outcome.exit_code(),
        reason,
        urls_from: options.urls_from.clone(),
        tokens_from: options.tokens_from.clone(),
        expected_version: options.expected.clone(),
        tenants,
        notes,
    }
}

/// The unhealthy tenants for a reason: the first ten, then a count.
fn listed(bad: &[&TenantCheck]) -> String {
    const SHOWN: usize = 10;
    let mut parts: Vec<String> = bad
        .iter()
        .take(SHOWN)
        .map(|t| format!("{} ({}): {}", t.url, t.health.as_str(), t.detail))
        .collect();
    if bad.len() > SHOWN {
        parts.push(format!("and {} more", bad.len() - SHOWN));
    }
    parts.join("; ")
}

/// One tenant's verdict. `belongs`: the tenant (0-based position, URL) that
/// takes this tenant's refused token.
fn tenant_verdict(
    i: usize,
    url: &str,
    o: &Observed,
    belongs: Option<(usize, &str)>,
    options: &CheckOptions,
) -> TenantCheck {
    let position = i + 1;
    let mut version = None;
    let mut token_belongs_to = None;
    let (health, detail) = match (&o.own, belongs) {
        (ProbeAnswer::NoAnswer(why), _) => (Health::Unreachable, why.clone()),
        (ProbeAnswer::Refused(_), Some((j, other))) => {
            token_belongs_to = Some(j + 1);
            (
                Health::Misaligned,
                format!(
                    "the token in position {position} belongs to tenant {} ({other}): the two lists are out of order",
                    j + 1
                ),
            )
        }
        (ProbeAnswer::Refused(status), None) => (
            Health::WrongToken,
            format!(
                "refuses the token in position {position} (status {status}), and no other tenant of the list takes it: a wrong or expired token"
            ),
        ),
        (ProbeAnswer::Status(status, what), _) => (
            Health::Broken,
            format!("answered status {status} with its token: {what}"),
        ),
        (ProbeAnswer::Accepted(Err(why)), _) => (
            Health::Broken,
            format!("took its token but reported no version: {why}"),
        ),
        (ProbeAnswer::Accepted(Ok(runs)), _) => {
            version = Some(runs.clone());
            match (&o.bare, &options.expected) {
                (Some(ProbeAnswer::Accepted(_)), _) => (
                    Health::Unprotected,
                    "answers its probe without a token too: its admin endpoint is open"
                        .to_string(),
                ),
                (Some(ProbeAnswer::Status(status, _)), _) => (
                    Health::Broken,
                    format!("answered status {status} without a token, not 401"),
                ),
                (Some(ProbeAnswer::NoAnswer(why)), _) => (
                    Health::Broken,
                    format!("did not answer a request without a token: {why}"),
                ),
                (_, Some(sha)) if !sha.matches_version(runs) => {
                    (Health::OldVersion, format!("runs {runs}, not {sha}"))
                }
                _ => (Health::Healthy, String::new()),
            }
        }
    };
    TenantCheck {
        position,
        url: url.to_string(),
        health,
        version,
        response_ms: o.own.status().map(|_| o.response_ms),
        status_with_token: o.own.status(),
        status_without_token: o.bare.as_ref().and_then(ProbeAnswer::status),
        token_belongs_to,
        detail,
    }
}

#[cfg(test)]
mod tests;
