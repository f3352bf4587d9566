//! `{{name}}` templates in paths, headers, bodies and expectations.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The values of a run's variables: `nonce`, `sha` and captured names.
/// Captured values keep their JSON type: in a JSON body or expectation, a
/// string that is exactly one placeholder (`"{{id}}"`) becomes the value
/// itself (the number 7, not the string "7"); in text, non-strings render
/// as JSON.
pub(crate) type Vars = HashMap<String, Value>;

fn text(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(String),
}

/// A string with `{{name}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    source: String,
    parts: Vec<Part>,
}

/// Whether a name may be a variable: letters, digits, `_` and `-`, not
/// starting with a digit or `-`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Template {
    /// Parses `source`; the error is the problem, for a usage error.
    pub(crate) fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!(
                    "has `{{{{` without a closing `}}}}` in `{}`",
                    source.escape_debug()
                ));
            };
            let name = after[..close].trim();
            if !is_var_name(name) {
                return Err(format!(
                    "has an invalid placeholder `{{{{{}}}}}` in `{}`",
                    &after[..close],
                    source.escape_debug()
                ));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The variables it uses, in order, with repeats.
    pub(crate) fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Renders the template; a missing variable renders as the placeholder
    /// (callers check variables before rendering). With `encode`, values are
    /// percent-encoded (for paths and query strings).
    pub(crate) fn render(&self, vars: &Vars, encode: bool) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Var(name) => match vars.get(name) {
                    Some(v) if encode => percent_encode(&text(v), &mut out),
                    Some(v) => out.push_str(&text(v)),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                },
            }
        }
        out
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A JSON value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonTemplate {
    String(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
    Literal(Value),
}

impl JsonTemplate {
    /// Templates every string of `value`.
    pub(crate) fn from_value(value: Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => Self::String(Template::parse(&s)?),
            Value::Array(items) => Self::Array(
                items
                    .into_iter()
                    .map(Self::from_value)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Self::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k, Self::from_value(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => Self::Literal(other),
        })
    }

    /// Every variable used, with repeats.
    pub(crate) fn vars(&self) -> Vec<&str> {
        match self {
            Self::String(t) => t.vars().collect(),
            Self::Array(items) => items.iter().flat_map(Self::vars).collect(),
            Self::Object(entries) => entries.iter().flat_map(|(_, v)| v.vars()).collect(),
            Self::Literal(_) => Vec::new(),
        }
    }

    /// The value with variables substituted.
    pub(crate) fn render(&self, vars: &Vars) -> Value {
        match self {
            Self::String(t) => match t.parts.as_slice() {
                [Part::Var(name)] if vars.contains_key(name) => vars[name].clone(),
                _ => Value::String(t.render(vars, false)),
            },
            Self::Array(items) => Value::Array(items.iter().map(|i| i.render(vars)).collect()),
            Self::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.render(vars)))
                    .collect::<Map<_, _>>(),
            ),
            Self::Literal(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("/memories/search?q=canary-smoke-{{ nonce }}&x={{id}}").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["nonce", "id"]);
        let vars: Vars = [("nonce", "ab12"), ("id", "a b/c")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect();
        assert_eq!(
            t.render(&vars, true),
            "/memories/search?q=canary-smoke-ab12&x=a%20b%2Fc"
        );
        assert_eq!(
            t.render(&vars, false),
            "/memories/search?q=canary-smoke-ab12&x=a b/c"
        );
        assert_eq!(Template::parse("plain").unwrap().vars().count(), 0);
    }

    #[test]
    fn rejects_bad_placeholders() {
        assert!(Template::parse("x {{nonce")
            .unwrap_err()
            .contains("closing"));
        assert!(Template::parse("{{}}").unwrap_err().contains("invalid"));
        assert!(Template::parse("{{a b}}").unwrap_err().contains("invalid"));
        assert!(Template::parse("{{9x}}").is_err());
    }

    #[test]
    fn json_templates() {
        let v = serde_json::json!({"content": "c-{{nonce}}", "n": "{{n}}", "tags": ["{{sha}}"]});
        let t = JsonTemplate::from_value(v).unwrap();
        let mut vars = t.vars();
        vars.sort_unstable();
        assert_eq!(vars, ["n", "nonce", "sha"]);
        let vars: Vars = [
            ("nonce", Value::from(1)),
            ("sha", Value::from("abc")),
            ("n", Value::from(7)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            t.render(&vars),
            serde_json::json!({"content": "c-1", "n": 7, "tags": ["abc"]})
        );
    }
}
