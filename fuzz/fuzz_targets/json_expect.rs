//! JSONPath expectations (`[[check.expect.json]]` and `capture`), judged
//! against a response the way a suite run judges it
//! (`canary_smoke::fuzzing::judge`, the code behind every attempt).
//!
//! A two-check suite is generated: the first captures `v`, the second holds
//! the expectation under test, whose `equals` / `contains` may use
//! `{{v}}`. The second is judged against a generated or arbitrary body, a
//! status, and `v` bound to a generated value. Properties:
//!
//! - nothing panics: JSONPath parsing (any text, or generated paths with
//!   extreme indexes and slices, filters, functions and regexes), querying
//!   any JSON, comparing, rendering templates, formatting the failure;
//! - a suite that does not parse fails with a `line:column`;
//! - the verdict agrees with an independent evaluation: a wrong status
//!   fails on the status alone; a body over the limit or not JSON fails;
//!   `exists = false` passes iff the path selects nothing; otherwise the
//!   path must select something, every selected node must have the `type`,
//!   and `equals = "{{v}}"` passes when `v` is what the path selects (the
//!   node, or the array of nodes); an integer `equals` passes iff it is
//!   exactly the selected integer; `contains` passes for a member, a key or
//!   a substring of what is selected; a capture yields the first node.
#![no_main]

use std::collections::HashMap;
use std::fmt::Write as _;

use arbitrary::Arbitrary;
use canary_smoke::fuzzing::judge;
use canary_smoke::Suite;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json_path::JsonPath;

const MAX_BODY: usize = 1 << 20;

