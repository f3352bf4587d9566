//! The promoter against the in-memory fakes: every outcome, compensation,
#![allow(clippy::needless_range_loop)]
//! rollout waiting, sha resolution, and the invariants listed in ARCHITECTURE.md.

use std::sync::Arc;
use std::time::Duration;

use canary_core::registry::{FaultTiming, Op};
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

fn promoter(registry: &MemoryRegistry, fleet: StaticFleet, suite: ScriptedSuite) -> Promoter {
    Promoter::new(
        Arc::new(registry.clone()),
        Arc::new(fleet),
        Arc::new(suite),
        Arc::new(ManualClock::new(1_000)),
    )
}

fn verify(p: &Promoter, images: usize) -> PromotionReport {
    block_on(p.verify(&release(images, SHA), &VerifyOptions::default()))
}

#[test]
fn green_verify_moves_every_image_and_verifies() {
    let r = seeded(2);
    let report = verify(&promoter(&r, fleet(3), ScriptedSuite::new()), 2);
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert_eq!(report.exit_code, 0);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, SHA));
        let img = &report.images[i];
        assert_eq!(img.status, ImageStatus::Moved);
        assert_eq!(img.after, staging(&r, i, SHA));
        assert_eq!(img.before, staging(&r, i, OLD_SHA));
    }
    assert_eq!(report.tenants.len(), 3);
    assert_eq!(
        report.states,
        vec![
            State::Planned,
            State::Prechecked,
            State::Verifying,
            State::Promoting,
            State::Promoted
        ]
    );
    // Precheck: 2 HEADs per image; right before the move, `latest` again
    // (the rollout wait separates them; invariant 8); move: GET + PUT +
    // HEAD per image.
    assert_eq!(r.count(Op::Head), 2 * 2 + 2 + 2);
    assert_eq!(r.count(Op::Get), 2);
    assert_eq!(r.count(Op::Put), 2);
    assert_eq!(r.count(Op::List), 0, "a full sha needs no tag listing");
    assert!(
        report.reason.contains("all 3 checks passed on 3 tenants"),
        "{}",
        report.reason
    );
}

#[test]
fn a_failed_check_rejects_and_nothing_moves() {
    let r = seeded(2);
    let suite = ScriptedSuite::new().results(
        "https://canary-1.example",
        vec![
            CheckResult::passed("liveness"),
            CheckResult::failed("memories-search", "body contains canary-smoke-x", "[]"),
        ],
    );
    let report = verify(&promoter(&r, fleet(3), suite), 2);
    assert_eq!(report.outcome, Outcome::Rejected);
    assert_eq!(report.exit_code, 1);
    assert!(
        report.reason.contains("memories-search"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("https://canary-1.example"),
        "{}",
        report.reason
    );
    assert_eq!(r.count(Op::Put), 0);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, OLD_SHA));
        assert_eq!(report.images[i].status, ImageStatus::Unchanged);
    }
    assert_eq!(report.failed_checks().count(), 1);
}

#[test]
fn unreachable_tenant_is_inconclusive_and_failure_beats_it() {
    let r = seeded(1);
    let suite = ScriptedSuite::new().results(
        "https://canary-0.example",
        vec![CheckResult::error("liveness", "connection refused")],
    );
    let report = verify(&promoter(&r, fleet(2), suite.clone()), 1);
    assert_eq!(report.outcome, Outcome::Inconclusive);
    assert!(report.reason.contains("connection refused"));
    assert_eq!(r.count(Op::Put), 0);

    let suite = suite.results(
        "https://canary-1.example",
        vec![CheckResult::failed("workspaces", "an array", "an object")],
    );
    let report = verify(&promoter(&r, fleet(2), suite), 1);
    assert_eq!(report.outcome, Outcome::Rejected);
}

