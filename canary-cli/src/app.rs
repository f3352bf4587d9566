//! Each command: parse and validate everything (exit 2 before any request),
//! build the adapters, make one library call, print.

use std::path::Path;
use std::sync::Arc;

use canary_core::promoter::{EmptyFleet, Policy, VerifyOptions};
use canary_core::{
    Command, MemoryRegistry, Promoter, PromotionReport, Registry, Release, SmokeSuite, StaticFleet,
    TenantFleet, UsageError,
};
use canary_registry::{Credentials, OciRegistry, RegistryOptions};
use canary_smoke::{HttpOptions, HttpSuite, ProbeConfig, Suite, SystemClock};
use clap::ArgMatches;

use crate::cli::{Cli, Cmd, OutputArgs};
use crate::config::{self, Settings, SuiteChoice};
use crate::github::Github;
use crate::output::{self, Progress};

/// The process environment, read in one place.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs the parsed command line; returns the exit code.
pub(crate) async fn run(cli: Cli, matches: &ArgMatches) -> i32 {
    let sub = matches.subcommand().map_or(matches, |(_, m)| m);
    // In Actions mode, masks every secret in the environment before anything
    // is printed.
    let json = matches!(&cli.command, Cmd::Verify { output, .. } | Cmd::Promote { output, .. } | Cmd::Rollback { output, .. } | Cmd::Smoke { output, .. } if output.json)
        || matches!(&cli.command, Cmd::Status { json: true, .. });
    let github = Github::detect(cli.settings.github, json, &env);
    let command = command_of(&cli.command);
    match execute(cli, sub, github.as_ref()).await {
        Ok(code) => code,
        Err(e) => {
            output::usage_error(&e);
            let report = PromotionReport::usage(command, &e);
            if let Some(gh) = &github {
                gh.finish(&report, None, &canary_smoke::render::markdown(&report));
            }
            report.exit_code
        }
    }
}

fn command_of(cmd: &Cmd) -> Command {
    match cmd {
        Cmd::Promote { .. } => Command::Promote,
        Cmd::Rollback { .. } => Command::Rollback,
        Cmd::Smoke { .. } => Command::Smoke,
        _ => Command::Verify,
    }
}

fn refuse_secrets_on_argv(cli: &Cli) -> Result<(), UsageError> {
    let s = &cli.settings;
    for (flag, given) in [
        ("--token", s.token.is_some()),
        ("--password", s.password.is_some()),
        ("--registry-password", s.registry_password.is_some()),
        ("--admin-token", s.admin_token.is_some()),
    ] {
        if given {
            return Err(UsageError::new(
                flag,
                "would put a secret on the command line, where shell history, process lists and CI logs keep it",
                "put tenant tokens in the variable named by fleet.tokens_env (or --token-env VAR / --token-file FILE for `canary smoke`), and registry credentials in CANARY_REGISTRY_USERNAME / CANARY_REGISTRY_PASSWORD",
            ));
        }
    }
    Ok(())
}

