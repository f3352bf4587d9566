//! A fleet larger than the common soft limit on open files (1,024 here
//! scaled down to 128): canary raises its soft limit to the hard limit at
//! start-up, so every tenant gets its socket. Before, tenants past the limit
//! failed with "Too many open files" and the run ended `inconclusive`.

use std::process::Command;

use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

const TOKEN: &str = "fd-limit-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_past_the_soft_open_files_limit_passes() {
    let n = 300;
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
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = tenants.iter().map(TenantServer::url).collect();
    std::fs::write(dir.path().join("urls.txt"), urls.join("\n")).unwrap();
    std::fs::write(dir.path().join("tokens.txt"), vec![TOKEN; n].join("\n")).unwrap();
    let bin = canary_e2e::canary_bin();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .arg("-c")
            // A soft limit far below the fleet, the hard one left as it is.
            .arg(format!(
                "ulimit -Sn 128 && exec '{}' smoke --urls-file urls.txt --tokens-file tokens.txt",
                bin.display()
            ))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
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
