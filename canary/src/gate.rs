//! [`Gate`]: settings in, a ready gate out. Every command of every face is
//! one call here; each validation lives here once and runs before any
//! request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use canary_core::promoter::{Policy, RunMeta, VerifyOptions};
use canary_core::{
    Clock, Digest, GitSha, Interrupt, Observer, Promoter, PromotionReport, Reason, Registry,
    Release, Secret, Shard, SmokeSuite, StaticFleet, StatusReport, TenantFleet, UsageError,
};
use canary_http::SystemClock;
use canary_ledger::{OciLedger, SigningKey};
use canary_registry::{Credentials, OciRegistry, RegistryOptions, RetryPolicy};
use canary_smoke::{HttpOptions, HttpSuite, ProbeConfig, Suite};

use crate::env::Env;
use crate::settings::{Overrides, Settings, SuiteChoice};

/// Called with every secret the gate reads, before anything is sent or
/// printed: a face that prints (GitHub Actions) masks it.
pub type SecretSink = Arc<dyn Fn(&Secret) + Send + Sync>;

/// How a face spells an input in error messages: the CLI says `--reason`,
/// the Action `reason`, a library user the field name. Takes the input's
/// canonical name (`sha`, `reason`, `tenant`, `token_env`, `token_file`).
pub type Spelling = fn(&str) -> String;

fn plain(name: &str) -> String {
    name.to_string()
}

/// Where `canary smoke` gets its tenant.
#[derive(Debug, Clone, Default)]
pub enum SmokeTarget {
    /// The configured canary fleet.
    #[default]
    Fleet,
    /// One tenant, its admin token from a variable or a file.
    Tenant {
        /// The tenant's base URL.
        url: String,
        /// A variable holding the token.
        token_env: Option<String>,
        /// A file holding the token.
        token_file: Option<PathBuf>,
    },
}

/// A release gate, ready to run: the resolved [`Settings`], the environment
/// that holds the secrets, and how a face wants to observe it.
///
/// ```no_run
/// # async fn f() -> Result<(), canary_core::UsageError> {
/// use canary::{Env, Gate, Overrides};
/// let gate = Gate::load(&Overrides::default(), None, Env::process())?;
/// let report = gate.verify("4c1d56e", false).await?;
/// std::process::exit(report.exit_code);
/// # }
/// ```
pub struct Gate {
    settings: Settings,
    env: Env,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn Observer>>,
    secrets: Option<SecretSink>,
    spell: Spelling,
    run_id: Option<String>,
    interrupt: Interrupt,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("settings", &self.settings)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate over `settings`, reading secrets from `env`.
    pub fn new(settings: Settings, env: Env) -> Self {
        Self {
            settings,
            env,
            clock: Arc::new(SystemClock),
            observer: None,
            secrets: None,
            spell: plain,
            run_id: None,
            interrupt: Interrupt::new(),
        }
    }

    /// Stops a run when `interrupt` is raised (a signal): at once before any
    /// write; once moving, after putting back (or verifying) what moved.
    #[must_use]
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// Reads the config file (`config`, else `CANARY_CONFIG`, else
    /// `./canary.toml` when present), resolves the settings with
    /// `overrides` and `env`, and builds the gate.
    pub fn load(
        overrides: &Overrides,
        config: Option<&Path>,
        env: Env,
    ) -> Result<Self, UsageError> {
        let settings = Settings::load(overrides, config, &env)?;
        Ok(Self::new(settings, env))
    }

    /// Reports progress to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Hands every secret the gate reads to `sink` first.
    #[must_use]
    pub fn with_secret_sink(mut self, sink: SecretSink) -> Self {
        self.secrets = Some(sink);
        self
    }

    /// Spells inputs in error messages the face's way.
    #[must_use]
    pub fn with_spelling(mut self, spell: Spelling) -> Self {
        self.spell = spell;
        self
    }

    /// Uses `clock` for every wait (tests, simulations).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `run_id` for every run of this gate (the per-tenant nonces and
    /// the ledger records) instead of a fresh one per run. Run ids pair a
    /// ledger intent with its outcome: give each run its own.
    #[must_use]
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Checks (and probes) at most `max` tenants at once, whatever the
    /// settings say: what the process's open-files limit allows.
    #[must_use]
    pub fn cap_concurrency(mut self, max: usize) -> Self {
        let c = &mut self.settings.concurrency.value;
        *c = (*c).min(max.max(1));
        self
    }

