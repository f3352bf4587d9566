//! `canary guard`, `canary verify --guard`, and the notifications every
//! moving command sends.

use std::sync::Arc;

use canary_core::promoter::GuardOptions;
use canary_core::{GitSha, Outcome, PromotionReport, Secret, StaticFleet, TenantFleet, UsageError};
use canary_notify::{Format, Notifier, Target};
use canary_smoke::{HttpOptions, HttpSuite, ProbeConfig, Suite};

use crate::gate::Gate;
use crate::settings::{sample, NotifyFormat, SuiteChoice};

impl Gate {
    /// `canary guard --sha SHA`: watch the production fleet run the release
    /// (it must be `latest`), run the guard suite every interval for the
    /// bake, and move `latest` back by itself after `failures_to_revert`
    /// red rounds in a row (outcome `reverted`). The revert target is
    /// `revert_to`, else the previous release from the ledger.
    pub async fn guard(
        &self,
        sha: &str,
        revert_to: Option<&str>,
    ) -> Result<PromotionReport, UsageError> {
        let plan = self.guard_plan(sha, revert_to).await?;
        let notifier = self.notifier()?;
        let report = self.run_guard(plan).await?;
        Ok(self.notified(&notifier, report).await)
    }

    /// `canary verify --guard`: verify and promote, then guard the release
    /// when it was promoted. Every input of both is checked before the
    /// first request. Returns the verify's report and, when it promoted,
    /// the guard's.
    pub async fn verify_guarded(
        &self,
        sha: &str,
        revert_to: Option<&str>,
    ) -> Result<(PromotionReport, Option<PromotionReport>), UsageError> {
        let plan = self.guard_plan(sha, revert_to).await?;
        let promotion = self.verify(sha, false).await?;
        if promotion.outcome != Outcome::Promoted {
            return Ok((promotion, None));
        }
        let notifier = self.notifier()?;
        let guard = self.run_guard(plan).await?;
        Ok((promotion, Some(self.notified(&notifier, guard).await)))
    }

    /// Sends `report` to every `[[notify]]` target that wants its outcome,
    /// and records what happened in it. A failed notification is a warning
    /// in the report; it never changes the outcome.
    pub(crate) async fn notified(
        &self,
        notifier: &Notifier,
        mut report: PromotionReport,
    ) -> PromotionReport {
        if !notifier.is_empty() {
            report.notifications = notifier.send(&report).await;
        }
        report
    }

    /// The notifier of the `[[notify]]` tables: every URL and secret read
    /// from its variable and handed to the secret sink, before any request.
    pub(crate) fn notifier(&self) -> Result<Notifier, UsageError> {
        let mut targets = Vec::new();
        for t in &self.settings().notify {
            let url = self.env_secret(&t.url_env, "notify url_env", "the webhook URL")?;
            let parsed = reqwest_url_ok(url.expose());
            if !parsed {
                return Err(UsageError::new(
                    format!("notify url_env {}", t.url_env),
                    "holds no http(s) URL",
                    format!("export {} with the webhook's https:// URL", t.url_env),
                ));
            }
            let secret = t
                .secret_env
                .as_ref()
                .map(|v| self.env_secret(v, "notify secret_env", "the signing secret"))
                .transpose()?;
            targets.push(Target {
                name: t.url_env.clone(),
                url,
                secret,
                format: match t.format {
                    NotifyFormat::Json => Format::Json,
                    NotifyFormat::Slack => Format::Slack,
                },
                on: t.on.clone(),
            });
        }
        Ok(Notifier::new(targets, self.clock()).with_run_url(self.run_url()))
    }

    /// A variable's value as a secret (handed to the sink), or an error
    /// naming the variable, never its value.
    fn env_secret(&self, var: &str, setting: &str, what: &str) -> Result<Secret, UsageError> {
        let value = self
            .env()
            .get(var)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                UsageError::new(
                    format!("{setting} {var}"),
                    "names a variable that is unset or empty",
                    format!("export {var} with {what}, or remove the [[notify]] table"),
                )
            })?;
        let secret = Secret::new(value.trim());
        self.hand_to_sink(&secret);
        Ok(secret)
    }

    /// The guard's inputs, checked before any request.
    async fn guard_plan(
        &self,
        sha: &str,
        revert_to: Option<&str>,
    ) -> Result<GuardPlan, UsageError> {
        let release = self.settings().release(sha)?;
        let revert_to = revert_to
            .map(|s| GitSha::parse(s.trim()))
            .transpose()
            .map_err(|e| self.respell("revert_to", &e))?;
        if revert_to.is_none() && !self.settings().ledger.enabled.value {
            return Err(UsageError::new(
                format!("ledger ({})", self.settings().ledger.enabled.source),
                "is disabled, and the guard finds the release to revert to in it",
                format!(
                    "enable it (`[ledger] enabled = true`, the default), or name the release with {}",
                    self.spelled("revert_to")
                ),
            ));
        }
        let g = &self.settings().guard;
        let fleet = canary_smoke::fleet_from_env(
            &g.urls_env.value,
            &g.tokens_env.value,
            self.env().as_fn(),
        )?;
        let all = fleet.tenants().await.unwrap_or_default();
        self.policy().check_fleet(&all)?;
        let tenants = sample(&all, g.sample.value);
        self.mask_tenants(&all);
        let suite = match &g.suite.value {
            SuiteChoice::Builtin(name) => Suite::builtin(name)?,
            SuiteChoice::File(path) => Suite::from_file(path)?,
        };
        let suite = HttpSuite::new(
            suite,
            HttpOptions {
                probe: ProbeConfig {
                    path: self.settings().probe_path.value.clone(),
                    json_path: self.settings().probe_json_path.value.clone(),
                },
                ca_file: self.settings().ca_file.value.clone(),
                tenant_deadline: self.settings().tenant_deadline.value,
                ..HttpOptions::default()
            },
        )?;
        Ok(GuardPlan {
            release,
            fleet: StaticFleet::new(tenants),
            suite,
            options: GuardOptions {
                bake: g.bake.value,
                interval: g.interval.value,
                failures_to_revert: g.failures_to_revert.value,
                revert_to,
                run_id: String::new(),
            },
        })
    }

    async fn run_guard(&self, plan: GuardPlan) -> Result<PromotionReport, UsageError> {
        let GuardPlan {
            release,
            fleet,
            suite,
            mut options,
        } = plan;
        let mut promoter = self
            .promoter_with(release.images(), fleet, Arc::new(suite))
            .await?;
        if let Some(analysis) = self.analysis()? {
            promoter = promoter.with_analysis(analysis);
        }
        options.run_id = self.fresh_run_id();
        Ok(promoter.guard(&release, &options).await)
    }
}

/// What a guard run needs, built and checked before any request.
struct GuardPlan {
    release: canary_core::Release,
    fleet: StaticFleet,
    suite: HttpSuite,
    options: GuardOptions,
}

fn reqwest_url_ok(url: &str) -> bool {
    url.parse::<reqwest::Url>()
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}
