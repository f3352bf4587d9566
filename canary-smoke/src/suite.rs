//! Suite files: the TOML format, its validation, and the built-in suites.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use canary_core::UsageError;
use reqwest::header::HeaderName;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use serde_json_path::JsonPath;
use toml::Spanned;

use crate::template::{is_var_name, JsonTemplate, Template};

/// The built-in `workspace-server` suite, as shipped in
/// `canary-smoke/suites/workspace-server.toml` (and, identical, in
/// `examples/suites/`).
pub const WORKSPACE_SERVER: &str = include_str!("../suites/workspace-server.toml");

/// The names of the built-in suites.
pub const BUILTIN_SUITES: &[&str] = &["workspace-server"];

/// Variables every suite may use.
const BUILTIN_VARS: &[&str] = &["nonce", "sha"];

const MAX_RETRIES: u32 = 20;
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const STATUS_FIX: &str = "write `expect.status = 200`, `\"2xx\"`, or a list such as `[200, 204]`";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

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

// ---------------------------------------------------------------------------
// The file format, as deserialized.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    #[serde(default)]
    check: Vec<Spanned<RawCheck>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Spanned<String>,
    method: Option<Spanned<String>>,
    path: Spanned<String>,
    auth: Option<Spanned<String>>,
    body: Option<Spanned<toml::Value>>,
    headers: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    expect: Option<RawExpect>,
    capture: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    needs: Option<Vec<Spanned<String>>>,
    retries: Option<Spanned<u32>>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    status: Option<Spanned<toml::Value>>,
    json: Option<Vec<Spanned<RawJsonExpect>>>,
    body_contains: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJsonExpect {
    path: Spanned<String>,
    exists: Option<Spanned<bool>>,
    #[serde(rename = "type")]
    ty: Option<Spanned<String>>,
    equals: Option<Spanned<toml::Value>>,
    contains: Option<Spanned<toml::Value>>,
}

// ---------------------------------------------------------------------------
// Errors with positions.

struct Cx<'a> {
    origin: &'a str,
    source: &'a str,
}

