//! The real `canary` binary against the real distribution registry (Debian
//! `docker-registry`) holding skopeo-pushed images, and reference tenants on
//! loopback. skopeo is the independent judge of every digest.

use canary_e2e::{run, World, NEW, OLD, TENANT_TOKEN};
use canary_testkit::tenant::TenantFault;

fn report(world: &World, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(world.dir.path().join(name)).expect("report written");
    assert!(!text.contains(TENANT_TOKEN), "token in report");
    serde_json::from_str(&text).expect("report is JSON")
}

fn no_secret(r: &canary_e2e::Run) {
    assert!(!r.stdout.contains(TENANT_TOKEN), "token in stdout");
    assert!(!r.stderr.contains(TENANT_TOKEN), "token in stderr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_verify_promotes_both_images() {
    let world = World::start(2).await;
    let before = world.latest();
    assert_eq!(before, world.staging(OLD));
    let mut cmd = world.canary();
    cmd.args([
        "verify",
        "--sha",
        NEW,
        "--report",
        "report.json",
        "--junit",
        "junit.xml",
    ]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    no_secret(&r);
    assert_eq!(
        world.latest(),
        world.staging(NEW),
        "latest must be the staging digests (skopeo)"
    );
    assert!(
        r.stdout.contains("outcome: promoted (exit 0)"),
        "{}",
        r.stdout
    );
    let rep = report(&world, "report.json");
    assert_eq!(rep["outcome"], "promoted");
    for (i, image) in rep["images"].as_array().unwrap().iter().enumerate() {
        assert_eq!(image["after"], world.staging(NEW)[i]);
        assert_eq!(image["before"], before[i]);
    }
    let junit = std::fs::read_to_string(world.dir.path().join("junit.xml")).unwrap();
    assert!(!junit.contains(TENANT_TOKEN));
    assert_eq!(
        junit.matches("<testcase").count(),
        2 * 6,
        "one case per tenant × check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_verify_leaves_latest_and_names_the_failure() {
    let world = World::start(3).await;
    world.tenants[1].set_fault(TenantFault::BrokenRoundTrip);
    let before = world.latest();
    let mut cmd = world.canary();
    cmd.args(["verify", "--sha", NEW, "--report", "report.json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    no_secret(&r);
    assert_eq!(world.latest(), before, "latest must not move on red");
    let rep = report(&world, "report.json");
    assert_eq!(rep["outcome"], "rejected");
    let reason = rep["reason"].as_str().unwrap();
    assert!(reason.contains("memories-search"), "{reason}");
    assert!(reason.contains(&world.tenants[1].url()), "{reason}");
    assert!(r.stdout.contains("FAIL memories-search"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_that_never_converges_is_inconclusive() {
    let world = World::start(2).await;
    world.tenants[0].set_version(OLD);
    let before = world.latest();
    let mut cmd = world.canary();
    cmd.env("CANARY_ROLLOUT_DEADLINE", "1s")
        .args(["verify", "--sha", NEW, "--json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    let rep: serde_json::Value = serde_json::from_str(&r.stdout).expect("--json prints the report");
    assert_eq!(rep["outcome"], "inconclusive");
    assert!(rep["reason"]
        .as_str()
        .unwrap()
        .contains(&format!("{} runs {OLD}", world.tenants[0].url())));
    assert_eq!(world.latest(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_with_a_short_sha_and_refusal_of_a_missing_one() {
    let world = World::start(0).await;
    // Promote NEW by hand first, so there is something to roll back.
    let mut cmd = world.canary();
    cmd.args([
        "promote",
        "--sha",
        NEW,
        "--no-verify",
        "--reason",
        "e2e setup",
    ]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(world.latest(), world.staging(NEW));

    let mut cmd = world.canary();
    cmd.args(["rollback", &OLD[..7]]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(world.latest(), world.staging(OLD));
    assert!(r.stdout.contains("outcome: rolled_back"), "{}", r.stdout);
    assert!(
        r.stdout.contains("->"),
        "old -> new digest per image: {}",
        r.stdout
    );

    let before = world.latest();
    let mut cmd = world.canary();
    cmd.args(["rollback", "deadbeef"]);
    let r = run(cmd).await;
    assert_eq!(
        r.code, 3,
        "a sha without staging tags is found by asking the registry: {r:?}"
    );
    assert!(r.stdout.contains("starts with `deadbeef`"), "{}", r.stdout);
    assert_eq!(world.latest(), before, "nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refuses_when_one_image_lacks_the_sha() {
    let world = World::start(0).await;
    let lone = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    canary_testkit::oci::Fixture::single("lone").build().push(
        &world.registry,
        canary_e2e::REPOS[0],
        &format!("staging-{lone}"),
    );
    let before = world.latest();
    let mut cmd = world.canary();
    cmd.args(["rollback", lone]);
    let r = run(cmd).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("acme/tenant:staging-{lone} does not exist")),
        "{}",
        r.stdout
    );
    assert_eq!(world.latest(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_fleet_skips_or_fails_by_policy() {
    let world = World::start(0).await;
    let before = world.latest();
    let mut cmd = world.canary();
    cmd.env("CANARY_TENANT_URLS", "")
        .env("CANARY_TENANT_TOKENS", "")
        .args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("outcome: skipped"), "{}", r.stdout);
    assert_eq!(world.latest(), before);

    let mut cmd = world.canary();
    cmd.env("CANARY_TENANT_URLS", "")
        .env("CANARY_TENANT_TOKENS", "")
        .env("CANARY_ON_EMPTY_FLEET", "fail")
        .args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(world.latest(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_status() {
    let world = World::start(1).await;
    let before = world.latest();
    let mut cmd = world.canary();
    cmd.args(["verify", "--sha", NEW, "--dry-run"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("would move"), "{}", r.stdout);
    assert_eq!(world.latest(), before);

    let mut cmd = world.canary();
    cmd.args(["status"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&format!("staging-{OLD}")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("runs {NEW}")), "{}", r.stdout);
    no_secret(&r);
}
