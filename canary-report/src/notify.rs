//! The bodies of notifications: a JSON summary of a report for webhooks,
//! and a Slack incoming-webhook message.

use std::fmt::Write as _;

use canary_core::PromotionReport;
use serde_json::{json, Value};

/// Version of the webhook body's shape.
pub const WEBHOOK_SCHEMA: u32 = 1;

/// The webhook body: outcome, sha, images and digests, failed checks,
/// reason and run URL. Compact JSON; the signature covers these exact
/// bytes. Check details (expected/actual) are left out: they quote tenant
/// answers, and a webhook may forward to a chat channel.
pub fn webhook_json(report: &PromotionReport, run_url: Option<&str>) -> String {
    let images: Vec<Value> = report
        .images
        .iter()
        .map(|i| {
            json!({
                "image": i.image.to_string(),
                "status": i.status.as_str(),
                "target": i.staging_digest.as_ref().map(ToString::to_string),
                "before": i.before.as_ref().map(ToString::to_string),
                "after": i.after.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    let failed: Vec<Value> = report
        .failed_checks()
        .map(|(tenant, check)| {
            json!({
                "tenant": tenant.url,
                "check": check.name,
                "status": check.status.as_str(),
            })
        })
        .collect();
    json!({
        "schema": WEBHOOK_SCHEMA,
        "event": report.outcome.as_str(),
        "command": report.command.as_str(),
        "sha": report.sha.as_ref().map(ToString::to_string),
        "exit_code": report.exit_code,
        "reason": report.reason,
        "promoted_tag": report.promoted_tag.as_ref().map(ToString::to_string),
        "images": images,
        "tenants": report.tenants.len(),
        "failed_checks": failed,
        "run_url": run_url,
    })
    .to_string()
}

/// A Slack incoming-webhook body: one `text` in Slack's markup, with `&`,
/// `<` and `>` escaped so that no reason or URL can form a link or a
/// mention.
pub fn slack_json(report: &PromotionReport, run_url: Option<&str>) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let sha = report
        .sha
        .as_ref()
        .map(|s| s.short().to_string())
        .unwrap_or_default();
    let mut text = format!(
        "*canary {}* `{}` {} (exit {})\n{}",
        report.command.as_str(),
        report.outcome.as_str(),
        esc(&sha),
        report.exit_code,
        esc(&report.reason)
    );
    for i in &report.images {
        let d = |d: Option<&canary_core::Digest>| {
            d.map_or_else(
                || "-".to_string(),
                |d| d.to_string().chars().take(19).collect(),
            )
        };
        let _ = write!(
            text,
            "\n• `{}`: {} → {} ({})",
            esc(&i.image.to_string()),
            d(i.before.as_ref()),
            d(i.after.as_ref()),
            i.status.as_str()
        );
    }
    let failed = report.failed_checks().count();
    if failed > 0 {
        let _ = write!(text, "\n{failed} checks failed or had no verdict");
    }
    if let Some(url) = run_url {
        let _ = write!(text, "\n<{}|the run>", esc(url));
    }
    json!({ "text": text }).to_string()
}
