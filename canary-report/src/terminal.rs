//! Text for a terminal: the summary of a run, the progress lines printed as
//! it goes, and usage errors. The caller decides colour and where to print.

use std::fmt::Write as _;

use canary_core::{
    CheckStatus, Digest, ImageReport, ImageStatus, Outcome, PromotionReport, State, Tag,
    TenantReport, UsageError,
};

use crate::words;

/// A time in ms since the Unix epoch as RFC 3339 (UTC, seconds).
pub fn time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Untrusted text on one line: control characters, newlines included,
/// become spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn outcome_color(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Promoted | Outcome::RolledBack | Outcome::Passed | Outcome::Repaired => "1;32",
        Outcome::Skipped => "1;33",
        Outcome::Rejected | Outcome::Inconclusive | Outcome::Reverted => "1;31",
        Outcome::Usage | Outcome::Failed | Outcome::Inconsistent | Outcome::Interrupted => "1;35",
    }
}

fn digest(d: Option<&Digest>) -> String {
    d.map_or_else(|| "(none)".to_string(), Digest::short)
}

/// An image's promoted tag before and after, as far as the run read it:
/// `(not read)` when the run ended before reading it, `(none)` when it did
/// not exist.
pub(crate) fn before_after(i: &ImageReport, short: bool) -> (String, String) {
    let shown = |d: Option<&Digest>| match (d, short) {
        (Some(d), true) => d.short(),
        (Some(d), false) => d.to_string(),
        (None, _) => "(none)".to_string(),
    };
    if !i.before_read && i.after.is_none() {
        return ("(not read)".to_string(), "(not read)".to_string());
    }
    let before = if i.before_read {
        shown(i.before.as_ref())
    } else {
        "(not read)".to_string()
    };
    let to = match i.status {
        ImageStatus::WouldMove => i.staging_digest.as_ref(),
        _ => i.after.as_ref(),
    };
    (before, shown(to))
}

fn image_line(i: &ImageReport, promoted: &str) -> String {
    let (before, to) = before_after(i, true);
    let what = match i.status {
        // The promoter reads every moved tag back before it says so.
        ImageStatus::Moved | ImageStatus::Restored => {
            format!("{}, verified", words::image(i.status))
        }
        status => words::image(status).to_string(),
    };
    let mut line = format!("  {}:{promoted}  {before} -> {to}  ({what})", i.image);
    if let Some(foreign) = &i.overwritten {
        let _ = write!(
            line,
            "\n      overwrote {foreign}, which another writer put there during the move"
        );
    }
    if let Some(e) = &i.error {
        let _ = write!(line, "\n      {e}");
    }
    line
}

fn tenant_lines(out: &mut String, t: &TenantReport) {
    let (n, passed) = (
        t.checks.len(),
        t.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Passed)
            .count(),
    );
    let version = t
        .version
        .as_deref()
        .map(|v| format!(", runs {v}"))
        .unwrap_or_default();
    let _ = writeln!(out, "  {}  {passed}/{n} checks passed{version}", t.url);
    for c in &t.checks {
        if c.status == CheckStatus::Passed {
            continue;
        }
        let attempts = if c.attempts > 1 {
            format!(" after {} attempts", c.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    {} {}{attempts}",
            words::check_mark(c.status),
            c.name
        );
        if !c.expected.is_empty() {
            let _ = writeln!(out, "         expected: {}", c.expected);
        }
        let _ = writeln!(out, "         actual:   {}", c.actual);
    }
}

