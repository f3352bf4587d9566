//! Time, through a trait: core has no clock of its own, so tests run
//! instantly with [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

/// Wall-clock time and sleeping.
///
/// # Contract
///
/// - `now_ms` is milliseconds since the Unix epoch and never goes backwards
///   within one run.
/// - `sleep(d)` returns after `d` has passed by `now_ms` (a fake clock may
///   simply advance itself).
#[async_trait]
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

#[async_trait]
impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    async fn sleep(&self, duration: Duration) {
        (**self).sleep(duration).await;
    }
}

/// A clock that only moves when slept on: `sleep` advances it at once and
/// records the duration asked for, so a test can assert every wait without
/// spending it.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualClock {
    /// A clock at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now: AtomicU64::new(start_ms),
            sleeps: Mutex::new(Vec::new()),
        }
    }

    /// Every duration `sleep` was called with so far, in order (`advance`
    /// is not a sleep and is not recorded).
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(duration_ms(by), Ordering::SeqCst);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
    async fn sleep(&self, duration: Duration) {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(duration);
        self.advance(duration);
    }
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_records_its_sleeps() {
        let clock = ManualClock::new(1_000);
        futures::executor::block_on(async {
            clock.sleep(Duration::from_secs(2)).await;
            clock.advance(Duration::from_millis(5));
            clock.sleep(Duration::from_millis(7)).await;
        });
        assert_eq!(clock.now_ms(), 3_012);
        assert_eq!(
            clock.sleeps(),
            vec![Duration::from_secs(2), Duration::from_millis(7)]
        );
    }
}
