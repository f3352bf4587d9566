//! `[guard]`: the production fleet `canary guard` watches after the move,
//! and how.

use std::path::Path;
use std::time::Duration;

use canary_core::UsageError;

use super::file::GuardSection;
use super::{duration, named, positive_duration, setting, Resolver, Sourced, SuiteChoice};

/// The default variable holding the production tenants' URLs.
pub const DEFAULT_PROD_URLS_ENV: &str = "CANARY_PROD_URLS";
/// The default variable holding their admin tokens, same order.
pub const DEFAULT_PROD_TOKENS_ENV: &str = "CANARY_PROD_TOKENS";
/// The guard's default suite: reads only.
pub const DEFAULT_GUARD_SUITE: &str = "workspace-server-readonly";

/// How `canary guard` watches production.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// The variable holding the production tenants' URLs.
    pub urls_env: Sourced<String>,
    /// The variable holding their tokens, same order.
    pub tokens_env: Sourced<String>,
    /// Watch only this many tenants (spread evenly over the list); `None`:
    /// all.
    pub sample: Sourced<Option<usize>>,
    /// The guard suite (default: the built-in read-only one).
    pub suite: Sourced<SuiteChoice>,
    /// How long production is watched once it runs the release.
    pub bake: Sourced<Duration>,
    /// Time between rounds.
    pub interval: Sourced<Duration>,
    /// Red rounds in a row that move `latest` back.
    pub failures_to_revert: Sourced<u32>,
}

fn variable_name(
    what: &'static str,
) -> impl Fn(String, &super::Source) -> Result<String, UsageError> {
    move |raw, source| {
        if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(raw)
        } else {
            Err(UsageError::new(
                named(source, &format!("{what} `{raw}`")),
                "is not an environment variable name",
                "name the variable that holds the list (e.g. CANARY_PROD_URLS), not the list itself",
            ))
        }
    }
}

impl GuardSettings {
    pub(super) fn resolve(
        r: &Resolver<'_>,
        file: GuardSection,
        base: &Path,
    ) -> Result<Self, UsageError> {
        let o = r.overrides;
        let urls_env = r.file_only(
            file.urls_env,
            "guard.urls_env",
            DEFAULT_PROD_URLS_ENV,
            variable_name("guard URL variable"),
        )?;
        let tokens_env = r.file_only(
            file.tokens_env,
            "guard.tokens_env",
            DEFAULT_PROD_TOKENS_ENV,
            variable_name("guard token variable"),
        )?;
        let suite = match file.suite {
            Some(s)
                if Path::new(&s)
                    .extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("toml")) =>
            {
                Sourced {
                    value: SuiteChoice::File(base.join(s)),
                    source: r.file("guard.suite"),
                }
            }
            Some(s) => Sourced {
                value: SuiteChoice::Builtin(s),
                source: r.file("guard.suite"),
            },
            None => Sourced {
                value: SuiteChoice::Builtin(DEFAULT_GUARD_SUITE.to_string()),
                source: super::Source::Default,
            },
        };
        let sample = r.pick(
            o.guard_sample.clone(),
            setting::GUARD_SAMPLE,
            || r.env_value(setting::GUARD_SAMPLE),
            file.sample.map(|n| n.to_string()),
            "guard.sample",
            String::new(),
            |raw, source| {
                if raw.is_empty() {
                    return Ok(None);
                }
                match raw.trim().parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(Some(n)),
                    _ => Err(UsageError::new(
                        named(source, &format!("guard sample `{raw}`")),
                        "is not a number of tenants from 1 up",
                        "write how many production tenants to watch, e.g. 20 (leave it out to watch all)",
                    )),
                }
            },
        )?;
        let bake = r.pick(
            o.guard_bake.clone(),
            setting::GUARD_BAKE,
            || r.env_value(setting::GUARD_BAKE),
            file.bake,
            "guard.bake",
            "10m".to_string(),
            |raw, source| duration(&raw, source, "guard bake"),
        )?;
        let interval = r.pick(
            o.guard_interval.clone(),
            setting::GUARD_INTERVAL,
            || r.env_value(setting::GUARD_INTERVAL),
            file.interval,
            "guard.interval",
            "1m".to_string(),
            |raw, source| {
                positive_duration(
                    &raw,
                    source,
                    "guard interval",
                    "write the time between two rounds, e.g. 1m",
                )
            },
        )?;
        let failures_to_revert = r.pick(
            o.failures_to_revert.clone(),
            setting::FAILURES_TO_REVERT,
            || r.env_value(setting::FAILURES_TO_REVERT),
            file.failures_to_revert.map(|n| n.to_string()),
            "guard.failures_to_revert",
            "2".to_string(),
            |raw, source| match raw.trim().parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(UsageError::new(
                    named(source, &format!("failures_to_revert `{raw}`")),
                    "is not a number from 1 to 100",
                    "write how many red rounds in a row move latest back, e.g. 2",
                )),
            },
        )?;
        Ok(Self {
            urls_env,
            tokens_env,
            sample,
            suite,
            bake,
            interval,
            failures_to_revert,
        })
    }
}

/// `n` tenants spread evenly over `all` (first, last and between), in
/// order; all of them when `n` is at least their number.
pub fn sample<T: Clone>(all: &[T], n: Option<usize>) -> Vec<T> {
    match n {
        Some(n) if n < all.len() => (0..n).map(|k| all[k * all.len() / n].clone()).collect(),
        _ => all.to_vec(),
    }
}
