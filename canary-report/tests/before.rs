//! "Not read" and "absent" differ in every rendering, and a foreign digest
//! the run overwrote is shown.

use canary_core::{
    Command, Digest, GitSha, ImageRef, ImageReport, ImageStatus, Outcome, PromotionReport,
};

fn report(before_read: bool, overwritten: Option<Digest>) -> PromotionReport {
    let mut r = PromotionReport::new(
        Command::Verify,
        Some(GitSha::parse("4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90").unwrap()),
    );
    r.set_outcome(Outcome::Failed, "precheck failed, nothing moved");
    r.images.push(ImageReport {
        image: ImageRef::parse("ghcr.io/acme/app").unwrap(),
        staging_digest: None,
        before: None,
        before_read,
        overwritten,
        after: None,
        status: ImageStatus::Unchanged,
        error: None,
    });
    r
}

#[test]
fn not_read_is_not_absent() {
    let not_read = report(false, None);
    let absent = report(true, None);
    let text = canary_report::terminal::summary(&not_read, false);
    assert!(text.contains("(not read) -> (not read)"), "{text}");
    let text = canary_report::terminal::summary(&absent, false);
    assert!(text.contains("(none) -> (none)"), "{text}");
    assert!(canary_report::markdown(&not_read).contains("(not read)"));
    assert!(canary_report::postmortem(&not_read).contains("(not read)"));
    assert!(!canary_report::markdown(&absent).contains("(not read)"));
}

#[test]
fn an_overwritten_foreign_digest_is_shown() {
    let foreign = Digest::sha256_of(b"another writer");
    let r = report(true, Some(foreign.clone()));
    let text = canary_report::terminal::summary(&r, false);
    assert!(text.contains(&format!("overwrote {foreign}")), "{text}");
    assert!(canary_report::markdown(&r).contains("overwrote"));
}
