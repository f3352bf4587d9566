//! Metric analysis end to end: the real binary, the real registry and
//! tenants, and a real Prometheus serving backfilled series (so every
//! number is known). A release the smoke suite passes is rejected by its
//! error rate, promoted when the rate is within the bound, and left alone
//! (inconclusive) when Prometheus cannot answer; `canary analyze` judges
//! the same metrics alone.

use canary_e2e::{run, World, NEW, OLD};
use canary_testkit::prometheus::{Backfill, Prometheus};
use serde_json::Value;

/// Canary `ce` errors of 5,000 requests, baseline 5 of 5,000.
fn prometheus(ce: u64) -> (Prometheus, String) {
    let mut b = Backfill::new();
    for (cohort, errors) in [("canary", ce), ("baseline", 5)] {
        b.counter(
            "http_requests_total",
            &[("release", cohort), ("code", "500")],
            errors,
        );
        b.counter(
            "http_requests_total",
            &[("release", cohort), ("code", "200")],
            5000 - errors,
        );
    }
    let over = b.over();
    (Prometheus::backfilled(&b.to_openmetrics()), over)
}

fn config(world: &World, url: &str, over: &str) {
    let text = format!(
        r#"[analysis]
prometheus = "{url}"
window = "0s"
cohort_label = "release"

[[analysis.metric]]
name = "http-errors"
kind = "error_rate"
errors = 'sum(increase(http_requests_total{{code="500", {{{{cohort}}}}}}{over}))'
total = 'sum(increase(http_requests_total{{ {{{{cohort}}}} }}{over}))'
max_increase = 0.01
min_requests = 200
"#
    );
    std::fs::write(world.dir.path().join("canary.toml"), text).unwrap();
}

