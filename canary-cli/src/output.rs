//! Human output: where and whether to print, and in colour. The text comes
//! from `canary-report`.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;

use canary_core::promoter::Observer;
use canary_core::{ImageReport, State, TenantReport, UsageError};
use canary_report::terminal;

pub(crate) use canary_report::terminal::summary;

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty.
pub(crate) fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Prints a usage error and its fix on stderr.
pub(crate) fn usage_error(e: &UsageError) {
    eprintln!("{}", terminal::usage_error(e));
}

/// Progress lines on stderr as the run goes.
pub(crate) struct Progress {
    quiet: bool,
    last_rollout: Mutex<Option<(usize, usize)>>,
}

impl Progress {
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            last_rollout: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{text}");
        }
    }
}

impl Observer for Progress {
    fn state(&self, state: State) {
        if let Some(line) = terminal::progress_state(state) {
            self.line(&line);
        }
    }

    fn rollout(&self, converged: usize, total: usize) {
        let mut last = self
            .last_rollout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One line per change, not per probe round.
        if *last != Some((converged, total)) {
            *last = Some((converged, total));
            self.line(&terminal::progress_rollout(converged, total));
        }
    }

    fn tenant(&self, tenant: &TenantReport) {
        self.line(&terminal::progress_tenant(tenant));
    }

    fn image(&self, image: &ImageReport) {
        self.line(&terminal::progress_image(image));
    }
}
