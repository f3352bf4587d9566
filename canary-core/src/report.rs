//! [`PromotionReport`]: the single source for every rendering (terminal,
//! `--json`, JUnit, Markdown step summary, GitHub outputs, post-mortem).
//! The data lives here; the renderings live in `canary-report` (see
//! ARCHITECTURE.md), so none of them can add what the report does not hold.

use serde::{Deserialize, Serialize};

use crate::error::{Error, UsageError};
use crate::machine::{Outcome, State};
use crate::suite::{CheckResult, CheckStatus};
use crate::types::{Digest, GitSha, ImageRef, Tag};

/// The version of the report's JSON shape.
pub const REPORT_SCHEMA: u32 = 1;

/// Which command produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `canary verify`
    Verify,
    /// `canary promote --no-verify`
    Promote,
    /// `canary rollback`
    Rollback,
    /// `canary smoke`
    Smoke,
    /// `canary repair`
    Repair,
    /// `canary guard`
    Guard,
    /// `canary fleet check` or `canary fleet enroll` (only a usage error
    /// is ever a `PromotionReport` of it: their reports are their own)
    Fleet,
}

impl Command {
    /// The command's one spelling: its name on the command line and in the
    /// JSON report (`verify`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Promote => "promote",
            Self::Rollback => "rollback",
            Self::Smoke => "smoke",
            Self::Repair => "repair",
            Self::Guard => "guard",
            Self::Fleet => "fleet",
        }
    }
}

/// What happened to one image's promoted tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Not moved (yet); `latest` is where it was.
    Unchanged,
    /// Dry run: would have moved.
    WouldMove,
    /// Moved to the staging digest and verified.
    Moved,
    /// Moved, then put back on its previous digest and verified.
    Restored,
    /// Not where it should be; `after` is what a fresh read returned.
    Mixed,
}

impl ImageStatus {
    /// The status's one spelling, the same as in the JSON report
    /// (`would_move`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unchanged => "unchanged",
            Self::WouldMove => "would_move",
            Self::Moved => "moved",
            Self::Restored => "restored",
            Self::Mixed => "mixed",
        }
    }
}

/// One image of the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReport {
    /// The repository.
    pub image: ImageRef,
    /// The digest of `staging-<sha>`, once read.
    pub staging_digest: Option<Digest>,
    /// `latest` before the move (`None`: did not exist, or not read — see
    /// `before_read`).
    pub before: Option<Digest>,
    /// Whether `before` was read: `false` when the run ended before reading
    /// the promoted tag, so `before: null` does not claim it was absent.
    #[serde(default)]
    pub before_read: bool,
    /// A digest another writer put on the promoted tag during the move,
    /// which this run then overwrote (re-asserting its release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwritten: Option<Digest>,
    /// `latest` after the run, as last read from the registry.
    pub after: Option<Digest>,
    /// What happened.
    pub status: ImageStatus,
    /// Why a move or restore failed.
    pub error: Option<String>,
}

/// One canary tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantReport {
    /// The tenant's base URL.
    pub url: String,
    /// The version it last reported (rollout probe), if probed.
    pub version: Option<String>,
    /// The check results, in suite order.
    pub checks: Vec<CheckResult>,
}

impl TenantReport {
    /// Whether every check passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.status == CheckStatus::Passed)
    }
}

/// An error, as reports carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// The kind (`usage` for bad input).
    pub kind: String,
    /// The message with its cause chain.
    pub message: String,
    /// How to fix it, where known.
    pub hint: Option<String>,
}

impl From<&Error> for ErrorReport {
    fn from(e: &Error) -> Self {
        Self {
            kind: e.kind().name().to_string(),
            message: e.chain(),
            hint: e.hint().map(str::to_string),
        }
    }
}

impl From<&UsageError> for ErrorReport {
    fn from(e: &UsageError) -> Self {
        Self {
            kind: "usage".to_string(),
            message: e.to_string(),
            hint: Some(e.fix().to_string()),
        }
    }
}

/// What the run wrote to the release ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerReport {
    /// The intent records written (one per image), by id.
    #[serde(default)]
    pub intent: Vec<Digest>,
    /// The outcome records written (one per image), by id.
    #[serde(default)]
    pub outcome: Vec<Digest>,
    /// Records that could not be written or read; a failed outcome record
    /// never changes the outcome.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Milliseconds spent in each phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Run start, ms since the Unix epoch.
    pub started_ms: u64,
    /// Run end, ms since the Unix epoch.
    pub finished_ms: u64,
    /// Waiting for rollout.
    pub rollout_ms: Option<u64>,
    /// Running the suite on the fleet.
    pub checks_ms: Option<u64>,
    /// Moving (and restoring) images.
    pub moves_ms: Option<u64>,
}

/// The record of one run: what was checked, what moved, the outcome and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionReport {
    /// [`REPORT_SCHEMA`].
    pub schema: u32,
    /// The command.
    pub command: Command,
    /// The release's sha (full, once resolved).
    pub sha: Option<GitSha>,
    /// The outcome.
    pub outcome: Outcome,
    /// The exit code of the outcome.
    pub exit_code: i32,
    /// Why, in one sentence an operator can act on.
    pub reason: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The reason given for a manual promotion.
    pub manual_reason: Option<String>,
    /// The staging tag (`staging-<sha>`).
    pub staging_tag: Option<Tag>,
    /// The promoted tag (`latest`).
    pub promoted_tag: Option<Tag>,
    /// Every image of the release, in move order.
    pub images: Vec<ImageReport>,
    /// Every canary tenant, in fleet order.
    pub tenants: Vec<TenantReport>,
    /// The states the run passed through.
    pub states: Vec<State>,
    /// Phase timings.
    pub timings: Timings,
    /// The error behind a `usage`, `failed` or `inconsistent` outcome.
    pub error: Option<ErrorReport>,
    /// The ledger records this run wrote (`None`: no ledger configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerReport>,
    /// A shard's partial report (`verify --shard K/N`): which shard, and
    /// of which fleet and suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardReport>,
    /// A `decide`: how many shards' partial reports it merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_shards: Option<u32>,
    /// A `guard`: its rounds, and where it would revert to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardReport>,
    /// The notifications sent about this outcome (`[[notify]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationReport>,
    /// The metric analysis, when one is configured: every metric's verdict
    /// and the numbers behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::analysis::AnalysisReport>,
}

