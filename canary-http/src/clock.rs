//! [`SystemClock`]: the real clock, for [`canary_core::Promoter`] and for
//! every wait of an HTTP adapter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use canary_core::clock::duration_ms;
use canary_core::Clock;

/// Wall-clock time from [`SystemTime`], sleeping with Tokio.
///
/// `now_ms` never goes backwards within a process, even if the system clock
/// is stepped back (the contract of [`Clock`]): it returns the largest value
/// returned so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

static LAST_MS: AtomicU64 = AtomicU64::new(0);

#[async_trait]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let now = duration_ms(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let prev = LAST_MS.fetch_max(now, Ordering::SeqCst);
        prev.max(now)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_and_moves_forward() {
        let c = SystemClock;
        let a = c.now_ms();
        c.sleep(Duration::from_millis(20)).await;
        let b = c.now_ms();
        assert!(b >= a + 15, "{a} {b}");
    }
}
