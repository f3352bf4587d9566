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

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::clock::{duration_ms, Clock};
use crate::error::{Error, ErrorKind, UsageError};
use crate::fleet::TenantFleet;
use crate::machine::{transition, Action, Event, Mode, Outcome, Plan, State};
use crate::registry::Registry;
use crate::report::{
    Command, ErrorReport, ImageReport, ImageStatus, PromotionReport, TenantReport,
};
use crate::suite::{CheckResult, CheckStatus, RunContext, SmokeSuite};
use crate::types::{Digest, GitSha, ImageRef, Manifest, Reference, Release, Tag, Tenant};

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
    /// Sleep a fixed time (the seed's `sleep 6m`).
    Fixed(Duration),
    /// Probe every tenant until each reports the sha.
    Probe {
        /// Time between rounds.
        interval: Duration,
        /// Give up (outcome `inconclusive`) after this long.
        deadline: Duration,
    },
}

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

impl Default for Policy {
    fn default() -> Self {
        Self {
            on_empty_fleet: EmptyFleet::Skip,
            concurrency: 256,
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
}

/// Drives promotions, manual promotions and rollbacks through the traits.
pub struct Promoter {
    registry: Arc<dyn Registry>,
    fleet: Arc<dyn TenantFleet>,
    suite: Arc<dyn SmokeSuite>,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    policy: Policy,
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
    /// Per image: whether a PUT of the promoted tag was attempted.
    touched: Vec<bool>,
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
                self.report
                    .set_outcome(Outcome::Failed, format!("internal error: {e}"));
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
        }
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
            dry_run: options.dry_run,
        };
        self.run(Command::Verify, release, mode, &options.run_id, None)
            .await
    }

    /// `canary promote --no-verify --reason`: move without verification. The
    /// reason is required and recorded in the report.
    pub async fn promote_manual(&self, release: &Release, reason: &str) -> PromotionReport {
        if reason.trim().is_empty() {
            let e = UsageError::new(
                "--reason",
                "is missing",
                "a manual promotion skips verification; say why with --reason \"…\"",
            );
            return PromotionReport::usage(Command::Promote, &e);
        }
        self.run(
            Command::Promote,
            release,
            Mode::Manual,
            "",
            Some(reason.trim()),
        )
        .await
    }

    /// `canary rollback <sha>`: pre-check that `staging-<sha>` exists for
    /// every image, move `latest` back to it, verify every digest.
    pub async fn rollback(&self, release: &Release) -> PromotionReport {
        self.run(Command::Rollback, release, Mode::Rollback, "", None)
            .await
    }

    /// `canary smoke`: the suite on every tenant of the fleet, no registry.
    /// Outcome `passed`, `rejected`, `inconclusive`, or `skipped` (empty
    /// fleet).
    pub async fn smoke(&self, sha: Option<GitSha>, run_id: &str) -> PromotionReport {
        let started = self.clock.now_ms();
        let mut report = PromotionReport::new(Command::Smoke, sha.clone());
        report.timings.started_ms = started;
        let Some(tenants) = self.tenants(&mut report).await else {
            return report;
        };
        if tenants.is_empty() {
            report.set_outcome(Outcome::Skipped, "no canary tenant configured");
        } else {
            let context = RunContext {
                sha,
                run_id: run_id.to_string(),
            };
            report.tenants = self
                .check_fleet(&tenants, vec![None; tenants.len()], &context)
                .await;
            let (outcome, reason) = verdict(&report.tenants);
            let outcome = if outcome == Event::ChecksPassed {
                Outcome::Passed
            } else if outcome == Event::ChecksFailed {
                Outcome::Rejected
            } else {
                Outcome::Inconclusive
            };
            report.set_outcome(outcome, reason);
        }
        report.timings.finished_ms = self.clock.now_ms();
        report.timings.checks_ms = Some(report.timings.finished_ms.saturating_sub(started));
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

    async fn tenants(&self, report: &mut PromotionReport) -> Option<Vec<Tenant>> {
        match self.fleet.tenants().await {
            Ok(t) if t.is_empty() && self.policy.on_empty_fleet == EmptyFleet::Fail => {
                let e = UsageError::new(
                    "canary fleet",
                    "is empty and on_empty_fleet = \"fail\"",
                    "set the tenant URL and token variables, or on_empty = \"skip\"",
                );
                report.set_outcome(Outcome::Usage, e.to_string());
                report.error = Some((&e).into());
                None
            }
            Ok(t) => Some(t),
            Err(e) => {
                report.set_outcome(
                    Outcome::Failed,
                    format!("reading the canary fleet failed: {}", e.chain()),
                );
                report.error = Some((&e).into());
                None
            }
        }
    }

    async fn run(
        &self,
        command: Command,
        release: &Release,
        mode: Mode,
        run_id: &str,
        manual_reason: Option<&str>,
    ) -> PromotionReport {
        let started = self.clock.now_ms();
        let mut report = PromotionReport::new(command, Some(release.sha().clone()));
        report.timings.started_ms = started;
        report.dry_run = matches!(mode, Mode::Verify { dry_run: true });
        report.manual_reason = manual_reason.map(str::to_string);
        report.images = release
            .images()
            .iter()
            .map(|image| ImageReport {
                image: image.clone(),
                staging_digest: None,
                before: None,
                after: None,
                status: ImageStatus::Unchanged,
                error: None,
            })
            .collect();

        let tenants = if matches!(mode, Mode::Verify { .. }) {
            let Some(tenants) = self.tenants(&mut report).await else {
                report.timings.finished_ms = self.clock.now_ms();
                return report;
            };
            tenants
        } else {
            Vec::new()
        };
        report.tenants = tenants
            .iter()
            .map(|t| TenantReport {
                url: t.url().to_string(),
                version: None,
                checks: Vec::new(),
            })
            .collect();

        let mut run = Run {
            plan: Plan { mode },
            state: State::Planned,
            touched: vec![false; release.images().len()],
            report,
        };
        let observer = &*self.observer;
        let mut actions: VecDeque<Action> = run.feed(Event::Start, observer).into();
        let mut release = release.clone();
        while let Some(action) = actions.pop_front() {
            let event = match action {
                Action::Precheck => match self.precheck(&mut run, &release).await {
                    Ok(resolved) => {
                        release = resolved;
                        Event::PrecheckPassed {
                            tenants: tenants.len(),
                        }
                    }
                    Err(e) => {
                        run.report.set_outcome(
                            Outcome::Failed,
                            format!("precheck failed, nothing moved: {}", e.chain()),
                        );
                        run.report.error = Some((&e).into());
                        Event::PrecheckFailed
                    }
                },
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
                    run.report.tenants = self.check_fleet(&tenants, versions, &context).await;
                    run.report.timings.checks_ms = Some(self.clock.now_ms().saturating_sub(t0));
                    let (event, reason) = verdict(&run.report.tenants);
                    run.report.reason = reason;
                    event
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
        let mut report = run.report;
        finish(&mut report, run.state, &release);
        report.timings.finished_ms = self.clock.now_ms();
        report
    }

    /// Resolves the sha, then checks every staging tag exists and records
    /// every current `latest`.
    async fn precheck(&self, run: &mut Run, release: &Release) -> Result<Release, Error> {
        let release = self.resolve_sha(release).await?;
        run.report.sha = Some(release.sha().clone());
        let staging = release.staging_tag();
        let promoted = release.promoted_tag();
        run.report.staging_tag = Some(staging.clone());
        run.report.promoted_tag = Some(promoted.clone());
        for image in &mut run.report.images {
            let digest = self
                .registry
                .head_manifest(&image.image, &Reference::Tag(staging.clone()))
                .await
                .map_err(|e| e.context(format!("{}:{staging}", image.image)))?;
            let Some(digest) = digest else {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{}:{staging} does not exist", image.image),
                )
                .with_hint(
                    "was the build for this sha pushed? canary moves only what staging already has",
                ));
            };
            image.staging_digest = Some(digest);
            let before = self
                .registry
                .head_manifest(&image.image, &Reference::Tag(promoted.clone()))
                .await
                .map_err(|e| e.context(format!("{}:{promoted}", image.image)))?;
            image.after.clone_from(&before);
            image.before = before;
        }
        Ok(release)
    }

    async fn await_rollout(&self, run: &mut Run, release: &Release, tenants: &[Tenant]) -> Event {
        let observer = &*self.observer;
        match self.policy.rollout {
            Rollout::Immediate => Event::RolloutConverged,
            Rollout::Fixed(wait) => {
                run.feed(Event::RolloutPending, observer);
                self.clock.sleep(wait).await;
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
                        run.report.reason = format!(
                            "rollout did not converge within {}: {} of {} tenants do not run {}: {}",
                            fmt_duration(deadline),
                            lagging.len(),
                            tenants.len(),
                            sha,
                            lagging.join("; ")
                        );
                        return Event::RolloutTimedOut;
                    }
                    run.feed(Event::RolloutPending, observer);
                    let remaining = Duration::from_millis(deadline_ms - elapsed);
                    self.clock.sleep(interval.min(remaining)).await;
                }
            }
        }
    }

    /// Runs the suite on every tenant, at most `concurrency` at once,
    /// reporting in fleet order.
    async fn check_fleet(
        &self,
        tenants: &[Tenant],
        versions: Vec<Option<String>>,
        context: &RunContext,
    ) -> Vec<TenantReport> {
        let observer = &*self.observer;
        let mut reports: Vec<TenantReport> = stream::iter(tenants.iter().zip(versions))
            .map(|(tenant, version)| async move {
                let checks = self.suite.run(tenant, context).await;
                let report = TenantReport {
                    url: tenant.url().to_string(),
                    version,
                    checks,
                };
                observer.tenant(&report);
                report
            })
            .buffered(self.policy.concurrency.max(1))
            .collect()
            .await;
        for r in &mut reports {
            if r.checks.is_empty() {
                r.checks
                    .push(CheckResult::error("suite", "the suite returned no result"));
            }
        }
        reports
    }

    /// Retags every image (GET staging, PUT latest with the same bytes),
    /// then verifies all of them (HEAD latest and compare): three requests
    /// per image. Stops at the first failure.
    ///
    /// Verification happens after the last write so that it also catches
    /// another writer that moved an earlier image in the meantime (there is
    /// no compare-and-swap in the distribution API). An image found moved
    /// by someone else is written again, up to [`REASSERT_ROUNDS`] times
    /// with a growing pause; two runs racing therefore converge on the
    /// release of the last one to finish a clean verification.
    async fn move_images(&self, run: &mut Run, release: &Release) -> Event {
        let staging = release.staging_tag();
        let promoted = release.promoted_tag();
        let mut written = Vec::with_capacity(run.report.images.len());
        for i in 0..run.report.images.len() {
            let image = run.report.images[i].image.clone();
            let expected = run.report.images[i].staging_digest.clone();
            let result = match self
                .fetch(&image, &Reference::Tag(staging.clone()), expected.as_ref())
                .await
            {
                Ok(manifest) => {
                    run.touched[i] = true;
                    self.put(&image, &promoted, &manifest)
                        .await
                        .map(|()| manifest)
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(manifest) => written.push(manifest),
                Err(e) => return move_failed(run, i, &promoted, &e),
            }
        }
        for round in 0..=REASSERT_ROUNDS {
            let mut moved_by_other = Vec::new();
            for (i, manifest) in written.iter().enumerate() {
                let image = run.report.images[i].image.clone();
                match self.read_back(&image, &promoted).await {
                    Ok(Some(d)) if &d == manifest.digest() => {
                        let entry = &mut run.report.images[i];
                        entry.after = Some(d);
                        entry.status = ImageStatus::Moved;
                    }
                    Ok(now) => moved_by_other.push((i, now)),
                    Err(e) => return move_failed(run, i, &promoted, &e),
                }
            }
            if moved_by_other.is_empty() {
                for entry in &run.report.images {
                    self.observer.image(entry);
                }
                return Event::MovesVerified;
            }
            if round == REASSERT_ROUNDS {
                let (i, now) = &moved_by_other[0];
                let e = Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "{}:{promoted} reads back as {} after writing {} ({} times)",
                        run.report.images[*i].image,
                        now.as_ref().map_or_else(|| "missing".to_string(), ToString::to_string),
                        written[*i].digest(),
                        REASSERT_ROUNDS + 1
                    ),
                )
                .with_hint("another writer keeps moving the tag: serialise promotions (a workflow `concurrency:` group)");
                return move_failed(run, *i, &promoted, &e);
            }
            // Someone else moved these images since we wrote them: pause
            // (staggered by our digest so two racing runs don't stay in
            // step), then write them again.
            let jitter = u64::from(written[0].digest().hex().as_bytes()[0] % 16) * 10;
            self.clock
                .sleep(Duration::from_millis((100 << round) + jitter))
                .await;
            for (i, _) in moved_by_other {
                let image = run.report.images[i].image.clone();
                if let Err(e) = self.put(&image, &promoted, &written[i]).await {
                    return move_failed(run, i, &promoted, &e);
                }
            }
        }
        unreachable!("the last round returns")
    }

    /// GET `from`, checked against `expected`.
    async fn fetch(
        &self,
        image: &ImageRef,
        from: &Reference,
        expected: Option<&Digest>,
    ) -> Result<Manifest, Error> {
        let manifest = self
            .registry
            .get_manifest(image, from)
            .await
            .map_err(|e| e.context(format!("reading {image}:{from}")))?;
        if let Some(expected) = expected {
            if manifest.digest() != expected {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "{image}:{from} is now {} but {} was checked",
                        manifest.digest(),
                        expected
                    ),
                )
                .with_hint("someone moved the staging tag during the run; run again"));
            }
        }
        Ok(manifest)
    }

    /// PUT the manifest's exact bytes under `to`.
    async fn put(&self, image: &ImageRef, to: &Tag, manifest: &Manifest) -> Result<(), Error> {
        self.registry
            .put_manifest(image, to, manifest)
            .await
            .map(|_| ())
            .map_err(|e| e.context(format!("writing {image}:{to}")))
    }

    /// HEAD `to`.
    async fn read_back(&self, image: &ImageRef, to: &Tag) -> Result<Option<Digest>, Error> {
        self.registry
            .head_manifest(image, &Reference::Tag(to.clone()))
            .await
            .map_err(|e| e.context(format!("verifying {image}:{to}")))
    }

    /// Whether `tag` really holds `digest`: a GET whose body hashes to it. A
    /// HEAD alone could be a registry (or proxy) announcing a wrong digest,
    /// and compensation must not mistake that for another writer's tag.
    async fn confirmed(&self, image: &ImageRef, tag: &Tag, digest: &Digest) -> bool {
        self.registry
            .get_manifest(image, &Reference::Tag(tag.clone()))
            .await
            .is_ok_and(|m| m.digest() == digest && digest.matches(m.bytes()))
    }

    /// GET `from` (checked against `expected`), PUT under `to` with the same
    /// bytes and media type, HEAD `to` and compare: three requests.
    async fn retag(
        &self,
        image: &ImageRef,
        from: &Reference,
        expected: Option<&Digest>,
        to: &Tag,
    ) -> Result<Digest, Error> {
        let manifest = self.fetch(image, from, expected).await?;
        self.put(image, to, &manifest).await?;
        match self.read_back(image, to).await? {
            Some(d) if &d == manifest.digest() => Ok(d),
            other => Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{image}:{to} reads back as {} after writing {}",
                    other.map_or_else(|| "missing".to_string(), |d| d.to_string()),
                    manifest.digest()
                ),
            )
            .with_hint("another writer may have moved the tag at the same time")),
        }
    }

    /// Puts every touched image back on its previous digest and verifies it.
    async fn restore_images(&self, run: &mut Run, release: &Release) -> Event {
        let promoted = release.promoted_tag();
        let mut failures = Vec::new();
        for i in 0..run.report.images.len() {
            if !run.touched[i] {
                continue;
            }
            let image = run.report.images[i].image.clone();
            let before = run.report.images[i].before.clone();
            let ours = run.report.images[i].staging_digest.clone();
            // Read first: a write that never landed (a refused PUT) needs no
            // undo, and a tag another writer moved since the precheck is
            // theirs, not ours to put back.
            let now = self.read_back(&image, &promoted).await;
            let foreign = match &now {
                Ok(Some(d)) if Some(d) != ours.as_ref() && Some(d) != before.as_ref() => {
                    self.confirmed(&image, &promoted, d).await
                }
                _ => false,
            };
            let result = match (now, &before) {
                (Ok(now), _) if now == before => Ok((now, false)),
                (Ok(Some(now)), _) if foreign => {
                    run.report.images[i].error = Some(format!(
                        "{image}:{promoted} was moved to {now} by another writer; left as it is"
                    ));
                    Ok((Some(now), false))
                }
                (_, Some(d)) => self
                    .retag(&image, &Reference::Digest(d.clone()), Some(d), &promoted)
                    .await
                    .map(|d| (Some(d), true)),
                (Ok(Some(now)), None) => Err(Error::new(
                    ErrorKind::Other,
                    format!(
                        "{image}:{promoted} did not exist before and now points to {now}; canary does not delete tags"
                    ),
                )),
                (Ok(None), None) => Ok((None, false)),
                (Err(e), None) => Err(e),
            };
            let entry = &mut run.report.images[i];
            match result {
                Ok((after, rewritten)) => {
                    entry.after = after;
                    entry.status = if rewritten {
                        ImageStatus::Restored
                    } else {
                        ImageStatus::Unchanged
                    };
                    self.observer.image(entry);
                }
                Err(e) => {
                    failures.push(format!("restoring {image} failed: {}", e.chain()));
                }
            }
        }
        if failures.is_empty() {
            run.report
                .reason
                .push_str("; every image touched was put back and verified");
            return Event::RestoreVerified;
        }
        // Say truthfully where every image is now.
        for entry in &mut run.report.images {
            match self
                .registry
                .head_manifest(&entry.image, &Reference::Tag(promoted.clone()))
                .await
            {
                Ok(now) => {
                    entry.status = if now == entry.before {
                        if entry.status == ImageStatus::Moved {
                            ImageStatus::Restored
                        } else {
                            entry.status
                        }
                    } else {
                        ImageStatus::Mixed
                    };
                    entry.after = now;
                }
                Err(e) => {
                    entry.status = ImageStatus::Mixed;
                    entry.after = None;
                    entry.error = Some(format!("state unknown: {}", e.chain()));
                }
            }
        }
        run.report.reason = format!("{}; {}", run.report.reason, failures.join("; "));
        if run.report.images.iter().all(|i| {
            i.after == i.before
                && i.error
                    .as_deref()
                    .is_none_or(|e| !e.starts_with("state unknown"))
        }) {
            // Every image reads back where it was: nothing is mixed.
            run.report
                .reason
                .push_str("; every image reads back on its previous digest");
            return Event::RestoreVerified;
        }
        Event::RestoreFailed
    }
}

