//! A verify sharded across CI jobs: `verify --shard K/N` on each job, then
//! `decide` over the partial reports. Merged, the shards give the outcome
//! and the moves of one unsharded run; a missing, duplicated, mismatched or
//! hostile partial report is refused before any registry request.

use std::sync::Arc;

use canary_core::promoter::RunMeta;
use canary_core::shard::{merge, Partial};
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

const OTHER_SHA: &str = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TENANTS: usize = 10;

/// The shared two-image registry, with a third release staged
/// (`OTHER_SHA`, for a mismatched sha).
fn seeded() -> MemoryRegistry {
    let r = common::seeded(2);
    for i in 0..2 {
        let other = manifest(&format!("{{\"image\":{i},\"release\":\"other\"}}"));
        r.push(&image(i), &tag(&format!("staging-{OTHER_SHA}")), other);
    }
    r
}

fn url(i: usize) -> String {
    format!("https://canary-{i}.example")
}

fn fleet(n: usize) -> StaticFleet {
    StaticFleet::new(
        (0..n)
            .map(|i| Tenant::new(url(i), Secret::new(format!("token-{i}"))))
            .collect(),
    )
}

fn suite_digest(text: &str) -> Digest {
    Digest::sha256_of(text.as_bytes())
}

fn promoter(registry: &MemoryRegistry, fleet: StaticFleet, suite: ScriptedSuite) -> Promoter {
    Promoter::new(
        Arc::new(registry.clone()),
        Arc::new(fleet),
        Arc::new(suite),
        Arc::new(ManualClock::new(1_000)),
    )
    .with_meta(RunMeta {
        suite_digest: Some(suite_digest("suite")),
        ..RunMeta::default()
    })
}

fn options(shard: Option<&str>) -> VerifyOptions {
    VerifyOptions {
        dry_run: false,
        run_id: "run".into(),
        shard: shard.map(|s| Shard::parse(s).unwrap()),
    }
}

/// The partial reports of `n` shard jobs, each written to JSON and read
/// back, as `decide` reads them from files.
fn shard_reports(registry: &MemoryRegistry, suite: &ScriptedSuite, n: u32) -> Vec<Partial> {
    (1..=n)
        .map(|k| {
            let p = promoter(registry, fleet(TENANTS), suite.clone());
            let report = block_on(p.verify(&release(2, SHA), &options(Some(&format!("{k}/{n}")))));
            let json = serde_json::to_string(&report).unwrap();
            Partial {
                name: format!("shard-{k}.json"),
                report: serde_json::from_str(&json).unwrap(),
            }
        })
        .collect()
}

fn latest(r: &MemoryRegistry) -> Vec<Option<Digest>> {
    (0..2)
        .map(|i| r.tag_digest(&image(i), &tag("latest")))
        .collect()
}

fn statuses(report: &PromotionReport) -> Vec<ImageStatus> {
    report.images.iter().map(|i| i.status).collect()
}

fn same_as_unsharded(suite: &ScriptedSuite, expected: Outcome) {
    let single = seeded();
    let one = block_on(
        promoter(&single, fleet(TENANTS), suite.clone()).verify(&release(2, SHA), &options(None)),
    );
    assert_eq!(one.outcome, expected, "{}", one.reason);

    let sharded = seeded();
    let partials = shard_reports(&sharded, suite, 4);
    assert!(partials.iter().all(|p| p.report.shard.is_some()));
    // No shard moves anything.
    assert_eq!(latest(&sharded), latest(&seeded()));
    let owned: usize = partials.iter().map(|p| p.report.tenants.len()).sum();
    assert_eq!(owned, TENANTS);
    let decided = block_on(
        promoter(&sharded, fleet(TENANTS), ScriptedSuite::new()).decide(
            &release(2, SHA),
            &partials,
            &options(None),
        ),
    );
    assert_eq!(decided.outcome, one.outcome, "{}", decided.reason);
    assert_eq!(decided.merged_shards, Some(4));
    assert_eq!(latest(&sharded), latest(&single));
    assert_eq!(statuses(&decided), statuses(&one));
    assert_eq!(
        decided.tenants, one.tenants,
        "the merged evidence is the fleet's, in fleet order"
    );
}

