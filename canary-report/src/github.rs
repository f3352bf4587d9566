//! What a GitHub Actions run shows and passes on, as data: step outputs as
//! `(name, value)` pairs, annotations as [`Annotation`]s, and the
//! per-tenant log groups. `canary-gha` writes them (escaping, masking,
//! files); this module only decides what they say.

use std::io::Write;

use canary_core::{CheckStatus, Digest, ImageReport, ImageStatus, Outcome, PromotionReport};
use canary_gha::{Annotation, Commands, GhaError, GithubEnv, Published, ANNOTATION_MESSAGE_LIMIT};
use serde_json::{json, Map, Value};

use crate::words;

/// The step outputs for `report`, in this order:
///
/// | output | value |
/// |---|---|
/// | `outcome` | `promoted`, `rolled_back`, `passed`, `skipped`, `rejected`, `inconclusive`, `usage`, `failed`, `inconsistent` |
/// | `exit-code` | the process exit code of the outcome |
/// | `sha` | the release's full sha (empty when it never resolved) |
/// | `promoted` | `true` when `latest` now points at this release (`promoted`, or `rolled_back` to it), else `false` (also for a dry run) |
/// | `digests` | JSON object: image → digest of its `staging-<sha>` (`null` when not read) |
/// | `latest-digests` | JSON object: image → digest of `latest` after the run, as last read (`null` when unknown) |
/// | `report-path` | the JSON report's path, or empty |
/// | `failed-checks` | JSON array of `{"tenant", "check", "status"}` for every check that failed or had no verdict; `[]` when none |
///
/// `failed-checks` leaves out expected/actual on purpose: they quote tenant
/// responses, and outputs are often interpolated into later scripts. The
/// annotations and the report carry them.
pub fn outputs(report: &PromotionReport, report_path: Option<&str>) -> Vec<(String, String)> {
    let digests = |pick: fn(&ImageReport) -> Option<String>| {
        let mut pairs: Vec<(String, Value)> = report
            .images
            .iter()
            .map(|i| {
                (
                    i.image.to_string(),
                    pick(i).map_or(Value::Null, Value::String),
                )
            })
            .collect();
        // Sorted, as above: the same text with or without `preserve_order`.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let map: Map<String, Value> = pairs.into_iter().collect();
        Value::Object(map).to_string()
    };
    let failed: Vec<Value> = report
        .failed_checks()
        .map(|(tenant, check)| {
            // Keys in sorted order: the text is the same whether or not
            // serde_json's `preserve_order` is enabled in the build.
            json!({
                "check": check.name,
                "status": check.status.as_str(),
                "tenant": tenant.url,
            })
        })
        .collect();
    let promoted = report.outcome.moved() && !report.dry_run;
    vec![
        ("outcome".into(), report.outcome.as_str().to_string()),
        ("exit-code".into(), report.exit_code.to_string()),
        (
            "sha".into(),
            report
                .sha
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        ("promoted".into(), promoted.to_string()),
        (
            "digests".into(),
            digests(|i| i.staging_digest.as_ref().map(ToString::to_string)),
        ),
        (
            "latest-digests".into(),
            digests(|i| i.after.as_ref().map(ToString::to_string)),
        ),
        ("report-path".into(), report_path.unwrap_or("").to_string()),
        ("failed-checks".into(), Value::Array(failed).to_string()),
    ]
}

pub(crate) fn clip(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut cut = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

fn short_sha(report: &PromotionReport) -> String {
    report
        .sha
        .as_ref()
        .map(|s| s.as_str().chars().take(12).collect())
        .unwrap_or_default()
}

/// The annotations for `report`:
///
/// - one `::error` per check that failed or had no verdict, titled
///   `<check> @ <tenant>`, saying what was expected and what was seen;
/// - one `::error` per image left on an unexpected digest (`inconsistent`);
/// - one for the outcome: `::notice` when `latest` moved (or a dry run
///   passed), `::warning` when verification was skipped, `::error` for
///   `rejected`, `inconclusive`, `usage`, `failed` and `inconsistent`, with
///   the reason and, where known, the error and how to fix it.
///
/// Messages are cut at [`ANNOTATION_MESSAGE_LIMIT`] bytes.
pub fn annotations(report: &PromotionReport) -> Vec<Annotation> {
    let mut out = Vec::new();
    for (tenant, check) in report.failed_checks() {
        let message = if check.status == CheckStatus::Error {
            format!("{}: {}", words::check(check.status), check.actual)
        } else {
            format!("expected {}; got {}", check.expected, check.actual)
        };
        out.push(
            Annotation::error(clip(&message, ANNOTATION_MESSAGE_LIMIT))
                .with_title(format!("{} @ {}", check.name, tenant.url)),
        );
    }
    if let Some(a) = &report.analysis {
        for v in a.failed() {
            out.push(
                Annotation::error(clip(&v.detail, ANNOTATION_MESSAGE_LIMIT))
                    .with_title(format!("metric {}", v.name)),
            );
        }
    }
    for image in report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Mixed)
    {
        let d = |d: Option<&Digest>| d.map_or_else(|| "unknown".to_string(), ToString::to_string);
        let mut message = format!(
            "latest is at {} (was {}, release {})",
            d(image.after.as_ref()),
            d(image.before.as_ref()),
            d(image.staging_digest.as_ref())
        );
        if let Some(e) = &image.error {
            message.push_str(": ");
            message.push_str(e);
        }
        out.push(
            Annotation::error(clip(&message, ANNOTATION_MESSAGE_LIMIT))
                .with_title(format!("{} is not where it should be", image.image)),
        );
    }

    let sha = short_sha(report);
    let outcome = report.outcome.as_str();
    let title = if sha.is_empty() {
        format!("canary: {outcome}")
    } else {
        format!("canary: {outcome} {sha}")
    };
    let mut message = report.reason.clone();
    if let Some(error) = &report.error {
        if !message.contains(&error.message) {
            if !message.is_empty() {
                message.push('\n');
            }
            message.push_str(&error.message);
        }
        if let Some(hint) = &error.hint {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
    }
    let message = clip(&message, ANNOTATION_MESSAGE_LIMIT);
    let overall = match report.outcome {
        Outcome::Promoted | Outcome::RolledBack | Outcome::Passed | Outcome::Repaired => {
            Annotation::notice(message)
        }
        Outcome::Skipped if report.dry_run => Annotation::notice(message),
        Outcome::Skipped => Annotation::warning(message),
        Outcome::Rejected
        | Outcome::Inconclusive
        | Outcome::Reverted
        | Outcome::Usage
        | Outcome::Failed
        | Outcome::Inconsistent
        | Outcome::Interrupted => Annotation::error(message),
    };
    out.push(overall.with_title(title));
    out
}

/// Writes one collapsible log group per tenant: a line per check, and the
/// expected/actual of each check that did not pass. `actual` quotes the
/// tenant's response, so it is written inside `::stop-commands::`.
pub fn write_tenant_groups<W: Write>(
    commands: &mut Commands<W>,
    report: &PromotionReport,
) -> std::io::Result<()> {
    for tenant in &report.tenants {
        let passed = tenant
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Passed)
            .count();
        commands.group(&format!(
            "{} — {passed}/{} checks passed",
            tenant.url,
            tenant.checks.len()
        ))?;
        if let Some(version) = &tenant.version {
            commands.line(&format!("version: {version}"))?;
        }
        for check in &tenant.checks {
            commands.line(&format!(
                "{} {} ({} ms, {} attempt{})",
                words::check_mark(check.status),
                check.name,
                check.duration_ms,
                check.attempts,
                if check.attempts == 1 { "" } else { "s" }
            ))?;
            if matches!(check.status, CheckStatus::Failed | CheckStatus::Error) {
                commands.line(&format!("     expected: {}", check.expected))?;
                commands.untrusted(&format!("     actual: {}", check.actual))?;
            }
        }
        commands.end_group()?;
    }
    Ok(())
}

/// Hands `report` to the runner through [`canary_gha::publish()`]: its
/// [`annotations`] on `commands`, its [`outputs`] to `$GITHUB_OUTPUT`, and
/// `markdown` (usually [`crate::markdown`] of the same report) to
/// `$GITHUB_STEP_SUMMARY`. Secrets masked on `commands` are redacted from
/// all three.
pub fn publish<W: Write>(
    commands: &mut Commands<W>,
    env: &GithubEnv,
    report: &PromotionReport,
    report_path: Option<&str>,
    markdown: &str,
) -> Result<Published, GhaError> {
    canary_gha::publish(
        commands,
        env,
        &annotations(report),
        &outputs(report, report_path),
        markdown,
    )
}
