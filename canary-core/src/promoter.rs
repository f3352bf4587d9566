//! The [`Promoter`]: drives the state machine through the traits.
//!
//! Decisions this module makes where the design is silent:
//!
//! - The staging digest read at precheck is the one promoted: if
//!   `staging-<sha>` points elsewhere when the move reads it, the move fails
//!   (integrity) rather than promote something the fleet never ran.
//! - A failed check on any tenant rejects the release even when other
//!   tenants had no verdict: one piece of evidence against is enough.
//! - A short sha is resolved through the first image's tag list to the one
//!   staging tag that starts with it; an exact match wins over longer ones.
//! - A dry run that passes ends `skipped` (exit 0, `latest` unchanged) with
//!   every image marked `would_move`.
//! - An image whose `latest` did not exist before cannot be "restored"
//!   (tag deletion is not portable across registries): if it was written
//!   and a later image fails, the outcome is `inconsistent`, truthfully.
//!
//! Every run goes through a pure machine: promotions, manual promotions and
//! rollbacks through [`crate::machine::transition`], `smoke` through
//! [`crate::machine::smoke::smoke_transition`]. What compensation writes is
//! decided by [`crate::compensation`]. The report's reason is worded once,
//! when the run ends, from what each phase found.

mod fleet;
mod guard;
mod ledger;
mod moves;
mod records;
mod story;

use std::collections::VecDeque;

use futures::stream::{self, StreamExt};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, ErrorKind, UsageError};
use crate::fleet::TenantFleet;
use crate::interrupt::Interrupt;
use crate::ledger::Ledger;
use crate::machine::smoke::{smoke_transition, SmokeAction, SmokeEvent, SmokeState};
use crate::machine::{transition, Action, Event, Mode, Outcome, Plan, State};
use crate::registry::Registry;
use crate::report::{
    Command, ErrorReport, ImageReport, ImageStatus, PromotionReport, TenantReport,
};
use crate::shard::{fleet_digest, Partial, Shard, ShardReport};
use crate::suite::{RunContext, SmokeSuite};
use crate::types::{Digest, GitSha, Manifest, Reason, Reference, Release, Tenant};

pub use crate::compensation::REASSERT_ROUNDS;

pub use guard::GuardOptions;

use story::{finish, verdict, Story};

/// What to do when no canary tenant is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyFleet {
    /// Outcome `skipped`, exit 0, `latest` unchanged (the default).
    #[default]
    Skip,
    /// Outcome `usage`, exit 2.
    Fail,
}

/// How to wait for the canary fleet to run the release before verifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rollout {
    /// Verify at once.
    #[default]
    Immediate,
    /// Sleep a fixed time (a scripted pipeline's `sleep 6m`).
    Fixed(Duration),
    /// Probe every tenant until each reports the sha.
    Probe {
        /// Time between rounds.
        interval: Duration,
        /// Give up (outcome `inconclusive`) after this long.
        deadline: Duration,
    },
}

/// Tenants checked (or probed) at once unless set: with each tenant's
/// connections released when it is done it holds a socket or two, so a
/// fleet of 1,000 takes one round of answers, not four. A face lowers it to
/// what its process's open-files limit holds.
pub const DEFAULT_CONCURRENCY: usize = 1024;

/// The promoter's policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// What an empty fleet means.
    pub on_empty_fleet: EmptyFleet,
    /// How many tenants are checked (or probed) at once.
    pub concurrency: usize,
    /// How to wait for rollout. The library default is
    /// [`Rollout::Immediate`]; the `canary` CLI defaults to a probe every
    /// 10 s for up to 15 min.
    pub rollout: Rollout,
}

impl Policy {
    /// Whether `tenants` is a fleet this policy accepts: an empty fleet is
    /// refused when [`EmptyFleet::Fail`]. The one check of it, run by the
    /// promoter and, before any request, by the facade.
    pub fn check_fleet(&self, tenants: &[Tenant]) -> Result<(), UsageError> {
        if tenants.is_empty() && self.on_empty_fleet == EmptyFleet::Fail {
            return Err(UsageError::new(
                "canary fleet",
                "is empty and on_empty_fleet = \"fail\"",
                "set the tenant URL and token variables, or on_empty = \"skip\"",
            ));
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            on_empty_fleet: EmptyFleet::Skip,
            concurrency: DEFAULT_CONCURRENCY,
            rollout: Rollout::Immediate,
        }
    }
}

