//! Domain types. Each one is validated when it is built ("parse, don't
//! validate"): a value of these types is always well formed, and every error
//! names the bad value, the rule it broke and how to fix it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::UsageError;

/// A secret value: a registry password or token, a tenant admin token.
///
/// `Debug` and `Display` print `***`; the value is reachable only through
/// [`Secret::expose`], so it cannot reach a log line or a report by accident.
/// `Secret` deliberately implements neither `Serialize` nor `Deserialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call this only where the value is sent to
    /// the party it belongs to (an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

macro_rules! string_serde {
    ($ty:ident) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

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
                if first.contains('.') || first.contains(':') || first == "localhost" =>
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
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port {
        // `u16::from_str` also takes a leading `+`, which is no URL port.
        if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().map_or(true, |p| p == 0)
        {
            return Err(format!("has an invalid port `{port}`"));
        }
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
pub struct Tag(String);

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

/// The digest algorithms canary accepts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`, 64 hex characters.
    Sha256,
    /// `sha512`, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written in a digest.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A content digest, `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses a digest.
    pub fn parse(input: &str) -> Result<Self, UsageError> {
        let bad = |problem: &str| {
            UsageError::new(
                format!("digest `{}`", input.escape_debug()),
                problem,
                "write `sha256:` followed by 64 lowercase hex characters (or `sha512:` and 128)",
            )
        };
        let Some((algo, hex)) = input.split_once(':') else {
            return Err(bad("has no algorithm prefix"));
        };
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(bad(&format!(
                    "uses unsupported algorithm `{}`",
                    other.escape_debug()
                )))
            }
        };
        if hex.len() != algorithm.hex_len() {
            return Err(bad(&format!(
                "has {} hex characters, {} expected",
                hex.len(),
                algorithm.hex_len()
            )));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("is not lowercase hex"));
        }
        Ok(Self {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The digest of `bytes` with this digest's algorithm.
    #[must_use]
    pub fn compute_like(&self, bytes: &[u8]) -> Self {
        let hex = match self.algorithm {
            Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
            Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
        };
        Self {
            algorithm: self.algorithm,
            hex,
        }
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.compute_like(bytes) == *self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// `sha256:0123456789ab`, for human output.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.name(), &self.hex[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}
impl FromStr for Digest {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
string_serde!(Digest);

/// A git commit sha: 7 to 40 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GitSha(String);

impl GitSha {
    /// Parses a sha.
    pub fn parse(input: &str) -> Result<Self, UsageError> {
        let bad = |problem: &str| {
            UsageError::new(
                format!("sha `{}`", input.escape_debug()),
                problem,
                "pass the commit sha as 7 to 40 lowercase hex characters, e.g. `4c1d56e`",
            )
        };
        if input.is_empty() {
            return Err(bad("is empty"));
        }
        if !input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("is not hexadecimal"));
        }
        if input.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("has uppercase letters"));
        }
        if input.len() < 7 || input.len() > 40 {
            return Err(bad(&format!("has {} characters", input.len())));
        }
        Ok(Self(input.to_string()))
    }

    /// The sha as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a full 40-character sha.
    pub fn is_full(&self) -> bool {
        self.0.len() == 40
    }

    /// The first seven characters.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }

    /// Whether a tenant that reports `version` runs this sha: the version
    /// equals the sha, or one of them is a prefix (of at least 7 characters)
    /// of the other.
    pub fn matches_version(&self, version: &str) -> bool {
        let version = version.trim();
        version == self.0
            || (version.len() >= 7 && (version.starts_with(&self.0) || self.0.starts_with(version)))
    }
}

impl fmt::Display for GitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for GitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitSha({})", self.0)
    }
}
impl FromStr for GitSha {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
string_serde!(GitSha);

/// A tag template: literal tag characters plus the placeholder `{sha}`,
/// e.g. `staging-{sha}` or `latest`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TagTemplate {
    prefix: String,
    suffix: Option<String>,
}

const SAMPLE_SHA: &str = "0123456789abcdef0123456789abcdef01234567";

