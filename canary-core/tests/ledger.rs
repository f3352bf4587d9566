//! The promoter with a ledger: intent before the first write, outcome after
//! the run, refusal over an interrupted run, and the findings of the ledger
//! issue reproduced on the in-memory fakes (a stale `before`, an
//! overwritten foreign write, "not read" vs "absent").

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::ledger::{Before, Ledger, MemoryLedger, RecordKind};
use canary_core::promoter::Rollout;
use canary_core::registry::{FaultTiming, Op};
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

fn promoter(registry: Arc<dyn Registry>, ledger: &Arc<MemoryLedger>) -> Promoter {
    Promoter::new(
        registry,
        Arc::new(fleet(2)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    )
    .with_ledger(ledger.clone())
}

fn records(ledger: &MemoryLedger, kind: RecordKind) -> Vec<canary_core::ledger::Record> {
    ledger
        .records()
        .into_iter()
        .filter(|r| r.kind == kind)
        .collect()
}

#[test]
fn a_promotion_announces_before_moving_and_records_after() {
    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    let p = promoter(Arc::new(r.clone()), &ledger);
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);

    let intents = records(&ledger, RecordKind::Intent);
    assert_eq!(intents.len(), 2, "one intent per image");
    let intent = &intents[0];
    assert!(intent.verified && intent.outcome.is_none());
    for (i, img) in intent.images.iter().enumerate() {
        assert_eq!(Some(&img.target), staging(&r, i, SHA).as_ref());
        assert_eq!(img.before, Before::At(staging(&r, i, OLD_SHA).unwrap()));
    }
    let outcomes = records(&ledger, RecordKind::Outcome);
    // Attached to the new latest (which is also the target): once per image.
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].outcome, Some(Outcome::Promoted));
    assert!(outcomes[0].moved_latest());
    let ids = report.ledger.as_ref().expect("ledger report");
    assert_eq!((ids.intent.len(), ids.outcome.len()), (2, 2));
    assert!(ids.warnings.is_empty());

    // The record that explains latest is found from latest's digest.
    let attached = block_on(ledger.attached(&image(0), &latest(&r, 0).unwrap())).unwrap();
    match canary_core::ledger::why(&image(0), &latest(&r, 0).unwrap(), &attached) {
        canary_core::ledger::Why::Record(s) => assert_eq!(s.record.sha.as_str(), SHA),
        canary_core::ledger::Why::Outside => panic!("the promotion explains latest"),
    }
}

#[test]
fn a_rejection_is_recorded_and_moves_nothing() {
    let r = seeded(1);
    let ledger = Arc::new(MemoryLedger::new());
    let suite = ScriptedSuite::new().results(
        "https://canary-1.example",
        vec![CheckResult::failed("liveness", "status 200", "500")],
    );
    let p = Promoter::new(
        Arc::new(r.clone()),
        Arc::new(fleet(2)),
        Arc::new(suite),
        Arc::new(ManualClock::new(1_000)),
    )
    .with_ledger(ledger.clone());
    let report = block_on(p.verify(&release(1, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Rejected);
    assert!(records(&ledger, RecordKind::Intent).is_empty());
    let outcomes = records(&ledger, RecordKind::Outcome);
    assert!(!outcomes.is_empty());
    assert!(!outcomes[0].verified && !outcomes[0].moved_latest());
    assert_eq!(r.count(Op::Put), 0);
}

#[test]
fn an_interrupted_run_is_refused_before_anything_moves() {
    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    // A run that died after moving image 0: its intent hangs off the digest
    // image 0's latest now points at, with no outcome.
    let p = promoter(Arc::new(r.clone()), &ledger);
    block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    let intent = records(&ledger, RecordKind::Intent).remove(0);
    let dead = MemoryLedger::new();
    let mut orphan = intent.clone();
    orphan.run_id = "killed-run".into();
    block_on(dead.append(&image(0), &latest(&r, 0).unwrap(), &orphan)).unwrap();
    let dead = Arc::new(dead);
    let puts = r.count(Op::Put);
    let p = promoter(Arc::new(r.clone()), &dead);
    let report = block_on(p.rollback(&release(2, OLD_SHA)));
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(report.reason.contains("killed-run"), "{}", report.reason);
    let hint = report.error.as_ref().and_then(|e| e.hint.clone()).unwrap();
    assert!(hint.contains("canary repair"), "{hint}");
    assert_eq!(r.count(Op::Put), puts, "nothing moved");
}

#[test]
fn an_unwritable_intent_moves_nothing() {
    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    ledger.fail_appends(true);
    let p = promoter(Arc::new(r.clone()), &ledger);
    let report = block_on(p.promote_manual(&release(2, SHA), "hotfix"));
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(report.reason.contains("intent record"), "{}", report.reason);
    assert_eq!(r.count(Op::Put), 0);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, OLD_SHA));
    }
}

