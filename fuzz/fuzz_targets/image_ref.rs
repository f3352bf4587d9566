//! `ImageRef::parse` accepts exactly the repository names of the
//! distribution reference grammar (without tag or digest), with canary's
//! documented rules on top, and splits them the same way; a parsed name
//! prints in a canonical form that parses back to the same value.
//!
//! Grammar (github.com/distribution/reference, `reference.go`):
//!
//! ```text
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := domain-component ['.' domain-component]* [':' port-number]
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]*/
//! ```
//!
//! Canary's rules: the first component is a registry host only if it
//! contains `.` or `:` or is `localhost` (otherwise the name is on Docker
//! Hub, `docker.io`, and a one-component Hub name gets `library/`); the
//! port is 1..=65535; the path is at most 255 characters.
#![no_main]

use canary_core::ImageRef;
use libfuzzer_sys::fuzz_target;

fn domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn domain(s: &str) -> bool {
    let (host, port) = match s.find(':') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.bytes().all(|c| c.is_ascii_digit())
            && p.trim_start_matches('0').len() <= 5
            && (1..=65535).contains(&p.parse::<u32>().unwrap_or(0))
    });
    port_ok && host.split('.').all(domain_component)
}

/// A small state machine over the bytes, not a copy of the parser's loop.
fn path_component(s: &str) -> bool {
    #[derive(PartialEq)]
    enum State {
        Start,
        Alnum,
        Dot,
        Under1,
        Under2,
        Dash,
    }
    let mut state = State::Start;
    for c in s.bytes() {
        let alnum = c.is_ascii_lowercase() || c.is_ascii_digit();
        state = match (state, c) {
            (_, _) if alnum => State::Alnum,
            (State::Alnum, b'.') => State::Dot,
            (State::Alnum, b'_') => State::Under1,
            (State::Under1, b'_') => State::Under2,
            (State::Alnum | State::Dash, b'-') => State::Dash,
            _ => return false,
        };
    }
    state == State::Alnum
}

fn reference(s: &str) -> Option<(String, String)> {
    let (registry, path) = match s.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), s.to_string()),
    };
    let path = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (domain(&registry) && path.len() <= 255 && path.split('/').all(path_component))
        .then_some((registry, path))
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let parsed = ImageRef::parse(&s);
    let expected = reference(&s);
    match (&parsed, &expected) {
        (Ok(r), Some((registry, path))) => {
            assert_eq!(
                (r.registry(), r.path()),
                (registry.as_str(), path.as_str()),
                "{s:?}"
            );
        }
        (Err(e), None) => {
            assert!(e.input().starts_with("image `"), "{e:?}");
            assert!(!e.problem().is_empty() && !e.fix().is_empty(), "{e:?}");
            return;
        }
        _ => panic!("{s:?}: parser says {parsed:?}, grammar says {expected:?}"),
    }
    let r = parsed.unwrap();
    let canonical = r.to_string();
    assert_eq!(canonical, format!("{}/{}", r.registry(), r.path()));
    assert_eq!(
        ImageRef::parse(&canonical).as_ref(),
        Ok(&r),
        "{canonical:?}"
    );
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), r);
});
