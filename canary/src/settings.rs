//! `canary.toml` and the effective settings: flag > env > file > default.
//!
//! The layers are the library's, so every face resolves settings the same
//! way: a face passes what its user gave explicitly as [`Overrides`] (the
//! CLI: its flags), the environment comes in as a function (tests and the
//! demo inject one), the file is [`load_file`]'s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use canary_core::promoter::{EmptyFleet, Rollout};
use canary_core::{GitSha, ImageRef, Release, TagTemplate, UsageError};

use crate::env::Env;

mod analysis;
mod control_plane;
mod describe;
mod file;
mod guard;
mod ledger;
mod notify;
mod resolver;

pub use analysis::AnalysisSettings;
pub use control_plane::{ControlPlaneSettings, DEFAULT_CONTROL_PLANE_TOKEN_ENV};
pub use file::{load_file, FileConfig};
pub use guard::{
    sample, GuardSettings, DEFAULT_GUARD_SUITE, DEFAULT_PROD_TOKENS_ENV, DEFAULT_PROD_URLS_ENV,
};
pub use ledger::{LedgerSettings, DEFAULT_SIGNING_KEY_ENV};
pub use notify::{default_on, NotifyFormat, NotifyTarget};
use resolver::{boolean, duration, named, positive_duration, Resolver};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A flag (its name, without `--`).
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// The config file (`path: key`).
    File(String),
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(name) => write!(f, "flag --{name}"),
            Self::Env(var) => write!(f, "env {var}"),
            Self::File(key) => write!(f, "file {key}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// Which smoke suite to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteChoice {
    /// A built-in suite, by name.
    Builtin(String),
    /// A suite file.
    File(PathBuf),
}

/// The effective settings, each with its source.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// The release's images, moved together.
    pub images: Sourced<Vec<ImageRef>>,
    /// The staging tag template.
    pub staging: Sourced<TagTemplate>,
    /// The promoted tag template.
    pub promoted: Sourced<TagTemplate>,
    /// Tenant URLs written in the config file (instead of `urls_env`).
    pub fleet_urls: Option<Sourced<Vec<String>>>,
    /// The variable holding the tenant URLs.
    pub urls_env: Sourced<String>,
    /// The variable holding the tenant tokens.
    pub tokens_env: Sourced<String>,
    /// A file holding the tenant URLs, instead of the variable (a fleet too
    /// large for one environment string).
    pub urls_file: Sourced<Option<PathBuf>>,
    /// A file holding the tenant tokens, instead of the variable.
    pub tokens_file: Sourced<Option<PathBuf>>,
    /// What an empty fleet means.
    pub on_empty: Sourced<EmptyFleet>,
    /// The smoke suite.
    pub suite: Sourced<SuiteChoice>,
    /// Tenants checked at once.
    pub concurrency: Sourced<usize>,
    /// The most one tenant's whole suite may take.
    pub tenant_deadline: Sourced<std::time::Duration>,
    /// How to wait for the rollout.
    pub rollout: Sourced<Rollout>,
    /// The rollout probe's path.
    pub probe_path: Sourced<String>,
    /// The rollout probe's JSONPath to the version.
    pub probe_json_path: Sourced<String>,
    /// Registry hosts allowed over plain HTTP.
    pub insecure: Sourced<Vec<String>>,
    /// Extra CA bundle for registries and tenants.
    pub ca_file: Sourced<Option<PathBuf>>,
    /// Timeout of one registry request.
    pub registry_timeout: Sourced<Duration>,
    /// Attempts per registry request, the first included.
    pub registry_attempts: Sourced<u32>,
    /// The release ledger.
    pub ledger: LedgerSettings,
    /// How `canary guard` watches production.
    pub guard: GuardSettings,
    /// Where outcomes are sent (`[[notify]]`).
    pub notify: Vec<NotifyTarget>,
    /// Where `canary fleet enroll` makes an org a canary org.
    pub control_plane: ControlPlaneSettings,
    /// The metric analysis (`[analysis]`), when configured.
    pub analysis: Option<AnalysisSettings>,
}

