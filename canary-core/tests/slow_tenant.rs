//! One slow tenant must not stall the fleet: results are taken as they
//! finish, so every other tenant flows through the concurrency window while
//! the slow one holds a single slot. (Collected in fleet order, a slow head
//! held the whole window: 2,000 tenants with four 12 s tenants took 49.5 s
//! instead of ~14 s.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use async_trait::async_trait;
use canary_core::*;
use futures::executor::block_on;

const N: usize = 50;

/// Tenant 0 answers only once every other tenant has finished; it gives up
/// (a failed check) if it is polled too long without that happening.
struct SlowHead {
    finished: AtomicUsize,
}

#[async_trait]
impl SmokeSuite for SlowHead {
    async fn run(&self, tenant: &Tenant, _: &RunContext) -> Vec<CheckResult> {
        if tenant.url().starts_with("https://t0.") {
            let mut polls = 0;
            let waited = futures::future::poll_fn(|cx| {
                polls += 1;
                if self.finished.load(Ordering::SeqCst) == N - 1 {
                    Poll::Ready(true)
                } else if polls > 100_000 {
                    Poll::Ready(false)
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
            return vec![if waited {
                CheckResult::passed("slow")
            } else {
                CheckResult::failed("slow", "the rest of the fleet finished", "starved")
            }];
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
        vec![CheckResult::passed("fast")]
    }

    async fn probe(&self, _: &Tenant) -> Result<String, Error> {
        Ok(String::new())
    }
}

#[test]
fn a_slow_tenant_holds_one_slot_not_the_window() {
    let fleet = StaticFleet::new(
        (0..N)
            .map(|i| Tenant::new(format!("https://t{i}.example"), Secret::new("t")))
            .collect(),
    );
    let p = Promoter::without_registry(
        Arc::new(fleet),
        Arc::new(SlowHead {
            finished: AtomicUsize::new(0),
        }),
        Arc::new(ManualClock::new(0)),
    )
    .with_policy(Policy {
        concurrency: 4,
        ..Policy::default()
    });
    let report = block_on(p.smoke(None, "run"));
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.reason);
    let urls: Vec<&str> = report.tenants.iter().map(|t| t.url.as_str()).collect();
    let want: Vec<String> = (0..N).map(|i| format!("https://t{i}.example")).collect();
    assert_eq!(urls, want, "the report keeps fleet order");
}