impl Cx<'_> {
    fn err(
        &self,
        span: Range<usize>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> UsageError {
        let (line, column) = line_column(self.source, span.start);
        UsageError::new(
            format!("suite {}:{line}:{column}", self.origin),
            problem,
            fix,
        )
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn toml_error(origin: &str, source: &str, e: &toml::de::Error) -> UsageError {
    let (line, column) = e
        .span()
        .map_or((1, 1), |span| line_column(source, span.start));
    let input = format!("suite {origin}:{line}:{column}");
    let message = e.message().trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let known: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let fix = match did_you_mean(field, &known) {
            Some(s) => format!("did you mean `{s}`? Allowed here: {}", known.join(", ")),
            None if known.is_empty() => "remove it".to_string(),
            None => format!("remove it; allowed here: {}", known.join(", ")),
        };
        return UsageError::new(input, format!("has an unknown key `{field}`"), fix);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return UsageError::new(
            input,
            format!("is missing `{field}`"),
            format!("add `{field} = …`; every [[check]] needs `name` and `path`"),
        );
    }
    let first = message.lines().next().unwrap_or(message);
    UsageError::new(
        input,
        format!("is not a valid suite: {first}"),
        "see the suite format in canary-smoke's README (each check is a [[check]] table)",
    )
}

/// The closest candidate, if it is close enough to be a likely typo.
fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------------------
// Validation.

fn validate(cx: &Cx<'_>, raw: RawSuite) -> Result<Vec<Check>, UsageError> {
    if raw.check.is_empty() {
        return Err(cx.err(
            0..0,
            "has no checks",
            "add at least one [[check]] table with `name` and `path`",
        ));
    }
    let mut checks: Vec<Check> = Vec::new();
    // Variable name → index of the check that captures it.
    let mut captured: HashMap<String, usize> = HashMap::new();
    for raw_check in raw.check {
        let span = raw_check.span();
        let check = validate_check(cx, raw_check.into_inner(), span, &checks, &captured)?;
        for (name, _, _) in &check.captures {
            captured.insert(name.clone(), checks.len());
        }
        checks.push(check);
    }
    Ok(checks)
}

#[allow(clippy::needless_pass_by_value)]
fn validate_check(
    cx: &Cx<'_>,
    raw: RawCheck,
    span: Range<usize>,
    earlier: &[Check],
    captured: &HashMap<String, usize>,
) -> Result<Check, UsageError> {
    let name = raw.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(cx.err(
            raw.name.span(),
            "has an empty check name",
            "give every check a name",
        ));
    }
    if earlier.iter().any(|c| c.name == name) {
        return Err(cx.err(
            raw.name.span(),
            format!("has a second check named `{name}`"),
            "give every check a unique name; reports identify checks by name",
        ));
    }
    let at = |s: Range<usize>, problem: String, fix: &str| {
        cx.err(s, format!("check `{name}`: {problem}"), fix.to_string())
    };

    let method = match &raw.method {
        None => Method::GET,
        Some(m) => {
            let upper = m.get_ref().to_ascii_uppercase();
            if !METHODS.contains(&upper.as_str()) {
                return Err(at(
                    m.span(),
                    format!("has an unknown method `{}`", m.get_ref()),
                    &format!("use one of {}", METHODS.join(", ")),
                ));
            }
            Method::from_bytes(upper.as_bytes()).unwrap_or(Method::GET)
        }
    };

    let path_src = raw.path.get_ref();
    if !path_src.starts_with('/') {
        return Err(at(
            raw.path.span(),
            format!("has a path `{path_src}` that does not start with `/`"),
            "write the path relative to the tenant's base URL, e.g. `/admin/liveness`",
        ));
    }
    if path_src.contains('#') || path_src.chars().any(char::is_whitespace) {
        return Err(at(
            raw.path.span(),
            format!(
                "has a path `{}` with a space or `#`",
                path_src.escape_debug()
            ),
            "percent-encode the path (`%20`); placeholders are encoded for you",
        ));
    }
    let path = Template::parse(path_src).map_err(|p| {
        at(
            raw.path.span(),
            format!("path {p}"),
            "write placeholders as `{{name}}`",
        )
    })?;

    let auth =
        match &raw.auth {
            None => Auth::Tenant,
            Some(a) => match a.get_ref().as_str() {
                "tenant" => Auth::Tenant,
                "none" => Auth::None,
                other => return Err(at(
                    a.span(),
                    format!("has an unknown auth `{other}`"),
                    "use `auth = \"tenant\"` (send the tenant's admin token) or `auth = \"none\"`",
                )),
            },
        };

    let body = match raw.body {
        None => None,
        Some(b) => {
            let s = b.span();
            let json = toml_to_json(b.into_inner()).map_err(|p| {
                at(
                    s.clone(),
                    format!("body {p}"),
                    "write the body as a TOML table, e.g. `body = { content = \"x\" }`",
                )
            })?;
            Some(
                JsonTemplate::from_value(json)
                    .map_err(|p| at(s, format!("body {p}"), "write placeholders as `{{name}}`"))?,
            )
        }
    };

    let mut headers = Vec::new();
    for (k, v) in raw.headers.unwrap_or_default() {
        let header = HeaderName::from_bytes(k.get_ref().as_bytes()).map_err(|_| {
            at(
                k.span(),
                format!("has an invalid header name `{}`", k.get_ref()),
                "header names are letters, digits and `-`",
            )
        })?;
        if v.get_ref().chars().any(char::is_control) {
            return Err(at(
                v.span(),
                format!("header `{header}` has a control character"),
                "remove line breaks and control characters from header values",
            ));
        }
        let t = Template::parse(v.get_ref()).map_err(|p| {
            at(
                v.span(),
                format!("header `{header}` {p}"),
                "write placeholders as `{{name}}`",
            )
        })?;
        headers.push((header, t));
    }

    let expect = validate_expect(cx, &name, raw.expect)?;

    let mut captures = Vec::new();
    for (k, v) in raw.capture.unwrap_or_default() {
        let var = k.get_ref();
        if !is_var_name(var) {
            return Err(at(
                k.span(),
                format!("captures into an invalid name `{var}`"),
                "use letters, digits, `_` and `-`, starting with a letter",
            ));
        }
        if BUILTIN_VARS.contains(&var.as_str()) {
            return Err(at(
                k.span(),
                format!("captures into `{var}`, a built-in variable"),
                "choose another name; `nonce` and `sha` are set by canary",
            ));
        }
        if let Some(i) = captured.get(var.as_str()) {
            return Err(at(
                k.span(),
                format!(
                    "captures `{var}`, already captured by `{}`",
                    earlier[*i].name
                ),
                "give each captured variable its own name",
            ));
        }
        let path = parse_json_path(v.get_ref()).map_err(|p| {
            at(
                v.span(),
                format!("capture `{var}`: {p}"),
                "write an RFC 9535 JSONPath such as `$.id` or `$.items[0].id`",
            )
        })?;
        captures.push((var.clone(), v.get_ref().clone(), path));
    }

    let mut needs = Vec::new();
    for n in raw.needs.unwrap_or_default() {
        if let Some(i) = earlier.iter().position(|c| c.name == *n.get_ref()) {
            needs.push(i);
            continue;
        }
        let names: Vec<&str> = earlier.iter().map(|c| c.name.as_str()).collect();
        let hint = did_you_mean(n.get_ref(), &names)
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        return Err(at(
            n.span(),
            format!("needs `{}`, which is not an earlier check", n.get_ref()),
            &format!(
                "{hint}`needs` names checks above this one: {}",
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }

    let retries = raw.retries.as_ref().map_or(0, |r| *r.get_ref());
    if retries > MAX_RETRIES {
        let s = raw.retries.as_ref().map_or(span.clone(), Spanned::span);
        return Err(at(
            s,
            format!("has {retries} retries"),
            &format!("use at most {MAX_RETRIES}"),
        ));
    }
    let interval = match &raw.interval {
        None => DEFAULT_INTERVAL,
        Some(i) => parse_duration(i.get_ref()).map_err(|p| {
            at(
                i.span(),
                format!("interval {p}"),
                "write a duration such as `500ms`, `2s` or `1m`",
            )
        })?,
    };
    let timeout = match &raw.timeout {
        None => None,
        Some(t) => {
            let d = parse_duration(t.get_ref()).map_err(|p| {
                at(
                    t.span(),
                    format!("timeout {p}"),
                    "write a duration such as `10s`",
                )
            })?;
            if d.is_zero() {
                return Err(at(
                    t.span(),
                    "has a zero timeout".to_string(),
                    "write a duration such as `10s`",
                ));
            }
            Some(d)
        }
    };

    let mut check = Check {
        name: name.clone(),
        method,
        path,
        auth,
        body,
        headers,
        expect,
        captures,
        needs,
        retries,
        interval,
        timeout,
    };

    // Every variable must be built in or captured by an earlier check; the
    // capturing check becomes a dependency.
    let mut deps = Vec::new();
    for var in check.vars() {
        if BUILTIN_VARS.contains(&var) {
            continue;
        }
        if let Some(i) = captured.get(var) {
            deps.push(*i);
            continue;
        }
        let mut known: Vec<&str> = BUILTIN_VARS.to_vec();
        known.extend(captured.keys().map(String::as_str));
        known.sort_unstable();
        let own = check.captures.iter().any(|(n, _, _)| n == var);
        let fix = if own {
            format!("`{var}` is captured by this check; a value can only be used by later checks")
        } else {
            let hint = did_you_mean(var, &known)
                .map(|s| format!("did you mean `{{{{{s}}}}}`? "))
                .unwrap_or_default();
            let known: Vec<String> = known.iter().map(|k| format!("{{{{{k}}}}}")).collect();
            format!(
                "{hint}capture it in an earlier check (`capture = {{ {var} = \"$.path\" }}`); variables known here: {}",
                known.join(", ")
            )
        };
        return Err(at(
            span,
            format!("uses `{{{{{var}}}}}`, which no earlier check captures"),
            &fix,
        ));
    }
    check.needs.extend(deps);
    check.needs.sort_unstable();
    check.needs.dedup();
    Ok(check)
}

fn validate_expect(cx: &Cx<'_>, name: &str, raw: Option<RawExpect>) -> Result<Expect, UsageError> {
    let at = |s: Range<usize>, problem: String, fix: &str| {
        cx.err(s, format!("check `{name}`: {problem}"), fix.to_string())
    };
    let mut expect = Expect {
        status: Vec::new(),
        json: Vec::new(),
        body_contains: Vec::new(),
    };
    let Some(raw) = raw else {
        expect.status.push(StatusMatch::Class(2));
        return Ok(expect);
    };
    match raw.status {
        None => expect.status.push(StatusMatch::Class(2)),
        Some(s) => {
            let span = s.span();
            let values = match s.into_inner() {
                toml::Value::Array(items) => items,
                one => vec![one],
            };
            if values.is_empty() {
                return Err(at(
                    span,
                    "has an empty `expect.status` list".to_string(),
                    STATUS_FIX,
                ));
            }
            for v in values {
                let m = match &v {
                    toml::Value::Integer(n) if (100..=599).contains(n) => {
                        StatusMatch::Exact(u16::try_from(*n).unwrap_or(0))
                    }
                    toml::Value::String(s) => match parse_status(s) {
                        Some(m) => m,
                        None => {
                            return Err(at(
                                span,
                                format!("has an invalid `expect.status` {v}"),
                                STATUS_FIX,
                            ))
                        }
                    },
                    _ => {
                        return Err(at(
                            span,
                            format!("has an invalid `expect.status` {v}"),
                            STATUS_FIX,
                        ))
                    }
                };
                expect.status.push(m);
            }
        }
    }
    for e in raw.json.unwrap_or_default() {
        let span = e.span();
        let e = e.into_inner();
        let source = e.path.get_ref().clone();
        let path = parse_json_path(&source).map_err(|p| {
            at(
                e.path.span(),
                format!("`expect.json` {p}"),
                "write an RFC 9535 JSONPath such as `$.subsystems` or `$[0].id`",
            )
        })?;
        let exists = e.exists.as_ref().is_none_or(|x| *x.get_ref());
        let ty = match &e.ty {
            None => None,
            Some(t) => Some(JsonType::parse(t.get_ref()).ok_or_else(|| {
                at(
                    t.span(),
                    format!("has an unknown JSON type `{}`", t.get_ref()),
                    &format!("use one of {}", JsonType::NAMES.join(", ")),
                )
            })?),
        };
        let json_value = |v: Option<Spanned<toml::Value>>,
                          what: &str|
         -> Result<Option<JsonTemplate>, UsageError> {
            let Some(v) = v else { return Ok(None) };
            let s = v.span();
            let json = toml_to_json(v.into_inner())
                .map_err(|p| at(s.clone(), format!("`{what}` {p}"), "write a TOML value"))?;
            Ok(Some(JsonTemplate::from_value(json).map_err(|p| {
                at(
                    s,
                    format!("`{what}` {p}"),
                    "write placeholders as `{{name}}`",
                )
            })?))
        };
        let equals = json_value(e.equals, "equals")?;
        let contains = json_value(e.contains, "contains")?;
        if !exists && (ty.is_some() || equals.is_some() || contains.is_some()) {
            return Err(at(
                span,
                format!("says {source} does not exist and also what it holds"),
                "use `exists = false` alone, or drop it",
            ));
        }
        expect.json.push(JsonExpect {
            source,
            path,
            exists,
            ty,
            equals,
            contains,
        });
    }
    if let Some(b) = raw.body_contains {
        let span = b.span();
        let items = match b.into_inner() {
            toml::Value::String(s) => vec![s],
            toml::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s),
                    other => Err(at(
                        span.clone(),
                        format!("has a non-string `expect.body_contains` item {other}"),
                        "write strings",
                    )),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(at(
                    span,
                    format!("has an invalid `expect.body_contains` {other}"),
                    "write a string or a list of strings",
                ))
            }
        };
        for s in items {
            expect.body_contains.push(Template::parse(&s).map_err(|p| {
                at(
                    span.clone(),
                    format!("`expect.body_contains` {p}"),
                    "write placeholders as `{{name}}`",
                )
            })?);
        }
    }
    if expect.status.is_empty() {
        expect.status.push(StatusMatch::Class(2));
    }
    Ok(expect)
}

fn parse_status(s: &str) -> Option<StatusMatch> {
    let s = s.trim();
    if let Some(class) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
        let c: u16 = class.parse().ok()?;
        return (1..=5).contains(&c).then_some(StatusMatch::Class(c));
    }
    let n: u16 = s.parse().ok()?;
    (100..=599).contains(&n).then_some(StatusMatch::Exact(n))
}

fn parse_json_path(source: &str) -> Result<JsonPath, String> {
    JsonPath::parse(source).map_err(|e| {
        format!(
            "has an invalid JSONPath `{source}` at character {}: {}",
            e.position() + 1,
            e.message()
        )
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration ({e})"))
}

fn toml_to_json(value: toml::Value) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("has {f}, which JSON cannot represent"))?,
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            return Err(format!(
                "has a TOML date {d}; JSON has no dates, quote it as a string"
            ))
        }
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(toml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(
            t.into_iter()
                .map(|(k, v)| Ok((k, toml_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
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

    #[test]
    fn line_columns() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("nmae", "name"), 2);
        assert_eq!(
            did_you_mean("nmae", &["name", "method", "path"]),
            Some("name")
        );
        assert_eq!(did_you_mean("zzzzzz", &["name", "path"]), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("2xx"), Some(StatusMatch::Class(2)));
        assert_eq!(parse_status("404"), Some(StatusMatch::Exact(404)));
        assert_eq!(parse_status("6xx"), None);
        assert_eq!(parse_status("99"), None);
        assert!(StatusMatch::Class(2).matches(204));
        assert!(!StatusMatch::Class(2).matches(301));
    }
}
