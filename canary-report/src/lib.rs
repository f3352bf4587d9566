#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod analysis;
mod escape;
pub mod fleet;
pub mod github;
mod json;
mod junit;
pub mod ledger;
mod markdown;
pub mod notify;
mod postmortem;
pub mod status;
pub mod terminal;
pub mod words;

pub use escape::{markdown_code, markdown_text};
pub use json::json;
pub use junit::junit;
pub use markdown::{markdown, MAX_ROWS};
pub use postmortem::postmortem;