/// Progress callbacks, for a terminal or a CI log. Every method has an
/// empty default.
pub trait Observer: Send + Sync {
    /// The run entered `state`.
    fn state(&self, _state: State) {}
    /// A rollout probe round ended: `converged` of `total` tenants run the sha.
    fn rollout(&self, _converged: usize, _total: usize) {}
    /// The suite starts on `total` tenants.
    fn checking(&self, _total: usize) {}
    /// A tenant finished its checks.
    fn tenant(&self, _tenant: &TenantReport) {}
    /// An image's promoted tag moved (or was restored).
    fn image(&self, _image: &ImageReport) {}
}

/// An observer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;
impl Observer for Quiet {}

/// Options of `verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Do everything but the move.
    pub dry_run: bool,
    /// A value unique to this run (nonces derive from it).
    pub run_id: String,
    /// Check only this shard's tenants and move nothing: the report is a
    /// partial one, for [`Promoter::decide`] to merge.
    pub shard: Option<Shard>,
}

/// Drives promotions, manual promotions and rollbacks through the traits.
pub struct Promoter {
    registry: Arc<dyn Registry>,
    fleet: Arc<dyn TenantFleet>,
    suite: Arc<dyn SmokeSuite>,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    policy: Policy,
    ledger: Option<Arc<dyn Ledger>>,
    meta: RunMeta,
    interrupt: Interrupt,
    run_id: Option<String>,
    analysis: Option<Arc<crate::analysis::Analysis>>,
}

/// What a run's ledger records say about where it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMeta {
    /// Who ran it (e.g. `GITHUB_ACTOR`).
    pub actor: Option<String>,
    /// Where (e.g. the GitHub Actions run URL).
    pub run_url: Option<String>,
    /// The smoke suite's name.
    pub suite: Option<String>,
    /// The smoke suite's digest.
    pub suite_digest: Option<Digest>,
}

impl std::fmt::Debug for Promoter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Promoter")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// One run's mutable state.
struct Run {
    plan: Plan,
    state: State,
    report: PromotionReport,
    /// Per image: the digest this run fetched to write under the promoted
    /// tag, once a PUT of it was attempted.
    written: Vec<Option<Digest>>,
    /// Per image: the staging manifest the precheck read, when no wait
    /// separates precheck and move (manual promotion, rollback); the move
    /// writes these bytes without reading them again.
    staged: Vec<Option<Manifest>>,
    /// What each phase found; the reason is worded from it at the end.
    story: Story,
    /// What the run knows of the ledger.
    ledger: ledger::RunLedger,
}

impl Run {
    fn feed(&mut self, event: Event, observer: &dyn Observer) -> Vec<Action> {
        match transition(self.plan, self.state, event) {
            Ok((state, actions)) => {
                if state != self.state {
                    self.state = state;
                    self.report.states.push(state);
                    observer.state(state);
                }
                actions
            }
            Err(e) => {
                // A bug in the promoter, not in the input: stop without
                // touching anything more and say so.
                self.state = State::Failed;
                self.report.states.push(State::Failed);
                self.story.internal = Some(format!("internal error: {e}"));
                Vec::new()
            }
        }
    }
}

