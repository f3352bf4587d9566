//! How one setting is resolved through the layers (override > env > file >
//! default), and the parsers the sections share.

use std::time::Duration;

use canary_core::UsageError;

use super::{Overrides, Setting, Source, Sourced};
use crate::env::Env;

/// Resolves one setting through the layers: override (a flag, or the
/// variable a face read) > environment > file > default.
pub(super) struct Resolver<'a> {
    pub(super) overrides: &'a Overrides,
    pub(super) env: &'a Env,
    /// The config file's name, for [`Source::File`].
    pub(super) file_name: String,
}

impl Resolver<'_> {
    pub(super) fn given_source(&self, s: Setting) -> Source {
        if self.overrides.from_env.contains(&s.id) {
            Source::Env(s.env)
        } else {
            Source::Flag(s.flag)
        }
    }

    pub(super) fn file(&self, key: &str) -> Source {
        Source::File(format!("{}: {key}", self.file_name))
    }

    /// The value of `s`'s variable; empty counts as unset.
    pub(super) fn env_value(&self, s: Setting) -> Option<String> {
        self.env.get(s.env).filter(|v| !v.is_empty())
    }

    /// A list from its variable, comma-separated.
    pub(super) fn env_list(&self, s: Setting) -> Option<Vec<String>> {
        self.env_value(s)
            .map(|v| v.split(',').map(str::to_string).collect())
    }

    /// override > env > file > default, then parse.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pick<R, T>(
        &self,
        given: Option<R>,
        setting: Setting,
        from_env: impl FnOnce() -> Option<R>,
        file: Option<R>,
        key: &str,
        default: R,
        parse: impl Fn(R, &Source) -> Result<T, UsageError>,
    ) -> Result<Sourced<T>, UsageError> {
        let (raw, source) = if let Some(v) = given {
            (v, self.given_source(setting))
        } else if let Some(v) = from_env() {
            (v, Source::Env(setting.env))
        } else if let Some(v) = file {
            (v, self.file(key))
        } else {
            (default, Source::Default)
        };
        let value = parse(raw, &source)?;
        Ok(Sourced { value, source })
    }

    /// A setting that only the file sets.
    pub(super) fn file_only<T>(
        &self,
        file: Option<String>,
        key: &str,
        default: &str,
        parse: impl Fn(String, &Source) -> Result<T, UsageError>,
    ) -> Result<Sourced<T>, UsageError> {
        let (raw, source) = match file {
            Some(v) => (v, self.file(key)),
            None => (default.to_string(), Source::Default),
        };
        let value = parse(raw, &source)?;
        Ok(Sourced { value, source })
    }
}

pub(super) fn named(source: &Source, what: &str) -> String {
    match source {
        Source::Default => what.to_string(),
        other => format!("{what} ({other})"),
    }
}

pub(super) fn duration(raw: &str, source: &Source, what: &str) -> Result<Duration, UsageError> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        UsageError::new(
            named(source, &format!("{what} `{raw}`")),
            format!("is not a duration ({e})"),
            "write a duration such as `90s`, `6m` or `1h 30m`",
        )
    })
}

/// A [`duration`] that must not be zero (`fix` says what to write).
pub(super) fn positive_duration(
    raw: &str,
    source: &Source,
    what: &str,
    fix: &str,
) -> Result<Duration, UsageError> {
    match duration(raw, source, what)? {
        d if d.is_zero() => Err(UsageError::new(
            named(source, &format!("{what} `{raw}`")),
            "is zero",
            fix,
        )),
        d => Ok(d),
    }
}

pub(super) fn boolean(raw: &str, source: &Source, what: &str) -> Result<bool, UsageError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(UsageError::new(
            named(source, &format!("{what} `{raw}`")),
            "is not a boolean",
            "write `true` or `false`",
        )),
    }
}
