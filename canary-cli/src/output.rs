//! Human output: the summary of a report, progress lines, errors with hints.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;

use canary_core::promoter::Observer;
use canary_core::status::StatusReport;
use canary_core::{
    CheckStatus, ImageReport, ImageStatus, Outcome, PromotionReport, State, TenantReport,
    UsageError,
};

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty.
pub(crate) fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
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
        Outcome::Promoted | Outcome::RolledBack | Outcome::Passed => "1;32",
        Outcome::Skipped => "1;33",
        Outcome::Rejected | Outcome::Inconclusive => "1;31",
        Outcome::Usage | Outcome::Failed | Outcome::Inconsistent => "1;35",
    }
}

fn check_mark(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "ok  ",
        CheckStatus::Failed => "FAIL",
        CheckStatus::Error => "ERR ",
        CheckStatus::NotRun => "skip",
    }
}

fn digest(d: Option<&canary_core::Digest>) -> String {
    d.map_or_else(|| "(none)".to_string(), canary_core::Digest::short)
}

fn image_line(i: &ImageReport, promoted: &str) -> String {
    let (what, to) = match i.status {
        ImageStatus::Unchanged => ("unchanged", i.after.as_ref()),
        ImageStatus::WouldMove => ("would move", i.staging_digest.as_ref()),
        ImageStatus::Moved => ("moved, verified", i.after.as_ref()),
        ImageStatus::Restored => ("restored, verified", i.after.as_ref()),
        ImageStatus::Mixed => ("MIXED", i.after.as_ref()),
    };
    let mut line = format!(
        "  {}:{promoted}  {} -> {}  ({what})",
        i.image,
        digest(i.before.as_ref()),
        digest(to)
    );
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
        let _ = writeln!(out, "    {} {}{attempts}", check_mark(c.status), c.name);
        if !c.expected.is_empty() {
            let _ = writeln!(out, "         expected: {}", c.expected);
        }
        let _ = writeln!(out, "         actual:   {}", c.actual);
    }
}

/// The human summary of a report.
pub(crate) fn summary(report: &PromotionReport, color: bool) -> String {
    let mut out = String::new();
    let command = serde_json::to_value(report.command)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let sha = report
        .sha
        .as_ref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    let dry = if report.dry_run { " (dry run)" } else { "" };
    let _ = writeln!(out, "canary {command}{sha}{dry}");
    if !report.tenants.is_empty()
        && report
            .tenants
            .iter()
            .any(|t| !t.checks.is_empty() || t.version.is_some())
    {
        let _ = writeln!(out, "tenants:");
        for t in &report.tenants {
            tenant_lines(&mut out, t);
        }
    }
    let promoted = report
        .promoted_tag
        .as_ref()
        .map_or("latest", canary_core::Tag::as_str);
    if !report.images.is_empty() {
        let _ = writeln!(out, "images:");
        for i in &report.images {
            let _ = writeln!(out, "{}", image_line(i, promoted));
        }
    }
    let _ = writeln!(
        out,
        "outcome: {} (exit {})",
        paint(
            &report.outcome.to_string(),
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

/// The human form of `canary status`.
pub(crate) fn status(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "images:");
    for i in &report.images {
        let at = match (&i.digest, &i.error) {
            (_, Some(e)) => format!("error: {e}"),
            (None, None) => "does not exist".to_string(),
            (Some(d), None) => {
                let tags: Vec<&str> = i
                    .staging_tags
                    .iter()
                    .map(canary_core::Tag::as_str)
                    .collect();
                let which = if tags.is_empty() {
                    format!("no staging tag among {} scanned", i.scanned)
                } else {
                    tags.join(", ")
                };
                let more = if i.truncated { " (scan truncated)" } else { "" };
                format!("{d} = {which}{more}")
            }
        };
        let _ = writeln!(out, "  {}:{}  {at}", i.image, i.promoted_tag);
    }
    let _ = writeln!(out, "tenants:");
    if report.tenants.is_empty() {
        let _ = writeln!(out, "  (no canary tenant configured)");
    }
    for t in &report.tenants {
        match (&t.version, &t.error) {
            (Some(v), _) => {
                let _ = writeln!(out, "  {}  runs {v}", t.url);
            }
            (None, e) => {
                let _ = writeln!(
                    out,
                    "  {}  unreachable: {}",
                    t.url,
                    e.as_deref().unwrap_or("?")
                );
            }
        }
    }
    out
}

/// Prints a usage error and its fix on stderr.
pub(crate) fn usage_error(e: &UsageError) {
    eprintln!("error: {e}\n  fix: {}", e.fix());
}

/// Progress lines on stderr as the run goes.
pub(crate) struct Progress {
    quiet: bool,
    last_rollout: Mutex<Option<(usize, usize)>>,
}

impl Progress {
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            last_rollout: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{text}");
        }
    }
}

impl Observer for Progress {
    fn state(&self, state: State) {
        let text = match state {
            State::Prechecked => "prechecked: every staging tag exists",
            State::AwaitingRollout => "waiting for the canary fleet to run the release",
            State::Verifying => "running the smoke suite on the canary fleet",
            State::Promoting => "moving the promoted tag",
            _ => return,
        };
        self.line(&format!("canary: {text}"));
    }

    fn rollout(&self, converged: usize, total: usize) {
        let mut last = self
            .last_rollout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != Some((converged, total)) {
            *last = Some((converged, total));
            self.line(&format!(
                "canary: rollout {converged}/{total} tenants run the release"
            ));
        }
    }

    fn tenant(&self, tenant: &TenantReport) {
        let failed = tenant
            .checks
            .iter()
            .filter(|c| c.status != CheckStatus::Passed)
            .count();
        let verdict = if failed == 0 { "ok" } else { "FAILED" };
        self.line(&format!(
            "canary: {verdict:<6} {} ({} checks, {failed} not passed)",
            tenant.url,
            tenant.checks.len()
        ));
    }

    fn image(&self, image: &ImageReport) {
        self.line(&format!(
            "canary: {} now {} ({:?})",
            image.image,
            digest(image.after.as_ref()),
            image.status
        ));
    }
}
