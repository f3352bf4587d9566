#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod artifact;
mod challenge;
mod client;
mod credentials;
mod endpoint;
mod errors;
mod manifest;
mod options;
mod stats;

pub use artifact::{Artifact, Referrer, OCI_EMPTY, OCI_EMPTY_DIGEST};
pub use client::OciRegistry;
pub use credentials::Credentials;
pub use manifest::{
    index_children, is_index, IndexChild, ACCEPT, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2,
    OCI_INDEX, OCI_MANIFEST,
};
pub use options::{RegistryOptions, RetryPolicy};
pub use stats::RequestStats;

/// Entry points for the fuzz targets in `fuzz/` (see `FUZZING.md`): thin
/// wrappers around private parsers. Not part of the API; may change at any
/// time.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::challenge::Challenge;

    /// The `WWW-Authenticate` parser the client uses on a 401.
    pub fn parse_challenge(header: &str) -> Option<Challenge> {
        crate::challenge::parse(header)
    }

    /// The `key=value` / `key="quoted"` parameter list after the scheme.
    pub fn challenge_params(input: &str) -> Vec<(String, String)> {
        crate::challenge::params(input)
    }
}
