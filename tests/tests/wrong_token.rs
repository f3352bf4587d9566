//! Issue 14, finding 4: a wrong tenant token waited the whole rollout
//! deadline (15 min by default) before `inconclusive`. A 401 from the probe
//! is a configuration error: the real binary says so at once.

use std::time::{Duration, Instant};

use canary_e2e::{run, World, NEW};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_named_at_once_not_after_the_rollout_deadline() {
    let world = World::start(2).await;
    let mut cmd = world.canary();
    cmd.env("CANARY_TENANT_TOKENS", "wrong-token-1,wrong-token-2")
        .env("CANARY_ROLLOUT_DEADLINE", "15m")
        .args(["verify", "--sha", NEW]);
    let started = Instant::now();
    let r = run(cmd).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("refused canary's token"), "{}", r.stdout);
    assert!(
        r.stdout.contains("not a rollout in progress"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("wrong-token-"),
        "a token printed: {}",
        r.stdout
    );
    assert_eq!(world.latest(), world.staging(canary_e2e::OLD));
}
