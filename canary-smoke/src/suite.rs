//! Suite files: the TOML format, its validation, and the built-in suites.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use canary_core::UsageError;
use reqwest::header::HeaderName;
use reqwest::Method;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::template::{JsonTemplate, Template};

mod format;
mod validate;

use format::{did_you_mean, toml_error, Cx, RawSuite};
use validate::validate;

/// The built-in `workspace-server` suite, as shipped in
/// `canary-smoke/suites/workspace-server.toml` (and, identical, in
/// `examples/suites/`).
pub const WORKSPACE_SERVER: &str = include_str!("../suites/workspace-server.toml");

/// The built-in `workspace-server-readonly` suite, `canary guard`'s default:
/// liveness, the auth gate, the workspaces list and the event log. It writes
/// nothing, so it is safe on production tenants.
pub const WORKSPACE_SERVER_READONLY: &str =
    include_str!("../suites/workspace-server-readonly.toml");

/// The names of the built-in suites.
pub const BUILTIN_SUITES: &[&str] = &["workspace-server", "workspace-server-readonly"];

/// Whether a check sends the tenant's admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <tenant token>` (the default).
    Tenant,
    /// No `Authorization` header (for "requires auth" checks).
    None,
}

/// The JSON types `expect.json` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Object,
    Array,
    String,
    Number,
    Boolean,
    Null,
}

impl JsonType {
    const NAMES: &'static [&'static str] =
        &["object", "array", "string", "number", "boolean", "null"];

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "object" => Self::Object,
            "array" => Self::Array,
            "string" => Self::String,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "null" => Self::Null,
            _ => return None,
        })
    }

    pub(crate) fn of(value: &Value) -> Self {
        match value {
            Value::Object(_) => Self::Object,
            Value::Array(_) => Self::Array,
            Value::String(_) => Self::String,
            Value::Number(_) => Self::Number,
            Value::Bool(_) => Self::Boolean,
            Value::Null => Self::Null,
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Object => "an object",
            Self::Array => "an array",
            Self::String => "a string",
            Self::Number => "a number",
            Self::Boolean => "a boolean",
            Self::Null => "null",
        })
    }
}

/// One accepted status: exact or a class (`2xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusMatch {
    Exact(u16),
    Class(u16),
}

impl StatusMatch {
    pub(crate) fn matches(self, status: u16) -> bool {
        match self {
            Self::Exact(s) => s == status,
            Self::Class(c) => status / 100 == c,
        }
    }
}

impl fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(s) => write!(f, "{s}"),
            Self::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// One `expect.json` entry.
#[derive(Debug, Clone)]
pub(crate) struct JsonExpect {
    pub(crate) source: String,
    pub(crate) path: JsonPath,
    pub(crate) exists: bool,
    pub(crate) ty: Option<JsonType>,
    pub(crate) equals: Option<JsonTemplate>,
    pub(crate) contains: Option<JsonTemplate>,
}

/// A check's expectations.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    /// Any of these; never empty (default `2xx`).
    pub(crate) status: Vec<StatusMatch>,
    pub(crate) json: Vec<JsonExpect>,
    pub(crate) body_contains: Vec<Template>,
}

/// One check of a suite: a request and what its answer must look like.
#[derive(Debug, Clone)]
pub struct Check {
    pub(crate) name: String,
    pub(crate) method: Method,
    pub(crate) path: Template,
    pub(crate) auth: Auth,
    pub(crate) body: Option<JsonTemplate>,
    pub(crate) headers: Vec<(HeaderName, Template)>,
    pub(crate) expect: Expect,
    /// Variable name, JSONPath source, JSONPath.
    pub(crate) captures: Vec<(String, String, JsonPath)>,
    /// Indexes of earlier checks that must pass first (`needs`, and the
    /// checks that capture the variables this one uses).
    pub(crate) needs: Vec<usize>,
    pub(crate) retries: u32,
    pub(crate) interval: Duration,
    pub(crate) timeout: Option<Duration>,
}

impl Check {
    /// The check's name, unique in its suite.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The HTTP method.
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The path template as written (`/memories/search?q={{nonce}}`).
    pub fn path(&self) -> &str {
        self.path.source()
    }

    /// Whether the tenant's token is sent.
    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// Extra attempts after a failing one.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The pause between attempts.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The check's own timeout per attempt, if it sets one (otherwise
    /// [`crate::HttpOptions::default_timeout`] applies).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// What the check expects, with placeholders as written
    /// (`status 200 and $.subsystems is an object`).
    pub fn expectation(&self) -> String {
        self.describe(|t| t.source().to_string(), |j| j.render(&HashMap::new()))
    }

