#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod api;
mod options;
mod prometheus;

pub use api::{Point, Series};
pub use options::{PrometheusAuth, PrometheusOptions};
pub use prometheus::PrometheusSource;
