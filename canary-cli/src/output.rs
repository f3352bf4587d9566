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

/// Prints a fleet check (the table, or `--json`) and, in Actions mode,
/// its annotations, outputs and step summary.
pub(crate) fn fleet_check(
    report: &canary_core::FleetCheckReport,
    json: bool,
    github: Option<&std::sync::Arc<crate::github::Github>>,
) {
    use canary_report::fleet;
    emit_text(
        &if json {
            fleet::check_json(report)
        } else {
            fleet::check_text(report)
        },
        json,
        github,
    );
    if let Some(gh) = github {
        gh.publish(
            &fleet::check_annotations(report),
            &fleet::check_outputs(report),
            &fleet::check_markdown(report),
        );
    }
}

/// Prints an enrolment (text, or `--json`) and, in Actions mode, its
/// annotation, outputs and step summary.
pub(crate) fn fleet_enroll(
    report: &canary_core::EnrollReport,
    json: bool,
    github: Option<&std::sync::Arc<crate::github::Github>>,
) {
    use canary_report::fleet;
    emit_text(
        &if json {
            fleet::enroll_json(report)
        } else {
            fleet::enroll_text(report)
        },
        json,
        github,
    );
    if let Some(gh) = github {
        gh.publish(
            &fleet::enroll_annotations(report),
            &fleet::enroll_outputs(report),
            &fleet::enroll_markdown(report),
        );
    }
}

/// Text that quotes tenants or the control plane, on stdout: JSON as is
/// (workflow commands go to stderr then), human text guarded in Actions
/// mode so nothing in it acts as a workflow command.
fn emit_text(text: &str, json: bool, github: Option<&std::sync::Arc<crate::github::Github>>) {
    match github {
        Some(gh) if !json => gh.untrusted(text),
        _ => print!("{text}"),
    }
}

/// Prints a usage error and its fix on stderr.
pub(crate) fn usage_error(e: &UsageError) {
    eprintln!("{}", terminal::usage_error(e));
}

/// Progress on stderr as the run goes. Not on a terminal (a CI log, a
/// pipe): one line per event, as before. On a terminal: a live line for the
/// long waits — the rollout ("2/3 tenants run the release, 1m20s") and the
/// fleet's checks ("412/1000 tenants checked") — with the other events
/// printed above it, and a line for a tenant only when it did not pass.
/// `--quiet` prints nothing; the live line never uses colour.
pub(crate) struct Progress {
    quiet: bool,
    live: bool,
    last_rollout: Mutex<Option<(usize, usize)>>,
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Progress {
    pub(crate) fn new(quiet: bool) -> Self {
        Self::with_live(quiet, std::io::stderr().is_terminal())
    }

    /// `live`: draw the live line (a terminal on stderr).
    pub(crate) fn with_live(quiet: bool, live: bool) -> Self {
        Self {
            quiet,
            live: live && !quiet,
            last_rollout: Mutex::new(None),
            bar: Mutex::new(None),
        }
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, Option<indicatif::ProgressBar>> {
        self.bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if let Some(bar) = self.bar().as_ref() {
            bar.println(text);
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// Replaces the live line with one for `what` (`{pos}/{len}` filled in
    /// as it goes).
    fn start(&self, what: &str) {
        let mut slot = self.bar();
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template(&format!(
                "canary: {{spinner}} {what} {{pos}}/{{len}} ({{elapsed}})"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        *slot = Some(bar);
    }

    fn stop(&self) {
        if let Some(old) = self.bar().take() {
            old.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn state(&self, state: State) {
        if self.live {
            self.stop();
        }
        if let Some(line) = terminal::progress_state(state) {
            self.line(&line);
        }
        if self.live {
            match state {
                State::AwaitingRollout => self.start("tenants run the release:"),
                State::Verifying => self.start("tenants checked:"),
                _ => {}
            }
        }
    }

    fn rollout(&self, converged: usize, total: usize) {
        if self.live {
            if let Some(bar) = self.bar().as_ref() {
                bar.set_length(total as u64);
                bar.set_position(converged as u64);
                return;
            }
        }
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

    fn checking(&self, total: usize) {
        if let Some(bar) = self.bar().as_ref() {
            bar.set_length(total as u64);
        }
    }

    fn tenant(&self, tenant: &TenantReport) {
        if self.live {
            if let Some(bar) = self.bar().as_ref() {
                bar.inc(1);
                if tenant.passed() {
                    return;
                }
                bar.println(terminal::progress_tenant(tenant));
                return;
            }
        }
        self.line(&terminal::progress_tenant(tenant));
    }

    fn image(&self, image: &ImageReport) {
        self.line(&terminal::progress_image(image));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
