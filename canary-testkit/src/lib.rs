#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod child;
pub mod fake_registry;
pub mod fault_proxy;
pub mod faults;
pub mod oci;
pub mod prometheus;
pub mod real_registry;
#[cfg(test)]
mod test_http;

/// The reference tenant server, from the sandbox (re-exported so tests
/// name one kit).
pub use canary_sandbox::tenant;
pub use canary_sandbox::webhook;
