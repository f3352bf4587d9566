//! The report writers over real runs: the promoter drives the HTTP suite
//! against reference tenants; JSON, JUnit and Markdown are rendered from
//! the one report, parsed back, and searched for the tokens.

use std::sync::Arc;
use std::time::Duration;

use canary_core::{
    CheckStatus, Digest, GitSha, ImageRef, Manifest, ManualClock, MemoryRegistry, Outcome, Policy,
    Promoter, PromotionReport, Release, Rollout, Secret, StaticFleet, Tag, TagTemplate, Tenant,
    VerifyOptions,
};
use canary_report as render;
use canary_smoke::{HttpOptions, HttpSuite, Suite, SystemClock};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

/// The version healthy reference tenants report.
const VERSION: &str = "4c1d56e0123456789abcdef0123456789abcdef0";

async fn tenant_with_token(fault: TenantFault, token: &str) -> TenantServer {
    TenantServer::start(TenantOptions {
        token: token.to_string(),
        version: VERSION.to_string(),
        fault,
    })
    .await
}

/// The built-in suite, with no retries and short timeouts so tests are fast.
fn builtin_fast() -> Suite {
    Suite::builtin("workspace-server")
        .unwrap()
        .with_retries(0, Duration::from_millis(10))
        .with_timeout(Duration::from_secs(5))
}

fn runner(suite: Suite) -> HttpSuite {
    HttpSuite::new(suite, HttpOptions::default()).unwrap()
}

/// Each tenant has its own token; none may show up in any output.
const TOKENS: [&str; 3] = [
    "tenant-one-Zq81xT",
    "tenant-two-Pw55kB",
    "tenant-three-Mn20vC",
];

async fn fleet(faults: [TenantFault; 3]) -> (Vec<TenantServer>, StaticFleet) {
    let mut servers = Vec::new();
    let mut tenants = Vec::new();
    for (fault, token) in faults.into_iter().zip(TOKENS) {
        let s = tenant_with_token(fault, token).await;
        tenants.push(Tenant::new(s.url(), Secret::new(token)));
        servers.push(s);
    }
    (servers, StaticFleet::new(tenants))
}

fn assert_no_token(what: &str, text: &str) {
    for t in TOKENS {
        assert!(!text.contains(t), "{what} contains a tenant token");
    }
}

fn image(n: usize) -> ImageRef {
    ImageRef::parse(&format!("ghcr.io/acme/image{n}")).unwrap()
}

fn seeded() -> (MemoryRegistry, Release) {
    let r = MemoryRegistry::new();
    let old_sha = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for i in 0..2 {
        let mt = "application/vnd.oci.image.manifest.v1+json";
        let old = Manifest::new(mt, format!("{{\"i\":{i},\"r\":\"old\"}}").into_bytes());
        let new = Manifest::new(mt, format!("{{\"i\":{i},\"r\":\"new\"}}").into_bytes());
        r.push(
            &image(i),
            &Tag::parse(&format!("staging-{old_sha}")).unwrap(),
            old.clone(),
        );
        r.push(&image(i), &Tag::parse("latest").unwrap(), old);
        r.push(
            &image(i),
            &Tag::parse(&format!("staging-{VERSION}")).unwrap(),
            new,
        );
    }
    let release = Release::new(
        GitSha::parse(VERSION).unwrap(),
        vec![image(0), image(1)],
        TagTemplate::parse("staging-{sha}").unwrap(),
        TagTemplate::parse("latest").unwrap(),
    )
    .unwrap();
    (r, release)
}

fn promoter(registry: MemoryRegistry, fleet: StaticFleet, suite: HttpSuite) -> Promoter {
    Promoter::new(
        Arc::new(registry),
        Arc::new(fleet),
        Arc::new(suite),
        Arc::new(SystemClock),
    )
}

