//! A tenant's answer is untrusted: whatever HTML it holds must reach the
//! Markdown renderings (post-mortem, step summary) as inert text.

use canary_core::{CheckResult, Command, GitSha, Outcome, PromotionReport, TenantReport};

const SCRIPT: &str = "<script>alert(1)</script>";

fn hostile_report() -> PromotionReport {
    let mut report = PromotionReport::new(
        Command::Verify,
        Some(GitSha::parse("4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90").unwrap()),
    );
    report.set_outcome(
        Outcome::Rejected,
        format!("check `search` failed: got {SCRIPT}"),
    );
    let failed = CheckResult::failed(
        "search",
        format!("body contains {SCRIPT}"),
        format!("status 200, body: {SCRIPT}"),
    );
    let no_verdict = CheckResult::error(
        "events",
        format!("status 502, body: <html>{SCRIPT}</html> & more"),
    );
    report.tenants.push(TenantReport {
        url: "https://t1.example".to_string(),
        version: Some(SCRIPT.to_string()),
        checks: vec![CheckResult::passed("liveness"), failed, no_verdict],
    });
    report
}

fn assert_inert(what: &str, text: &str) {
    assert!(!text.contains("<script"), "raw tag in the {what}:\n{text}");
    assert!(!text.contains("</script"), "raw tag in the {what}:\n{text}");
    assert!(!text.contains("<html"), "raw tag in the {what}:\n{text}");
    // The text is still there, escaped, so a reader sees what the tenant said.
    assert!(
        text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{what}:\n{text}"
    );
}

#[test]
fn a_tenant_answering_html_leaves_no_raw_tag_in_the_postmortem() {
    assert_inert("post-mortem", &canary_report::postmortem(&hostile_report()));
}

#[test]
fn a_tenant_answering_html_leaves_no_raw_tag_in_the_step_summary() {
    assert_inert("step summary", &canary_report::markdown(&hostile_report()));
}