#[test]
fn empty_fleet_skips_or_is_a_usage_error() {
    let r = seeded(1);
    let report = verify(&promoter(&r, fleet(0), ScriptedSuite::new()), 1);
    assert_eq!(report.outcome, Outcome::Skipped);
    assert_eq!(report.exit_code, 0);
    assert_eq!(r.count(Op::Put), 0);
    assert_eq!(latest(&r, 0), staging(&r, 0, OLD_SHA));

    let r = seeded(1);
    let p = promoter(&r, fleet(0), ScriptedSuite::new()).with_policy(Policy {
        on_empty_fleet: EmptyFleet::Fail,
        ..Policy::default()
    });
    let report = verify(&p, 1);
    assert_eq!(report.outcome, Outcome::Usage);
    assert_eq!(report.exit_code, 2);
    assert!(r.calls().is_empty(), "usage errors come before any request");
}

#[test]
fn dry_run_checks_everything_but_moves_nothing() {
    let r = seeded(2);
    let p = promoter(&r, fleet(1), ScriptedSuite::new());
    let report = block_on(p.verify(
        &release(2, SHA),
        &VerifyOptions {
            dry_run: true,
            run_id: "x".into(),
            ..VerifyOptions::default()
        },
    ));
    assert_eq!(report.outcome, Outcome::Skipped);
    assert!(report.dry_run);
    assert!(report.reason.starts_with("dry run"), "{}", report.reason);
    assert_eq!(r.count(Op::Put), 0);
    assert!(report
        .images
        .iter()
        .all(|i| i.status == ImageStatus::WouldMove));
}

#[test]
fn missing_staging_tag_fails_before_any_move() {
    let r = seeded(2);
    let other = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    // Only image 0 has the release.
    r.push(
        &image(0),
        &tag(&format!("staging-{other}")),
        manifest("{\"x\":1}"),
    );
    let report = block_on(
        promoter(&r, fleet(1), ScriptedSuite::new())
            .verify(&release(2, other), &VerifyOptions::default()),
    );
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.exit_code, 3);
    assert!(
        report.reason.contains(&format!(
            "ghcr.io/acme/image1:staging-{other} does not exist"
        )),
        "{}",
        report.reason
    );
    assert_eq!(r.count(Op::Put), 0);
    assert!(
        report.tenants.iter().all(|t| t.checks.is_empty()),
        "no check runs after a failed precheck"
    );
}

#[test]
fn compensation_restores_earlier_images() {
    let r = seeded(3);
    r.fail_nth(Op::Put, 2, ErrorKind::Transient, FaultTiming::Before);
    let report = verify(&promoter(&r, fleet(1), ScriptedSuite::new()), 3);
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert_eq!(report.exit_code, 3);
    for i in 0..3 {
        assert_eq!(latest(&r, i), staging(&r, i, OLD_SHA), "image {i}");
        assert_eq!(report.images[i].after, staging(&r, i, OLD_SHA));
    }
    assert_eq!(report.images[0].status, ImageStatus::Restored);
    // Image 1's write was refused, so there was nothing to undo.
    assert_eq!(report.images[1].status, ImageStatus::Unchanged);
    assert_eq!(report.images[2].status, ImageStatus::Unchanged);
    assert_eq!(r.count(Op::Put), 3, "one move, one refused move, one undo");
    assert!(report.reason.contains("image1"), "{}", report.reason);
    assert!(
        report.reason.contains("put back and verified"),
        "{}",
        report.reason
    );
}

#[test]
fn a_refused_first_write_is_failed_not_inconsistent() {
    let r = seeded(2);
    r.fail_nth(Op::Put, 1, ErrorKind::Denied, FaultTiming::Before);
    r.fail_nth(Op::Put, 2, ErrorKind::Denied, FaultTiming::Before);
    let report = verify(&promoter(&r, fleet(1), ScriptedSuite::new()), 2);
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert_eq!(r.count(Op::Put), 1, "no undo of a write that never landed");
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, OLD_SHA));
        assert_eq!(report.images[i].status, ImageStatus::Unchanged);
    }
}

#[test]
fn a_lost_put_response_is_restored_too() {
    let r = seeded(2);
    // The PUT of image 1 lands but its response is lost.
    r.fail_nth(Op::Put, 2, ErrorKind::Transient, FaultTiming::After);
    let report = verify(&promoter(&r, fleet(1), ScriptedSuite::new()), 2);
    assert_eq!(report.outcome, Outcome::Failed);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, OLD_SHA), "image {i}");
    }
}

