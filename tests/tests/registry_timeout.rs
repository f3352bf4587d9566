//! Issue 14, finding 5: a hanging registry cost ~124 s (30 s × 4 attempts)
//! and the hint said "raise the timeout" with no way to do it. The timeout
//! and the attempts are settings; the hint names them.

use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_registry_costs_the_configured_timeout_and_the_hint_says_how() {
    // Accepts connections, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let bin = canary_e2e::canary_bin();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([
                "promote",
                "--sha",
                "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90",
                "--no-verify",
                "--reason",
                "timeout test",
                "--image",
                &format!("127.0.0.1:{port}/acme/app"),
                "--registry-timeout",
                "1s",
                "--registry-attempts",
                "2",
            ])
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
    let spent = started.elapsed();
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("timed out"), "{stdout}");
    assert!(stdout.contains("--registry-timeout"), "{stdout}");
    // Two attempts of one second and a backoff, not two minutes.
    assert!(spent < Duration::from_secs(30), "{spent:?}");
}