impl TagTemplate {
    /// Parses a template. At most one `{sha}`; no other placeholder; every
    /// rendering with a 7 to 40 character sha is a valid tag.
    pub fn parse(input: &str) -> Result<Self, UsageError> {
        let bad = |problem: &str| {
            UsageError::new(
                format!("tag template `{}`", input.escape_debug()),
                problem,
                "use tag characters [a-zA-Z0-9._-] and at most one `{sha}`, e.g. `staging-{sha}`",
            )
        };
        let (prefix, suffix) = match input.split_once("{sha}") {
            Some((p, s)) => (p.to_string(), Some(s.to_string())),
            None => (input.to_string(), None),
        };
        if prefix.contains(['{', '}']) || suffix.as_deref().is_some_and(|s| s.contains(['{', '}']))
        {
            return Err(bad("has an unknown placeholder or a second `{sha}`"));
        }
        let template = Self { prefix, suffix };
        for sample in [SAMPLE_SHA, &SAMPLE_SHA[..7]] {
            let rendered = template.render_str(sample);
            if let Err(e) = Tag::parse(&rendered) {
                return Err(bad(&format!("renders an invalid tag ({})", e.problem())));
            }
        }
        Ok(template)
    }

    /// Whether the template contains `{sha}`.
    pub fn has_sha(&self) -> bool {
        self.suffix.is_some()
    }

    fn render_str(&self, sha: &str) -> String {
        match &self.suffix {
            Some(suffix) => format!("{}{sha}{suffix}", self.prefix),
            None => self.prefix.clone(),
        }
    }

    /// The tag for `sha`.
    pub fn render(&self, sha: &GitSha) -> Tag {
        // Validated in `parse` for every sha length.
        Tag(self.render_str(sha.as_str()))
    }

    /// The sha a tag rendered from this template carries, if the tag has
    /// this template's shape.
    pub fn sha_of(&self, tag: &Tag) -> Option<GitSha> {
        let suffix = self.suffix.as_deref()?;
        let middle = tag
            .as_str()
            .strip_prefix(self.prefix.as_str())?
            .strip_suffix(suffix)?;
        GitSha::parse(middle).ok()
    }
}

impl fmt::Display for TagTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.suffix {
            Some(s) => write!(f, "{}{{sha}}{s}", self.prefix),
            None => f.write_str(&self.prefix),
        }
    }
}
impl fmt::Debug for TagTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TagTemplate({self})")
    }
}
impl FromStr for TagTemplate {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
string_serde!(TagTemplate);

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

/// A manifest as the registry stores it: the exact bytes, the media type it
/// was served with, and the digest of those bytes.
///
/// Canary never re-serialises a manifest: a retag writes these bytes back
/// unchanged, so the digest is unchanged (image indexes and Docker manifest
/// lists included).
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    media_type: String,
    bytes: Vec<u8>,
    digest: Digest,
}

impl Manifest {
    /// A manifest from its bytes; the digest is their sha256.
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        let digest = Digest::sha256_of(&bytes);
        Self {
            media_type: media_type.into(),
            bytes,
            digest,
        }
    }

    /// A manifest whose digest the caller has already checked against the
    /// bytes (e.g. a sha512 digest named by the registry).
    pub fn with_digest(media_type: impl Into<String>, bytes: Vec<u8>, digest: Digest) -> Self {
        Self {
            media_type: media_type.into(),
            bytes,
            digest,
        }
    }

    /// The media type (`Content-Type`) the manifest was served with.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("media_type", &self.media_type)
            .field("digest", &self.digest)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A release: one sha and the images it ships, moved together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    sha: GitSha,
    images: Vec<ImageRef>,
    staging: TagTemplate,
    promoted: TagTemplate,
}

impl Release {
    /// A release. The image list must be non-empty and without duplicates;
    /// the staging template must contain `{sha}` and differ from the
    /// promoted one.
    pub fn new(
        sha: GitSha,
        images: Vec<ImageRef>,
        staging: TagTemplate,
        promoted: TagTemplate,
    ) -> Result<Self, UsageError> {
        if images.is_empty() {
            return Err(UsageError::new(
                "release images",
                "is empty",
                "list the images of the release in `[release] images` or --image",
            ));
        }
        for (i, image) in images.iter().enumerate() {
            if images[..i].contains(image) {
                return Err(UsageError::new(
                    format!("image `{image}`"),
                    "is listed twice",
                    "list each image of the release once",
                ));
            }
        }
        if !staging.has_sha() {
            return Err(UsageError::new(
                format!("staging tag template `{staging}`"),
                "does not contain `{sha}`",
                "every release needs its own staging tag, e.g. `staging-{sha}`",
            ));
        }
        if staging == promoted {
            return Err(UsageError::new(
                format!("promoted tag template `{promoted}`"),
                "is the same as the staging template",
                "use a distinct promoted tag such as `latest`",
            ));
        }
        Ok(Self {
            sha,
            images,
            staging,
            promoted,
        })
    }

    /// The release's sha.
    pub fn sha(&self) -> &GitSha {
        &self.sha
    }

