//! `canary verify --guard` and `canary guard` with the real binary, the
//! real registry (skopeo judges every digest), reference tenants over real
//! HTTP for the canary and the production fleets, and the reference
//! webhook receiver checking every signature.

use std::time::{Duration, Instant};

use canary_e2e::{run, World, NEW, OLD, TENANT_TOKEN};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};
use canary_testkit::webhook::WebhookReceiver;

const PROD_TOKEN: &str = "prod-admin-TOKEN-91f3aa";
const HOOK_SECRET: &str = "hook-SECRET-4b7c02";
const INTERVAL_MS: u64 = 1000;
const FAILURES: u64 = 2;

async fn production(n: usize, version: &str) -> Vec<TenantServer> {
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        servers.push(
            TenantServer::start(TenantOptions {
                token: PROD_TOKEN.to_string(),
                version: version.to_string(),
                fault: TenantFault::None,
            })
            .await,
        );
    }
    servers
}

/// `canary` against `world`, watching `prod`, notifying `hook`.
fn canary(world: &World, prod: &[TenantServer], hook: &WebhookReceiver) -> std::process::Command {
    std::fs::write(
        world.dir.path().join("canary.toml"),
        "[[notify]]\nurl_env = \"HOOK_URL\"\nsecret_env = \"HOOK_SECRET\"\n",
    )
    .unwrap();
    let mut cmd = world.canary();
    let urls: Vec<String> = prod.iter().map(TenantServer::url).collect();
    cmd.env("CANARY_PROD_URLS", urls.join(","))
        .env("CANARY_PROD_TOKENS", vec![PROD_TOKEN; prod.len()].join(","))
        .env("CANARY_GUARD_BAKE", "60s")
        .env("CANARY_GUARD_INTERVAL", format!("{INTERVAL_MS}ms"))
        .env("CANARY_GUARD_FAILURES_TO_REVERT", FAILURES.to_string())
        .env("HOOK_URL", hook.url())
        .env("HOOK_SECRET", HOOK_SECRET);
    cmd
}

