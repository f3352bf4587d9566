#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod analysis;
pub mod env;
mod fleet;
pub mod gate;
mod guard;
pub mod records;
pub mod settings;
pub mod shards;

pub use canary_core as core;
pub use canary_core::status::{History, RecordCheck};
pub use canary_report as report;
pub use env::Env;
pub use gate::{read_report, run_id, Gate, SecretSink, SmokeTarget, Spelling};
pub use settings::{
    load_file, setting, Overrides, Setting, Settings, Source, Sourced, SuiteChoice,
};