/// What a face's user gave explicitly, before the environment, the file
/// and the defaults are consulted. Every field is the raw text the user
/// wrote; the library parses and validates it.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Release images (`--image`).
    pub images: Vec<String>,
    /// Staging tag template.
    pub staging_tag: Option<String>,
    /// Promoted tag template.
    pub promoted_tag: Option<String>,
    /// Name of the variable holding the tenant URLs.
    pub urls_env: Option<String>,
    /// Name of the variable holding the tenant tokens.
    pub tokens_env: Option<String>,
    /// `skip` or `fail`.
    pub on_empty_fleet: Option<String>,
    /// A built-in suite name, or a path ending in `.toml`.
    pub suite: Option<String>,
    /// A suite file.
    pub suite_file: Option<PathBuf>,
    /// Tenants checked at once.
    pub concurrency: Option<String>,
    /// The most one tenant's suite may take (a duration).
    pub tenant_deadline: Option<String>,
    /// Whether to probe the rollout (`true`/`false`).
    pub wait_for_rollout: Option<String>,
    /// Rollout deadline (a duration).
    pub rollout_deadline: Option<String>,
    /// Rollout probe interval (a duration).
    pub rollout_interval: Option<String>,
    /// A fixed wait instead of the probe (a duration).
    pub wait: Option<String>,
    /// Registry hosts allowed over plain HTTP.
    pub insecure: Vec<String>,
    /// Extra CA bundle.
    pub ca_file: Option<PathBuf>,
    /// Timeout of one registry request (a duration).
    pub registry_timeout: Option<String>,
    /// Attempts per registry request (a number).
    pub registry_attempts: Option<String>,
    /// A file holding the tenant URLs (instead of the variable).
    pub urls_file: Option<PathBuf>,
    /// A file holding the tenant tokens (instead of the variable).
    pub tokens_file: Option<PathBuf>,
    /// Whether to keep the release ledger (`true`/`false`).
    pub ledger: Option<String>,
    /// A file holding the ledger's signing key (PKCS#8 PEM).
    pub signing_key_file: Option<PathBuf>,
    /// A file holding the public key records are verified with.
    pub public_key: Option<PathBuf>,
    /// How long the guard watches production (a duration).
    pub guard_bake: Option<String>,
    /// Time between guard rounds (a duration).
    pub guard_interval: Option<String>,
    /// Red guard rounds in a row that revert.
    pub failures_to_revert: Option<String>,
    /// Production tenants the guard watches (a number).
    pub guard_sample: Option<String>,
    /// The control plane's base URL.
    pub control_plane_url: Option<String>,
    /// Name of the variable holding the control plane's admin token.
    pub control_plane_token_env: Option<String>,
    /// The settings (by [`Setting::id`]) whose override the face read from
    /// the environment variable itself (clap's `env`), so the source says
    /// `env VAR`, not `flag --name`.
    pub from_env: Vec<&'static str>,
}

/// One setting a face can override: its id (the [`Overrides`] field), its
/// flag name and its environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The [`Overrides`] field.
    pub id: &'static str,
    /// The CLI flag, without `--`.
    pub flag: &'static str,
    /// The environment variable.
    pub env: &'static str,
}

macro_rules! settings {
    ($($name:ident = ($id:literal, $flag:literal, $env:literal);)*) => {
        /// Every overridable setting, with its flag and environment variable.
        pub mod setting {
            use super::Setting;
            $(
                #[doc = concat!("`--", $flag, "`, `", $env, "`.")]
                pub const $name: Setting = Setting { id: $id, flag: $flag, env: $env };
            )*
        }
    };
}

pub use canary_core::promoter::DEFAULT_CONCURRENCY;

