//! The Markdown summary, for `$GITHUB_STEP_SUMMARY` and anyone reading the
//! run in a browser.

use std::fmt::Write as _;

use canary_core::{CheckResult, CheckStatus, Digest, PromotionReport, TenantReport};

use crate::escape::{markdown_code as code, markdown_text as cell};
use crate::words;

/// At most this many rows in a Markdown table of checks or tenants; the
/// JSON report has them all.
pub const MAX_ROWS: usize = 100;

/// Milliseconds as a short duration (`850 ms`, `2.5 s`).
fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        #[allow(clippy::cast_precision_loss)]
        let s = ms as f64 / 1000.0;
        format!("{s:.1} s")
    }
}

/// Markdown for `$GITHUB_STEP_SUMMARY` and the terminal: the outcome and its
/// reason, each image's promoted tag before → after, every check that did
/// not pass with expected and actual, and a line per tenant (tables are cut
/// at [`MAX_ROWS`] rows; the JSON report has everything). Untrusted text
/// goes through [`crate::markdown_text`].
pub fn markdown(report: &PromotionReport) -> String {
    let mut out = String::new();
    let outcome = report.outcome.as_str();
    let _ = writeln!(
        out,
        "## canary {}: {}\n",
        report.command.as_str(),
        outcome.to_uppercase()
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    if let Some(sha) = &report.sha {
        let _ = writeln!(out, "| sha | {} |", code(sha.as_str()));
    }
    let _ = writeln!(
        out,
        "| outcome | **{}** (exit {}) |",
        cell(outcome),
        report.exit_code
    );
    let _ = writeln!(out, "| reason | {} |", cell(&report.reason));
    if report.dry_run {
        let _ = writeln!(out, "| dry run | yes: nothing was moved |");
    }
    if let Some(reason) = &report.manual_reason {
        let _ = writeln!(out, "| manual promotion | {} |", cell(reason));
    }
    if !report.tenants.is_empty() {
        let (all, passed) = report.check_counts();
        let _ = writeln!(
            out,
            "| checks | {passed} of {all} passed on {} tenants |",
            report.tenants.len()
        );
    }
    if let Some(ms) = report.timings.checks_ms {
        let _ = writeln!(out, "| checks took | {} |", seconds(ms));
    }
    if let Some(e) = &report.error {
        let _ = writeln!(out, "| error | {}: {} |", cell(&e.kind), cell(&e.message));
        if let Some(h) = &e.hint {
            let _ = writeln!(out, "| fix | {} |", cell(h));
        }
    }
    images(&mut out, report);
    if let Some(a) = &report.analysis {
        out.push_str(&crate::analysis::markdown(a));
    }
    checks_not_passed(&mut out, report);
    tenants(&mut out, report);
    out
}

fn images(out: &mut String, report: &PromotionReport) {
    if report.images.is_empty() {
        return;
    }
    let promoted = report
        .promoted_tag
        .as_ref()
        .map_or_else(|| "latest".to_string(), ToString::to_string);
    let _ = writeln!(
        out,
        "\n### Images\n\n| image | `{}` before | `{}` after | staging | status |\n|---|---|---|---|---|",
        cell(&promoted),
        cell(&promoted)
    );
    let digest = |d: Option<&Digest>| d.map_or_else(|| "—".to_string(), |d| code(&d.to_string()));
    for image in &report.images {
        let mut status = words::image(image.status).to_string();
        if let Some(e) = &image.error {
            let _ = write!(status, ": {}", cell(e));
        }
        if let Some(foreign) = &image.overwritten {
            let _ = write!(
                status,
                "; overwrote {}, another writer's",
                digest(Some(foreign))
            );
        }
        let before = if image.before_read {
            digest(image.before.as_ref())
        } else {
            "(not read)".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            code(&image.image.to_string()),
            before,
            digest(image.after.as_ref()),
            digest(image.staging_digest.as_ref()),
            status
        );
    }
}

fn checks_not_passed(out: &mut String, report: &PromotionReport) {
    let not_passed: Vec<(&TenantReport, &CheckResult)> = report
        .tenants
        .iter()
        .flat_map(|t| {
            t.checks
                .iter()
                .filter(|c| c.status != CheckStatus::Passed)
                .map(move |c| (t, c))
        })
        .collect();
    if not_passed.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Checks that did not pass\n\n| tenant | check | result | expected | actual | attempts |\n|---|---|---|---|---|---|"
    );
    for (t, c) in not_passed.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&t.url),
            code(&c.name),
            words::check(c.status),
            cell(&c.expected),
            cell(&c.actual),
            c.attempts
        );
    }
    if not_passed.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "\n… and {} more; the JSON report (`--report`) has every one.",
            not_passed.len() - MAX_ROWS
        );
    }
}

fn tenants(out: &mut String, report: &PromotionReport) {
    if report.tenants.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Tenants\n\n| tenant | version | {} | {} | {} | {} | time |\n|---|---|---|---|---|---|---|",
        words::check(CheckStatus::Passed),
        words::check(CheckStatus::Failed),
        words::check(CheckStatus::Error),
        words::check(CheckStatus::NotRun),
    );
    // With many tenants, show the ones that need attention first.
    let mut tenants: Vec<&TenantReport> = report.tenants.iter().collect();
    if tenants.len() > MAX_ROWS {
        tenants.sort_by_key(|t| t.passed());
    }
    for t in tenants.iter().take(MAX_ROWS) {
        let count = |s: CheckStatus| t.checks.iter().filter(|c| c.status == s).count();
        let time: u64 = t.checks.iter().map(|c| c.duration_ms).sum();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&t.url),
            t.version.as_deref().map_or_else(|| "—".to_string(), code),
            count(CheckStatus::Passed),
            count(CheckStatus::Failed),
            count(CheckStatus::Error),
            count(CheckStatus::NotRun),
            seconds(time)
        );
    }
    if tenants.len() > MAX_ROWS {
        let quiet = report.tenants.iter().filter(|t| t.passed()).count();
        let _ = writeln!(
            out,
            "\n… and {} more tenants ({quiet} of {} passed every check).",
            tenants.len() - MAX_ROWS,
            report.tenants.len()
        );
    }
}
