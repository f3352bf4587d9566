//! Image repositories, tags, and the references a manifest request names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Digest;
use crate::error::UsageError;

/// An image repository: registry host (with optional port) and path, e.g.
/// `ghcr.io/acme/platform` or `127.0.0.1:5000/acme/tenant`.
///
/// A name without a registry host is a Docker Hub name, as with `docker pull`:
/// `alpine` is `docker.io/library/alpine`. A reference that carries a tag or a
/// digest is refused: canary derives tags from the release's tag templates.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    path: String,
}

impl ImageRef {
    /// Parses an image repository name.
    pub fn parse(input: &str) -> Result<Self, UsageError> {
        let bad =
            |problem: &str, fix: &str| UsageError::new(format!("image `{input}`"), problem, fix);
        if input.is_empty() {
            return Err(bad(
                "is empty",
                "name a repository such as `ghcr.io/acme/platform`",
            ));
        }
        if input.contains("://") {
            return Err(bad(
                "contains a URL scheme",
                "write the repository without `https://`, e.g. `ghcr.io/acme/platform`",
            ));
        }
        if input.contains('@') {
            return Err(bad(
                "carries a digest",
                "list the repository only; canary reads digests itself",
            ));
        }
        let (registry, path) = match input.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first.starts_with('[')
                    || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), input.to_string()),
        };
        if let Some(last) = path.rsplit('/').next() {
            if last.contains(':') {
                return Err(bad(
                    "carries a tag",
                    "list the repository only; tags come from `staging_tag` and `promoted_tag`",
                ));
            }
        }
        validate_host(&registry).map_err(|p| {
            bad(
                &p,
                "use `host` or `host:port`, e.g. `ghcr.io` or `127.0.0.1:5000`",
            )
        })?;
        let path = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.len() > 255 {
            return Err(bad(
                "is longer than 255 characters",
                "use a shorter repository name",
            ));
        }
        for component in path.split('/') {
            if !is_path_component(component) {
                return Err(bad(
                    &format!("has an invalid path component `{component}`"),
                    "path components are lowercase letters and digits, separated by `.`, `_`, `__` or `-`",
                ));
            }
        }
        Ok(Self { registry, path })
    }

    /// The registry host as written, with its port if any (`ghcr.io`,
    /// `docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`acme/platform`).
    pub fn path(&self) -> &str {
        &self.path
    }
}

fn validate_host(host: &str) -> Result<(), String> {
    if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal, as in a URL: `[::1]` or `[::1]:5000`.
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("has an unclosed `[` in `{host}`"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("has an invalid IPv6 address `{addr}`"));
        }
        return match after {
            "" => Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => valid_port(port),
                None => Err(format!("has `{after}` after `[{addr}]`")),
            },
        };
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        valid_port(port)?;
    }
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("has an invalid registry host `{name}`"))
    }
}

fn valid_port(port: &str) -> Result<(), String> {
    // `u16::from_str` also takes a leading `+`, which is no URL port.
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("has an invalid port `{port}`"));
    }
    Ok(())
}

fn is_path_component(component: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let dashes = sep.bytes().all(|b| b == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

impl FromStr for ImageRef {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
string_serde!(ImageRef);

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (distribution spec), ASCII.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub(super) String);

impl Tag {
    /// Parses a tag.
    pub fn parse(input: &str) -> Result<Self, UsageError> {
        let bad = |problem: &str| {
            UsageError::new(
                format!("tag `{}`", input.escape_debug()),
                problem,
                "tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
            )
        };
        let bytes = input.as_bytes();
        if bytes.is_empty() {
            return Err(bad("is empty"));
        }
        if bytes.len() > 128 {
            return Err(bad("is longer than 128 characters"));
        }
        if !(bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_') {
            return Err(bad("must start with a letter, digit or `_`"));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(bad(&format!("contains `{}`", c.escape_debug())));
        }
        Ok(Self(input.to_string()))
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}
impl FromStr for Tag {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
string_serde!(Tag);

/// What a manifest request names: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Reference {
    /// A tag.
    Tag(Tag),
    /// A digest.
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

impl From<Tag> for Reference {
    fn from(t: Tag) -> Self {
        Self::Tag(t)
    }
}
impl From<Digest> for Reference {
    fn from(d: Digest) -> Self {
        Self::Digest(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs() {
        let r = ImageRef::parse("ghcr.io/acme/platform").unwrap();
        assert_eq!((r.registry(), r.path()), ("ghcr.io", "acme/platform"));
        let r = ImageRef::parse("127.0.0.1:5000/acme/tenant").unwrap();
        assert_eq!((r.registry(), r.path()), ("127.0.0.1:5000", "acme/tenant"));
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine");
        let r = ImageRef::parse("localhost/a__b/c-d.e").unwrap();
        assert_eq!(r.registry(), "localhost");
        for bad in [
            "",
            "ghcr.io/acme/platform:latest",
            "ghcr.io/acme/platform@sha256:00",
            "https://ghcr.io/acme/x",
            "ghcr.io/Acme/x",
            "ghcr.io/acme//x",
            "ghcr.io:99999/x",
            "ghcr.io/acme/-x",
            "ghcr.io/acme/x.",
            "bad_host.io/x/y",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
    }

    /// Issue 14, finding 8: `[::1]:5000/acme/app` was refused although
    /// `::1` is loopback everywhere else.
    #[test]
    fn ipv6_literal_hosts() {
        for (input, host) in [
            ("[::1]:5000/acme/app", "[::1]:5000"),
            ("[::1]/acme/app", "[::1]"),
            ("[fd00::1:2]:443/acme/app", "[fd00::1:2]:443"),
        ] {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((r.registry(), r.path()), (host, "acme/app"));
            assert_eq!(r.to_string(), input);
        }
        for bad in [
            "[::1/acme/app",
            "[nope]:5000/acme/app",
            "[::1]x/acme/app",
            "[::1]:0/acme/app",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    /// Found by `cargo fuzz run image_ref`: `u16::from_str` accepts `+5000`,
    /// so `127.0.0.1:+5000/x` passed validation although it names no URL.
    #[test]
    fn image_ref_port_is_digits_only() {
        for bad in ["127.0.0.1:+5000/acme/tenant", "ghcr.io:+1/x", "ghcr.io:/x"] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.problem().contains("invalid port"), "{bad}: {e}");
        }
        let r = ImageRef::parse("127.0.0.1:05000/acme/tenant").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:05000");
    }

    #[test]
    fn tags() {
        Tag::parse("latest").unwrap();
        Tag::parse("_x.y-z").unwrap();
        Tag::parse(&"a".repeat(128)).unwrap();
        assert!(Tag::parse(&"a".repeat(129)).is_err());
        assert!(Tag::parse(".x").is_err());
        assert!(Tag::parse("-x").is_err());
        assert!(Tag::parse("a/b").is_err());
        assert!(Tag::parse("é").is_err());
        assert!(Tag::parse("").is_err());
    }
}
