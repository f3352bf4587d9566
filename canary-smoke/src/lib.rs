#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod clock;
mod fleet;
mod http;
pub mod render;
mod suite;
mod template;

pub use clock::SystemClock;
pub use fleet::{fleet_from_env, fleet_from_lists, DEFAULT_TOKENS_VAR, DEFAULT_URLS_VAR};
pub use http::{HttpOptions, HttpSuite, ProbeConfig};
pub use suite::{Auth, Check, Suite, BUILTIN_SUITES, WORKSPACE_SERVER};