    pub(crate) fn describe(
        &self,
        text: impl Fn(&Template) -> String,
        json: impl Fn(&JsonTemplate) -> Value,
    ) -> String {
        let status: Vec<String> = self.expect.status.iter().map(ToString::to_string).collect();
        let mut parts = vec![format!("status {}", status.join(" or "))];
        for e in &self.expect.json {
            let subject = if e.source == "$" {
                "body".to_string()
            } else {
                e.source.clone()
            };
            if !e.exists {
                parts.push(format!("{subject} is absent"));
                continue;
            }
            let mut said = false;
            if let Some(ty) = e.ty {
                parts.push(format!("{subject} is {ty}"));
                said = true;
            }
            if let Some(v) = &e.equals {
                parts.push(format!("{subject} equals {}", json(v)));
                said = true;
            }
            if let Some(v) = &e.contains {
                parts.push(format!("{subject} contains {}", json(v)));
                said = true;
            }
            if !said {
                parts.push(format!("{subject} exists"));
            }
        }
        for t in &self.expect.body_contains {
            parts.push(format!("body contains {:?}", text(t)));
        }
        for (name, source, _) in &self.captures {
            parts.push(format!("{source} captured as `{name}`"));
        }
        parts.join(" and ")
    }

    /// Every variable the check uses.
    pub(crate) fn vars(&self) -> Vec<&str> {
        let mut vars: Vec<&str> = self.path.vars().collect();
        if let Some(b) = &self.body {
            vars.extend(b.vars());
        }
        for (_, h) in &self.headers {
            vars.extend(h.vars());
        }
        for e in &self.expect.json {
            for v in e.equals.iter().chain(&e.contains) {
                vars.extend(v.vars());
            }
        }
        for t in &self.expect.body_contains {
            vars.extend(t.vars());
        }
        vars.sort_unstable();
        vars.dedup();
        vars
    }
}

/// A parsed, validated smoke suite: checks in the order they run.
#[derive(Debug, Clone)]
pub struct Suite {
    name: String,
    checks: Vec<Check>,
}

impl Suite {
    /// A built-in suite by name (`workspace-server`).
    pub fn builtin(name: &str) -> Result<Self, UsageError> {
        match name {
            "workspace-server" => Self::from_toml(WORKSPACE_SERVER, "workspace-server (built-in)"),
            "workspace-server-readonly" => Self::from_toml(
                WORKSPACE_SERVER_READONLY,
                "workspace-server-readonly (built-in)",
            ),
            other => Err(UsageError::new(
                format!("suite `{other}`"),
                "is not a built-in suite",
                format!(
                    "use one of: {}{}; or write a suite file and pass it with `file = \"…\"` / --suite",
                    BUILTIN_SUITES.join(", "),
                    did_you_mean(other, BUILTIN_SUITES)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default(),
                ),
            )),
        }
    }

    /// Reads and parses a suite file.
    pub fn from_file(path: &Path) -> Result<Self, UsageError> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            UsageError::new(
                format!("suite file `{}`", path.display()),
                format!("cannot be read: {e}"),
                "check the path given as `[suite] file` or --suite",
            )
        })?;
        Self::from_toml(&source, &path.display().to_string())
    }

    /// Parses a suite. `origin` names the source in errors (a file path);
    /// every error names `origin:line:column` and how to fix it.
    pub fn from_toml(source: &str, origin: &str) -> Result<Self, UsageError> {
        let raw: RawSuite = toml::from_str(source).map_err(|e| toml_error(origin, source, &e))?;
        let cx = Cx { origin, source };
        let checks = validate(&cx, raw)?;
        Ok(Self {
            name: origin.to_string(),
            checks,
        })
    }

    /// Where the suite came from (a path, or `workspace-server (built-in)`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checks, in the order they run.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Whether any check uses `{{sha}}`: such a suite needs a sha to run
    /// (`canary smoke --sha`).
    pub fn uses_sha(&self) -> bool {
        self.checks.iter().any(|c| c.vars().contains(&"sha"))
    }

    /// Sets every check's retries and the pause between attempts (tests and
    /// `--retries`).
    #[must_use]
    pub fn with_retries(mut self, retries: u32, interval: Duration) -> Self {
        for c in &mut self.checks {
            c.retries = retries;
            c.interval = interval;
        }
        self
    }

    /// Sets every check's timeout per attempt.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        for c in &mut self.checks {
            c.timeout = Some(timeout);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_six_checks() {
        let s = Suite::builtin("workspace-server").unwrap();
        let names: Vec<&str> = s.checks().iter().map(Check::name).collect();
        assert_eq!(
            names,
            [
                "liveness",
                "workspaces",
                "memories-commit",
                "memories-search",
                "events",
                "liveness-requires-auth"
            ]
        );
        assert!(!s.uses_sha());
        assert_eq!(
            s.checks()[0].expectation(),
            "status 200 and $.subsystems is an object"
        );
        assert_eq!(
            s.checks()[1].expectation(),
            "status 200 and body is an array"
        );
        assert_eq!(s.checks()[5].auth(), Auth::None);
        assert_eq!(s.checks()[5].expectation(), "status 401");
        let e = Suite::builtin("workspace-servr").unwrap_err();
        assert!(
            e.fix().contains("did you mean `workspace-server`"),
            "{}",
            e.fix()
        );
    }
}