async fn execute(cli: Cli, sub: &ArgMatches, github: Option<&Github>) -> Result<i32, UsageError> {
    refuse_secrets_on_argv(&cli)?;
    if let Cmd::Demo = cli.command {
        return Ok(crate::demo::run(cli.settings.quiet).await);
    }
    if let Cmd::Postmortem { report } = &cli.command {
        return postmortem(report);
    }
    let file = config::load_file(cli.settings.config.as_deref())?;
    let settings = Settings::resolve(&cli.settings, sub, file)?;
    if let Some(gh) = github {
        gh.mask_var(&env, &settings.tokens_env.value);
    }
    let quiet = cli.settings.quiet;
    match cli.command {
        Cmd::Config => {
            print!("{}", settings.describe());
            Ok(0)
        }
        Cmd::Verify {
            sha,
            dry_run,
            output,
        } => {
            check_output_paths(&output)?;
            let release = settings.release(&sha)?;
            let fleet = env_fleet(&settings)?;
            if settings.on_empty.value == EmptyFleet::Fail
                && fleet.tenants().await.is_ok_and(|t| t.is_empty())
            {
                return Err(UsageError::new(
                    "canary fleet",
                    format!(
                        "is empty ({} is unset or empty) and on_empty_fleet = \"fail\" ({})",
                        settings.urls_env.value, settings.on_empty.source
                    ),
                    format!(
                        "set {} and {} to the canary tenants' URLs and admin tokens, or set on_empty = \"skip\"",
                        settings.urls_env.value, settings.tokens_env.value
                    ),
                ));
            }
            let parts = Parts::build(&settings, &release, fleet, github).await?;
            let options = VerifyOptions {
                dry_run,
                run_id: run_id(),
            };
            let report = parts
                .promoter(&settings, quiet)
                .verify(&release, &options)
                .await;
            Ok(emit(&report, &output, github))
        }
        Cmd::Promote {
            sha,
            no_verify,
            reason,
            output,
        } => {
            check_output_paths(&output)?;
            if !no_verify {
                return Err(UsageError::new(
                    "canary promote",
                    "moves the promoted tag without running the smoke suite",
                    "confirm with --no-verify --reason \"why\", or run `canary verify --sha SHA` to promote through the gate",
                ));
            }
            let reason = reason.unwrap_or_default();
            if reason.trim().is_empty() {
                return Err(UsageError::new(
                    "--reason",
                    "is missing or empty",
                    "a manual promotion bypasses the gate; say why with --reason \"…\" (it is recorded in the report)",
                ));
            }
            let release = settings.release(&sha)?;
            let parts = Parts::build(&settings, &release, StaticFleet::default(), github).await?;
            let report = parts
                .promoter(&settings, quiet)
                .promote_manual(&release, &reason)
                .await;
            Ok(emit(&report, &output, github))
        }
        Cmd::Rollback { sha, output } => {
            check_output_paths(&output)?;
            let release = settings.release(&sha)?;
            let parts = Parts::build(&settings, &release, StaticFleet::default(), github).await?;
            let report = parts.promoter(&settings, quiet).rollback(&release).await;
            Ok(emit(&report, &output, github))
        }
        Cmd::Smoke {
            tenant,
            token_env,
            token_file,
            sha,
            output,
        } => {
            check_output_paths(&output)?;
            let sha = sha
                .map(|s| canary_core::GitSha::parse(s.trim()))
                .transpose()?;
            let fleet = match tenant {
                Some(url) => single_tenant(&url, token_env.as_deref(), token_file.as_deref())?,
                None => env_fleet(&settings)?,
            };
            let suite = build_suite(&settings)?;
            if sha.is_none() && suite.suite().uses_sha() {
                return Err(UsageError::new(
                    "--sha",
                    "is missing and the suite uses {{sha}}",
                    "pass the release's sha with --sha SHA",
                ));
            }
            let tenants = fleet.tenants().await.unwrap_or_default();
            if let Some(gh) = github {
                gh.mask_tenants(&tenants);
            }
            let promoter = Promoter::new(
                Arc::new(MemoryRegistry::new()),
                Arc::new(fleet),
                Arc::new(suite),
                Arc::new(SystemClock),
            )
            .with_policy(policy(&settings))
            .with_observer(Arc::new(Progress::new(quiet)));
            let report = promoter.smoke(sha, &run_id()).await;
            Ok(emit(&report, &output, github))
        }
        Cmd::Status { max_scan, json } => {
            let images = settings.images()?;
            let fleet = env_fleet(&settings)?;
            let registry = build_registry(&settings)?;
            for image in images {
                registry.check_image(image)?;
            }
            let suite = build_suite(&settings)?;
            let promoter = Promoter::new(
                Arc::new(registry),
                Arc::new(fleet),
                Arc::new(suite),
                Arc::new(SystemClock),
            )
            .with_policy(policy(&settings));
            let status = promoter
                .status(
                    &settings.images.value,
                    &settings.staging.value,
                    &settings.promoted.value,
                    max_scan,
                )
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).unwrap_or_default()
                );
            } else {
                print!("{}", output::status(&status));
            }
            Ok(0)
        }
        Cmd::Postmortem { .. } | Cmd::Demo => unreachable!("handled above"),
    }
}

/// Registry, fleet and suite for a run, validated before any request.
struct Parts {
    registry: OciRegistry,
    fleet: StaticFleet,
    suite: HttpSuite,
}

impl Parts {
    async fn build(
        settings: &Settings,
        release: &Release,
        fleet: StaticFleet,
        github: Option<&Github>,
    ) -> Result<Self, UsageError> {
        let registry = build_registry(settings)?;
        for image in release.images() {
            registry.check_image(image)?;
        }
        let suite = build_suite(settings)?;
        if let Some(gh) = github {
            gh.mask_tenants(&fleet.tenants().await.unwrap_or_default());
        }
        Ok(Self {
            registry,
            fleet,
            suite,
        })
    }

    fn promoter(self, settings: &Settings, quiet: bool) -> Promoter {
        let registry: Arc<dyn Registry> = Arc::new(self.registry);
        let suite: Arc<dyn SmokeSuite> = Arc::new(self.suite);
        Promoter::new(registry, Arc::new(self.fleet), suite, Arc::new(SystemClock))
            .with_policy(policy(settings))
            .with_observer(Arc::new(Progress::new(quiet)))
    }
}

