#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod ca;
mod clock;
mod retry;
mod text;
mod tls;

pub use ca::load_ca_bundle;
pub use clock::SystemClock;
pub use retry::{backoff, parse_retry_after, retry_after};
pub use text::{one_line, user_agent};
pub use tls::tls_config;
