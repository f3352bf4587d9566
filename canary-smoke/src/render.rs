//! Report writers. Every one renders the same [`PromotionReport`]; none
//! adds information the report does not hold, so `canary postmortem` can
//! render any of them again from a saved JSON report.
//!
//! No renderer can leak a tenant token: the report holds none (tenants
//! appear by URL; check results are redacted when they are made).

use std::fmt::Write as _;
use std::time::Duration;

use canary_core::{CheckResult, CheckStatus, ImageStatus, PromotionReport, TenantReport};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

/// At most this many rows in a Markdown table of checks or tenants; the
/// JSON report has them all.
const MAX_ROWS: usize = 100;

/// The report as pretty-printed JSON (`--json`, `--report FILE`).
pub fn json(report: &PromotionReport) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a report serializes to JSON");
    s.push('\n');
    s
}

fn status_word(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
        CheckStatus::Error => "no verdict",
        CheckStatus::NotRun => "not run",
    }
}

fn image_status_word(status: ImageStatus) -> &'static str {
    match status {
        ImageStatus::Unchanged => "unchanged",
        ImageStatus::WouldMove => "would move",
        ImageStatus::Moved => "moved",
        ImageStatus::Restored => "restored",
        ImageStatus::Mixed => "MIXED",
    }
}

fn command_word(report: &PromotionReport) -> &'static str {
    match report.command {
        canary_core::Command::Verify => "verify",
        canary_core::Command::Promote => "promote",
        canary_core::Command::Rollback => "rollback",
        canary_core::Command::Smoke => "smoke",
    }
}

/// JUnit XML: one `<testsuite>` per tenant (named by its URL) and one
/// `<testcase>` per tenant × check, `classname` = the tenant URL. Failed
/// checks are `<failure>`, checks without a verdict `<error>`, checks not
/// run `<skipped>`. Each suite carries the run's sha, outcome and reason as
/// properties; a report without tenants gets one empty suite that carries
/// them.
pub fn junit(report: &PromotionReport) -> String {
    let mut junit = Report::new(format!("canary {}", command_word(report)));
    let properties = |suite: &mut TestSuite| {
        if let Some(sha) = &report.sha {
            suite.add_property(Property::new("sha", sha.to_string()));
        }
        suite.add_property(Property::new("outcome", report.outcome.to_string()));
        suite.add_property(Property::new("reason", report.reason.clone()));
    };
    if report.tenants.is_empty() {
        let mut suite = TestSuite::new("canary");
        properties(&mut suite);
        junit.add_test_suite(suite);
    }
    for tenant in &report.tenants {
        let mut suite = TestSuite::new(tenant.url.clone());
        properties(&mut suite);
        if let Some(v) = &tenant.version {
            suite.add_property(Property::new("version", v.clone()));
        }
        let mut total = 0;
        for check in &tenant.checks {
            total += check.duration_ms;
            suite.add_test_case(test_case(tenant, check));
        }
        suite.set_time(Duration::from_millis(total));
        junit.add_test_suite(suite);
    }
    junit.to_string().expect("a JUnit report serializes to XML")
}

fn test_case(tenant: &TenantReport, check: &CheckResult) -> TestCase {
    let status = match check.status {
        CheckStatus::Passed => TestCaseStatus::success(),
        CheckStatus::Failed | CheckStatus::Error => {
            let kind = if check.status == CheckStatus::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(format!("expected {}, got {}", check.expected, check.actual));
            s.set_type(status_word(check.status));
            s.set_description(format!(
                "tenant: {}\ncheck: {}\nexpected: {}\nactual: {}\nattempts: {}",
                tenant.url, check.name, check.expected, check.actual, check.attempts
            ));
            s
        }
        CheckStatus::NotRun => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(check.actual.clone());
            s
        }
    };
    let mut case = TestCase::new(check.name.clone(), status);
    case.set_classname(tenant.url.clone());
    case.set_time(Duration::from_millis(check.duration_ms));
    case.add_property(Property::new("attempts", check.attempts.to_string()));
    case
}

/// Escapes text for a Markdown table cell: no line breaks, no pipes, no
/// HTML (response bodies are untrusted). Backticks stay: at worst they
/// format a span as code.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn code(text: &str) -> String {
    format!("`{}`", cell(text))
}

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
/// at 100 rows; the JSON report has everything).
pub fn markdown(report: &PromotionReport) -> String {
    let mut out = String::new();
    let outcome = report.outcome.to_string();
    let _ = writeln!(
        out,
        "## canary {}: {}\n",
        command_word(report),
        outcome.to_uppercase()
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    if let Some(sha) = &report.sha {
        let _ = writeln!(out, "| sha | {} |", code(sha.as_str()));
    }
    let _ = writeln!(
        out,
        "| outcome | **{}** (exit {}) |",
        cell(&outcome),
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

    if !report.images.is_empty() {
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
        let digest = |d: Option<&canary_core::Digest>| {
            d.map_or_else(|| "—".to_string(), |d| code(&d.to_string()))
        };
        for image in &report.images {
            let mut status = image_status_word(image.status).to_string();
            if let Some(e) = &image.error {
                let _ = write!(status, ": {}", cell(e));
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                code(&image.image.to_string()),
                digest(image.before.as_ref()),
                digest(image.after.as_ref()),
                digest(image.staging_digest.as_ref()),
                status
            );
        }
    }

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
    if !not_passed.is_empty() {
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
                status_word(c.status),
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

    if !report.tenants.is_empty() {
        let _ = writeln!(
            out,
            "\n### Tenants\n\n| tenant | version | passed | failed | no verdict | not run | time |\n|---|---|---|---|---|---|---|"
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_inert() {
        assert_eq!(
            cell("a|b\n<script>`x`</script>&"),
            "a\\|b &lt;script&gt;`x`&lt;/script&gt;&amp;"
        );
    }
}