fn render_all(report: &PromotionReport) -> [(&'static str, String); 3] {
    [
        ("json", render::json(report)),
        ("junit", render::junit(report)),
        ("markdown", render::markdown(report)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_smoke_run_renders_everywhere_without_tokens() {
    let (servers, fleet) = fleet([
        TenantFault::None,
        TenantFault::AuthBypass,
        TenantFault::ServerError,
    ])
    .await;
    let p = promoter(MemoryRegistry::new(), fleet, runner(builtin_fast()));
    let report = p
        .smoke(Some(GitSha::parse(VERSION).unwrap()), "run-42")
        .await;
    assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    assert!(
        report.reason.contains("liveness-requires-auth"),
        "{}",
        report.reason
    );
    assert_eq!(report.tenants.len(), 3);
    assert!(report.tenants[0].passed());

    for (what, text) in render_all(&report) {
        assert_no_token(what, &text);
    }
    assert_no_token("report debug", &format!("{report:?}"));

    // JSON: the report itself, round trip.
    let back: PromotionReport = serde_json::from_str(&render::json(&report)).unwrap();
    assert_eq!(back, report);

    // JUnit: parse it back; one case per tenant × check.
    let xml = render::junit(&report);
    let junit = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(junit.test_suites.len(), 3);
    assert_eq!(junit.tests, 18);
    assert_eq!(xml.matches("<testcase ").count(), 18);
    for (suite, server) in junit.test_suites.iter().zip(&servers) {
        assert_eq!(suite.name.as_str(), server.url());
        assert_eq!(suite.test_cases.len(), 6);
        for case in &suite.test_cases {
            assert_eq!(case.classname.as_ref().unwrap().as_str(), server.url());
        }
        let outcome = suite
            .properties
            .iter()
            .find(|p| p.name.as_str() == "outcome")
            .unwrap();
        assert_eq!(outcome.value.as_str(), "rejected");
    }
    assert_eq!(
        junit.test_suites[0].failures + junit.test_suites[0].errors,
        0
    );
    assert_eq!(junit.test_suites[1].failures, 1);
    // ServerError: five failures, memories-search not run.
    assert_eq!(junit.test_suites[2].failures, 5);
    let skipped = &junit.test_suites[2].test_cases[3];
    assert!(matches!(
        skipped.status,
        quick_junit::TestCaseStatus::Skipped { .. }
    ));
    let failed = &junit.test_suites[1].test_cases[5];
    match &failed.status {
        quick_junit::TestCaseStatus::NonSuccess { message, kind, .. } => {
            assert_eq!(*kind, quick_junit::NonSuccessKind::Failure);
            let m = message.as_ref().unwrap().as_str();
            assert!(m.starts_with("expected status 401, got status 200"), "{m}");
        }
        other => panic!("{other:?}"),
    }

    // Markdown: outcome, reason, the checks that did not pass.
    let md = render::markdown(&report);
    assert!(md.starts_with("## canary smoke: REJECTED\n"), "{md}");
    assert!(
        md.contains("| reason | check `liveness-requires-auth`"),
        "{md}"
    );
    assert!(
        md.contains("| checks | 11 of 18 passed on 3 tenants |"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| {} | `liveness-requires-auth` | failed | status 401 | status 200, body: {{\"status\":\"ok\"",
            servers[1].url()
        )),
        "{md}"
    );
    assert!(
        md.contains("not run: needs `memories-commit`, which failed"),
        "{md}"
    );
    // The ServerError tenant echoed a bearer header: redacted.
    assert!(md.contains("Bearer ***"), "{md}");
}

#[tokio::test]
async fn a_promoted_verify_shows_images_before_and_after() {
    let (_servers, fleet) = fleet([TenantFault::None; 3]).await;
    let (registry, release) = seeded();
    let before: Digest = registry
        .tag_digest(&image(0), &Tag::parse("latest").unwrap())
        .unwrap();
    let p = promoter(registry.clone(), fleet, runner(builtin_fast()));
    let report = p
        .verify(
            &release,
            &VerifyOptions {
                dry_run: false,
                run_id: "run-7".into(),
                ..VerifyOptions::default()
            },
        )
        .await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    let after = registry
        .tag_digest(&image(0), &Tag::parse("latest").unwrap())
        .unwrap();
    assert_ne!(before, after);
    for (what, text) in render_all(&report) {
        assert_no_token(what, &text);
    }
    let md = render::markdown(&report);
    assert!(md.starts_with("## canary verify: PROMOTED\n"), "{md}");
    assert!(
        md.contains(&format!(
            "| `ghcr.io/acme/image0` | `{before}` | `{after}` | `{after}` | moved |"
        )),
        "{md}"
    );
    assert!(!md.contains("Checks that did not pass"), "{md}");
    let junit = quick_junit::Report::deserialize_from_str(&render::junit(&report)).unwrap();
    assert_eq!(junit.tests, 18);
    assert_eq!(junit.failures + junit.errors, 0);
}

#[tokio::test]
async fn a_tenant_on_an_old_version_keeps_the_rollout_from_converging() {
    let (_servers, fleet) = fleet([
        TenantFault::None,
        TenantFault::OldVersion,
        TenantFault::None,
    ])
    .await;
    let (registry, release) = seeded();
    let p = Promoter::new(
        Arc::new(registry),
        Arc::new(fleet),
        Arc::new(runner(builtin_fast())),
        Arc::new(ManualClock::new(0)),
    )
    .with_policy(Policy {
        rollout: Rollout::Probe {
            interval: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        },
        ..Policy::default()
    });
    let report = p.verify(&release, &VerifyOptions::default()).await;
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert!(
        report.reason.contains("rollout did not converge"),
        "{}",
        report.reason
    );
    assert!(
        report
            .reason
            .contains("0000000000000000000000000000000000000000"),
        "{}",
        report.reason
    );
    let md = render::markdown(&report);
    assert!(md.contains("INCONCLUSIVE"), "{md}");
}

#[tokio::test]
async fn an_empty_report_still_renders_valid_junit() {
    let p = promoter(
        MemoryRegistry::new(),
        StaticFleet::new(Vec::new()),
        runner(builtin_fast()),
    );
    let report = p.smoke(None, "r").await;
    assert_eq!(report.outcome, Outcome::Skipped);
    let junit = quick_junit::Report::deserialize_from_str(&render::junit(&report)).unwrap();
    assert_eq!(junit.tests, 0);
    assert_eq!(junit.test_suites.len(), 1);
    assert!(render::markdown(&report).contains("SKIPPED"));
}

#[tokio::test]
async fn large_fleets_are_cut_in_markdown_but_complete_in_json() {
    // 240 tenants, scripted: the renderer's limits, no network needed.
    let mut report = PromotionReport::new(canary_core::Command::Smoke, None);
    for i in 0..240 {
        let mut check = canary_core::CheckResult::passed("liveness");
        if i % 2 == 0 {
            check.status = CheckStatus::Failed;
            check.expected = "status 200".into();
            check.actual = "status 500 | <b>x</b>".into();
        }
        report.tenants.push(canary_core::TenantReport {
            url: format!("https://t{i}.example"),
            version: None,
            checks: vec![check],
        });
    }
    let md = render::markdown(&report);
    assert!(
        md.contains("… and 140 more tenants (120 of 240 passed every check)."),
        "{md}"
    );
    assert!(
        md.contains("… and 20 more; the JSON report (`--report`) has every one."),
        "{md}"
    );
    assert!(!md.contains("<b>"), "untrusted HTML is escaped");
    assert!(md.contains("status 500 \\| &lt;b&gt;x&lt;/b&gt;"));
    // 100 rows of failed checks, and the tenants table (100 rows) lists the
    // failing tenants first.
    assert_eq!(md.matches("| `liveness` | failed |").count(), 100);
    assert_eq!(md.matches("| — | 0 | 1 | 0 | 0 |").count(), 100);
    assert!(render::json(&report).contains("https://t239.example"));
}
