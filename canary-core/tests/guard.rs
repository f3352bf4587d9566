//! `canary guard` on the in-memory fakes: a green bake passes, red rounds
//! in a row revert to the previous release through a recorded rollback,
//! and every "not ours to judge" case (not latest, moved during the bake,
//! production never converging, no verdict) moves nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use canary_core::ledger::{Ledger, MemoryLedger};
use canary_core::promoter::Rollout;
use canary_core::registry::Op;
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

const OLD: &str = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const NEW: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";
const THIRD: &str = "3333333ccccccccccccccccccccccccccccccccc";

/// Three releases staged; `latest` on OLD.
fn seeded() -> MemoryRegistry {
    let r = MemoryRegistry::new();
    for i in 0..2 {
        for sha in [OLD, NEW, THIRD] {
            let m = Manifest::new(
                "application/vnd.oci.image.manifest.v1+json",
                format!("{{\"image\":{i},\"sha\":\"{sha}\"}}").into_bytes(),
            );
            r.push(&image(i), &tag(&format!("staging-{sha}")), m);
        }
        let old = r
            .manifest(
                &image(i),
                &r.tag_digest(&image(i), &tag(&format!("staging-{OLD}")))
                    .unwrap(),
            )
            .unwrap();
        r.push(&image(i), &tag("latest"), old);
    }
    r
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

fn prod(n: usize) -> StaticFleet {
    StaticFleet::new(
        (0..n)
            .map(|i| {
                Tenant::new(
                    format!("https://prod-{i}.example"),
                    Secret::new(format!("prod-token-{i}")),
                )
            })
            .collect(),
    )
}

/// Something another writer does, once.
type Hook = Box<dyn FnOnce() + Send>;

/// A production suite whose rounds are scripted: round `k` (0-based, per
/// tenant) answers `script[k]` (the last one repeating). It can also run
/// a side effect before a given round (another writer, say).
struct Rounds {
    script: Vec<CheckStatus>,
    runs: Mutex<HashMap<String, usize>>,
    version: String,
    before_round: Mutex<Option<(usize, Hook)>>,
    calls: AtomicUsize,
}

impl Rounds {
    fn new(script: &[CheckStatus]) -> Self {
        Self {
            script: script.to_vec(),
            runs: Mutex::new(HashMap::new()),
            version: NEW.to_string(),
            before_round: Mutex::new(None),
            calls: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl SmokeSuite for Rounds {
    async fn run(&self, tenant: &Tenant, _: &RunContext) -> Vec<CheckResult> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let k = {
            let mut runs = self.runs.lock().unwrap();
            let k = runs.entry(tenant.url().to_string()).or_insert(0);
            *k += 1;
            *k - 1
        };
        {
            let mut hook = self.before_round.lock().unwrap();
            if hook.as_ref().is_some_and(|(round, _)| *round == k) {
                let (_, f) = hook.take().unwrap();
                f();
            }
        }
        let status = self.script[k.min(self.script.len() - 1)];
        vec![match status {
            CheckStatus::Passed => CheckResult::passed("liveness"),
            CheckStatus::Failed => CheckResult::failed("liveness", "status 200", "status 500"),
            _ => CheckResult::error("liveness", "no answer within 10s"),
        }]
    }

    async fn probe(&self, _: &Tenant) -> Result<String, Error> {
        Ok(self.version.clone())
    }
}

fn guard_promoter(
    registry: &MemoryRegistry,
    ledger: Option<Arc<MemoryLedger>>,
    suite: Arc<Rounds>,
    fleet: StaticFleet,
) -> Promoter {
    let p = Promoter::new(
        Arc::new(registry.clone()),
        Arc::new(fleet),
        suite,
        Arc::new(ManualClock::new(1_000)),
    )
    .with_policy(Policy {
        rollout: Rollout::Probe {
            interval: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        },
        ..Policy::default()
    });
    match ledger {
        Some(l) => p.with_ledger(l),
        None => p,
    }
}

/// OLD promoted through the gate, then NEW: the ledger's chain.
fn promoted_twice(registry: &MemoryRegistry) -> Arc<MemoryLedger> {
    let ledger = Arc::new(MemoryLedger::new());
    for sha in [OLD, NEW] {
        let p = Promoter::new(
            Arc::new(registry.clone()),
            Arc::new(prod(1)),
            Arc::new(ScriptedSuite::new()),
            Arc::new(ManualClock::new(1_000)),
        )
        .with_ledger(ledger.clone());
        let r = block_on(p.verify(&release(2, sha), &VerifyOptions::default()));
        assert!(
            matches!(r.outcome, Outcome::Promoted),
            "{sha}: {:?} {}",
            r.outcome,
            r.reason
        );
    }
    assert_eq!(latest(registry), staging(registry, NEW));
    ledger
}

fn options(failures: u32) -> GuardOptions {
    GuardOptions {
        bake: Duration::from_secs(300),
        interval: Duration::from_secs(60),
        failures_to_revert: failures,
        revert_to: None,
        run_id: "guard-run".into(),
    }
}

fn puts_on_latest(r: &MemoryRegistry) -> usize {
    r.calls()
        .iter()
        .filter(|c| c.op == Op::Put && c.reference == "latest")
        .count()
}

#[test]
fn a_green_bake_passes_and_moves_nothing() {
    let registry = seeded();
    let ledger = promoted_twice(&registry);
    let puts = puts_on_latest(&registry);
    let suite = Arc::new(Rounds::new(&[CheckStatus::Passed]));
    let report = block_on(
        guard_promoter(&registry, Some(ledger), suite.clone(), prod(3))
            .guard(&release(2, NEW), &options(2)),
    );
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.reason);
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.command, Command::Guard);
    let g = report.guard.as_ref().unwrap();
    assert_eq!(g.rounds.len(), 5, "one round a minute for 5 minutes");
    assert_eq!(g.revert_to.as_ref().map(GitSha::as_str), Some(OLD));
    assert_eq!(suite.calls.load(Ordering::SeqCst), 15);
    assert_eq!(
        puts_on_latest(&registry),
        puts,
        "a green guard wrote latest"
    );
    assert_eq!(latest(&registry), staging(&registry, NEW));
}

#[test]
fn red_rounds_in_a_row_revert_to_the_previous_release_with_a_record() {
    let registry = seeded();
    let ledger = promoted_twice(&registry);
    let records_before =
        block_on(ledger.list(&image(0), &staging(&registry, OLD)[0].clone().unwrap()))
            .unwrap()
            .len();
    // Green, then red from the second round: reverted after the third.
    let suite = Arc::new(Rounds::new(&[CheckStatus::Passed, CheckStatus::Failed]));
    let report = block_on(
        guard_promoter(&registry, Some(ledger.clone()), suite, prod(2))
            .guard(&release(2, NEW), &options(2)),
    );
    assert_eq!(report.outcome, Outcome::Reverted, "{}", report.reason);
    assert_eq!(report.exit_code, 1);
    assert!(
        report
            .reason
            .contains("production failed 2 rounds in a row"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains(&format!("staging-{OLD}")),
        "{}",
        report.reason
    );
    let verdicts: Vec<&str> = report
        .guard
        .as_ref()
        .unwrap()
        .rounds
        .iter()
        .map(|r| r.verdict.as_str())
        .collect();
    assert_eq!(verdicts, ["passed", "failed", "failed"]);
    assert_eq!(
        latest(&registry),
        staging(&registry, OLD),
        "latest is back on OLD"
    );
    assert!(report.images.iter().all(|i| i.status == ImageStatus::Moved));
    // The revert is recorded like any rollback, on the digest latest holds.
    let records =
        block_on(ledger.list(&image(0), &staging(&registry, OLD)[0].clone().unwrap())).unwrap();
    assert!(
        records.len() > records_before,
        "no ledger record for the revert"
    );
    assert!(report
        .ledger
        .as_ref()
        .is_some_and(|l| !l.outcome.is_empty()));
}

#[test]
fn a_release_promoted_over_during_the_bake_is_never_reverted() {
    let registry = seeded();
    let ledger = promoted_twice(&registry);
    let suite = Arc::new(Rounds::new(&[CheckStatus::Failed]));
    // Before the second round, someone moves latest to THIRD by hand.
    let other = registry.clone();
    *suite.before_round.lock().unwrap() = Some((
        1,
        Box::new(move || {
            for i in 0..2 {
                let d = other
                    .tag_digest(&image(i), &tag(&format!("staging-{THIRD}")))
                    .unwrap();
                let m = other.manifest(&image(i), &d).unwrap();
                other.push(&image(i), &tag("latest"), m);
            }
        }),
    ));
    let before = staging(&registry, THIRD);
    let report = block_on(
        guard_promoter(&registry, Some(ledger), suite, prod(1))
            .guard(&release(2, NEW), &options(3)),
    );
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert!(
        report.reason.contains("someone promoted or rolled back"),
        "{}",
        report.reason
    );
    assert!(report.reason.contains("nothing moved"), "{}", report.reason);
    assert_eq!(
        latest(&registry),
        before,
        "the guard undid someone else's move"
    );
}

#[test]
fn a_release_that_is_not_latest_is_not_guarded() {
    let registry = seeded();
    let ledger = promoted_twice(&registry);
    let suite = Arc::new(Rounds::new(&[CheckStatus::Failed]));
    let report = block_on(
        guard_promoter(&registry, Some(ledger), suite.clone(), prod(1))
            .guard(&release(2, THIRD), &options(1)),
    );
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert!(
        report.reason.contains("nothing to guard"),
        "{}",
        report.reason
    );
    assert_eq!(suite.calls.load(Ordering::SeqCst), 0);
    assert_eq!(latest(&registry), staging(&registry, NEW));
}

#[test]
fn production_never_converging_is_inconclusive_and_moves_nothing() {
    let registry = seeded();
    let ledger = promoted_twice(&registry);
    let mut rounds = Rounds::new(&[CheckStatus::Failed]);
    rounds.version = OLD.to_string();
    let suite = Arc::new(rounds);
    let puts = puts_on_latest(&registry);
    let report = block_on(
        guard_promoter(&registry, Some(ledger), suite.clone(), prod(2))
            .guard(&release(2, NEW), &options(1)),
    );
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert!(
        report.reason.contains("production did not run"),
        "{}",
        report.reason
    );
    assert_eq!(
        suite.calls.load(Ordering::SeqCst),
        0,
        "checks ran on the old build"
    );
    assert_eq!(puts_on_latest(&registry), puts);
}

#[test]
fn rounds_with_no_verdict_never_revert() {
    let registry = seeded();
    let ledger = promoted_twice(&registry);
    // Red, unreachable, red, unreachable…: never two red in a row.
    let suite = Arc::new(Rounds::new(&[
        CheckStatus::Failed,
        CheckStatus::Error,
        CheckStatus::Failed,
        CheckStatus::Error,
        CheckStatus::Failed,
    ]));
    let puts = puts_on_latest(&registry);
    let report = block_on(
        guard_promoter(&registry, Some(ledger), suite, prod(1))
            .guard(&release(2, NEW), &options(2)),
    );
    assert_eq!(report.outcome, Outcome::Inconclusive, "{}", report.reason);
    assert_eq!(puts_on_latest(&registry), puts);
    assert_eq!(latest(&registry), staging(&registry, NEW));
}

#[test]
fn without_a_ledger_or_a_target_the_guard_refuses_before_watching() {
    let registry = seeded();
    promoted_twice(&registry);
    let suite = Arc::new(Rounds::new(&[CheckStatus::Failed]));
    let report = block_on(
        guard_promoter(&registry, None, suite.clone(), prod(1))
            .guard(&release(2, NEW), &options(1)),
    );
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report.reason.contains("nowhere to revert to"),
        "{}",
        report.reason
    );
    assert_eq!(suite.calls.load(Ordering::SeqCst), 0);
    // With an explicit target it acts without a ledger.
    let report = block_on(guard_promoter(&registry, None, suite, prod(1)).guard(
        &release(2, NEW),
        &GuardOptions {
            revert_to: Some(GitSha::parse(THIRD).unwrap()),
            ..options(1)
        },
    ));
    assert_eq!(report.outcome, Outcome::Reverted, "{}", report.reason);
    assert_eq!(latest(&registry), staging(&registry, THIRD));
}

#[test]
fn the_previous_release_is_found_from_the_before_digests_when_nothing_else_says() {
    // OLD was never promoted by canary: only NEW's record knows what
    // latest held before it.
    let registry = seeded();
    let ledger = Arc::new(MemoryLedger::new());
    let p = Promoter::new(
        Arc::new(registry.clone()),
        Arc::new(prod(1)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    )
    .with_ledger(ledger.clone());
    let r = block_on(p.verify(&release(2, NEW), &VerifyOptions::default()));
    assert_eq!(r.outcome, Outcome::Promoted, "{}", r.reason);
    let suite = Arc::new(Rounds::new(&[CheckStatus::Failed]));
    let report = block_on(
        guard_promoter(&registry, Some(ledger), suite, prod(1))
            .guard(&release(2, NEW), &options(1)),
    );
    assert_eq!(report.outcome, Outcome::Reverted, "{}", report.reason);
    assert_eq!(latest(&registry), staging(&registry, OLD));
}

#[test]
fn a_failed_metric_makes_a_round_red_and_reverts_though_every_check_passed() {
    use canary_core::analysis::{Analysis, Cohorts, Metric, Rule, ScriptedMetrics};
    let registry = seeded();
    let ledger = promoted_twice(&registry);
    let suite = Arc::new(Rounds::new(&[CheckStatus::Passed]));
    // Production on the release serves 2% errors, the baseline 0.1%.
    let source = ScriptedMetrics::new()
        .with("ce", 100.0)
        .with("cn", 5000.0)
        .with("be", 5.0)
        .with("bn", 5000.0);
    let analysis = Analysis {
        source: Arc::new(source.clone()),
        metrics: vec![Metric {
            name: "http-errors".into(),
            rule: Rule::ErrorRate {
                errors: Cohorts {
                    canary: "ce".into(),
                    baseline: "be".into(),
                },
                total: Cohorts {
                    canary: "cn".into(),
                    baseline: "bn".into(),
                },
                max_increase: 0.01,
                max_rate: None,
            },
            min_requests: 200.0,
            confidence: 0.95,
        }],
        window: Duration::from_secs(300),
        interval: Duration::from_secs(60),
    };
    let report = block_on(
        guard_promoter(&registry, Some(ledger), suite, prod(2))
            .with_analysis(analysis)
            .guard(&release(2, NEW), &options(2)),
    );
    assert_eq!(report.outcome, Outcome::Reverted, "{}", report.reason);
    assert!(
        report.reason.contains("metric `http-errors` fail"),
        "{}",
        report.reason
    );
    assert_eq!(latest(&registry), staging(&registry, OLD));
    // One read per round (not the verify's window): two rounds, 4 queries each.
    assert_eq!(source.queries(), 8);
    assert!(report.analysis.is_some());
}