    /// The resolved settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `canary verify`: wait for the canary fleet, run the suite on every
    /// tenant, promote when every check passed (not with `dry_run`).
    pub async fn verify(&self, sha: &str, dry_run: bool) -> Result<PromotionReport, UsageError> {
        let notifier = self.notifier()?;
        let release = self.release(sha)?;
        let promoter = self.judging_promoter(&release).await?;
        let options = VerifyOptions {
            dry_run,
            run_id: self.next_run_id(),
            shard: None,
        };
        let mut report = promoter.verify(&release, &options).await;
        self.explain_empty_fleet(&mut report);
        Ok(self.notified(&notifier, report).await)
    }

    /// `canary verify --shard K/N`: the suite on this shard's tenants only
    /// (round-robin over the fleet), nothing moved; the report is a partial
    /// one for [`Gate::decide`]. Outcome `passed`, `rejected` or
    /// `inconclusive` for the shard alone.
    pub async fn verify_shard(
        &self,
        sha: &str,
        shard: &str,
    ) -> Result<PromotionReport, UsageError> {
        let shard = Shard::parse(shard).map_err(|e| self.respell("shard", &e))?;
        let release = self.release(sha)?;
        let promoter = self.fleet_promoter(&release).await?;
        let options = VerifyOptions {
            dry_run: true,
            run_id: self.next_run_id(),
            shard: Some(shard),
        };
        Ok(promoter.verify(&release, &options).await)
    }

    /// `canary decide --reports DIR`: merges the partial reports of a
    /// sharded verify (every `*.json` under `reports`, as the shard jobs
    /// wrote them) and moves the promoted tag, or not, exactly as one
    /// unsharded verify would. The sha is the reports' unless `sha` is
    /// given, which they must then match. Refuses a missing, duplicated,
    /// mismatched or hostile report before any registry request.
    pub async fn decide(
        &self,
        sha: Option<&str>,
        reports: &Path,
        dry_run: bool,
    ) -> Result<PromotionReport, UsageError> {
        let notifier = self.notifier()?;
        let partials = crate::shards::read_partials(reports)?;
        let sha = match sha {
            Some(sha) => sha.to_string(),
            None => partials
                .iter()
                .find_map(|p| p.report.sha.as_ref())
                .map(ToString::to_string)
                .ok_or_else(|| {
                    UsageError::new(
                        format!("partial reports in `{}`", reports.display()),
                        "name no sha",
                        "give the reports of `canary verify --shard K/N --report FILE`",
                    )
                })?,
        };
        let release = self.release(&sha)?;
        let promoter = self.judging_promoter(&release).await?;
        let options = VerifyOptions {
            dry_run,
            run_id: self.next_run_id(),
            shard: None,
        };
        let report = promoter.decide(&release, &partials, &options).await;
        Ok(self.notified(&notifier, report).await)
    }

    /// `canary promote --no-verify --reason`: move without the suite; the
    /// reason is required and recorded.
    pub async fn promote(&self, sha: &str, reason: &str) -> Result<PromotionReport, UsageError> {
        let reason = Reason::parse(reason).map_err(|e| self.respell("reason", &e))?;
        let notifier = self.notifier()?;
        let release = self.release(sha)?;
        let promoter = self.promoter(&release, StaticFleet::default()).await?;
        let report = promoter.promote_manual(&release, reason.as_str()).await;
        Ok(self.notified(&notifier, report).await)
    }

    /// `canary rollback SHA`: move the promoted tag back to that release.
    pub async fn rollback(&self, sha: &str) -> Result<PromotionReport, UsageError> {
        let notifier = self.notifier()?;
        let release = self.release(sha)?;
        let promoter = self.promoter(&release, StaticFleet::default()).await?;
        let report = promoter.rollback(&release).await;
        Ok(self.notified(&notifier, report).await)
    }

    /// `canary smoke`: the suite only, on the fleet or one tenant. Needs no
    /// registry.
    pub async fn smoke(
        &self,
        target: &SmokeTarget,
        sha: Option<&str>,
    ) -> Result<PromotionReport, UsageError> {
        let sha = sha
            .map(|s| GitSha::parse(s.trim()))
            .transpose()
            .map_err(|e| self.respell("sha", &e))?;
        let fleet = match target {
            SmokeTarget::Fleet => self.fleet()?,
            SmokeTarget::Tenant {
                url,
                token_env,
                token_file,
            } => self.single_tenant(url, token_env.as_deref(), token_file.as_deref())?,
        };
        let suite = self.suite()?;
        if sha.is_none() && suite.suite().uses_sha() {
            return Err(UsageError::new(
                (self.spell)("sha"),
                "is missing and the suite uses {{sha}}",
                format!("pass the release's sha with {}", (self.spell)("sha")),
            ));
        }
        let tenants = fleet.tenants().await.unwrap_or_default();
        self.policy()
            .check_fleet(&tenants)
            .map_err(|e| self.empty_fleet_refused(&e))?;
        self.mask(&tenants);
        let promoter =
            Promoter::without_registry(Arc::new(fleet), Arc::new(suite), self.clock.clone())
                .with_policy(self.policy());
        let promoter = match &self.observer {
            Some(o) => promoter.with_observer(o.clone()),
            None => promoter,
        };
        let mut report = promoter.smoke(sha, &self.next_run_id()).await;
        self.explain_empty_fleet(&mut report);
        Ok(report)
    }

