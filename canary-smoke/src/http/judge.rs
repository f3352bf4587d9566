//! How an answer is judged against a check, and how what a tenant said is
//! quoted in a result: pure functions of the answer, no client, so the
//! fuzz targets call them directly.

use std::fmt::Write as _;

use serde_json::Value;

use crate::suite::{Check, JsonExpect, JsonType};
use crate::template::Vars;

/// How many characters of a response body a failure quotes.
const BODY_SNIPPET_CHARS: usize = 300;

/// How one attempt ended.
pub(super) enum Attempt {
    Passed(Vec<(String, Value)>),
    /// The tenant answered wrong: the problems, and what it answered.
    Failed(String),
    /// No verdict for a reason of ours (a token or header that cannot be
    /// sent).
    NoAnswer(String),
    /// No answer: a transport error or a timeout. The tenant's later checks
    /// are not tried.
    Unreachable(String),
}

/// Replaces every occurrence of the token with `***`.
pub(super) fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "***")
    }
}

/// The body with every occurrence of the token replaced by `***`.
pub(super) fn scrub(body: Vec<u8>, token: &str) -> Vec<u8> {
    let needle = token.as_bytes();
    if needle.is_empty() || !body.windows(needle.len()).any(|w| w == needle) {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(needle) {
            out.extend_from_slice(b"***");
            i += needle.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// A body for a failure message: control characters blanked, truncated.
pub(super) fn snippet(body: &[u8], truncated_at_limit: bool) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == BODY_SNIPPET_CHARS {
            let _ = write!(out, "… ({} bytes)", body.len());
            return out;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    if truncated_at_limit {
        out.push_str("… (over the size limit)");
    }
    if out.trim().is_empty() {
        "(empty)".to_string()
    } else {
        out
    }
}

/// Numbers compare by value (`1` equals `1.0`); everything else exactly.
/// Two integers compare exactly: as `f64`, integers above 2^53 that differ
/// would be equal.
fn json_eq(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => {
            l == r
                || ((l.is_f64() || r.is_f64())
                    && matches!((l.as_f64(), r.as_f64()), (Some(lf), Some(rf))
                        if (lf - rf).abs() <= f64::EPSILON * lf.abs().max(1.0)))
        }
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(k, v)| r.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => left == right,
    }
}

fn json_contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::String(h), Value::String(n)) => h.contains(n.as_str()),
        (Value::Array(items), n) => items.iter().any(|i| json_eq(i, n)),
        (Value::Object(map), Value::String(key)) => map.contains_key(key),
        _ => false,
    }
}

