//! [`Interrupt`]: how a face asks a run to stop (a signal, a cancelled CI
//! job). The promoter looks at it between steps: before any write it stops
//! at once (`interrupted`, nothing changed); once moving, it finishes what
//! the state machine says — puts back what moved, or verifies when every
//! image moved — so `latest` is never left mixed by a signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag a face raises and the promoter reads. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every run holding this flag to stop.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
