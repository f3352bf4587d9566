//! `canary guard`: after the move, watch the production fleet run the
//! release, and move `latest` back by itself when production turns red.
//!
//! Decisions where the design is silent:
//!
//! - A release that is not `latest` when the guard starts, or stops being
//!   `latest` during the bake (someone promoted or rolled back), ends the
//!   guard `inconclusive`, nothing moved: there is no verdict on a release
//!   production no longer runs, and it is not the guard's to undo.
//! - Only failed checks are red. A round with no verdict (unreachable
//!   tenants, timeouts) is not evidence against the release: it counts
//!   neither way and breaks a run of red rounds, so a revert always follows
//!   `failures_to_revert` red rounds in a row.
//! - The revert target is decided before the watch starts (and its staging
//!   tags checked), so a guard that could not act says so at once rather
//!   than after the bake: the `revert_to` sha given, else the last verified
//!   promotion before the release in the ledger, else the release `latest`
//!   held before it.
//! - The revert is a rollback run (`Mode::Rollback`): the same precheck,
//!   all-or-nothing moves, interrupt handling and ledger records as any
//!   move. A guard killed mid-revert is repaired like any other run.

use std::time::Duration;

use crate::clock::duration_ms;
use crate::error::{Error, ErrorKind};
use crate::machine::{Mode, Outcome};
use crate::report::{Command, GuardReport, GuardRound, ImageReport, ImageStatus, PromotionReport};
use crate::suite::RunContext;
use crate::types::{Digest, GitSha, Release};

use super::fleet::{fmt_duration, Probe};
use super::story::{verdict, Verdict};
use super::{Evidence, Promoter, Rollout};

/// How `canary guard` watches production.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// How long production is watched once it runs the release.
    pub bake: Duration,
    /// The time between two rounds of the guard suite.
    pub interval: Duration,
    /// Red rounds in a row that move `latest` back.
    pub failures_to_revert: u32,
    /// Where to move `latest` back to; default: from the ledger.
    pub revert_to: Option<GitSha>,
    /// A value unique to this run (nonces derive from it).
    pub run_id: String,
}

impl Default for GuardOptions {
    fn default() -> Self {
        Self {
            bake: Duration::from_secs(600),
            interval: Duration::from_secs(60),
            failures_to_revert: 2,
            revert_to: None,
            run_id: String::new(),
        }
    }
}

