//! Tag templates and the release they render tags for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{GitSha, ImageRef, Tag, SAMPLE_SHA};
use crate::error::UsageError;

/// A tag template: literal tag characters plus the placeholder `{sha}`,
/// e.g. `staging-{sha}` or `latest`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TagTemplate {
    prefix: String,
    suffix: Option<String>,
}

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
                "list the release's images in canary.toml `[release] images`",
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

#[cfg(test)]
mod tests {
    use super::*;

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
