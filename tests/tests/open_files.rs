//! A fleet larger than the common soft limit on open files (1,024 here
//! scaled down to 128): canary raises its soft limit to the hard limit at
//! start-up, so every tenant gets its socket. Before, tenants past the limit
//! failed with "Too many open files" and the run ended `inconclusive`.

use std::process::Command;

use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

const TOKEN: &str = "fd-limit-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_past_the_soft_open_files_limit_passes() {
    let tenants = healthy(300).await;
    // A soft limit far below the fleet, the hard one left as it is.
    let out = smoke_under_limit(&tenants, "-Sn 128", "").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("outcome: passed"), "{stdout}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
}

/// `sh -c 'ulimit LIMIT && exec canary smoke …'` over files listing
/// `tenants`, with extra arguments: `-n 128` sets the soft and the hard
/// limit (canary cannot raise it), `-Sn 128` the soft one only.
async fn smoke_under_limit(
    tenants: &[TenantServer],
    limit: &str,
    extra: &str,
) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = tenants.iter().map(TenantServer::url).collect();
    std::fs::write(dir.path().join("urls.txt"), urls.join("\n")).unwrap();
    std::fs::write(
        dir.path().join("tokens.txt"),
        vec![TOKEN; tenants.len()].join("\n"),
    )
    .unwrap();
    let bin = canary_e2e::canary_bin();
    let script = format!(
        "ulimit {limit} && exec '{}' smoke --urls-file urls.txt --tokens-file tokens.txt {extra}",
        bin.display()
    );
    tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn healthy(n: usize) -> Vec<TenantServer> {
    let mut tenants = Vec::with_capacity(n);
    for _ in 0..n {
        tenants.push(
            TenantServer::start(TenantOptions {
                token: TOKEN.into(),
                version: "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
                fault: TenantFault::None,
            })
            .await,
        );
    }
    tenants
}

/// The "5,000 tenants under `ulimit -n 1024`", scaled down: a fleet
/// five times the hard limit passes, because each tenant's connections
/// close when its suite ends (they used to idle in a shared pool until
/// exit: one socket per tenant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_five_times_the_hard_open_files_limit_passes() {
    let tenants = healthy(640).await;
    let out = smoke_under_limit(&tenants, "-n 128", "--concurrency 16").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("outcome: passed"), "{stdout}");
    assert!(!stdout.contains("Too many open files"), "{stdout}");
}

/// A limit too low for the concurrency even after raising the soft limit:
/// canary checks as many tenants at once as the limit holds, and says so.
/// Below 16 it refuses, naming the limit and the fix, before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_too_low_for_the_concurrency_lowers_it_or_is_refused() {
    let tenants = healthy(40).await;
    let out = smoke_under_limit(&tenants, "-n 128", "--concurrency 256").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr
            .contains("the open-files limit allows 32 tenants at once; checking 32 instead of 256"),
        "{stderr}"
    );
    assert!(stdout.contains("outcome: passed"), "{stdout}");
    let served: Vec<u64> = tenants.iter().map(TenantServer::requests).collect();
    let out = smoke_under_limit(&tenants, "-n 80", "").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the open-files limit is 80: too low to check even 16 tenants at once"),
        "{stderr}"
    );
    let after: Vec<u64> = tenants.iter().map(TenantServer::requests).collect();
    assert_eq!(after, served, "a refused run made a request");
}