#[test]
fn a_failed_outcome_record_is_a_warning_not_a_new_outcome() {
    // The intent goes through, then the ledger starts refusing.
    struct FlakyLedger {
        inner: MemoryLedger,
        calls: AtomicUsize,
    }
    #[async_trait]
    impl Ledger for FlakyLedger {
        async fn append(
            &self,
            image: &ImageRef,
            subject: &Digest,
            record: &canary_core::ledger::Record,
        ) -> Result<Digest, Error> {
            if self.calls.fetch_add(1, Ordering::SeqCst) >= 1 {
                return Err(Error::new(ErrorKind::Transient, "503 from the registry"));
            }
            self.inner.append(image, subject, record).await
        }
        async fn attached(
            &self,
            image: &ImageRef,
            subject: &Digest,
        ) -> Result<Vec<canary_core::ledger::Stored>, Error> {
            self.inner.attached(image, subject).await
        }
        async fn get(
            &self,
            image: &ImageRef,
            id: &Digest,
        ) -> Result<canary_core::ledger::Stored, Error> {
            self.inner.get(image, id).await
        }
    }
    let r = seeded(1);
    let p = Promoter::new(
        Arc::new(r.clone()),
        Arc::new(fleet(1)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(0)),
    )
    .with_ledger(Arc::new(FlakyLedger {
        inner: MemoryLedger::new(),
        calls: 0.into(),
    }));
    let report = block_on(p.verify(&release(1, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    let ledger = report.ledger.unwrap();
    assert_eq!(ledger.intent.len(), 1);
    assert!(ledger.warnings[0].contains("outcome record was not written"));
}

/// A clock whose first sleep is "another tool moving latest": `crane copy
/// …:staging-R3 …:latest` during the rollout wait.
struct MovesLatestWhileWaiting {
    inner: ManualClock,
    registry: MemoryRegistry,
    foreign: Manifest,
    done: AtomicBool,
}

#[async_trait]
impl Clock for MovesLatestWhileWaiting {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    async fn sleep(&self, duration: Duration) {
        if !self.done.swap(true, Ordering::SeqCst) {
            for i in 0..2 {
                self.registry
                    .push(&image(i), &tag("latest"), self.foreign.clone());
            }
        }
        self.inner.sleep(duration).await;
    }
}

/// Finding 2: `before` is what the move replaced, and a failed run never
/// changes latest (it restores the other writer's digest, not a stale one).
#[test]
fn before_is_read_right_before_the_move() {
    for fail in [false, true] {
        let r = seeded(2);
        let foreign = manifest("{\"release\":\"R3, moved by crane\"}");
        let clock = MovesLatestWhileWaiting {
            inner: ManualClock::new(0),
            registry: r.clone(),
            foreign: foreign.clone(),
            done: AtomicBool::new(false),
        };
        if fail {
            // Image 1's PUT fails: image 0 must go back to R3, not OLD.
            r.fail_nth(Op::Put, 2, ErrorKind::Transient, FaultTiming::Before);
        }
        let p = Promoter::new(
            Arc::new(r.clone()),
            Arc::new(fleet(1)),
            Arc::new(ScriptedSuite::new()),
            Arc::new(clock),
        )
        .with_policy(Policy {
            rollout: Rollout::Fixed(Duration::from_secs(360)),
            ..Policy::default()
        });
        let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
        for i in 0..2 {
            assert_eq!(
                report.images[i].before.as_ref(),
                Some(foreign.digest()),
                "fail={fail}: before is the other writer's digest"
            );
        }
        if fail {
            assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
            for i in 0..2 {
                assert_eq!(latest(&r, i).as_ref(), Some(foreign.digest()), "image {i}");
            }
        } else {
            assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
        }
    }
}

/// Finding 3: a foreign digest overwritten by the re-assert is reported
/// and recorded.
#[test]
fn an_overwritten_foreign_write_is_reported_and_recorded() {
    struct OnceForeign {
        inner: MemoryRegistry,
        foreign: Manifest,
        puts: AtomicUsize,
    }
    #[async_trait]
    impl Registry for OnceForeign {
        async fn get_manifest(&self, i: &ImageRef, r: &Reference) -> Result<Manifest, Error> {
            self.inner.get_manifest(i, r).await
        }
        async fn head_manifest(
            &self,
            i: &ImageRef,
            r: &Reference,
        ) -> Result<Option<Digest>, Error> {
            self.inner.head_manifest(i, r).await
        }
        async fn put_manifest(&self, i: &ImageRef, t: &Tag, m: &Manifest) -> Result<Digest, Error> {
            let d = self.inner.put_manifest(i, t, m).await?;
            if self.puts.fetch_add(1, Ordering::SeqCst) == 1 {
                self.inner
                    .push(&image(0), &tag("latest"), self.foreign.clone());
            }
            Ok(d)
        }
        async fn list_tags(&self, i: &ImageRef) -> Result<Vec<Tag>, Error> {
            self.inner.list_tags(i).await
        }
    }
    let r = seeded(2);
    let foreign = manifest("{\"foreign\":true}");
    let ledger = Arc::new(MemoryLedger::new());
    let p = promoter(
        Arc::new(OnceForeign {
            inner: r.clone(),
            foreign: foreign.clone(),
            puts: 0.into(),
        }),
        &ledger,
    );
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert_eq!(
        report.images[0].overwritten.as_ref(),
        Some(foreign.digest())
    );
    assert_eq!(report.images[1].overwritten, None);
    let outcome = records(&ledger, RecordKind::Outcome).remove(0);
    assert_eq!(
        outcome.images[0].overwritten.as_ref(),
        Some(foreign.digest())
    );
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains("\"overwritten\""), "{text}");
}

/// Finding 4: a run that ended before reading latest says "not read", not
/// "absent".
#[test]
fn not_read_and_absent_differ() {
    let r = seeded(2);
    // The staging tag of image 0 is missing: the precheck stops before
    // reading any latest.
    let p = promoter(Arc::new(r.clone()), &Arc::new(MemoryLedger::new()));
    let report = block_on(p.verify(
        &release(2, "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
        &VerifyOptions::default(),
    ));
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.images.iter().all(|i| !i.before_read));

    let first = MemoryRegistry::new();
    first.push(&image(0), &tag(&format!("staging-{SHA}")), manifest("{}"));
    let p = promoter(Arc::new(first), &Arc::new(MemoryLedger::new()));
    let report = block_on(p.promote_manual(&release(1, SHA), "first promotion"));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert!(report.images[0].before_read && report.images[0].before.is_none());
}

/// A killed run, as the next run finds it: the intent written, image 0
/// moved, image 1 not, no outcome.
fn killed_after_first_move(r: &MemoryRegistry, ledger: &MemoryLedger, command: Command) {
    let intent = canary_core::ledger::Record {
        schema: canary_core::ledger::RECORD_SCHEMA,
        kind: RecordKind::Intent,
        run_id: "killed".into(),
        command,
        sha: GitSha::parse(SHA).unwrap(),
        promoted_tag: "latest".into(),
        time_ms: 5,
        images: (0..2)
            .map(|i| canary_core::ledger::RecordImage {
                image: image(i),
                before: Before::At(staging(r, i, OLD_SHA).unwrap()),
                target: staging(r, i, SHA).unwrap(),
                after: None,
                overwritten: None,
            })
            .collect(),
        outcome: None,
        reason: String::new(),
        manual_reason: None,
        verified: command == Command::Verify,
        checks: None,
        actor: None,
        run_url: None,
        previous: None,
        analysis: None,
    };
    for i in 0..2 {
        block_on(ledger.append(&image(i), &staging(r, i, SHA).unwrap(), &intent)).unwrap();
    }
    let new = block_on(r.get_manifest(&image(0), &Reference::Tag(tag(&format!("staging-{SHA}")))))
        .unwrap();
    r.push(&image(0), &tag("latest"), new);
}

fn mixed(r: &MemoryRegistry) -> bool {
    latest(r, 0).map(|d| Some(d) == staging(r, 0, SHA))
        != latest(r, 1).map(|d| Some(d) == staging(r, 1, SHA))
}

#[test]
fn repair_undoes_a_killed_run_and_closes_it() {
    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    killed_after_first_move(&r, &ledger, Command::Verify);
    assert!(mixed(&r));
    let p = promoter(Arc::new(r.clone()), &ledger);
    let images: Vec<ImageRef> = (0..2).map(image).collect();
    let report = block_on(p.repair(
        &images,
        &tag("latest"),
        canary_core::ledger::RepairDirection::Undo,
    ));
    assert_eq!(report.outcome, Outcome::Repaired, "{}", report.reason);
    assert_eq!(report.exit_code, 0);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, OLD_SHA), "image {i} back");
    }
    // Closed: the next run is not refused, and a second repair finds nothing.
    let again = block_on(p.repair(
        &images,
        &tag("latest"),
        canary_core::ledger::RepairDirection::Undo,
    ));
    assert_eq!(again.outcome, Outcome::Skipped, "{}", again.reason);
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
}

