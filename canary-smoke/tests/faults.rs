//! The built-in suite against the reference tenant, one row per fault mode:
//! a healthy tenant passes every check, and each fault fails the check that
//! guards against it, with a clear expected and actual.

mod common;

use std::time::Duration;

use canary_core::{CheckStatus, GitSha, SmokeSuite};
use canary_testkit::tenant::{TenantFault, OLD_VERSION};
use common::{builtin_fast, context, runner, statuses, tenant, tenant_of, TOKEN, VERSION};

const CHECKS: [&str; 6] = [
    "liveness",
    "workspaces",
    "memories-commit",
    "memories-search",
    "events",
    "liveness-requires-auth",
];

struct Row {
    fault: TenantFault,
    /// The status of each of the six checks: p(assed), f(ailed), e(rror), n(ot run).
    expect: &'static str,
    /// (check, text its expected must contain, text its actual must contain)
    evidence: &'static [(&'static str, &'static str, &'static str)],
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            fault: TenantFault::None,
            expect: "pppppp",
            evidence: &[],
        },
        Row {
            fault: TenantFault::AuthBypass,
            expect: "pppppf",
            evidence: &[(
                "liveness-requires-auth",
                "status 401",
                "status 200, body: {",
            )],
        },
        Row {
            fault: TenantFault::BrokenRoundTrip,
            expect: "pppfpp",
            evidence: &[(
                "memories-search",
                "body contains \"canary-smoke-",
                "body does not contain \"canary-smoke-",
            )],
        },
        Row {
            fault: TenantFault::WrongShapes,
            expect: "ffpppp",
            evidence: &[
                (
                    "liveness",
                    "status 200 and $.subsystems is an object",
                    "$.subsystems is missing; status 200, body: {",
                ),
                (
                    "workspaces",
                    "status 200 and body is an array",
                    "body is an object",
                ),
            ],
        },
        Row {
            fault: TenantFault::ServerError,
            expect: "fffnff",
            evidence: &[
                ("liveness", "status 200", "status 500, body: {"),
                ("memories-commit", "status 2xx", "status 500"),
                (
                    "memories-search",
                    "body contains",
                    "not run: needs `memories-commit`, which failed",
                ),
                ("liveness-requires-auth", "status 401", "status 500"),
            ],
        },
        Row {
            fault: TenantFault::Slow(Duration::from_millis(1500)),
            // It never answered the first check: the others are not tried
            // (they would spend the same timeouts again).
            expect: "ennnnn",
            evidence: &[
                ("liveness", "status 200", "no answer within 300ms"),
                (
                    "workspaces",
                    "status 200",
                    "not run: the tenant did not answer `liveness`",
                ),
            ],
        },
        Row {
            fault: TenantFault::NonJson,
            expect: "ffpfff",
            evidence: &[
                ("liveness", "$.subsystems is an object", "body is not JSON"),
                ("workspaces", "body is an array", "Welcome to nginx"),
                ("liveness-requires-auth", "status 401", "status 200"),
            ],
        },
        Row {
            fault: TenantFault::Flaky(2),
            expect: "ffpppp",
            evidence: &[("liveness", "status 200", "status 503, body: {")],
        },
        Row {
            fault: TenantFault::OldVersion,
            expect: "pppppp",
            evidence: &[],
        },
    ]
}