/// What `canary guard` saw, round by round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardReport {
    /// The release `latest` goes back to on red.
    pub revert_to: Option<GitSha>,
    /// Red rounds in a row that revert.
    pub failures_to_revert: u32,
    /// Every round, in order.
    pub rounds: Vec<GuardRound>,
}

/// One round of the guard suite over the production fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardRound {
    /// When it ended (ms since the Unix epoch).
    pub at_ms: u64,
    /// `passed`, `failed` or `no verdict`.
    pub verdict: String,
    /// Checks that failed.
    pub failed: usize,
    /// Checks with no verdict.
    pub errors: usize,
    /// Why the round had no verdict, when not the checks'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One notification about a report's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationReport {
    /// The target, named by the variable holding its URL (never the URL).
    pub target: String,
    /// The outcome sent.
    pub event: String,
    /// Whether the webhook accepted it.
    pub sent: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PromotionReport {
    /// An empty report for `command`, outcome not yet known.
    pub fn new(command: Command, sha: Option<GitSha>) -> Self {
        Self {
            schema: REPORT_SCHEMA,
            command,
            sha,
            outcome: Outcome::Failed,
            exit_code: Outcome::Failed.exit_code(),
            reason: String::new(),
            dry_run: false,
            manual_reason: None,
            staging_tag: None,
            promoted_tag: None,
            images: Vec::new(),
            tenants: Vec::new(),
            states: vec![State::Planned],
            timings: Timings::default(),
            error: None,
            ledger: None,
            shard: None,
            merged_shards: None,
            guard: None,
            notifications: Vec::new(),
            analysis: None,
        }
    }

    /// A report for bad input found before any request.
    pub fn usage(command: Command, error: &UsageError) -> Self {
        let mut r = Self::new(command, None);
        r.set_outcome(Outcome::Usage, error.to_string());
        r.error = Some(error.into());
        r
    }

    /// Sets the outcome, its exit code and the reason.
    pub fn set_outcome(&mut self, outcome: Outcome, reason: impl Into<String>) {
        self.outcome = outcome;
        self.exit_code = outcome.exit_code();
        self.reason = reason.into();
    }

    /// Every check that did not pass, with its tenant.
    pub fn failed_checks(&self) -> impl Iterator<Item = (&TenantReport, &CheckResult)> {
        self.tenants.iter().flat_map(|t| {
            t.checks
                .iter()
                .filter(|c| matches!(c.status, CheckStatus::Failed | CheckStatus::Error))
                .map(move |c| (t, c))
        })
    }

    /// How many checks ran in all, and how many passed.
    pub fn check_counts(&self) -> (usize, usize) {
        let all = self.tenants.iter().map(|t| t.checks.len()).sum();
        let passed = self
            .tenants
            .iter()
            .flat_map(|t| &t.checks)
            .filter(|c| c.status == CheckStatus::Passed)
            .count();
        (all, passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` and serde agree on every variant, so a word read in the
    /// terminal is the word a script finds in the JSON report.
    fn same_as_serde<T: Serialize + Copy>(all: &[T], as_str: fn(T) -> &'static str) {
        for v in all {
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::String(as_str(*v).to_string())
            );
        }
    }

    #[test]
    fn every_status_has_one_spelling() {
        same_as_serde(
            &[
                Command::Verify,
                Command::Promote,
                Command::Rollback,
                Command::Smoke,
                Command::Repair,
                Command::Guard,
                Command::Fleet,
            ],
            Command::as_str,
        );
        same_as_serde(
            &[
                ImageStatus::Unchanged,
                ImageStatus::WouldMove,
                ImageStatus::Moved,
                ImageStatus::Restored,
                ImageStatus::Mixed,
            ],
            ImageStatus::as_str,
        );
        same_as_serde(
            &[
                CheckStatus::Passed,
                CheckStatus::Failed,
                CheckStatus::Error,
                CheckStatus::NotRun,
            ],
            CheckStatus::as_str,
        );
        same_as_serde(
            &[
                Outcome::Promoted,
                Outcome::RolledBack,
                Outcome::Passed,
                Outcome::Skipped,
                Outcome::Rejected,
                Outcome::Inconclusive,
                Outcome::Usage,
                Outcome::Failed,
                Outcome::Inconsistent,
            ],
            Outcome::as_str,
        );
        same_as_serde(
            &[
                State::Planned,
                State::Prechecked,
                State::AwaitingRollout,
                State::Verifying,
                State::Promoting,
                State::Promoted,
                State::Rejected,
                State::Inconclusive,
                State::Skipped,
                State::Failed,
                State::RolledBack,
                State::Inconsistent,
            ],
            State::as_str,
        );
        assert_eq!(
            Outcome::RolledBack.to_string(),
            Outcome::RolledBack.as_str()
        );
        assert_eq!(State::AwaitingRollout.to_string(), "awaiting_rollout");
    }
}