impl Promoter {
    /// A promoter with default policy, the quiet observer and the given parts.
    pub fn new(
        registry: Arc<dyn Registry>,
        fleet: Arc<dyn TenantFleet>,
        suite: Arc<dyn SmokeSuite>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            registry,
            fleet,
            suite,
            clock,
            observer: Arc::new(Quiet),
            policy: Policy::default(),
            ledger: None,
            meta: RunMeta::default(),
            interrupt: Interrupt::new(),
            run_id: None,
            analysis: None,
        }
    }

    /// Judges the release on metrics too: a verify reads them after the
    /// rollout converged, alongside the smoke suite (a failed metric
    /// rejects, a metric without a verdict is inconclusive), and so does
    /// every round of a guard. Shards never read them: their `decide` does.
    #[must_use]
    pub fn with_analysis(mut self, analysis: crate::analysis::Analysis) -> Self {
        self.analysis = Some(Arc::new(analysis));
        self
    }

    /// The configured analysis, if any.
    pub fn analysis(&self) -> Option<&crate::analysis::Analysis> {
        self.analysis.as_deref()
    }

    /// The id of the runs that take none as an argument (manual promotion,
    /// rollback, repair's record): it pairs a ledger intent with its
    /// outcome. Without one, a run's id is made from the clock and the
    /// release.
    #[must_use]
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Stops when `interrupt` is raised: at once before any write, after
    /// putting back (or verifying) what moved once moving.
    #[must_use]
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// Records every move in `ledger`: an intent before the first write of
    /// the promoted tag, an outcome after the run (ARCHITECTURE.md, "Release
    /// ledger").
    #[must_use]
    pub fn with_ledger(mut self, ledger: Arc<dyn Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Who and where, for the ledger records.
    #[must_use]
    pub fn with_meta(mut self, meta: RunMeta) -> Self {
        self.meta = meta;
        self
    }

    /// A promoter for [`Promoter::smoke`] alone: it has no registry, and
    /// any registry call fails with [`ErrorKind::Invalid`].
    pub fn without_registry(
        fleet: Arc<dyn TenantFleet>,
        suite: Arc<dyn SmokeSuite>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::new(Arc::new(crate::registry::NoRegistry), fleet, suite, clock)
    }

    /// Sets the policy.
    #[must_use]
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the observer.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The registry.
    pub fn registry(&self) -> &dyn Registry {
        &*self.registry
    }

    /// The fleet.
    pub fn fleet(&self) -> &dyn TenantFleet {
        &*self.fleet
    }

    /// The suite.
    pub fn suite(&self) -> &dyn SmokeSuite {
        &*self.suite
    }

    /// `canary verify`: precheck, wait for rollout, run the suite on every
    /// tenant, and move `latest` of every image only when all passed.
    pub async fn verify(&self, release: &Release, options: &VerifyOptions) -> PromotionReport {
        let mode = Mode::Verify {
            dry_run: options.dry_run || options.shard.is_some(),
        };
        let source = match options.shard {
            Some(shard) => Evidence::Shard(shard),
            None => Evidence::Fleet,
        };
        self.run(
            Command::Verify,
            release,
            mode,
            &options.run_id,
            None,
            source,
        )
        .await
    }

    /// `canary decide`: merges the partial reports of a sharded verify
    /// ([`crate::shard::merge`] refuses a missing, duplicated, mismatched or
    /// hostile one: outcome `usage`, nothing read or moved), then moves
    /// `latest` (or not) exactly as one unsharded verify with that evidence
    /// would. The fleet is read to check the shards were cut from it; the
    /// tenants are not called again.
    pub async fn decide(
        &self,
        release: &Release,
        partials: &[Partial],
        options: &VerifyOptions,
    ) -> PromotionReport {
        let tenants = match self.read_fleet().await {
            Ok(tenants) => tenants,
            Err(e) => {
                let mut report = PromotionReport::new(Command::Verify, Some(release.sha().clone()));
                report.set_outcome(e.outcome(), e.reason());
                report.error = Some(e.report());
                return report;
            }
        };
        let evidence =
            match crate::shard::merge(release, &tenants, self.meta.suite_digest.as_ref(), partials)
            {
                Ok(evidence) => evidence,
                Err(e) => return PromotionReport::usage(Command::Verify, &e),
            };
        let mode = Mode::Verify {
            dry_run: options.dry_run,
        };
        let count = u32::try_from(partials.len()).unwrap_or(u32::MAX);
        let mut report = self
            .run(
                Command::Verify,
                release,
                mode,
                &options.run_id,
                None,
                Evidence::Merged(evidence),
            )
            .await;
        report.merged_shards = Some(count);
        report
    }

    /// `canary promote --no-verify`: move without verification. The reason
    /// is required (a [`Reason`]) and recorded in the report; without one the
    /// outcome is `usage` and nothing is read.
    pub async fn promote_manual(&self, release: &Release, reason: &str) -> PromotionReport {
        let reason = match Reason::parse(reason) {
            Ok(reason) => reason,
            Err(e) => return PromotionReport::usage(Command::Promote, &e),
        };
        self.run(
            Command::Promote,
            release,
            Mode::Manual,
            "",
            Some(reason.as_str()),
            Evidence::Fleet,
        )
        .await
    }

    /// `canary rollback <sha>`: pre-check that `staging-<sha>` exists for
    /// every image, move `latest` back to it, verify every digest.
    pub async fn rollback(&self, release: &Release) -> PromotionReport {
        self.run(
            Command::Rollback,
            release,
            Mode::Rollback,
            "",
            None,
            Evidence::Fleet,
        )
        .await
    }

    /// `canary smoke`: the suite on every tenant of the fleet, no registry.
    /// Outcome `passed`, `rejected`, `inconclusive`, or `skipped` (empty
    /// fleet); `usage` or `failed` when the fleet cannot be had.
    pub async fn smoke(&self, sha: Option<GitSha>, run_id: &str) -> PromotionReport {
        let started = self.clock.now_ms();
        let mut report = PromotionReport::new(Command::Smoke, sha.clone());
        report.timings.started_ms = started;
        let mut state = SmokeState::Planned;
        let mut reason = String::new();
        let mut tenants = Vec::new();
        let mut actions: VecDeque<SmokeAction> = VecDeque::new();
        let mut event = Some(SmokeEvent::Start);
        while let Some(e) = event.take() {
            match smoke_transition(state, e) {
                Ok((next, more)) => {
                    state = next;
                    actions.extend(more);
                }
                Err(e) => {
                    // A bug in the promoter, not in the input.
                    report.set_outcome(Outcome::Failed, format!("internal error: {e}"));
                    return report;
                }
            }
            let Some(action) = actions.pop_front() else {
                break;
            };
            event = Some(match action {
                SmokeAction::ReadFleet => match self.read_fleet().await {
                    Ok(t) => {
                        tenants = t;
                        SmokeEvent::FleetRead {
                            tenants: tenants.len(),
                        }
                    }
                    Err(e) => {
                        reason = e.reason();
                        report.error = Some(e.report());
                        e.smoke_event()
                    }
                },
                SmokeAction::RunChecks => {
                    let context = RunContext {
                        sha: sha.clone(),
                        run_id: run_id.to_string(),
                    };
                    report.tenants = self
                        .check_fleet(&tenants, vec![None; tenants.len()], &context)
                        .await;
                    let (verdict, why) = verdict(&report.tenants);
                    reason = why;
                    verdict.smoke_event()
                }
            });
        }
        if state == SmokeState::Skipped {
            reason = "no canary tenant configured".to_string();
        }
        // Without a fleet nothing ran, and nothing is timed.
        if !matches!(state, SmokeState::Usage | SmokeState::Failed) {
            report.timings.finished_ms = self.clock.now_ms();
            report.timings.checks_ms = Some(report.timings.finished_ms.saturating_sub(started));
        }
        let outcome = state.outcome().unwrap_or(Outcome::Failed);
        report.set_outcome(outcome, reason);
        report
    }

    /// Resolves a short sha to the full sha of the one staging tag of the
    /// release's first image that starts with it. A full sha is returned as
    /// is, without a request.
    pub async fn resolve_sha(&self, release: &Release) -> Result<Release, Error> {
        if release.sha().is_full() {
            return Ok(release.clone());
        }
        let image = &release.images()[0];
        let template = release.staging_template();
        let short = release.sha().as_str();
        let tags = self
            .registry
            .list_tags(image)
            .await
            .map_err(|e| e.context(image))?;
        let mut found: Vec<GitSha> = tags
            .iter()
            .filter_map(|t| template.sha_of(t))
            .filter(|s| s.as_str().starts_with(short))
            .collect();
        found.sort();
        found.dedup();
        if let Some(exact) = found.iter().find(|s| s.as_str() == short) {
            return Ok(release.with_sha(exact.clone()));
        }
        match found.len() {
            1 => Ok(release.with_sha(found.remove(0))),
            0 => Err(Error::new(
                ErrorKind::NotFound,
                format!("{image}: no tag matching `{template}` starts with `{short}`"),
            )
            .with_hint("check the sha, and that the build pushed its staging tag")),
            _ => Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "{image}: sha `{short}` is ambiguous: {}",
                    found
                        .iter()
                        .map(|s| template.render(s).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_hint("pass more characters of the sha")),
        }
    }

    /// The canary fleet, or why there is none to check.
    async fn read_fleet(&self) -> Result<Vec<Tenant>, FleetError> {
        match self.fleet.tenants().await {
            Ok(t) => match self.policy.check_fleet(&t) {
                Ok(()) => Ok(t),
                Err(e) => Err(FleetError::Refused(e)),
            },
            Err(e) => Err(FleetError::Unreadable(e)),
        }
    }

    async fn run(
        &self,
        command: Command,
        release: &Release,
        mode: Mode,
        run_id: &str,
        manual_reason: Option<&str>,
        source: Evidence,
    ) -> PromotionReport {
        let started = self.clock.now_ms();
        let run_id = match (run_id, &self.run_id) {
            ("", Some(id)) => id.clone(),
            ("", None) => format!("{started:x}-{}", release.sha().short()),
            (id, _) => id.to_string(),
        };
        let run_id = run_id.as_str();
        let mut report = PromotionReport::new(command, Some(release.sha().clone()));
        report.timings.started_ms = started;
        report.dry_run = matches!(mode, Mode::Verify { dry_run: true });
        report.manual_reason = manual_reason.map(str::to_string);
        report.images = release
            .images()
            .iter()
            .map(|image| ImageReport {
                image: image.clone(),
                before_read: false,
                overwritten: None,
                staging_digest: None,
                before: None,
                after: None,
                status: ImageStatus::Unchanged,
                error: None,
            })
            .collect();

        let mut merged = None;
        let tenants = match (mode, source) {
            (Mode::Verify { .. }, Evidence::Merged(evidence)) => {
                // The shards checked these tenants; nothing calls them again.
                let tenants = evidence
                    .iter()
                    .map(|t| Tenant::new(t.url.clone(), crate::types::Secret::new("")))
                    .collect();
                merged = Some(evidence);
                tenants
            }
            (Mode::Verify { .. }, source) => match self.read_fleet().await {
                Ok(tenants) => match source {
                    Evidence::Shard(shard) => {
                        report.shard = Some(ShardReport {
                            shard,
                            fleet_size: tenants.len(),
                            fleet_digest: fleet_digest(&tenants),
                            suite_digest: self.meta.suite_digest.clone(),
                        });
                        shard.select(&tenants)
                    }
                    _ => tenants,
                },
                Err(e) => {
                    report.set_outcome(e.outcome(), e.reason());
                    report.error = Some(e.report());
                    report.timings.finished_ms = self.clock.now_ms();
                    return report;
                }
            },
            _ => Vec::new(),
        };
        report.tenants = unchecked(&tenants);

        let mut run = Run {
            plan: Plan { mode },
            state: State::Planned,
            written: vec![None; release.images().len()],
            staged: Vec::new(),
            report,
            story: Story::default(),
            ledger: ledger::RunLedger::new(run_id),
        };
        let observer = &*self.observer;
        let mut actions: VecDeque<Action> = run.feed(Event::Start, observer).into();
        let mut release = release.clone();
        while let Some(action) = actions.pop_front() {
            if self.interrupt.is_raised()
                && matches!(
                    action,
                    Action::Precheck
                        | Action::AwaitRollout
                        | Action::RunChecks
                        | Action::MoveImages
                )
            {
                // Nothing written yet: stop here, nothing changes.
                run.story.interrupted = true;
                actions.clear();
                actions.extend(run.feed(Event::Interrupted, observer));
                continue;
            }
            let event = match action {
                Action::Precheck => match self.precheck(&mut run, &release).await {
                    Ok(resolved) => {
                        release = resolved;
                        Event::PrecheckPassed {
                            tenants: tenants.len(),
                        }
                    }
                    Err(e) => {
                        run.story.precheck =
                            Some(format!("precheck failed, nothing moved: {}", e.chain()));
                        run.report.error = Some((&e).into());
                        Event::PrecheckFailed
                    }
                },
                Action::AwaitRollout if merged.is_some() => Event::RolloutConverged,
                Action::AwaitRollout => {
                    let t0 = self.clock.now_ms();
                    let event = self.await_rollout(&mut run, &release, &tenants).await;
                    run.report.timings.rollout_ms = Some(self.clock.now_ms().saturating_sub(t0));
                    event
                }
                Action::RunChecks => {
                    let t0 = self.clock.now_ms();
                    let context = RunContext {
                        sha: Some(release.sha().clone()),
                        run_id: run_id.to_string(),
                    };
                    let versions = run
                        .report
                        .tenants
                        .iter()
                        .map(|t| t.version.clone())
                        .collect();
                    let checks = async {
                        match merged.take() {
                            Some(evidence) => evidence,
                            None => self.check_fleet(&tenants, versions, &context).await,
                        }
                    };
                    // A shard's partial evidence is not the release's: the
                    // `decide` that merges the shards reads the metrics.
                    let analysis = async {
                        match &self.analysis {
                            Some(a) if run.report.shard.is_none() => {
                                Some(a.watch(self.clock.as_ref()).await)
                            }
                            _ => None,
                        }
                    };
                    let (checked, analysis) = futures::join!(checks, analysis);
                    run.report.tenants = checked;
                    run.report.timings.checks_ms = Some(self.clock.now_ms().saturating_sub(t0));
                    let (verdict, reason) =
                        story::with_analysis(verdict(&run.report.tenants), analysis.as_ref());
                    run.report.analysis = analysis;
                    run.story.verdict = Some(reason);
                    verdict.event()
                }
                Action::MoveImages => {
                    let t0 = self.clock.now_ms();
                    actions.extend(run.feed(Event::MovesStarted, observer));
                    let event = self.move_images(&mut run, &release).await;
                    run.report.timings.moves_ms = Some(self.clock.now_ms().saturating_sub(t0));
                    event
                }
                Action::RestoreImages => {
                    let t0 = self.clock.now_ms();
                    let event = self.restore_images(&mut run, &release).await;
                    let spent = self.clock.now_ms().saturating_sub(t0);
                    run.report.timings.moves_ms =
                        Some(run.report.timings.moves_ms.unwrap_or(0) + spent);
                    event
                }
            };
            actions.extend(run.feed(event, observer));
        }
        if self.interrupt.is_raised() {
            // A signal arrived while the moves ran: they were finished, and
            // the outcome says the run was interrupted.
            run.story.interrupted = true;
        }
        let mut report = run.report;
        finish(&mut report, run.state, &release, &run.story);
        if let Some(shard) = report.shard.as_ref().map(|s| s.shard) {
            story::finish_shard(&mut report, shard, run.state);
        }
        self.record_outcome(&mut report, run.plan.mode, &mut run.ledger)
            .await;
        report.timings.finished_ms = self.clock.now_ms();
        report
    }

    /// Resolves the sha, then checks every staging tag exists and records
    /// every current `latest`: both reads of every image together. A
    /// manual promotion or a rollback reads the staging manifest itself
    /// (GET), which its move then writes; a verify, which waits before its
    /// move, reads only the digest (HEAD) and fetches at the move.
    async fn precheck(&self, run: &mut Run, release: &Release) -> Result<Release, Error> {
        let release = self.resolve_sha(release).await?;
        run.report.sha = Some(release.sha().clone());
        let staging = release.staging_tag();
        let promoted = release.promoted_tag();
        run.report.staging_tag = Some(staging.clone());
        run.report.promoted_tag = Some(promoted.clone());
        let fetch = !matches!(run.plan.mode, Mode::Verify { .. });
        let (staging_ref, promoted_ref) = (
            Reference::Tag(staging.clone()),
            Reference::Tag(promoted.clone()),
        );
        let images = release.images();
        let reads = per_image(images.len(), |i| {
            let (image, staging_ref, promoted_ref) = (&images[i], &staging_ref, &promoted_ref);
            let (staging, promoted) = (&staging, &promoted);
            async move {
                let staged = async {
                    if fetch {
                        match self.registry.get_manifest(image, staging_ref).await {
                            Ok(m) => Ok((Some(m.digest().clone()), Some(m))),
                            Err(e) if e.kind() == ErrorKind::NotFound => Ok((None, None)),
                            Err(e) => Err(e),
                        }
                    } else {
                        self.registry
                            .head_manifest(image, staging_ref)
                            .await
                            .map(|d| (d, None))
                    }
                };
                // A run that writes at once (manual promotion, rollback)
                // learns `before` by its bytes: a HEAD only repeats the
                // registry's claim, and a wrong one would become the digest
                // a failed move "restores" and "verifies". A verify reads
                // `latest` again right before its move.
                let before = async {
                    if fetch {
                        match self.registry.get_manifest(image, promoted_ref).await {
                            Ok(m) => Ok(Some(m.digest().clone())),
                            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                            Err(e) => Err(e),
                        }
                    } else {
                        self.registry.head_manifest(image, promoted_ref).await
                    }
                };
                let (staged, before) = futures::join!(staged, before);
                (
                    staged.map_err(|e| e.context(format!("{image}:{staging}"))),
                    before.map_err(|e| e.context(format!("{image}:{promoted}"))),
                )
            }
        })
        .await;
        run.staged = Vec::with_capacity(reads.len());
        for (entry, (staged, before)) in run.report.images.iter_mut().zip(reads) {
            let (digest, manifest) = staged?;
            let Some(digest) = digest else {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{}:{staging} does not exist", entry.image),
                )
                .with_hint(
                    "was the build for this sha pushed? canary moves only what staging already has",
                ));
            };
            entry.staging_digest = Some(digest);
            run.staged.push(manifest);
            let before = before?;
            entry.after.clone_from(&before);
            entry.before = before;
            entry.before_read = true;
        }
        self.check_ledger(run).await?;
        Ok(release)
    }
}