#[derive(Arbitrary, Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn value(&self) -> Value {
        match self {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Int(i) => Value::from(*i),
            J::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            J::Str(s) => Value::String(s.clone()),
            J::Arr(items) => Value::Array(items.iter().map(J::value).collect()),
            J::Obj(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value()))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Literal {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Literal {
    fn jsonpath(&self) -> String {
        match self {
            Literal::Int(i) => i.to_string(),
            Literal::Float(f) if f.is_finite() => format!("{f:?}"),
            Literal::Float(_) => "null".to_string(),
            Literal::Bool(b) => b.to_string(),
            Literal::Str(s) => quote_single(s),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Arbitrary, Debug)]
enum Filter {
    Exists(String),
    Compare(String, Op, Literal),
    Length(String, Op, i64),
    Count(Op, i64),
    Match(String, String),
    Search(String, String),
    ValueOf(String, Literal),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    fn render(&self, out: &mut String) {
        let op = |o: &Op| match o {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        };
        match self {
            Filter::Exists(n) => {
                let _ = write!(out, "@[{}]", quote_single(n));
            }
            Filter::Compare(n, o, l) => {
                let _ = write!(out, "@[{}] {} {}", quote_single(n), op(o), l.jsonpath());
            }
            Filter::Length(n, o, i) => {
                let _ = write!(out, "length(@[{}]) {} {i}", quote_single(n), op(o));
            }
            Filter::Count(o, i) => {
                let _ = write!(out, "count(@.*) {} {i}", op(o));
            }
            Filter::Match(n, re) => {
                let _ = write!(out, "match(@[{}], {})", quote_single(n), quote_single(re));
            }
            Filter::Search(n, re) => {
                let _ = write!(out, "search(@[{}], {})", quote_single(n), quote_single(re));
            }
            Filter::ValueOf(n, l) => {
                let _ = write!(out, "value(@..[{}]) == {}", quote_single(n), l.jsonpath());
            }
            Filter::Not(f) => {
                out.push_str("!(");
                f.render(out);
                out.push(')');
            }
            Filter::And(a, b) | Filter::Or(a, b) => {
                out.push('(');
                a.render(out);
                out.push_str(if matches!(self, Filter::And(..)) {
                    " && "
                } else {
                    " || "
                });
                b.render(out);
                out.push(')');
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Segment {
    Name(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Wildcard,
    Union(Vec<i64>),
    Filter(Filter),
    Descendant(Box<Segment>),
}

impl Segment {
    fn render(&self, out: &mut String) {
        match self {
            Segment::Name(n) => {
                let _ = write!(out, "[{}]", quote_single(n));
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Segment::Slice(a, b, c) => {
                let show = |x: &Option<i64>| x.map(|x| x.to_string()).unwrap_or_default();
                let _ = write!(out, "[{}:{}", show(a), show(b));
                if let Some(c) = c {
                    let _ = write!(out, ":{c}");
                }
                out.push(']');
            }
            Segment::Wildcard => out.push_str("[*]"),
            Segment::Union(items) if items.is_empty() => out.push_str("[0]"),
            Segment::Union(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                let _ = write!(out, "[{}]", items.join(","));
            }
            Segment::Filter(f) => {
                out.push_str("[?");
                f.render(out);
                out.push(']');
            }
            Segment::Descendant(inner) => {
                out.push_str("..");
                inner.render(out);
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PathSpec {
    Raw(String),
    Segments(Vec<Segment>),
}

impl PathSpec {
    fn render(&self) -> String {
        match self {
            PathSpec::Raw(s) => s.clone(),
            PathSpec::Segments(segments) => {
                let mut out = String::from("$");
                for s in segments {
                    s.render(&mut out);
                }
                out
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Body {
    Json(J),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Constraint {
    None,
    /// `equals = "{{v}}"` with `v` bound to what the path selects.
    EqualsSelected,
    /// `equals = "{{v}}"` with `v` bound to the generated value.
    EqualsVar,
    /// `contains` a member / key / substring of what the path selects.
    ContainsPart(u16),
    /// `equals = <literal>`, `contains = <literal>`.
    EqualsLiteral(Literal),
    ContainsLiteral(Literal),
    /// `equals = <the selected integer + delta>`: integers compare
    /// exactly, so this holds iff `delta == 0`.
    EqualsNearInt(i8),
}

#[derive(Arbitrary, Debug)]
enum TypeSpec {
    Fixed(u8),
    /// The type of the first node the path selects.
    OfSelected,
}

const TYPES: &[&str] = &["object", "array", "string", "number", "boolean", "null"];

#[derive(Arbitrary, Debug)]
struct Input {
    path: PathSpec,
    body: Body,
    exists: Option<bool>,
    ty: Option<TypeSpec>,
    constraint: Constraint,
    capture: Option<PathSpec>,
    expect_status: Option<u16>,
    /// `None`: the status the check expects, so the body is judged.
    status: Option<u16>,
    /// 255: the body was cut at the size limit (rare on purpose).
    over: u8,
    var: J,
}

fn quote_single(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn toml_literal(l: &Literal) -> String {
    match l {
        Literal::Int(i) => i.to_string(),
        Literal::Float(f) => toml::Value::Float(*f).to_string(),
        Literal::Bool(b) => b.to_string(),
        Literal::Str(s) => toml_str(s),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    }
}

/// A member, key or substring of `value` that `contains` must find.
fn part_of(value: &Value, pick: u16) -> Option<Value> {
    match value {
        Value::Array(items) if !items.is_empty() => {
            Some(items[usize::from(pick) % items.len()].clone())
        }
        Value::Object(map) if !map.is_empty() => map
            .keys()
            .nth(usize::from(pick) % map.len())
            .map(|k| Value::String(k.clone())),
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            let start = usize::from(pick) % (chars.len() + 1);
            let len = usize::from(pick / 7) % (chars.len() - start + 1);
            Some(Value::String(chars[start..start + len].iter().collect()))
        }
        _ => None,
    }
}

fuzz_target!(|input: Input| {
    let path = input.path.render();
    // Invalid statuses are `suite_toml`'s business.
    let expect_status = input.expect_status.map(|s| 100 + s % 500);
    let body = match &input.body {
        Body::Json(j) => serde_json::to_vec(&j.value()).unwrap(),
        Body::Raw(bytes) => bytes.clone(),
    };
    let parsed_body = serde_json::from_slice::<Value>(&body).ok();
    let parsed_path = JsonPath::parse(&path).ok();
    let nodes: Option<Vec<Value>> = match (&parsed_path, &parsed_body) {
        (Some(p), Some(b)) => Some(p.query(b).all().into_iter().cloned().collect()),
        _ => None,
    };
    let selected = nodes.as_ref().map(|n| {
        if n.len() == 1 {
            n[0].clone()
        } else {
            Value::Array(n.clone())
        }
    });

    let ty = input.ty.as_ref().map(|t| match (t, nodes.as_deref()) {
        (TypeSpec::OfSelected, Some([first, ..])) => type_name(first),
        (TypeSpec::OfSelected, _) => "object",
        (TypeSpec::Fixed(t), _) => TYPES[usize::from(*t) % TYPES.len()],
    });
    let mut var = input.var.value();
    let mut suite =
        String::from("[[check]]\nname = \"first\"\npath = \"/\"\ncapture = { v = \"$\" }\n\n");
    suite.push_str("[[check]]\nname = \"second\"\npath = \"/\"\n");
    if let Some(status) = expect_status {
        let _ = writeln!(suite, "expect.status = {status}");
    }
    if let Some(capture) = &input.capture {
        let _ = writeln!(suite, "capture = {{ w = {} }}", toml_str(&capture.render()));
    }
    let _ = writeln!(suite, "\n[[check.expect.json]]\npath = {}", toml_str(&path));
    if let Some(exists) = input.exists {
        let _ = writeln!(suite, "exists = {exists}");
    }
    if let Some(ty) = ty {
        let _ = writeln!(suite, "type = \"{ty}\"");
    }
    // Whether the constraint must hold; `None` when only "no panic" is known.
    let mut constraint_holds = Some(true);
    match &input.constraint {
        Constraint::None => {}
        Constraint::EqualsSelected => {
            suite.push_str("equals = \"{{v}}\"\n");
            if let Some(s) = &selected {
                var = s.clone();
            }
        }
        Constraint::EqualsVar => {
            suite.push_str("equals = \"{{v}}\"\n");
            constraint_holds = None;
        }
        Constraint::ContainsPart(pick) => {
            suite.push_str("contains = \"{{v}}\"\n");
            match selected.as_ref().and_then(|s| part_of(s, *pick)) {
                Some(part) => var = part,
                None => constraint_holds = None,
            }
        }
        Constraint::EqualsLiteral(l) => {
            let _ = writeln!(suite, "equals = {}", toml_literal(l));
            constraint_holds = None;
        }
        Constraint::ContainsLiteral(l) => {
            let _ = writeln!(suite, "contains = {}", toml_literal(l));
            constraint_holds = None;
        }
        Constraint::EqualsNearInt(delta) => {
            let near = selected
                .as_ref()
                .and_then(Value::as_i64)
                .and_then(|i| i.checked_add(i64::from(*delta)));
            let _ = writeln!(suite, "equals = {}", near.unwrap_or(0));
            constraint_holds = near.map(|_| *delta == 0);
        }
    }

    let suite_result = Suite::from_toml(&suite, "fuzz.toml");
    let suite = match suite_result {
        Ok(s) => s,
        Err(e) => {
            assert!(e.input().starts_with("suite fuzz.toml:"), "{e:?}");
            let (line, column) = e.input()["suite fuzz.toml:".len()..]
                .split_once(':')
                .unwrap_or_else(|| panic!("no line:column in {e:?}"));
            assert!(line.parse::<usize>().unwrap() >= 1 && column.parse::<usize>().unwrap() >= 1);
            // Every part generated here is valid but the paths, `exists =
            // false` next to a constraint, floats JSON cannot hold, and
            // literal strings with `{{`.
            let capture_ok = input
                .capture
                .as_ref()
                .is_none_or(|c| JsonPath::parse(&c.render()).is_ok());
            let conflict = input.exists == Some(false)
                && (ty.is_some() || !matches!(input.constraint, Constraint::None));
            let bad_float = matches!(
                &input.constraint,
                Constraint::EqualsLiteral(Literal::Float(f)) | Constraint::ContainsLiteral(Literal::Float(f))
                    if !f.is_finite()
            );
            let placeholder = matches!(
                &input.constraint,
                Constraint::EqualsLiteral(Literal::Str(s)) | Constraint::ContainsLiteral(Literal::Str(s))
                    if s.contains("{{")
            );
            assert!(
                parsed_path.is_none() || !capture_ok || conflict || bad_float || placeholder,
                "valid suite refused: {e:?}\n{suite}"
            );
            return;
        }
    };
    assert_eq!(suite.checks().len(), 2);
    let check = &suite.checks()[1];

    let vars: HashMap<String, Value> = [("v".to_string(), var.clone())].into_iter().collect();
    let status = input.status.unwrap_or(expect_status.unwrap_or(200));
    let over = input.over == u8::MAX;
    let verdict = judge(check, status, &body, over, MAX_BODY, &vars);

    // The independent evaluation.
    let status_ok = match expect_status {
        Some(s) => status == s,
        None => status / 100 == 2,
    };
    if !status_ok {
        let message = verdict.expect_err("wrong status passed");
        assert!(
            message.starts_with(&format!("status {status}")),
            "{message}"
        );
        return;
    }
    if over {
        let message = verdict.expect_err("body over the limit passed");
        assert!(message.contains("larger than the limit"), "{message}");
        return;
    }
    let (Some(nodes), Some(selected)) = (nodes, selected) else {
        let message = verdict.expect_err("body that is not JSON passed");
        assert!(message.contains("body is not JSON"), "{message}");
        return;
    };
    let capture = input.capture.as_ref().map(|c| {
        let p = JsonPath::parse(&c.render()).unwrap();
        p.query(parsed_body.as_ref().unwrap())
            .all()
            .first()
            .map(|v| (*v).clone())
    });
    let capture_ok = capture.as_ref().is_none_or(Option::is_some);
    let expectation_ok = if input.exists == Some(false) {
        Some(nodes.is_empty())
    } else if nodes.is_empty() {
        Some(false)
    } else {
        let type_ok = ty.is_none_or(|t| nodes.iter().all(|n| type_name(n) == t));
        if type_ok {
            constraint_holds
        } else {
            Some(false)
        }
    };
    match (expectation_ok, &verdict) {
        (Some(true), Ok(captures)) if capture_ok => {
            let want: Vec<(String, Value)> = capture
                .into_iter()
                .flatten()
                .map(|v| ("w".to_string(), v))
                .collect();
            assert_eq!(captures, &want);
        }
        (Some(true), Err(message)) if capture_ok => {
            panic!("failed, expected a pass: {message}\npath {path} selected {selected}\nvar {var}\n{suite:?}")
        }
        (Some(false), Ok(_)) => {
            panic!("passed, expected a failure\npath {path} selected {selected}\nvar {var}")
        }
        (_, Ok(_)) if !capture_ok => panic!("passed without its capture"),
        _ => {}
    }
    // Whatever the verdict, an expectation can be described.
    let _ = check.expectation();
});
