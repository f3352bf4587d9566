//! Git commit shas, and the reason a manual promotion gives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::UsageError;

/// Why a manual promotion bypasses the gate: non-empty after trimming,
/// recorded in the report. Validated once, here; a
/// [`Promoter::promote_manual`](crate::Promoter::promote_manual) cannot be
/// called without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// Parses a reason: the text trimmed, refused when empty.
    pub fn parse(text: &str) -> Result<Self, UsageError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(UsageError::new(
                "reason",
                "is missing or empty",
                "a manual promotion bypasses the gate; say why (it is recorded in the report)",
            ));
        }
        Ok(Self(text.to_string()))
    }

    /// The reason's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

#[cfg(test)]
mod tests {
    use super::super::SAMPLE_SHA;
    use super::*;

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
}
