//! The metric analysis: a table of verdicts with the numbers behind each,
//! for the terminal and the step summary.

use std::fmt::Write as _;

use canary_core::analysis::{AnalysisReport, Verdict, VerdictStatus};

use crate::escape::{markdown_code as code, markdown_text as cell};

/// A value as its kind reads: a rate in percent, anything else as is.
fn value(v: &Verdict, x: Option<f64>) -> String {
    match x {
        None => "—".to_string(),
        Some(x) if v.kind == "error_rate" => format!("{:.2}%", x * 100.0),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
    }
}

fn requests(v: &Verdict) -> String {
    let n = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |x| format!("{x:.0}"));
    match (v.canary_requests, v.baseline_requests) {
        (None, None) => "—".to_string(),
        (c, None) => n(c),
        (c, b) => format!("{} / {}", n(c), n(b)),
    }
}

fn evidence(v: &Verdict) -> String {
    let mut parts = Vec::new();
    if let Some((lo, hi)) = v.interval {
        parts.push(format!("Δ in [{:.2}, {:.2}] pt", lo * 100.0, hi * 100.0));
    }
    if let Some(p) = v.p_value {
        parts.push(format!("p = {p:.3}"));
    }
    if v.query_error {
        parts.push("query error".to_string());
    }
    if parts.is_empty() {
        "—".to_string()
    } else {
        parts.join(", ")
    }
}

fn word(s: VerdictStatus) -> &'static str {
    match s {
        VerdictStatus::Pass => "pass",
        VerdictStatus::Fail => "FAIL",
        VerdictStatus::Inconclusive => "no verdict",
    }
}

/// Lines for the terminal: one per metric, its verdict and why.
pub fn text(report: &AnalysisReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "metrics ({} read{}, {} query errors):",
        report.samples,
        if report.samples == 1 { "" } else { "s" },
        report.query_errors()
    );
    for v in &report.verdicts {
        let _ = writeln!(
            out,
            "  {:<10} {} ({}): {}",
            word(v.status),
            v.name,
            v.kind,
            crate::terminal::one_line(&v.detail)
        );
    }
    out
}

/// A Markdown section: a row per metric (verdict, canary, baseline, bound,
/// requests, interval and p-value), then the sentence behind every metric
/// that did not pass.
pub fn markdown(report: &AnalysisReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### Metrics\n\n| metric | kind | verdict | canary | baseline | bound | requests (canary / baseline) | evidence |\n|---|---|---|---|---|---|---|---|"
    );
    for v in &report.verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | **{}** | {} | {} | {} | {} | {} |",
            code(&v.name),
            v.kind,
            word(v.status),
            value(v, v.canary),
            value(v, v.baseline),
            cell(&v.threshold),
            requests(v),
            evidence(v)
        );
    }
    let bad: Vec<&Verdict> = report
        .verdicts
        .iter()
        .filter(|v| v.status != VerdictStatus::Pass)
        .collect();
    if !bad.is_empty() {
        out.push('\n');
        for v in bad {
            let _ = writeln!(out, "- {}: {}", code(&v.name), cell(&v.detail));
        }
    }
    let _ = writeln!(
        out,
        "\n{} read{} of the metrics; {} query error{}.",
        report.samples,
        if report.samples == 1 { "" } else { "s" },
        report.query_errors(),
        if report.query_errors() == 1 { "" } else { "s" }
    );
    out
}
