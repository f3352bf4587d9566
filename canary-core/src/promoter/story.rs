//! What a run found, phase by phase, and the report's reason worded from it
//! once, when the run ends. No phase writes the reason itself.

use crate::compensation::Compensation;
use crate::machine::smoke::SmokeEvent;
use crate::machine::{Event, Outcome, State};
use crate::report::{Command, ErrorReport, ImageStatus, PromotionReport, TenantReport};
use crate::shard::Shard;
use crate::suite::CheckStatus;
use crate::types::{ImageRef, Release, Tag};

/// The move that failed and started compensation.
#[derive(Debug, Clone)]
pub(super) struct MoveFailure {
    /// The image whose move failed.
    pub(super) image: ImageRef,
    /// The error, with its cause chain.
    pub(super) message: String,
}

/// What each phase of a run found.
#[derive(Debug, Default)]
pub(super) struct Story {
    /// An event the machine refused: a bug in the promoter.
    pub(super) internal: Option<String>,
    /// Why the precheck failed.
    pub(super) precheck: Option<String>,
    /// Why the rollout wait ended before every tenant ran the release.
    pub(super) rollout: Option<String>,
    /// The checks' verdict.
    pub(super) verdict: Option<String>,
    /// The move that failed.
    pub(super) move_failure: Option<MoveFailure>,
    /// What compensation found.
    pub(super) compensation: Option<Compensation>,
    /// A signal asked the run to stop.
    pub(super) interrupted: bool,
}

impl Story {
    /// The sentence of the last phase the run reached.
    fn why(&self, images: &[ImageRef], promoted: &Tag) -> String {
        if let Some(internal) = &self.internal {
            return internal.clone();
        }
        if let Some(precheck) = &self.precheck {
            return precheck.clone();
        }
        if let Some(failure) = &self.move_failure {
            let mut why = format!(
                "moving {}:{promoted} failed: {}",
                failure.image, failure.message
            );
            if let Some(compensation) = &self.compensation {
                why.push_str(&compensation.reason(images, promoted));
            }
            return why;
        }
        self.rollout
            .clone()
            .or_else(|| self.verdict.clone())
            .unwrap_or_default()
    }
}

/// The verdict of a fleet's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Every check passed on every tenant.
    Passed,
    /// At least one check failed.
    Failed,
    /// No failure, but at least one check had no verdict.
    Inconclusive,
}

impl Verdict {
    /// The event for the promotion machine.
    pub(super) fn event(self) -> Event {
        match self {
            Self::Passed => Event::ChecksPassed,
            Self::Failed => Event::ChecksFailed,
            Self::Inconclusive => Event::ChecksInconclusive,
        }
    }

    /// The event for the smoke machine.
    pub(super) fn smoke_event(self) -> SmokeEvent {
        match self {
            Self::Passed => SmokeEvent::ChecksPassed,
            Self::Failed => SmokeEvent::ChecksFailed,
            Self::Inconclusive => SmokeEvent::ChecksInconclusive,
        }
    }
}

/// The verdict of a fleet's checks, and its reason.
pub(super) fn verdict(tenants: &[TenantReport]) -> (Verdict, String) {
    let failed: Vec<String> = tenants
        .iter()
        .flat_map(|t| {
            t.checks
                .iter()
                .filter(|c| c.status == CheckStatus::Failed)
                .map(move |c| {
                    format!(
                        "`{}` on {}: expected {}, got {}",
                        c.name, t.url, c.expected, c.actual
                    )
                })
        })
        .collect();
    let errors: Vec<String> = tenants
        .iter()
        .flat_map(|t| {
            t.checks
                .iter()
                .filter(|c| c.status == CheckStatus::Error)
                .map(move |c| format!("`{}` on {}: {}", c.name, t.url, c.actual))
        })
        .collect();
    let checks: usize = tenants.iter().map(|t| t.checks.len()).sum();
    if let Some(first) = failed.first() {
        let more = if failed.len() > 1 {
            format!(" (and {} more failed checks)", failed.len() - 1)
        } else {
            String::new()
        };
        (Verdict::Failed, format!("check {first}{more}"))
    } else if let Some(first) = errors.first() {
        let more = if errors.len() > 1 {
            format!(" (and {} more)", errors.len() - 1)
        } else {
            String::new()
        };
        (
            Verdict::Inconclusive,
            format!("no verdict: check {first}{more}"),
        )
    } else {
        (
            Verdict::Passed,
            format!("all {checks} checks passed on {} tenants", tenants.len()),
        )
    }
}