pub(super) fn short_json(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 80 {
        let mut t: String = s.chars().take(80).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// The problems with `body` against one `expect.json` entry, if any.
fn check_json(e: &JsonExpect, body: &Value, vars: &Vars) -> Option<String> {
    let nodes = e.path.query(body).all();
    let subject = if e.source == "$" {
        "body"
    } else {
        e.source.as_str()
    };
    if !e.exists {
        return (!nodes.is_empty()).then(|| format!("{subject} exists ({})", short_json(nodes[0])));
    }
    if nodes.is_empty() {
        return Some(format!("{subject} is missing"));
    }
    // Several nodes are compared as the array of them.
    let value = if nodes.len() == 1 {
        nodes[0].clone()
    } else {
        Value::Array(nodes.iter().map(|v| (*v).clone()).collect())
    };
    if let Some(ty) = e.ty {
        if let Some(bad) = nodes.iter().find(|v| JsonType::of(v) != ty) {
            return Some(format!(
                "{subject} is {} ({})",
                JsonType::of(bad),
                short_json(bad)
            ));
        }
    }
    if let Some(expected) = &e.equals {
        let expected = expected.render(vars);
        if !json_eq(&value, &expected) {
            return Some(format!("{subject} is {}", short_json(&value)));
        }
    }
    if let Some(needle) = &e.contains {
        let needle = needle.render(vars);
        if !json_contains(&value, &needle) {
            return Some(format!(
                "{subject} does not contain {} ({})",
                short_json(&needle),
                short_json(&value)
            ));
        }
    }
    None
}

/// Judges one answer to `check`: status first, then `expect.json` and
/// captures, then `expect.body_contains`. `over` says the body was cut at
/// `max_body_bytes`.
pub(super) fn judge(
    check: &Check,
    status: u16,
    body: &[u8],
    over: bool,
    max_body_bytes: usize,
    vars: &Vars,
) -> Attempt {
    if !check.expect.status.iter().any(|s| s.matches(status)) {
        // A wrong status says it all; what the body lacks is noise.
        return Attempt::Failed(format!("status {status}, body: {}", snippet(body, over)));
    }
    let mut problems = Vec::new();
    let wants_json = !check.expect.json.is_empty() || !check.captures.is_empty();
    let mut captures = Vec::new();
    if wants_json {
        if over {
            problems.push(format!(
                "body is larger than the limit of {max_body_bytes} bytes"
            ));
        } else {
            match serde_json::from_slice::<Value>(body) {
                Err(e) => problems.push(format!("body is not JSON ({e})")),
                Ok(json) => {
                    for e in &check.expect.json {
                        problems.extend(check_json(e, &json, vars));
                    }
                    for (name, source, path) in &check.captures {
                        match path.query(&json).all().first() {
                            Some(v) => captures.push((name.clone(), (*v).clone())),
                            None => {
                                problems
                                    .push(format!("{source} (captured as `{name}`) is missing"));
                            }
                        }
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    for t in &check.expect.body_contains {
        let needle = t.render(vars, false);
        if !text.contains(&needle) {
            if over {
                problems.push(format!(
                    "body does not contain {needle:?} within the first {max_body_bytes} bytes"
                ));
            } else {
                problems.push(format!("body does not contain {needle:?}"));
            }
        }
    }
    if problems.is_empty() {
        return Attempt::Passed(captures);
    }
    let mut actual = problems.join("; ");
    let _ = write!(actual, "; status {status}, body: {}", snippet(body, over));
    Attempt::Failed(actual)
}

/// How an answer is judged, without a client (for the fuzz targets): the
/// captured values when every expectation holds, else the failure message.
pub(crate) fn judge_answer(
    check: &Check,
    status: u16,
    body: &[u8],
    over: bool,
    max_body_bytes: usize,
    vars: &Vars,
) -> Result<Vec<(String, Value)>, String> {
    match judge(check, status, body, over, max_body_bytes, vars) {
        Attempt::Passed(captures) => Ok(captures),
        Attempt::Failed(problems)
        | Attempt::NoAnswer(problems)
        | Attempt::Unreachable(problems) => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snippets_are_bounded_and_clean() {
        let long = "x".repeat(1000);
        let s = snippet(long.as_bytes(), false);
        assert!(s.starts_with(&"x".repeat(BODY_SNIPPET_CHARS)));
        assert!(s.ends_with("(1000 bytes)"), "{s}");
        assert_eq!(snippet(b"a\x1b[31mb\n", false), "a [31mb ");
        assert_eq!(snippet(b"", false), "(empty)");
        assert_eq!(redact("Bearer s3cret!", "s3cret"), "Bearer ***!");
        assert_eq!(redact("x", ""), "x");
        // An echoed token straddling the snippet's cut must not leave a prefix.
        let token = "tok-0123456789";
        let body = format!("{}{token}", "y".repeat(BODY_SNIPPET_CHARS - 4)).into_bytes();
        let s = snippet(&scrub(body, token), false);
        assert!(!s.contains("tok-"), "{s}");
        assert_eq!(scrub(b"a tok b tok".to_vec(), "tok"), b"a *** b ***");
    }

    #[test]
    fn json_comparisons() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": [1, "x"]}), &json!({"a": [1.0, "x"]})));
        assert!(!json_eq(&json!("1"), &json!(1)));
        assert!(json_contains(&json!("abc"), &json!("b")));
        assert!(json_contains(&json!([1, 2]), &json!(2)));
        assert!(json_contains(&json!({"k": 1}), &json!("k")));
        assert!(!json_contains(&json!(5), &json!(5)));
    }

    /// Found by `cargo fuzz run json_expect`: an `equals` integer a few
    /// units away from the body's 7290609220566515194 passed, as both round
    /// to the same `f64`.
    #[test]
    fn big_integers_compare_exactly() {
        assert!(!json_eq(
            &json!(7_290_609_220_566_515_194_i64),
            &json!(7_290_609_220_566_515_195_i64)
        ));
        assert!(!json_eq(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992_u64)
        ));
        assert!(!json_eq(
            &json!(-9_007_199_254_740_993_i64),
            &json!(-9_007_199_254_740_992_i64)
        ));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(json_eq(&json!(3), &json!(3.0)));
        assert!(json_eq(&json!(-3.0), &json!(-3)));
    }
}
