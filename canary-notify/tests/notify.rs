//! Notifications against the reference webhook receiver: signed bodies,
//! retries on a 503, only the outcomes asked for, and a dead endpoint that
//! is a warning naming the variable, never the URL.

use std::sync::Arc;

use canary_core::{Command, GitSha, ManualClock, Outcome, PromotionReport, Secret};
use canary_notify::{signature, Format, Notifier, Target, MAX_ATTEMPTS};
use canary_sandbox::webhook::{signature_matches, WebhookReceiver};

const SECRET: &str = "whsec-notify-test-5d1";

fn report(outcome: Outcome) -> PromotionReport {
    let mut r = PromotionReport::new(
        Command::Verify,
        Some(GitSha::parse("4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90").unwrap()),
    );
    r.set_outcome(outcome, "all 12 checks passed on 2 tenants; latest moved");
    r
}

fn target(url: String, format: Format, on: &[Outcome]) -> Target {
    Target {
        name: "HOOK_URL".into(),
        url: Secret::new(url),
        secret: Some(Secret::new(SECRET)),
        format,
        on: on.to_vec(),
    }
}

#[test]
fn the_signature_is_hmac_sha256_over_the_exact_body() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let sig = signature(SECRET.as_bytes(), b"{}");
    assert!(signature_matches(SECRET.as_bytes(), b"{}", &sig));
    assert!(!signature_matches(SECRET.as_bytes(), b"{ }", &sig));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_json_body_reaches_the_receiver_after_a_retry() {
    let hook = WebhookReceiver::start(SECRET).await;
    hook.fail_next(1);
    let clock = Arc::new(ManualClock::new(0));
    let notifier = Notifier::new(
        vec![target(hook.url(), Format::Json, &[Outcome::Promoted])],
        clock.clone(),
    )
    .with_run_url(Some("https://github.com/acme/app/actions/runs/1".into()));
    let sent = notifier.send(&report(Outcome::Promoted)).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].sent, "{sent:?}");
    assert_eq!(sent[0].attempts, 2);
    assert_eq!(clock.sleeps().len(), 1, "one pause before the retry");
    let got = hook.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].signature_valid, "{got:?}");
    assert_eq!(got[0].event(), Some("promoted"));
    assert_eq!(
        got[0].body["sha"],
        "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90"
    );
    assert_eq!(
        got[0].body["run_url"],
        "https://github.com/acme/app/actions/runs/1"
    );
    // An outcome the target did not ask for is not sent.
    let none = notifier.send(&report(Outcome::Rejected)).await;
    assert!(none.is_empty());
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_bodies_are_one_escaped_text() {
    let hook = WebhookReceiver::start(SECRET).await;
    let notifier = Notifier::new(
        vec![target(hook.url(), Format::Slack, &[Outcome::Rejected])],
        Arc::new(ManualClock::new(0)),
    );
    let mut r = report(Outcome::Rejected);
    r.reason = "`health` failed: <script>alert(1)</script> & more".into();
    notifier.send(&r).await;
    let got = hook.received();
    let text = got[0].body["text"].as_str().unwrap();
    assert!(text.contains("`rejected`"), "{text}");
    assert!(
        text.contains("&lt;script&gt;") && text.contains("&amp; more"),
        "{text}"
    );
    assert!(!text.contains("<script>"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_is_a_warning_that_never_names_the_url() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks/T0KEN-IN-PATH");
    let notifier = Notifier::new(
        vec![target(url.clone(), Format::Json, &[Outcome::Failed])],
        Arc::new(ManualClock::new(0)),
    );
    let sent = notifier.send(&report(Outcome::Failed)).await;
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].sent);
    assert_eq!(sent[0].attempts, MAX_ATTEMPTS);
    let text = format!("{sent:?}");
    assert!(
        text.contains("HOOK_URL") && text.contains("could not connect"),
        "{text}"
    );
    assert!(
        !text.contains("T0KEN-IN-PATH") && !text.contains(SECRET),
        "{text}"
    );
}
