//! The suite file format as deserialized, and errors that name
//! `origin:line:column`.

use std::collections::BTreeMap;
use std::ops::Range;

use canary_core::UsageError;
use serde::Deserialize;
use toml::Spanned;

// Every value keeps its span, so validation can name the line and column
// of a bad one.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSuite {
    #[serde(default)]
    pub(super) check: Vec<Spanned<RawCheck>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub(super) name: Spanned<String>,
    pub(super) method: Option<Spanned<String>>,
    pub(super) path: Spanned<String>,
    pub(super) auth: Option<Spanned<String>>,
    pub(super) body: Option<Spanned<toml::Value>>,
    pub(super) headers: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub(super) expect: Option<RawExpect>,
    pub(super) capture: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub(super) needs: Option<Vec<Spanned<String>>>,
    pub(super) retries: Option<Spanned<u32>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub(super) status: Option<Spanned<toml::Value>>,
    pub(super) json: Option<Vec<Spanned<RawJsonExpect>>>,
    pub(super) body_contains: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJsonExpect {
    pub(super) path: Spanned<String>,
    pub(super) exists: Option<Spanned<bool>>,
    #[serde(rename = "type")]
    pub(super) ty: Option<Spanned<String>>,
    pub(super) equals: Option<Spanned<toml::Value>>,
    pub(super) contains: Option<Spanned<toml::Value>>,
}

// ---------------------------------------------------------------------------
// Errors with positions.

pub(super) struct Cx<'a> {
    pub(super) origin: &'a str,
    pub(super) source: &'a str,
}

impl Cx<'_> {
    pub(super) fn err(
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

pub(super) fn toml_error(origin: &str, source: &str, e: &toml::de::Error) -> UsageError {
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
pub(super) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_columns() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }

    #[test]
    fn distances() {
        assert_eq!(strsim::levenshtein("nmae", "name"), 2);
        assert_eq!(
            did_you_mean("nmae", &["name", "method", "path"]),
            Some("name")
        );
        assert_eq!(did_you_mean("zzzzzz", &["name", "path"]), None);
    }
}