impl GuardOptions {
    /// Rounds in a bake: one per interval, at least one.
    pub fn rounds(&self) -> u32 {
        let interval = duration_ms(self.interval).max(1);
        u32::try_from(duration_ms(self.bake).div_ceil(interval))
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

/// Why the guard ended before or instead of its bake.
struct Stop(Outcome, String);

impl Promoter {
    /// `canary guard`: checks the release is `latest`, finds where to revert
    /// to, waits for the production fleet (this promoter's fleet) to run the
    /// release, then runs the suite every `interval` for `bake`.
    /// `failures_to_revert` red rounds in a row move `latest` back (outcome
    /// `reverted`); a bake all green is `passed`.
    pub async fn guard(&self, release: &Release, options: &GuardOptions) -> PromotionReport {
        let started = self.clock.now_ms();
        let mut report = PromotionReport::new(Command::Guard, Some(release.sha().clone()));
        report.timings.started_ms = started;
        report.guard = Some(GuardReport {
            failures_to_revert: options.failures_to_revert,
            revert_to: None,
            rounds: Vec::new(),
        });
        if let Err(Stop(outcome, reason)) = self.watch(release, options, &mut report).await {
            report.set_outcome(outcome, reason);
        }
        report.timings.finished_ms = self.clock.now_ms();
        report
    }

    async fn watch(
        &self,
        release: &Release,
        options: &GuardOptions,
        report: &mut PromotionReport,
    ) -> Result<(), Stop> {
        let failed =
            |what: &str, e: &Error| Stop(Outcome::Failed, format!("{what}: {}", e.chain()));
        let release = self
            .resolve_sha(release)
            .await
            .map_err(|e| failed("the release cannot be found", &e))?;
        report.sha = Some(release.sha().clone());
        let promoted = release.promoted_tag();
        report.staging_tag = Some(release.staging_tag());
        report.promoted_tag = Some(promoted.clone());

        // 1. The release is latest, image by image.
        let staged = self
            .staging_digests(&release)
            .await
            .map_err(|e| failed("reading the release's staging tags failed", &e))?;
        let now = self
            .latest_digests(&release)
            .await
            .map_err(|e| failed(&format!("reading {promoted} failed"), &e))?;
        report.images = release
            .images()
            .iter()
            .zip(staged.iter().zip(&now))
            .map(|(image, (s, n))| ImageReport {
                image: image.clone(),
                before_read: true,
                overwritten: None,
                staging_digest: Some(s.clone()),
                before: n.clone(),
                after: n.clone(),
                status: ImageStatus::Unchanged,
                error: None,
            })
            .collect();
        if let Some(why) = not_latest(report, &release) {
            return Err(Stop(
                Outcome::Inconclusive,
                format!("{why}: this release is not {promoted}, so there is nothing to guard; nothing moved"),
            ));
        }

        // 2. Where to go back to, before watching anything.
        let target = self.revert_target(&release, options).await?;
        if let Some(g) = &mut report.guard {
            g.revert_to = Some(target.clone());
        }

        // 3. The production fleet, once it runs the release.
        let tenants = match self.read_fleet().await {
            Ok(t) => t,
            Err(e) => {
                report.error = Some(e.report());
                return Err(Stop(e.outcome(), e.reason()));
            }
        };
        if tenants.is_empty() {
            return Err(Stop(
                Outcome::Skipped,
                "no production tenant configured ([guard] urls_env); nothing watched, nothing moved".to_string(),
            ));
        }
        report.tenants = super::unchecked(&tenants);
        let mut versions = vec![None; tenants.len()];
        match self.policy.rollout {
            Rollout::Immediate => {}
            Rollout::Fixed(wait) => self.clock.sleep(wait).await,
            Rollout::Probe { interval, deadline } => {
                match self
                    .probe_until(
                        &tenants,
                        release.sha(),
                        interval,
                        deadline,
                        &mut versions,
                        || {},
                    )
                    .await
                {
                    Probe::Converged => {}
                    Probe::Interrupted => {
                        return Err(interrupted("waiting for production to run the release"))
                    }
                    Probe::TimedOut(lagging) => {
                        for (t, v) in report.tenants.iter_mut().zip(&versions) {
                            t.version.clone_from(v);
                        }
                        return Err(Stop(
                            Outcome::Inconclusive,
                            format!("production did not run {} in time: {lagging}; no verdict, nothing moved", release.sha()),
                        ));
                    }
                }
            }
        }

        // 4. The bake: a round every interval.
        let rounds = options.rounds();
        let context = RunContext {
            sha: Some(release.sha().clone()),
            run_id: options.run_id.clone(),
        };
        let mut red = 0;
        let mut first_red = String::new();
        for round in 0..rounds {
            if self.interrupt.is_raised() {
                return Err(interrupted("during the bake"));
            }
            if round > 0 {
                self.clock.sleep(options.interval).await;
                if self.interrupt.is_raised() {
                    return Err(interrupted("during the bake"));
                }
            }
            // Still ours to guard?
            match self.latest_digests(&release).await {
                Ok(now) => {
                    for (entry, d) in report.images.iter_mut().zip(now) {
                        entry.after = d;
                    }
                    if let Some(why) = not_latest(report, &release) {
                        return Err(Stop(
                            Outcome::Inconclusive,
                            format!("{why} during the bake (someone promoted or rolled back): the guard stopped, nothing moved"),
                        ));
                    }
                }
                Err(e) => {
                    // Not evidence about the release; and no revert can be
                    // decided on an unread tag.
                    push_round(report, self.clock.now_ms(), "no verdict", 0, 0);
                    red = 0;
                    note_round(
                        report,
                        &format!(
                            "round {}: reading {promoted} failed: {}",
                            round + 1,
                            e.chain()
                        ),
                    );
                    continue;
                }
            }
            // A round reads the metrics once, beside the checks: a failed
            // metric makes the round red, as a failed check does.
            let (results, analysis) = futures::join!(
                self.check_fleet(&tenants, versions.clone(), &context),
                async {
                    match &self.analysis {
                        Some(a) => Some(
                            crate::analysis::analyze(
                                a.source.as_ref(),
                                &a.metrics,
                                Some(self.clock.now_ms()),
                            )
                            .await,
                        ),
                        None => None,
                    }
                }
            );
            let (v, why) = super::story::with_analysis(verdict(&results), analysis.as_ref());
            if analysis.is_some() {
                report.analysis = analysis;
            }
            let failed_n = results
                .iter()
                .flat_map(|t| &t.checks)
                .filter(|c| c.status == crate::suite::CheckStatus::Failed)
                .count();
            let errors_n = results
                .iter()
                .flat_map(|t| &t.checks)
                .filter(|c| c.status == crate::suite::CheckStatus::Error)
                .count();
            report.tenants = results;
            match v {
                Verdict::Failed => {
                    if red == 0 {
                        first_red = why;
                    }
                    red += 1;
                    push_round(report, self.clock.now_ms(), "failed", failed_n, errors_n);
                }
                Verdict::Passed => {
                    red = 0;
                    push_round(report, self.clock.now_ms(), "passed", 0, 0);
                }
                Verdict::Inconclusive => {
                    red = 0;
                    push_round(report, self.clock.now_ms(), "no verdict", 0, errors_n);
                }
            }
            if red >= options.failures_to_revert.max(1) {
                return Err(self
                    .revert(&release, target, red, &first_red, options, report)
                    .await);
            }
        }

        let rounds_run = report.guard.as_ref().map_or(0, |g| g.rounds.len());
        let quiet = report.guard.as_ref().map_or(0, |g| {
            g.rounds.iter().filter(|r| r.verdict != "passed").count()
        });
        let bake = fmt_duration(options.bake);
        if quiet == 0 {
            report.set_outcome(
                Outcome::Passed,
                format!(
                    "production stayed green for {bake}: {rounds_run} rounds on {} tenants; {promoted} stays on {}",
                    tenants.len(),
                    release.sha()
                ),
            );
        } else {
            report.set_outcome(
                Outcome::Inconclusive,
                format!(
                    "{quiet} of {rounds_run} rounds in {bake} had no verdict (and none was red twice in a row); {promoted} stays on {}",
                    release.sha()
                ),
            );
        }
        Ok(())
    }

    /// Moves `latest` back to `target` with a rollback run, and words the
    /// guard's outcome from it.
    async fn revert(
        &self,
        release: &Release,
        target: GitSha,
        red: u32,
        first_red: &str,
        options: &GuardOptions,
        report: &mut PromotionReport,
    ) -> Stop {
        let back = release.with_sha(target.clone());
        let rollback = self
            .run(
                Command::Rollback,
                &back,
                Mode::Rollback,
                &options.run_id,
                None,
                Evidence::Fleet,
            )
            .await;
        report.images = rollback.images;
        report.ledger = rollback.ledger;
        report.error = rollback.error;
        let promoted = release.promoted_tag();
        let why = format!("production failed {red} rounds in a row ({first_red})");
        match rollback.outcome {
            Outcome::RolledBack => Stop(
                Outcome::Reverted,
                format!(
                    "{why}; {promoted} of {} images moved back to {} and verified",
                    report.images.len(),
                    back.staging_tag()
                ),
            ),
            Outcome::Interrupted => Stop(
                Outcome::Interrupted,
                format!("{why}; the revert was interrupted: {}", rollback.reason),
            ),
            other => Stop(
                other,
                format!(
                    "{why}; moving {promoted} back to {target} failed: {}",
                    rollback.reason
                ),
            ),
        }
    }

    /// The sha to revert to: the one given, else the ledger's last verified
    /// promotion before the release, else the release `latest` held before
    /// it. Its staging tags must exist.
    async fn revert_target(
        &self,
        release: &Release,
        options: &GuardOptions,
    ) -> Result<GitSha, Stop> {
        let nowhere = |why: String| {
            Stop(
                Outcome::Failed,
                format!(
                    "the guard has nowhere to revert to: {why}; nothing watched, nothing moved"
                ),
            )
        };
        let target = match &options.revert_to {
            Some(sha) => sha.clone(),
            None if self.ledger.is_none() => {
                return Err(nowhere(
                    "no --revert-to sha and no ledger ([ledger] enabled = false) to find the previous release in".to_string(),
                ))
            }
            None => self
                .release_before(release)
                .await
                .map_err(|e| nowhere(e.chain()))?,
        };
        let resolved = self
            .resolve_sha(&release.with_sha(target))
            .await
            .map_err(|e| nowhere(e.chain()))?;
        if resolved.sha() == release.sha() {
            return Err(nowhere(format!(
                "the revert target is the release itself ({})",
                release.sha()
            )));
        }
        self.staging_digests(&resolved)
            .await
            .map_err(|e| nowhere(e.chain()))?;
        Ok(resolved.sha().clone())
    }

    /// Every image's staging digest, read together; a missing one is an
    /// error naming it.
    async fn staging_digests(&self, release: &Release) -> Result<Vec<Digest>, Error> {
        let staging = release.staging_tag();
        let images = release.images();
        let reads = self.read_all(images, &staging).await;
        reads
            .into_iter()
            .zip(images)
            .map(|(read, image)| {
                read?.ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("{image}:{staging} does not exist"),
                    )
                })
            })
            .collect()
    }

    /// Every image's promoted-tag digest, read together.
    async fn latest_digests(&self, release: &Release) -> Result<Vec<Option<Digest>>, Error> {
        self.read_all(release.images(), &release.promoted_tag())
            .await
            .into_iter()
            .collect()
    }
}

