#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod control_plane;
mod fleet;
mod http;
mod suite;
mod template;

/// The real clock, shared by every HTTP adapter; re-exported so callers
/// that build a `Promoter` with this crate need no other import.
pub use canary_http::SystemClock;
pub use control_plane::ControlPlane;
pub use fleet::{
    fleet_from_config, fleet_from_env, fleet_from_lists, fleet_from_named_lists,
    DEFAULT_TOKENS_VAR, DEFAULT_URLS_VAR,
};
pub use http::{HttpOptions, HttpSuite, ProbeConfig, DEFAULT_TENANT_DEADLINE};
pub use suite::{Auth, Check, Suite, BUILTIN_SUITES, WORKSPACE_SERVER, WORKSPACE_SERVER_READONLY};

/// Entry points for the fuzz targets in `fuzz/` (see `FUZZING.md`): thin
/// wrappers around private code. Not part of the API; may change at any
/// time.
#[doc(hidden)]
pub mod fuzzing {
    use serde_json::Value;

    use crate::template::Vars;
    use crate::Check;

    /// Judges one answer to `check` the way a suite run does (status, then
    /// `expect.json`, captures and `expect.body_contains`), with `vars` as
    /// the run's variables. `over` says the body was cut at
    /// `max_body_bytes`. The captured values on a pass, the failure message
    /// otherwise.
    pub fn judge(
        check: &Check,
        status: u16,
        body: &[u8],
        over: bool,
        max_body_bytes: usize,
        vars: &Vars,
    ) -> Result<Vec<(String, Value)>, String> {
        crate::http::judge_answer(check, status, body, over, max_body_bytes, vars)
    }
}
