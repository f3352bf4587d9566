//! Issue 14, finding 10: long waits showed one line per change and no sense
//! of progress on a terminal. Under a pseudo-terminal (`script`), the real
//! binary draws a live line for the rollout wait and the checks, and prints
//! a line for a tenant only when it did not pass; in a pipe (a CI log) it
//! prints one line per event, as before.

use canary_e2e::{run, World, NEW};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_a_live_line_and_a_log_gets_lines() {
    let world = World::start(3).await;
    // In a pipe: a line per tenant.
    let mut cmd = world.canary();
    cmd.args(["verify", "--sha", NEW, "--dry-run"]);
    let piped = run(cmd).await;
    assert_eq!(piped.code, 0, "{piped:?}");
    assert_eq!(
        piped.stderr.matches("canary: ok").count(),
        3,
        "{}",
        piped.stderr
    );

    // Under a terminal: the live line, and no line per passing tenant.
    let cmd = world.canary();
    let bin = canary_e2e::canary_bin();
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec"])
        .arg(format!("'{}' verify --sha {NEW} --dry-run", bin.display()))
        .arg("/dev/null");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    script.env("TERM", "xterm").current_dir(world.dir.path());
    let tty = run(script).await;
    assert_eq!(tty.code, 0, "{tty:?}");
    let all = format!("{}{}", tty.stdout, tty.stderr);
    assert!(all.contains("tenants checked:"), "{all}");
    assert!(!all.contains("canary: ok"), "{all}");
    assert!(all.contains("outcome: skipped"), "{all}");
}