/// How many times the promoter re-writes an image another writer moved
/// while it was promoting, before giving up (and restoring).
pub const REASSERT_ROUNDS: u32 = 4;

/// Records a failed move of image `i` and asks for compensation.
fn move_failed(run: &mut Run, i: usize, promoted: &Tag, e: &Error) -> Event {
    let message = e.chain();
    let image = run.report.images[i].image.clone();
    run.report.images[i].error = Some(message.clone());
    run.report.reason = format!("moving {image}:{promoted} failed: {message}");
    run.report.error = Some(e.into());
    Event::MoveFailed
}

/// The verdict of a fleet's checks, and its reason.
fn verdict(tenants: &[TenantReport]) -> (Event, String) {
    let failed: Vec<String> = tenants
        .iter()
        .flat_map(|t| {
            t.checks
                .iter()
                .filter(|c| c.status == CheckStatus::Failed)
                .map(move |c| {
                    format!(
                        "`{}` on {}: expected {}, got {}",
                        c.name, t.url, c.expected, c.actual
                    )
                })
        })
        .collect();
    let errors: Vec<String> = tenants
        .iter()
        .flat_map(|t| {
            t.checks
                .iter()
                .filter(|c| c.status == CheckStatus::Error)
                .map(move |c| format!("`{}` on {}: {}", c.name, t.url, c.actual))
        })
        .collect();
    let checks: usize = tenants.iter().map(|t| t.checks.len()).sum();
    if let Some(first) = failed.first() {
        let more = if failed.len() > 1 {
            format!(" (and {} more failed checks)", failed.len() - 1)
        } else {
            String::new()
        };
        (Event::ChecksFailed, format!("check {first}{more}"))
    } else if let Some(first) = errors.first() {
        let more = if errors.len() > 1 {
            format!(" (and {} more)", errors.len() - 1)
        } else {
            String::new()
        };
        (
            Event::ChecksInconclusive,
            format!("no verdict: check {first}{more}"),
        )
    } else {
        (
            Event::ChecksPassed,
            format!("all {checks} checks passed on {} tenants", tenants.len()),
        )
    }
}