fn letter(s: CheckStatus) -> char {
    match s {
        CheckStatus::Passed => 'p',
        CheckStatus::Failed => 'f',
        CheckStatus::Error => 'e',
        CheckStatus::NotRun => 'n',
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_the_check_that_guards_against_it() {
    let mut failures = Vec::new();
    for row in rows() {
        let server = tenant(row.fault).await;
        let suite = builtin_fast().with_timeout(Duration::from_millis(300));
        let results = runner(suite).run(&tenant_of(&server), &context()).await;
        let got: String = results.iter().map(|r| letter(r.status)).collect();
        let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, CHECKS, "{:?}", row.fault);
        if got != row.expect {
            failures.push(format!(
                "{:?}: expected {}, got {got}: {results:#?}",
                row.fault, row.expect
            ));
            continue;
        }
        for (check, expected, actual) in row.evidence {
            let r = results.iter().find(|r| r.name == *check).unwrap();
            if !r.expected.contains(expected) || !r.actual.contains(actual) {
                failures.push(format!(
                    "{:?}: `{check}` expected {:?} / actual {:?}, wanted {expected:?} / {actual:?}",
                    row.fault, r.expected, r.actual
                ));
            }
        }
        for r in &results {
            if r.status != CheckStatus::Passed {
                assert!(!r.expected.is_empty() && !r.actual.is_empty(), "{r:?}");
            }
            assert_eq!(
                r.attempts,
                u32::from(r.status != CheckStatus::NotRun),
                "{r:?}"
            );
            let all = format!("{r:?}");
            assert!(!all.contains(TOKEN), "token leaked: {all}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn server_error_bodies_that_echo_the_token_are_redacted() {
    let server = tenant(TenantFault::ServerError).await;
    let results = runner(builtin_fast())
        .run(&tenant_of(&server), &context())
        .await;
    let liveness = &results[0];
    assert!(
        liveness.actual.contains("Bearer ***"),
        "the echoed header should be visible but redacted: {}",
        liveness.actual
    );
    assert!(!format!("{results:?}").contains(TOKEN));
}

#[tokio::test]
async fn flaky_then_healthy_passes_with_retries_and_shows_attempts() {
    let server = tenant(TenantFault::Flaky(3)).await;
    let suite = builtin_fast().with_retries(3, Duration::from_millis(20));
    let results = runner(suite).run(&tenant_of(&server), &context()).await;
    assert_eq!(
        statuses(&results),
        CHECKS.map(|c| format!("{c}=passed")),
        "{results:#?}"
    );
    assert_eq!(results[0].attempts, 4, "three 503s, then a pass");
    assert!(results[1..].iter().all(|r| r.attempts == 1), "{results:#?}");
    assert!(results[0].duration_ms >= 60, "three pauses of 20 ms");
    // 3 failed + 6 passing requests.
    assert_eq!(server.requests(), 9);
}

#[tokio::test]
async fn retries_are_bounded_and_reported() {
    let server = tenant(TenantFault::AuthBypass).await;
    let suite = builtin_fast().with_retries(2, Duration::from_millis(5));
    let results = runner(suite).run(&tenant_of(&server), &context()).await;
    let last = results.last().unwrap();
    assert_eq!(last.status, CheckStatus::Failed);
    assert_eq!(last.attempts, 3);
    assert!(
        last.actual.ends_with("(after 3 attempts)"),
        "{}",
        last.actual
    );
}

#[tokio::test]
async fn unreachable_tenant_is_no_verdict_not_a_failure() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tenant = canary_core::Tenant::new(
        format!("http://127.0.0.1:{port}"),
        canary_core::Secret::new(TOKEN),
    );
    let results = runner(builtin_fast()).run(&tenant, &context()).await;
    let got: String = results.iter().map(|r| letter(r.status)).collect();
    // The first check could not connect: the rest are not tried.
    assert_eq!(got, "ennnnn", "{results:#?}");
    assert!(
        results[1..]
            .iter()
            .all(|r| r.actual == "not run: the tenant did not answer `liveness`"),
        "{results:#?}"
    );
    assert!(
        results[0].actual.contains("could not connect"),
        "{}",
        results[0].actual
    );
}

#[tokio::test]
async fn wrong_token_fails_every_authenticated_check() {
    let server = common::tenant_with_token(TenantFault::None, "another-token").await;
    let results = runner(builtin_fast())
        .run(&tenant_of(&server), &context())
        .await;
    let got: String = results.iter().map(|r| letter(r.status)).collect();
    assert_eq!(got, "fffnfp", "{results:#?}");
    assert!(
        results[0].actual.starts_with("status 401"),
        "{}",
        results[0].actual
    );
}

#[tokio::test]
async fn the_nonce_differs_per_tenant_and_per_run() {
    let a = tenant(TenantFault::None).await;
    let b = tenant(TenantFault::None).await;
    let suite = runner(builtin_fast());
    suite.run(&tenant_of(&a), &context()).await;
    suite.run(&tenant_of(&a), &context()).await;
    suite.run(&tenant_of(&b), &context()).await;
    let mut all = a.memories();
    all.extend(b.memories());
    assert_eq!(all.len(), 3);
    assert!(
        all.iter().all(|m| m.starts_with("canary-smoke-")),
        "{all:?}"
    );
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{all:?}");
}

#[tokio::test]
async fn probe_reads_the_version() {
    let healthy = tenant(TenantFault::None).await;
    let old = tenant(TenantFault::OldVersion).await;
    let suite = runner(builtin_fast());
    let sha: GitSha = VERSION.parse().unwrap();
    let short: GitSha = VERSION[..7].parse().unwrap();
    let v = suite.probe(&tenant_of(&healthy)).await.unwrap();
    assert_eq!(v, VERSION);
    assert!(sha.matches_version(&v) && short.matches_version(&v));
    let v = suite.probe(&tenant_of(&old)).await.unwrap();
    assert_eq!(v, OLD_VERSION);
    assert!(!sha.matches_version(&v) && !short.matches_version(&v));
    healthy.set_version("abcdef0");
    assert_eq!(suite.probe(&tenant_of(&healthy)).await.unwrap(), "abcdef0");
}

#[tokio::test]
async fn probe_errors_say_why_without_the_token() {
    let cases = [
        (
            TenantFault::ServerError,
            canary_core::ErrorKind::Transient,
            "status 500",
        ),
        (
            TenantFault::NonJson,
            canary_core::ErrorKind::Protocol,
            "not JSON",
        ),
        (
            TenantFault::Flaky(5),
            canary_core::ErrorKind::Transient,
            "status 503",
        ),
    ];
    for (fault, kind, text) in cases {
        let server = tenant(fault).await;
        let e = runner(builtin_fast())
            .probe(&tenant_of(&server))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{fault:?}: {}", e.chain());
        assert!(e.chain().contains(text), "{fault:?}: {}", e.chain());
        assert!(e.chain().contains(&server.url()), "{}", e.chain());
        assert!(!format!("{e:?} {}", e.chain()).contains(TOKEN));
    }
    let server = common::tenant_with_token(TenantFault::None, "other").await;
    let e = runner(builtin_fast())
        .probe(&tenant_of(&server))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), canary_core::ErrorKind::Unauthorized);
    assert!(e.hint().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_run_concurrently_through_the_promoter() {
    use std::sync::Arc;
    let mut servers = Vec::new();
    for _ in 0..16 {
        servers.push(tenant(TenantFault::Slow(Duration::from_millis(50))).await);
    }
    let fleet = canary_core::StaticFleet::new(servers.iter().map(tenant_of).collect());
    let suite: Arc<dyn SmokeSuite> = Arc::new(runner(builtin_fast()));
    let p = canary_core::Promoter::new(
        Arc::new(canary_core::MemoryRegistry::new()),
        Arc::new(fleet),
        suite,
        Arc::new(canary_smoke::SystemClock),
    );
    let started = std::time::Instant::now();
    let report = p.smoke(None, "concurrent").await;
    let wall = started.elapsed();
    assert_eq!(
        report.outcome,
        canary_core::Outcome::Passed,
        "{}",
        report.reason
    );
    // One by one: 16 tenants × 6 answers × 50 ms = 4.8 s at least.
    assert!(wall < Duration::from_millis(2400), "{wall:?}");
    assert!(servers.iter().all(|s| s.requests() == 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_stops_its_requests() {
    let server = tenant(TenantFault::Slow(Duration::from_millis(400))).await;
    let suite = runner(builtin_fast());
    let (t, c) = (tenant_of(&server), context());
    let run = suite.run(&t, &c);
    assert!(tokio::time::timeout(Duration::from_millis(100), run)
        .await
        .is_err());
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        server.requests(),
        1,
        "no check ran after the caller gave up"
    );
}