settings! {
    CONFIG = ("config", "config", "CANARY_CONFIG");
    IMAGES = ("images", "image", "CANARY_IMAGES");
    STAGING_TAG = ("staging_tag", "staging-tag", "CANARY_STAGING_TAG");
    PROMOTED_TAG = ("promoted_tag", "promoted-tag", "CANARY_PROMOTED_TAG");
    URLS_ENV = ("urls_env", "urls-env", "CANARY_URLS_ENV");
    TOKENS_ENV = ("tokens_env", "tokens-env", "CANARY_TOKENS_ENV");
    ON_EMPTY_FLEET = ("on_empty_fleet", "on-empty-fleet", "CANARY_ON_EMPTY_FLEET");
    SUITE = ("suite", "suite", "CANARY_SUITE");
    SUITE_FILE = ("suite_file", "suite-file", "CANARY_SUITE_FILE");
    CONCURRENCY = ("concurrency", "concurrency", "CANARY_CONCURRENCY");
    TENANT_DEADLINE = ("tenant_deadline", "tenant-deadline", "CANARY_TENANT_DEADLINE");
    WAIT_FOR_ROLLOUT = ("wait_for_rollout", "wait-for-rollout", "CANARY_WAIT_FOR_ROLLOUT");
    ROLLOUT_DEADLINE = ("rollout_deadline", "rollout-deadline", "CANARY_ROLLOUT_DEADLINE");
    ROLLOUT_INTERVAL = ("rollout_interval", "rollout-interval", "CANARY_ROLLOUT_INTERVAL");
    WAIT = ("wait", "wait", "CANARY_WAIT");
    INSECURE = ("insecure", "insecure-registry", "CANARY_INSECURE_REGISTRIES");
    CA_FILE = ("ca_file", "ca-file", "CANARY_CA_FILE");
    REGISTRY_TIMEOUT = ("registry_timeout", "registry-timeout", "CANARY_REGISTRY_TIMEOUT");
    REGISTRY_ATTEMPTS = ("registry_attempts", "registry-attempts", "CANARY_REGISTRY_ATTEMPTS");
    URLS_FILE = ("urls_file", "urls-file", "CANARY_TENANT_URLS_FILE");
    TOKENS_FILE = ("tokens_file", "tokens-file", "CANARY_TENANT_TOKENS_FILE");
    LEDGER = ("ledger", "ledger", "CANARY_LEDGER");
    SIGNING_KEY_FILE = ("signing_key_file", "signing-key-file", "CANARY_SIGNING_KEY_FILE");
    PUBLIC_KEY = ("public_key", "public-key", "CANARY_PUBLIC_KEY_FILE");
    GUARD_BAKE = ("guard_bake", "bake", "CANARY_GUARD_BAKE");
    GUARD_INTERVAL = ("guard_interval", "interval", "CANARY_GUARD_INTERVAL");
    FAILURES_TO_REVERT = ("failures_to_revert", "failures-to-revert", "CANARY_GUARD_FAILURES_TO_REVERT");
    GUARD_SAMPLE = ("guard_sample", "sample", "CANARY_GUARD_SAMPLE");
    CONTROL_PLANE_URL = ("control_plane_url", "control-plane-url", "CANARY_CONTROL_PLANE_URL");
    CONTROL_PLANE_TOKEN_ENV = ("control_plane_token_env", "control-plane-token-env", "CANARY_CONTROL_PLANE_TOKEN_ENV");
}

impl Settings {
    /// Reads the config file (`config`, else the `CANARY_CONFIG` variable,
    /// else `./canary.toml` when present) and resolves every setting.
    pub fn load(
        overrides: &Overrides,
        config: Option<&Path>,
        env: &Env,
    ) -> Result<Self, UsageError> {
        let from_env = env
            .get(setting::CONFIG.env)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let file = load_file(config.or(from_env.as_deref()))?;
        Self::resolve(overrides, env, file)
    }

