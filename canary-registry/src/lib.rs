#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod challenge;
mod client;
mod credentials;
mod endpoint;
mod errors;
mod manifest;
mod options;
mod stats;

pub use client::OciRegistry;
pub use credentials::Credentials;
pub use manifest::{
    index_children, is_index, IndexChild, ACCEPT, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2,
    OCI_INDEX, OCI_MANIFEST,
};
pub use options::{RecordingSleeper, RegistryOptions, RetryPolicy, Sleeper, TokioSleeper};
pub use stats::RequestStats;