#[test]
fn failed_restore_is_inconsistent_and_reports_the_truth() {
    let r = seeded(3);
    // Image 2's move fails, then restoring image 0 fails (the 4th PUT:
    // 0 and 1 moved, 2 failed, restore of 0 is PUT #4).
    r.fail_nth(Op::Put, 3, ErrorKind::Transient, FaultTiming::Before);
    r.fail_nth(Op::Put, 4, ErrorKind::Denied, FaultTiming::Before);
    let report = verify(&promoter(&r, fleet(1), ScriptedSuite::new()), 3);
    assert_eq!(report.outcome, Outcome::Inconsistent, "{}", report.reason);
    assert_eq!(report.exit_code, 4);
    for i in 0..3 {
        assert_eq!(
            report.images[i].after,
            latest(&r, i),
            "report must say where image {i} is"
        );
    }
    assert_eq!(latest(&r, 0), staging(&r, 0, SHA));
    assert_eq!(latest(&r, 1), staging(&r, 1, OLD_SHA));
    assert_eq!(report.images[0].status, ImageStatus::Mixed);
    assert!(
        report.reason.starts_with("INCONSISTENT"),
        "{}",
        report.reason
    );
    assert!(report.error.is_some());
}

/// Issue 14, finding 9: in an `inconsistent` run, the image whose restore
/// failed had no progress line; an operator watching the log saw one image
/// fewer than the report. Every image the run wrote gets its line.
#[test]
fn an_inconsistent_run_shows_a_line_for_every_image_it_wrote() {
    #[derive(Default)]
    struct Lines(std::sync::Mutex<Vec<(String, ImageStatus)>>);
    impl Observer for Lines {
        fn image(&self, image: &ImageReport) {
            self.0
                .lock()
                .unwrap()
                .push((image.image.to_string(), image.status));
        }
    }
    let r = seeded(3);
    r.fail_nth(Op::Put, 3, ErrorKind::Transient, FaultTiming::Before);
    r.fail_nth(Op::Put, 4, ErrorKind::Denied, FaultTiming::Before);
    let lines = Arc::new(Lines::default());
    let p = promoter(&r, fleet(1), ScriptedSuite::new()).with_observer(lines.clone());
    let report = verify(&p, 3);
    assert_eq!(report.outcome, Outcome::Inconsistent, "{}", report.reason);
    let shown = lines.0.lock().unwrap().clone();
    for i in 0..2 {
        let name = image(i).to_string();
        let Some((_, status)) = shown.iter().find(|(n, _)| *n == name) else {
            panic!("no line for {name}: {shown:?}");
        };
        let status = *status;
        assert_eq!(status, report.images[i].status, "{name}");
    }
}

#[test]
fn first_promotion_without_previous_latest() {
    let r = MemoryRegistry::new();
    for i in 0..2 {
        r.push(
            &image(i),
            &tag(&format!("staging-{SHA}")),
            manifest(&format!("{{\"i\":{i}}}")),
        );
    }
    let report = verify(&promoter(&r, fleet(1), ScriptedSuite::new()), 2);
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(report.images[0].before, None);

    // A failure after image 0 moved cannot be undone without tag deletion.
    let r2 = MemoryRegistry::new();
    for i in 0..2 {
        r2.push(
            &image(i),
            &tag(&format!("staging-{SHA}")),
            manifest(&format!("{{\"i\":{i}}}")),
        );
    }
    r2.fail_nth(Op::Put, 2, ErrorKind::Transient, FaultTiming::Before);
    let report = verify(&promoter(&r2, fleet(1), ScriptedSuite::new()), 2);
    assert_eq!(report.outcome, Outcome::Inconsistent);
    assert!(
        report.reason.contains("did not exist before"),
        "{}",
        report.reason
    );
    assert_eq!(report.images[0].after, latest(&r2, 0));
    assert_eq!(report.images[1].after, None);
}

