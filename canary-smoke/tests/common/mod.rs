//! Shared helpers of the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use canary_core::{CheckResult, CheckStatus, RunContext, Secret, Tenant};
use canary_smoke::{HttpOptions, HttpSuite, Suite};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

/// A token that must never show up in any output.
pub const TOKEN: &str = "tok-S3CRET-9f2c41d7";
/// The version healthy reference tenants report.
pub const VERSION: &str = "4c1d56e0123456789abcdef0123456789abcdef0";

pub async fn tenant(fault: TenantFault) -> TenantServer {
    tenant_with_token(fault, TOKEN).await
}

pub async fn tenant_with_token(fault: TenantFault, token: &str) -> TenantServer {
    TenantServer::start(TenantOptions {
        token: token.to_string(),
        version: VERSION.to_string(),
        fault,
    })
    .await
}

pub fn tenant_of(server: &TenantServer) -> Tenant {
    Tenant::new(server.url(), Secret::new(TOKEN))
}

/// The built-in suite, with no retries and short timeouts so tests are fast.
pub fn builtin_fast() -> Suite {
    Suite::builtin("workspace-server")
        .unwrap()
        .with_retries(0, Duration::from_millis(10))
        .with_timeout(Duration::from_secs(5))
}

pub fn runner(suite: Suite) -> HttpSuite {
    HttpSuite::new(suite, HttpOptions::default()).unwrap()
}

pub fn context() -> RunContext {
    RunContext {
        sha: Some(VERSION.parse().unwrap()),
        run_id: "test-run".to_string(),
    }
}

/// `name=status` for every result, for readable assertions.
pub fn statuses(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| {
            let s = match r.status {
                CheckStatus::Passed => "passed",
                CheckStatus::Failed => "failed",
                CheckStatus::Error => "error",
                CheckStatus::NotRun => "not_run",
            };
            format!("{}={s}", r.name)
        })
        .collect()
}
