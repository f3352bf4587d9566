//! SIGINT and SIGTERM (a cancelled CI job: GitHub sends SIGINT, then kills
//! a few seconds later). The first signal raises the gate's interrupt and
//! wakes every wait; the run finishes what the state machine says within
//! the grace period and exits with its true outcome. When the grace period
//! is over, or at a second signal, canary exits `interrupted` (5) at once;
//! a move left half-done then is in the ledger for `canary repair`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::{Clock, Interrupt};
use canary_http::SystemClock;
use tokio::sync::Notify;

/// How long a signalled run may take to finish its moves.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// The process's signal handling.
pub(crate) struct Signals {
    interrupt: Interrupt,
    woken: Arc<Notify>,
}

impl Signals {
    /// Installs the handlers.
    pub(crate) fn install() -> Self {
        let interrupt = Interrupt::new();
        let woken = Arc::new(Notify::new());
        let (i, w) = (interrupt.clone(), Arc::clone(&woken));
        tokio::spawn(async move {
            let name = next_signal().await;
            i.raise();
            w.notify_waiters();
            eprintln!(
                "canary: {name} received: finishing what is in flight (at most {}s), then exiting",
                GRACE.as_secs()
            );
            tokio::select! {
                () = tokio::time::sleep(GRACE) => {
                    eprintln!("canary: grace period over; exiting interrupted (run `canary status` and `canary repair` if a move was cut short)");
                }
                name = next_signal() => {
                    eprintln!("canary: second signal ({name}); exiting interrupted");
                }
            }
            std::process::exit(5);
        });
        Self { interrupt, woken }
    }

    /// The flag the gate reads.
    pub(crate) fn interrupt(&self) -> Interrupt {
        self.interrupt.clone()
    }

    /// A clock whose sleeps end early once a signal arrived.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(WakingClock {
            interrupt: self.interrupt.clone(),
            woken: Arc::clone(&self.woken),
        })
    }
}

async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// [`SystemClock`] whose sleeps return as soon as a signal arrived.
struct WakingClock {
    interrupt: Interrupt,
    woken: Arc<Notify>,
}

#[async_trait]
impl Clock for WakingClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms()
    }

    async fn sleep(&self, duration: Duration) {
        if self.interrupt.is_raised() {
            return;
        }
        tokio::select! {
            () = SystemClock.sleep(duration) => {}
            () = self.woken.notified() => {}
        }
    }
}
