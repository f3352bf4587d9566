//! [`PromotionReport`]: the single source for every rendering (terminal,
//! `--json`, JUnit, Markdown step summary, GitHub outputs, post-mortem).

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

/// One image of the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReport {
    /// The repository.
    pub image: ImageRef,
    /// The digest of `staging-<sha>`, once read.
    pub staging_digest: Option<Digest>,
    /// `latest` before the run (`None`: did not exist or not read).
    pub before: Option<Digest>,
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

impl PromotionReport {
    /// A Markdown post-mortem skeleton: the sha that broke, what the canary
    /// checks saw, what moved, and the questions the seed's runbook asks.
    pub fn postmortem(&self) -> String {
        use std::fmt::Write as _;
        let sha = self.sha.as_ref().map_or("(unknown)", GitSha::as_str);
        let mut md = String::new();
        let _ = writeln!(md, "# Post-mortem: release `{sha}`\n");
        let _ = writeln!(md, "- **Command:** `canary {}`", command_name(self.command));
        let _ = writeln!(
            md,
            "- **Outcome:** `{}` (exit {})",
            self.outcome, self.exit_code
        );
        let _ = writeln!(md, "- **Reason:** {}", one_line(&self.reason));
        if let Some(reason) = &self.manual_reason {
            let _ = writeln!(md, "- **Manual promotion reason:** {}", one_line(reason));
        }
        let _ = writeln!(md, "\n## What the canary checks saw\n");
        if self.tenants.is_empty() {
            let _ = writeln!(md, "No canary tenant was checked.");
        } else {
            let (all, passed) = self.check_counts();
            let _ = writeln!(
                md,
                "{passed} of {all} checks passed on {} tenants.\n",
                self.tenants.len()
            );
            let _ = writeln!(md, "| tenant | check | status | expected | actual |");
            let _ = writeln!(md, "|---|---|---|---|---|");
            for t in &self.tenants {
                for c in &t.checks {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {:?} | {} | {} |",
                        cell(&t.url),
                        cell(&c.name),
                        c.status,
                        cell(&c.expected),
                        cell(&c.actual)
                    );
                }
            }
        }
        let _ = writeln!(md, "\n## Images\n");
        let _ = writeln!(md, "| image | staging | before | after | status |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for i in &self.images {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:?} |",
                cell(&i.image.to_string()),
                opt_digest(i.staging_digest.as_ref()),
                opt_digest(i.before.as_ref()),
                opt_digest(i.after.as_ref()),
                i.status
            );
        }
        let _ = writeln!(md, "\n## Questions\n");
        let _ = writeln!(
            md,
            "- Which commit broke, and what did it change? (`{sha}`)"
        );
        let _ = writeln!(
            md,
            "- Why didn't canary catch it? A new code path the smoke suite doesn't exercise, prod-only data, config drift between canary and prod, or a cross-tenant interaction?"
        );
        let _ = writeln!(md, "- Which check should the smoke suite grow so the same class of bug is caught next time?");
        let _ = writeln!(md, "- Was `latest` rolled back (`canary rollback <sha>`), and when did prod tenants pick it up?");
        md
    }
}

fn command_name(c: Command) -> &'static str {
    match c {
        Command::Verify => "verify",
        Command::Promote => "promote",
        Command::Rollback => "rollback",
        Command::Smoke => "smoke",
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A Markdown table cell: one line, pipes escaped, at most 200 characters.
fn cell(s: &str) -> String {
    let s = one_line(s).replace('|', "\\|");
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn opt_digest(d: Option<&Digest>) -> String {
    d.map_or_else(|| "—".to_string(), |d| format!("`{}`", d.short()))
}
