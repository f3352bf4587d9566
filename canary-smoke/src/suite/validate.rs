//! Validation: from the deserialized file to checks that are known to be
//! well formed, each error naming where it is and how to fix it.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use canary_core::UsageError;
use reqwest::header::HeaderName;
use reqwest::Method;
use serde_json::Value;
use serde_json_path::JsonPath;
use toml::Spanned;

use super::format::{did_you_mean, Cx, RawCheck, RawExpect, RawSuite};
use super::{Auth, Check, Expect, JsonExpect, JsonType, StatusMatch};
use crate::template::{is_var_name, JsonTemplate, Template};

/// Variables every suite may use.
const BUILTIN_VARS: &[&str] = &["nonce", "sha"];

const MAX_RETRIES: u32 = 20;
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const STATUS_FIX: &str = "write `expect.status = 200`, `\"2xx\"`, or a list such as `[200, 204]`";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn validate(cx: &Cx<'_>, raw: RawSuite) -> Result<Vec<Check>, UsageError> {
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
    fn statuses() {
        assert_eq!(parse_status("2xx"), Some(StatusMatch::Class(2)));
        assert_eq!(parse_status("404"), Some(StatusMatch::Exact(404)));
        assert_eq!(parse_status("6xx"), None);
        assert_eq!(parse_status("99"), None);
        assert!(StatusMatch::Class(2).matches(204));
        assert!(!StatusMatch::Class(2).matches(301));
    }
}
