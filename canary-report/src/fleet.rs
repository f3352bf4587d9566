//! `canary fleet check` and `canary fleet enroll`: the table, JSON, step
//! summary, outputs and annotations of their reports.
//!
//! Tenant URLs, versions and details quote what tenants and the control
//! plane said: the Markdown passes them through [`crate::markdown_text`],
//! and a caller that prints the text where text can act (a CI log) guards
//! it there, as for every other summary.

use std::fmt::Write as _;

use canary_core::fleet::check::{FleetCheckReport, FleetOutcome, Health};
use canary_core::fleet::enroll::EnrollReport;
use canary_gha::{Annotation, ANNOTATION_MESSAGE_LIMIT};

use crate::escape::{markdown_code as code, markdown_text as cell};
use crate::markdown::MAX_ROWS;

/// At most this many annotations for unhealthy tenants; the summary and
/// the JSON report have them all.
const MAX_ANNOTATIONS: usize = 10;

fn ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "—".to_string(), |ms| format!("{ms} ms"))
}

/// The verdict in a few words: the reason when healthy or unreachable,
/// else how many tenants are unhealthy (the table names them).
fn verdict(report: &FleetCheckReport) -> String {
    match report.outcome {
        FleetOutcome::Unhealthy => format!(
            "{} of {} tenants unhealthy",
            report.unhealthy().count(),
            report.tenants.len()
        ),
        FleetOutcome::Healthy | FleetOutcome::Unreachable => report.reason.clone(),
    }
}

/// The human form: a row per tenant (position, URL, health, version,
/// response time), what is wrong under each unhealthy one, the notes, the
/// outcome.
pub fn check_text(report: &FleetCheckReport) -> String {
    let mut out = String::new();
    let expected = report
        .expected_version
        .as_ref()
        .map(|sha| format!(", expected version {sha}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "canary fleet check: {} tenants (URLs from {}, tokens from {}){expected}",
        report.tenants.len(),
        report.urls_from,
        report.tokens_from
    );
    let width = report
        .tenants
        .iter()
        .map(|t| t.url.chars().count())
        .max()
        .unwrap_or(0)
        .max("tenant".len());
    let _ = writeln!(
        out,
        "  {:>3}  {:<width$}  {:<11}  {:>9}  version",
        "#", "tenant", "health", "time"
    );
    for t in &report.tenants {
        let _ = writeln!(
            out,
            "  {:>3}  {:<width$}  {:<11}  {:>9}  {}",
            t.position,
            t.url,
            t.health.as_str(),
            ms(t.response_ms),
            t.version.as_deref().unwrap_or("—")
        );
        if t.health != Health::Healthy {
            let _ = writeln!(out, "       {}", t.detail);
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(
        out,
        "outcome: {} (exit {}): {}",
        report.outcome.as_str(),
        report.exit_code,
        verdict(report)
    );
    out
}

/// The JSON form (`--json`), pretty-printed, with a final newline.
pub fn check_json(report: &FleetCheckReport) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
    s.push('\n');
    s
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: the outcome and a row per tenant
/// (the unhealthy first when the table is cut at [`MAX_ROWS`]).
pub fn check_markdown(report: &FleetCheckReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## canary fleet check: {}\n",
        report.outcome.as_str().to_uppercase()
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| outcome | **{}** (exit {}) |",
        report.outcome.as_str(),
        report.exit_code
    );
    let _ = writeln!(out, "| reason | {} |", cell(&verdict(report)));
    let _ = writeln!(
        out,
        "| lists | URLs from {}, tokens from {} |",
        code(&report.urls_from),
        code(&report.tokens_from)
    );
    if let Some(sha) = &report.expected_version {
        let _ = writeln!(out, "| expected version | {} |", code(sha.as_str()));
    }
    for note in &report.notes {
        let _ = writeln!(out, "| note | {} |", cell(note));
    }
    let _ = writeln!(
        out,
        "\n| # | tenant | health | version | time | detail |\n|---|---|---|---|---|---|"
    );
    let mut rows: Vec<_> = report.tenants.iter().collect();
    if rows.len() > MAX_ROWS {
        rows.sort_by_key(|t| t.health == Health::Healthy);
    }
    for t in rows.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            t.position,
            cell(&t.url),
            t.health.as_str(),
            t.version.as_deref().map_or_else(|| "—".to_string(), code),
            ms(t.response_ms),
            cell(&t.detail)
        );
    }
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "\n… and {} more tenants; the JSON report (`--json`) has every one.",
            rows.len() - MAX_ROWS
        );
    }
    out
}