/// No secret in anything the run printed or wrote.
fn no_secret(hook: &WebhookReceiver, texts: &[&str]) {
    for text in texts {
        for secret in [PROD_TOKEN, TENANT_TOKEN, HOOK_SECRET, hook.url().as_str()] {
            assert!(!text.contains(secret), "a secret in the output: {text}");
        }
    }
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_green_on_canary_and_red_in_production_is_reverted() {
    let world = World::start(2).await;
    let prod = production(3, NEW).await;
    let hook = WebhookReceiver::start(HOOK_SECRET).await;
    let mut cmd = canary(&world, &prod, &hook);
    cmd.args(["verify", "--sha", NEW, "--guard", "--report", "guard.json"]);
    let child = tokio::task::spawn_blocking(move || cmd.output().expect("run canary"));

    // The canary fleet is green: promoted, and the webhook hears of it.
    wait_for("the promoted notification", Duration::from_secs(60), || {
        hook.received()
            .iter()
            .any(|r| r.event() == Some("promoted"))
    })
    .await;
    assert_eq!(world.latest(), world.staging(NEW), "skopeo: promoted");
    // After the guard's first (green) round — followed by the requests
    // the tenant served (a probe is 1, a round 4), not by the clock — one
    // production tenant breaks.
    wait_for("the first round", Duration::from_secs(60), || {
        prod.iter().all(|t| t.requests() >= 5)
    })
    .await;
    let broke = Instant::now();
    prod[1].set_fault(TenantFault::ServerError);
    let out = child.await.expect("join");
    let took = broke.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "reverted is exit 1:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("outcome: promoted"), "{stdout}");
    assert!(stdout.contains("outcome: reverted"), "{stdout}");
    // Within failures_to_revert × interval of the fault (and the time a
    // round and the revert take on a loaded machine).
    assert!(
        took < Duration::from_millis(FAILURES * INTERVAL_MS) + Duration::from_secs(15),
        "reverted {took:?} after the fault"
    );
    assert_eq!(
        world.latest(),
        world.staging(OLD),
        "skopeo: latest is back on the previous release"
    );

    let report_text = std::fs::read_to_string(world.dir.path().join("guard.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report_text).unwrap();
    assert_eq!(report["outcome"], "reverted");
    assert_eq!(report["command"], "guard");
    assert_eq!(report["guard"]["revert_to"], OLD);
    assert!(
        !report["ledger"]["outcome"].as_array().unwrap().is_empty(),
        "the revert wrote no record"
    );

    // The ledger's newest record is the revert's rollback to OLD.
    let mut history = canary(&world, &prod, &hook);
    history.args(["history", "--json"]);
    let h = run(history).await;
    assert_eq!(h.code, 0, "{h:?}");
    let json: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
    let newest = &json["records"][0];
    assert_eq!(newest["command"], "rollback", "{json:#}");
    assert_eq!(newest["sha"], OLD, "{json:#}");

    // The webhook heard `promoted`, then `reverted`, signed.
    let events: Vec<_> = hook.received();
    let names: Vec<&str> = events.iter().filter_map(|r| r.event()).collect();
    assert_eq!(names, ["promoted", "reverted"], "{events:#?}");
    assert!(events.iter().all(|r| r.signature_valid), "{events:#?}");
    let raw: Vec<String> = events
        .iter()
        .map(|r| String::from_utf8_lossy(&r.raw).into_owned())
        .collect();
    let mut texts = vec![
        stdout.as_str(),
        stderr.as_str(),
        report_text.as_str(),
        h.stdout.as_str(),
        h.stderr.as_str(),
    ];
    texts.extend(raw.iter().map(String::as_str));
    no_secret(&hook, &texts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_promoted_over_during_the_bake_is_left_alone() {
    let world = World::start(1).await;
    let prod = production(2, NEW).await;
    let hook = WebhookReceiver::start(HOOK_SECRET).await;
    let mut verify = canary(&world, &prod, &hook);
    verify.args(["verify", "--sha", NEW]);
    let v = run(verify).await;
    assert_eq!(v.code, 0, "{v:?}");
    // Rounds every 3 s. Production breaks after the first (green) round;
    // three red rounds are needed, and after the first red one someone
    // moves latest to another release by hand. The test follows the guard
    // by the requests each tenant served (a probe is 1, a round 4), not by
    // the clock, so a loaded machine does not change the story.
    let third = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    world.push_release(third);
    let mut guard = canary(&world, &prod, &hook);
    guard.args([
        "guard",
        "--sha",
        NEW,
        "--failures-to-revert",
        "3",
        "--interval",
        "3s",
    ]);
    let child = tokio::spawn(run(guard));
    let base: Vec<u64> = prod.iter().map(TenantServer::requests).collect();
    let after = |extra: u64| {
        prod.iter()
            .zip(&base)
            .all(|(t, b)| t.requests() >= b + extra)
    };
    wait_for("the first round", Duration::from_secs(60), || after(5)).await;
    for t in &prod {
        t.set_fault(TenantFault::ServerError);
    }
    wait_for("the first red round", Duration::from_secs(60), || after(9)).await;
    world.set_latest(third);
    let g = child.await.expect("join");
    assert_eq!(g.code, 1, "{g:?}");
    assert!(g.stdout.contains("outcome: inconclusive"), "{}", g.stdout);
    assert!(
        g.stdout.contains("someone promoted or rolled back"),
        "{}",
        g.stdout
    );
    assert_eq!(
        world.latest(),
        world.staging(third),
        "skopeo: the guard undid someone's move"
    );
    no_secret(&hook, &[&g.stdout, &g.stderr]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_that_never_runs_the_release_is_inconclusive() {
    let world = World::start(1).await;
    let prod = production(2, OLD).await;
    let hook = WebhookReceiver::start(HOOK_SECRET).await;
    let mut verify = canary(&world, &prod, &hook);
    verify.args(["verify", "--sha", NEW]);
    let v = run(verify).await;
    assert_eq!(v.code, 0, "{v:?}");
    let mut guard = canary(&world, &prod, &hook);
    guard
        .env("CANARY_ROLLOUT_DEADLINE", "2s")
        .args(["guard", "--sha", NEW]);
    let g = run(guard).await;
    assert_eq!(g.code, 1, "{g:?}");
    assert!(g.stdout.contains("outcome: inconclusive"), "{}", g.stdout);
    assert!(g.stdout.contains("production did not run"), "{}", g.stdout);
    assert_eq!(world.latest(), world.staging(NEW), "skopeo: nothing moved");
    for t in &prod {
        assert!(t.requests() > 0, "production was never probed");
    }
    no_secret(&hook, &[&g.stdout, &g.stderr]);
    // The webhook heard the verify's `promoted` and the guard's `inconclusive`.
    let names: Vec<String> = hook
        .received()
        .iter()
        .filter_map(|r| r.event().map(str::to_string))
        .collect();
    assert_eq!(names, ["promoted", "inconclusive"]);
}