    /// Resolves every setting: `overrides` (what the face's user gave) >
    /// `env` > `file` (from [`load_file`]) > default. Validates every value;
    /// sends nothing.
    pub fn resolve(
        overrides: &Overrides,
        env: &Env,
        file: Option<(PathBuf, FileConfig)>,
    ) -> Result<Self, UsageError> {
        let args = overrides;
        let (config_file, file) = match file {
            Some((p, f)) => (Some(p), f),
            None => (None, FileConfig::default()),
        };
        let r = Resolver {
            overrides,
            env,
            file_name: config_file
                .as_ref()
                .map_or_else(|| "canary.toml".to_string(), |p| p.display().to_string()),
        };

        let images = r.pick(
            (!args.images.is_empty()).then(|| args.images.clone()),
            setting::IMAGES,
            || r.env_list(setting::IMAGES),
            file.release.images,
            "release.images",
            Vec::new(),
            |raw, _| {
                raw.iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .map(ImageRef::parse)
                    .collect::<Result<Vec<_>, _>>()
            },
        )?;
        let template = |what: &'static str| {
            move |raw: String, source: &Source| {
                TagTemplate::parse(&raw).map_err(|e| {
                    UsageError::new(
                        named(source, &format!("{what} `{raw}`")),
                        e.problem(),
                        e.fix(),
                    )
                })
            }
        };
        let staging = r.pick(
            args.staging_tag.clone(),
            setting::STAGING_TAG,
            || r.env_value(setting::STAGING_TAG),
            file.release.staging_tag,
            "release.staging_tag",
            "staging-{sha}".to_string(),
            template("staging tag template"),
        )?;
        let promoted = r.pick(
            args.promoted_tag.clone(),
            setting::PROMOTED_TAG,
            || r.env_value(setting::PROMOTED_TAG),
            file.release.promoted_tag,
            "release.promoted_tag",
            "latest".to_string(),
            template("promoted tag template"),
        )?;
        let var_name = |what: &'static str| {
            move |raw: String, source: &Source| {
                let ok = !raw.is_empty()
                    && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !raw.starts_with(|c: char| c.is_ascii_digit());
                if ok {
                    Ok(raw)
                } else {
                    Err(UsageError::new(
                        named(source, &format!("{what} `{raw}`")),
                        "is not an environment variable name",
                        "name the variable, e.g. MOLECULE_STAGING_TENANT_URLS — not its value",
                    ))
                }
            }
        };
        let urls_env = r.pick(
            args.urls_env.clone(),
            setting::URLS_ENV,
            || r.env_value(setting::URLS_ENV),
            file.fleet.urls_env,
            "fleet.urls_env",
            "CANARY_TENANT_URLS".to_string(),
            var_name("tenant URL variable"),
        )?;
        let tokens_env = r.pick(
            args.tokens_env.clone(),
            setting::TOKENS_ENV,
            || r.env_value(setting::TOKENS_ENV),
            file.fleet.tokens_env,
            "fleet.tokens_env",
            "CANARY_TENANT_TOKENS".to_string(),
            var_name("tenant token variable"),
        )?;
        let list_file = |what: &'static str| {
            move |raw: Option<PathBuf>, source: &Source| match raw {
                Some(p) if !p.is_file() => Err(UsageError::new(
                    named(source, &format!("{what} `{}`", p.display())),
                    "does not exist or is not a file",
                    "give a file with one entry per line (or separated by commas or spaces)",
                )),
                other => Ok(other),
            }
        };
        let urls_file = r.pick(
            args.urls_file.clone().map(Some),
            setting::URLS_FILE,
            || {
                r.env_value(setting::URLS_FILE)
                    .map(|p| Some(PathBuf::from(p)))
            },
            file.fleet.urls_file.map(Some),
            "fleet.urls_file",
            None,
            list_file("tenant URL file"),
        )?;
        let tokens_file = r.pick(
            args.tokens_file.clone().map(Some),
            setting::TOKENS_FILE,
            || {
                r.env_value(setting::TOKENS_FILE)
                    .map(|p| Some(PathBuf::from(p)))
            },
            file.fleet.tokens_file.map(Some),
            "fleet.tokens_file",
            None,
            list_file("tenant token file"),
        )?;
        // URLs may be written in the file; tokens never are. A URL list
        // given through the environment (flag or variable) wins.
        let fleet_urls = match (&file.fleet.urls, urls_env.source.clone()) {
            (Some(urls), Source::Default | Source::File(_)) => Some(Sourced {
                value: urls.clone(),
                source: r.file("fleet.urls"),
            }),
            _ => None,
        };
        let on_empty = r.pick(
            args.on_empty_fleet.clone(),
            setting::ON_EMPTY_FLEET,
            || r.env_value(setting::ON_EMPTY_FLEET),
            file.fleet.on_empty,
            "fleet.on_empty",
            "skip".to_string(),
            |raw, source| match raw.as_str() {
                "skip" => Ok(EmptyFleet::Skip),
                "fail" => Ok(EmptyFleet::Fail),
                _ => Err(UsageError::new(
                    named(source, &format!("on_empty_fleet `{raw}`")),
                    "is neither `skip` nor `fail`",
                    "write `skip` (exit 0 when no fleet is configured) or `fail` (exit 2)",
                )),
            },
        )?;
        let given_suite = args
            .suite
            .clone()
            .map(|n| (n, r.given_source(setting::SUITE)))
            .or_else(|| {
                r.env_value(setting::SUITE)
                    .map(|n| (n, Source::Env(setting::SUITE.env)))
            });
        let given_suite_file = args
            .suite_file
            .clone()
            .map(|p| (p, r.given_source(setting::SUITE_FILE)))
            .or_else(|| {
                r.env_value(setting::SUITE_FILE)
                    .map(|p| (PathBuf::from(p), Source::Env(setting::SUITE_FILE.env)))
            });
        let suite = match (given_suite, given_suite_file) {
            // The suite setting takes a built-in name or a file.
            (Some((name, source)), _)
                if !canary_smoke::BUILTIN_SUITES.contains(&name.as_str())
                    && (Path::new(&name)
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
                        || name.contains(std::path::MAIN_SEPARATOR)) =>
            {
                Sourced {
                    value: SuiteChoice::File(PathBuf::from(name)),
                    source,
                }
            }
            (Some((name, source)), _) => Sourced {
                value: SuiteChoice::Builtin(name),
                source,
            },
            (None, Some((path, source))) => Sourced {
                value: SuiteChoice::File(path),
                source,
            },
            (None, None) => match (file.suite.builtin, file.suite.file) {
                (Some(_), Some(_)) => {
                    return Err(UsageError::new(
                        format!("config file `{}` [suite]", r.file_name),
                        "names both `builtin` and `file`",
                        "keep one of them",
                    ))
                }
                (Some(name), None) => Sourced {
                    value: SuiteChoice::Builtin(name),
                    source: r.file("suite.builtin"),
                },
                (None, Some(path)) => {
                    // Relative to the config file, as users write it there.
                    let base = config_file
                        .as_deref()
                        .and_then(Path::parent)
                        .unwrap_or(Path::new(""));
                    Sourced {
                        value: SuiteChoice::File(base.join(path)),
                        source: r.file("suite.file"),
                    }
                }
                (None, None) => Sourced {
                    value: SuiteChoice::Builtin("workspace-server".to_string()),
                    source: Source::Default,
                },
            },
        };
        let concurrency = r.pick(
            args.concurrency.clone(),
            setting::CONCURRENCY,
            || r.env_value(setting::CONCURRENCY),
            file.suite.concurrency.map(|n| n.to_string()),
            "suite.concurrency",
            DEFAULT_CONCURRENCY.to_string(),
            |raw, source| match raw.trim().parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                _ => Err(UsageError::new(
                    named(source, &format!("concurrency `{raw}`")),
                    "is not a number from 1 to 10000",
                    "write how many tenants to check at once, e.g. 256",
                )),
            },
        )?;

        let tenant_deadline = r.pick(
            args.tenant_deadline.clone(),
            setting::TENANT_DEADLINE,
            || r.env_value(setting::TENANT_DEADLINE),
            file.suite.tenant_deadline,
            "suite.tenant_deadline",
            "5m".to_string(),
            |raw, source| {
                positive_duration(
                    &raw,
                    source,
                    "tenant deadline",
                    "write how long one tenant's suite may take, e.g. 5m",
                )
            },
        )?;

        let probe = r.pick(
            args.wait_for_rollout.clone(),
            setting::WAIT_FOR_ROLLOUT,
            || r.env_value(setting::WAIT_FOR_ROLLOUT),
            file.rollout.probe.map(|b| b.to_string()),
            "rollout.probe",
            "true".to_string(),
            |raw, source| boolean(&raw, source, "wait_for_rollout"),
        )?;
        let deadline = r.pick(
            args.rollout_deadline.clone(),
            setting::ROLLOUT_DEADLINE,
            || r.env_value(setting::ROLLOUT_DEADLINE),
            file.rollout.deadline,
            "rollout.deadline",
            "15m".to_string(),
            |raw, source| duration(&raw, source, "rollout deadline"),
        )?;
        let interval = r.pick(
            args.rollout_interval.clone(),
            setting::ROLLOUT_INTERVAL,
            || r.env_value(setting::ROLLOUT_INTERVAL),
            file.rollout.interval,
            "rollout.interval",
            "10s".to_string(),
            |raw, source| duration(&raw, source, "rollout interval"),
        )?;
        if interval.value.is_zero() {
            return Err(UsageError::new(
                named(&interval.source, "rollout interval"),
                "is zero",
                "probe at most every few seconds, e.g. 10s",
            ));
        }
        let wait = r.pick(
            args.wait.clone().map(Some),
            setting::WAIT,
            || r.env_value(setting::WAIT).map(Some),
            file.rollout.wait.map(Some),
            "rollout.wait",
            None,
            |raw: Option<String>, source| raw.map(|w| duration(&w, source, "wait")).transpose(),
        )?;
        let rollout = if let Some(w) = wait.value {
            Sourced {
                value: Rollout::Fixed(w),
                source: wait.source,
            }
        } else if probe.value {
            Sourced {
                value: Rollout::Probe {
                    interval: interval.value,
                    deadline: deadline.value,
                },
                source: probe.source,
            }
        } else {
            Sourced {
                value: Rollout::Immediate,
                source: probe.source,
            }
        };
        let probe_path = r.file_only(
            file.rollout.path,
            "rollout.path",
            "/admin/liveness",
            |raw, source| {
                if raw.starts_with('/') {
                    Ok(raw)
                } else {
                    Err(UsageError::new(
                        named(source, &format!("probe path `{raw}`")),
                        "does not start with `/`",
                        "write the path relative to the tenant's base URL, e.g. /admin/liveness",
                    ))
                }
            },
        )?;
        let probe_json_path = r.file_only(
            file.rollout.json_path,
            "rollout.json_path",
            "$.version",
            |raw, _| Ok(raw),
        )?;
        let insecure = r.pick(
            (!args.insecure.is_empty()).then(|| args.insecure.clone()),
            setting::INSECURE,
            || r.env_list(setting::INSECURE),
            file.registry.insecure,
            "registry.insecure",
            Vec::new(),
            |raw, _| Ok(raw.into_iter().filter(|s| !s.trim().is_empty()).collect()),
        )?;
        let ca_file = r.pick(
            args.ca_file.clone().map(Some),
            setting::CA_FILE,
            || {
                r.env_value(setting::CA_FILE)
                    .map(|p| Some(PathBuf::from(p)))
            },
            file.registry.ca_file.map(Some),
            "registry.ca_file",
            None,
            |raw: Option<PathBuf>, source| match raw {
                Some(p) if !p.is_file() => Err(UsageError::new(
                    named(source, &format!("CA file `{}`", p.display())),
                    "does not exist or is not a file",
                    "give the path of a PEM bundle",
                )),
                other => Ok(other),
            },
        )?;
        let registry_timeout = r.pick(
            args.registry_timeout.clone(),
            setting::REGISTRY_TIMEOUT,
            || r.env_value(setting::REGISTRY_TIMEOUT),
            file.registry.timeout,
            "registry.timeout",
            "30s".to_string(),
            |raw, source| {
                positive_duration(
                    &raw,
                    source,
                    "registry timeout",
                    "write how long one registry request may take, e.g. 30s",
                )
            },
        )?;
        let registry_attempts = r.pick(
            args.registry_attempts.clone(),
            setting::REGISTRY_ATTEMPTS,
            || r.env_value(setting::REGISTRY_ATTEMPTS),
            file.registry.attempts.map(|n| n.to_string()),
            "registry.attempts",
            "4".to_string(),
            |raw, source| match raw.trim().parse::<u32>() {
                Ok(n) if (1..=10).contains(&n) => Ok(n),
                _ => Err(UsageError::new(
                    named(source, &format!("registry attempts `{raw}`")),
                    "is not a number from 1 to 10",
                    "write how many times one registry request is tried, e.g. 4 (1: no retries)",
                )),
            },
        )?;
        let ledger = LedgerSettings::resolve(&r, file.ledger)?;
        let base = config_file
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        let guard = GuardSettings::resolve(&r, file.guard, base)?;
        let notify = notify::resolve(&r.file_name, file.notify)?;
        let control_plane = ControlPlaneSettings::resolve(&r, file.control_plane)?;
        let analysis = analysis::resolve(&r.file_name, file.analysis)?;
        Ok(Self {
            config_file,
            images,
            staging,
            promoted,
            fleet_urls,
            urls_env,
            tokens_env,
            urls_file,
            tokens_file,
            on_empty,
            suite,
            concurrency,
            tenant_deadline,
            rollout,
            probe_path,
            probe_json_path,
            insecure,
            ca_file,
            registry_timeout,
            registry_attempts,
            ledger,
            guard,
            notify,
            control_plane,
            analysis,
        })
    }

    /// The release's images; at least one.
    pub fn images(&self) -> Result<&[ImageRef], UsageError> {
        if self.images.value.is_empty() {
            return Err(UsageError::new(
                "release images",
                "are not configured",
                "list them in canary.toml `[release] images = [\"ghcr.io/org/app\"]`, or pass --image REPO (CANARY_IMAGES)",
            ));
        }
        Ok(&self.images.value)
    }

    /// The release for `sha`.
    pub fn release(&self, sha: &str) -> Result<Release, UsageError> {
        let sha = GitSha::parse(sha.trim())?;
        Release::new(
            sha,
            self.images()?.to_vec(),
            self.staging.value.clone(),
            self.promoted.value.clone(),
        )
    }
}