/// The step outputs of `canary fleet check`: `outcome` (`healthy`,
/// `unhealthy`, `unreachable`), `exit-code`, `tenants` (how many) and
/// `unhealthy` (a JSON array of `{"position", "tenant", "health"}`; `[]`
/// when none). Details stay out: they quote tenants.
pub fn check_outputs(report: &FleetCheckReport) -> Vec<(String, String)> {
    let unhealthy: Vec<serde_json::Value> = report
        .unhealthy()
        .map(|t| {
            serde_json::json!({
                "health": t.health.as_str(),
                "position": t.position,
                "tenant": t.url,
            })
        })
        .collect();
    vec![
        ("outcome".into(), report.outcome.as_str().to_string()),
        ("exit-code".into(), report.exit_code.to_string()),
        ("tenants".into(), report.tenants.len().to_string()),
        (
            "unhealthy".into(),
            serde_json::Value::Array(unhealthy).to_string(),
        ),
    ]
}

/// An error annotation per unhealthy tenant (the first ten, then one that
/// counts the rest), a warning per note.
pub fn check_annotations(report: &FleetCheckReport) -> Vec<Annotation> {
    let clip = |m: &str| crate::github::clip(m, ANNOTATION_MESSAGE_LIMIT);
    let bad: Vec<_> = report.unhealthy().collect();
    let mut out: Vec<Annotation> = bad
        .iter()
        .take(MAX_ANNOTATIONS)
        .map(|t| {
            Annotation::error(clip(&format!("{}: {}", t.health.as_str(), t.detail)))
                .with_title(format!("tenant {}: {}", t.position, t.url))
        })
        .collect();
    if bad.len() > MAX_ANNOTATIONS {
        out.push(
            Annotation::error(format!(
                "{} more unhealthy tenants; the step summary lists them",
                bad.len() - MAX_ANNOTATIONS
            ))
            .with_title("canary fleet check"),
        );
    }
    out.extend(
        report
            .notes
            .iter()
            .map(|n| Annotation::warning(clip(n)).with_title("canary fleet check")),
    );
    out
}

/// The human form of an enrolment: the result, what happened, the next
/// steps in order.
pub fn enroll_text(report: &EnrollReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "canary fleet enroll {}: {} (exit {})",
        report.slug,
        report.result.as_str(),
        report.exit_code
    );
    let _ = writeln!(out, "control plane: {}", report.control_plane);
    let _ = writeln!(out, "{}", report.message);
    if !report.next_steps.is_empty() {
        let _ = writeln!(out, "next:");
        for (i, step) in report.next_steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {step}", i + 1);
        }
    }
    out
}

/// The JSON form of an enrolment, pretty-printed, with a final newline.
pub fn enroll_json(report: &EnrollReport) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_default();
    s.push('\n');
    s
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: the result, what happened, the
/// next steps.
pub fn enroll_markdown(report: &EnrollReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## canary fleet enroll {}: {}\n",
        code(report.slug.as_str()),
        report.result.as_str().to_uppercase()
    );
    let _ = writeln!(out, "{}\n", cell(&report.message));
    for (i, step) in report.next_steps.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, cell(step));
    }
    out
}

/// The step outputs of `canary fleet enroll`: `outcome` (the result word),
/// `exit-code`.
pub fn enroll_outputs(report: &EnrollReport) -> Vec<(String, String)> {
    vec![
        ("outcome".into(), report.result.as_str().to_string()),
        ("exit-code".into(), report.exit_code.to_string()),
    ]
}

/// An error annotation when the control plane refused or failed.
pub fn enroll_annotations(report: &EnrollReport) -> Vec<Annotation> {
    if report.exit_code == 0 {
        return Vec::new();
    }
    let clip = |m: &str| crate::github::clip(m, ANNOTATION_MESSAGE_LIMIT);
    vec![Annotation::error(clip(&format!(
        "{}; next: {}",
        report.message,
        report.next_steps.join("; ")
    )))
    .with_title(format!("canary fleet enroll {}", report.slug))]
}
