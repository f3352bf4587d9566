//! A verify that reads metrics (the in-memory fakes): a failed metric
//! rejects a release the smoke suite passed, a metric without a verdict
//! makes it inconclusive, a green analysis promotes with every verdict in
//! the report and the ledger record, and a shard never reads metrics.

use std::sync::Arc;
use std::time::Duration;

use canary_core::analysis::{Analysis, Cohorts, Metric, Rule, ScriptedMetrics, VerdictStatus};
use canary_core::ledger::{Ledger, MemoryLedger};
use canary_core::registry::Op;
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

fn fleet() -> StaticFleet {
    StaticFleet::new(vec![Tenant::new(
        "https://canary-0.example",
        Secret::new("token-0"),
    )])
}

fn errors_metric() -> Metric {
    let q = |s: &str| Cohorts {
        canary: format!("{s}{{release=\"canary\"}}"),
        baseline: format!("{s}{{release=\"baseline\"}}"),
    };
    Metric {
        name: "http-errors".into(),
        rule: Rule::ErrorRate {
            errors: q("errors"),
            total: q("total"),
            max_increase: 0.01,
            max_rate: None,
        },
        min_requests: 200.0,
        confidence: 0.95,
    }
}

/// Canary `ce` errors of `cn`, baseline 5 of 5,000.
fn metrics(ce: f64, cn: f64) -> ScriptedMetrics {
    ScriptedMetrics::new()
        .with("errors{release=\"canary\"}", ce)
        .with("total{release=\"canary\"}", cn)
        .with("errors{release=\"baseline\"}", 5.0)
        .with("total{release=\"baseline\"}", 5000.0)
}

fn promoter(r: &MemoryRegistry, source: ScriptedMetrics, window: Duration) -> Promoter {
    Promoter::new(
        Arc::new(r.clone()),
        Arc::new(fleet()),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    )
    .with_analysis(Analysis {
        source: Arc::new(source),
        metrics: vec![errors_metric()],
        window,
        interval: Duration::from_secs(60),
    })
}

fn latest(r: &MemoryRegistry) -> Vec<Option<Digest>> {
    (0..2)
        .map(|i| r.tag_digest(&image(i), &tag("latest")))
        .collect()
}

fn staging(r: &MemoryRegistry, sha: &str) -> Vec<Option<Digest>> {
    (0..2)
        .map(|i| r.tag_digest(&image(i), &tag(&format!("staging-{sha}"))))
        .collect()
}

#[test]
fn a_failed_metric_rejects_a_release_the_smoke_suite_passed() {
    let r = seeded(2);
    let report = block_on(
        promoter(&r, metrics(100.0, 5000.0), Duration::ZERO)
            .verify(&release(2, SHA), &VerifyOptions::default()),
    );
    assert_eq!(report.outcome, Outcome::Rejected, "{}", report.reason);
    assert!(
        report.reason.contains("metric `http-errors` fail"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("2.00% (100 of 5000)"),
        "{}",
        report.reason
    );
    assert_eq!(
        latest(&r),
        staging(&r, OLD_SHA),
        "latest moved on a failed metric"
    );
    assert_eq!(r.count(Op::Put), 0);
    let analysis = report.analysis.expect("the report carries the analysis");
    assert_eq!(analysis.status(), VerdictStatus::Fail);
    assert_eq!(analysis.verdicts[0].canary_requests, Some(5000.0));
}

#[test]
fn too_few_requests_is_inconclusive_never_a_pass() {
    let r = seeded(2);
    let report = block_on(
        promoter(&r, metrics(3.0, 40.0), Duration::ZERO)
            .verify(&release(2, SHA), &VerifyOptions::default()),
    );
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert!(
        report.reason.contains("too few requests"),
        "{}",
        report.reason
    );
    assert_eq!(latest(&r), staging(&r, OLD_SHA));
}

#[test]
fn a_failing_query_is_inconclusive() {
    let r = seeded(2);
    let source = metrics(6.0, 5000.0);
    source.set("total{release=\"baseline\"}", vec![]);
    let report = block_on(
        promoter(&r, source, Duration::ZERO).verify(&release(2, SHA), &VerifyOptions::default()),
    );
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert!(
        report.reason.contains("no data for baseline_total"),
        "{}",
        report.reason
    );
    let r2 = seeded(2);
    let p = Promoter::new(
        Arc::new(r2.clone()),
        Arc::new(fleet()),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    )
    .with_analysis(Analysis {
        source: Arc::new(ScriptedMetrics::new()),
        metrics: vec![errors_metric()],
        window: Duration::ZERO,
        interval: Duration::ZERO,
    });
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert_eq!(report.analysis.unwrap().query_errors(), 1);
}

#[test]
fn a_green_analysis_promotes_and_the_record_keeps_every_verdict() {
    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    let source = metrics(6.0, 5000.0);
    let p = promoter(&r, source.clone(), Duration::from_secs(300)).with_ledger(ledger.clone());
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert!(
        report.reason.contains("all 1 metrics passed"),
        "{}",
        report.reason
    );
    assert_eq!(latest(&r), staging(&r, SHA));
    // A 5-minute window read every minute: 6 reads of 4 queries.
    let analysis = report.analysis.clone().unwrap();
    assert_eq!(analysis.samples, 6);
    assert_eq!(source.queries(), 24);
    let target = staging(&r, SHA)[0].clone().unwrap();
    let entries = block_on(ledger.list(&image(0), &target)).unwrap();
    let mut outcome = None;
    for e in entries {
        let stored = block_on(ledger.get(&image(0), &e.id)).unwrap();
        if stored.record.outcome.is_some() {
            outcome = Some(stored.record);
        }
    }
    let record = outcome.expect("an outcome record");
    assert!(record.verified);
    assert_eq!(record.analysis, Some(analysis));
}

#[test]
fn a_shard_does_not_read_metrics() {
    let r = seeded(2);
    let source = metrics(100.0, 5000.0);
    let p = promoter(&r, source.clone(), Duration::ZERO);
    let report = block_on(p.verify(
        &release(2, SHA),
        &VerifyOptions {
            shard: Some(Shard::parse("1/1").unwrap()),
            ..VerifyOptions::default()
        },
    ));
    assert_eq!(source.queries(), 0);
    assert!(report.analysis.is_none());
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.reason);
}
