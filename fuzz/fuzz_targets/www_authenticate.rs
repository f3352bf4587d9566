//! The `WWW-Authenticate` parser (canary-registry, `src/challenge.rs`):
//!
//! - on any header value it returns without panicking, and a `Bearer`
//!   challenge's scopes are non-empty and space-free;
//! - on a challenge built from generated parameters (RFC 7235 syntax:
//!   `token BWS "=" BWS ( token / quoted-string )`, separated by OWS
//!   commas), every parameter comes back exactly, quoted values with their
//!   escapes undone and their whitespace kept, and `realm`, `service` and
//!   `scope` are taken from them as documented (first match, any case).
#![no_main]

use arbitrary::Arbitrary;
use canary_registry::fuzzing::{challenge_params, parse_challenge, Challenge};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Name {
    Realm,
    Service,
    Scope,
    Error,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Param {
    name: Name,
    upper: bool,
    value: String,
    quote: bool,
    bws_before: bool,
    bws_after: bool,
    ows_before_comma: bool,
    ows_after_comma: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    raw: String,
    scheme_upper: bool,
    params: Vec<Param>,
}

/// RFC 7230 `tchar`.
fn tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn check_any(header: &str) {
    if let Some(Challenge::Bearer { scope, .. }) = parse_challenge(header) {
        assert!(
            scope.iter().all(|s| !s.is_empty() && !s.contains(' ')),
            "{header:?}: {scope:?}"
        );
    }
}

fuzz_target!(|input: Input| {
    check_any(&input.raw);
    let _ = challenge_params(&input.raw);

    let mut expected = Vec::new();
    let mut rest = String::new();
    for (i, p) in input.params.iter().enumerate() {
        let name = match &p.name {
            Name::Realm => "realm".to_string(),
            Name::Service => "service".to_string(),
            Name::Scope => "scope".to_string(),
            Name::Error => "error".to_string(),
            Name::Other(s) => {
                let s: String = s.chars().filter(|c| tchar(*c)).collect();
                if s.is_empty() {
                    "x".to_string()
                } else {
                    s
                }
            }
        };
        let name = if p.upper {
            name.to_ascii_uppercase()
        } else {
            name
        };
        let token = !p.value.is_empty() && p.value.chars().all(tchar);
        let value = if token && !p.quote {
            p.value.clone()
        } else {
            quote(&p.value)
        };
        if i > 0 {
            rest.push_str(if p.ows_before_comma { " \t," } else { "," });
            if p.ows_after_comma {
                rest.push_str("  ");
            }
        }
        rest.push_str(&name);
        rest.push_str(if p.bws_before { " =" } else { "=" });
        if p.bws_after {
            rest.push('\t');
        }
        rest.push_str(&value);
        expected.push((name, p.value.clone()));
    }

    assert_eq!(challenge_params(&rest), expected, "{rest:?}");

    let scheme = if input.scheme_upper {
        "BEARER"
    } else {
        "Bearer"
    };
    let header = format!("{scheme} {rest}");
    check_any(&header);
    let get = |n: &str| {
        expected
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let want = get("realm").map(|realm| Challenge::Bearer {
        realm,
        service: get("service"),
        scope: expected
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("scope"))
            .flat_map(|(_, v)| v.split(' '))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    });
    assert_eq!(parse_challenge(&header), want, "{header:?}");
    let basic = format!("Basic {rest}");
    assert_eq!(parse_challenge(&basic), Some(Challenge::Basic));
});
