//! The CLI under a simulated GitHub Actions environment, against the real
//! registry and reference tenants: masks first, outputs parsed back with the
//! runner's rules, the step summary, annotations; green and red.

use canary_e2e::{run, World, NEW, TENANT_TOKEN};
use canary_testkit::tenant::TenantFault;

struct Actions {
    output: std::path::PathBuf,
    summary: std::path::PathBuf,
}

fn actions(world: &World, cmd: &mut std::process::Command) -> Actions {
    let output = world.dir.path().join("github_output");
    let summary = world.dir.path().join("step_summary.md");
    std::fs::write(&output, "").unwrap();
    std::fs::write(&summary, "").unwrap();
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "acme/platform")
        .env("GITHUB_RUN_ID", "42");
    Actions { output, summary }
}

fn outputs(a: &Actions) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(&a.output).unwrap();
    canary_gha::parse_file_commands(&text)
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_run_in_actions() {
    let world = World::start(2).await;
    let mut cmd = world.canary();
    let a = actions(&world, &mut cmd);
    cmd.args(["verify", "--sha", NEW, "--report", "report.json"]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    let first: Vec<&str> = r.stdout.lines().take(2).collect();
    assert!(
        first.iter().all(|l| l.starts_with("::add-mask::")),
        "masks first: {first:?}"
    );
    let rest: String = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!rest.contains(TENANT_TOKEN) && !r.stderr.contains(TENANT_TOKEN));
    assert!(
        r.stdout.contains("::group::"),
        "a group per tenant: {}",
        r.stdout
    );
    let out = outputs(&a);
    assert_eq!(out["outcome"], "promoted");
    assert_eq!(out["promoted"], "true");
    assert_eq!(out["sha"], NEW);
    assert_eq!(out["report-path"], "report.json");
    let digests: serde_json::Value = serde_json::from_str(&out["digests"]).unwrap();
    for (repo, digest) in canary_e2e::REPOS.iter().zip(world.staging(NEW)) {
        let key = format!("{}/{repo}", world.registry.host());
        assert_eq!(digests[&key], digest, "{digests}");
    }
    let summary = std::fs::read_to_string(&a.summary).unwrap();
    assert!(summary.contains("promoted"), "{summary}");
    assert!(!summary.contains(TENANT_TOKEN));
    assert_eq!(world.latest(), world.staging(NEW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_run_in_actions() {
    let world = World::start(2).await;
    world.tenants[0].set_fault(TenantFault::WrongShapes);
    let before = world.latest();
    let mut cmd = world.canary();
    let a = actions(&world, &mut cmd);
    cmd.args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.starts_with("::add-mask::"), "{}", r.stdout);
    let errors: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert!(
        !errors.is_empty(),
        "failed checks become ::error annotations: {}",
        r.stdout
    );
    assert!(
        errors.iter().any(|l| l.contains("workspaces")),
        "{errors:?}"
    );
    let out = outputs(&a);
    assert_eq!(out["outcome"], "rejected");
    assert_eq!(out["promoted"], "false");
    let failed: serde_json::Value = serde_json::from_str(&out["failed-checks"]).unwrap();
    assert!(failed.as_array().is_some_and(|f| !f.is_empty()), "{failed}");
    let summary = std::fs::read_to_string(&a.summary).unwrap();
    assert!(summary.contains("rejected"), "{summary}");
    assert!(summary.contains("workspaces"), "{summary}");
    assert_eq!(world.latest(), before);
}
