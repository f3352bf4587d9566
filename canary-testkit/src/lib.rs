#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod fake_registry;
pub mod fault_proxy;
pub mod oci;
pub mod real_registry;
pub mod tenant;