/// The first image whose promoted tag is not the release's staging digest.
fn not_latest(report: &PromotionReport, release: &Release) -> Option<String> {
    let promoted = release.promoted_tag();
    report.images.iter().find_map(|i| {
        (i.after != i.staging_digest).then(|| {
            format!(
                "{}:{promoted} is {}, not {}'s {}",
                i.image,
                i.after
                    .as_ref()
                    .map_or_else(|| "missing".to_string(), ToString::to_string),
                release.sha().short(),
                i.staging_digest
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string)
            )
        })
    })
}

fn push_round(
    report: &mut PromotionReport,
    at_ms: u64,
    verdict: &str,
    failed: usize,
    errors: usize,
) {
    if let Some(g) = &mut report.guard {
        g.rounds.push(GuardRound {
            at_ms,
            verdict: verdict.to_string(),
            failed,
            errors,
            note: None,
        });
    }
}

/// Notes on the last round (a registry read that failed).
fn note_round(report: &mut PromotionReport, note: &str) {
    if let Some(r) = report.guard.as_mut().and_then(|g| g.rounds.last_mut()) {
        r.note = Some(note.to_string());
    }
}

fn interrupted(when: &str) -> Stop {
    Stop(
        Outcome::Interrupted,
        format!("interrupted by a signal {when}; nothing moved"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_cover_the_bake() {
        let o = |bake, interval| GuardOptions {
            bake: Duration::from_secs(bake),
            interval: Duration::from_secs(interval),
            ..GuardOptions::default()
        };
        assert_eq!(o(600, 60).rounds(), 10);
        assert_eq!(o(90, 60).rounds(), 2);
        assert_eq!(o(0, 60).rounds(), 1);
        assert_eq!(o(60, 0).rounds(), 60_000);
    }
}