/// The human summary of a report: tenants and the checks that did not pass,
/// images before → after, the outcome (in colour when `color`), the reason
/// and a hint. It quotes tenants and registries verbatim: a caller that
/// prints it where text can act (a CI log) must guard it there.
pub fn summary(report: &PromotionReport, color: bool) -> String {
    let mut out = String::new();
    let sha = report
        .sha
        .as_ref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    let dry = if report.dry_run { " (dry run)" } else { "" };
    let _ = writeln!(out, "canary {}{sha}{dry}", report.command.as_str());
    if report
        .tenants
        .iter()
        .any(|t| !t.checks.is_empty() || t.version.is_some())
    {
        let _ = writeln!(out, "tenants:");
        for t in &report.tenants {
            tenant_lines(&mut out, t);
        }
    }
    let promoted = report.promoted_tag.as_ref().map_or("latest", Tag::as_str);
    if !report.images.is_empty() {
        let _ = writeln!(out, "images:");
        for i in &report.images {
            let _ = writeln!(out, "{}", image_line(i, promoted));
        }
    }
    if let Some(a) = &report.analysis {
        out.push_str(&crate::analysis::text(a));
    }
    if let Some(g) = &report.guard {
        let verdicts: Vec<&str> = g.rounds.iter().map(|r| r.verdict.as_str()).collect();
        let _ = writeln!(
            out,
            "guard: {} rounds [{}]; reverts after {} red in a row, to {}",
            g.rounds.len(),
            verdicts.join(", "),
            g.failures_to_revert,
            g.revert_to.as_ref().map_or("(not found)", |s| s.as_str())
        );
    }
    for n in &report.notifications {
        let _ = match &n.error {
            None => writeln!(out, "notified {}: {}", n.target, n.event),
            Some(e) => writeln!(
                out,
                "warning: notifying {} of {} failed after {} attempts: {e}",
                n.target, n.event, n.attempts
            ),
        };
    }
    let _ = writeln!(
        out,
        "outcome: {} (exit {})",
        paint(
            report.outcome.as_str(),
            outcome_color(report.outcome),
            color
        ),
        report.exit_code
    );
    let _ = writeln!(out, "reason: {}", report.reason);
    if let Some(hint) = report.error.as_ref().and_then(|e| e.hint.as_deref()) {
        let _ = writeln!(out, "hint: {hint}");
    }
    out
}

/// A usage error and how to fix it, for stderr.
pub fn usage_error(e: &UsageError) -> String {
    format!("error: {e}\n  fix: {}", e.fix())
}

/// The progress line for entering `state`, for the states worth a line.
pub fn progress_state(state: State) -> Option<String> {
    let text = match state {
        State::Prechecked => "prechecked: every staging tag exists",
        State::AwaitingRollout => "waiting for the canary fleet to run the release",
        State::Verifying => "running the smoke suite on the canary fleet",
        State::Promoting => "moving the promoted tag",
        _ => return None,
    };
    Some(format!("canary: {text}"))
}

/// The progress line for a rollout probe round.
pub fn progress_rollout(converged: usize, total: usize) -> String {
    format!("canary: rollout {converged}/{total} tenants run the release")
}

/// The progress line for a tenant whose checks are done.
pub fn progress_tenant(tenant: &TenantReport) -> String {
    let failed = tenant
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Passed)
        .count();
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    format!(
        "canary: {verdict:<6} {} ({} checks, {failed} not passed)",
        tenant.url,
        tenant.checks.len()
    )
}

/// The progress line for an image whose tag was moved, restored or left.
pub fn progress_image(image: &ImageReport) -> String {
    format!(
        "canary: {} now {} ({})",
        image.image,
        digest(image.after.as_ref()),
        crate::words::image(image.status)
    )
}

#[cfg(test)]
mod tests {
    use canary_core::ImageRef;

    use super::*;

    #[test]
    fn progress_spells_image_statuses_as_the_report_does() {
        let mut image = ImageReport {
            image: ImageRef::parse("ghcr.io/acme/platform").unwrap(),
            before_read: true,
            overwritten: None,
            staging_digest: None,
            before: None,
            after: None,
            status: ImageStatus::Moved,
            error: None,
        };
        assert_eq!(
            progress_image(&image),
            "canary: ghcr.io/acme/platform now (none) (moved)"
        );
        image.status = ImageStatus::Restored;
        assert!(progress_image(&image).ends_with("(restored)"));
        image.status = ImageStatus::Unchanged;
        assert!(progress_image(&image).ends_with("(unchanged)"));
    }
}