    /// The images, in the order they are moved.
    pub fn images(&self) -> &[ImageRef] {
        &self.images
    }

    /// The staging tag template.
    pub fn staging_template(&self) -> &TagTemplate {
        &self.staging
    }

    /// The promoted tag template.
    pub fn promoted_template(&self) -> &TagTemplate {
        &self.promoted
    }

    /// `staging-<sha>`.
    pub fn staging_tag(&self) -> Tag {
        self.staging.render(&self.sha)
    }

    /// `latest`.
    pub fn promoted_tag(&self) -> Tag {
        self.promoted.render(&self.sha)
    }

    /// The same release with another sha (after resolving a short sha).
    #[must_use]
    pub fn with_sha(&self, sha: GitSha) -> Self {
        Self {
            sha,
            ..self.clone()
        }
    }
}

/// A canary tenant: its base URL and admin token.
#[derive(Clone, PartialEq, Eq)]
pub struct Tenant {
    url: String,
    token: Secret,
}

impl Tenant {
    /// A tenant. The URL is kept as given, without a trailing slash; URL
    /// validation belongs to the adapter that builds the fleet.
    pub fn new(url: impl Into<String>, token: Secret) -> Self {
        let url: String = url.into();
        Self {
            url: url.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// The base URL, also the tenant's name in reports.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin token.
    pub fn token(&self) -> &Secret {
        &self.token
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("url", &self.url)
            .field("token", &self.token)
            .finish()
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

    #[test]
    fn digests() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(d.matches(b""));
        assert!(!d.matches(b" "));
        let s512 = format!("sha512:{}", "a".repeat(128));
        assert!(Digest::parse(&s512).is_ok());
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("md5:{}", "a".repeat(32))).is_err());
        assert!(Digest::parse("nothing").is_err());
    }

    #[test]
    fn shas() {
        let s = GitSha::parse("4c1d56e").unwrap();
        assert!(!s.is_full());
        assert!(GitSha::parse("4c1d56").is_err());
        assert!(GitSha::parse("4C1D56E").is_err());
        assert!(GitSha::parse("xyzxyzx").is_err());
        assert!(GitSha::parse(&"a".repeat(41)).is_err());
        let full = GitSha::parse(SAMPLE_SHA).unwrap();
        assert!(full.is_full());
        assert!(full.matches_version(SAMPLE_SHA));
        assert!(full.matches_version("0123456"));
        assert!(!full.matches_version("012345"));
        assert!(!full.matches_version("ffffffff"));
        assert!(GitSha::parse("0123456")
            .unwrap()
            .matches_version(SAMPLE_SHA));
    }

    #[test]
    fn templates() {
        let t = TagTemplate::parse("staging-{sha}").unwrap();
        let sha = GitSha::parse("4c1d56e").unwrap();
        assert_eq!(t.render(&sha).as_str(), "staging-4c1d56e");
        assert_eq!(t.sha_of(&Tag::parse("staging-4c1d56e").unwrap()), Some(sha));
        assert_eq!(t.sha_of(&Tag::parse("staging-zz").unwrap()), None);
        assert_eq!(t.to_string(), "staging-{sha}");
        assert!(!TagTemplate::parse("latest").unwrap().has_sha());
        assert!(TagTemplate::parse("{sha}{sha}").is_err());
        assert!(TagTemplate::parse("x-{short}").is_err());
        assert!(TagTemplate::parse("bad/{sha}").is_err());
        assert!(TagTemplate::parse(&format!("{}{{sha}}", "a".repeat(100))).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let t = Tenant::new("https://t.example/", s);
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(t.url(), "https://t.example");
    }

    #[test]
    fn releases() {
        let sha = GitSha::parse("4c1d56e").unwrap();
        let img = ImageRef::parse("ghcr.io/a/b").unwrap();
        let st = TagTemplate::parse("staging-{sha}").unwrap();
        let lt = TagTemplate::parse("latest").unwrap();
        assert!(Release::new(sha.clone(), vec![], st.clone(), lt.clone()).is_err());
        assert!(Release::new(
            sha.clone(),
            vec![img.clone(), img.clone()],
            st.clone(),
            lt.clone()
        )
        .is_err());
        assert!(Release::new(sha.clone(), vec![img.clone()], lt.clone(), lt.clone()).is_err());
        assert!(Release::new(sha.clone(), vec![img.clone()], st.clone(), st.clone()).is_err());
        let r = Release::new(sha, vec![img], st, lt).unwrap();
        assert_eq!(r.staging_tag().as_str(), "staging-4c1d56e");
        assert_eq!(r.promoted_tag().as_str(), "latest");
    }
}
