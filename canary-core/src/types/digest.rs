//! Content digests and the manifests they name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::UsageError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
