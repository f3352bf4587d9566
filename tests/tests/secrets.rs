//! Invariant 5: no secret (registry password, registry token, tenant admin
//! token) appears in stdout, stderr, the JSON report, JUnit, the step
//! summary, the outputs file or `RUST_LOG=trace` logs — for every command,
//! on green, red and error paths, in plain and Actions mode.

// Counts are printed for the CI log.
#![allow(clippy::print_stdout)]

use canary_e2e::{run, World, NEW, OLD};
use canary_testkit::real_registry::Mode;
use canary_testkit::tenant::TenantFault;

const REGISTRY_TOKEN: &str = "registry-bearer-TOKEN-91ab37";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output() {
    let world = World::start_with(Mode::Basic, 2).await;
    let (_, password) = world.registry.credentials().expect("basic auth registry");
    let password = password.to_string();
    let secrets = [password.as_str(), REGISTRY_TOKEN, canary_e2e::TENANT_TOKEN];

    let scenarios: Vec<(&str, Vec<&str>, Option<TenantFault>)> = vec![
        (
            "verify red",
            vec![
                "verify", "--sha", NEW, "--report", "r.json", "--junit", "j.xml",
            ],
            Some(TenantFault::AuthBypass),
        ),
        (
            "verify green",
            vec![
                "verify", "--sha", NEW, "--report", "r.json", "--junit", "j.xml",
            ],
            Some(TenantFault::None),
        ),
        (
            "verify json",
            vec!["verify", "--sha", NEW, "--json", "--dry-run"],
            None,
        ),
        (
            "verify missing sha",
            vec!["verify", "--sha", "deadbeefdeadbeef", "--report", "r.json"],
            None,
        ),
        (
            "rollback",
            vec!["rollback", &OLD[..7], "--report", "r.json"],
            None,
        ),
        (
            "promote",
            vec![
                "promote",
                "--sha",
                NEW,
                "--no-verify",
                "--reason",
                "leak test",
                "--report",
                "r.json",
            ],
            None,
        ),
        (
            "smoke",
            vec!["smoke", "--junit", "j.xml", "--report", "r.json"],
            None,
        ),
        ("smoke json", vec!["smoke", "--json"], None),
        ("status", vec!["status"], None),
        ("status json", vec!["status", "--json"], None),
        ("config", vec!["config"], None),
        ("usage error", vec!["verify", "--sha", "nothex"], None),
        (
            "argv secret",
            vec!["smoke", "--token", canary_e2e::TENANT_TOKEN],
            None,
        ),
    ];
    let mut searched = 0usize;
    for actions in [false, true] {
        for (name, args, fault) in &scenarios {
            if let Some(f) = fault {
                for t in &world.tenants {
                    t.set_fault(*f);
                }
            }
            let mut cmd = world.canary();
            let output = world.dir.path().join("gh_output");
            let summary = world.dir.path().join("gh_summary");
            let _ = std::fs::remove_file(&output);
            let _ = std::fs::remove_file(&summary);
            for f in ["r.json", "j.xml"] {
                let _ = std::fs::remove_file(world.dir.path().join(f));
            }
            cmd.env("CANARY_REGISTRY_TOKEN", REGISTRY_TOKEN)
                .env("RUST_LOG", "trace");
            if actions {
                cmd.env("GITHUB_ACTIONS", "true")
                    .env("GITHUB_OUTPUT", &output)
                    .env("GITHUB_STEP_SUMMARY", &summary);
            }
            cmd.args(args);
            let r = run(cmd).await;
            assert!(r.code >= 0, "{name}: {r:?}");
            let mut texts = vec![("stdout", r.stdout.clone()), ("stderr", r.stderr.clone())];
            for (label, path) in [
                ("report", world.dir.path().join("r.json")),
                ("junit", world.dir.path().join("j.xml")),
                ("outputs", output.clone()),
                ("summary", summary.clone()),
            ] {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    texts.push((label, text));
                }
            }
            for (label, text) in &texts {
                // In Actions mode the masks themselves are the one place a
                // secret is printed, by design: the runner consumes them.
                let visible: String = text
                    .lines()
                    .filter(|l| {
                        !(actions
                            && matches!(*label, "stdout" | "stderr")
                            && l.starts_with("::add-mask::"))
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                for secret in secrets {
                    assert!(
                        !visible.contains(secret),
                        "{name} (actions={actions}): a secret appears in {label}:\n{visible}"
                    );
                    searched += 1;
                }
            }
            // Workflow commands go to stdout, or to stderr when stdout carries JSON.
            let commands = if args.contains(&"--json") {
                &r.stderr
            } else {
                &r.stdout
            };
            if actions && !commands.is_empty() {
                let first = commands.lines().next().unwrap_or_default();
                assert!(
                    first.starts_with("::add-mask::"),
                    "{name}: masks come first, got {first:?}"
                );
            }
        }
    }
    println!(
        "secret searches: {searched} (3 secrets × every output of {} runs), none found",
        scenarios.len() * 2
    );
}