#[test]
fn repair_forward_finishes_a_verified_promotion_only() {
    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    killed_after_first_move(&r, &ledger, Command::Verify);
    let p = promoter(Arc::new(r.clone()), &ledger);
    let images: Vec<ImageRef> = (0..2).map(image).collect();
    let report = block_on(p.repair(
        &images,
        &tag("latest"),
        canary_core::ledger::RepairDirection::Forward,
    ));
    assert_eq!(report.outcome, Outcome::Repaired, "{}", report.reason);
    for i in 0..2 {
        assert_eq!(latest(&r, i), staging(&r, i, SHA), "image {i} forward");
    }

    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    killed_after_first_move(&r, &ledger, Command::Rollback);
    let p = promoter(Arc::new(r.clone()), &ledger);
    let report = block_on(p.repair(
        &images,
        &tag("latest"),
        canary_core::ledger::RepairDirection::Forward,
    ));
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("only a verified or manual promotion"),
        "{}",
        report.reason
    );
    assert!(mixed(&r), "a refused forward repair writes nothing");
}

#[test]
fn status_flags_an_interrupted_run_and_a_mixed_release() {
    let r = seeded(2);
    let ledger = Arc::new(MemoryLedger::new());
    killed_after_first_move(&r, &ledger, Command::Verify);
    let p = promoter(Arc::new(r.clone()), &ledger);
    let images: Vec<ImageRef> = (0..2).map(image).collect();
    let status = block_on(p.status(
        &images,
        &TagTemplate::parse("staging-{sha}").unwrap(),
        &TagTemplate::parse("latest").unwrap(),
        50,
    ))
    .unwrap();
    assert!(status.mixed);
    assert_eq!(
        status.interrupted.as_ref().map(|i| i.run_id.as_str()),
        Some("killed")
    );
    assert_eq!(status.exit_code(), 4);

    // Mixed without any record: a hand-made `crane tag`.
    let r = seeded(2);
    let new = block_on(r.get_manifest(&image(1), &Reference::Tag(tag(&format!("staging-{SHA}")))))
        .unwrap();
    r.push(&image(1), &tag("latest"), new);
    let p = Promoter::new(
        Arc::new(r.clone()),
        Arc::new(fleet(0)),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(0)),
    );
    let status = block_on(p.status(
        &images,
        &TagTemplate::parse("staging-{sha}").unwrap(),
        &TagTemplate::parse("latest").unwrap(),
        50,
    ))
    .unwrap();
    assert!(status.mixed && status.interrupted.is_none());
    assert_eq!(status.exit_code(), 4);
}