fn policy(settings: &Settings) -> Policy {
    Policy {
        on_empty_fleet: settings.on_empty.value,
        concurrency: settings.concurrency.value,
        rollout: settings.rollout.value,
    }
}

fn env_fleet(settings: &Settings) -> Result<StaticFleet, UsageError> {
    match &settings.fleet_urls {
        Some(urls) => canary_smoke::fleet_from_config(
            &urls.value,
            &urls.source.to_string(),
            &settings.tokens_env.value,
            env,
        ),
        None => {
            canary_smoke::fleet_from_env(&settings.urls_env.value, &settings.tokens_env.value, env)
        }
    }
}

fn single_tenant(
    url: &str,
    token_env: Option<&str>,
    token_file: Option<&Path>,
) -> Result<StaticFleet, UsageError> {
    let token = match (token_env, token_file) {
        (Some(var), _) => env(var).filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            UsageError::new(
                format!("--token-env {var}"),
                "names a variable that is unset or empty",
                format!("export {var} with the tenant's admin token"),
            )
        })?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| {
                UsageError::new(
                    format!("--token-file `{}`", path.display()),
                    format!("cannot be read ({})", e.kind()),
                    "give a file that holds the tenant's admin token",
                )
            })?
            .trim()
            .to_string(),
        (None, None) => {
            return Err(UsageError::new(
                "--tenant",
                "needs the tenant's admin token",
                "add --token-env VAR (a variable holding the token) or --token-file FILE",
            ))
        }
    };
    // The fleet rules (HTTPS unless loopback, a token a header can carry)
    // for this one tenant.
    let tenants = canary_smoke::fleet_from_lists(url, &token)?;
    Ok(StaticFleet::new(tenants))
}

fn build_suite(settings: &Settings) -> Result<HttpSuite, UsageError> {
    let suite = match &settings.suite.value {
        SuiteChoice::Builtin(name) => Suite::builtin(name)?,
        SuiteChoice::File(path) => Suite::from_file(path)?,
    };
    let options = HttpOptions {
        probe: ProbeConfig {
            path: settings.probe_path.value.clone(),
            json_path: settings.probe_json_path.value.clone(),
        },
        ca_file: settings.ca_file.value.clone(),
        ..HttpOptions::default()
    };
    HttpSuite::new(suite, options)
}

fn build_registry(settings: &Settings) -> Result<OciRegistry, UsageError> {
    OciRegistry::new(RegistryOptions {
        insecure: settings.insecure.value.clone(),
        ca_file: settings.ca_file.value.clone(),
        credentials: Credentials::from_env(env)?,
        ..RegistryOptions::default()
    })
}

fn check_output_paths(output: &OutputArgs) -> Result<(), UsageError> {
    for (flag, path) in [("--report", &output.report), ("--junit", &output.junit)] {
        let Some(path) = path else { continue };
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(UsageError::new(
                format!("{flag} `{}`", path.display()),
                "is in a directory that does not exist",
                "create the directory first, or write the file somewhere else",
            ));
        }
    }
    Ok(())
}

/// Prints and writes every rendering of a report; returns its exit code.
fn emit(report: &PromotionReport, output: &OutputArgs, github: Option<&Github>) -> i32 {
    let json = canary_smoke::render::json(report);
    if let Some(path) = &output.report {
        if let Err(e) = std::fs::write(path, &json) {
            eprintln!(
                "warning: could not write the report to {}: {e}",
                path.display()
            );
        }
    }
    if let Some(path) = &output.junit {
        if let Err(e) = std::fs::write(path, canary_smoke::render::junit(report)) {
            eprintln!("warning: could not write JUnit to {}: {e}", path.display());
        }
    }
    if output.json {
        println!("{json}");
    } else if let Some(gh) = github {
        gh.untrusted(&output::summary(report, false));
    } else {
        print!("{}", output::summary(report, output::color_enabled()));
    }
    if let Some(gh) = github {
        let path = output.report.as_ref().map(|p| p.display().to_string());
        gh.finish(
            report,
            path.as_deref(),
            &canary_smoke::render::markdown(report),
        );
    }
    report.exit_code
}

fn postmortem(path: &Path) -> Result<i32, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError::new(
            format!("--report `{}`", path.display()),
            format!("cannot be read ({})", e.kind()),
            "give a report written by `canary verify --report FILE` or `--json`",
        )
    })?;
    let report: PromotionReport = serde_json::from_str(&text).map_err(|e| {
        UsageError::new(
            format!("--report `{}`", path.display()),
            format!("is not a canary JSON report ({e})"),
            "give a report written by `canary verify --report FILE` or `--json`",
        )
    })?;
    print!("{}", report.postmortem());
    Ok(0)
}

/// A value unique to this run, for per-tenant nonces.
pub(crate) fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}
