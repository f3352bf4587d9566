//! Registry work runs at the floor: the images of a release are prechecked,
//! moved and verified together, and a manual promotion or a rollback reads
//! each staging manifest once. (Walked image after image, a two-image manual
//! promotion took 11 sequential requests: 0.36 s behind 20 ms of latency,
//! against a floor of about 0.10 s.)
//!
//! Proved without timing: every registry call waits (a bounded number of
//! polls) for another call to start while it is in flight. Serial code
//! leaves every call alone; parallel code pairs them all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use async_trait::async_trait;
use canary_core::registry::Op;
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

/// Every call waits until another call arrives while it is in flight, or
/// gives up after many polls and counts itself `alone`.
struct Rendezvous {
    inner: MemoryRegistry,
    in_flight: AtomicUsize,
    arrivals: AtomicUsize,
    alone: AtomicUsize,
}

impl Rendezvous {
    fn new(inner: MemoryRegistry) -> Self {
        Self {
            inner,
            in_flight: AtomicUsize::new(0),
            arrivals: AtomicUsize::new(0),
            alone: AtomicUsize::new(0),
        }
    }

    async fn meet(&self) {
        let arrived = self.arrivals.fetch_add(1, Ordering::SeqCst) + 1;
        let others = self.in_flight.fetch_add(1, Ordering::SeqCst);
        if others > 0 {
            return;
        }
        let mut polls = 0;
        let met = futures::future::poll_fn(|cx| {
            polls += 1;
            if self.arrivals.load(Ordering::SeqCst) > arrived {
                Poll::Ready(true)
            } else if polls > 10_000 {
                Poll::Ready(false)
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        if !met {
            self.alone.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Registry for Rendezvous {
    async fn get_manifest(&self, i: &ImageRef, r: &Reference) -> Result<Manifest, Error> {
        self.meet().await;
        let out = self.inner.get_manifest(i, r).await;
        self.leave();
        out
    }
    async fn head_manifest(&self, i: &ImageRef, r: &Reference) -> Result<Option<Digest>, Error> {
        self.meet().await;
        let out = self.inner.head_manifest(i, r).await;
        self.leave();
        out
    }
    async fn put_manifest(&self, i: &ImageRef, t: &Tag, m: &Manifest) -> Result<Digest, Error> {
        self.meet().await;
        let out = self.inner.put_manifest(i, t, m).await;
        self.leave();
        out
    }
    async fn list_tags(&self, i: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.meet().await;
        let out = self.inner.list_tags(i).await;
        self.leave();
        out
    }
}

fn promoter(registry: Arc<Rendezvous>) -> Promoter {
    Promoter::new(
        registry,
        Arc::new(StaticFleet::new(Vec::new())),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    )
}

/// Calls of `op` on a staging tag.
fn staging_reads(r: &MemoryRegistry, op: Op) -> usize {
    r.calls()
        .iter()
        .filter(|c| c.op == op && c.reference.starts_with("staging-"))
        .count()
}

#[test]
fn a_manual_promotion_moves_every_image_together_reading_staging_once() {
    let memory = seeded(2);
    let registry = Arc::new(Rendezvous::new(memory.clone()));
    let report = block_on(promoter(registry.clone()).promote_manual(&release(2, SHA), "hotfix"));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    for i in 0..2 {
        assert_eq!(
            memory.tag_digest(&image(i), &tag("latest")),
            memory.tag_digest(&image(i), &tag(&format!("staging-{SHA}")))
        );
    }
    // precheck (GET staging, HEAD latest), PUT latest, HEAD latest: per image.
    assert_eq!(memory.calls().len(), 8, "{:#?}", memory.calls());
    assert_eq!(staging_reads(&memory, Op::Get), 2);
    assert_eq!(staging_reads(&memory, Op::Head), 0);
    assert_eq!(registry.alone.load(Ordering::SeqCst), 0, "a call ran alone");
}

#[test]
fn a_rollback_moves_every_image_together_reading_staging_once() {
    let memory = seeded(3);
    let registry = Arc::new(Rendezvous::new(memory.clone()));
    let report = block_on(promoter(registry.clone()).rollback(&release(3, SHA)));
    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.reason);
    assert_eq!(memory.calls().len(), 12, "{:#?}", memory.calls());
    assert_eq!(staging_reads(&memory, Op::Get), 3);
    assert_eq!(staging_reads(&memory, Op::Head), 0);
    assert_eq!(registry.alone.load(Ordering::SeqCst), 0, "a call ran alone");
}

#[test]
fn a_verify_reads_staging_again_at_the_move_and_still_runs_images_together() {
    // A wait separates precheck and move in a verify, so the move re-reads
    // staging and refuses a tag that moved since it was checked.
    let memory = seeded(2);
    let registry = Arc::new(Rendezvous::new(memory.clone()));
    let promoter = Promoter::new(
        registry.clone(),
        Arc::new(StaticFleet::new(vec![Tenant::new(
            "https://canary.example",
            Secret::new("t"),
        )])),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    );
    let before = memory.calls().len();
    let report = block_on(promoter.verify(
        &release(2, SHA),
        &VerifyOptions {
            dry_run: false,
            run_id: "r".into(),
            ..VerifyOptions::default()
        },
    ));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    let calls = &memory.calls()[before..];
    // HEAD staging + HEAD latest; GET staging beside HEAD latest again;
    // PUT; HEAD latest: per image.
    assert_eq!(calls.len(), 12, "{calls:#?}");
    assert_eq!(registry.alone.load(Ordering::SeqCst), 0, "a call ran alone");
}

#[test]
fn a_failed_move_among_parallel_ones_is_compensated_all_or_nothing() {
    use canary_core::registry::FaultTiming;
    let memory = seeded(3);
    // The second PUT is refused; the others landed and must be put back.
    memory.fail_nth(Op::Put, 2, ErrorKind::Transient, FaultTiming::Before);
    let registry = Arc::new(Rendezvous::new(memory.clone()));
    let before: Vec<_> = (0..3)
        .map(|i| memory.tag_digest(&image(i), &tag("latest")))
        .collect();
    let report = block_on(promoter(registry).promote_manual(&release(3, SHA), "hotfix"));
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    for (i, before) in before.iter().enumerate() {
        assert_eq!(&memory.tag_digest(&image(i), &tag("latest")), before);
    }
}

/// Issue 14, finding 9: moving `latest` to the digest it already has
/// reported "moved" and wrote it again. It is left alone, verified, and
/// reported `unchanged`.
#[test]
fn an_image_already_on_the_release_is_not_written_again() {
    let memory = seeded(2);
    // Image 0's latest is already the new release.
    let new0 = memory
        .manifest(
            &image(0),
            &memory
                .tag_digest(&image(0), &tag(&format!("staging-{SHA}")))
                .unwrap(),
        )
        .unwrap();
    memory.push(&image(0), &tag("latest"), new0);
    let registry = Arc::new(Rendezvous::new(memory.clone()));
    let report = block_on(promoter(registry).promote_manual(&release(2, SHA), "hotfix"));
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    let puts: Vec<String> = memory
        .calls()
        .iter()
        .filter(|c| c.op == Op::Put)
        .map(|c| c.image.to_string())
        .collect();
    assert_eq!(puts, [image(1).to_string()], "only image 1 needed a write");
    assert_eq!(report.images[0].status, ImageStatus::Unchanged);
    assert_eq!(report.images[1].status, ImageStatus::Moved);
    assert_eq!(report.images[0].after, report.images[0].staging_digest);
}

/// A registry whose HEADs of `latest` lie after the precheck (a digest of
/// other bytes). Found by the fault matrix once the reads ran together: the
/// lie became `before`, a failed move then read the same lie back and
/// called the tag "put back" while it held the release.
struct LyingHead {
    inner: MemoryRegistry,
    heads: AtomicUsize,
}

#[async_trait]
impl Registry for LyingHead {
    async fn get_manifest(&self, i: &ImageRef, r: &Reference) -> Result<Manifest, Error> {
        self.inner.get_manifest(i, r).await
    }
    async fn head_manifest(&self, i: &ImageRef, r: &Reference) -> Result<Option<Digest>, Error> {
        let n = self.heads.fetch_add(1, Ordering::SeqCst);
        if n >= 4 && r.to_string() == "latest" {
            return Ok(Some(Digest::sha256_of(b"not the digest you want")));
        }
        self.inner.head_manifest(i, r).await
    }
    async fn put_manifest(&self, i: &ImageRef, t: &Tag, m: &Manifest) -> Result<Digest, Error> {
        self.inner.put_manifest(i, t, m).await
    }
    async fn list_tags(&self, i: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.inner.list_tags(i).await
    }
}

#[test]
fn a_latest_that_changed_during_the_wait_is_confirmed_by_its_bytes() {
    let memory = seeded(2);
    let before: Vec<_> = (0..2)
        .map(|i| memory.tag_digest(&image(i), &tag("latest")))
        .collect();
    let registry = Arc::new(LyingHead {
        inner: memory.clone(),
        heads: AtomicUsize::new(0),
    });
    let promoter = Promoter::new(
        registry,
        Arc::new(StaticFleet::new(vec![Tenant::new(
            "https://canary.example",
            Secret::new("t"),
        )])),
        Arc::new(ScriptedSuite::new()),
        Arc::new(ManualClock::new(1_000)),
    );
    let report = block_on(promoter.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(report.reason.contains("does not hash"), "{}", report.reason);
    assert_eq!(
        memory.count(Op::Put),
        0,
        "wrote over a digest it never read"
    );
    for (i, before) in before.iter().enumerate() {
        assert_eq!(&memory.tag_digest(&image(i), &tag("latest")), before);
    }
}
