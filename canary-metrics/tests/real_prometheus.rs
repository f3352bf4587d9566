//! The analysis against a real Prometheus (Debian `prometheus`, started by
//! the test kit): series backfilled with `promtool` so every verdict is
//! known in advance, and one live run where Prometheus scrapes two
//! reference tenants while the test sends them traffic.
//!
//! The cohorts are told apart by a `release` label, as the scrape
//! configuration of a real fleet sets it.

use std::time::{Duration, Instant, SystemTime};

use canary_core::analysis::{
    analyze, judge, read, Cohorts, Metric, MetricSource, Rule, Verdict, VerdictStatus,
};
use canary_metrics::{PrometheusOptions, PrometheusSource};
use canary_testkit::prometheus::{Backfill, Prometheus, Target};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

const REQUESTS: &str = "http_requests_total";
const LATENCY: &str = "http_request_duration_seconds";

fn source(prometheus: &Prometheus) -> PrometheusSource {
    PrometheusSource::new(PrometheusOptions {
        retries: 1,
        retry_delay: Duration::ZERO,
        timeout: Duration::from_secs(10),
        ..PrometheusOptions::new(prometheus.url())
    })
    .unwrap()
}

/// `errors` of `total` requests for `release` in `scenario`: a 500 counter
/// and a 200 counter.
fn requests(data: &mut Backfill, scenario: &str, release: &str, errors: u64, total: u64) {
    let labels = |code| [("scenario", scenario), ("release", release), ("code", code)];
    data.counter(REQUESTS, &labels("500"), errors);
    data.counter(REQUESTS, &labels("200"), total - errors);
}

fn cohorts(query: impl Fn(&str) -> String) -> Cohorts {
    Cohorts {
        canary: query("canary"),
        baseline: query("baseline"),
    }
}

/// The error-rate metric of `scenario`, read over the backfilled window.
fn error_rate(data: &Backfill, scenario: &str, max_increase: f64, min_requests: f64) -> Metric {
    let over = data.over();
    Metric {
        name: format!("errors-{scenario}"),
        rule: Rule::ErrorRate {
            errors: cohorts(|r| {
                format!(
                    r#"sum(increase({REQUESTS}{{scenario="{scenario}",release="{r}",code=~"5.."}}{over}))"#
                )
            }),
            total: cohorts(|r| {
                format!(r#"sum(increase({REQUESTS}{{scenario="{scenario}",release="{r}"}}{over}))"#)
            }),
            max_increase,
            max_rate: None,
        },
        min_requests,
        confidence: 0.95,
    }
}

async fn verdict(source: &dyn MetricSource, metric: &Metric) -> Verdict {
    judge(metric, &read(source, metric, None).await)
}

#[tokio::test]
async fn backfilled_error_rates_get_the_documented_verdicts() {
    let mut data = Backfill::new();
    requests(&mut data, "two-percent", "canary", 100, 5000);
    requests(&mut data, "two-percent", "baseline", 5, 5000);
    requests(&mut data, "close", "canary", 6, 5000);
    requests(&mut data, "close", "baseline", 5, 5000);
    requests(&mut data, "forty", "canary", 3, 40);
    requests(&mut data, "forty", "baseline", 5, 5000);
    requests(&mut data, "zero", "canary", 5, 10_000);
    requests(&mut data, "zero", "baseline", 0, 10_000);
    let prometheus = Prometheus::backfilled(&data.to_openmetrics());
    let p = source(&prometheus);

    // 2% against 0.1%, 5,000 requests each: worse by more than a point.
    let v = verdict(&p, &error_rate(&data, "two-percent", 0.01, 200.0)).await;
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    assert_eq!((v.canary, v.baseline), (Some(0.02), Some(0.001)));
    assert_eq!(
        (v.canary_requests, v.baseline_requests),
        (Some(5000.0), Some(5000.0))
    );
    assert!(v.p_value.unwrap() < 0.001, "{v:?}");
    assert!(v.detail.contains("2.00% (100 of 5000)"), "{}", v.detail);

    // 0.12% against 0.1%: within the margin, and the data shows it.
    let v = verdict(&p, &error_rate(&data, "close", 0.01, 200.0)).await;
    assert_eq!(v.status, VerdictStatus::Pass, "{}", v.detail);
    assert_eq!(v.canary, Some(0.0012));

    // 3 errors in 40 requests: too few to say anything, never a pass.
    let v = verdict(&p, &error_rate(&data, "forty", 0.01, 200.0)).await;
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
    assert!(
        v.detail
            .contains("too few requests (canary 40 < min_requests 200)"),
        "{}",
        v.detail
    );

    // 0 errors in 10,000 against 5 in 10,000: the zero baseline is bounded
    // (at most 0.03%), not free. A one-point margin passes; no margin at
    // all fails.
    let v = verdict(&p, &error_rate(&data, "zero", 0.01, 200.0)).await;
    assert_eq!(v.status, VerdictStatus::Pass, "{}", v.detail);
    assert_eq!(v.baseline, Some(0.0));
    let v = verdict(&p, &error_rate(&data, "zero", 0.0, 200.0)).await;
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);

    // Every metric at once, as verify runs them.
    let report = analyze(
        &p,
        &[
            error_rate(&data, "close", 0.01, 200.0),
            error_rate(&data, "two-percent", 0.01, 200.0),
        ],
        None,
    )
    .await;
    assert_eq!(report.status(), VerdictStatus::Fail);
    assert_eq!(report.query_errors(), 0);
}

