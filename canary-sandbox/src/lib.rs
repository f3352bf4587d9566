#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod control_plane;
pub mod metrics_api;
pub mod registry;
pub mod server;
pub mod tenant;
pub mod webhook;

pub use control_plane::{ControlPlaneServer, Org};
pub use metrics_api::MetricsApi;
pub use registry::{Registry, RegistryOptions};
pub use server::Server;
pub use tenant::{TenantFault, TenantOptions, TenantServer};
pub use webhook::{Received, WebhookReceiver};

/// Locks `m`, also when a panic elsewhere poisoned it: a sandbox server's
/// state stays readable for the test that is reporting that panic.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
