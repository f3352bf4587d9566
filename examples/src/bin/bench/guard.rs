//! Child processes the benchmark starts are stopped when their guard drops,
//! also when a measurement panics, so no server outlives the run.

use std::process::Child;

/// Kills and reaps the child on drop.
pub(crate) struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    pub(crate) fn new(child: Child) -> Self {
        Self { child: Some(child) }
    }

    pub(crate) fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until drop")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Closing its stdin first lets a fleet host exit on its own; the
            // kill is for everything else (and for a host that hangs).
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
