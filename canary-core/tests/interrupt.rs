//! A signal (SIGINT from a cancelled CI job, SIGTERM) at every phase of a
//! two-image promotion: the run stops with `interrupted` and `latest` is
//! never left mixed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::promoter::Rollout;
use canary_core::registry::Op;
use canary_core::*;
use futures::executor::block_on;

mod common;
use common::*;

fn on(r: &MemoryRegistry, sha: &str) -> bool {
    (0..2).all(|i| {
        r.tag_digest(&image(i), &tag("latest"))
            == r.tag_digest(&image(i), &tag(&format!("staging-{sha}")))
    })
}

/// Raises the interrupt after the `nth` PUT (1-based).
struct SignalAfterPut {
    inner: MemoryRegistry,
    interrupt: Interrupt,
    nth: usize,
    puts: AtomicUsize,
}

#[async_trait]
impl Registry for SignalAfterPut {
    async fn get_manifest(&self, i: &ImageRef, r: &Reference) -> Result<Manifest, Error> {
        self.inner.get_manifest(i, r).await
    }
    async fn head_manifest(&self, i: &ImageRef, r: &Reference) -> Result<Option<Digest>, Error> {
        self.inner.head_manifest(i, r).await
    }
    async fn put_manifest(&self, i: &ImageRef, t: &Tag, m: &Manifest) -> Result<Digest, Error> {
        let d = self.inner.put_manifest(i, t, m).await;
        if self.puts.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            self.interrupt.raise();
        }
        d
    }
    async fn list_tags(&self, i: &ImageRef) -> Result<Vec<Tag>, Error> {
        self.inner.list_tags(i).await
    }
}

/// Raises the interrupt during the first sleep (the rollout wait).
struct SignalWhileWaiting {
    inner: ManualClock,
    interrupt: Interrupt,
}

#[async_trait]
impl Clock for SignalWhileWaiting {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    async fn sleep(&self, d: Duration) {
        self.interrupt.raise();
        self.inner.sleep(d).await;
    }
}

fn promoter(registry: Arc<dyn Registry>, clock: Arc<dyn Clock>, interrupt: &Interrupt) -> Promoter {
    Promoter::new(
        registry,
        Arc::new(StaticFleet::new(vec![Tenant::new(
            "https://canary-0.example",
            Secret::new("t"),
        )])),
        Arc::new(ScriptedSuite::new()),
        clock,
    )
    .with_policy(Policy {
        rollout: Rollout::Fixed(Duration::from_secs(360)),
        ..Policy::default()
    })
    .with_interrupt(interrupt.clone())
}

#[test]
fn before_the_run_nothing_is_read_or_written() {
    let r = seeded(2);
    let interrupt = Interrupt::new();
    interrupt.raise();
    let p = promoter(
        Arc::new(r.clone()),
        Arc::new(ManualClock::new(0)),
        &interrupt,
    );
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(report.exit_code, 5);
    assert_eq!(r.count(Op::Put) + r.count(Op::Head), 0);
    assert!(on(&r, OLD_SHA));
}

#[test]
fn during_the_rollout_wait_nothing_moves() {
    let r = seeded(2);
    let interrupt = Interrupt::new();
    let clock = SignalWhileWaiting {
        inner: ManualClock::new(0),
        interrupt: interrupt.clone(),
    };
    let p = promoter(Arc::new(r.clone()), Arc::new(clock), &interrupt);
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Interrupted, "{}", report.reason);
    assert!(
        report.reason.contains("before any write"),
        "{}",
        report.reason
    );
    assert_eq!(r.count(Op::Put), 0);
    assert!(on(&r, OLD_SHA));
}

#[test]
fn after_the_first_move_it_is_put_back() {
    let r = seeded(2);
    let interrupt = Interrupt::new();
    let registry = SignalAfterPut {
        inner: r.clone(),
        interrupt: interrupt.clone(),
        nth: 1,
        puts: 0.into(),
    };
    let p = promoter(
        Arc::new(registry),
        Arc::new(ManualClock::new(0)),
        &interrupt,
    );
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Interrupted, "{}", report.reason);
    assert!(report.reason.contains("put back"), "{}", report.reason);
    assert!(
        on(&r, OLD_SHA),
        "latest back on the old release, never mixed"
    );
}

#[test]
fn after_the_last_move_it_is_verified() {
    let r = seeded(2);
    let interrupt = Interrupt::new();
    let registry = SignalAfterPut {
        inner: r.clone(),
        interrupt: interrupt.clone(),
        nth: 2,
        puts: 0.into(),
    };
    let p = promoter(
        Arc::new(registry),
        Arc::new(ManualClock::new(0)),
        &interrupt,
    );
    let report = block_on(p.verify(&release(2, SHA), &VerifyOptions::default()));
    assert_eq!(report.outcome, Outcome::Interrupted, "{}", report.reason);
    assert!(report.reason.contains("verified"), "{}", report.reason);
    assert!(
        on(&r, SHA),
        "every image moved: verified on the new release"
    );
}
