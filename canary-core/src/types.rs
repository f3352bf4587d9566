//! Domain types. Each one is validated when it is built ("parse, don't
//! validate"): a value of these types is always well formed, and every error
//! names the bad value, the rule it broke and how to fix it.
//!
//! One submodule per family of types; every type is re-exported here, so
//! `canary_core::types::Tag` is the path to use.

// Types that travel as strings: serialised through `Display`, deserialised
// through `FromStr`, so a value read from JSON or TOML is validated like any
// other. Defined before the submodules so they can use it.
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

/// A full sha whose every prefix of 7 or more characters is valid: tag
/// templates are checked against it, tests use it as a known-good sha.
const SAMPLE_SHA: &str = "0123456789abcdef0123456789abcdef01234567";

mod digest;
mod image;
mod release;
mod secret;
mod sha;

pub use digest::{Algorithm, Digest, Manifest};
pub use image::{ImageRef, Reference, Tag};
pub use release::{Release, TagTemplate};
pub use secret::{Secret, Tenant};
pub use sha::{GitSha, Reason};
