#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod dsse;
pub mod keys;
pub mod oci;
pub mod statement;

pub use dsse::{open, seal, verify, Envelope, Invalid, Verified};
pub use keys::{KeyAlgorithm, SigningKey, VerifyingKey};
pub use oci::{fetch_envelope, fetch_record, verify_record, OciLedger, RECORD_ARTIFACT_TYPE};
pub use statement::Statement;
