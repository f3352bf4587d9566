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
