//! `canary postmortem`: a Markdown skeleton for the write-up after a bad
//! release.

use std::fmt::Write as _;

use canary_core::{Digest, GitSha, PromotionReport};

use crate::escape::markdown_text;
use crate::words;

/// The longest cell of the post-mortem's tables, in characters of the
/// original text; longer ones are cut with `…` (the JSON report has all).
const CELL_LIMIT: usize = 200;

/// Untrusted text for a table cell: cut to [`CELL_LIMIT`], then escaped by
/// the one Markdown rule (cutting first, so no entity is split).
fn cell(text: &str) -> String {
    if text.chars().count() > CELL_LIMIT {
        let cut: String = text.chars().take(CELL_LIMIT).collect();
        format!("{}…", markdown_text(&cut))
    } else {
        markdown_text(text)
    }
}

fn opt_digest(d: Option<&Digest>) -> String {
    d.map_or_else(|| "—".to_string(), |d| format!("`{}`", d.short()))
}

/// A Markdown post-mortem skeleton: the sha that broke, what the canary
/// checks saw, what moved, and the questions a post-mortem should answer.
/// Check results quote tenants, so every cell goes through
/// [`crate::markdown_text`].
pub fn postmortem(report: &PromotionReport) -> String {
    let sha = report.sha.as_ref().map_or("(unknown)", GitSha::as_str);
    let mut md = String::new();
    let _ = writeln!(md, "# Post-mortem: release `{sha}`\n");
    let _ = writeln!(md, "- **Command:** `canary {}`", report.command.as_str());
    let _ = writeln!(
        md,
        "- **Outcome:** `{}` (exit {})",
        report.outcome.as_str(),
        report.exit_code
    );
    let _ = writeln!(md, "- **Reason:** {}", markdown_text(&report.reason));
    if let Some(reason) = &report.manual_reason {
        let _ = writeln!(
            md,
            "- **Manual promotion reason:** {}",
            markdown_text(reason)
        );
    }
    let _ = writeln!(md, "\n## What the canary checks saw\n");
    if report.tenants.is_empty() {
        let _ = writeln!(md, "No canary tenant was checked.");
    } else {
        let (all, passed) = report.check_counts();
        let _ = writeln!(
            md,
            "{passed} of {all} checks passed on {} tenants.\n",
            report.tenants.len()
        );
        let _ = writeln!(md, "| tenant | check | status | expected | actual |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for t in &report.tenants {
            for c in &t.checks {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    cell(&t.url),
                    cell(&c.name),
                    words::capitalized(words::check(c.status)),
                    cell(&c.expected),
                    cell(&c.actual)
                );
            }
        }
    }
    let _ = writeln!(md, "\n## Images\n");
    let _ = writeln!(md, "| image | staging | before | after | status |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for i in &report.images {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            cell(&i.image.to_string()),
            opt_digest(i.staging_digest.as_ref()),
            if i.before_read {
                opt_digest(i.before.as_ref())
            } else {
                "(not read)".to_string()
            },
            opt_digest(i.after.as_ref()),
            words::capitalized(words::image(i.status))
        );
    }
    let _ = writeln!(md, "\n## Questions\n");
    let _ = writeln!(
        md,
        "- Which commit broke, and what did it change? (`{sha}`)"
    );
    let _ = writeln!(
        md,
        "- Why didn't canary catch it? A new code path the smoke suite doesn't exercise, prod-only data, config drift between canary and prod, or a cross-tenant interaction?"
    );
    let _ = writeln!(
        md,
        "- Which check should the smoke suite grow so the same class of bug is caught next time?"
    );
    let _ = writeln!(
        md,
        "- Was `latest` rolled back (`canary rollback <sha>`), and when did prod tenants pick it up?"
    );
    md
}