fn report(world: &World) -> Value {
    serde_json::from_str(&std::fs::read_to_string(world.dir.path().join("r.json")).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_two_points_worse_rejects_a_release_the_suite_passed() {
    let world = World::start(2).await;
    let (prom, over) = prometheus(100);
    config(&world, &prom.url(), &over);
    let summary = world.dir.path().join("summary.md");
    let mut cmd = world.canary();
    cmd.env("GITHUB_STEP_SUMMARY", &summary)
        .args(["--github", "verify", "--sha", NEW, "--report", "r.json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}\n{}", prom.log());
    let json = report(&world);
    assert_eq!(json["outcome"], "rejected");
    let v = &json["analysis"]["verdicts"][0];
    assert_eq!(v["status"], "fail", "{v}");
    assert_eq!(v["canary"], 0.02);
    assert_eq!(v["baseline"], 0.001);
    assert_eq!(v["canary_requests"], 5000.0);
    assert!(
        json["reason"]
            .as_str()
            .unwrap()
            .contains("metric `http-errors` fail"),
        "{}",
        json["reason"]
    );
    // Every smoke check passed: the metric alone said no.
    for t in json["tenants"].as_array().unwrap() {
        for c in t["checks"].as_array().unwrap() {
            assert_eq!(c["status"], "passed", "{c}");
        }
    }
    assert!(
        r.stdout.contains("FAIL       http-errors (error_rate)"),
        "{}",
        r.stdout
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("### Metrics"), "{md}");
    assert!(
        md.contains("| `http-errors` | error_rate | **FAIL** | 2.00% | 0.10% |"),
        "{md}"
    );
    assert!(
        r.stdout.contains("::error title=metric http-errors::"),
        "{}",
        r.stdout
    );
    assert_eq!(world.latest(), world.staging(OLD), "skopeo: latest moved");

    // `canary analyze` says the same on its own, and moves nothing.
    let mut cmd = world.canary();
    cmd.args(["analyze", "--json"]);
    let a = run(cmd).await;
    assert_eq!(a.code, 1, "{a:?}");
    let json: Value = serde_json::from_str(&a.stdout).unwrap();
    assert_eq!(json["verdicts"][0]["status"], "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_within_the_bound_promotes_with_its_numbers() {
    let world = World::start(1).await;
    let (prom, over) = prometheus(6);
    config(&world, &prom.url(), &over);
    let mut cmd = world.canary();
    cmd.args(["verify", "--sha", NEW, "--report", "r.json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}\n{}", prom.log());
    let json = report(&world);
    assert_eq!(json["outcome"], "promoted");
    assert_eq!(json["analysis"]["verdicts"][0]["status"], "pass");
    assert!(r.stdout.contains("pass       http-errors"), "{}", r.stdout);
    assert_eq!(world.latest(), world.staging(NEW));
    let mut cmd = world.canary();
    cmd.arg("analyze");
    let a = run(cmd).await;
    assert_eq!(a.code, 0, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_that_cannot_answer_is_inconclusive_and_moves_nothing() {
    let world = World::start(1).await;
    let (mut prom, over) = prometheus(6);
    config(&world, &prom.url(), &over);
    prom.stop();
    let mut cmd = world.canary();
    cmd.args(["verify", "--sha", NEW, "--report", "r.json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    let json = report(&world);
    assert_eq!(json["outcome"], "inconclusive");
    assert_eq!(json["analysis"]["verdicts"][0]["query_error"], true);
    assert_eq!(world.latest(), world.staging(OLD));
    let mut cmd = world.canary();
    cmd.arg("analyze");
    let a = run(cmd).await;
    assert_eq!(a.code, 3, "every query failed: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_analysis_config_is_refused_before_any_request() {
    let world = World::start(1).await;
    std::fs::write(
        world.dir.path().join("canary.toml"),
        "[analysis]\nprometheus = \"http://127.0.0.1:9\"\n[[analysis.metric]]\nname = \"e\"\nkind = \"error_rate\"\nerrors = \"sum(x)\"\ntotal = \"sum(y)\"\n",
    )
    .unwrap();
    let mark = world.registry.access_mark();
    let mut cmd = world.canary();
    cmd.args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("does not name the cohort"),
        "{}",
        r.stderr
    );
    assert!(
        world.registry.access_since(mark).is_empty(),
        "a request was made"
    );
    for t in &world.tenants {
        assert_eq!(t.requests(), 0);
    }
}

/// A shard never reads metrics (the `decide` that merges the shards does),
/// so a shard job needs neither Prometheus nor its credential: with the
/// credential unset the shard still runs, and its report has no analysis.
/// The `decide` that judges the release refuses the missing credential by
/// name, before any registry request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_needs_no_prometheus_credential_and_decide_does() {
    let world = World::start(1).await;
    std::fs::write(
        world.dir.path().join("canary.toml"),
        "[analysis]\nprometheus = \"http://127.0.0.1:9\"\ntoken_env = \"CANARY_TEST_PROM_TOKEN\"\n\
         cohort_label = \"release\"\n[[analysis.metric]]\nname = \"e\"\nkind = \"error_rate\"\n\
         errors = 'sum(x{ {{cohort}} })'\ntotal = 'sum(y{ {{cohort}} })'\n",
    )
    .unwrap();
    let shards = world.dir.path().join("shards");
    std::fs::create_dir_all(&shards).unwrap();
    let mut cmd = world.canary();
    cmd.env_remove("CANARY_TEST_PROM_TOKEN")
        .args(["verify", "--sha", NEW, "--shard", "1/1", "--report"])
        .arg(shards.join("1.json"));
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("CANARY_TEST_PROM_TOKEN"), "{}", r.stderr);
    let partial: Value =
        serde_json::from_str(&std::fs::read_to_string(shards.join("1.json")).unwrap()).unwrap();
    assert_eq!(partial["outcome"], "passed", "{partial}");
    assert!(partial["analysis"].is_null(), "{partial}");

    let mark = world.registry.access_mark();
    let mut cmd = world.canary();
    cmd.env_remove("CANARY_TEST_PROM_TOKEN")
        .args(["decide", "--reports"])
        .arg(&shards);
    let d = run(cmd).await;
    assert_eq!(d.code, 2, "{d:?}");
    assert!(d.stderr.contains("CANARY_TEST_PROM_TOKEN"), "{}", d.stderr);
    assert!(
        world.registry.access_since(mark).is_empty(),
        "a request was made"
    );
    assert_eq!(world.latest(), world.staging(OLD), "skopeo: latest stayed");
}