    /// `canary status`: where the promoted tag points for every image, which
    /// staging tag that is, and what every canary tenant runs. Changes
    /// nothing. Reads at most `max_scan` staging tags per image.
    pub async fn status(&self, max_scan: usize) -> Result<StatusReport, UsageError> {
        let images = self.settings.images()?;
        let fleet = self.fleet()?;
        let promoter = self.promoter_for(images, fleet).await?;
        promoter
            .status(
                images,
                &self.settings.staging.value,
                &self.settings.promoted.value,
                max_scan,
            )
            .await
    }

    pub(crate) fn respell(&self, input: &str, e: &UsageError) -> UsageError {
        let spelled = (self.spell)(input);
        let named = match e.input().strip_prefix(input) {
            Some(rest) => format!("{spelled}{rest}"),
            None => e.input().to_string(),
        };
        UsageError::new(named, e.problem(), e.fix())
    }

    fn release(&self, sha: &str) -> Result<Release, UsageError> {
        self.settings.release(sha)
    }

    pub(crate) fn policy(&self) -> Policy {
        Policy {
            on_empty_fleet: self.settings.on_empty.value,
            concurrency: self.settings.concurrency.value,
            rollout: self.settings.rollout.value,
        }
    }

    fn mask(&self, tenants: &[canary_core::Tenant]) {
        for t in tenants {
            self.hand_to_sink(t.token());
        }
    }

    /// Every token of `tenants` to the face's secret sink.
    pub(crate) fn mask_tenants(&self, tenants: &[canary_core::Tenant]) {
        self.mask(tenants);
    }

    /// `secret` to the face's secret sink (Actions masks it).
    pub(crate) fn hand_to_sink(&self, secret: &Secret) {
        if let Some(sink) = &self.secrets {
            sink(secret);
        }
    }

    /// The environment the gate reads.
    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    /// The clock every wait goes through.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Where this run is (the GitHub Actions run URL), for notifications.
    pub(crate) fn run_url(&self) -> Option<String> {
        canary_gha::GithubEnv::from_env(self.env.as_fn()).run_url()
    }

    /// The registry, fleet, suite and ledger of a run, validated before any
    /// request, every secret handed to the sink first.
    pub(crate) async fn promoter(
        &self,
        release: &Release,
        fleet: StaticFleet,
    ) -> Result<Promoter, UsageError> {
        self.promoter_for(release.images(), fleet).await
    }

    /// [`Gate::promoter`] for these images.
    pub(crate) async fn promoter_for(
        &self,
        images: &[canary_core::ImageRef],
        fleet: StaticFleet,
    ) -> Result<Promoter, UsageError> {
        let suite = self.suite()?;
        self.promoter_with(images, fleet, Arc::new(suite)).await
    }

    /// The promoter of a shard (`verify --shard`): the canary fleet read
    /// and checked against the empty-fleet policy first. It reads no
    /// metrics: a shard's evidence is partial, and a shard job needs
    /// neither Prometheus nor its credential (see
    /// [`Gate::judging_promoter`]).
    async fn fleet_promoter(&self, release: &Release) -> Result<Promoter, UsageError> {
        let fleet = self.fleet()?;
        let tenants = fleet.tenants().await.unwrap_or_default();
        self.policy()
            .check_fleet(&tenants)
            .map_err(|e| self.empty_fleet_refused(&e))?;
        self.promoter(release, fleet).await
    }

    /// The promoter of a run that judges the whole release (a verify, or
    /// the `decide` that merges shards): [`Gate::fleet_promoter`] with the
    /// configured metric analysis. Of the runs that check the canary
    /// fleet, only these read metrics (the guard and `canary analyze` read
    /// them too, on their own): a shard, a rollback or a manual promotion
    /// never waits on (or fails for) Prometheus.
    async fn judging_promoter(&self, release: &Release) -> Result<Promoter, UsageError> {
        let analysis = self.analysis()?;
        let promoter = self.fleet_promoter(release).await?;
        Ok(match analysis {
            Some(analysis) => promoter.with_analysis(analysis),
            None => promoter,
        })
    }