#[test]
fn history_walks_the_chain_and_rollback_previous_finds_the_last_verified() {
    let r = seeded(1);
    let ledger = Arc::new(MemoryLedger::new());
    let third = "3333333ccccccccccccccccccccccccccccccccc";
    r.push(
        &image(0),
        &tag(&format!("staging-{third}")),
        manifest("{\"release\":\"third\"}"),
    );
    let p = promoter(Arc::new(r.clone()), &ledger);
    let verified = block_on(p.verify(&release(1, SHA), &VerifyOptions::default()));
    assert_eq!(verified.outcome, Outcome::Promoted);
    let manual = block_on(p.promote_manual(&release(1, third), "hotfix"));
    assert_eq!(manual.outcome, Outcome::Promoted, "{}", manual.reason);

    let chain = block_on(p.history(&image(0), &tag("latest"), 10)).unwrap();
    let runs: Vec<(RecordKind, Command)> = chain
        .iter()
        .map(|s| (s.record.kind, s.record.command))
        .collect();
    assert_eq!(
        runs,
        vec![
            (RecordKind::Outcome, Command::Promote),
            (RecordKind::Outcome, Command::Verify)
        ],
        "newest first, one outcome per run"
    );
    assert_eq!(
        block_on(p.history(&image(0), &tag("latest"), 1))
            .unwrap()
            .len(),
        1
    );
    // The current release is the manual one; the last verified before it is SHA.
    let previous = block_on(p.previous_release(&image(0), &tag("latest"))).unwrap();
    assert_eq!(previous.as_str(), SHA);
}
