//! `canary history` and `canary verify-record` as text.

use std::fmt::Write as _;

use canary_core::status::RecordSummary;

/// One record on one line: when, what, which release, how it ended, who.
pub fn record_line(r: &RecordSummary) -> String {
    let mut line = format!(
        "{}  {:<8} {:<7} {}",
        crate::terminal::time(r.time_ms),
        r.command.as_str(),
        r.kind.as_str(),
        r.sha
    );
    if let Some(outcome) = r.outcome {
        let _ = write!(line, "  {}", outcome.as_str());
    }
    if r.verified {
        line.push_str("  verified");
    }
    if let Some(actor) = &r.actor {
        let _ = write!(line, "  by {actor}");
    }
    line.push_str(if r.signed { "  signed" } else { "  unsigned" });
    let _ = write!(line, "\n    record {}  run {}", r.id, r.run_id);
    if !r.reason.is_empty() {
        let _ = write!(line, "\n    {}", crate::terminal::one_line(&r.reason));
    }
    line
}

/// `canary history`: the records, newest first.
pub fn history(history: &canary_core::status::History) -> String {
    let (image, records, error) = (&history.image, &history.records, history.error.as_deref());
    let mut out = format!("ledger of {image}, newest first:\n");
    if records.is_empty() && error.is_none() {
        out.push_str("  (no record: latest was never moved by canary with the ledger on)\n");
    }
    for r in records {
        let _ = writeln!(out, "  {}", record_line(r).replace('\n', "\n  "));
    }
    if let Some(e) = error {
        let _ = writeln!(out, "error: reading the ledger failed: {e}");
    }
    out
}

/// `canary verify-record`: the verdict and the record it is about.
pub fn record_check(check: &canary_core::status::RecordCheck) -> String {
    let mut out = String::new();
    let subject = check
        .subject
        .as_ref()
        .map_or_else(|| "(promoted tag)".to_string(), ToString::to_string);
    let _ = writeln!(out, "{}@{subject}", check.image);
    if let Some(r) = &check.record {
        let _ = writeln!(out, "  {}", record_line(r).replace('\n', "\n  "));
    }
    match (&check.error, check.valid) {
        (Some(e), _) => {
            let _ = writeln!(out, "error: the record could not be read: {e}");
        }
        (None, true) => {
            let _ = writeln!(out, "VALID: {}", check.reason);
        }
        (None, false) => {
            let _ = writeln!(out, "INVALID: {}", check.reason);
        }
    }
    out
}