#[test]
fn retag_preserves_bytes_and_media_type_exactly() {
    let r = MemoryRegistry::new();
    let odd = "{\n   \"schemaVersion\" :2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\n\t\"manifests\":[ ]  }\n\n";
    let index = Manifest::new(
        "application/vnd.oci.image.index.v1+json",
        odd.as_bytes().to_vec(),
    );
    r.push(&image(0), &tag(&format!("staging-{SHA}")), index.clone());
    let report = verify(&promoter(&r, fleet(1), ScriptedSuite::new()), 1);
    assert_eq!(report.outcome, Outcome::Promoted);
    let d = latest(&r, 0).unwrap();
    assert_eq!(&d, index.digest());
    let stored = r.manifest(&image(0), &d).unwrap();
    assert_eq!(stored.bytes(), odd.as_bytes());
    assert_eq!(
        stored.media_type(),
        "application/vnd.oci.image.index.v1+json"
    );
}

#[test]
fn probe_waits_until_every_tenant_runs_the_sha() {
    let r = seeded(1);
    let suite = ScriptedSuite::new()
        .versions(
            "https://canary-0.example",
            vec![Some("old"), Some("old"), Some(&SHA[..7])],
        )
        .versions("https://canary-1.example", vec![None, Some(SHA)]);
    let clock = Arc::new(ManualClock::new(0));
    let p = Promoter::new(
        Arc::new(r.clone()),
        Arc::new(fleet(2)),
        Arc::new(suite),
        clock.clone(),
    )
    .with_policy(Policy {
        rollout: Rollout::Probe {
            interval: Duration::from_secs(10),
            deadline: Duration::from_secs(900),
        },
        ..Policy::default()
    });
    let report = block_on(p.verify(&release(1, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert!(report.states.contains(&State::AwaitingRollout));
    assert_eq!(
        report.timings.rollout_ms,
        Some(20_000),
        "two intervals of 10s"
    );
    assert_eq!(report.tenants[0].version.as_deref(), Some(&SHA[..7]));
}

#[test]
fn rollout_deadline_is_inconclusive_and_names_laggards() {
    let r = seeded(1);
    let suite = ScriptedSuite::new()
        .versions("https://canary-0.example", vec![Some(SHA)])
        .versions("https://canary-1.example", vec![Some("1111111")]);
    let p = promoter(&r, fleet(2), suite).with_policy(Policy {
        rollout: Rollout::Probe {
            interval: Duration::from_secs(10),
            deadline: Duration::from_secs(35),
        },
        ..Policy::default()
    });
    let report = verify(&p, 1);
    assert_eq!(report.outcome, Outcome::Inconclusive);
    assert_eq!(report.timings.rollout_ms, Some(35_000));
    assert!(
        report
            .reason
            .contains("https://canary-1.example runs 1111111"),
        "{}",
        report.reason
    );
    assert!(!report.reason.contains("canary-0"), "{}", report.reason);
    assert_eq!(r.count(Op::Put), 0);
    assert!(report.tenants.iter().all(|t| t.checks.is_empty()));
}

#[test]
fn fixed_wait_sleeps_then_verifies() {
    let r = seeded(1);
    let p = promoter(&r, fleet(1), ScriptedSuite::new()).with_policy(Policy {
        rollout: Rollout::Fixed(Duration::from_secs(360)),
        ..Policy::default()
    });
    let report = verify(&p, 1);
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(report.timings.rollout_ms, Some(360_000));
}

#[test]
fn rollback_with_a_short_sha() {
    let r = seeded(2);
    // latest currently at the new release
    for i in 0..2 {
        let m = r
            .manifest(&image(i), &staging(&r, i, SHA).unwrap())
            .unwrap();
        r.push(&image(i), &tag("latest"), m);
    }
    let p = promoter(&r, fleet(0), ScriptedSuite::new());
    let report = block_on(p.rollback(&release(2, &OLD_SHA[..7])));
    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.reason);
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.sha.as_ref().unwrap().as_str(), OLD_SHA);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, OLD_SHA));
        assert_eq!(report.images[i].before, staging(&r, i, SHA));
    }
}