#[tokio::test]
async fn a_counter_that_never_counted_needs_or_vector_0() {
    // A service that never failed often has no 5xx series at all: the sum
    // of nothing is no data, hence no verdict; `or vector(0)` says "zero".
    let mut data = Backfill::new();
    for release in ["canary", "baseline"] {
        data.counter(REQUESTS, &[("release", release), ("code", "200")], 5000);
    }
    let prometheus = Prometheus::backfilled(&data.to_openmetrics());
    let p = source(&prometheus);
    let over = data.over();
    let metric = |or: &str| Metric {
        name: "errors".into(),
        rule: Rule::ErrorRate {
            errors: cohorts(|r| {
                format!(r#"sum(increase({REQUESTS}{{release="{r}",code=~"5.."}}{over})){or}"#)
            }),
            total: cohorts(|r| format!(r#"sum(increase({REQUESTS}{{release="{r}"}}{over}))"#)),
            max_increase: 0.01,
            max_rate: None,
        },
        min_requests: 200.0,
        confidence: 0.95,
    };
    let v = verdict(&p, &metric("")).await;
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
    assert!(
        v.detail
            .contains("no data for canary_errors, baseline_errors"),
        "{}",
        v.detail
    );
    assert!(!v.query_error);
    let v = verdict(&p, &metric(" or vector(0)")).await;
    assert_eq!(v.status, VerdictStatus::Pass, "{}", v.detail);
}

#[tokio::test]
async fn a_failing_query_is_inconclusive_and_counted_apart() {
    let mut data = Backfill::new();
    requests(&mut data, "two-percent", "canary", 100, 5000);
    requests(&mut data, "two-percent", "baseline", 5, 5000);
    let mut prometheus = Prometheus::backfilled(&data.to_openmetrics());
    let p = source(&prometheus);

    // Invalid PromQL: Prometheus's own parse error, in the verdict.
    let mut bad = error_rate(&data, "two-percent", 0.01, 200.0);
    if let Rule::ErrorRate { total, .. } = &mut bad.rule {
        total.canary = format!("sum(increase({REQUESTS}[5m]");
    }
    let v = verdict(&p, &bad).await;
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
    assert!(v.query_error);
    assert!(
        v.detail.contains("query `canary_total` failed") && v.detail.contains("bad_data"),
        "{}",
        v.detail
    );

    // Prometheus gone: the same metric that fails above has no verdict.
    let good = error_rate(&data, "two-percent", 0.01, 200.0);
    assert_eq!(verdict(&p, &good).await.status, VerdictStatus::Fail);
    prometheus.stop();
    let report = analyze(&p, &[good], None).await;
    let v = &report.verdicts[0];
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
    assert!(v.query_error);
    assert!(v.detail.contains("could not connect"), "{}", v.detail);
    assert_eq!(report.status(), VerdictStatus::Inconclusive);
    assert_eq!(report.query_errors(), 1);
}

#[tokio::test]
async fn a_doubled_p95_fails_the_latency_metric() {
    // Same buckets, the canary's requests one bucket slower: p95 is 0.15 s
    // for the baseline (interpolated in 0.1–0.2) and 0.3 s for the canary
    // (in 0.2–0.4).
    let le = [0.05, 0.1, 0.2, 0.4];
    let mut data = Backfill::new();
    let baseline = [500, 900, 1000, 1000];
    let slow = [0, 500, 900, 1000];
    let buckets = |counts: [u64; 4]| -> Vec<(f64, u64)> { le.into_iter().zip(counts).collect() };
    for (scenario, canary) in [("slow", slow), ("same", baseline)] {
        for (release, counts) in [("canary", canary), ("baseline", baseline)] {
            let labels = [("scenario", scenario), ("release", release)];
            data.histogram(LATENCY, &labels, &buckets(counts), 100.0);
        }
    }
    let prometheus = Prometheus::backfilled(&data.to_openmetrics());
    let p = source(&prometheus);
    let over = data.over();
    let metric = |scenario: &str| Metric {
        name: format!("p95-{scenario}"),
        rule: Rule::Latency {
            quantile: cohorts(|r| {
                format!(
                    r#"histogram_quantile(0.95, sum by (le) (increase({LATENCY}_bucket{{scenario="{scenario}",release="{r}"}}{over})))"#
                )
            }),
            total: Some(cohorts(|r| {
                format!(
                    r#"sum(increase({LATENCY}_count{{scenario="{scenario}",release="{r}"}}{over}))"#
                )
            })),
            max_ratio: 1.5,
        },
        min_requests: 200.0,
        confidence: 0.95,
    };
    let v = verdict(&p, &metric("slow")).await;
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    let (c, b) = (v.canary.unwrap(), v.baseline.unwrap());
    assert!((c - 0.3).abs() < 1e-9 && (b - 0.15).abs() < 1e-9, "{v:?}");
    assert!(v.detail.contains("ratio 2.00 > 1.50"), "{}", v.detail);
    assert_eq!(v.canary_requests, Some(1000.0));
    let v = verdict(&p, &metric("same")).await;
    assert_eq!(v.status, VerdictStatus::Pass, "{}", v.detail);
}

/// Polls `query` until its one value is `want`.
async fn wait_for(p: &PrometheusSource, query: &str, want: f64, prometheus: &Prometheus) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = p.query(query).await.unwrap_or_default();
        if got == [want] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{query}` is {got:?}, not {want}, after 15 s; Prometheus's log:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_canary_serving_errors_fails() {
    let tenant = |fault| {
        TenantServer::start(TenantOptions {
            token: "t".into(),
            version: "abc1234".into(),
            fault,
        })
    };
    let canary = tenant(TenantFault::error_rate(0.1)).await;
    let baseline = tenant(TenantFault::None).await;
    let prometheus = Prometheus::scraping(&[
        Target::new(canary.url()).label("release", "canary"),
        Target::new(baseline.url()).label("release", "baseline"),
    ]);
    let p = source(&prometheus);
    // Both scraped once, at zero, before any traffic.
    wait_for(&p, r#"count(up{job="tenants"} == 1)"#, 2.0, &prometheus).await;

    let client = reqwest::Client::new();
    let mut failed = 0;
    for server in [&canary, &baseline] {
        for _ in 0..500 {
            let status = client
                .get(format!("{}/work", server.url()))
                .send()
                .await
                .unwrap()
                .status();
            failed += u32::from(status == 500);
        }
    }
    assert_eq!(failed, 50);
    for release in ["canary", "baseline"] {
        let q = format!(r#"sum(canary_tenant_requests_total{{release="{release}"}})"#);
        wait_for(&p, &q, 500.0, &prometheus).await;
    }

    let metric = Metric {
        name: "http-errors".into(),
        rule: Rule::ErrorRate {
            errors: cohorts(|r| {
                format!(
                    r#"sum(increase(canary_tenant_requests_total{{release="{r}",code=~"5.."}}[5m]))"#
                )
            }),
            total: cohorts(|r| {
                format!(r#"sum(increase(canary_tenant_requests_total{{release="{r}"}}[5m]))"#)
            }),
            max_increase: 0.01,
            max_rate: None,
        },
        min_requests: 200.0,
        confidence: 0.95,
    };
    // One evaluation time for the four queries: `increase` extrapolates
    // to the end of its range, by the same factor for every series only if
    // they share that end.
    let v = verdict(&p.at(SystemTime::now()), &metric).await;
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    assert!((v.canary.unwrap() - 0.1).abs() < 1e-9, "{v:?}");
    assert_eq!(v.baseline, Some(0.0));
    assert!(v.canary_requests.unwrap() >= 500.0, "{v:?}");
}
