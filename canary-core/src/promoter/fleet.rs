//! The fleet side of a verify: waiting for the rollout, and running the
//! suite on every tenant.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::clock::duration_ms;
use crate::error::{Error, ErrorKind};
use crate::machine::Event;
use crate::promoter::Rollout;
use crate::report::TenantReport;
use crate::suite::{CheckResult, RunContext};
use crate::types::{GitSha, Release, Tenant};

use super::{Promoter, Run};

impl Promoter {
    pub(super) async fn await_rollout(
        &self,
        run: &mut Run,
        release: &Release,
        tenants: &[Tenant],
    ) -> Event {
        let observer = &*self.observer;
        match self.policy.rollout {
            Rollout::Immediate => Event::RolloutConverged,
            Rollout::Fixed(wait) => {
                run.feed(Event::RolloutPending, observer);
                self.clock.sleep(wait).await;
                if self.interrupt.is_raised() {
                    run.story.interrupted = true;
                    return Event::Interrupted;
                }
                Event::RolloutConverged
            }
            Rollout::Probe { interval, deadline } => {
                let mut versions = vec![None; tenants.len()];
                let probe = self
                    .probe_until(
                        tenants,
                        release.sha(),
                        interval,
                        deadline,
                        &mut versions,
                        || {
                            run.feed(Event::RolloutPending, observer);
                        },
                    )
                    .await;
                for (t, v) in run.report.tenants.iter_mut().zip(versions) {
                    t.version = v;
                }
                match probe {
                    Probe::Converged => Event::RolloutConverged,
                    Probe::Interrupted => {
                        run.story.interrupted = true;
                        Event::Interrupted
                    }
                    Probe::TimedOut(lagging) => {
                        run.story.rollout = Some(lagging);
                        Event::RolloutTimedOut
                    }
                }
            }
        }
    }

    /// Probes every tenant until each runs `sha`, a round every `interval`,
    /// for at most `deadline`; `versions[i]` gets what tenant `i` said
    /// last. `pending` is called before each wait. Used by the verify's
    /// rollout wait and by the guard's wait for production.
    pub(super) async fn probe_until(
        &self,
        tenants: &[Tenant],
        sha: &GitSha,
        interval: Duration,
        deadline: Duration,
        versions: &mut [Option<String>],
        mut pending: impl FnMut(),
    ) -> Probe {
        let observer = &*self.observer;
        let start = self.clock.now_ms();
        let deadline_ms = duration_ms(deadline);
        let mut converged = vec![false; tenants.len()];
        loop {
            let waiting: Vec<usize> = (0..tenants.len()).filter(|&i| !converged[i]).collect();
            let answers: Vec<(usize, Result<String, Error>)> = stream::iter(waiting)
                .map(|i| async move { (i, self.suite.probe(&tenants[i]).await) })
                .buffer_unordered(self.policy.concurrency.max(1))
                .collect()
                .await;
            let mut refused = Vec::new();
            for (i, answer) in answers {
                let version = match answer {
                    Ok(v) => v,
                    Err(e) if e.kind() == ErrorKind::Unauthorized => {
                        refused.push(format!(
                            "{} refused canary's token ({})",
                            tenants[i].url(),
                            e.message()
                        ));
                        format!("unknown: the token was refused ({})", e.message())
                    }
                    Err(e) => format!("unreachable ({})", e.message()),
                };
                converged[i] = sha.matches_version(&version);
                versions[i] = Some(version);
            }
            if !refused.is_empty() {
                // No wait makes a wrong token right: say so now, not at
                // the deadline.
                refused.sort();
                return Probe::TimedOut(format!(
                    "{}: a configuration error, not a rollout in progress (check that each token is in the same position as its tenant's URL)",
                    refused.join("; ")
                ));
            }
            let done = converged.iter().filter(|c| **c).count();
            observer.rollout(done, tenants.len());
            if done == tenants.len() {
                return Probe::Converged;
            }
            let elapsed = self.clock.now_ms().saturating_sub(start);
            if elapsed >= deadline_ms {
                let lagging: Vec<String> = tenants
                    .iter()
                    .zip(versions.iter())
                    .zip(&converged)
                    .filter(|(_, c)| !**c)
                    .map(|((t, v), _)| format!("{} runs {}", t.url(), v.as_deref().unwrap_or("?")))
                    .collect();
                return Probe::TimedOut(format!(
                    "rollout did not converge within {}: {} of {} tenants do not run {}: {}",
                    fmt_duration(deadline),
                    lagging.len(),
                    tenants.len(),
                    sha,
                    lagging.join("; ")
                ));
            }
            pending();
            let remaining = Duration::from_millis(deadline_ms - elapsed);
            self.clock.sleep(interval.min(remaining)).await;
            if self.interrupt.is_raised() {
                return Probe::Interrupted;
            }
        }
    }

    /// Runs the suite on every tenant, at most `concurrency` at once,
    /// reporting in fleet order.
    pub(super) async fn check_fleet(
        &self,
        tenants: &[Tenant],
        versions: Vec<Option<String>>,
        context: &RunContext,
    ) -> Vec<TenantReport> {
        let observer = &*self.observer;
        observer.checking(tenants.len());
        // Results are taken as they finish (a slow tenant holds one slot,
        // not the window behind it), then put back in fleet order.
        let mut done: Vec<(usize, TenantReport)> =
            stream::iter(tenants.iter().zip(versions).enumerate())
                .map(|(i, (tenant, version))| async move {
                    let checks = self.suite.run(tenant, context).await;
                    let report = TenantReport {
                        url: tenant.url().to_string(),
                        version,
                        checks,
                    };
                    observer.tenant(&report);
                    (i, report)
                })
                .buffer_unordered(self.policy.concurrency.max(1))
                .collect()
                .await;
        done.sort_unstable_by_key(|(i, _)| *i);
        let mut reports: Vec<TenantReport> = done.into_iter().map(|(_, r)| r).collect();
        for r in &mut reports {
            if r.checks.is_empty() {
                r.checks
                    .push(CheckResult::error("suite", "the suite returned no result"));
            }
        }
        reports
    }
}

/// How a rollout probe ended.
pub(super) enum Probe {
    /// Every tenant runs the sha.
    Converged,
    /// The deadline passed: who runs what, in one sentence.
    TimedOut(String),
    /// A signal arrived.
    Interrupted,
}

/// `6m`, `90s`, `500ms`: a duration as users write it.
pub(super) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}
