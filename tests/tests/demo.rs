//! `canary demo`, the main job, with the real binary: every scenario ends
//! as designed, with nothing installed and no secret printed.

use std::process::Command;

#[test]
fn the_demo_runs_every_scenario_as_designed() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(canary_e2e::canary_bin())
        .args(["demo", "--quiet"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("demo: all seven scenarios ended as designed"),
        "{stdout}"
    );
    for outcome in [
        "promoted",
        "rejected",
        "rolled_back",
        "reverted",
        "repaired",
    ] {
        assert!(
            stdout.contains(&format!("outcome: {outcome}")),
            "{outcome}: {stdout}"
        );
    }
    assert!(
        stdout.contains("webhook received `reverted` (signature valid)"),
        "{stdout}"
    );
    // Scenario 7: the smoke suite passed, the error-rate metric said no,
    // and the table shows the numbers behind it.
    assert!(
        stdout.contains("FAIL       http-errors (error_rate)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| `http-errors` | error_rate | **FAIL** |"),
        "{stdout}"
    );
    // The demo's tokens and webhook secret are made per run; none is printed.
    for secret in ["demo-admin-", "demo-prod-", "demo-hook-"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }
}
