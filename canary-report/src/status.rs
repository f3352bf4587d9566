//! `canary status`: where the promoted tag points and what every tenant
//! runs, as text or JSON.

use std::fmt::Write as _;

use canary_core::status::{ImageState, StatusReport};
use canary_core::Tag;

fn image_at(i: &ImageState) -> String {
    match (&i.digest, &i.error) {
        (_, Some(e)) => format!("error: {e}"),
        (None, None) => "does not exist".to_string(),
        (Some(d), None) => {
            let tags: Vec<&str> = i.staging_tags.iter().map(Tag::as_str).collect();
            let which = if tags.is_empty() {
                format!("no staging tag among {} scanned", i.scanned)
            } else {
                tags.join(", ")
            };
            let more = if i.truncated { " (scan truncated)" } else { "" };
            format!("{d} = {which}{more}")
        }
    }
}

/// The human form: a line per image (`image:tag  digest = staging tags`)
/// and a line per tenant (`url  runs version`, or why it is unreachable).
pub fn text(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "images:");
    for i in &report.images {
        let _ = writeln!(out, "  {}:{}  {}", i.image, i.promoted_tag, image_at(i));
        match (&i.record, i.explained, &i.digest) {
            (Some(r), _, _) => {
                let _ = writeln!(
                    out,
                    "    why: {}",
                    crate::ledger::record_line(r).replace('\n', "\n    ")
                );
            }
            (None, true, Some(_)) => {
                let _ = writeln!(
                    out,
                    "    why: no ledger record put it here: moved outside canary (or before the ledger)"
                );
            }
            _ => {}
        }
    }
    if let Some(r) = &report.interrupted {
        let _ = writeln!(
            out,
            "INTERRUPTED: run {} ({} of {}) announced a move at {} and never recorded its end; run `canary repair` (undo) or `canary repair --forward`",
            r.run_id,
            r.command.as_str(),
            r.sha,
            crate::terminal::time(r.time_ms)
        );
    }
    if report.mixed {
        let _ = writeln!(
            out,
            "MIXED: the images' promoted tags belong to different releases; settle it with `canary repair` or `canary rollback SHA`"
        );
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

/// The JSON form (`canary status --json`), pretty-printed, no final
/// newline.
pub fn json(report: &StatusReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// The outcome word of `canary status` in Actions mode (the step output
/// `outcome`): `interrupted` or `mixed` (exit 4), `unreadable` (exit 3),
/// else `consistent` (exit 0). Its own words, not a promotion's outcomes:
/// status moves nothing.
pub fn outcome(report: &StatusReport) -> &'static str {
    if report.interrupted.is_some() {
        "interrupted"
    } else if report.mixed {
        "mixed"
    } else if report.unreadable() {
        "unreadable"
    } else {
        "consistent"
    }
}

/// The step outputs of `canary status`: `outcome`, `exit-code`, `sha` (the
/// one release every image's promoted tag is on, else empty) and
/// `latest-digests` (image → digest of the promoted tag, `null` when it
/// does not exist or could not be read; keys sorted).
pub fn outputs(report: &StatusReport) -> Vec<(String, String)> {
    let digests: serde_json::Map<String, serde_json::Value> = report
        .images
        .iter()
        .map(|i| {
            (
                i.image.to_string(),
                i.digest
                    .as_ref()
                    .map_or(serde_json::Value::Null, |d| d.to_string().into()),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    vec![
        ("outcome".into(), outcome(report).to_string()),
        ("exit-code".into(), report.exit_code().to_string()),
        (
            "sha".into(),
            report
                .release
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            "latest-digests".into(),
            serde_json::Value::Object(digests).to_string(),
        ),
    ]
}

/// An error annotation for each unreadable image, the interrupted run and
/// a mixed release.
pub fn annotations(report: &StatusReport) -> Vec<canary_gha::Annotation> {
    use canary_gha::{Annotation, ANNOTATION_MESSAGE_LIMIT};
    let clip = |m: &str| crate::github::clip(m, ANNOTATION_MESSAGE_LIMIT);
    let mut out: Vec<Annotation> = report
        .images
        .iter()
        .filter_map(|i| {
            i.error.as_ref().map(|e| {
                Annotation::error(clip(e)).with_title(format!("{}:{}", i.image, i.promoted_tag))
            })
        })
        .collect();
    if let Some(r) = &report.interrupted {
        out.push(
            Annotation::error(clip(&format!(
                "run {} ({} of {}) announced a move and never recorded its end; run `canary repair` (undo) or `canary repair --forward`",
                r.run_id,
                r.command.as_str(),
                r.sha
            )))
            .with_title("interrupted run"),
        );
    }
    if report.mixed {
        out.push(
            Annotation::error(
                "the images' promoted tags belong to different releases; settle it with `canary repair` or `canary rollback SHA`",
            )
            .with_title("mixed release"),
        );
    }
    out
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: the outcome, a row per image
/// (promoted tag, digest, release, the record that put it there) and a row
/// per tenant (what it runs), each table cut at
/// [`crate::markdown::MAX_ROWS`] rows.
pub fn markdown(report: &StatusReport) -> String {
    use crate::escape::{markdown_code as code, markdown_text as cell};
    use crate::markdown::MAX_ROWS;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## canary status: {}\n",
        outcome(report).to_uppercase()
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    if let Some(sha) = &report.release {
        let _ = writeln!(out, "| release | {} |", code(sha.as_str()));
    }
    let _ = writeln!(
        out,
        "| outcome | **{}** (exit {}) |",
        outcome(report),
        report.exit_code()
    );
    if let Some(r) = &report.interrupted {
        let _ = writeln!(
            out,
            "| interrupted | run {} ({} of {}): run `canary repair` (undo) or `canary repair --forward` |",
            cell(&r.run_id),
            r.command.as_str(),
            code(r.sha.as_str())
        );
    }
    if report.mixed {
        let _ = writeln!(
            out,
            "| mixed | the images are on different releases: `canary repair` or `canary rollback SHA` |"
        );
    }
    let _ = writeln!(
        out,
        "\n| image | digest | release | why |\n|---|---|---|---|"
    );
    for i in report.images.iter().take(MAX_ROWS) {
        let why = match (&i.record, i.explained, &i.digest) {
            (Some(r), _, _) => cell(&crate::ledger::record_line(r).replace('\n', " ")),
            (None, true, Some(_)) => "moved outside canary (no ledger record)".to_string(),
            _ => String::new(),
        };
        let (digest, release) = match (&i.digest, &i.error) {
            (_, Some(e)) => ("error".to_string(), cell(e)),
            (None, None) => ("does not exist".to_string(), String::new()),
            (Some(d), None) => (
                code(&d.to_string()),
                i.staging_tags
                    .iter()
                    .map(|t| code(t.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {digest} | {release} | {why} |",
            code(&format!("{}:{}", i.image, i.promoted_tag))
        );
    }
    if !report.tenants.is_empty() {
        let _ = writeln!(out, "\n| tenant | runs |\n|---|---|");
        for t in report.tenants.iter().take(MAX_ROWS) {
            let runs = match (&t.version, &t.error) {
                (Some(v), _) => code(v),
                (None, e) => format!("unreachable: {}", cell(e.as_deref().unwrap_or("?"))),
            };
            let _ = writeln!(out, "| {} | {runs} |", cell(&t.url));
        }
    }
    out
}