/// The smoke verdict combined with the metrics': a failed check or metric
/// rejects; otherwise a check or metric without a verdict is inconclusive.
/// The reason names the smoke checks first, then the metrics.
pub(super) fn with_analysis(
    smoke: (Verdict, String),
    analysis: Option<&crate::analysis::AnalysisReport>,
) -> (Verdict, String) {
    use crate::analysis::VerdictStatus;
    let Some(analysis) = analysis else {
        return smoke;
    };
    let (verdict, reason) = smoke;
    let metrics = analysis.summary();
    match (verdict, analysis.status()) {
        (Verdict::Failed, _) => (Verdict::Failed, reason),
        (_, VerdictStatus::Fail) => (Verdict::Failed, metrics),
        (Verdict::Inconclusive, _) => (Verdict::Inconclusive, reason),
        (_, VerdictStatus::Inconclusive) => {
            (Verdict::Inconclusive, format!("no verdict: {metrics}"))
        }
        (Verdict::Passed, VerdictStatus::Pass) => (Verdict::Passed, format!("{reason}; {metrics}")),
    }
}

/// Sets the outcome and the reason of a finished run, worded from its story.
pub(super) fn finish(report: &mut PromotionReport, state: State, release: &Release, story: &Story) {
    let promoted = release.promoted_tag();
    let image_refs: Vec<ImageRef> = report.images.iter().map(|i| i.image.clone()).collect();
    let why = story.why(&image_refs, &promoted);
    let Some(outcome) = state.outcome() else {
        report.reason = why;
        return;
    };
    let images = report.images.len();
    let reason = match state {
        State::Promoted if report.command == Command::Promote => format!(
            "manual promotion without verification ({}); {promoted} of {images} images moved to {} and verified",
            report.manual_reason.as_deref().unwrap_or(""),
            release.staging_tag()
        ),
        State::Promoted => format!(
            "{why}; {promoted} of {images} images moved to {} and verified",
            release.staging_tag()
        ),
        State::RolledBack => format!(
            "{promoted} of {images} images moved back to {} and verified",
            release.staging_tag()
        ),
        State::Skipped if report.dry_run && !report.tenants.is_empty() => {
            for image in &mut report.images {
                if image.before != image.staging_digest {
                    image.status = ImageStatus::WouldMove;
                }
            }
            format!("dry run: {why}; would move {promoted} of {images} images")
        }
        State::Skipped => "no canary tenant configured (on_empty_fleet = \"skip\"); nothing verified, nothing moved"
            .to_string(),
        State::Rejected | State::Inconclusive => format!("{why}; {promoted} unchanged"),
        State::Inconsistent => format!("INCONSISTENT: {why}"),
        State::Interrupted => format!("interrupted by a signal before any write; {promoted} unchanged"),
        _ => why,
    };
    report.set_outcome(outcome, reason);
    if story.interrupted {
        // A signal during the moves: the machine finished them (restored,
        // or verified when every image had moved). Say so; a failed
        // restore stays `inconsistent`.
        match state {
            State::Failed if story.compensation.is_some() => report.set_outcome(
                Outcome::Interrupted,
                format!("interrupted by a signal during the moves; every image moved was put back and verified; {promoted} unchanged"),
            ),
            State::Promoted | State::RolledBack => report.set_outcome(
                Outcome::Interrupted,
                format!("interrupted by a signal after every image had moved; {promoted} of {images} images verified on {}", release.staging_tag()),
            ),
            _ => {}
        }
    }
    if state == State::Inconsistent && report.error.is_none() {
        report.error = Some(ErrorReport {
            kind: "inconsistent".to_string(),
            message: report.reason.clone(),
            hint: Some(
                "fix each image listed by hand, or run `canary rollback` to a known-good sha"
                    .to_string(),
            ),
        });
    }
}

/// Words a shard's partial report: a green shard has `passed` (it moved
/// nothing; `decide` does), and every reason names the shard.
pub(super) fn finish_shard(report: &mut PromotionReport, shard: Shard, state: State) {
    let reason = std::mem::take(&mut report.reason);
    if state == State::Skipped {
        for image in &mut report.images {
            image.status = ImageStatus::Unchanged;
        }
        let checked = if report.tenants.is_empty() {
            "owns no tenant of this fleet".to_string()
        } else {
            verdict(&report.tenants).1
        };
        report.set_outcome(
            Outcome::Passed,
            format!("shard {shard}: {checked}; nothing moved: `canary decide` merges every shard's report"),
        );
    } else {
        // A shard never moves anything: "latest unchanged" says nothing.
        let unchanged = report
            .promoted_tag
            .as_ref()
            .map(|t| format!("; {t} unchanged"))
            .unwrap_or_default();
        let reason = reason.strip_suffix(unchanged.as_str()).unwrap_or(&reason);
        let outcome = report.outcome;
        report.set_outcome(outcome, format!("shard {shard}: {reason}"));
    }
}
