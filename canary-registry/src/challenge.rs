//! `WWW-Authenticate` challenges (RFC 7235) as registries send them.

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm="…",service="…",scope="…"`: get a token from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` to name in the token request.
        service: Option<String>,
        /// Every `scope` the server asked for, split at spaces.
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
pub(crate) fn params(input: &str) -> Vec<(String, String)> {
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
        let mut quoted = false;
        if chars.peek() == Some(&'=') {
            chars.next();
            // RFC 7235 allows whitespace around `=` (BWS).
            while chars.peek().is_some_and(char::is_ascii_whitespace) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                quoted = true;
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
            // A quoted string is the value exactly, spaces included.
            let value = if quoted {
                value
            } else {
                value.trim().to_string()
            };
            out.push((key, value));
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

    /// Found by `cargo fuzz run www_authenticate`: quoted values lost their
    /// leading and trailing spaces, and a space after `=` (allowed by RFC
    /// 7235) turned the quotes into part of the value.
    #[test]
    fn quoted_values_are_exact_and_bws_is_allowed() {
        assert_eq!(
            params("error=\" a \", realm = \"https://r.example/t\" ,scope=\t\"x y\""),
            [
                ("error".to_string(), " a ".to_string()),
                ("realm".to_string(), "https://r.example/t".to_string()),
                ("scope".to_string(), "x y".to_string()),
            ]
        );
        assert_eq!(
            params("error=\"\n\""),
            [("error".to_string(), "\n".to_string())]
        );
        assert_eq!(
            parse(r#"Bearer realm = "https://r.example/t", service = "s""#),
            Some(Challenge::Bearer {
                realm: "https://r.example/t".into(),
                service: Some("s".into()),
                scope: vec![],
            })
        );
    }
}
