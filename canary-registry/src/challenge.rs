//! `WWW-Authenticate` challenges (RFC 7235) as registries send them.

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Bearer realm="…",service="…",scope="…"`: get a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Vec<String>,
    },
    /// `Basic realm="…"`: send username and password with every request.
    Basic,
}

/// Parses the first `Bearer` or `Basic` challenge of a header value;
/// `None` for anything else.
pub(crate) fn parse(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = params(rest);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let realm = get("realm")?;
    Some(Challenge::Bearer {
        realm,
        service: get("service"),
        scope: params
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("scope"))
            .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect(),
    })
}

/// `key=value` and `key="quoted, \"escaped\""` pairs separated by commas.
fn params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| *c == ',' || c.is_ascii_whitespace())
        {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let key = key.trim().to_string();
        if !key.is_empty() {
            out.push((key, value.trim().to_string()));
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: vec!["repository:library/alpine:pull,push".into()],
            }
        );
    }

    #[test]
    fn basic_and_odd_forms() {
        assert_eq!(parse(r#"Basic realm="ecr""#), Some(Challenge::Basic));
        assert_eq!(parse("basic"), Some(Challenge::Basic));
        assert_eq!(parse("Negotiate abc"), None);
        assert_eq!(parse("Bearer service=x"), None, "no realm");
        let c =
            parse(r#"bearer realm=https://r.example/t , error="insufficient_scope", scope="a b""#)
                .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://r.example/t".into(),
                service: None,
                scope: vec!["a".into(), "b".into()],
            }
        );
        let c = parse(r#"Bearer realm="https://x/\"q\"",service="s""#).unwrap();
        assert!(matches!(c, Challenge::Bearer { realm, .. } if realm == r#"https://x/"q""#));
    }
}