/// Sets the outcome and the reason of a finished run.
fn finish(report: &mut PromotionReport, state: State, release: &Release) {
    let Some(outcome) = state.outcome() else {
        return;
    };
    let promoted = release.promoted_tag();
    let images = report.images.len();
    let reason = match state {
        State::Promoted if report.command == Command::Promote => format!(
            "manual promotion without verification ({}); {promoted} of {images} images moved to {} and verified",
            report.manual_reason.as_deref().unwrap_or(""),
            release.staging_tag()
        ),
        State::Promoted => format!(
            "{}; {promoted} of {images} images moved to {} and verified",
            report.reason,
            release.staging_tag()
        ),
        State::RolledBack => format!(
            "{promoted} of {images} images moved back to {} and verified",
            release.staging_tag()
        ),
        State::Skipped if report.dry_run && !report.tenants.is_empty() => {
            for image in &mut report.images {
                if image.before != image.staging_digest {
                    image.status = ImageStatus::WouldMove;
                }
            }
            format!("dry run: {}; would move {promoted} of {images} images", report.reason)
        }
        State::Skipped => "no canary tenant configured (on_empty_fleet = \"skip\"); nothing verified, nothing moved"
            .to_string(),
        State::Rejected => format!("{}; {promoted} unchanged", report.reason),
        State::Inconclusive => format!("{}; {promoted} unchanged", report.reason),
        State::Failed if report.outcome == Outcome::Failed && !report.reason.is_empty() => report.reason.clone(),
        State::Inconsistent => format!("INCONSISTENT: {}", report.reason),
        _ => report.reason.clone(),
    };
    report.set_outcome(outcome, reason);
    if state == State::Inconsistent && report.error.is_none() {
        report.error = Some(ErrorReport {
            kind: "inconsistent".to_string(),
            message: report.reason.clone(),
            hint: Some(
                "fix each image listed by hand, or run `canary rollback` to a known-good sha"
                    .to_string(),
            ),
        });
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
