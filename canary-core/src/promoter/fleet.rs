//! The fleet side of a verify: waiting for the rollout, and running the
//! suite on every tenant.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::clock::duration_ms;
use crate::error::Error;
use crate::machine::Event;
use crate::promoter::Rollout;
use crate::report::TenantReport;
use crate::suite::{CheckResult, RunContext};
use crate::types::{Release, Tenant};

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
                let start = self.clock.now_ms();
                let deadline_ms = duration_ms(deadline);
                let sha = release.sha();
                let mut converged = vec![false; tenants.len()];
                loop {
                    let pending: Vec<usize> =
                        (0..tenants.len()).filter(|&i| !converged[i]).collect();
                    let answers: Vec<(usize, Result<String, Error>)> = stream::iter(pending)
                        .map(|i| async move { (i, self.suite.probe(&tenants[i]).await) })
                        .buffer_unordered(self.policy.concurrency.max(1))
                        .collect()
                        .await;
                    for (i, answer) in answers {
                        let version = match answer {
                            Ok(v) => v,
                            Err(e) => format!("unreachable ({})", e.message()),
                        };
                        converged[i] = sha.matches_version(&version);
                        run.report.tenants[i].version = Some(version);
                    }
                    let done = converged.iter().filter(|c| **c).count();
                    observer.rollout(done, tenants.len());
                    if done == tenants.len() {
                        return Event::RolloutConverged;
                    }
                    let elapsed = self.clock.now_ms().saturating_sub(start);
                    if elapsed >= deadline_ms {
                        let lagging: Vec<String> = run
                            .report
                            .tenants
                            .iter()
                            .zip(&converged)
                            .filter(|(_, c)| !**c)
                            .map(|(t, _)| {
                                format!("{} runs {}", t.url, t.version.as_deref().unwrap_or("?"))
                            })
                            .collect();
                        run.story.rollout = Some(format!(
                            "rollout did not converge within {}: {} of {} tenants do not run {}: {}",
                            fmt_duration(deadline),
                            lagging.len(),
                            tenants.len(),
                            sha,
                            lagging.join("; ")
                        ));
                        return Event::RolloutTimedOut;
                    }
                    run.feed(Event::RolloutPending, observer);
                    let remaining = Duration::from_millis(deadline_ms - elapsed);
                    self.clock.sleep(interval.min(remaining)).await;
                    if self.interrupt.is_raised() {
                        run.story.interrupted = true;
                        return Event::Interrupted;
                    }
                }
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

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}
