//! A verify sharded across CI jobs, with the real binary: `canary verify
//! --shard K/4 --report` as four jobs would run it, then `canary decide
//! --reports DIR`, against the real registry and reference tenants over
//! real HTTP. The merged decision moves `latest` exactly as one unsharded
//! `canary verify` does (skopeo judges the digests); a forged partial report
//! is refused and nothing moves.

use std::path::Path;

use canary_e2e::{run, World, NEW, OLD, TENANT_TOKEN};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

const TENANTS: usize = 8;

async fn shards(world: &World, dir: &Path) -> Vec<canary_e2e::Run> {
    std::fs::create_dir_all(dir).unwrap();
    let mut runs = Vec::new();
    for k in 1..=4 {
        let mut cmd = world.canary();
        let report = dir.join(format!("shard-{k}")).join("report.json");
        std::fs::create_dir_all(report.parent().unwrap()).unwrap();
        cmd.args([
            "verify",
            "--sha",
            NEW,
            "--shard",
            &format!("{k}/4"),
            "--report",
        ])
        .arg(&report);
        let r = run(cmd).await;
        no_secret(&r);
        runs.push(r);
    }
    runs
}

async fn decide(world: &World, dir: &Path) -> canary_e2e::Run {
    let mut cmd = world.canary();
    cmd.args(["decide", "--reports"])
        .arg(dir)
        .args(["--report", "decide.json"]);
    let r = run(cmd).await;
    no_secret(&r);
    r
}

fn no_secret(r: &canary_e2e::Run) {
    assert!(!r.stdout.contains(TENANT_TOKEN), "token in stdout");
    assert!(!r.stderr.contains(TENANT_TOKEN), "token in stderr");
}

fn both(r: &canary_e2e::Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report written");
    assert!(!text.contains(TENANT_TOKEN), "token in {}", path.display());
    serde_json::from_str(&text).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_and_decide_promote_exactly_as_one_unsharded_verify() {
    let single = World::start(TENANTS).await;
    let mut cmd = single.canary();
    cmd.args(["verify", "--sha", NEW, "--report", "one.json"]);
    let one = run(cmd).await;
    assert_eq!(one.code, 0, "{one:?}");

    let sharded = World::start(TENANTS).await;
    let dir = sharded.dir.path().join("reports");
    for (k, r) in shards(&sharded, &dir).await.iter().enumerate() {
        assert_eq!(r.code, 0, "shard {}: {r:?}", k + 1);
        assert!(r.stdout.contains("outcome: passed"), "{}", r.stdout);
    }
    assert_eq!(
        sharded.latest(),
        sharded.staging(OLD),
        "a shard moved latest"
    );
    let decided = decide(&sharded, &dir).await;
    assert_eq!(decided.code, 0, "{decided:?}");
    assert_eq!(
        sharded.latest(),
        sharded.staging(NEW),
        "skopeo: latest is the release"
    );
    assert_eq!(single.latest(), single.staging(NEW));

    let one = json(&single.dir.path().join("one.json"));
    let merged = json(&sharded.dir.path().join("decide.json"));
    assert_eq!(merged["outcome"], one["outcome"]);
    assert_eq!(merged["merged_shards"], 4);
    let statuses = |r: &serde_json::Value| -> Vec<String> {
        r["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].to_string())
            .collect()
    };
    assert_eq!(statuses(&merged), statuses(&one));
    let urls = |r: &serde_json::Value| r["tenants"].as_array().unwrap().len();
    assert_eq!(urls(&merged), TENANTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_shard_rejects_and_a_forged_report_is_refused() {
    let mut world = World::start(TENANTS).await;
    // Tenant 5 (shard 2/4 owns 1 and 5) loses what it stores: a check
    // fails, the release is red.
    world.tenants[5] = TenantServer::start(TenantOptions {
        token: TENANT_TOKEN.to_string(),
        version: NEW.to_string(),
        fault: TenantFault::BrokenRoundTrip,
    })
    .await;
    let dir = world.dir.path().join("reports");
    let runs = shards(&world, &dir).await;
    assert_eq!(
        runs[1].code, 1,
        "shard 2/4 holds the failing tenant: {:?}",
        runs[1]
    );
    for k in [0, 2, 3] {
        assert_eq!(runs[k].code, 0, "{:?}", runs[k]);
    }
    let decided = decide(&world, &dir).await;
    assert_eq!(decided.code, 1, "{decided:?}");
    assert!(
        decided.stdout.contains("outcome: rejected"),
        "{}",
        decided.stdout
    );
    assert_eq!(world.latest(), world.staging(OLD), "skopeo: latest stayed");

    // A hostile shard 1/4 claims a green result for tenant 5 as well.
    let path = |k: usize| dir.join(format!("shard-{k}")).join("report.json");
    let mut first = json(&path(1));
    let mut forged = json(&path(2))["tenants"][1].clone();
    for check in forged["checks"].as_array_mut().unwrap() {
        check["status"] = "passed".into();
    }
    first["tenants"].as_array_mut().unwrap().push(forged);
    std::fs::write(path(1), serde_json::to_string(&first).unwrap()).unwrap();
    let refused = decide(&world, &dir).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        both(&refused).contains("which shard 2/4 owns"),
        "{refused:?}"
    );
    // A missing shard is refused too.
    std::fs::remove_file(path(4)).unwrap();
    let missing = decide(&world, &dir).await;
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(both(&missing).contains("lack shard 4/4"), "{missing:?}");
    assert_eq!(world.latest(), world.staging(OLD), "skopeo: nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_without_report_or_with_a_bad_count_is_refused_before_any_request() {
    let world = World::start(1).await;
    let mut cmd = world.canary();
    cmd.args(["verify", "--sha", NEW, "--shard", "2/4"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--report"), "{}", r.stderr);
    let mut cmd = world.canary();
    cmd.args([
        "verify", "--sha", NEW, "--shard", "5/4", "--report", "x.json",
    ]);
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--shard `5/4`"), "{}", r.stderr);
    assert_eq!(world.latest(), world.staging(OLD));
}