/// A report line for each tenant, nothing checked yet.
fn unchecked(tenants: &[Tenant]) -> Vec<TenantReport> {
    tenants
        .iter()
        .map(|t| TenantReport {
            url: t.url().to_string(),
            version: None,
            checks: Vec::new(),
        })
        .collect()
}

/// How many images of a release are read or written at once: enough for
/// any real release to move in one round trip per step, few enough not to
/// trip a registry's rate limit.
const IMAGES_AT_ONCE: usize = 8;

/// `f(i)` for every image index `i < n`, at most [`IMAGES_AT_ONCE`] at
/// once; the results in index order.
async fn per_image<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    stream::iter(0..n)
        .map(f)
        .buffered(IMAGES_AT_ONCE)
        .collect()
        .await
}

/// Where a verify's evidence comes from.
enum Evidence {
    /// Check every tenant of the fleet.
    Fleet,
    /// Check this shard's tenants only.
    Shard(Shard),
    /// The shards checked them: their merged results.
    Merged(Vec<TenantReport>),
}

/// Why a run has no canary fleet to check.
enum FleetError {
    /// The fleet is empty and the policy refuses that.
    Refused(UsageError),
    /// The fleet could not be read.
    Unreadable(Error),
}

impl FleetError {
    fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) => Outcome::Usage,
            Self::Unreadable(_) => Outcome::Failed,
        }
    }

    fn smoke_event(&self) -> SmokeEvent {
        match self {
            Self::Refused(_) => SmokeEvent::FleetRefused,
            Self::Unreadable(_) => SmokeEvent::FleetFailed,
        }
    }

    fn reason(&self) -> String {
        match self {
            Self::Refused(e) => e.to_string(),
            Self::Unreadable(e) => format!("reading the canary fleet failed: {}", e.chain()),
        }
    }

    fn report(&self) -> ErrorReport {
        match self {
            Self::Refused(e) => e.into(),
            Self::Unreadable(e) => e.into(),
        }
    }
}