#[test]
fn rollback_to_a_missing_or_ambiguous_sha_refuses_before_any_move() {
    let r = seeded(2);
    let p = promoter(&r, fleet(0), ScriptedSuite::new());
    let report = block_on(p.rollback(&release(2, "deadbee")));
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("starts with `deadbee`"),
        "{}",
        report.reason
    );
    assert_eq!(r.count(Op::Put), 0);

    r.push(
        &image(0),
        &tag("staging-1111111bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
        manifest("{}"),
    );
    let report = block_on(p.rollback(&release(2, "1111111")));
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.reason.contains("ambiguous"), "{}", report.reason);
    assert!(
        report.reason.contains(&format!("staging-{OLD_SHA}")),
        "{}",
        report.reason
    );
    assert_eq!(r.count(Op::Put), 0);

    // Exists for image 0 only.
    let lone = "3333333ccccccccccccccccccccccccccccccccc";
    r.push(
        &image(0),
        &tag(&format!("staging-{lone}")),
        manifest("{\"lone\":1}"),
    );
    let report = block_on(p.rollback(&release(2, lone)));
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(r.count(Op::Put), 0);
}

#[test]
fn manual_promotion_needs_a_reason() {
    let r = seeded(1);
    let p = promoter(&r, fleet(0), ScriptedSuite::new());
    let report = block_on(p.promote_manual(&release(1, SHA), "  "));
    assert_eq!(report.outcome, Outcome::Usage);
    assert!(r.calls().is_empty());
    let report = block_on(p.promote_manual(&release(1, SHA), "hotfix for INC-42"));
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(report.manual_reason.as_deref(), Some("hotfix for INC-42"));
    assert!(report.reason.contains("INC-42"));
    assert_eq!(latest(&r, 0), staging(&r, 0, SHA));
}

#[test]
fn smoke_runs_the_fleet_only() {
    let r = MemoryRegistry::new();
    let p = promoter(&r, fleet(2), ScriptedSuite::new());
    let report = block_on(p.smoke(None, "run"));
    assert_eq!(report.outcome, Outcome::Passed);
    assert_eq!(report.exit_code, 0);
    assert!(r.calls().is_empty());
}

#[test]
fn trait_objects_work_where_the_trait_is_expected() {
    fn takes<R: Registry>(_: &R) {}
    let arc: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let boxed: Box<dyn Registry> = Box::new(MemoryRegistry::new());
    takes(&arc);
    takes(&boxed);
    let fleet: Box<dyn TenantFleet> = Box::new(StaticFleet::default());
    assert!(block_on(fleet.tenants()).unwrap().is_empty());
    let suite: Arc<dyn SmokeSuite> = Arc::new(ScriptedSuite::new());
    let p = Promoter::new(arc, Arc::new(fleet), suite, Arc::new(ManualClock::new(0)));
    let report = block_on(p.verify(&release(1, SHA), &VerifyOptions::default()));
    assert_eq!(
        report.outcome,
        Outcome::Failed,
        "nothing staged in an empty registry"
    );
}

#[test]
fn memory_registry_passes_the_conformance_suite() {
    let r = MemoryRegistry::new();
    r.push(&image(0), &tag("seed"), manifest("{ \"odd\" :  true }"));
    block_on(canary_core::conformance::registry_conformance(
        &r,
        &image(0),
        &tag("seed"),
    ));
}

#[test]
fn report_round_trips_through_json() {
    let r = seeded(1);
    let report = verify(&promoter(&r, fleet(1), ScriptedSuite::new()), 1);
    let json = serde_json::to_string(&report).unwrap();
    let back: PromotionReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    assert!(json.contains("\"outcome\":\"promoted\""));
    assert!(!json.contains("token-0"));
}

#[cfg(feature = "mock")]
mod with_mocks {
    use super::*;
    use canary_core::MockRegistry;

    #[test]
    fn a_registry_error_at_precheck_never_writes() {
        let mut mock = MockRegistry::new();
        mock.expect_list_tags().never();
        // The precheck reads staging and latest together: both may be asked.
        mock.expect_head_manifest()
            .times(1..=2)
            .returning(|_, _| Err(Error::new(ErrorKind::Unauthorized, "401 from ghcr.io")));
        mock.expect_put_manifest().never();
        mock.expect_get_manifest().never();
        let p = Promoter::new(
            Arc::new(mock),
            Arc::new(fleet(1)),
            Arc::new(ScriptedSuite::new()),
            Arc::new(ManualClock::new(0)),
        );
        let report = block_on(p.verify(&release(1, SHA), &VerifyOptions::default()));
        assert_eq!(report.outcome, Outcome::Failed);
        assert!(report.reason.contains("401 from ghcr.io"));
    }
}

