//! `--json` and `--report FILE`: the report itself.

use canary_core::PromotionReport;

/// The report as pretty-printed JSON, with a final newline. It reads back
/// into an equal [`PromotionReport`], which is how `canary postmortem`
/// renders any other format again later.
pub fn json(report: &PromotionReport) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a report serializes to JSON");
    s.push('\n');
    s
}