    /// [`Gate::promoter_for`] with another suite (the guard's).
    pub(crate) async fn promoter_with(
        &self,
        images: &[canary_core::ImageRef],
        fleet: StaticFleet,
        suite: Arc<dyn SmokeSuite>,
    ) -> Result<Promoter, UsageError> {
        let registry = Arc::new(self.registry()?);
        for image in images {
            registry.check_image(image)?;
        }
        self.mask(&fleet.tenants().await.unwrap_or_default());
        let ledger = self.ledger(&registry)?;
        let meta = self.meta();
        let dyn_registry: Arc<dyn Registry> = registry;
        let mut promoter = Promoter::new(dyn_registry, Arc::new(fleet), suite, self.clock.clone())
            .with_policy(self.policy())
            .with_run_id(self.next_run_id())
            .with_meta(meta)
            .with_interrupt(self.interrupt.clone());
        if let Some(ledger) = ledger {
            promoter = promoter.with_ledger(ledger);
        }
        Ok(match &self.observer {
            Some(o) => promoter.with_observer(o.clone()),
            None => promoter,
        })
    }

    /// The release ledger in the registry, signing with the configured key
    /// (the key's PEM goes to the secret sink first). `None` when disabled.
    pub(crate) fn ledger(
        &self,
        registry: &Arc<OciRegistry>,
    ) -> Result<Option<Arc<OciLedger>>, UsageError> {
        let settings = &self.settings.ledger;
        if !settings.enabled.value {
            return Ok(None);
        }
        let key = match &settings.signing_key_file.value {
            Some(path) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    UsageError::new(
                        format!("signing key file `{}`", path.display()),
                        format!("cannot be read ({})", e.kind()),
                        "give a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519 -out key.pem`)",
                    )
                })?;
                Some((pem, format!("signing key file `{}`", path.display())))
            }
            None => self
                .env
                .get(&settings.signing_key_env.value)
                .filter(|v| !v.trim().is_empty())
                .map(|pem| {
                    (
                        pem,
                        format!("signing key variable {}", settings.signing_key_env.value),
                    )
                }),
        };
        let signing = match key {
            Some((pem, label)) => {
                if let Some(sink) = &self.secrets {
                    sink(&Secret::new(pem.trim()));
                }
                Some(SigningKey::from_pkcs8_pem(&pem, &label)?)
            }
            None => None,
        };
        Ok(Some(Arc::new(OciLedger::new(
            Arc::clone(registry),
            signing,
            canary_ledger::statement::verifier_id(env!("CARGO_PKG_VERSION")),
        ))))
    }

    /// Who and where, and which suite, for the ledger records.
    fn meta(&self) -> RunMeta {
        let gh = canary_gha::GithubEnv::from_env(self.env.as_fn());
        let (suite, text) = match &self.settings.suite.value {
            SuiteChoice::Builtin(name) => (
                name.clone(),
                (name == "workspace-server")
                    .then(|| canary_smoke::WORKSPACE_SERVER.as_bytes().to_vec()),
            ),
            SuiteChoice::File(path) => (
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                std::fs::read(path).ok(),
            ),
        };
        RunMeta {
            actor: self.env.get("GITHUB_ACTOR").filter(|a| !a.is_empty()),
            run_url: gh.run_url(),
            suite: Some(suite),
            suite_digest: text.map(|t| Digest::sha256_of(&t)),
        }
    }

    /// The canary fleet, from the configured lists (variables or files).
    pub(crate) fn fleet(&self) -> Result<StaticFleet, UsageError> {
        let env = self.env.as_fn();
        let s = &self.settings;
        if s.urls_file.value.is_some() || s.tokens_file.value.is_some() {
            let read = |path: &Path, what: &str| {
                std::fs::read_to_string(path).map_err(|e| {
                    UsageError::new(
                        format!("{what} `{}`", path.display()),
                        format!("cannot be read ({})", e.kind()),
                        "give a readable file with one entry per line",
                    )
                })
            };
            let (urls, urls_name) = match (&s.urls_file.value, &s.fleet_urls) {
                (Some(path), _) => (
                    read(path, "tenant URL file")?,
                    format!("tenant URL file `{}`", path.display()),
                ),
                (None, Some(urls)) => (urls.value.join(","), urls.source.to_string()),
                (None, None) => (
                    self.env.get(&s.urls_env.value).unwrap_or_default(),
                    s.urls_env.value.clone(),
                ),
            };
            let (tokens, tokens_name) = match &s.tokens_file.value {
                Some(path) => (
                    read(path, "tenant token file")?,
                    format!("tenant token file `{}`", path.display()),
                ),
                None => (
                    self.env.get(&s.tokens_env.value).unwrap_or_default(),
                    s.tokens_env.value.clone(),
                ),
            };
            return canary_smoke::fleet_from_named_lists(&urls, &urls_name, &tokens, &tokens_name);
        }
        match &self.settings.fleet_urls {
            Some(urls) => canary_smoke::fleet_from_config(
                &urls.value,
                &urls.source.to_string(),
                &self.settings.tokens_env.value,
                env,
            ),
            None => canary_smoke::fleet_from_env(
                &self.settings.urls_env.value,
                &self.settings.tokens_env.value,
                env,
            ),
        }
    }

    fn single_tenant(
        &self,
        url: &str,
        token_env: Option<&str>,
        token_file: Option<&Path>,
    ) -> Result<StaticFleet, UsageError> {
        let spell = self.spell;
        let token = match (token_env, token_file) {
            (Some(var), _) => self
                .env
                .get(var)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    UsageError::new(
                        format!("{} {var}", spell("token_env")),
                        "names a variable that is unset or empty",
                        format!("export {var} with the tenant's admin token"),
                    )
                })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    UsageError::new(
                        format!("{} `{}`", spell("token_file"), path.display()),
                        format!("cannot be read ({})", e.kind()),
                        "give a file that holds the tenant's admin token",
                    )
                })?
                .trim()
                .to_string(),
            (None, None) => {
                return Err(UsageError::new(
                    spell("tenant"),
                    "needs the tenant's admin token",
                    format!(
                        "add {} VAR (a variable holding the token) or {} FILE",
                        spell("token_env"),
                        spell("token_file")
                    ),
                ))
            }
        };
        // The fleet rules (HTTPS unless loopback, a token a header can
        // carry) for this one tenant.
        let tenants = canary_smoke::fleet_from_lists(url, &token)?;
        Ok(StaticFleet::new(tenants))
    }

    fn suite(&self) -> Result<HttpSuite, UsageError> {
        let suite = match &self.settings.suite.value {
            SuiteChoice::Builtin(name) => Suite::builtin(name)?,
            SuiteChoice::File(path) => Suite::from_file(path)?,
        };
        HttpSuite::new(suite, self.http_options())
    }

    /// How the canary fleet is spoken to: the probe's path and JSONPath,
    /// the CA file, the tenant deadline.
    pub(crate) fn http_options(&self) -> HttpOptions {
        HttpOptions {
            probe: ProbeConfig {
                path: self.settings.probe_path.value.clone(),
                json_path: self.settings.probe_json_path.value.clone(),
            },
            ca_file: self.settings.ca_file.value.clone(),
            tenant_deadline: self.settings.tenant_deadline.value,
            ..HttpOptions::default()
        }
    }

    /// This run's id: the configured one, or a fresh one per run.
    pub(crate) fn fresh_run_id(&self) -> String {
        self.next_run_id()
    }

    fn next_run_id(&self) -> String {
        self.run_id.clone().unwrap_or_else(run_id)
    }

    /// How this face spells `input`.
    pub(crate) fn spelled(&self, input: &str) -> String {
        (self.spell)(input)
    }

    pub(crate) fn registry(&self) -> Result<OciRegistry, UsageError> {
        OciRegistry::new(RegistryOptions {
            insecure: self.settings.insecure.value.clone(),
            ca_file: self.settings.ca_file.value.clone(),
            credentials: Credentials::from_env(self.env.as_fn())?,
            timeout: self.settings.registry_timeout.value,
            retry: RetryPolicy {
                max_attempts: self.settings.registry_attempts.value,
                ..RetryPolicy::default()
            },
            ..RegistryOptions::default()
        })
    }
}

/// A value unique to this run, for per-tenant nonces.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

/// Reads a JSON report written by `--report` or `--json`.
pub fn read_report(path: &Path) -> Result<PromotionReport, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError::new(
            format!("report `{}`", path.display()),
            format!("cannot be read ({})", e.kind()),
            "give a report written by `canary verify --report FILE` or `--json`",
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        UsageError::new(
            format!("report `{}`", path.display()),
            format!("is not a canary JSON report ({e})"),
            "give a report written by `canary verify --report FILE` or `--json`",
        )
    })
}