/// A registry where "another writer" moves image 0's `latest` to a foreign
/// manifest: once after our second PUT, or before every HEAD of it.
struct Interfering {
    inner: MemoryRegistry,
    foreign: Manifest,
    always: bool,
    puts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Registry for Interfering {
    async fn get_manifest(&self, img: &ImageRef, reference: &Reference) -> Result<Manifest, Error> {
        self.inner.get_manifest(img, reference).await
    }
    async fn head_manifest(
        &self,
        img: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        if self.always
            && img == &image(0)
            && reference == &Reference::Tag(tag("latest"))
            && self.puts.load(std::sync::atomic::Ordering::SeqCst) >= 2
        {
            self.inner
                .push(&image(0), &tag("latest"), self.foreign.clone());
        }
        self.inner.head_manifest(img, reference).await
    }
    async fn put_manifest(
        &self,
        img: &ImageRef,
        t: &Tag,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        let d = self.inner.put_manifest(img, t, manifest).await?;
        if self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 && !self.always {
            self.inner
                .push(&image(0), &tag("latest"), self.foreign.clone());
        }
        Ok(d)
    }
    async fn list_tags(&self, img: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.inner.list_tags(img).await
    }
}

#[test]
fn another_writer_is_detected_and_latest_re_asserted() {
    let r = seeded(2);
    let interfering = Interfering {
        inner: r.clone(),
        foreign: manifest("{\"foreign\":true}"),
        always: false,
        puts: 0.into(),
    };
    let p = Promoter::new(
        Arc::new(interfering),
        Arc::new(fleet(1)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(0)),
    );
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, SHA), "image {i} re-asserted");
    }
    assert_eq!(r.count(Op::Put), 3, "image 0 written again once");
}

#[test]
fn a_writer_that_never_stops_ends_in_restore_not_a_silent_mix() {
    let r = seeded(2);
    let interfering = Interfering {
        inner: r.clone(),
        foreign: manifest("{\"foreign\":true}"),
        always: true,
        puts: 0.into(),
    };
    let p = Promoter::new(
        Arc::new(interfering),
        Arc::new(fleet(1)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(0)),
    );
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert!(
        matches!(report.outcome, Outcome::Failed | Outcome::Inconsistent),
        "{:?}: {}",
        report.outcome,
        report.reason
    );
    assert!(report.reason.contains("reads back as"), "{}", report.reason);
    for i in 0..2 {
        assert_eq!(
            report.images[i].after,
            latest(&r, i),
            "report truthful for image {i}"
        );
    }
}

/// Another writer moves image 0's `latest` between our precheck and our
/// move, and our first write is refused.
struct MovedThenRefused {
    inner: MemoryRegistry,
    foreign: Manifest,
}

#[async_trait::async_trait]
impl Registry for MovedThenRefused {
    async fn get_manifest(&self, img: &ImageRef, reference: &Reference) -> Result<Manifest, Error> {
        self.inner.get_manifest(img, reference).await
    }
    async fn head_manifest(
        &self,
        img: &ImageRef,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        self.inner.head_manifest(img, reference).await
    }
    async fn put_manifest(&self, _: &ImageRef, _: &Tag, _: &Manifest) -> Result<Digest, Error> {
        self.inner
            .push(&image(0), &tag("latest"), self.foreign.clone());
        Err(Error::new(ErrorKind::Denied, "denied: no push rights"))
    }
    async fn list_tags(&self, img: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.inner.list_tags(img).await
    }
}

#[test]
fn a_failed_move_never_undoes_another_writers_tag() {
    let r = seeded(2);
    let foreign = manifest("{\"someone\":\"else\"}");
    let registry = MovedThenRefused {
        inner: r.clone(),
        foreign: foreign.clone(),
    };
    let p = Promoter::new(
        Arc::new(registry),
        Arc::new(fleet(1)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(0)),
    );
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert_eq!(
        latest(&r, 0).as_ref(),
        Some(foreign.digest()),
        "the other writer's tag stays"
    );
    assert_eq!(report.images[0].after.as_ref(), Some(foreign.digest()));
    assert!(report.images[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("another writer")));
}