#[test]
fn four_shards_and_decide_promote_as_one_run_does() {
    same_as_unsharded(&ScriptedSuite::new(), Outcome::Promoted);
}

#[test]
fn four_shards_and_decide_reject_as_one_run_does() {
    let suite = ScriptedSuite::new().results(
        &url(6),
        vec![CheckResult::failed("health", "status 200", "status 503")],
    );
    same_as_unsharded(&suite, Outcome::Rejected);
}

#[test]
fn a_green_shard_passes_and_moves_nothing() {
    let registry = seeded();
    let partials = shard_reports(&registry, &ScriptedSuite::new(), 3);
    let p = &partials[1].report;
    assert_eq!(p.outcome, Outcome::Passed, "{}", p.reason);
    assert_eq!(p.exit_code, 0);
    assert!(p.reason.starts_with("shard 2/3: "), "{}", p.reason);
    let urls: Vec<&str> = p.tenants.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(urls, [url(1), url(4), url(7)]);
    assert!(registry
        .calls()
        .iter()
        .all(|c| c.reference != "latest" || c.op != registry::Op::Put));
}

fn refused(partials: &[Partial], decide_suite: &str, sha: &str) -> PromotionReport {
    let registry = seeded();
    let before = registry.calls().len();
    let p = Promoter::new(
        Arc::new(registry.clone()),
        Arc::new(fleet(TENANTS)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    )
    .with_meta(RunMeta {
        suite_digest: Some(suite_digest(decide_suite)),
        ..RunMeta::default()
    });
    let report = block_on(p.decide(&release(2, sha), partials, &options(None)));
    assert_eq!(report.outcome, Outcome::Usage, "{}", report.reason);
    assert_eq!(
        registry.calls().len(),
        before,
        "a refused decide made a registry request"
    );
    report
}

#[test]
fn a_missing_shard_is_refused() {
    let mut partials = shard_reports(&seeded(), &ScriptedSuite::new(), 4);
    partials.remove(2);
    let r = refused(&partials, "suite", SHA);
    assert!(r.reason.contains("lack shard 3/4"), "{}", r.reason);
}

#[test]
fn a_duplicated_shard_is_refused() {
    let mut partials = shard_reports(&seeded(), &ScriptedSuite::new(), 4);
    let mut again = partials[1].clone();
    again.name = "shard-2-rerun.json".into();
    partials.push(again);
    let r = refused(&partials, "suite", SHA);
    assert!(r.reason.contains("shard-2-rerun.json"), "{}", r.reason);
    assert!(r.reason.contains("is shard 2/4 again"), "{}", r.reason);
}

#[test]
fn a_mismatched_sha_or_suite_or_fleet_is_refused() {
    let partials = shard_reports(&seeded(), &ScriptedSuite::new(), 2);
    let r = refused(&partials, "suite", OTHER_SHA);
    assert!(
        r.reason.contains(&format!("is for sha {SHA}")),
        "{}",
        r.reason
    );
    let r = refused(&partials, "another suite", SHA);
    assert!(r.reason.contains("ran suite"), "{}", r.reason);
    // Shards cut from a fleet of 9 tenants: decide's fleet has 10.
    let small: Vec<Partial> = (1..=2)
        .map(|k| {
            let p = promoter(&seeded(), fleet(TENANTS - 1), ScriptedSuite::new());
            Partial {
                name: format!("shard-{k}.json"),
                report: block_on(p.verify(&release(2, SHA), &options(Some(&format!("{k}/2"))))),
            }
        })
        .collect();
    let r = refused(&small, "suite", SHA);
    assert!(r.reason.contains("another fleet"), "{}", r.reason);
    // Reports of different shard counts.
    let mut mixed = shard_reports(&seeded(), &ScriptedSuite::new(), 2);
    mixed.push(shard_reports(&seeded(), &ScriptedSuite::new(), 3).remove(2));
    let r = refused(&mixed, "suite", SHA);
    assert!(r.reason.contains("different runs"), "{}", r.reason);
}

#[test]
fn a_hostile_shard_claiming_green_for_tenants_it_does_not_own_is_refused() {
    // Tenant 6 fails its check; shard 3/4 (which owns 2 and 6) reports red.
    // A hostile shard 1/4 claims a green result for tenant 6 as well.
    let suite = ScriptedSuite::new().results(
        &url(6),
        vec![CheckResult::failed("health", "status 200", "status 503")],
    );
    let mut partials = shard_reports(&seeded(), &suite, 4);
    let mut forged = partials[2].report.tenants[1].clone();
    assert_eq!(forged.url, url(6));
    forged.checks = vec![CheckResult::passed("health")];
    partials[0].report.tenants.push(forged.clone());
    let r = refused(&partials, "suite", SHA);
    assert!(r.reason.contains("which shard 3/4 owns"), "{}", r.reason);

    // The same forged result replacing shard 3/4's own is not detectable
    // by ownership (each CI job is trusted with its own tenants), but a
    // shard that drops an owned tenant, or reports one outside the fleet,
    // is refused.
    let mut partials = shard_reports(&seeded(), &suite, 4);
    partials[2].report.tenants.remove(1);
    let r = refused(&partials, "suite", SHA);
    assert!(
        r.reason
            .contains(&format!("has no result for its tenant {}", url(6))),
        "{}",
        r.reason
    );
    let mut partials = shard_reports(&seeded(), &suite, 4);
    let mut stranger = forged;
    stranger.url = "https://attacker.example".into();
    partials[3].report.tenants.push(stranger);
    let r = refused(&partials, "suite", SHA);
    assert!(r.reason.contains("not in the fleet"), "{}", r.reason);
    // Not a shard's report at all.
    let mut partials = shard_reports(&seeded(), &suite, 2);
    partials[1].report.shard = None;
    let r = refused(&partials, "suite", SHA);
    assert!(r.reason.contains("written without --shard"), "{}", r.reason);
}

#[test]
fn a_shard_that_never_checked_makes_decide_inconclusive() {
    // Shard 2/2's staging tag is missing when it runs: it fails its
    // precheck and checks nothing. Its tenants have no evidence.
    let registry = seeded();
    let mut partials = shard_reports(&registry, &ScriptedSuite::new(), 2);
    let broken = MemoryRegistry::new();
    let p = promoter(&broken, fleet(TENANTS), ScriptedSuite::new());
    partials[1].report = block_on(p.verify(&release(2, SHA), &options(Some("2/2"))));
    assert_eq!(partials[1].report.outcome, Outcome::Failed);
    let decided = block_on(
        promoter(&registry, fleet(TENANTS), ScriptedSuite::new()).decide(
            &release(2, SHA),
            &partials,
            &options(None),
        ),
    );
    assert_eq!(decided.outcome, Outcome::Inconclusive, "{}", decided.reason);
    assert!(
        decided.reason.contains("shard 2/2 did not check it"),
        "{}",
        decided.reason
    );
    assert_eq!(latest(&registry), latest(&seeded()));
}

#[test]
fn shard_parse_names_the_input_and_the_fix() {
    assert_eq!(Shard::parse("2/4").unwrap().to_string(), "2/4");
    for bad in ["0/4", "5/4", "4", "a/b", "1/0", "1/1001", ""] {
        let e = Shard::parse(bad).unwrap_err();
        assert!(e.input().starts_with("shard `"), "{e}");
        assert!(e.fix().contains("K/N"), "{e}");
    }
    let s = Shard::parse("3/4").unwrap();
    assert_eq!(s.select(&(0..10).collect::<Vec<_>>()), [2, 6]);
    let _ = merge;
}
